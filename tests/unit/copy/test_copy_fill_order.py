"""The order of a leader's fills: the venue's trade ids (``tid``) of one order are not in the order the fills
moved the position, so the engine orders them by the ``startPosition`` chain (each fill's startPosition plus
its signed size is the next one's startPosition). An order's start is the chain's head and its end the
chain's tail; a cursor never takes a lower trade id for an older fill.
"""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal
from functools import cache
from itertools import pairwise
from typing import Any

import pytest
from copy_helpers import ETH, apply
from hand_feed import LEADER, HandWorld, leader_fill

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.copy.fills import coalesce, direction_of
from hyperfollow.copy.mirror import decide_mirror
from hyperfollow.copy.mirror_loop import order_groups
from hyperfollow.copy.model import FollowSettings, SizingMode
from hyperfollow.domain.model import Fill, Side
from shared_data import shared, shared_data

SLOTS = ["acc2", "acc3", "acc4", "acc6", "acc9"]
TENTH = FollowSettings(sizing=SizingMode.FIXED_MULTIPLIER, multiplier=Decimal("0.1"))


def D(x: str | int) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(str(x))


def _end(f: Fill) -> Decimal:
    return f.start_position + f.signed_size


# ---------------------------------------------------------------------- the recorded mainnet fills


@cache
def _raw_slots() -> dict[str, list[dict[str, Any]]]:
    doc = json.loads(
        gzip.decompress(shared("real/copytrader_audit_202607/exchange_leader_fills.json.gz").read_bytes())
    )
    return {q["slot"]: q["fills"] for q in doc["queries"]}


def wrong_orders(
    slot: str, raws: list[dict[str, Any]], given: list[dict[str, Any]] | None = None
) -> tuple[int, int, int, int]:
    """(orders, wrong start, wrong direction, wrong size) of the engine's merged orders (``parse.fills``,
    ``order_groups``, ``coalesce``) against the chain, the venue's list ``raws`` handed to the engine as
    ``given`` (the same fills in another order; default: as the venue listed them).

    The truth: the venue's own list is in position order per coin (checked here). The fills of an engine
    group that follow each other in that chain are one order: its start is the head's startPosition, its end
    the tail's end. A merged order missing, or one too many, counts as wrong in every respect."""
    venue = [parse.fill(f"0x{slot}", r) for r in raws]
    chain: dict[str, list[Fill]] = defaultdict(list)
    for f in venue:
        if chain[f.coin]:
            assert _end(chain[f.coin][-1]) == f.start_position, (slot, f)  # the recording is continuous
        chain[f.coin].append(f)
    place = {f.ref: i for coin_fills in chain.values() for i, f in enumerate(coin_fills)}
    orders = wrong_start = wrong_dir = wrong_size = 0
    for group in order_groups(parse.fills(f"0x{slot}", raws if given is None else given)):
        runs: list[list[Fill]] = []
        for f in sorted(group, key=lambda f: place[f.ref]):
            if runs and place[runs[-1][-1].ref] + 1 == place[f.ref]:
                runs[-1].append(f)
            else:
                runs.append([f])
        truth = [(r[0].start_position, _end(r[-1])) for r in runs]
        merged = coalesce(group)
        orders += len(truth)
        for i, (start, end) in enumerate(truth):
            got = merged[i] if i < len(merged) else None
            if got is None or got.start_position != start:
                wrong_start += 1
            if got is None or got.direction != direction_of(start, end):
                wrong_dir += 1
            if got is None or got.size != abs(end - start):
                wrong_size += 1
        extra = max(0, len(merged) - len(truth))
        wrong_start, wrong_dir, wrong_size = wrong_start + extra, wrong_dir + extra, wrong_size + extra
    return orders, wrong_start, wrong_dir, wrong_size


@shared_data
@pytest.mark.parametrize("slot", SLOTS)
def test_every_real_order_merges_to_the_start_size_and_direction_of_its_chain(slot: str) -> None:
    raws = _raw_slots()[slot]
    # the venue's own order, the newest-first order userFills answers in, and a shuffle: all the same
    shuffled = list(raws)
    random.Random(slot).shuffle(shuffled)
    for given in (raws, list(reversed(raws)), shuffled):
        orders, wrong_start, wrong_dir, wrong_size = wrong_orders(slot, raws, given)
        assert (wrong_start, wrong_dir, wrong_size) == (0, 0, 0), (slot, orders)
        # and the engine's orders follow each other: each starts where the previous one of its coin ended
        engine = [m for g in order_groups(parse.fills(f"0x{slot}", given)) for m in coalesce(g)]
        last: dict[str, Decimal] = {}
        for m in engine:
            if m.coin in last:
                assert last[m.coin] == m.start_position, (slot, m)
            last[m.coin] = m.start_position + m.signed_size


# ---------------------------------------------------------------------- hand-made orders


