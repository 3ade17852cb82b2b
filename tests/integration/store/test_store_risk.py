"""The risk records on SQLite and PostgreSQL: holdings (exact Decimals, policy and state) round-trip,
upsert, remove and whole-set replacement; trading state events and the latest state; migration 0002."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from hyperfollow.risk.breakers import BreakerReason, StateChange
from hyperfollow.risk.exits import ExitPolicy, ExitReason, ExitState, TakeProfitTier
from hyperfollow.risk.gate import TradingState
from hyperfollow.risk.scan import Holding
from hyperfollow.store import Store, downgrade_async, migrate_async
from hyperfollow.store.db import create_engine
from hyperfollow.store.risk_persist import RiskPersistence

D = Decimal
POLICY = ExitPolicy(
    stop_loss_roe_pct=D("12.5"),
    stop_loss_price_pct=D("3.33333333333333333"),
    take_profit_tiers=(TakeProfitTier(D("20"), D("0.3")), TakeProfitTier(D("40.5"), D("1"))),
    trailing_activation_pct=D("1.0"),
    trailing_retrace_pct=D("8"),
    max_holding_ms=73 * 3_600_000,
    break_even_after_tier=1,
    break_even_offset_pct=D("0.05"),
    liquidation_buffer_pct=D("2.50"),
)
STATE = ExitState(
    entry_time_ms=1_767_225_600_123,
    watermark=D("115.000000001"),
    stop_price=D("105.8"),
    stop_reason=ExitReason.TRAILING_STOP,
    tiers_fired=frozenset({0}),
)


def holding(account: str, coin: str = "ETH", size: str = "0.123456789012345678", **kw: object) -> Holding:
    base: dict[str, object] = {
        "account": account, "coin": coin, "size": D(size), "entry_price": D("3012.123456789"),
        "leverage": D("5"), "policy": POLICY, "state": STATE, "liquidation_price": D("2500.5"),
    }  # fmt: skip
    base.update(kw)
    return Holding(**base)  # type: ignore[arg-type]


def change(to: TradingState, time_ms: int, frm: TradingState = TradingState.ACTIVE) -> StateChange:
    return StateChange(frm, to, BreakerReason.DAILY_LOSS, "max daily loss reached", time_ms,
                       {"pnl_today_usd": D("-1000.123456789"), "limit": 1000}, flatten=True)  # fmt: skip


async def test_a_holding_round_trips_exactly(store: Store, new_address: Callable[[], str]) -> None:
    acct = new_address()
    h = holding(acct)
    plain = holding(acct, "BTC", "-1E+1", policy=ExitPolicy(), state=ExitState(entry_time_ms=1),
                    liquidation_price=None)  # fmt: skip
    async with store.transaction() as tx:
        await tx.holdings.put(h, now_ms=1)
        await tx.holdings.put(plain, now_ms=1)
    async with store.transaction() as tx:
        back = await tx.holdings.all(acct)
    assert back == [plain, h]  # by coin
    assert str(back[1].size) == "0.123456789012345678"  # no float on the way (PostgreSQL writes -1E+1 as -10)
    assert str(back[1].policy.trailing_activation_pct) == "1.0"  # the spelling kept, not only the value
    assert back[1].state.tiers_fired == frozenset({0})
    assert back[1].state.stop_reason is ExitReason.TRAILING_STOP


async def test_put_replaces_and_remove_drops(store: Store, new_address: Callable[[], str]) -> None:
    acct, other = new_address(), new_address()
    async with store.transaction() as tx:
        await tx.holdings.put(holding(acct), now_ms=1)
        await tx.holdings.put(holding(other), now_ms=1)
    moved = holding(acct, size="0.2", state=ExitState(entry_time_ms=5, stop_price=D("106")))
    async with store.transaction() as tx:
        await tx.holdings.put(moved, now_ms=2)
    async with store.transaction() as tx:
        assert await tx.holdings.all(acct) == [moved]
        assert await tx.holdings.get(acct.upper().replace("0X", "0x"), "ETH") == moved
        assert await tx.holdings.remove(acct, "ETH") is True
        assert await tx.holdings.remove(acct, "ETH") is False
        assert await tx.holdings.all(acct) == []
        assert await tx.holdings.all(other) == [holding(other)]  # another account untouched
        await tx.holdings.put(holding(other, size="0"), now_ms=3)  # a zero size removes
        assert await tx.holdings.get(other, "ETH") is None


async def test_a_failed_transaction_leaves_the_record(store: Store, new_address: Callable[[], str]) -> None:
    acct = new_address()
    async with store.transaction() as tx:
        await tx.holdings.put(holding(acct), now_ms=1)
    try:
        async with store.transaction() as tx:
            await tx.holdings.remove(acct, "ETH")
            raise RuntimeError("crash")
    except RuntimeError:
        pass
    async with store.transaction() as tx:
        assert await tx.holdings.all(acct) == [holding(acct)]


async def test_persistence_adapter_saves_whole_sets_and_restores(
    store: Store, new_address: Callable[[], str]
) -> None:
    acct, other = new_address(), new_address()
    persist = RiskPersistence(store, clock=lambda: 42)
    eth, btc, sol = holding(acct, "ETH"), holding(acct, "BTC", "-2"), holding(acct, "SOL", "7")
    await persist.save_holdings(acct, [eth, btc])
    await persist.save_holdings(other, [holding(other, "ETH")])
    await persist.save_holdings(acct, [eth, sol])  # BTC closed, SOL opened
    assert await persist.restore([acct]) == [eth, sol]
    await persist.save_holdings(acct, [])  # swept flat
    assert await persist.restore([acct]) == []
    assert await persist.restore([other]) == [holding(other, "ETH")]
    assert holding(other, "ETH") in await persist.restore()


async def test_events_and_the_latest_state(store: Store, new_address: Callable[[], str]) -> None:
    acct = new_address()
    persist = RiskPersistence(store, clock=lambda: 0)
    assert await persist.latest_state(acct) is None
    await persist.on_state_change(acct, change(TradingState.HALTED, 1000))
    await persist.on_state_change(acct, change(TradingState.ACTIVE, 2000, TradingState.HALTED))
    await persist.on_state_change(acct, change(TradingState.REDUCING, 3000))
    async with store.transaction() as tx:
        events = await tx.risk_events.for_account(acct)
        assert [e.to_state for e in await tx.risk_events.for_account(acct, limit=2)] == [
            TradingState.ACTIVE, TradingState.REDUCING,
        ]  # fmt: skip
        assert await tx.risk_events.for_account(new_address()) == []
    assert [(e.from_state, e.to_state, e.time_ms) for e in events] == [
        (TradingState.ACTIVE, TradingState.HALTED, 1000),
        (TradingState.HALTED, TradingState.ACTIVE, 2000),
        (TradingState.ACTIVE, TradingState.REDUCING, 3000),
    ]
    assert events[0].reason == "DAILY_LOSS"
    assert events[0].detail == change(TradingState.HALTED, 1000).to_dict()
    assert events[0].detail["numbers"] == {"pnl_today_usd": "-1000.123456789", "limit": "1000"}
    assert await persist.latest_state(acct) is TradingState.REDUCING


async def _look(url: str) -> tuple[set[str], str | None]:
    from alembic.migration import MigrationContext

    engine = create_engine(url)

    def look(conn: Connection) -> tuple[set[str], str | None]:
        return set(inspect(conn).get_table_names()), MigrationContext.configure(conn).get_current_revision()

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(look)
    finally:
        await engine.dispose()


async def test_migration_0002_up_and_down(migrated_url: str) -> None:
    risk = {"risk_holdings", "risk_events"}
    names, head = await _look(migrated_url)
    assert names >= risk
    assert head >= "0002"
    await downgrade_async(migrated_url, "0001")
    names, revision = await _look(migrated_url)
    assert not names & risk
    assert "positions" in names
    assert revision == "0001"
    await migrate_async(migrated_url)  # back to head, so the module's database ends migrated
    names, revision = await _look(migrated_url)
    assert names >= risk
    assert revision == head
