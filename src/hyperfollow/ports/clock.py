"""The clock port: the one place strategies, copy trading, risk and execution read time from.

Two kinds of time, kept apart on purpose:

* ``now_ns`` / ``now_ms``: epoch time (UTC), what timestamps, cooldowns, TTLs and the venue's time compare
  with. In an accelerated demo it is the venue's clock; in a backtest the simulated one.
* ``monotonic`` (seconds, arbitrary origin): durations measured on the same time base as ``sleep`` and the
  timers (latency, retry pacing, watchdog polls). It never jumps.

``sleep``, ``call_later`` and ``wait_for`` run on the monotonic time base. Implementations:
``hyperfollow.core.clock.LiveClock`` (wall time and the asyncio loop) and ``SimClock`` (virtual time that
moves only when it is driven, deterministically).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Timer(Protocol):
    """A pending ``call_later``; ``cancel`` stops it from running (harmless once it ran)."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Time for one process: read it, wait on it, schedule on it."""

    def now_ns(self) -> int:
        """Epoch nanoseconds (UTC)."""
        ...

    def now_ms(self) -> int:
        """Epoch milliseconds (UTC), ``now_ns() // 1_000_000``."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (the time base of ``sleep`` and timers)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` (``<= 0``: yield once to the event loop)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Run ``callback`` on the event loop after ``delay`` seconds."""
        ...

    async def wait_for(self, aw: Awaitable[T], timeout: float | None) -> T:
        """``aw``'s result, or ``TimeoutError`` (``aw`` cancelled) after ``timeout`` seconds; None waits."""
        ...
