"""Engine and session factory from a database URL: SQLite (aiosqlite) or PostgreSQL (asyncpg).

SQLite is set up for one process with many coroutines and for surviving ``kill -9``:
- WAL journal: readers never block the writer; a commit is durable once it returns (``synchronous=NORMAL``
  loses nothing on a process crash, only possibly the last commits on a power cut).
- ``foreign_keys=ON`` and a busy timeout, so a second writer waits instead of failing.
- Every transaction starts with ``BEGIN IMMEDIATE``. The sqlite3 driver's own ("legacy") transaction
  handling begins lazily and only on DML; a transaction that reads and then writes can then fail
  with "database is locked" when another connection wrote in between, and busy_timeout cannot help
  (SQLite refuses the lock upgrade to avoid a deadlock). Taking the write lock at BEGIN makes writers
  queue on the busy timeout instead. Transactions must therefore stay short (no venue I/O inside).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from hyperfollow.store.types import json_dumps, json_loads

DEFAULT_URL = "sqlite+aiosqlite:///hyperfollow.db"
BUSY_TIMEOUT_MS = 30_000


def is_sqlite(url: str | URL) -> bool:
    """True when ``url`` names an SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str | URL = DEFAULT_URL, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` with our JSON codec and, on SQLite, the pragmas above.

    ``kwargs`` go to :func:`sqlalchemy.ext.asyncio.create_async_engine` (e.g. ``echo=True``).
    """
    parsed = make_url(url)
    kwargs.setdefault("json_serializer", json_dumps)
    kwargs.setdefault("json_deserializer", json_loads)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(parsed, **kwargs)
        _setup_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(parsed, **kwargs)


def _setup_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # hand transaction control to SQLAlchemy (see "begin" below)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine``; objects stay readable after commit (``expire_on_commit=False``)."""
    return async_sessionmaker(engine, expire_on_commit=False)
