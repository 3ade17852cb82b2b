"""Store fixtures: every test here runs on SQLite (a file in tmp) and on a real PostgreSQL.

PostgreSQL: ``HYPERFOLLOW_TEST_PG_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``)
names a server and a database to connect to; each test module gets a fresh database of its own there,
dropped afterwards. A PostgreSQL that cannot be reached fails the tests (it is never skipped).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from hyperfollow.store import Store, migrate_async

PG_URL = os.environ.get("HYPERFOLLOW_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
HOW_TO_START = (
    "start it with `bash scripts/services.sh` (runs `pg_ctlcluster <version> main start`), "
    "or point HYPERFOLLOW_TEST_PG_URL at a PostgreSQL you can create databases on"
)


def _dsn(url: URL) -> str:
    """The asyncpg DSN of an SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(url: URL, sql: str) -> None:
    try:
        conn = await asyncpg.connect(_dsn(url), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {url.render_as_string()} is not reachable ({exc!r}): {HOW_TO_START}")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this module (dropped afterwards)."""
    base = make_url(PG_URL)
    name = f"hf_test_{secrets.token_hex(6)}"
    asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database URL with no schema yet, one per module and backend."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("store") / "hyperfollow.db"
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture(scope="module")
def migrated_url(store_url: str) -> str:
    """``store_url`` with the schema at the latest migration (once per module)."""
    asyncio.run(migrate_async(store_url))
    return store_url


@pytest.fixture
async def store(migrated_url: str) -> AsyncIterator[Store]:
    """A store on the module's migrated database (shared by its tests: use unique addresses)."""
    opened = Store.open(migrated_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def new_address() -> Callable[[], str]:
    """Makes random account addresses, so tests sharing a database never see each other's rows."""
    return lambda: "0x" + secrets.token_hex(20)
