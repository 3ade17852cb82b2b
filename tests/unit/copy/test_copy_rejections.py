"""A copy the venue refuses is a rejection with the venue's words: never a skip, never the start of a
cooldown, logged as a warning, and counted as such by ``hyperfollow copy``'s run statistics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import structlog
from rich.console import Console

from hyperfollow.adapters.sim import SimVenue
from hyperfollow.app.copy_run import RunStats
from hyperfollow.copy.journal import InMemoryJournal
from hyperfollow.copy.model import CopyMode, FollowSettings, SkipReason
from hyperfollow.copy.service import CopyService, ServiceConfig
from hyperfollow.copy.state import CopyEvent, EventKind
from hyperfollow.core.clock import LiveClock
from hyperfollow.domain.errors import VenueRejected
from hyperfollow.domain.model import OrderRequest, Side, Tif
from hyperfollow.exchange.embedded import EmbeddedExchange

START_MS = 1_767_225_600_000
LEADER = "0x" + "1e" * 20
F1 = "0x" + "f1" * 20
REFUSAL = f"User or API Wallet {'0x' + 'a9' * 20} does not exist."
DELTA = FollowSettings(mode=CopyMode.DELTA, delta_band_pct=Decimal(5), delta_cooldown_secs=Decimal(60))


class Refusing(SimVenue):
    """A follower venue whose every order is refused, as the venue refuses an unapproved signer's."""

    def __init__(self, exchange: EmbeddedExchange, address: str) -> None:
        super().__init__(exchange, address)
        self.refused = 0

        async def refuse(order: OrderRequest, *args: Any, **kwargs: Any) -> Any:
            self.refused += 1
            raise VenueRejected(REFUSAL, cloid=order.cloid)

        self.gateway.submit = refuse  # type: ignore[method-assign]


@pytest.fixture
async def world() -> AsyncIterator[tuple[EmbeddedExchange, SimVenue, Refusing, CopyService, list[CopyEvent]]]:
    ex = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=START_MS)
    ex.set_price("ETH", "3000")
    ex.fund(LEADER, "100000")
    ex.fund(F1, "10000")
    leader, follower = SimVenue(ex, LEADER), Refusing(ex, F1)
    events: list[CopyEvent] = []
    svc = CopyService(
        {F1: follower},
        InMemoryJournal(),
        config=ServiceConfig(delta_loop=False),
        clock=LiveClock(wall_ms=ex.clock.now_ms),
    )
    svc.on_event(events.append)
    await svc.follow(F1, LEADER, DELTA)
    await svc.start()
    yield ex, leader, follower, svc, events
    await svc.close()
    await leader.close()
    await follower.close()


async def _leader_buys(leader: SimVenue, size: str) -> None:
    mid = (await leader.market.mids())["ETH"]
    await leader.gateway.submit(
        OrderRequest("ETH", Side.BUY, Decimal(size), (mid * Decimal("1.05")).quantize(Decimal(1)), Tif.IOC)
    )


async def test_a_refused_delta_order_is_a_rejection_and_starts_no_cooldown(world: Any) -> None:
    _ex, leader, follower, svc, _events = world
    await _leader_buys(leader, "10")
    await svc.settle()
    first = await svc.delta_round()
    assert [(e.kind, e.reason) for e in first] == [(EventKind.REJECTED, REFUSAL)]
    # nothing was adjusted: a round 5 s later (well inside the 60 s cooldown) tries again and is refused
    # again; it is no "coin adjusted too recently" skip
    await leader.step(5_000)
    second = await svc.delta_round()
    assert [(e.kind, e.skip_reason) for e in second] == [(EventKind.REJECTED, None)]
    assert SkipReason.SKIP_COOLDOWN not in [e.skip_reason for e in second]
    assert follower.refused == 2


async def test_a_rejection_is_logged_as_a_warning_with_the_venues_text(world: Any) -> None:
    _ex, leader, _follower, svc, _events = world
    await _leader_buys(leader, "10")
    await svc.settle()
    with structlog.testing.capture_logs() as logs:
        await svc.delta_round()
    [line] = [entry for entry in logs if entry["event"] == "copy.rejected"]
    assert line["log_level"] == "warning"
    assert line["error"] == REFUSAL


def _event(kind: EventKind, reason: str = "", skip: SkipReason | None = None) -> CopyEvent:
    return CopyEvent(kind, F1, LEADER, "ETH", START_MS, reason=reason, skip_reason=skip)


def test_run_stats_count_rejections_by_the_venues_text_not_as_skips() -> None:
    stats = RunStats(labels={LEADER: "whale"})
    for _ in range(3):
        stats.on_event(_event(EventKind.REJECTED, REFUSAL))
    stats.on_event(_event(EventKind.SKIPPED, skip=SkipReason.SKIP_MIN_NOTIONAL))
    assert stats.rejections_by_reason == {REFUSAL: 3}
    assert stats.rejections_by_leader == {LEADER: 3}
    assert stats.skips_by_reason == {SkipReason.SKIP_MIN_NOTIONAL.value: 1}
    console = Console(record=True, width=200)
    note = stats.rejections_note()
    assert note is not None
    console.print(note)
    text = console.export_text()
    assert "3 x" in text
    assert REFUSAL in text
    assert RunStats(labels={}).rejections_note() is None
