"""Catch-up after a restart: the leader fills missed while the engine was down are netted per (leader, coin)
into the one order that reaches the leader's current position (the drift guard still applies), labelled as
catch-up, and kept out of the latency figures. A scalper's sell/buy/sell from minutes ago is one order, and
a round trip that nets to nothing is no order at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from hand_feed import F1, LEADER, HandWorld, leader_fill
from rich.console import Console

from hyperfollow.app.copy_run import RunStats, live_view
from hyperfollow.app.report import CopyReport, LeaderLine
from hyperfollow.copy.model import FollowSettings, SizingMode, SkipReason
from hyperfollow.copy.state import CopyEvent, EventKind
from hyperfollow.domain.model import Side

TENTH = FollowSettings(sizing=SizingMode.FIXED_MULTIPLIER, multiplier=Decimal("0.1"))
DOWN_MS = 200_000  # how long the engine is down


def D(x: str | int) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(str(x))


@pytest.fixture
async def hand() -> AsyncIterator[HandWorld]:
    world = HandWorld()
    yield world
    await world.close()


async def _down_and_back(hand: HandWorld, *missed: tuple[int, Side, str, str, str]) -> list[int]:
    """Copy, stop, let the leader trade ``missed`` (seconds before the restart, side, size, start, price)
    while down, restart; the order events of the restart."""
    svc = hand.service()
    await svc.follow(F1, LEADER, TENTH)
    await svc.start()
    await svc.settle()
    await svc.close()
    down_at = hand.now()
    await hand.step(DOWN_MS)
    for i, (ago_s, side, size, start, price) in enumerate(missed):
        tid = 1_000 - i  # trade ids need not rise
        hand.feed.add_history(leader_fill(tid, down_at + DOWN_MS - ago_s * 1000, side, size, start,
                                          oid=100 + i, price=price))  # fmt: skip
    before = len(hand.events)
    again = hand.service()
    await again.start()
    await again.settle()
    return list(range(before, len(hand.events)))


async def _copy_open(hand: HandWorld, size: str) -> None:
    svc = hand.service()
    await svc.follow(F1, LEADER, TENTH)
    await svc.start()
    hand.feed.push(leader_fill(1, hand.now() + 10, Side.BUY, size, "0", oid=1))
    await svc.settle()
    await svc.close()
    hand.services.remove(svc)


async def test_a_missed_sell_buy_sell_is_one_order_of_the_net_size(hand: HandWorld) -> None:
    new = await _down_and_back(
        hand,
        (148, Side.SELL, "1", "0", "3000"),  # Open Short
        (120, Side.BUY, "1", "-1", "3000"),  # Close Short
        (73, Side.SELL, "1", "0", "3000"),  # Open Short
    )
    events = [hand.events[i] for i in new]
    orders = [e for e in events if e.kind is not EventKind.SKIPPED]
    assert [(e.side, e.size, e.leg, e.kind) for e in orders] == [
        (Side.SELL, D("0.1"), "open", EventKind.FILLED)
    ]
    [order] = orders
    assert order.catch_up
    assert order.latency_ms is None  # out of the latency figures
    assert order.process_ms is None
    assert await hand.position() == D("-0.1")
    assert hand.journal.cursors[(F1, LEADER)].passed(hand.feed.history[-1])


async def test_a_missed_round_trip_that_nets_to_nothing_sends_nothing(hand: HandWorld) -> None:
    new = await _down_and_back(
        hand,
        (148, Side.SELL, "1", "0", "3000"),
        (73, Side.BUY, "1", "-1", "3000"),
    )
    assert [hand.events[i] for i in new] == []
    assert await hand.position() == 0
    cursor = hand.journal.cursors[(F1, LEADER)]
    assert all(cursor.passed(f) for f in hand.feed.history)  # handled: not decided again


async def test_missed_partial_closes_and_adds_net_to_one_close_of_our_share(hand: HandWorld) -> None:
    await _copy_open(hand, "3")
    assert await hand.position() == D("0.3")
    new = await _down_and_back(
        hand,
        (148, Side.SELL, "1", "3", "3000"),  # 3 -> 2
        (120, Side.BUY, "1", "2", "3000"),  # 2 -> 3
        (73, Side.SELL, "2", "3", "3000"),  # 3 -> 1
    )
    orders = [hand.events[i] for i in new if hand.events[i].kind is not EventKind.SKIPPED]
    assert [(e.side, e.size, e.leg) for e in orders] == [(Side.SELL, D("0.2"), "close")]  # 2/3 of ours
    assert await hand.position() == D("0.1")


async def test_a_missed_open_far_from_the_mark_is_held_back_by_the_drift_guard(hand: HandWorld) -> None:
    new = await _down_and_back(hand, (90, Side.BUY, "1", "0", "2900"))  # the mark is 3000 now: +3.4 %
    [skip] = [hand.events[i] for i in new]
    assert skip.kind is EventKind.SKIPPED
    assert skip.skip_reason is SkipReason.SKIP_DRIFT
    assert skip.catch_up
    assert await hand.position() == 0


async def test_catch_up_is_labelled_in_the_live_view_and_the_report_and_left_out_of_latency(
    hand: HandWorld,
) -> None:
    new = await _down_and_back(hand, (120, Side.SELL, "1", "0", "3000"))
    stats = RunStats(labels={LEADER: "scalper"}, takers=frozenset({LEADER}))
    for i in new:
        stats.on_event(hand.events[i])
    live = CopyEvent(EventKind.FILLED, F1, LEADER, "ETH", hand.now(), side=Side.BUY, size=D("0.1"),
                     filled=D("0.1"), latency_ms=42, process_ms=1.5)  # fmt: skip
    stats.on_event(live)
    assert stats.latencies_ms == [42.0]  # the live copy only
    assert stats.catch_ups_by_leader == {LEADER: 1}
    console = Console(width=160, record=True)
    console.print(live_view(stats, None, D(10_000), "copy"))
    assert "filled (catch-up)" in console.export_text()
    report = CopyReport(
        duration_s=1, follower_start=D(10_000), follower_end=D(10_000), latencies_ms=stats.latencies_ms,
        leaders=[LeaderLine("scalper", copies=stats.copies_by_leader[LEADER],
                            catch_ups=stats.catch_ups_by_leader[LEADER])],
        catch_ups=sum(stats.catch_ups_by_leader.values()),
    )  # fmt: skip
    console = Console(width=160, record=True)
    console.print(report.render())
    text = console.export_text()
    assert "catch-up orders" in text
    header = next(line for line in text.splitlines() if "realized PnL" in line)
    assert "catch-up" in header  # the per-leader column
