"""Migrations build the schema from nothing and take it down again; the ORM tables match them."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from hyperfollow.store import downgrade_async, migrate, migrate_async
from hyperfollow.store.db import create_engine
from hyperfollow.store.tables import Base

TABLES = {
    "follows",
    "order_journal",
    "fills",
    "leader_cursor",
    "positions",
    "skips",
    "paper_accounts",
    "paper_records",
    "risk_holdings",
    "risk_events",
    "leader_status",
}


async def _inspect(url: str) -> tuple[set[str], str | None, list[Any]]:
    engine = create_engine(url)

    def look(conn: Connection) -> tuple[set[str], str | None, list[Any]]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        names = set(inspect(conn).get_table_names())
        diffs = compare_metadata(context, Base.metadata) if names >= TABLES else []
        return names, context.get_current_revision(), diffs

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(look)
    finally:
        await engine.dispose()


async def test_upgrade_from_nothing_then_downgrade_to_base(store_url: str) -> None:
    await downgrade_async(store_url)  # the module's database may have been migrated by another test
    names, revision, _ = await _inspect(store_url)
    assert not names & TABLES
    assert revision is None

    await migrate_async(store_url)
    names, revision, diffs = await _inspect(store_url)
    assert names >= TABLES | {"alembic_version"}
    assert revision == "0004"
    assert diffs == [], f"tables.py and the migrations disagree: {diffs}"

    await migrate_async(store_url)  # at head already: a no-op
    await downgrade_async(store_url, "base")
    names, revision, _ = await _inspect(store_url)
    assert not names & TABLES
    assert revision is None

    await migrate_async(store_url)  # and back up, so the module's database ends migrated
    names, revision, _ = await _inspect(store_url)
    assert names >= TABLES
    assert revision == "0004"


def test_sync_migrate_for_scripts(store_url: str) -> None:
    """``migrate`` (no event loop running) upgrades too, and running it again changes nothing."""
    migrate(store_url)
    migrate(store_url)
    names, revision, diffs = asyncio.run(_inspect(store_url))
    assert names >= TABLES
    assert (revision, diffs) == ("0004", [])
