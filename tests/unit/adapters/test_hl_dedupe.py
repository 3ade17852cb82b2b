"""FillDeduper: each fill once across push, poll and backfill, with bounded memory."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from hyperfollow.adapters.hyperliquid.dedupe import FillDeduper, fill_key
from hyperfollow.domain.model import Fill, Side

A = "0x" + "a" * 40
B = "0x" + "b" * 40


def fill(
    tid: int | None, time_ms: int, address: str = A, oid: int = 1, px: str = "100", hash_: str = "0x1"
) -> Fill:
    return Fill(
        address=address,
        coin="ETH",
        side=Side.BUY,
        price=Decimal(px),
        size=Decimal("0.1"),
        time_ms=time_ms,
        start_position=Decimal(0),
        direction="Open Long",
        closed_pnl=Decimal(0),
        fee=Decimal("0.01"),
        oid=oid,
        tid=tid,
        hash=hash_,
        crossed=True,
    )


def test_push_poll_and_backfill_copies_are_dropped() -> None:
    d = FillDeduper()
    push = [fill(1, 1000), fill(2, 1001)]
    poll = [fill(1, 1000), fill(2, 1001), fill(3, 1002)]  # overlapping window
    backfill = [fill(2, 1001), fill(3, 1002), fill(4, 1003)]
    assert d.accept_many(push) == push
    assert [f.tid for f in d.accept_many(poll)] == [3]
    assert [f.tid for f in d.accept_many(backfill)] == [4]
    assert d.accepted == 4
    assert d.dropped == 4
    assert d.watermark(A) == 1003


def test_the_same_tid_of_another_address_is_another_fill() -> None:
    d = FillDeduper()
    assert d.accept(fill(7, 1000, A))
    assert d.accept(fill(7, 1000, B))  # both sides of one trade share the tid
    assert not d.accept(fill(7, 1000, B))


def test_an_older_fill_missed_by_the_push_is_accepted_once() -> None:
    d = FillDeduper()
    assert d.accept(fill(10, 2000))
    late = fill(9, 1500)  # found by a backfill after a newer one was pushed
    assert d.accept(late)
    assert not d.accept(late)
    assert d.watermark(A) == 2000  # the watermark never moves back


def test_fills_without_tid_use_the_fallback_key() -> None:
    d = FillDeduper()
    a = fill(None, 1000, oid=5, px="100", hash_="0xaa")
    same = fill(None, 1000, oid=5, px="100", hash_="0xaa")
    other_px = fill(None, 1000, oid=5, px="101", hash_="0xaa")  # another fill of the same sweep
    assert fill_key(a) == fill_key(same) != fill_key(other_px)
    assert d.accept(a)
    assert not d.accept(same)
    assert d.accept(other_px)


def test_memory_is_bounded_and_forgotten_fills_stay_refused() -> None:
    d = FillDeduper(max_keys=100)
    fills = [fill(i, 1000 + i) for i in range(1000)]
    assert len(d.accept_many(fills)) == 1000
    assert d.remembered(A) == 100
    assert d.floor(A) == 1000 + 899  # the newest fill forgotten
    # a replay of anything already delivered is refused, remembered or not
    assert d.accept_many(fills) == []
    # a new fill above the floor is still accepted
    assert d.accept(fill(5000, 1950))
    assert d.remembered(A) == 100


def test_time_window_bounds_memory_too() -> None:
    d = FillDeduper(window_ms=50)
    d.accept_many([fill(i, 1000 + i) for i in range(200)])
    assert d.remembered(A) == 51  # times 1149..1199
    assert not d.accept(fill(3, 1003))  # below the window: counts as seen
    assert d.accept(fill(1000, 1190))  # inside it: a new tid is a new fill


def test_random_storm_delivers_each_fill_exactly_once() -> None:
    rng = random.Random(3)
    truth = [fill(i, 1000 + i // 3) for i in range(500)]
    offers = truth * 4  # push + poll + backfill + snapshot
    rng.shuffle(offers)
    d = FillDeduper()
    out = d.accept_many(offers)
    assert sorted(f.tid or 0 for f in out) == list(range(500))


def test_seen_and_watermark() -> None:
    d = FillDeduper()
    f = fill(1, 1000)
    assert not d.seen(f)
    assert d.watermark(A) is None
    d.accept(f)
    assert d.seen(f)
    assert d.watermark(A) == 1000


def test_max_keys_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        FillDeduper(max_keys=0)
