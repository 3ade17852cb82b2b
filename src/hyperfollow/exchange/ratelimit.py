"""The real venue's per-IP REST budget: 1,200 weight per minute, with per-request-type weights."""

from __future__ import annotations

import time
from collections import deque


class IpWeightLimiter:
    """Sliding one-minute window of spent weight per IP."""

    def __init__(self, per_minute: int = 1200, window_s: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window_s = window_s
        self._spent: dict[str, deque[tuple[float, int]]] = {}
        self._totals: dict[str, int] = {}

    def try_spend(self, ip: str, weight: int, now: float | None = None) -> bool:
        """Spend ``weight`` for ``ip`` if the budget allows; False means answer 429."""
        now = time.monotonic() if now is None else now
        spent = self._spent.setdefault(ip, deque())
        total = self._totals.get(ip, 0)
        while spent and spent[0][0] <= now - self.window_s:
            total -= spent.popleft()[1]
        if total + weight > self.per_minute:
            self._totals[ip] = total
            return False
        spent.append((now, weight))
        self._totals[ip] = total + weight
        return True

    def used(self, ip: str) -> int:
        return self._totals.get(ip, 0)
