"""The copy report's figures are this run's: a second run on the same store (``hyperfollow copy`` run
again) reports its own fills, fees and realized PnL, not the store's history, and says so at the top.

The venue is the in-process one (a stepped embedded exchange without simulated traders), the store SQLite in
tmp; ``CopyRun`` is the part of ``hyperfollow copy`` and ``hyperfollow demo`` that builds the report."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from rich.console import Console

from hyperfollow.adapters.sim import SimVenue
from hyperfollow.app.copy_run import CopyRun, RunStats
from hyperfollow.app.report import CopyReport
from hyperfollow.copy.model import FollowSettings, SizingMode
from hyperfollow.copy.service import CopyService, ServiceConfig
from hyperfollow.core.clock import LiveClock
from hyperfollow.domain.model import OrderRequest, Side, Tif
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.store.copy_journal import StoreCopyJournal
from hyperfollow.store.unit import Store

START_MS = 1_767_225_600_000
LEADER = "0x" + "1e" * 20
FOLLOWER = "0x" + "f1" * 20
TENTH = FollowSettings(sizing=SizingMode.FIXED_MULTIPLIER, multiplier=Decimal("0.1"))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open_migrated(f"sqlite+aiosqlite:///{tmp_path / 'copy.db'}")
    yield opened
    await opened.close()


async def _run(exchange: EmbeddedExchange, store: Store, leader: SimVenue) -> CopyReport:
    """One run: start, the leader opens and closes 1 ETH (we copy 0.1), report, stop."""
    venue = SimVenue(exchange, FOLLOWER)
    service = CopyService(
        {FOLLOWER: venue}, StoreCopyJournal(store), config=ServiceConfig(delta_loop=False),
        clock=LiveClock(wall_ms=exchange.clock.now_ms),
    )  # fmt: skip
    try:
        await service.follow(FOLLOWER, LEADER, TENTH)
        run = CopyRun(service, venue, store, FOLLOWER, RunStats(labels={LEADER: "leader"}), Console(),
                      clock=exchange.clock.now_ms)  # fmt: skip
        await run.begin()
        await service.start()
        for side in (Side.BUY, Side.SELL):
            mid = (await leader.market.mids())["ETH"]
            px = (mid * Decimal("1.05") if side is Side.BUY else mid * Decimal("0.95")).quantize(Decimal(1))
            await leader.gateway.submit(OrderRequest("ETH", side, Decimal(1), px, Tif.IOC))
            await service.settle()
            await leader.set_price("ETH", "3030")  # the copy gains ~$3 before its close
        report = await run.report()
    finally:
        await service.close()
        await venue.close()
    await leader.step(60_000)
    return report


async def test_a_second_run_on_the_same_store_reports_only_its_own_figures(store: Store) -> None:
    exchange = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=START_MS)
    exchange.set_price("ETH", "3000")
    exchange.fund(LEADER, "100000")
    exchange.fund(FOLLOWER, "10000")
    leader = SimVenue(exchange, LEADER)
    try:
        first = await _run(exchange, store, leader)
        await leader.set_price("ETH", "3000")
        second = await _run(exchange, store, leader)
    finally:
        await leader.close()
    for report in (first, second):
        [line] = report.leaders
        assert report.fills == 2  # this run's open and close
        assert line.copies == 2
        assert Decimal(2) < line.realized_pnl < Decimal(3)  # 0.1 ETH x $30, less fees: this run's alone
        assert line.fees > 0
    assert second.since_ms is not None
    assert first.since_ms is not None
    assert second.since_ms > first.since_ms
    assert "this run only" in second.scope
