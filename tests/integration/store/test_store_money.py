"""Money is stored exactly on both backends (SQLite's NUMERIC would not be: proven below)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from hyperfollow.store import PositionRecord, SkipRecord, Store
from hyperfollow.store.db import create_engine

AMOUNTS = [
    "0.000001",
    "123456789.123456",
    "1234567890.123456789012345678",  # 28 significant digits: a float keeps ~17
    "-98765.4321",
    "0.00000001",
    "1.50",  # the scale the venue sent is kept
    "0",
    "-0.1",
]


@pytest.mark.parametrize("text", AMOUNTS)
async def test_money_round_trips_exactly(store: Store, new_address: Callable[[], str], text: str) -> None:
    amount = Decimal(text)
    follower, leader = new_address(), new_address()
    async with store.transaction() as tx:
        await tx.positions.put(
            PositionRecord(follower, "BTC", leader, amount, amount * 2, -amount, updated_ms=1)
        )
    async with store.transaction() as tx:
        got = await tx.positions.get(follower, "BTC", leader)
    assert got is not None
    assert isinstance(got.size, Decimal)
    assert got.size == amount
    assert str(got.size) == str(amount)  # same digits and exponent, not just equal
    assert got.entry_notional == amount * 2
    assert got.realized_pnl == -amount


async def test_money_refuses_floats(store: Store, new_address: Callable[[], str]) -> None:
    follower, leader = new_address(), new_address()
    with pytest.raises(sa.exc.StatementError, match="Decimal"):
        async with store.transaction() as tx:
            await tx.positions.put(
                PositionRecord(follower, "BTC", leader, 0.1, Decimal(0), Decimal(0), 1)  # type: ignore[arg-type]
            )


async def test_json_details_keep_their_numbers(store: Store, new_address: Callable[[], str]) -> None:
    follower, leader = new_address(), new_address()
    detail = {
        "notional_usd": Decimal("9.87654321"),
        "min_usd": Decimal("10"),
        "ratio": Decimal("0.000001"),
        "big": Decimal("123456789.123456"),
        "coin": "BTC",
        "levels": [Decimal("1.10"), 3],
        "ok": False,
        "none": None,
    }
    async with store.transaction() as tx:
        await tx.skips.record(SkipRecord(follower, leader, "BTC", "SKIP_MIN_NOTIONAL", 5, detail, "tid:1"))
    async with store.transaction() as tx:
        [got] = await tx.skips.for_follower(follower)
    assert got.detail == detail
    assert isinstance(got.detail["notional_usd"], Decimal)
    assert str(got.detail["ratio"]) == "0.000001"
    assert str(got.detail["levels"][0]) == "1.10"


async def test_plain_numeric_on_sqlite_loses_digits(tmp_path: Path) -> None:
    """Why ``Money`` exists: SQLite gives NUMERIC columns float affinity."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'naive.db'}")
    meta = sa.MetaData()
    naive = sa.Table("naive", meta, sa.Column("v", sa.Numeric(38, 18)))
    value = Decimal("1234567890.123456789")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(meta.create_all)
            await conn.execute(naive.insert().values(v=value))
        async with engine.connect() as conn:
            stored = await conn.scalar(sa.select(naive.c.v))
    finally:
        await engine.dispose()
    assert stored != value
