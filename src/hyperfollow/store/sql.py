"""The few statements whose spelling differs between SQLite and PostgreSQL (``INSERT ... ON CONFLICT``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


def dialect_name(session: AsyncSession) -> str:
    """``"sqlite"`` or ``"postgresql"``: the dialect of the session's engine."""
    return session.get_bind().dialect.name


def upsert_insert(session: AsyncSession, model: type[DeclarativeBase]) -> Any:
    """An ``INSERT`` for ``model`` that has ``on_conflict_do_nothing`` / ``on_conflict_do_update``.

    Both dialects' insert constructs share that API (and ``excluded``); only the import differs.
    """
    table = model.__table__
    assert isinstance(table, Table)
    if dialect_name(session) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def rowcount(result: Any) -> int:
    """Rows matched by an INSERT/UPDATE (both drivers report it for ON CONFLICT and conditional UPDATE)."""
    count = getattr(result, "rowcount", -1)
    return int(count)
