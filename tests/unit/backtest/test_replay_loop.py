"""The replay loop: merge order, data latency, simulated time, actions after the order latency."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperfollow.backtest.replay import (
    EmpiricalLatency,
    FixedLatency,
    Replay,
    ReplayContext,
    ReplayError,
    Source,
    UniformLatency,
)
from hyperfollow.core.bus import Bus, Event

Rec = tuple[int, int, int]  # (venue ts, source index, position in the source)


def records(stamps: list[int], src: int) -> list[Rec]:
    return [(ts, src, pos) for pos, ts in enumerate(stamps)]


class Log:
    """Records (simulated time, what) for every callback."""

    def __init__(self, ctx: ReplayContext) -> None:
        self.ctx = ctx
        self.seen: list[tuple[int, Any]] = []

    def __call__(self, item: Any) -> None:
        self.seen.append((self.ctx.now, item))


stamps_lists = st.lists(
    st.lists(st.integers(0, 40), max_size=30).map(sorted), min_size=1, max_size=4
)  # few distinct values: many ties, within and across sources


@settings(max_examples=150, deadline=None)
@given(
    stamps=stamps_lists,
    latencies=st.lists(st.integers(0, 7), min_size=4, max_size=4),
    batch=st.integers(1, 9),
)
def test_delivery_order_is_visible_time_then_source_then_position(
    stamps: list[list[int]], latencies: list[int], batch: int
) -> None:
    sources = [
        Source.of(records(s, k), batch_size=batch, latency=FixedLatency(latencies[k]))
        for k, s in enumerate(stamps)
    ]
    replay = Replay(sources)
    log = Log(replay.context)
    stats = replay.run(log)
    expected = sorted(
        ((ts + latencies[k], (ts, k, pos)) for k, s in enumerate(stamps) for pos, ts in enumerate(s)),
        key=lambda item: (item[0], item[1][1], item[1][2]),
    )
    assert log.seen == expected
    assert stats.events == len(expected)


@settings(max_examples=60, deadline=None)
@given(stamps=stamps_lists, seed=st.integers(0, 2**32), batch=st.integers(1, 9))
def test_sampled_latency_keeps_each_feed_in_order_and_is_repeatable(
    stamps: list[list[int]], seed: int, batch: int
) -> None:
    def run() -> list[tuple[int, Any]]:
        sources = [
            Source.of(records(s, k), batch_size=batch, latency=UniformLatency(2, 50, seed=seed + k))
            for k, s in enumerate(stamps)
        ]
        replay = Replay(sources)
        log = Log(replay.context)
        replay.run(log)
        return log.seen

    seen = run()
    assert seen == run()  # same seed, same inputs: the same timeline
    times = [t for t, _ in seen]
    assert times == sorted(times)
    for k, s in enumerate(stamps):
        mine = [(t, rec) for t, rec in seen if rec[1] == k]
        assert [rec for _, rec in mine] == records(s, k)  # first in, first out
        for t, (ts, _, _) in mine:
            assert t >= ts + 2
        # each visible time is its own draw or the one before it (FIFO): never past the latest draw
        for (t_prev, _), (t, (ts, _, _)) in pairwise(mine):
            assert t == t_prev or ts + 2 <= t <= ts + 50


def test_a_record_is_seen_at_its_time_plus_the_data_latency_and_set_time_leads_each_delivery() -> None:
    clock: list[int] = []
    seen: list[tuple[int, int, Rec]] = []
    replay = Replay([Source.of(records([100, 100, 250], 0), latency=FixedLatency(30))], set_time=clock.append)
    ctx = replay.context

    def on_event(rec: Rec) -> None:
        seen.append((clock[-1], ctx.now, rec))

    replay.run(on_event)
    assert seen == [(130, 130, (100, 0, 0)), (130, 130, (100, 0, 1)), (280, 280, (250, 0, 2))]
    assert clock == [130, 280]  # once per new time, never backwards


def test_an_order_takes_effect_after_the_order_latency_and_after_what_was_visible_by_then() -> None:
    # records visible at 10, 20, 30, 40; an order sent at 10 with latency 20 lands at 30
    log: list[tuple[str, int, Any]] = []
    replay = Replay([Source.of(records([10, 20, 30, 40], 0))], order_latency=FixedLatency(20))
    ctx = replay.context

    def strategy(rec: Rec) -> None:
        log.append(("saw", ctx.now, rec[0]))
        if rec[0] == 10:
            ctx.submit("buy")

    def venue(action: str) -> None:
        log.append(("venue got " + action, ctx.now, None))

    stats = replay.run(strategy, venue)
    assert log == [
        ("saw", 10, 10),
        ("saw", 20, 20),
        ("saw", 30, 30),  # a record at the same instant comes first
        ("venue got buy", 30, None),
        ("saw", 40, 40),
    ]
    assert stats.actions == 1
    assert stats.pending_actions == 0


def test_venue_answers_reach_the_strategy_after_the_response_latency() -> None:
    got: list[tuple[int, Any]] = []
    clock: list[int] = []
    replay = Replay(
        [Source.of(records([0, 1_000], 0))],
        order_latency=FixedLatency(5),
        response_latency=FixedLatency(7),
        set_time=clock.append,
    )
    ctx = replay.context

    def strategy(item: Any) -> None:
        got.append((ctx.now, item))
        if item == (0, 0, 0):
            ctx.submit("order")

    def venue(action: str) -> None:
        ctx.respond(("filled", action, ctx.now))

    replay.run(strategy, venue)
    assert got == [(0, (0, 0, 0)), (12, ("filled", "order", 5)), (1_000, (1_000, 0, 1))]
    assert clock == [0, 5, 12, 1_000]  # the clock is told every time: the first, actions, answers


def test_a_venue_source_sees_the_market_at_venue_time_while_the_strategy_sees_it_late() -> None:
    market = records([100, 200], 0)
    venue_seen: list[tuple[int, Rec]] = []
    strategy_seen: list[tuple[int, Rec]] = []
    replay = Replay(
        [
            Source.of(market, handler=lambda r: venue_seen.append((ctx.now, r)), name="venue"),
            Source.of(market, latency=FixedLatency(50), name="strategy"),
        ]
    )
    ctx = replay.context
    replay.run(lambda r: strategy_seen.append((ctx.now, r)))
    assert venue_seen == [(100, market[0]), (200, market[1])]
    assert strategy_seen == [(150, market[0]), (250, market[1])]
    assert replay.models() == {
        "data latency, venue": "fixed 0 ns",
        "data latency, strategy": "fixed 50 ns",
        "order latency": "fixed 0 ns",
        "response latency": "fixed 0 ns",
    }


def test_timers_stop_and_until() -> None:
    fired: list[int] = []
    replay = Replay([Source.of(records(list(range(0, 100, 10)), 0))])
    ctx = replay.context

    def tick() -> None:
        fired.append(ctx.now)
        ctx.call_later(25, tick)

    ctx.call_at(5, tick)  # set up before the run
    with pytest.raises(ReplayError, match="in the past"):
        ctx.call_at(-1, tick)
    stats = replay.run(lambda rec: None, until_ns=60)
    assert fired == [5, 30, 55]
    assert stats.events == 7  # 0..60
    assert stats.last_ns == 60
    assert stats.pending_actions == 1  # the timer due at 80

    replay = Replay([Source.of(records([1, 2, 3, 4], 0))])
    ctx = replay.context
    seen: list[int] = []

    def stop_at_two(rec: Rec) -> None:
        seen.append(rec[0])
        if rec[0] == 2:
            ctx.stop()

    stats = replay.run(stop_at_two)
    assert seen == [1, 2]
    assert stats.stopped
    with pytest.raises(ReplayError, match="runs once"):
        replay.run(stop_at_two)


def test_out_of_order_and_malformed_sources_are_refused() -> None:
    with pytest.raises(ReplayError, match=r"feed: record 3 goes back in time"):
        Replay([Source.of(records([1, 2, 3, 2], 0), batch_size=2, name="feed")]).run(lambda r: None)
    with pytest.raises(ReplayError, match="record 1 goes back"):
        Replay([Source.of(records([5, 4], 0), batch_size=1)]).run(lambda r: None)
    with pytest.raises(ReplayError, match="2 timestamps for 1 records"):
        Replay([Source([(np.array([1, 2]), [object()])])]).run(lambda r: None)
    replay = Replay([Source.of(records([1], 0))])
    with pytest.raises(ReplayError, match="on_action"):
        replay.run(lambda r: replay.context.submit("x"))


def test_batches_given_directly_empty_ones_and_empty_sources() -> None:
    seen: list[Any] = []
    batches = [(np.array([], np.int64), []), ([3, 3], ["a", "b"]), (np.array([4]), ["c"])]
    Replay([Source(batches), Source([]), Source.of([])]).run(seen.append)
    assert seen == ["a", "b", "c"]


def test_latency_models_validate_and_describe_themselves() -> None:
    with pytest.raises(ValueError, match="negative"):
        FixedLatency(-1)
    with pytest.raises(ValueError, match="lo_ns"):
        UniformLatency(5, 4, seed=1)
    with pytest.raises(ValueError, match="sample"):
        EmpiricalLatency([], seed=1)
    emp = EmpiricalLatency([1_000, 3_000, 2_000_000], seed=3)
    draws = {emp.draw_one() for _ in range(200)}
    assert draws == {1_000, 3_000, 2_000_000}
    assert emp.describe() == "empirical, 3 samples, median 3 µs, max 2 ms (seed 3)"
    assert UniformLatency(1_000, 2_500_000, seed=9).describe() == "uniform 1 µs .. 2.5 ms (seed 9)"


class Mid(Event, frozen=True, kw_only=True):
    px: int


def test_the_bus_is_the_replays_synchronous_fan_out() -> None:
    bus = Bus()
    a: list[Mid] = []
    b: list[Mid] = []
    bus.on(Mid, a.append)
    bus.on(Event, b.append)
    mids = [Mid(ts_event=ts, ts_init=ts + 3, px=ts * 10) for ts in (1, 2, 3)]
    Replay([Source.of(mids, ts_of=lambda m: m.ts_event)]).run(bus.publish_nowait)
    assert a == b == mids
