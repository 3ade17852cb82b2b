"""Positions attributed per leader: a follower's position in a coin split by the leader whose copies
built it, with entry notional and realized PnL, so PnL can be reported per leader.

The copy engine computes the new values; this repository only stores them. Read with
``for_update=True`` inside the transaction that writes, so two writers on PostgreSQL cannot lose an
update (SQLite's ``BEGIN IMMEDIATE`` already serialises writers).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hyperfollow.store.sql import upsert_insert
from hyperfollow.store.tables import PositionRow


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """Our position in ``coin`` attributed to ``leader`` (``size`` signed: > 0 long, < 0 short)."""

    follower: str
    coin: str
    leader: str
    size: Decimal
    entry_notional: Decimal
    realized_pnl: Decimal
    updated_ms: int


def _record(row: PositionRow) -> PositionRecord:
    return PositionRecord(
        follower=row.follower,
        coin=row.coin,
        leader=row.leader,
        size=row.size,
        entry_notional=row.entry_notional,
        realized_pnl=row.realized_pnl,
        updated_ms=row.updated_ms,
    )


class PositionRepository:
    """Per-leader positions, in the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(
        self, follower: str, coin: str, leader: str, *, for_update: bool = False
    ) -> PositionRecord | None:
        """One attributed position (None: never held). ``for_update`` locks the row until commit."""
        stmt = select(PositionRow).where(
            PositionRow.follower == follower.lower(),
            PositionRow.coin == coin,
            PositionRow.leader == leader.lower(),
        )
        if for_update:
            stmt = stmt.with_for_update()  # rendered on PostgreSQL; SQLite has no row locks (nor needs them)
        row = await self._session.scalar(stmt.execution_options(populate_existing=True))
        return None if row is None else _record(row)

    async def put(self, position: PositionRecord) -> None:
        """Store ``position`` (insert or replace)."""
        stmt = upsert_insert(self._session, PositionRow).values(
            follower=position.follower.lower(),
            coin=position.coin,
            leader=position.leader.lower(),
            size=position.size,
            entry_notional=position.entry_notional,
            realized_pnl=position.realized_pnl,
            updated_ms=position.updated_ms,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["follower", "coin", "leader"],
            set_={
                "size": stmt.excluded.size,
                "entry_notional": stmt.excluded.entry_notional,
                "realized_pnl": stmt.excluded.realized_pnl,
                "updated_ms": stmt.excluded.updated_ms,
            },
        )
        await self._session.execute(stmt)

    async def for_follower(self, follower: str, *, leader: str | None = None) -> list[PositionRecord]:
        """A follower's attributed positions (of one leader), by coin then leader; closed ones included."""
        stmt = select(PositionRow).where(PositionRow.follower == follower.lower())
        if leader is not None:
            stmt = stmt.where(PositionRow.leader == leader.lower())
        rows = await self._session.scalars(
            stmt.order_by(PositionRow.coin, PositionRow.leader).execution_options(populate_existing=True)
        )
        return [_record(r) for r in rows]
