"""Staying inside the venue's budgets instead of being refused by them.

Two budgets (hyperliquid-api.md 7):

* per IP, 1,200 weight a minute over every REST request: ``WeightLimiter`` makes the caller wait, and counts
  what was spent (``WeightLimiter.stats``: the last minute's weight, HTTP 429 answers, retries, give-ups);
* per address, actions only: 10,000 + 1 per USDC of cumulative volume (``userRateLimit``), a batch of
  n orders counting n, cancels allowed ``min(cap + 100000, 2 * cap)``. ``AddressBudget`` counts what
  we send between refreshes and refuses locally (``RateLimited``) before the venue would.

``backoff_delay`` is the retry schedule of transient failures (full jitter, capped).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from hyperfollow.domain.errors import RateLimited, TransientError
from hyperfollow.domain.model import RateLimitStatus
from hyperfollow.domain.weights import info_base_weight, info_item_weight

log = structlog.get_logger(__name__)


def info_weight(payload: Any) -> int:
    """Weight of an /info request, known before sending."""
    return info_base_weight(payload.get("type") if isinstance(payload, dict) else None)


def info_extra_weight(payload: Any, result: Any) -> int:
    """Weight the venue adds for the items an answer carries (known only afterwards)."""
    if not isinstance(result, list):
        return 0
    return info_item_weight(payload.get("type") if isinstance(payload, dict) else None, len(result))


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): uniform in [0, min(cap, base * 2**attempt)].

    Full jitter spreads the retries of many clients that failed together.
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    ceiling = min(cap, base * (2 ** min(attempt, 62)))
    return rng.uniform(0.0, ceiling)


@dataclass(frozen=True, slots=True)
class WeightStats:
    """What the REST client spent of the IP budget: weight in the last 60 s and since start, requests,
    HTTP 429 answers (the venue refused: our budget and the venue's disagree), retries of transient
    failures, requests given up after the retries, and seconds spent waiting for weight."""

    weight_last_minute: int = 0
    budget_per_minute: int = 1200  # the IP budget the limiter spends
    weight_total: int = 0
    requests: int = 0
    rate_limited: int = 0
    retries: int = 0
    give_ups: int = 0
    waited_secs: float = 0.0

    def text(self) -> str:
        """One line for a view or a log."""
        return (
            f"weight {self.weight_last_minute}/min of {self.budget_per_minute}, 429s {self.rate_limited}, "
            f"retries {self.retries}, give-ups {self.give_ups}"
        )


class WeightLimiter:
    """Async token bucket: ``per_minute`` weight, refilled continuously, bursts up to ``per_minute``.

    ``acquire`` waits (FIFO) until the weight is there instead of letting the venue answer 429.
    Clock and sleep are injectable so tests need no real time. The client reports its 429s, retries and
    give-ups (``note_*``) so that ``stats`` tells the whole story of the IP budget.
    """

    def __init__(
        self,
        per_minute: int = 1200,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # weight per second
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = asyncio.Lock()
        self._spent: deque[tuple[float, int]] = deque()  # (time, weight) of the last 60 s
        self._minute_weight = 0
        self._total = 0
        self._requests = 0
        self._rate_limited = 0
        self._retries = 0
        self._give_ups = 0
        self._waited = 0.0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    @property
    def available(self) -> float:
        """Weight that could be spent now without waiting."""
        self._refill()
        return self._tokens

    async def acquire(self, weight: int, *, what: str = "") -> float:
        """Spend ``weight``, waiting as long as needed; returns the seconds waited."""
        weight = min(weight, int(self.capacity))  # a request heavier than the bucket still goes, alone
        waited = 0.0
        async with self._lock:
            self._refill()
            while self._tokens < weight:
                delay = (weight - self._tokens) / self.rate
                if waited == 0.0:
                    log.info("venue.weight_wait", weight=weight, wait_secs=round(delay, 3), request=what)
                await self._sleep(delay)
                waited += delay
                self._refill()
            self._tokens -= weight
        self._requests += 1
        self._waited += waited
        self._count(weight)
        return waited

    def charge(self, weight: int) -> None:
        """Spend weight after the fact (item-heavy answers); the balance may go negative."""
        if weight > 0:
            self._refill()
            self._tokens -= weight
            self._count(weight)

    def _count(self, weight: int) -> None:
        now = self._clock()
        self._spent.append((now, weight))
        self._minute_weight += weight
        self._total += weight
        self._expire(now)

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - 60.0:
            self._minute_weight -= self._spent.popleft()[1]

    def note_retry(self, *, rate_limited: bool) -> None:
        """A transient failure is retried (``rate_limited``: the venue answered 429)."""
        self._retries += 1
        self._rate_limited += rate_limited

    def note_give_up(self, *, rate_limited: bool) -> None:
        """A transient failure outlasted the retries."""
        self._give_ups += 1
        self._rate_limited += rate_limited

    @property
    def stats(self) -> WeightStats:
        """The counters now (see ``WeightStats``)."""
        self._expire(self._clock())
        return WeightStats(
            weight_last_minute=self._minute_weight,
            budget_per_minute=int(self.capacity),
            weight_total=self._total,
            requests=self._requests,
            rate_limited=self._rate_limited,
            retries=self._retries,
            give_ups=self._give_ups,
            waited_secs=round(self._waited, 3),
        )


RateLimitFetcher = Callable[[], Awaitable[RateLimitStatus]]


class AddressBudget:
    """The address action budget, counted locally between ``userRateLimit`` refreshes.

    ``reserve(n)`` before every action: refreshes from the venue at first use, every
    ``refresh_every`` actions, and whenever the local estimate drops below ``low_water``; refuses
    with ``RateLimited`` (nothing sent) when the action would not fit.
    """

    def __init__(self, fetch: RateLimitFetcher, *, refresh_every: int = 200, low_water: int = 100) -> None:
        self._fetch = fetch
        self.refresh_every = refresh_every
        self.low_water = low_water
        self._status: RateLimitStatus | None = None
        self._sent_since_refresh = 0
        self._lock = asyncio.Lock()

    @property
    def status(self) -> RateLimitStatus | None:
        """The venue's last answer (None before the first refresh)."""
        return self._status

    def remaining(self, *, cancel: bool = False) -> int | None:
        """Actions left by the local estimate (None before the first refresh)."""
        if self._status is None:
            return None
        cap = self._status.cap
        if cancel:  # the venue gives cancels extra room so that a spent account can still get out
            cap = min(cap + 100_000, 2 * cap)
        return cap - self._status.used - self._sent_since_refresh

    def update(self, status: RateLimitStatus) -> None:
        """Take a fresh ``userRateLimit`` answer (resets the local count)."""
        self._status = status
        self._sent_since_refresh = 0

    async def refresh(self) -> RateLimitStatus:
        """Ask the venue now."""
        status = await self._fetch()
        self.update(status)
        return status

    def _stale(self) -> bool:
        remaining = self.remaining()
        return (
            self._status is None
            or self._sent_since_refresh >= self.refresh_every
            or (remaining is not None and remaining < self.low_water)
        )

    async def reserve(self, n: int, *, cancel: bool = False) -> None:
        """Count ``n`` actions (a batch of n orders or cancels) or raise ``RateLimited`` before sending."""
        async with self._lock:
            if self._stale():
                try:
                    await self.refresh()
                except TransientError as exc:  # do not stop trading over a budget query
                    log.warning("venue.address_budget_refresh_failed", error=str(exc))
            remaining = self.remaining(cancel=cancel)
            if remaining is None:  # never known: the venue will say so itself
                return
            if remaining < n:
                status = self._status
                assert status is not None
                log.warning(
                    "venue.address_budget_exhausted",
                    needed=n,
                    remaining=remaining,
                    used=status.used,
                    cap=status.cap,
                    cancel=cancel,
                )
                raise RateLimited(
                    f"Address action budget spent: {n} needed, {max(0, remaining)} left "
                    f"({status.used} used of {status.cap}; 1 more per USDC traded)."
                )
            self._sent_since_refresh += n
