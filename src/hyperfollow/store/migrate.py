"""Run the Alembic migrations programmatically (no ``alembic.ini`` needed; one ships for the CLI).

``migrate_async`` runs inside an event loop (the app, async tests); ``migrate`` is its synchronous
twin for scripts. Both work on SQLite and PostgreSQL: the migration runs on a connection of our own
engine (same pragmas, same transaction handling), handed to ``env.py`` via ``config.attributes``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Connection, make_url

from hyperfollow.store.db import create_engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str | URL) -> Config:
    """An Alembic config for ``url`` pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation: a literal % in a password must be doubled
    cfg.set_main_option(
        "sqlalchemy.url", make_url(url).render_as_string(hide_password=False).replace("%", "%%")
    )
    return cfg


async def _run(url: str | URL, upgrade: bool, revision: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_command, alembic_config(url), upgrade, revision)
    finally:
        await engine.dispose()


def _command(connection: Connection, cfg: Config, upgrade: bool, revision: str) -> None:
    cfg.attributes["connection"] = connection
    if upgrade:
        command.upgrade(cfg, revision)
    else:
        command.downgrade(cfg, revision)


async def migrate_async(url: str | URL, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (default: the latest)."""
    await _run(url, True, revision)


async def downgrade_async(url: str | URL, revision: str = "base") -> None:
    """Downgrade the database at ``url`` to ``revision`` (default: no tables at all)."""
    await _run(url, False, revision)


def migrate(url: str | URL, revision: str = "head") -> None:
    """Synchronous :func:`migrate_async`, for scripts and the CLI (not from inside an event loop)."""
    asyncio.run(migrate_async(url, revision))
