"""Follows: which follower copies which leader, with what settings, and whether it still does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hyperfollow.store.sql import rowcount, upsert_insert
from hyperfollow.store.tables import FollowRow


@dataclass(frozen=True, slots=True)
class FollowRecord:
    """A stored follow. ``settings`` is the copy engine's ``FollowSettings`` as a JSON dict."""

    id: int
    follower: str
    leader: str
    settings: dict[str, Any]
    active: bool
    created_ms: int
    stopped_ms: int | None = None
    stop_action: str | None = None  # "keep" or "close": what was done with our positions on stop


def _record(row: FollowRow) -> FollowRecord:
    return FollowRecord(
        id=row.id,
        follower=row.follower,
        leader=row.leader,
        settings=dict(row.settings),
        active=row.active,
        created_ms=row.created_ms,
        stopped_ms=row.stopped_ms,
        stop_action=row.stop_action,
    )


class FollowRepository:
    """Follows, in the caller's session (the caller commits)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def upsert(
        self, follower: str, leader: str, settings: Mapping[str, Any], *, now_ms: int
    ) -> FollowRecord:
        """Start following (or restart a stopped follow) with ``settings``; ``created_ms`` is kept."""
        values = {
            "follower": follower.lower(),
            "leader": leader.lower(),
            "settings": dict(settings),
            "active": True,
            "created_ms": now_ms,
            "stopped_ms": None,
            "stop_action": None,
        }
        stmt = upsert_insert(self._session, FollowRow).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["follower", "leader"],
            set_={
                "settings": stmt.excluded.settings,
                "active": True,
                "stopped_ms": None,
                "stop_action": None,
            },
        )
        await self._session.execute(stmt)
        found = await self.get(follower, leader)
        assert found is not None
        return found

    async def get(self, follower: str, leader: str) -> FollowRecord | None:
        """The follow of ``leader`` by ``follower``, active or not."""
        row = await self._session.scalar(
            select(FollowRow)
            .where(FollowRow.follower == follower.lower(), FollowRow.leader == leader.lower())
            .execution_options(populate_existing=True)
        )
        return None if row is None else _record(row)

    async def active(self, follower: str | None = None) -> list[FollowRecord]:
        """Active follows (of one follower, or all), oldest first."""
        stmt = select(FollowRow).where(FollowRow.active.is_(True)).order_by(FollowRow.id)
        if follower is not None:
            stmt = stmt.where(FollowRow.follower == follower.lower())
        rows = await self._session.scalars(stmt.execution_options(populate_existing=True))
        return [_record(r) for r in rows]

    async def stop(self, follower: str, leader: str, *, action: str, now_ms: int) -> bool:
        """Stop an active follow, noting ``action`` ("keep" or "close"); False if it was not active."""
        result = await self._session.execute(
            update(FollowRow)
            .where(
                FollowRow.follower == follower.lower(),
                FollowRow.leader == leader.lower(),
                FollowRow.active.is_(True),
            )
            .values(active=False, stopped_ms=now_ms, stop_action=action)
            .execution_options(synchronize_session=False)
        )
        return rowcount(result) == 1
