"""Follows, leader cursors, attributed positions and the skip log."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from hyperfollow.store import PositionRecord, SkipRecord, Store


async def test_follow_lifecycle(store: Store, new_address: Callable[[], str]) -> None:
    follower, leader = new_address(), new_address()
    settings = {"sizing": "equity_ratio", "copy_ratio": Decimal("0.5"), "max_leverage": 3, "reverse": False}
    async with store.transaction() as tx:
        made = await tx.follows.upsert(follower.upper().replace("0X", "0x"), leader, settings, now_ms=10)
    assert (made.follower, made.leader, made.settings, made.active, made.created_ms) == (
        follower, leader, settings, True, 10,
    )  # fmt: skip
    async with store.transaction() as tx:
        assert await tx.follows.stop(follower, leader, action="close", now_ms=20) is True
        assert await tx.follows.stop(follower, leader, action="keep", now_ms=21) is False  # already stopped
        stopped = await tx.follows.get(follower, leader)
        assert [f.leader for f in await tx.follows.active(follower)] == []
    assert stopped is not None
    assert (stopped.active, stopped.stopped_ms, stopped.stop_action) == (False, 20, "close")

    again = {**settings, "copy_ratio": Decimal("0.25")}
    async with store.transaction() as tx:
        restarted = await tx.follows.upsert(follower, leader, again, now_ms=30)
        assert [f.id for f in await tx.follows.active(follower)] == [made.id]
    assert (restarted.id, restarted.created_ms, restarted.active, restarted.stopped_ms) == (
        made.id,
        10,
        True,
        None,
    )
    assert restarted.settings["copy_ratio"] == Decimal("0.25")


async def test_leader_cursor_only_moves_forward(store: Store, new_address: Callable[[], str]) -> None:
    follower, leader = new_address(), new_address()
    async with store.transaction() as tx:
        assert await tx.cursors.get(follower, leader) is None
        assert await tx.cursors.advance(follower, leader, time_ms=1_000, fill_key="tid:1", now_ms=5)
        assert await tx.cursors.advance(follower, leader, time_ms=2_000, fill_key="tid:2", now_ms=6)
        # backfill delivering an older fill after the stream's newer one: the cursor stays
        assert await tx.cursors.advance(follower, leader, time_ms=1_500, fill_key="tid:9", now_ms=7) is False
        # another fill of the same millisecond moves it (time is the order, the key says which)
        assert await tx.cursors.advance(follower, leader, time_ms=2_000, fill_key="tid:3", now_ms=8)
    async with store.transaction() as tx:
        cursor = await tx.cursors.get(follower, leader)
        everything = await tx.cursors.all()
    assert cursor is not None
    assert (cursor.last_time_ms, cursor.last_fill_key, cursor.updated_ms) == (2_000, "tid:3", 8)
    assert cursor in everything


async def test_positions_are_kept_per_leader(store: Store, new_address: Callable[[], str]) -> None:
    follower, alice, bob = new_address(), new_address(), new_address()
    a = PositionRecord(follower, "ETH", alice, Decimal("1.5"), Decimal("4500.75"), Decimal(0), 1)
    b = PositionRecord(follower, "ETH", bob, Decimal("-0.25"), Decimal("750.1"), Decimal("-3.2"), 1)
    async with store.transaction() as tx:
        await tx.positions.put(a)
        await tx.positions.put(b)
    closed = PositionRecord(follower, "ETH", alice, Decimal(0), Decimal(0), Decimal("12.345678"), 2)
    async with store.transaction() as tx:
        assert await tx.positions.get(follower, "ETH", alice, for_update=True) == a
        await tx.positions.put(closed)
    async with store.transaction() as tx:
        everything = await tx.positions.for_follower(follower)
        bobs = await tx.positions.for_follower(follower, leader=bob)
        assert await tx.positions.get(follower, "BTC", alice) is None
    assert sorted(everything, key=lambda p: p.leader) == sorted([closed, b], key=lambda p: p.leader)
    assert bobs == [b]


async def test_skip_log_round_trip(store: Store, new_address: Callable[[], str]) -> None:
    follower, leader = new_address(), new_address()
    small = SkipRecord(
        follower, leader, "SOL", "SKIP_MIN_NOTIONAL", time_ms=100,
        detail={"notional_usd": Decimal("7.4325"), "min_usd": 10, "leader_size": Decimal("12.5"),
                "ratio": Decimal("0.0039641")},
        source_fill_key="tid:100",
    )  # fmt: skip
    drift = SkipRecord(
        follower, leader, "SOL", "SKIP_PRICE_DRIFT", time_ms=200,
        detail={"leader_px": Decimal("148.12"), "mark_px": Decimal("150.61"), "max_drift_pct": Decimal("1")},
        source_fill_key="tid:101",
    )  # fmt: skip
    cooldown = SkipRecord(follower, leader, "SOL", "SKIP_COOLDOWN", time_ms=300, detail={"left_secs": 41})
    async with store.transaction() as tx:
        assert await tx.skips.record(small)
        assert await tx.skips.record(drift)
        assert await tx.skips.record(cooldown)
        assert await tx.skips.record(cooldown)  # no leader fill behind it: every decision is logged
        assert await tx.skips.record(small) is False  # the same leader fill skipped again after a restart
    async with store.transaction() as tx:
        logged = await tx.skips.for_follower(follower)
        since = await tx.skips.for_follower(follower, since_ms=200, limit=2)
        counts = await tx.skips.counts_by_reason(follower)
    assert [s.reason for s in logged] == [
        "SKIP_COOLDOWN",
        "SKIP_COOLDOWN",
        "SKIP_PRICE_DRIFT",
        "SKIP_MIN_NOTIONAL",
    ]
    first = logged[-1]
    assert first.id is not None
    assert (first.coin, first.time_ms, first.source_fill_key) == ("SOL", 100, "tid:100")
    assert first.detail == small.detail
    assert str(first.detail["notional_usd"]) == "7.4325"
    assert [s.time_ms for s in since] == [300, 300]
    assert counts == {"SKIP_MIN_NOTIONAL": 1, "SKIP_PRICE_DRIFT": 1, "SKIP_COOLDOWN": 2}