def _close_long_in_tid_order() -> list[Fill]:
    """A sell of 10 closing a long of 10 in three fills (10 -> 8 -> 5 -> 0) whose trade ids run the other
    way: sorted by tid, the last fill (5 -> 0) comes first."""
    return [
        leader_fill(100, 1_000, Side.SELL, "5", "5"),
        leader_fill(200, 1_000, Side.SELL, "2", "10"),
        leader_fill(300, 1_000, Side.SELL, "3", "8"),
    ]


def test_an_order_whose_trade_ids_run_backwards_merges_from_the_head_of_its_chain() -> None:
    [merged] = coalesce(_close_long_in_tid_order())
    assert (merged.start_position, merged.size, merged.side, merged.direction) == (
        D(10),
        D(10),
        Side.SELL,
        "Close Long",
    )
    assert merged.ref == "tid:200"  # the head's ids: the same cloid whatever order the fills came in


def test_a_close_read_in_tid_order_closes_ours_and_opens_nothing() -> None:
    [merged] = coalesce(_close_long_in_tid_order())
    decision = decide_mirror(
        merged, leader_equity=D(100_000), follower_equity=D(10_000), follower_position=D(1), mark=D(3000),
        instrument=ETH, settings=TENTH, follower="0xf", leader=LEADER,
    )  # fmt: skip
    assert apply(D(1), decision) == 0  # flat like the leader, never short


def test_a_broken_chain_is_merged_in_pieces_that_each_keep_their_own_start() -> None:
    fills = _close_long_in_tid_order()
    missing = [f for f in fills if f.tid != 300]  # 8 -> 5 never arrived
    pieces = coalesce(missing)
    assert [(p.start_position, p.size, p.direction) for p in pieces] == [
        (D(10), D(2), "Close Long"),
        (D(5), D(5), "Close Long"),
    ]


def test_the_adapter_lists_each_coin_in_position_order_within_a_millisecond() -> None:
    raws = [
        {"coin": "ETH", "px": "3000", "sz": "5", "side": "A", "time": 1000, "startPosition": "5",
         "dir": "Close Long", "closedPnl": "0", "hash": "0x1", "oid": 1, "crossed": True, "fee": "0",
         "tid": 100},
        {"coin": "BTC", "px": "60000", "sz": "1", "side": "B", "time": 1000, "startPosition": "0",
         "dir": "Open Long", "closedPnl": "0", "hash": "0x2", "oid": 2, "crossed": True, "fee": "0",
         "tid": 150},
        {"coin": "ETH", "px": "3000", "sz": "2", "side": "A", "time": 1000, "startPosition": "10",
         "dir": "Close Long", "closedPnl": "0", "hash": "0x1", "oid": 1, "crossed": True, "fee": "0",
         "tid": 200},
        {"coin": "ETH", "px": "3000", "sz": "3", "side": "A", "time": 1000, "startPosition": "8",
         "dir": "Close Long", "closedPnl": "0", "hash": "0x1", "oid": 1, "crossed": True, "fee": "0",
         "tid": 300},
        {"coin": "ETH", "px": "2990", "sz": "1", "side": "B", "time": 999, "startPosition": "9",
         "dir": "Open Long", "closedPnl": "0", "hash": "0x0", "oid": 0, "crossed": True, "fee": "0",
         "tid": 900},
    ]  # fmt: skip
    fills = parse.fills("0xabc", raws)
    assert [f.tid for f in fills] == [900, 200, 300, 100, 150]  # ETH's chain, then BTC
    eth = [f for f in fills if f.coin == "ETH"]
    assert all(_end(a) == b.start_position for a, b in pairwise(eth))


# ---------------------------------------------------------------------- the cursor within a millisecond


@pytest.fixture
async def hand() -> AsyncIterator[HandWorld]:
    world = HandWorld()
    yield world
    await world.close()


async def test_a_fill_with_a_lower_tid_in_the_same_millisecond_is_still_copied(hand: HandWorld) -> None:
    svc = hand.service()
    await svc.follow("0x" + "f1" * 20, LEADER, TENTH)
    await svc.start()
    t = hand.now() + 10
    hand.feed.push(leader_fill(900, t, Side.BUY, "1", "0", oid=1))  # opens 1
    await svc.settle()
    assert await hand.position() == D("0.1")
    hand.feed.push(leader_fill(100, t, Side.BUY, "1", "1", oid=2))  # same millisecond, lower tid: adds 1
    await svc.settle()
    assert await hand.position() == D("0.2")


async def test_after_a_restart_the_lower_tid_of_a_handled_millisecond_is_copied_once(
    hand: HandWorld,
) -> None:
    svc = hand.service()
    await svc.follow("0x" + "f1" * 20, LEADER, TENTH)
    await svc.start()
    t = hand.now() + 10
    hand.feed.push(leader_fill(900, t, Side.BUY, "1", "0", oid=1))
    await svc.settle()
    await svc.close()
    hand.feed.add_history(leader_fill(100, t, Side.BUY, "1", "1", oid=2))  # came in while we were down
    again = hand.service()
    await again.start()
    await again.settle()
    assert await hand.position() == D("0.2")  # the open once, the add once
