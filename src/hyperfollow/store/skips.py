"""The skip log: every copy not taken, with its reason and the numbers behind the decision.

``detail`` is a JSON dict; Decimals in it are stored as exact JSON numbers and come back as
``Decimal`` (integral ones as ``int``), see ``types.json_dumps``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hyperfollow.store.sql import rowcount, upsert_insert
from hyperfollow.store.tables import SkipRow


@dataclass(frozen=True, slots=True)
class SkipRecord:
    """A skipped copy. ``reason`` is a ``SkipReason`` value (e.g. "SKIP_MIN_NOTIONAL")."""

    follower: str
    leader: str
    coin: str
    reason: str
    time_ms: int
    detail: Mapping[str, Any] = field(default_factory=dict)
    source_fill_key: str | None = None  # the leader fill skipped (None for delta-sync decisions)
    id: int | None = None  # set when read back


def _record(row: SkipRow) -> SkipRecord:
    return SkipRecord(
        follower=row.follower,
        leader=row.leader,
        coin=row.coin,
        reason=row.reason,
        time_ms=row.time_ms,
        detail=dict(row.detail),
        source_fill_key=row.source_fill_key,
        id=row.id,
    )


class SkipRepository:
    """The skip log, in the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(self, skip: SkipRecord) -> bool:
        """Log ``skip``; False if this leader fill was already skipped for this reason (a replay)."""
        stmt = upsert_insert(self._session, SkipRow).values(
            follower=skip.follower.lower(),
            leader=skip.leader.lower(),
            coin=skip.coin,
            reason=skip.reason,
            detail=dict(skip.detail),
            source_fill_key=skip.source_fill_key,
            time_ms=skip.time_ms,
        )
        stmt = stmt.on_conflict_do_nothing(index_elements=["follower", "leader", "source_fill_key", "reason"])
        return rowcount(await self._session.execute(stmt)) == 1

    async def for_follower(
        self,
        follower: str,
        *,
        leader: str | None = None,
        since_ms: int | None = None,
        limit: int | None = None,
    ) -> list[SkipRecord]:
        """A follower's skips (of one leader, from ``since_ms``), newest first."""
        stmt = select(SkipRow).where(SkipRow.follower == follower.lower())
        if leader is not None:
            stmt = stmt.where(SkipRow.leader == leader.lower())
        if since_ms is not None:
            stmt = stmt.where(SkipRow.time_ms >= since_ms)
        stmt = stmt.order_by(SkipRow.time_ms.desc(), SkipRow.id.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        rows = await self._session.scalars(stmt.execution_options(populate_existing=True))
        return [_record(r) for r in rows]

    async def counts_by_reason(self, follower: str | None = None) -> dict[str, int]:
        """How many copies were skipped, per reason (of one follower, or all)."""
        stmt = select(SkipRow.reason, func.count()).group_by(SkipRow.reason)
        if follower is not None:
            stmt = stmt.where(SkipRow.follower == follower.lower())
        rows = await self._session.execute(stmt)
        return {str(row[0]): int(row[1]) for row in rows}
