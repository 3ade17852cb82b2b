"""``Store``: one database, and transactions that hand out every repository on one session.

    store = Store.open("sqlite+aiosqlite:///hyperfollow.db")
    async with store.transaction() as tx:          # committed when the block exits, rolled back on error
        if await tx.journal.write_intent(entry):
            ...
    # only now is the intent durable: send the order after the block, never inside it

Things that must agree after a crash (a fill, the position it moves, the journal state and the leader
cursor) belong in one transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hyperfollow.store.cursors import LeaderCursorRepository
from hyperfollow.store.db import create_engine, session_factory
from hyperfollow.store.fills import FillRepository
from hyperfollow.store.follows import FollowRepository
from hyperfollow.store.journal import JournalRepository
from hyperfollow.store.leaders import LeaderStatusRepository
from hyperfollow.store.migrate import migrate_async
from hyperfollow.store.positions import PositionRepository
from hyperfollow.store.risk import HoldingRepository, RiskEventRepository
from hyperfollow.store.skips import SkipRepository


@dataclass(slots=True)
class UnitOfWork:
    """The repositories of one transaction (all on ``session``)."""

    session: AsyncSession
    follows: FollowRepository = field(init=False)
    journal: JournalRepository = field(init=False)
    fills: FillRepository = field(init=False)
    cursors: LeaderCursorRepository = field(init=False)
    positions: PositionRepository = field(init=False)
    skips: SkipRepository = field(init=False)
    holdings: HoldingRepository = field(init=False)
    risk_events: RiskEventRepository = field(init=False)
    leaders: LeaderStatusRepository = field(init=False)

    def __post_init__(self) -> None:
        self.follows = FollowRepository(self.session)
        self.journal = JournalRepository(self.session)
        self.fills = FillRepository(self.session)
        self.cursors = LeaderCursorRepository(self.session)
        self.positions = PositionRepository(self.session)
        self.skips = SkipRepository(self.session)
        self.holdings = HoldingRepository(self.session)
        self.risk_events = RiskEventRepository(self.session)
        self.leaders = LeaderStatusRepository(self.session)


class Store:
    """A database (engine + session factory) handing out transactions."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(engine)

    @classmethod
    def open(cls, url: str | URL, **engine_kwargs: Any) -> Store:
        """A store on ``url`` (the schema is not touched: see ``open_migrated``)."""
        return cls(create_engine(url, **engine_kwargs))

    @classmethod
    async def open_migrated(cls, url: str | URL, **engine_kwargs: Any) -> Store:
        """Upgrade ``url``'s schema to the latest migration, then open it."""
        await migrate_async(url)
        return cls.open(url, **engine_kwargs)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        """One transaction: commits when the block exits normally, rolls back if it raises."""
        async with self.sessions() as session, session.begin():
            yield UnitOfWork(session)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
