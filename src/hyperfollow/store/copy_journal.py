"""``CopyJournal`` over ``Store``: the copy service's persistence in the database (SQLite or PostgreSQL).

Each method is one short transaction (no venue I/O inside: see ``store/db.py``). ``begin`` writes a
decision's intents, skips and the follow's cursor together, so after a crash either all of a leader fill's
handling is durable or none of it is; ``record_fill`` records a fill and moves the attributed leader's
position together, so a fill is never counted twice nor lost between the two. Leader statuses go to
``leader_status``; the copy engine's own trading state changes to ``risk_events`` (the same table as the risk
service's, through ``RiskEventRepository``: one account has one history of states).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import select

from hyperfollow.copy.journal import (
    Cursor,
    EntryState,
    Follow,
    HeldPosition,
    OrderOutcome,
    PendingEntry,
    RecordedCopyFill,
    apply_fill,
)
from hyperfollow.copy.model import CopyIntent, FollowSettings, Skip, StopAction
from hyperfollow.domain.model import Fill
from hyperfollow.risk.breakers import StateChange
from hyperfollow.risk.gate import TradingState
from hyperfollow.risk.leaders import LeaderStatus
from hyperfollow.store.follows import FollowRecord
from hyperfollow.store.journal import JournalEntry, JournalState
from hyperfollow.store.positions import PositionRecord
from hyperfollow.store.skips import SkipRecord
from hyperfollow.store.tables import SkipRow
from hyperfollow.store.unit import Store, UnitOfWork


def settings_to_json(settings: FollowSettings) -> dict[str, Any]:
    """``FollowSettings`` as the follows table stores it (Decimals as exact JSON numbers, enums by value)."""
    return {f.name: getattr(settings, f.name) for f in fields(settings)}


def settings_from_json(data: Mapping[str, Any]) -> FollowSettings:
    """The stored dict back as ``FollowSettings`` (unknown keys, from a newer version, are ignored)."""
    known = {f.name for f in fields(FollowSettings)}
    return FollowSettings(**{k: v for k, v in data.items() if k in known})


def _follow(record: FollowRecord) -> Follow:
    return Follow(record.follower, record.leader, settings_from_json(record.settings), record.created_ms)


def _pending(entry: JournalEntry) -> PendingEntry:
    return PendingEntry(
        cloid=entry.cloid,
        follower=entry.follower,
        leader=entry.leader,
        coin=entry.coin,
        side=entry.side,
        size=entry.size,
        limit_price=entry.limit_price,
        reduce_only=entry.reduce_only,
        tif=entry.tif,
        leg=entry.leg,
        fill_key=entry.source_fill_key,
        created_ms=entry.created_ms,
        state=EntryState(entry.state.value),
    )


def _held(record: PositionRecord) -> HeldPosition:
    return HeldPosition(
        record.follower, record.leader, record.coin, record.size, record.entry_notional, record.realized_pnl
    )


def _skip_record(skip: Skip, now_ms: int) -> SkipRecord:
    return SkipRecord(
        follower=skip.follower,
        leader=skip.leader,
        coin=skip.coin,
        reason=skip.reason.code,
        time_ms=now_ms,
        detail=dict(skip.detail),
        source_fill_key=skip.fill_key or None,
    )


class StoreCopyJournal:
    """The copy service's ``CopyJournal`` on a ``Store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def follows(self) -> list[Follow]:
        async with self.store.transaction() as tx:
            return [_follow(r) for r in await tx.follows.active()]

    async def save_follow(self, follow: Follow, *, now_ms: int) -> Follow:
        async with self.store.transaction() as tx:
            record = await tx.follows.upsert(
                follow.follower, follow.leader, settings_to_json(follow.settings), now_ms=now_ms
            )
        return _follow(record)

    async def end_follow(self, follower: str, leader: str, action: StopAction, *, now_ms: int) -> bool:
        async with self.store.transaction() as tx:
            return await tx.follows.stop(follower, leader, action=action.value, now_ms=now_ms)

    async def begin(
        self,
        intents: Sequence[CopyIntent],
        *,
        skips: Sequence[Skip] = (),
        cursor: tuple[str, str, Cursor] | None = None,
        now_ms: int,
    ) -> list[CopyIntent]:
        new: list[CopyIntent] = []
        async with self.store.transaction() as tx:
            for intent in intents:
                if await tx.journal.write_intent(_entry(intent, now_ms)):
                    new.append(intent)
            for skip in skips:
                await tx.skips.record(_skip_record(skip, now_ms))
            if cursor is not None:
                follower, leader, c = cursor
                await tx.cursors.advance(
                    follower, leader, time_ms=c.time_ms, fill_key=c.fill_ref, now_ms=now_ms
                )
        return new

    async def mark_sent(self, cloid: str, *, now_ms: int) -> None:
        async with self.store.transaction() as tx:
            await tx.journal.transition(cloid, JournalState.SENT, now_ms=now_ms)

    async def record_outcome(self, outcome: OrderOutcome, *, now_ms: int) -> bool:
        async with self.store.transaction() as tx:
            return await tx.journal.transition(
                outcome.cloid,
                JournalState(outcome.state.value),
                now_ms=now_ms,
                oid=outcome.oid,
                filled_size=outcome.filled_size,
                avg_price=outcome.avg_price,
                error=outcome.error,
            )

    async def unresolved(self) -> list[PendingEntry]:
        async with self.store.transaction() as tx:
            return [_pending(e) for e in await tx.journal.unresolved()]

    async def record_skip(self, skip: Skip, *, now_ms: int) -> bool:
        async with self.store.transaction() as tx:
            return await tx.skips.record(_skip_record(skip, now_ms))

    async def handled(self, follower: str, leader: str, fill_ref: str) -> bool:
        async with self.store.transaction() as tx:
            if await tx.journal.for_source(follower, leader, fill_ref):
                return True
            found = await tx.session.scalar(
                select(SkipRow.id)
                .where(
                    SkipRow.follower == follower.lower(),
                    SkipRow.leader == leader.lower(),
                    SkipRow.source_fill_key == fill_ref,
                )
                .limit(1)
            )
            return found is not None

    async def record_fill(self, fill: Fill, *, leader: str | None) -> RecordedCopyFill | None:
        async with self.store.transaction() as tx:
            if not await tx.fills.record_fill(fill, leader=leader):
                return None
            recorded = await tx.fills.get(fill)
            attributed = recorded.leader if recorded is not None else None
            if attributed is None:
                return RecordedCopyFill(None, None)
            position = await self._move(tx, fill, attributed)
        return RecordedCopyFill(attributed, position)

    async def _move(self, tx: UnitOfWork, fill: Fill, leader: str) -> HeldPosition:
        follower = fill.address.lower()
        old = await tx.positions.get(follower, fill.coin, leader, for_update=True)
        held = _held(old) if old is not None else HeldPosition(follower, leader, fill.coin)
        new = apply_fill(held, fill)
        await tx.positions.put(
            PositionRecord(
                follower, fill.coin, leader, new.size, new.entry_notional, new.realized_pnl, fill.time_ms
            )
        )
        return new

    async def cursor(self, follower: str, leader: str) -> Cursor | None:
        async with self.store.transaction() as tx:
            c = await tx.cursors.get(follower, leader)
        return None if c is None else Cursor(c.last_time_ms, c.last_fill_key)

    async def advance(self, follower: str, leader: str, cursor: Cursor, *, now_ms: int) -> bool:
        async with self.store.transaction() as tx:
            return await tx.cursors.advance(
                follower, leader, time_ms=cursor.time_ms, fill_key=cursor.fill_ref, now_ms=now_ms
            )

    async def positions(self, follower: str) -> list[HeldPosition]:
        async with self.store.transaction() as tx:
            return [_held(r) for r in await tx.positions.for_follower(follower)]

    async def last_fill_ms(self, follower: str) -> int | None:
        async with self.store.transaction() as tx:
            return await tx.fills.last_time_ms(follower)

    async def leader_statuses(self) -> dict[str, LeaderStatus]:
        async with self.store.transaction() as tx:
            return {s.leader: s for s in await tx.leaders.all()}

    async def save_leader_status(self, status: LeaderStatus, *, now_ms: int) -> None:
        async with self.store.transaction() as tx:
            await tx.leaders.put(status, now_ms=now_ms)

    async def record_state_change(self, account: str, change: StateChange) -> None:
        async with self.store.transaction() as tx:
            await tx.risk_events.record(account, change)

    async def latest_state(self, account: str) -> TradingState | None:
        async with self.store.transaction() as tx:
            return await tx.risk_events.latest_state(account)


def _entry(intent: CopyIntent, now_ms: int) -> JournalEntry:
    return JournalEntry(
        cloid=intent.cloid,
        follower=intent.follower,
        leader=intent.leader,
        coin=intent.coin,
        side=intent.side,
        size=intent.size,
        limit_price=intent.limit_price,
        reduce_only=intent.reduce_only,
        leg=intent.leg,
        source_fill_key=intent.fill_key or None,
        created_ms=now_ms,
        tif=intent.tif,
    )
