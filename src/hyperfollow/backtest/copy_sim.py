"""The pieces a copy backtest wires around the copy engine: simulated time, the delayed leader feed, and the
leader-side venue the engine reads.

* ``SimTimers`` and ``venue_time``: the engine's ``Clock`` on the embedded exchange's stepped clock. A
  ``sleep`` returns once the backtest has moved the clock past its deadline (the backtest asks ``next_due``
  before each move and ``fire``-s what is due), never on wall time.
* ``DelayedLeaderFeed``: the leader's fills reach the copy engine only when the backtest ``release``-s them,
  ``latency_ms`` of venue time after they happened (the latency model); snapshots and history are the
  venue's, read when asked.
* ``LeaderView``: a ``Venue`` for the engine's leader side: the follower's market data and the delayed feed.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from hyperfollow.adapters.sim import Feed, SimVenue
from hyperfollow.adapters.sim.account import SimAccountState
from hyperfollow.adapters.sim.gateway import SimGateway
from hyperfollow.adapters.sim.market import SimMarketData
from hyperfollow.domain.model import AccountSnapshot, Fill, StreamEvent
from hyperfollow.exchange.embedded import EmbeddedExchange

T = TypeVar("T")


class SimTimers:
    """Sleepers waiting for the simulated clock, in deadline order (ties: first asleep, first woken)."""

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self._now_ms = now_ms
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    async def sleep(self, secs: float) -> None:
        """Wait ``secs`` of simulated time (0 or less: one turn of the event loop)."""
        if not secs > 0:
            await asyncio.sleep(0)
            return
        due = self._now_ms() + math.ceil(secs * 1000)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (due, next(self._seq), future))
        await future

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0][2].done():
            heapq.heappop(self._heap)

    def next_due(self) -> int | None:
        """The earliest deadline of a sleeper still waiting."""
        self._drop_cancelled()
        return self._heap[0][0] if self._heap else None

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, f in self._heap if not f.done())

    def fire(self) -> int:
        """Wake every sleeper whose deadline has come; returns how many."""
        now, woken = self._now_ms(), 0
        self._drop_cancelled()
        while self._heap and self._heap[0][0] <= now:
            _, _, future = heapq.heappop(self._heap)
            if not future.done():
                future.set_result(None)
                woken += 1
        return woken


class _Call:
    """A ``call_later`` on the simulated timers (the port's ``Timer``)."""

    def __init__(self, task: asyncio.Task[None]) -> None:
        self._task = task

    def cancel(self) -> None:
        self._task.cancel()


class SimTime:
    """The ``Clock`` port on the exchange's stepped clock: epoch and monotonic time are its ms (as seconds
    for ``monotonic``); ``sleep``, ``call_later`` and ``wait_for`` wait on ``timers``, which the backtest
    fires as it moves the clock. Nothing here reads the wall clock."""

    def __init__(self, now_ms: Callable[[], int], timers: SimTimers) -> None:
        self._now_ms = now_ms
        self._timers = timers
        self._calls: set[asyncio.Task[None]] = set()

    def now_ms(self) -> int:
        return self._now_ms()

    def now_ns(self) -> int:
        return self._now_ms() * 1_000_000

    def monotonic(self) -> float:
        return self._now_ms() / 1000.0

    async def sleep(self, seconds: float) -> None:
        await self._timers.sleep(seconds)

    def call_later(self, delay: float, callback: Callable[[], object]) -> _Call:
        async def later() -> None:
            await self._timers.sleep(delay)
            callback()

        task = asyncio.get_running_loop().create_task(later())
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)
        return _Call(task)

    async def wait_for(self, aw: Awaitable[T], timeout: float | None) -> T:
        if timeout is None:
            return await aw
        work = asyncio.ensure_future(aw)
        timer = asyncio.ensure_future(self._timers.sleep(timeout))
        try:
            await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if work.done():
            return work.result()
        work.cancel()
        raise TimeoutError


def venue_time(exchange: EmbeddedExchange, timers: SimTimers) -> SimTime:
    """The engine's clock: the exchange's stepped clock, sleeps on ``timers``."""
    return SimTime(exchange.clock.now_ms, timers)


class DelayedLeaderFeed:
    """A ``LeaderFeed`` whose fill streams deliver a fill only once ``release`` has passed its time."""

    def __init__(self, inner: SimVenue) -> None:
        self._inner = inner.leaders
        self._streams: list[tuple[Feed[Fill], Feed[Fill], list[Fill]]] = []  # (venue's, ours, held)

    async def fills_since(self, address: str, start_ms: int) -> list[Fill]:
        return await self._inner.fills_since(address, start_ms)

    async def snapshot(self, address: str) -> AccountSnapshot:
        return await self._inner.snapshot(address)

    def stream_fills(self, addresses: Sequence[str], since_ms: int | None = None) -> AsyncIterator[Fill]:
        venue_feed = self._inner.stream_fills(addresses, since_ms)
        if not isinstance(venue_feed, Feed):  # the in-process venue's streams are Feeds
            raise TypeError("DelayedLeaderFeed needs the in-process venue's fill stream")
        ours: Feed[Fill] = Feed(on_close=lambda _f: venue_feed.close())
        self._streams.append((venue_feed, ours, []))
        return ours

    def release(self, until_ms: int) -> int:
        """Deliver every fill the venue pushed with ``time_ms <= until_ms``; returns how many."""
        delivered = 0
        self._streams = [s for s in self._streams if not s[1].closed]
        for venue_feed, ours, held in self._streams:
            held.extend(venue_feed.drain())
            ready = [f for f in held if f.time_ms <= until_ms]
            if ready:
                held[:] = [f for f in held if f.time_ms > until_ms]
                ours.extend(ready)
                delivered += len(ready)
        return delivered

    def held(self) -> int:
        """Fills pushed by the venue and not released yet (over every stream)."""
        return sum(len(held) + venue_feed.pending() for venue_feed, _, held in self._streams)


class LeaderView:
    """The copy engine's leader side (``CopyService(leader_venue=...)``): the follower's venue for market
    data, orders and account, with the leader fills coming through a ``DelayedLeaderFeed``."""

    def __init__(self, venue: SimVenue, feed: DelayedLeaderFeed) -> None:
        self._venue = venue
        self._feed = feed

    @property
    def gateway(self) -> SimGateway:
        return self._venue.gateway

    @property
    def market(self) -> SimMarketData:
        return self._venue.market

    @property
    def account(self) -> SimAccountState:
        return self._venue.account

    @property
    def leaders(self) -> DelayedLeaderFeed:
        return self._feed

    def events(self) -> AsyncIterator[StreamEvent]:
        return self._venue.events()

    async def close(self) -> None:
        """The follower's venue is closed by its owner."""
