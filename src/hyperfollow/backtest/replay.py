"""The replay core: time-ordered event sources merged onto one simulated timeline.

A ``Source`` is a stream of batches ``(timestamps, records)``: venue times in integer ns, non-decreasing,
and one compact record (a tuple or a ``msgspec.Struct``) per timestamp. ``Source.of(records)`` batches
a plain record iterator. Each source has a **data-latency model**: a record becomes visible at its
timestamp plus a latency (fixed, or drawn from a seeded RNG), and a feed stays first-in first-out
(``visible[i] = max(ts[i] + latency[i], visible[i-1])``), as a socket would deliver it.

``Replay.run`` delivers every record, in the order of ``(visible time, source index, position in the
source)``, to its source's handler or to the run's ``on_event``. The order is the one a heap merge over
that key gives; it is computed a batch at a time with a stable sort, so a tie is always broken the same way.
Before each delivery the simulated time moves to the record's visible time (before each action, to its
due time), and ``set_time(ns)``, when given, is called whenever that time changes: the one callback
through which the replay drives an outside clock (a simulated ``Clock`` plugs in there). Time never goes
back.

Callbacks act through a ``ReplayContext``: ``submit(action)`` reaches ``on_action`` (the venue) after the
order-latency model, ``respond(event)`` reaches ``on_event`` (the strategy) after the response latency,
and ``call_at``/``call_later`` are exact timers. An action due at the same time as a record runs after
that record, so an order sent with zero latency still meets the market as it is at that instant.

No look-ahead by construction: the loop keeps the sources, their buffered batches and the queue of
scheduled actions in its own frame. A context holds only the current time and an outbox of what the
running callback asked for, which the loop moves onto its private schedule as soon as the callback
returns. So nothing a strategy or a venue is handed leads to a record it has not been shown yet (in
one Python process a determined caller can still inspect the interpreter's frames: the guarantee is
about the objects handed out, and the backtest tests check it).

To let a simulated venue see the market at venue time while the strategy sees it late, give the venue
its own source over the same records with zero latency and ``handler=venue.on_market``.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import count, islice
from operator import itemgetter
from typing import Any, Generic, Literal, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

R = TypeVar("R")
Int64s = NDArray[np.int64]
Batch = tuple[Int64s | Sequence[int], Sequence[R]]
"""Timestamps (venue time, int ns, non-decreasing) and one record per timestamp."""

SetTime = Callable[[int], None]
"""The minimal clock protocol the replay drives: called with the new simulated time in ns."""


class ReplayError(ValueError):
    """A source is malformed (out of order, mismatched batch) or the replay is misused."""


def _fmt_ns(ns: float) -> str:
    for unit, size in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(ns) >= size:
            return f"{ns / size:g} {unit}"
    return f"{ns:g} ns"


class LatencyModel(Protocol):
    """How late something arrives: ``shift`` adds a latency to each timestamp, ``draw_one`` gives one."""

    def shift(self, ts: Int64s) -> Int64s: ...

    def draw_one(self) -> int: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class FixedLatency:
    """The same latency every time."""

    ns: int = 0

    def __post_init__(self) -> None:
        if self.ns < 0:
            raise ValueError("latency cannot be negative")

    def shift(self, ts: Int64s) -> Int64s:
        return ts + self.ns if self.ns else ts

    def draw_one(self) -> int:
        return self.ns

    def describe(self) -> str:
        return f"fixed {_fmt_ns(self.ns)}"


class _Sampled:
    """A latency drawn from a seeded RNG, in blocks (``draw_one`` takes from a pre-drawn block)."""

    _BLOCK = 1024

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._spare: list[int] = []

    def _draw(self, n: int) -> Int64s:
        raise NotImplementedError

    def shift(self, ts: Int64s) -> Int64s:
        return ts + self._draw(len(ts))

    def draw_one(self) -> int:
        if not self._spare:
            self._spare = self._draw(self._BLOCK).tolist()[::-1]
        return self._spare.pop()


class UniformLatency(_Sampled):
    """Uniform in ``[lo_ns, hi_ns]``, from a seeded RNG."""

    def __init__(self, lo_ns: int, hi_ns: int, seed: int) -> None:
        if not 0 <= lo_ns <= hi_ns:
            raise ValueError("need 0 <= lo_ns <= hi_ns")
        super().__init__(seed)
        self.lo_ns, self.hi_ns = lo_ns, hi_ns

    def _draw(self, n: int) -> Int64s:
        return self._rng.integers(self.lo_ns, self.hi_ns, size=n, endpoint=True, dtype=np.int64)

    def describe(self) -> str:
        return f"uniform {_fmt_ns(self.lo_ns)} .. {_fmt_ns(self.hi_ns)} (seed {self.seed})"


class EmpiricalLatency(_Sampled):
    """Drawn with replacement from measured latencies (e.g. recorded receive minus venue times)."""

    def __init__(self, samples_ns: Sequence[int], seed: int) -> None:
        samples = np.asarray(samples_ns, dtype=np.int64)
        if samples.size == 0 or (samples < 0).any():
            raise ValueError("need at least one latency sample, none negative")
        super().__init__(seed)
        self.samples = samples

    def _draw(self, n: int) -> Int64s:
        return self.samples[self._rng.integers(0, self.samples.size, size=n)]

    def describe(self) -> str:
        s = self.samples
        return (f"empirical, {s.size} samples, median {_fmt_ns(float(np.median(s)))}, "
                f"max {_fmt_ns(float(s.max()))} (seed {self.seed})")  # fmt: skip


def _first(record: Any) -> int:
    return int(record[0])


def batched(records: Iterable[R], ts_of: Callable[[R], int] = _first, size: int = 4096) -> Iterator[Batch[R]]:
    """Cut a record stream into batches, reading ``size`` records at a time (bounded memory)."""
    if size < 1:
        raise ValueError("batch size must be positive")
    it = iter(records)
    while chunk := list(islice(it, size)):
        yield np.fromiter(map(ts_of, chunk), np.int64, len(chunk)), chunk


@dataclass(frozen=True)
class Source(Generic[R]):
    """One time-ordered stream, its data latency, and who receives it (default: the run's ``on_event``)."""

    batches: Iterable[Batch[R]]
    latency: LatencyModel = field(default_factory=FixedLatency)
    handler: Callable[[R], None] | None = None
    name: str = ""

    @classmethod
    def of(
        cls,
        records: Iterable[R],
        *,
        ts_of: Callable[[R], int] = _first,
        batch_size: int = 4096,
        latency: LatencyModel | None = None,
        handler: Callable[[R], None] | None = None,
        name: str = "",
    ) -> Source[R]:
        """A source over records whose venue time ``ts_of`` reads (default: a tuple's first item)."""
        return cls(batched(records, ts_of, batch_size), latency or FixedLatency(), handler, name)


_SUBMIT, _RESPOND, _CALL, _STOP = range(4)


class ReplayContext:
    """What a strategy or a simulated venue is handed: the time, and ways to act later. Nothing more."""

    __slots__ = ("_now", "_outbox")

    def __init__(self) -> None:
        self._now = 0
        self._outbox: list[tuple[int, Any]] = []

    @property
    def now(self) -> int:
        """The simulated time in ns: the record's visible time or the action's due time (0 before either)."""
        return self._now

    def submit(self, action: object) -> None:
        """Send ``action`` to the run's ``on_action`` (the venue); it arrives after the order latency."""
        self._outbox.append((_SUBMIT, action))

    def respond(self, event: object) -> None:
        """Send ``event`` to the run's ``on_event`` (the strategy); it arrives after the response latency."""
        self._outbox.append((_RESPOND, event))

    def call_at(self, ts_ns: int, fn: Callable[[], None]) -> None:
        """Call ``fn()`` at simulated time ``ts_ns`` (not before the current time)."""
        if ts_ns < self._now:
            raise ReplayError(f"call_at({ts_ns}) is in the past (now {self._now})")
        self._outbox.append((_CALL, (ts_ns, fn)))

    def call_later(self, delay_ns: int, fn: Callable[[], None]) -> None:
        """Call ``fn()`` after ``delay_ns`` of simulated time."""
        self.call_at(self._now + delay_ns, fn)

    def stop(self) -> None:
        """End the run once the current callback returns."""
        self._outbox.append((_STOP, None))


@dataclass(frozen=True)
class ReplayStats:
    """What a run did: records delivered, actions and timers run, the time span, what was left pending."""

    events: int
    actions: int
    first_ns: int | None
    last_ns: int
    pending_actions: int
    stopped: bool


class _Cursor:
    """A source being read: its current buffer of records and their visible times."""

    __slots__ = ("batches", "done", "evs", "handler", "idx", "last_ts", "last_vis", "latency", "name",
                 "pos", "read", "vis")  # fmt: skip

    def __init__(self, source: Source[Any], idx: int, default: Callable[[Any], None]) -> None:
        self.batches = iter(source.batches)
        self.latency = source.latency
        self.handler = source.handler or default
        self.name = source.name or f"source {idx}"
        self.idx = idx
        self.done = False
        self.vis: Int64s = np.empty(0, np.int64)
        self.evs: Sequence[Any] = ()
        self.pos = 0
        self.read = 0
        self.last_ts = -(2**63)
        self.last_vis = -(2**63)

    @property
    def left(self) -> int:
        return len(self.evs) - self.pos

    def refill(self) -> None:
        """Append the next non-empty batch to what is left of the buffer (or mark the source done)."""
        for ts_raw, evs in self.batches:
            ts = np.asarray(ts_raw, dtype=np.int64)
            n = len(evs)
            if ts.ndim != 1 or len(ts) != n:
                raise ReplayError(f"{self.name}: a batch has {ts.size} timestamps for {n} records")
            if n == 0:
                continue
            back = np.flatnonzero(np.diff(ts) < 0)
            if ts[0] < self.last_ts or back.size:
                at = self.read + (int(back[0]) + 1 if ts[0] >= self.last_ts else 0)
                raise ReplayError(f"{self.name}: record {at} goes back in time")
            vis = np.maximum.accumulate(self.latency.shift(ts))
            np.maximum(vis, self.last_vis, out=vis)
            self.last_ts, self.last_vis = int(ts[-1]), int(vis[-1])
            self.read += n
            if self.pos >= len(self.evs):
                self.vis, self.evs = vis, evs
            else:
                self.vis = np.concatenate((self.vis[self.pos :], vis))
                self.evs = [*self.evs[self.pos :], *evs]
            self.pos = 0
            return
        self.done = True


class Replay:
    """Merges sources onto one simulated timeline and delivers them; runs once."""

    def __init__(
        self,
        sources: Sequence[Source[Any]],
        *,
        order_latency: LatencyModel | None = None,
        response_latency: LatencyModel | None = None,
        set_time: SetTime | None = None,
    ) -> None:
        self._sources: Sequence[Source[Any]] | None = list(sources)
        self.order_latency: LatencyModel = order_latency or FixedLatency()
        self.response_latency: LatencyModel = response_latency or FixedLatency()
        self._set_time = set_time
        self.context = ReplayContext()
        self._models = {
            **{
                f"data latency, {s.name or f'source {k}'}": s.latency.describe()
                for k, s in enumerate(self._sources)
            },
            "order latency": self.order_latency.describe(),
            "response latency": self.response_latency.describe(),
        }

    def models(self) -> dict[str, str]:
        """Each latency model in words, for a report."""
        return dict(self._models)

    def run(
        self,
        on_event: Callable[[Any], None],
        on_action: Callable[[Any], None] | None = None,
        *,
        until_ns: int | None = None,
    ) -> ReplayStats:
        """Deliver every record visible up to ``until_ns`` (default: all), then the actions due by then.

        Without ``until_ns`` the run ends with the last record: actions due later stay pending.
        """
        if self._sources is None:
            raise ReplayError("a replay runs once: its sources are consumed")
        cursors = [_Cursor(s, k, on_event) for k, s in enumerate(self._sources)]
        self._sources = None
        loop = _Loop(self.context, on_event, on_action, self.order_latency, self.response_latency,
                     self._set_time)  # fmt: skip
        loop.drain()  # anything asked for before the run (timers set up by a constructor)
        live = cursors
        while live and loop.going:
            for c in live:
                while c.left == 0 and not c.done:
                    c.refill()
            live = [c for c in live if c.left]
            if len(live) == 1:
                c = live[0]
                vis: list[int] = c.vis[c.pos :].tolist()
                evs = c.evs if c.pos == 0 else c.evs[c.pos :]
                c.pos = len(c.evs)
                loop.deliver(vis, evs, c.handler, None, until_ns)
                continue
            growing = [c for c in live if not c.done]
            bound = min(growing, key=lambda c: (int(c.vis[-1]), c.idx)) if growing else None
            parts: list[tuple[_Cursor, int]] = []
            for c in live:
                if bound is None:
                    cut = len(c.evs)
                else:  # everything that sorts before the bound's last record: nothing can come before it
                    side: Literal["left", "right"] = "right" if c.idx < bound.idx else "left"
                    cut = int(np.searchsorted(c.vis, int(bound.vis[-1]), side=side))
                if cut > c.pos:
                    parts.append((c, cut))
            if parts:
                self._merge_deliver(loop, parts, until_ns)
            if bound is not None and loop.going:
                bound.refill()  # its last visible time held the others back: read on
        return loop.finish(until_ns)

    @staticmethod
    def _merge_deliver(loop: _Loop, parts: list[tuple[_Cursor, int]], limit: int | None) -> None:
        if len(parts) == 1:
            c, cut = parts[0]
            vis: list[int] = c.vis[c.pos : cut].tolist()
            evs = c.evs[c.pos : cut]
            c.pos = cut
            loop.deliver(vis, evs, c.handler, None, limit)
            return
        vis_all = np.concatenate([c.vis[c.pos : cut] for c, cut in parts])
        src = np.concatenate([np.full(cut - c.pos, k, np.int64) for k, (c, cut) in enumerate(parts)])
        combined: list[Any] = []
        for c, cut in parts:
            combined += c.evs[c.pos : cut]
            c.pos = cut
        order = np.lexsort((src, vis_all))  # stable: a source's own records keep their order
        evs_sorted = itemgetter(*order.tolist())(combined)
        handlers = [c.handler for c, _ in parts]
        per_event: Sequence[Callable[[Any], None]] | None = None
        if any(h is not handlers[0] for h in handlers):
            per_event = itemgetter(*src[order].tolist())(handlers)
        loop.deliver(vis_all[order].tolist(), evs_sorted, handlers[0], per_event, limit)


class _Loop:
    """The delivery loop's state: private schedule of actions, the context's time and outbox."""

    def __init__(
        self,
        ctx: ReplayContext,
        on_event: Callable[[Any], None],
        on_action: Callable[[Any], None] | None,
        order_latency: LatencyModel,
        response_latency: LatencyModel,
        set_time: SetTime | None,
    ) -> None:
        self.ctx = ctx
        self.on_event = on_event
        self.on_action = on_action
        self.order_latency = order_latency
        self.response_latency = response_latency
        self.set_time = set_time
        self.heap: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self.seq = count()
        self.events = 0
        self.actions = 0
        self.first: int | None = None
        self.synced = False  # set_time has been told the time at least once
        self.stopped = False  # a callback called stop()
        self.past_limit = False  # a record beyond until_ns was reached
        self.going = True

    def finish(self, until_ns: int | None) -> ReplayStats:
        """Run the actions due by the end (the last record, or ``until_ns``); the run's figures."""
        if not self.stopped:
            end = self.ctx._now if until_ns is None else max(until_ns, self.ctx._now)
            self.run_actions(end, inclusive=True)
            if not self.stopped:
                self._advance(end)
        return ReplayStats(self.events, self.actions, self.first, self.ctx._now, len(self.heap), self.stopped)

    def drain(self) -> None:
        """Move what the callback asked for onto the private schedule."""
        ctx = self.ctx
        now = ctx._now
        heap = self.heap
        for kind, payload in ctx._outbox:
            if kind == _SUBMIT:
                if self.on_action is None:
                    raise ReplayError("submit() needs the run's on_action (a venue) to receive it")
                due = now + self.order_latency.draw_one()
                heapq.heappush(heap, (due, next(self.seq), self.on_action, (payload,)))
            elif kind == _RESPOND:
                due = now + self.response_latency.draw_one()
                heapq.heappush(heap, (due, next(self.seq), self.on_event, (payload,)))
            elif kind == _CALL:
                ts, fn = payload
                heapq.heappush(heap, (ts, next(self.seq), fn, ()))
            else:
                self.stopped = True
                self.going = False
        ctx._outbox.clear()

    def _advance(self, ts: int) -> None:
        if ts != self.ctx._now or not self.synced:
            self.synced = True
            self.ctx._now = ts
            if self.set_time is not None:
                self.set_time(ts)

    def run_actions(self, before: int, *, inclusive: bool = False) -> None:
        """Run scheduled actions due before ``before`` (or at it, when ``inclusive``), in time order."""
        heap = self.heap
        while heap and not self.stopped and (heap[0][0] < before or (inclusive and heap[0][0] == before)):
            due, _, fn, args = heapq.heappop(heap)
            self._advance(due)
            self.actions += 1
            fn(*args)
            if self.ctx._outbox:
                self.drain()

    def deliver(
        self,
        vis: list[int],
        evs: Sequence[Any],
        handler: Callable[[Any], None],
        handlers: Sequence[Callable[[Any], None]] | None,
        limit: int | None,
    ) -> None:
        """Deliver records at their visible times (the hot path); ``going`` turns False when the run ends."""
        if limit is not None and vis and vis[-1] > limit:
            keep = bisect_right(vis, limit)
            self.deliver(vis[:keep], evs[:keep], handler, None if handlers is None else handlers[:keep], None)
            self.past_limit = True
            self.going = False
            return
        if not vis:
            return
        if self.first is None:
            self.first = vis[0]
        ctx = self.ctx
        outbox = ctx._outbox
        heap = self.heap
        set_time = self.set_time
        last: int | None = ctx._now if self.synced else None  # the first delivery always sets the time
        self.synced = True
        done = 0
        if handlers is None:
            for v, ev in zip(vis, evs, strict=True):
                if heap and heap[0][0] < v:
                    self.run_actions(v)
                    if self.stopped:
                        break
                    last = ctx._now
                if v != last:
                    ctx._now = last = v
                    if set_time is not None:
                        set_time(v)
                handler(ev)
                done += 1
                if outbox:
                    self.drain()
                    if self.stopped:
                        break
        else:
            for v, ev, h in zip(vis, evs, handlers, strict=True):
                if heap and heap[0][0] < v:
                    self.run_actions(v)
                    if self.stopped:
                        break
                    last = ctx._now
                if v != last:
                    ctx._now = last = v
                    if set_time is not None:
                        set_time(v)
                h(ev)
                done += 1
                if outbox:
                    self.drain()
                    if self.stopped:
                        break
        self.events += done
