"""Leader cursors: per (follower, leader) the last leader fill seen, where backfill resumes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hyperfollow.store.sql import rowcount, upsert_insert
from hyperfollow.store.tables import LeaderCursorRow


@dataclass(frozen=True, slots=True)
class LeaderCursor:
    """The last leader fill (time and ``fill_key``) a follow has handled."""

    follower: str
    leader: str
    last_time_ms: int
    last_fill_key: str
    updated_ms: int


def _cursor(row: LeaderCursorRow) -> LeaderCursor:
    return LeaderCursor(row.follower, row.leader, row.last_time_ms, row.last_fill_key, row.updated_ms)


class LeaderCursorRepository:
    """Leader cursors, in the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def advance(self, follower: str, leader: str, *, time_ms: int, fill_key: str, now_ms: int) -> bool:
        """Set the cursor to (``time_ms``, ``fill_key``) unless it is already later; True if it moved.

        Never moves back: a late, older leader fill (backfill racing the stream) leaves it where it is.
        Several fills share a millisecond, so backfill resumes *at* ``last_time_ms`` and relies on the
        journal's cloids and the skip log to ignore what it already handled.
        """
        stmt = upsert_insert(self._session, LeaderCursorRow).values(
            follower=follower.lower(),
            leader=leader.lower(),
            last_time_ms=time_ms,
            last_fill_key=fill_key,
            updated_ms=now_ms,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["follower", "leader"],
            set_={
                "last_time_ms": stmt.excluded.last_time_ms,
                "last_fill_key": stmt.excluded.last_fill_key,
                "updated_ms": stmt.excluded.updated_ms,
            },
            where=LeaderCursorRow.last_time_ms <= stmt.excluded.last_time_ms,
        )
        return rowcount(await self._session.execute(stmt)) == 1

    async def get(self, follower: str, leader: str) -> LeaderCursor | None:
        """The cursor of one follow, if it ever saw a leader fill."""
        row = await self._session.scalar(
            select(LeaderCursorRow)
            .where(LeaderCursorRow.follower == follower.lower(), LeaderCursorRow.leader == leader.lower())
            .execution_options(populate_existing=True)
        )
        return None if row is None else _cursor(row)

    async def all(self) -> list[LeaderCursor]:
        """Every cursor."""
        rows = await self._session.scalars(
            select(LeaderCursorRow)
            .order_by(LeaderCursorRow.follower, LeaderCursorRow.leader)
            .execution_options(populate_existing=True)
        )
        return [_cursor(r) for r in rows]
