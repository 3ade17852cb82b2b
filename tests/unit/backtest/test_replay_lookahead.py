"""No look-ahead: a strategy that tries to learn the next price from the replay gains nothing.

The market is a seeded random walk of one-tick steps, one tick per millisecond. The simulated venue gets
every tick at venue time (its own zero-latency source); the strategy sees the same ticks late and trades
through orders that take effect after the order latency, at the venue's price then. A strategy that
knew the next tick would earn about one tick per step; one that cannot know it earns what a coin
flip earns. The control run shows the harness would notice look-ahead.
"""

from __future__ import annotations

import gc
import random
import sys
from collections.abc import Iterable, Iterator
from itertools import pairwise
from types import ModuleType
from typing import Any

from hyperfollow.backtest.replay import FixedLatency, Replay, ReplayContext, Source
from hyperfollow.core.bus import Event

MS = 1_000_000
STEPS = 3_000


class Tick(Event, frozen=True, kw_only=True):
    px: int


def random_walk(seed: int, steps: int = STEPS) -> list[Tick]:
    rnd = random.Random(seed)
    px = 10_000
    ticks = []
    for k in range(steps):
        ticks.append(Tick(ts_event=k * MS, ts_init=k * MS, px=px))
        px += rnd.choice((-1, 1))
    return ticks


class Venue:
    """Fills each target position at the venue's price when the order arrives."""

    def __init__(self, ctx: ReplayContext) -> None:
        self.ctx = ctx
        self.px = 0
        self.position = 0
        self.cash = 0

    def on_market(self, tick: Tick) -> None:
        self.px = tick.px

    def on_action(self, target: int) -> None:
        self.cash -= (target - self.position) * self.px
        self.position = target

    def pnl(self) -> int:
        return self.cash + self.position * self.px


MODULE_DICTS = {id(vars(m)) for m in list(sys.modules.values()) if isinstance(m, ModuleType)}


def reachable(roots: Iterable[object], module_dicts: set[int]) -> Iterator[object]:
    """Everything reachable from ``roots`` through object references, short of classes and modules.

    That is what a callback can get at from what it was handed: attributes, slots, containers,
    iterators, closures, bound methods (but not a module's globals, where the test itself keeps data).
    """
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | ModuleType) or id(obj) in module_dicts:
            continue
        seen.add(id(obj))
        yield obj
        stack.extend(gc.get_referents(obj))


def loop_buffers() -> list[object]:
    """The control's leak: the buffers of the running replay loop, taken from its frame."""
    frame = sys._getframe(1)
    while frame is not None and "cursors" not in frame.f_locals:
        frame = frame.f_back  # type: ignore[assignment]
    assert frame is not None, "not called from inside Replay.run"
    return [cursor.evs for cursor in frame.f_locals["cursors"]]


class Peeker:
    """Bets on the next tick when it can find it in anything reachable, else on a seeded coin flip."""

    def __init__(self, ctx: ReplayContext, seed: int, leaky: bool) -> None:
        self.ctx = ctx
        self.rnd = random.Random(seed)
        self.leaky = leaky  # the control: as if the replay handed over its buffers
        self.found = 0

    def on_tick(self, tick: Tick) -> None:
        roots = [self.ctx, self, tick, *(loop_buffers() if self.leaky else ())]
        future = [
            obj
            for obj in reachable(roots, MODULE_DICTS)
            if isinstance(obj, Tick) and obj.ts_event > tick.ts_event
        ]
        if future:
            self.found += 1
            nxt = min(future, key=lambda t: t.ts_event)
            target = 1 if nxt.px > tick.px else -1
        else:
            target = self.rnd.choice((-1, 1))
        self.ctx.submit(target)


def run_peeker(ticks: list[Tick], *, leaky: bool) -> tuple[int, int]:
    holder: dict[str, Venue] = {}

    def feed(**kw: Any) -> Source[Tick]:
        # several ticks ahead are buffered inside the loop at any time
        return Source.of(ticks, ts_of=lambda t: t.ts_event, batch_size=8, **kw)

    replay = Replay(
        [
            feed(handler=lambda t: holder["venue"].on_market(t), name="venue"),
            feed(latency=FixedLatency(MS * 3 // 10), name="strategy"),
        ],
        order_latency=FixedLatency(MS // 5),
    )
    venue = holder["venue"] = Venue(replay.context)
    peeker = Peeker(replay.context, seed=11, leaky=leaky)
    replay.run(peeker.on_tick, venue.on_action)
    return venue.pnl(), peeker.found


def test_a_strategy_peeking_for_the_next_tick_finds_nothing_and_earns_what_a_coin_flip_earns() -> None:
    ticks = random_walk(seed=5)
    pnl, found = run_peeker(ticks, leaky=False)
    assert found == 0
    assert abs(pnl) < STEPS // 10  # a coin flip: about ±55 ticks (one sigma) over 3,000 steps

    # the control: the future is right there in the loop's buffers; handed them, the same strategy
    # earns about one tick a step
    pnl_leak, found_leak = run_peeker(ticks, leaky=True)
    assert found_leak == STEPS - 1
    assert pnl_leak > STEPS * 9 // 10


class Momentum:
    """Buys after an up-tick, sells after a down-tick: profitable only if its orders beat the market."""

    def __init__(self, ctx: ReplayContext) -> None:
        self.ctx = ctx
        self.last: int | None = None

    def on_tick(self, tick: Tick) -> None:
        if self.last is not None and tick.px != self.last:
            self.ctx.submit(1 if tick.px > self.last else -1)
        self.last = tick.px


def run_momentum(ticks: list[Tick], *, data_ns: int, order_ns: int) -> int:
    holder: dict[str, Any] = {}
    strategy_feed = Source.of(ticks, ts_of=lambda t: t.ts_event, latency=FixedLatency(data_ns))
    venue_feed = Source.of(ticks, ts_of=lambda t: t.ts_event, handler=lambda t: holder["venue"].on_market(t))
    # the strategy's feed comes first: at a tie it is delivered before the venue's copy of the tick
    replay = Replay([strategy_feed, venue_feed], order_latency=FixedLatency(order_ns))
    venue = holder["venue"] = Venue(replay.context)
    replay.run(Momentum(replay.context).on_tick, venue.on_action)
    return venue.pnl()


def test_reacting_to_the_latest_tick_with_zero_latency_still_trades_at_the_price_after_it() -> None:
    ticks = random_walk(seed=8)
    for data_ns, order_ns in ((0, 0), (0, MS // 2), (MS // 4, MS // 4), (MS // 2, 0), (MS * 3 // 2, MS // 3)):
        assert abs(run_momentum(ticks, data_ns=data_ns, order_ns=order_ns)) < STEPS // 10


def test_the_momentum_harness_notices_an_order_that_beats_the_tick() -> None:
    """The control for the test above: fills at the price before the tick are worth about a tick each."""
    ticks = random_walk(seed=8)
    stale = [Tick(ts_event=t.ts_event, ts_init=t.ts_init, px=prev.px) for prev, t in pairwise(ticks)]
    replay = Replay(
        [
            Source.of(ticks[1:], ts_of=lambda t: t.ts_event),
            Source.of(stale, ts_of=lambda t: t.ts_event, handler=lambda t: venue.on_market(t)),
        ]
    )
    venue = Venue(replay.context)
    replay.run(Momentum(replay.context).on_tick, venue.on_action)
    assert venue.pnl() > STEPS // 3
