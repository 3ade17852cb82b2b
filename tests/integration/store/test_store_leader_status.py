"""Leader statuses on SQLite and PostgreSQL: the repository round-trips them exactly and replaces a leader's
record; ``StoreCopyJournal`` keeps them and the copy engine's own trading state changes (migration 0003)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from hyperfollow.risk.breakers import BreakerReason, StateChange
from hyperfollow.risk.gate import TradingState
from hyperfollow.risk.leaders import LeaderStatus
from hyperfollow.store import Store, downgrade_async, migrate_async
from hyperfollow.store.copy_journal import StoreCopyJournal
from hyperfollow.store.db import create_engine

D = Decimal
DAY_MS = 86_400_000


async def test_a_status_round_trips_exactly_and_put_replaces(
    store: Store, new_address: Callable[[], str]
) -> None:
    leader, other = new_address(), new_address()
    blacklisted = LeaderStatus(leader, peak_equity=D("123456.789012345678"), blacklisted_until_ms=14 * DAY_MS)
    async with store.transaction() as tx:
        assert await tx.leaders.get(leader) is None
        await tx.leaders.put(blacklisted, now_ms=1)
        await tx.leaders.put(LeaderStatus(other, D("5"), paused=True), now_ms=1)
    async with store.transaction() as tx:
        back = await tx.leaders.get(leader.upper().replace("0X", "0x"))
    assert back == blacklisted
    assert back is not None
    assert str(back.peak_equity) == "123456.789012345678"  # exact, no float on the way
    ended = LeaderStatus(leader, peak_equity=D("130000"))  # the blacklist ended, a new peak
    async with store.transaction() as tx:
        await tx.leaders.put(ended, now_ms=2)
    async with store.transaction() as tx:
        assert await tx.leaders.get(leader) == ended
        mine = [s for s in await tx.leaders.all() if s.leader in (leader, other)]
    assert sorted(mine, key=lambda s: s.leader) == sorted(
        [ended, LeaderStatus(other, D("5"), paused=True)], key=lambda s: s.leader
    )


async def test_the_copy_journal_keeps_leader_statuses_and_state_changes(
    store: Store, new_address: Callable[[], str]
) -> None:
    leader, follower = new_address(), new_address()
    journal = StoreCopyJournal(store)
    status = LeaderStatus(leader, D("100000.5"), blacklisted_until_ms=1_000 + 14 * DAY_MS)
    await journal.save_leader_status(status, now_ms=1_000)
    assert (await journal.leader_statuses())[leader] == status
    restarted = StoreCopyJournal(store)  # a new process on the same database
    assert (await restarted.leader_statuses())[leader] == status

    assert await journal.latest_state(follower) is None
    halt = StateChange(TradingState.ACTIVE, TradingState.HALTED, BreakerReason.KILL_SWITCH, "kill", 5_000)
    await journal.record_state_change(follower, halt)
    assert await restarted.latest_state(follower) is TradingState.HALTED
    async with store.transaction() as tx:
        [event] = await tx.risk_events.for_account(follower)
    assert (event.reason, event.time_ms, event.detail) == ("KILL_SWITCH", 5_000, halt.to_dict())


async def _look(url: str) -> tuple[set[str], str | None]:
    engine = create_engine(url)

    def look(conn: Connection) -> tuple[set[str], str | None]:
        return set(inspect(conn).get_table_names()), MigrationContext.configure(conn).get_current_revision()

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(look)
    finally:
        await engine.dispose()


async def test_migration_0003_up_and_down(migrated_url: str) -> None:
    names, revision = await _look(migrated_url)
    assert "leader_status" in names
    assert revision >= "0003"
    await downgrade_async(migrated_url, "0002")
    names, revision = await _look(migrated_url)
    assert "leader_status" not in names
    assert {"risk_events", "risk_holdings"} <= names  # 0002's tables stay
    assert revision == "0002"
    await migrate_async(migrated_url)  # back to head, so the module's database ends migrated
    names, revision = await _look(migrated_url)
    assert "leader_status" in names
    assert revision >= "0003"
