"""Fills: each venue fill of a follower recorded exactly once, attributed to the leader that caused it.

The same fill arrives by WS push, by poll and by backfill after a restart; ``record_fill`` is an
``INSERT ... ON CONFLICT DO NOTHING`` on (address, fill key), so every path may call it and exactly one
call reports it as new, even when two sessions race (the unique index decides, not a prior SELECT).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hyperfollow.domain.model import Fill, Side
from hyperfollow.store.sql import rowcount, upsert_insert
from hyperfollow.store.tables import FillRow, JournalRow


@dataclass(frozen=True, slots=True)
class RecordedFill:
    """A stored fill and the leader whose copy caused it (None: not a copy, or unknown)."""

    fill: Fill
    leader: str | None


def _fill(row: FillRow) -> Fill:
    return Fill(
        address=row.address,
        coin=row.coin,
        side=Side(row.side),
        price=row.price,
        size=row.size,
        time_ms=row.time_ms,
        start_position=row.start_position,
        direction=row.dir,
        closed_pnl=row.closed_pnl,
        fee=row.fee,
        oid=row.oid,
        tid=row.tid,
        hash=row.hash,
        crossed=row.crossed,
        fee_token=row.fee_token,
        cloid=row.cloid,
        liquidation=row.liquidation,
        liquidated_user=row.liquidated_user,
        builder_fee=row.builder_fee,
    )


class FillRepository:
    """Recorded fills, in the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record_fill(self, fill: Fill, *, leader: str | None = None) -> bool:
        """Record ``fill`` unless already recorded; True if it was new.

        ``leader`` attributes the fill; when None, it is taken from the journal entry of the fill's
        cloid (in the same statement, so no read-then-write window), else left unknown.
        """
        attributed: Any = None
        if leader is not None:
            attributed = leader.lower()
        elif fill.cloid is not None:
            attributed = select(JournalRow.leader).where(JournalRow.cloid == fill.cloid).scalar_subquery()
        stmt = upsert_insert(self._session, FillRow).values(
            address=fill.address.lower(),
            fill_key=fill.ref,
            tid=fill.tid,
            coin=fill.coin,
            side=fill.side.value,
            price=fill.price,
            size=fill.size,
            time_ms=fill.time_ms,
            start_position=fill.start_position,
            dir=fill.direction,
            closed_pnl=fill.closed_pnl,
            fee=fill.fee,
            fee_token=fill.fee_token,
            builder_fee=fill.builder_fee,
            oid=fill.oid,
            cloid=fill.cloid,
            hash=fill.hash,
            crossed=fill.crossed,
            liquidation=fill.liquidation,
            liquidated_user=fill.liquidated_user,
            leader=attributed,
        )
        result = await self._session.execute(
            stmt.on_conflict_do_nothing(index_elements=["address", "fill_key"])
        )
        return rowcount(result) == 1

    async def get(self, fill: Fill) -> RecordedFill | None:
        """The stored version of ``fill`` (matched by its key), if recorded."""
        row = await self._session.scalar(
            select(FillRow)
            .where(FillRow.address == fill.address.lower(), FillRow.fill_key == fill.ref)
            .execution_options(populate_existing=True)
        )
        return None if row is None else RecordedFill(_fill(row), row.leader)

    async def for_address(
        self, address: str, *, since_ms: int | None = None, leader: str | None = None
    ) -> list[RecordedFill]:
        """An account's recorded fills (from ``since_ms`` inclusive, of one leader's copies), oldest first."""
        stmt = select(FillRow).where(FillRow.address == address.lower())
        if since_ms is not None:
            stmt = stmt.where(FillRow.time_ms >= since_ms)
        if leader is not None:
            stmt = stmt.where(FillRow.leader == leader.lower())
        rows = await self._session.scalars(
            stmt.order_by(FillRow.time_ms, FillRow.id).execution_options(populate_existing=True)
        )
        return [RecordedFill(_fill(r), r.leader) for r in rows]

    async def for_cloid(self, cloid: str) -> list[RecordedFill]:
        """The fills of one of our orders, oldest first."""
        rows = await self._session.scalars(
            select(FillRow)
            .where(FillRow.cloid == cloid)
            .order_by(FillRow.time_ms, FillRow.id)
            .execution_options(populate_existing=True)
        )
        return [RecordedFill(_fill(r), r.leader) for r in rows]

    async def last_time_ms(self, address: str) -> int | None:
        """The time of the account's latest recorded fill: where its own backfill resumes."""
        value = await self._session.scalar(
            select(func.max(FillRow.time_ms)).where(FillRow.address == address.lower())
        )
        return None if value is None else int(value)
