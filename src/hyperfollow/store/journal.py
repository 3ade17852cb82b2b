"""The order journal: every order we decide to send, written with its cloid *before* it is sent.

A restart reads the journal to learn which orders may be at the venue (``unresolved``) and reconciles
them by cloid before trading; the cloid is derived from what caused the order, so re-deciding the same
leader fill finds the existing intent (``write_intent`` returns False) instead of sending twice.

States only move forward (``RANK``); ``transition`` is a conditional UPDATE, so a late or repeated
outcome (a SENT written after the fill's FILLED) is a no-op rather than a regression.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hyperfollow.domain.model import Side, Tif
from hyperfollow.store.sql import rowcount, upsert_insert
from hyperfollow.store.tables import JournalRow


class JournalState(StrEnum):
    INTENT = "INTENT"  # decided and written; maybe not sent (a crash here: the venue never saw it)
    SENT = "SENT"  # handed to the venue; no answer yet
    UNKNOWN = "UNKNOWN"  # the send's outcome is unknown (timeout, crash): reconcile by cloid, never resend
    ACKED = "ACKED"  # resting at the venue (maybe partly filled)
    FILLED = "FILLED"
    REJECTED = "REJECTED"
    CANCELED = "CANCELED"  # cancelled (an IOC's unfilled rest, a maker timeout, a stop)

    @property
    def terminal(self) -> bool:
        return RANK[self] == _TERMINAL


_TERMINAL = 4
RANK: dict[JournalState, int] = {
    JournalState.INTENT: 0,
    JournalState.SENT: 1,
    JournalState.UNKNOWN: 2,
    JournalState.ACKED: 3,
    JournalState.FILLED: _TERMINAL,
    JournalState.REJECTED: _TERMINAL,
    JournalState.CANCELED: _TERMINAL,
}


def predecessors(state: JournalState) -> list[JournalState]:
    """The states a row may be in for ``transition`` to ``state`` to apply.

    Strictly lower ranks, plus ``state`` itself when it is not terminal (an ACKED order's fill progress).
    """
    rank = RANK[state]
    allowed = [s for s, r in RANK.items() if r < rank]
    if rank != _TERMINAL:
        allowed.append(state)
    return allowed


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journalled order. ``leader`` is None for orders no leader caused (e.g. a manual close)."""

    cloid: str
    follower: str
    leader: str | None
    coin: str
    side: Side
    size: Decimal
    limit_price: Decimal
    reduce_only: bool
    leg: str
    source_fill_key: str | None
    created_ms: int
    tif: Tif = Tif.IOC
    state: JournalState = JournalState.INTENT
    oid: int | None = None
    filled_size: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    error: str | None = None
    updated_ms: int | None = None  # None: created_ms


def _entry(row: JournalRow) -> JournalEntry:
    return JournalEntry(
        cloid=row.cloid,
        follower=row.follower,
        leader=row.leader,
        coin=row.coin,
        side=Side(row.side),
        size=row.size,
        limit_price=row.limit_price,
        reduce_only=row.reduce_only,
        leg=row.leg,
        source_fill_key=row.source_fill_key,
        created_ms=row.created_ms,
        tif=Tif(row.tif),
        state=JournalState(row.state),
        oid=row.oid,
        filled_size=row.filled_size,
        avg_price=row.avg_price,
        error=row.error,
        updated_ms=row.updated_ms,
    )


class JournalRepository:
    """The order journal, in the caller's session. Commit the intent before sending the order."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def write_intent(self, entry: JournalEntry) -> bool:
        """Insert ``entry`` as an INTENT unless its cloid is already journalled; True if it was new.

        False means this order was already decided (a retry or a restart): read it with ``get`` and
        continue from its state; never send it again blindly.
        """
        stmt = upsert_insert(self._session, JournalRow).values(
            cloid=entry.cloid,
            follower=entry.follower.lower(),
            leader=None if entry.leader is None else entry.leader.lower(),
            coin=entry.coin,
            side=entry.side.value,
            size=entry.size,
            limit_price=entry.limit_price,
            reduce_only=entry.reduce_only,
            tif=entry.tif.value,
            leg=entry.leg,
            source_fill_key=entry.source_fill_key,
            state=JournalState.INTENT.value,
            oid=None,
            filled_size=Decimal(0),
            avg_price=None,
            error=None,
            created_ms=entry.created_ms,
            updated_ms=entry.created_ms,
        )
        result = await self._session.execute(stmt.on_conflict_do_nothing(index_elements=["cloid"]))
        return rowcount(result) == 1

    async def transition(
        self,
        cloid: str,
        state: JournalState,
        *,
        now_ms: int,
        oid: int | None = None,
        filled_size: Decimal | None = None,
        avg_price: Decimal | None = None,
        error: str | None = None,
    ) -> bool:
        """Move ``cloid`` to ``state`` (and set the given outcome fields) if that is forward.

        Returns False, changing nothing, when the row is already at or past ``state`` (or is absent).
        """
        values: dict[str, Any] = {"state": state.value, "updated_ms": now_ms}
        if oid is not None:
            values["oid"] = oid
        if filled_size is not None:
            values["filled_size"] = filled_size
        if avg_price is not None:
            values["avg_price"] = avg_price
        if error is not None:
            values["error"] = error
        result = await self._session.execute(
            update(JournalRow)
            .where(
                JournalRow.cloid == cloid,
                JournalRow.state.in_([s.value for s in predecessors(state)]),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return rowcount(result) == 1

    async def get(self, cloid: str) -> JournalEntry | None:
        """The entry for ``cloid``, if journalled."""
        row = await self._session.scalar(
            select(JournalRow).where(JournalRow.cloid == cloid).execution_options(populate_existing=True)
        )
        return None if row is None else _entry(row)

    async def unresolved(self, follower: str | None = None) -> list[JournalEntry]:
        """Entries not in a terminal state (oldest first): what a restart must reconcile by cloid."""
        open_states = [s.value for s in JournalState if not s.terminal]
        stmt = select(JournalRow).where(JournalRow.state.in_(open_states)).order_by(JournalRow.id)
        if follower is not None:
            stmt = stmt.where(JournalRow.follower == follower.lower())
        rows = await self._session.scalars(stmt.execution_options(populate_existing=True))
        return [_entry(r) for r in rows]

    async def for_source(self, follower: str, leader: str, source_fill_key: str) -> list[JournalEntry]:
        """Every order one leader fill caused for ``follower`` (its legs), oldest first."""
        rows = await self._session.scalars(
            select(JournalRow)
            .where(
                JournalRow.follower == follower.lower(),
                JournalRow.leader == leader.lower(),
                JournalRow.source_fill_key == source_fill_key,
            )
            .order_by(JournalRow.id)
            .execution_options(populate_existing=True)
        )
        return [_entry(r) for r in rows]

    async def recent(self, follower: str, limit: int = 50) -> list[JournalEntry]:
        """The follower's latest entries, newest first."""
        rows = await self._session.scalars(
            select(JournalRow)
            .where(JournalRow.follower == follower.lower())
            .order_by(JournalRow.id.desc())
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        return [_entry(r) for r in rows]
