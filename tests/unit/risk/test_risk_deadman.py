"""The dead man's switch on the in-process venue: renewals keep orders alive, silence lets it cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from hyperfollow.adapters.sim import SimVenue
from hyperfollow.core.clock import LiveClock
from hyperfollow.domain.model import OrderRequest, Side
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.risk.deadman import DeadMansSwitch

OURS = "0x" + "d1" * 20


@pytest.fixture
async def venue() -> AsyncIterator[tuple[EmbeddedExchange, SimVenue]]:
    ex = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=1_767_225_600_000)
    ex.set_price("ETH", Decimal(3000))
    ex.fund(OURS, "10000")
    v = SimVenue(ex, OURS)
    yield ex, v
    await v.close()


async def test_renewed_while_healthy_then_the_venue_cancels_when_we_go_quiet(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    ex, v = venue
    health = {"ok": True}
    switch = DeadMansSwitch(v.gateway, clock=LiveClock(wall_ms=ex.clock.now_ms), healthy=lambda: health["ok"])
    await v.gateway.submit(OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(2800)))
    for _ in range(4):  # 4 x 40 s: well past one 60 s window, renewed each time
        assert await switch.renew()
        await v.step(40_000)
    assert len(await v.account.open_orders()) == 1
    health["ok"] = False  # stale data, a lost stream...
    assert not await switch.renew()
    await v.step(70_000)
    assert await v.account.open_orders() == []  # the venue cancelled on its own


async def test_a_clean_stop_clears_the_switch(venue: tuple[EmbeddedExchange, SimVenue]) -> None:
    ex, v = venue
    switch = DeadMansSwitch(v.gateway, clock=LiveClock(wall_ms=ex.clock.now_ms))
    await v.gateway.submit(OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(2800)))
    assert await switch.renew()
    await switch.stop(clear=True)
    assert switch.scheduled_ms is None
    await v.step(120_000)
    assert len(await v.account.open_orders()) == 1  # nothing fired: the stop was planned


def test_the_window_leaves_room_for_the_venue_minimum() -> None:
    with pytest.raises(ValueError, match="5 s minimum"):
        DeadMansSwitch(object(), clock=LiveClock(), window_ms=20_000, renew_every_ms=20_000)  # type: ignore[arg-type]
