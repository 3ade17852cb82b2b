"""Leader health records: per leader the copy engine's ``LeaderStatus`` (blacklist end, paused, peak
equity), so that a liquidated leader stays blacklisted across a restart."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hyperfollow.risk.leaders import LeaderStatus
from hyperfollow.store.sql import upsert_insert
from hyperfollow.store.tables import LeaderStatusRow


def _status(row: LeaderStatusRow) -> LeaderStatus:
    return LeaderStatus(
        leader=row.leader,
        peak_equity=row.peak_equity,
        paused=row.paused,
        blacklisted_until_ms=row.blacklisted_until_ms,
    )


class LeaderStatusRepository:
    """Leader statuses, one per leader (lower-case address), in the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def put(self, status: LeaderStatus, *, now_ms: int) -> None:
        """Store ``status`` (insert, or replace the leader's record)."""
        values = {
            "blacklisted_until_ms": status.blacklisted_until_ms,
            "paused": status.paused,
            "peak_equity": status.peak_equity,
            "updated_ms": now_ms,
        }
        stmt = upsert_insert(self._session, LeaderStatusRow).values(leader=status.leader.lower(), **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["leader"], set_={k: getattr(stmt.excluded, k) for k in values}
        )
        await self._session.execute(stmt)

    async def get(self, leader: str) -> LeaderStatus | None:
        """The leader's record, or ``None`` (never judged)."""
        row = await self._session.scalar(
            select(LeaderStatusRow)
            .where(LeaderStatusRow.leader == leader.lower())
            .execution_options(populate_existing=True)
        )
        return None if row is None else _status(row)

    async def all(self) -> list[LeaderStatus]:
        """Every leader's record, by leader."""
        rows = await self._session.scalars(
            select(LeaderStatusRow).order_by(LeaderStatusRow.leader).execution_options(populate_existing=True)
        )
        return [_status(r) for r in rows]
