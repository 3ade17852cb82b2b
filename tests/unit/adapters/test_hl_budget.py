"""Rate budgets without real time: IP weight bucket, address action budget, backoff schedule."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from structlog.testing import capture_logs

from hyperfollow.adapters.hyperliquid.budget import (
    AddressBudget,
    WeightLimiter,
    backoff_delay,
    info_extra_weight,
    info_weight,
)
from hyperfollow.domain.errors import RateLimited, TransientError
from hyperfollow.domain.model import RateLimitStatus
from hyperfollow.domain.weights import exchange_weight


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, secs: float) -> None:
        self.sleeps.append(secs)
        self.now += secs


@pytest.mark.parametrize(
    ("kind", "weight"),
    [
        ("l2Book", 2), ("allMids", 2), ("clearinghouseState", 2), ("orderStatus", 2),
        ("spotClearinghouseState", 2), ("exchangeStatus", 2), ("userRole", 60), ("meta", 20),
        ("userFillsByTime", 20), ("frontendOpenOrders", 20), ("userRateLimit", 20),
    ],
)  # fmt: skip
def test_info_weights_are_the_venues(kind: str, weight: int) -> None:
    assert info_weight({"type": kind}) == weight


def test_exchange_and_item_weights() -> None:
    assert [exchange_weight(n) for n in (0, 1, 39, 40, 79, 80)] == [1, 1, 1, 2, 2, 3]
    assert info_extra_weight({"type": "userFillsByTime"}, [{}] * 45) == 2
    assert info_extra_weight({"type": "candleSnapshot"}, [{}] * 130) == 2
    assert info_extra_weight({"type": "l2Book"}, [{}] * 100) == 0
    assert info_extra_weight({"type": "userFills"}, {"not": "a list"}) == 0


async def test_limiter_counts_the_weight_of_the_last_minute() -> None:
    t = FakeTime()
    limiter = WeightLimiter(1200, clock=t.clock, sleep=t.sleep)
    await limiter.acquire(20)
    t.now += 30
    await limiter.acquire(2)
    limiter.charge(3)
    stats = limiter.stats
    assert (stats.weight_last_minute, stats.weight_total, stats.requests) == (25, 25, 2)
    t.now += 31  # the first request is more than a minute old
    assert (limiter.stats.weight_last_minute, limiter.stats.weight_total) == (5, 25)


async def test_limiter_spends_the_burst_then_waits_for_refill() -> None:
    t = FakeTime()
    limiter = WeightLimiter(1200, clock=t.clock, sleep=t.sleep)
    assert await limiter.acquire(1200) == 0.0
    assert t.sleeps == []
    with capture_logs() as logs:
        waited = await limiter.acquire(20, what="meta")  # 20 weight at 20/s: one second
    assert waited == pytest.approx(1.0)
    assert t.sleeps == [pytest.approx(1.0)]
    assert [e["event"] for e in logs] == ["venue.weight_wait"]
    assert logs[0]["request"] == "meta"
    assert limiter.available == pytest.approx(0.0)
    t.now += 30  # half a minute refills 600
    assert limiter.available == pytest.approx(600.0)
    t.now += 600  # never more than the bucket
    assert limiter.available == pytest.approx(1200.0)


async def test_limiter_charge_after_the_fact_delays_the_next_request() -> None:
    t = FakeTime()
    limiter = WeightLimiter(120, clock=t.clock, sleep=t.sleep)  # 2 weight/s
    await limiter.acquire(100)
    limiter.charge(30)  # the answer carried many items
    assert limiter.available == pytest.approx(-10.0)
    waited = await limiter.acquire(2)
    assert waited == pytest.approx(6.0)  # from -10 to 2 at 2/s


async def test_limiter_lets_an_oversized_request_through_alone() -> None:
    t = FakeTime()
    limiter = WeightLimiter(10, clock=t.clock, sleep=t.sleep)
    assert await limiter.acquire(50) == 0.0  # capped at the bucket size instead of waiting forever


@pytest.mark.parametrize("attempt", range(12))
def test_backoff_is_full_jitter_capped(attempt: int) -> None:
    rng = random.Random(attempt)
    draws = [backoff_delay(attempt, 0.2, 5.0, rng) for _ in range(300)]
    ceiling = min(5.0, 0.2 * 2**attempt)
    assert all(0.0 <= d <= ceiling for d in draws)
    assert max(draws) > ceiling * 0.9  # it really spreads up to the ceiling
    assert min(draws) < ceiling * 0.1


def test_backoff_rejects_negative_attempts() -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(-1, 0.2, 5.0, random.Random(1))


class Venue:
    def __init__(self, used: int, cap: int) -> None:
        self.used, self.cap, self.calls = used, cap, 0

    async def fetch(self) -> RateLimitStatus:
        self.calls += 1
        return RateLimitStatus(used=self.used, cap=self.cap, cum_volume=Decimal(0))


async def test_address_budget_refuses_locally_when_spent() -> None:
    venue = Venue(used=9_990, cap=10_000)
    budget = AddressBudget(venue.fetch, refresh_every=1000, low_water=0)
    await budget.reserve(5)
    assert budget.remaining() == 5
    with capture_logs() as logs, pytest.raises(RateLimited, match="5 left"):
        await budget.reserve(6)  # a batch of 6 orders counts 6
    assert [e["event"] for e in logs] == ["venue.address_budget_exhausted"]
    assert budget.remaining() == 5  # a refused action costs nothing
    # cancels get min(cap + 100000, 2 cap) = 20000: still room
    await budget.reserve(6, cancel=True)
    assert budget.remaining(cancel=True) == 20_000 - 9_990 - 11
    assert venue.calls == 1


async def test_address_budget_refreshes_every_n_and_when_low() -> None:
    venue = Venue(used=0, cap=10_000)
    budget = AddressBudget(venue.fetch, refresh_every=3, low_water=10)
    await budget.reserve(1)
    assert venue.calls == 1  # first use
    await budget.reserve(1)
    await budget.reserve(1)
    assert venue.calls == 1
    await budget.reserve(1)  # 3 sent since the refresh
    assert venue.calls == 2
    venue.used = 9_995  # the venue counts actions we did not send (another process)
    await budget.reserve(1)
    await budget.reserve(1)
    assert venue.calls == 2
    await budget.reserve(1)  # 3 since refresh: re-read, 5 left < low water
    assert venue.calls == 3
    await budget.reserve(1)  # low: refreshed before every action now
    assert venue.calls == 4
    assert budget.status is not None
    assert budget.status.used == 9_995


async def test_address_budget_survives_a_failed_refresh() -> None:
    calls = 0

    async def failing() -> RateLimitStatus:
        nonlocal calls
        calls += 1
        raise TransientError("venue down")

    budget = AddressBudget(failing)
    await budget.reserve(1)  # unknown budget: the venue will judge
    assert calls == 1
    assert budget.remaining() is None
