"""The exchange's clock: wall time scaled by a speed factor, or stepped by the operator."""

from __future__ import annotations

import time


class SimClock:
    """Simulated milliseconds since the epoch.

    Real-time mode: starts at ``start_ms`` (default: the wall clock now) and runs ``speed`` times as
    fast as the wall clock (``speed=60`` is one simulated minute per second). Stepped mode: time only
    moves when ``advance`` is called (tests, backtests, ``POST /sim/advance``).
    """

    def __init__(self, start_ms: int | None = None, speed: float = 1.0, stepped: bool = False) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.stepped = stepped
        self._base_ms = int(time.time() * 1000) if start_ms is None else start_ms
        self._wall0 = time.monotonic()
        self._offset_ms = 0

    def now_ms(self) -> int:
        if self.stepped:
            return self._base_ms + self._offset_ms
        elapsed = (time.monotonic() - self._wall0) * 1000.0 * self.speed
        return self._base_ms + self._offset_ms + int(elapsed)

    def advance(self, ms: int) -> int:
        """Move simulated time forward by ``ms`` (any mode); returns the new time."""
        if ms < 0:
            raise ValueError("the clock never goes backwards")
        self._offset_ms += ms
        return self.now_ms()

    def jump(self, ms: int) -> int:
        """A clock-jump fault: time leaps forward by ``ms`` at once; returns the new time.

        The same offset move as ``advance`` (so it works stepped or in real time, where the wall-clock
        progression simply continues from the new time), but the operator's ``advance`` walks the
        market through every second while a jump is a discontinuity: whatever steps the market next
        (the real-time ticker, or the next ``advance``) sees the whole gap at once. Only forward: the
        venue's time is block time and never runs backwards, and candles, funding and the trigger
        engine rely on that.
        """
        if isinstance(ms, bool) or not isinstance(ms, int) or ms <= 0:
            raise ValueError("a clock jump must be a positive integer number of milliseconds")
        self._offset_ms += ms
        return self.now_ms()
