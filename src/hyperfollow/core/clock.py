"""The two clocks behind the ``Clock`` port, and ``every``, the periodic loop on either.

* ``LiveClock``: epoch time from the wall clock (or from a given source: the embedded venue's accelerated
  clock in a demo), monotonic time, sleeps and timers from the asyncio loop. This module is the only one
  of the trading packages that reads real time.
* ``SimClock``: virtual time. A ``sleep`` (or a timer) waits until the clock is *driven* past its deadline:
  ``advance(seconds)`` / ``run_until(t_ns)`` step it, ``auto()`` / ``run(aw)`` drive it for as long as they
  last. Driving jumps straight to the next deadline as soon as every task is waiting (nothing runnable on
  the event loop), so hours of one-second loops replay in moments. Deadlines are integer nanoseconds; equal
  deadlines fire in the order they were set. Waiting on real I/O counts as waiting: a simulation is meant
  to have none. While driven, a sleep that would be the next thing to happen anyway (nothing else runnable,
  no deadline before or at its own) moves time at once and returns without a turn of the event loop (the
  loop still turns every ``_MAX_JUMPS`` such sleeps): a lone loop then costs a few µs per tick, not a
  loop iteration.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from hyperfollow.ports.clock import Clock, Timer

T = TypeVar("T")

NS = 1_000_000_000
MS_NS = 1_000_000


def _ns(seconds: float) -> int:
    return max(0, round(seconds * NS))


# ---------------------------------------------------------------------------------------------- live


class LiveClock:
    """Wall and asyncio time. ``wall_ms`` replaces the epoch source (e.g. a venue's accelerated clock); the
    monotonic time, sleeps and timers stay real."""

    def __init__(self, wall_ms: Callable[[], int] | None = None) -> None:
        self._wall_ms = wall_ms

    def now_ns(self) -> int:
        return time.time_ns() if self._wall_ms is None else self._wall_ms() * MS_NS

    def now_ms(self) -> int:
        return time.time_ns() // MS_NS if self._wall_ms is None else self._wall_ms()

    def monotonic(self) -> float:
        return time.monotonic()  # the asyncio loop's own time base

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback)

    async def wait_for(self, aw: Awaitable[T], timeout: float | None) -> T:
        return await asyncio.wait_for(aw, timeout)


# ---------------------------------------------------------------------------------------------- simulated


class SimTimer:
    """A ``SimClock.call_later``."""

    __slots__ = ("_callback", "cancelled")

    def __init__(self, callback: Callable[[], object]) -> None:
        self._callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def _run(self) -> None:
        if not self.cancelled:
            self.cancelled = True  # ran: a later cancel is a no-op
            self._callback()


_Target = asyncio.Future[None] | SimTimer
_FALLBACK_SPINS = 16  # loops without a visible ready queue (not asyncio's): passes taken as "all waiting"
_MAX_JUMPS = 64  # sleeps in a row that move time at once, then one real turn of the loop (I/O, signals)


class SimClock:
    """Virtual time starting at ``start_ns`` (or ``start_ms``) epoch; see the module docstring.

    ``monotonic()`` is the simulated time elapsed since the start, in seconds. One drive at a time:
    ``advance``/``run_until`` while ``auto`` runs (or twice at once) is a ``RuntimeError``.
    """

    def __init__(self, start_ns: int = 0, *, start_ms: int | None = None) -> None:
        self._origin = start_ns if start_ms is None else start_ms * MS_NS
        self._now = self._origin
        self._heap: list[tuple[int, int, _Target]] = []
        self._seq = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drive = 0  # the current drive's number; 0 = not driven
        self._drives = itertools.count(1)
        self._target: int | None = None  # the current drive stops there; None = auto, for as long as it runs
        self._done: asyncio.Future[None] | None = None
        self._parked = False  # auto drive with nothing scheduled: the next timer wakes it
        self._ready: deque[object] | None = None  # the loop's runnable callbacks (asyncio's own loop)
        self._handle: object = None  # the drive's next step, as queued on the loop
        self._spins = 0
        self._jumps = 0

    # ------------------------------------------------------------------ reading

    def now_ns(self) -> int:
        return self._now

    def now_ms(self) -> int:
        return self._now // MS_NS

    def monotonic(self) -> float:
        return (self._now - self._origin) / NS

    def next_deadline_ns(self) -> int | None:
        """The earliest pending deadline (cancelled ones are dropped), or None."""
        heap = self._heap
        while heap:
            target = heap[0][2]
            if target.cancelled if isinstance(target, SimTimer) else target.done():
                heapq.heappop(heap)
                continue
            return heap[0][0]
        return None

    # ------------------------------------------------------------------ waiting

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        deadline = self._now + round(seconds * NS)
        if self._drive and self._may_jump(deadline):
            self._now = deadline
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._push(deadline, future)
        await future  # a cancelled sleep leaves a done future behind: skipped when its time comes

    def _may_jump(self, deadline: int) -> bool:
        """The drive would wake this sleep next with nothing running before it (nothing else runnable, no
        earlier or equal deadline): then time moves there at once, without a turn of the event loop."""
        ready = self._ready
        if ready is None or (self._target is not None and deadline > self._target):
            return False
        if ready and not (len(ready) == 1 and ready[0] is self._handle):
            return False
        first = self.next_deadline_ns()
        if first is not None and first <= deadline:
            return False
        self._jumps += 1
        if self._jumps >= _MAX_JUMPS:
            self._jumps = 0
            return False
        return True

    def call_later(self, delay: float, callback: Callable[[], object]) -> SimTimer:
        timer = SimTimer(callback)
        self._push(self._now + _ns(delay), timer)
        return timer

    async def wait_for(self, aw: Awaitable[T], timeout: float | None) -> T:
        if timeout is None:
            return await aw
        inner = asyncio.ensure_future(aw)
        expired = False

        def expire() -> None:
            nonlocal expired
            if not inner.done():
                expired = True
                inner.cancel()

        timer = self.call_later(timeout, expire)
        try:
            return await inner
        except asyncio.CancelledError:
            if expired:
                raise TimeoutError from None
            raise
        finally:
            timer.cancel()

    def _push(self, deadline: int, target: _Target) -> None:
        heapq.heappush(self._heap, (deadline, next(self._seq), target))
        if self._parked and self._loop is not None:
            self._parked = False
            self._handle = self._loop.call_soon(self._step, self._drive)

    # ------------------------------------------------------------------ driving

    async def advance(self, seconds: float) -> None:
        """Move time ``seconds`` forward, firing every deadline on the way (see ``run_until``)."""
        await self.run_until(self._now + _ns(seconds))

    async def run_until(self, t_ns: int) -> None:
        """Move time to ``t_ns``: each pending deadline up to it fires in turn (time is set to it first), and
        the tasks it wakes run until every task waits again before the next one fires; the deadlines they
        set on the way fire too when they fall within ``t_ns``. Time then stays at ``t_ns``."""
        if t_ns < self._now:
            raise ValueError("the clock never goes backwards")
        loop = self._begin(t_ns)
        self._done = done = loop.create_future()
        try:
            await done
        finally:
            self._end()

    @contextlib.asynccontextmanager
    async def auto(self) -> AsyncIterator[None]:
        """Drive the clock for as long as the block runs: whenever every task waits, time jumps to the next
        deadline (with nothing scheduled, it waits for the next timer)."""
        self._begin(None)
        try:
            yield
        finally:
            self._end()

    async def run(self, aw: Awaitable[T]) -> T:
        """``aw``'s result, the clock driven (``auto``) while it runs."""
        async with self.auto():
            return await aw

    def _begin(self, target: int | None) -> asyncio.AbstractEventLoop:
        if self._drive:
            raise RuntimeError("the simulated clock is already being driven")
        self._loop = loop = asyncio.get_running_loop()
        self._drive = next(self._drives)
        self._target = target
        self._parked = False
        self._ready = getattr(loop, "_ready", None)
        self._spins = 0
        self._handle = loop.call_soon(self._step, self._drive)
        return loop

    def _end(self) -> None:
        self._drive = 0
        self._target = None
        self._done = None
        self._parked = False

    def _idle(self) -> bool:
        """Nothing else runnable on the loop: every task waits (on the clock, or on something else)."""
        if self._ready is not None:
            return not self._ready
        self._spins += 1
        if self._spins < _FALLBACK_SPINS:
            return False
        self._spins = 0
        return True

    def _step(self, drive: int) -> None:
        """One driving step, as a loop callback: wait for quiet, then fire the next deadline."""
        if drive != self._drive:
            return  # that drive ended
        loop = self._loop
        assert loop is not None
        if not self._idle():
            self._handle = loop.call_soon(self._step, drive)
            return
        deadline = self.next_deadline_ns()
        target = self._target
        if deadline is None or (target is not None and deadline > target):
            if target is None:
                self._parked = True  # auto: the next timer set wakes the drive
                return
            self._now = max(self._now, target)
            if self._done is not None and not self._done.done():
                self._done.set_result(None)
            return
        self._now = deadline
        heap = self._heap
        while heap and heap[0][0] <= deadline:  # all of this instant, in the order they were set
            item = heapq.heappop(heap)[2]
            if isinstance(item, SimTimer):
                if not item.cancelled:
                    loop.call_soon(item._run)
            elif not item.done():
                item.set_result(None)
        self._handle = loop.call_soon(self._step, drive)


# ---------------------------------------------------------------------------------------------- loops


async def every(clock: Clock, period: float) -> AsyncIterator[int]:
    """Tick every ``period`` seconds on ``clock`` (its monotonic time base), drift-free: tick ``k`` is due
    ``k * period`` after the start. Yields ``k``; a body that overran whole periods skips the ticks it
    missed (a gap in ``k``, never a burst)."""
    period_ns = _ns(period)
    if period_ns <= 0:
        raise ValueError("a period must be positive")
    start = now = round(clock.monotonic() * NS)
    k = 0
    while True:
        k += 1
        due = start + k * period_ns
        while (left := due - now) > 0:  # a live sleep may end a hair early: sleep the rest
            await clock.sleep(left / NS)
            now = round(clock.monotonic() * NS)
        yield k
        now = round(clock.monotonic() * NS)
        if (late := now - due) >= period_ns:
            k += late // period_ns
