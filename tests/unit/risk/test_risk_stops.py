"""The stop keeper on SimVenue (stepped embedded exchange, no simulated traders, ETH around $3,000)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from structlog.testing import capture_logs

from hyperfollow.adapters.sim import SimVenue
from hyperfollow.core.clock import LiveClock
from hyperfollow.domain.model import CancelRequest, OrderRequest, OrderState, Side, Tif
from hyperfollow.domain.rules import Instrument
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.risk.stops import StopKeeper, StopTarget, stop_cloid, stop_limit_price, stop_trigger_price

START_MS = 1_767_225_600_000
OURS = "0x" + "f1" * 20
ETH = Instrument("ETH", 1, 4, 25)


@pytest.fixture
async def venue() -> AsyncIterator[tuple[EmbeddedExchange, SimVenue]]:
    ex = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=START_MS)
    ex.set_price("ETH", Decimal(3000))
    ex.fund(OURS, "100000")
    v = SimVenue(ex, OURS)
    yield ex, v
    await v.close()


def keeper(ex: EmbeddedExchange, v: SimVenue, **kw: object) -> StopKeeper:
    return StopKeeper({OURS: v.gateway}, v.market, clock=LiveClock(wall_ms=ex.clock.now_ms), **kw)  # type: ignore[arg-type]


async def open_position(v: SimVenue, side: Side, size: str) -> None:
    px = Decimal(4000) if side is Side.BUY else Decimal(2000)
    await v.gateway.submit(OrderRequest("ETH", side, Decimal(size), px, Tif.IOC))


async def stops(v: SimVenue) -> list[OrderState]:
    return [o for o in await v.account.open_orders() if o.trigger_price is not None]


def test_levels_round_towards_safety() -> None:
    assert stop_trigger_price(ETH, Decimal("2850.04"), long=True) == Decimal("2850.1")  # a long's stop up
    assert stop_trigger_price(ETH, Decimal("3149.96"), long=False) == Decimal("3149.9")  # a short's down
    assert stop_limit_price(ETH, Decimal(2850), long=True, slippage_pct=Decimal(10)) == Decimal(2565)
    assert stop_limit_price(ETH, Decimal(3150), long=False, slippage_pct=Decimal(10)) == Decimal(3465)


async def test_short_stop_is_a_reduce_only_buy_above(venue: tuple[EmbeddedExchange, SimVenue]) -> None:
    ex, v = venue
    k = keeper(ex, v)
    await open_position(v, Side.SELL, "0.2")
    report = await k.sync([StopTarget(OURS, "ETH", Decimal("-0.2"), Decimal("3150.04"))])
    assert report.placed == [stop_cloid(OURS, "ETH", 0)]
    [stop] = await stops(v)
    assert (stop.side, stop.size, stop.reduce_only, stop.trigger_price) == (
        Side.BUY, Decimal("0.2"), True, Decimal("3150"),
    )  # fmt: skip
    # the same target again: nothing to do, no action spent
    again = await k.sync([StopTarget(OURS, "ETH", Decimal("-0.2"), Decimal("3150.04"))])
    assert (again.placed, again.moved, k.actions_sent) == ([], [], 1)


async def test_a_move_over_budget_is_skipped_but_a_resize_goes(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    ex, v = venue
    k = keeper(ex, v, max_moves_per_min=1)
    await open_position(v, Side.BUY, "0.1")
    await k.sync([StopTarget(OURS, "ETH", Decimal("0.1"), Decimal(2850))])  # 1 action: the budget is used
    with capture_logs() as logs:
        report = await k.sync([StopTarget(OURS, "ETH", Decimal("0.1"), Decimal(2900))])
    assert report.skipped
    assert not report.moved
    assert any(e["event"] == "risk.stop_move_skipped" for e in logs)
    [stop] = await stops(v)
    assert stop.trigger_price == Decimal(2850)
    await open_position(v, Side.BUY, "0.1")
    report = await k.sync([StopTarget(OURS, "ETH", Decimal("0.2"), Decimal(2900))])  # protection: always
    assert report.moved == [stop_cloid(OURS, "ETH", 1)]
    [stop] = await stops(v)
    assert (stop.size, stop.trigger_price, stop.cloid) == (
        Decimal("0.2"),
        Decimal(2900),
        stop_cloid(OURS, "ETH", 1),
    )
    await ex_step_minute(v)
    report = await k.sync([StopTarget(OURS, "ETH", Decimal("0.2"), Decimal(2950))])  # budget back
    assert report.moved == [stop_cloid(OURS, "ETH", 2)]


async def ex_step_minute(v: SimVenue) -> None:
    await v.step(61_000)


async def test_a_vanished_stop_is_placed_again_and_a_restart_adopts_ours(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    ex, v = venue
    k = keeper(ex, v)
    await open_position(v, Side.BUY, "0.1")
    await k.sync([StopTarget(OURS, "ETH", Decimal("0.1"), Decimal(2850))])
    await v.gateway.cancel(
        CancelRequest("ETH", cloid=stop_cloid(OURS, "ETH", 0))
    )  # e.g. the dead man's switch
    report = await k.sync([StopTarget(OURS, "ETH", Decimal("0.1"), Decimal(2900))])
    assert report.placed == [stop_cloid(OURS, "ETH", 1)]
    [stop] = await stops(v)
    assert stop.trigger_price == Decimal(2900)

    restarted = keeper(ex, v)
    foreign = await v.gateway.submit(OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(2700)))
    adopted = restarted.adopt(OURS, await v.account.open_orders())
    assert [o.cloid for o in adopted] == [stop_cloid(OURS, "ETH", 1)]
    assert foreign.cloid not in restarted.cloids(OURS)
    kept = restarted.stop(OURS, "ETH")
    assert kept is not None
    assert (kept.size, kept.epoch) == (Decimal("0.1"), 1)
    # flat: the adopted stop is cancelled, and the next placement gets a fresh epoch
    report = await restarted.sync([StopTarget(OURS, "ETH", Decimal(0), None)])
    assert report.cancelled == [stop_cloid(OURS, "ETH", 1)]
    assert await stops(v) == []
