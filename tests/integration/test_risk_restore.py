"""A halt outlives a restart: the risk service comes back HALTED from the store (only a reset ends it)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from hyperfollow.adapters.sim import SimVenue
from hyperfollow.app.risk_run import start_risk
from hyperfollow.core.clock import LiveClock
from hyperfollow.core.orders import OrderOwners
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.risk.breakers import BreakerReason, StateChange
from hyperfollow.risk.gate import TradingState
from hyperfollow.store import Store
from hyperfollow.store.risk_persist import RiskPersistence

OURS = "0x" + "e1" * 20


async def test_a_halted_account_is_still_halted_after_a_restart(tmp_path: Path) -> None:
    exchange = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=1_767_225_600_000)
    exchange.set_price("ETH", Decimal(3000))
    exchange.fund(OURS, "10000")
    venue = SimVenue(exchange, OURS)
    store = await Store.open_migrated(f"sqlite+aiosqlite:///{tmp_path / 'risk.db'}")
    try:
        clock = LiveClock(wall_ms=exchange.clock.now_ms)
        first = await start_risk({OURS: venue}, store, clock=clock, owners=OrderOwners())
        assert first.state(OURS) is TradingState.ACTIVE
        halt = StateChange(
            TradingState.ACTIVE, TradingState.HALTED, BreakerReason.DAILY_LOSS, "loss", clock.now_ms()
        )
        await RiskPersistence(store, clock=clock.now_ms).on_state_change(
            OURS, halt
        )  # what the breaker tick stores
        await first.close()
        second = await start_risk({OURS: venue}, store, clock=clock, owners=OrderOwners())
        try:
            assert second.state(OURS) is TradingState.HALTED
            await second.breaker_tick()
            assert second.state(OURS) is TradingState.HALTED  # sticky: only a manual reset ends it
        finally:
            await second.close()
    finally:
        await venue.close()
        await store.close()
