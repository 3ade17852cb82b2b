"""Exactly-once close over SimVenue on a stepped embedded exchange (seed 7, no simulated traders, the market
maker quoting ETH around $3,000), and the in-process ``LocalCloseLock``.

SimVenue answers without ever yielding to the event loop, so concurrent closes would simply run one after
another; the ``Racing*`` doubles yield around every call so that the closes really interleave (a control
test shows that, without a lock, they then all send).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import cast

import pytest

from hyperfollow.adapters.sim import SimVenue
from hyperfollow.core.clock import LiveClock, SimClock
from hyperfollow.domain.errors import OutcomeUnknown
from hyperfollow.domain.model import OrderAck, OrderRequest, OrderState, Position, Side, Tif
from hyperfollow.domain.rules import Instrument
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.ports.venue import AccountState, OrderGateway
from hyperfollow.risk.close import (
    CloseResult,
    CloseSettings,
    CloseStatus,
    ExactlyOnceCloser,
    Ports,
    close_price,
    close_size,
)
from hyperfollow.risk.locks import Lease, LocalCloseLock

START_MS = 1_767_225_600_000
OURS = "0x" + "a1" * 20
ETH = Instrument("ETH", 1, 4, 25)


class RacingGateway:
    """A gateway that yields around each call and records every order that reached the venue.

    ``unknown_after`` submits really reach the venue and then raise ``OutcomeUnknown`` (the answer was
    lost); ``lost_before`` submits raise it without reaching the venue (the request was lost)."""

    def __init__(self, inner: OrderGateway, *, unknown_after: int = 0, lost_before: int = 0) -> None:
        self.inner = inner
        self.sent: list[OrderRequest] = []
        self.attempts = 0
        self.unknown_after = unknown_after
        self.lost_before = lost_before

    async def submit(self, order: OrderRequest) -> OrderAck:
        self.attempts += 1
        await asyncio.sleep(0)
        if self.lost_before:
            self.lost_before -= 1
            raise OutcomeUnknown("timeout before the venue answered", cloids=(order.cloid or "",))
        ack = await self.inner.submit(order)
        self.sent.append(order)
        await asyncio.sleep(0)
        if self.unknown_after:
            self.unknown_after -= 1
            raise OutcomeUnknown("timeout after sending", cloids=(order.cloid or "",))
        return ack

    async def order_status(self, ref: int | str) -> OrderState | None:
        await asyncio.sleep(0)
        return await self.inner.order_status(ref)


class RacingAccount:
    """Account reads that yield before and after asking the venue; ``stale`` replays an old answer."""

    def __init__(self, inner: AccountState) -> None:
        self.inner = inner
        self.stale: list[Position] | None = None
        self.address = inner.address

    async def positions(self) -> list[Position]:
        await asyncio.sleep(0)
        if self.stale is not None:
            out, self.stale = self.stale, None
            return out
        out = await self.inner.positions()
        await asyncio.sleep(0)
        return out


class NoLock:
    """A 'lock' that lets everyone in: the control that shows the race is real."""

    def __init__(self) -> None:
        self.token = 0

    async def acquire(self, key: str, ttl_ms: int, *, wait_ms: int = 0) -> Lease | None:
        self.token += 1
        return Lease(key, "anyone", self.token, ttl_ms)

    async def release(self, lease: Lease) -> bool:
        return True

    async def extend(self, lease: Lease, ttl_ms: int) -> bool:
        return True


LIVE = LiveClock()


class Pauses(LiveClock):
    """The closer's clock, its sleeps recorded instead of slept."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def exchange() -> EmbeddedExchange:
    ex = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=START_MS)
    ex.set_price("ETH", "3000")
    ex.fund(OURS, "10000")
    return ex


@pytest.fixture
async def venue(exchange: EmbeddedExchange) -> AsyncIterator[SimVenue]:
    v = SimVenue(exchange, OURS)
    yield v
    await v.close()


async def open_position(venue: SimVenue, side: Side, size: str) -> Decimal:
    px = Decimal("3100") if side is Side.BUY else Decimal("2900")
    ack = await venue.gateway.submit(OrderRequest("ETH", side, Decimal(size), px, Tif.IOC))
    assert ack.filled_size == Decimal(size)
    [pos] = await venue.account.positions()
    return pos.size


def racing(venue: SimVenue, **kw: int) -> tuple[Ports, RacingGateway, RacingAccount]:
    gateway = RacingGateway(venue.gateway, **kw)
    account = RacingAccount(venue.account)
    ports = Ports(cast(OrderGateway, gateway), venue.market, cast(AccountState, account))
    return ports, gateway, account


async def eth_size(venue: SimVenue) -> Decimal:
    return next((p.size for p in await venue.account.positions() if p.coin == "ETH"), Decimal(0))


# ---------------------------------------------------------------------------------------- the closer


async def test_concurrent_closes_send_one_reduce_only_order_and_leave_the_position_flat(
    venue: SimVenue,
) -> None:
    await open_position(venue, Side.BUY, "1.5")
    ports, gateway, _ = racing(venue)
    closer = ExactlyOnceCloser({OURS: ports}, LocalCloseLock(clock=LIVE), clock=LIVE)
    reasons = ["stop_loss", "leader_closed", "manual", "circuit_breaker"] * 2
    results = await asyncio.gather(*(closer.close(OURS, "ETH", r) for r in reasons))

    assert len(gateway.sent) == 1
    [order] = gateway.sent
    assert (order.side, order.size, order.reduce_only, order.tif) == (
        Side.SELL,
        Decimal("1.5"),
        True,
        Tif.IOC,
    )
    assert await eth_size(venue) == 0
    assert all(r.ok for r in results)
    assert sorted(r.status for r in results) == [CloseStatus.ALREADY_FLAT] * 7 + [CloseStatus.CLOSED]
    [closed] = [r for r in results if r.status is CloseStatus.CLOSED]
    assert (closed.position, closed.filled, closed.cloid) == (Decimal("1.5"), Decimal("1.5"), order.cloid)
    # the venue saw one close fill's order, and it was ours
    fills = [f for f in await venue.account.fills_since(START_MS) if f.direction == "Close Long"]
    assert {f.cloid for f in fills} == {order.cloid}


async def test_without_a_lock_the_same_race_sends_every_close(venue: SimVenue) -> None:
    """The control: the doubles make the closes interleave, so the single order above is the lock's doing."""
    await open_position(venue, Side.BUY, "1")
    ports, gateway, _ = racing(venue)
    closer = ExactlyOnceCloser({OURS: ports}, NoLock(), clock=LIVE)
    await asyncio.gather(*(closer.close(OURS, "ETH", "manual") for _ in range(4)))
    assert gateway.attempts == 4


async def test_closing_a_flat_position_is_a_success_without_an_order(venue: SimVenue) -> None:
    ports, gateway, _ = racing(venue)
    result = await ExactlyOnceCloser({OURS: ports}, LocalCloseLock(clock=LIVE), clock=LIVE).close(
        OURS, "ETH", "manual"
    )
    assert result.ok
    assert result.status is CloseStatus.ALREADY_FLAT
    assert gateway.attempts == 0


async def test_a_short_is_closed_by_a_reduce_only_buy_at_the_slippage_cap(venue: SimVenue) -> None:
    await open_position(venue, Side.SELL, "0.8")
    ports, gateway, _ = racing(venue)
    mid = (await venue.market.mids())["ETH"]
    closer = ExactlyOnceCloser(
        {OURS: ports}, LocalCloseLock(clock=LIVE), CloseSettings(slippage_cap_pct=Decimal("1")), clock=LIVE
    )
    result = await closer.close(OURS, "ETH", "take_profit")
    [order] = gateway.sent
    assert (order.side, order.size, order.reduce_only) == (Side.BUY, Decimal("0.8"), True)
    assert order.price == close_price(ETH, mid, Side.BUY, Decimal("1"))
    assert mid < order.price <= mid * Decimal("1.01")
    assert result.status is CloseStatus.CLOSED
    assert await eth_size(venue) == 0


async def test_a_partial_close_takes_the_fraction_of_the_live_position(venue: SimVenue) -> None:
    await open_position(venue, Side.BUY, "1")
    ports, gateway, _ = racing(venue)
    closer = ExactlyOnceCloser({OURS: ports}, LocalCloseLock(clock=LIVE), clock=LIVE)
    result = await closer.close(OURS, "ETH", "take_profit", Decimal("0.3"))
    assert result.status is CloseStatus.CLOSED
    assert gateway.sent[0].size == Decimal("0.3")
    assert await eth_size(venue) == Decimal("0.7")


async def test_outcome_unknown_after_a_real_send_is_resolved_by_cloid_not_doubled(venue: SimVenue) -> None:
    await open_position(venue, Side.BUY, "1.2")
    ports, gateway, _ = racing(venue, unknown_after=1)
    pauses = Pauses()
    closer = ExactlyOnceCloser({OURS: ports}, LocalCloseLock(clock=LIVE), clock=pauses)
    result = await closer.close(OURS, "ETH", "stop_loss")
    assert pauses.slept == [CloseSettings().resolve_pause_secs]  # the venue got time before the lookup

    assert result.status is CloseStatus.CLOSED
    assert result.filled == Decimal("1.2")
    assert gateway.attempts == 1  # resolved by order_status(cloid), nothing resent
    assert len(gateway.sent) == 1
    assert await eth_size(venue) == 0
    # and a later trigger finds it flat: the lease was released once the outcome was known
    again = await closer.close(OURS, "ETH", "manual")
    assert again.status is CloseStatus.ALREADY_FLAT


async def test_outcome_unknown_of_a_request_the_venue_never_saw_resends_the_same_cloid(
    venue: SimVenue,
) -> None:
    await open_position(venue, Side.BUY, "1")
    ports, gateway, _ = racing(venue, lost_before=1)
    closer = ExactlyOnceCloser({OURS: ports}, LocalCloseLock(clock=LIVE), clock=Pauses())
    result = await closer.close(OURS, "ETH", "stop_loss")
    assert result.status is CloseStatus.CLOSED
    assert gateway.attempts == 2
    [order] = gateway.sent
    assert order.cloid == result.cloid
    assert await eth_size(venue) == 0


async def test_an_outcome_that_stays_unknown_keeps_the_lease_until_it_expires(venue: SimVenue) -> None:
    """Every send times out: one resend with the same cloid, then UNKNOWN, and no other close may start
    before the lease runs out (the order may still land)."""
    await open_position(venue, Side.BUY, "1")
    ports, gateway, _ = racing(venue, lost_before=5)
    clock = SimClock()
    lock = LocalCloseLock(clock=clock)
    closer = ExactlyOnceCloser({OURS: ports}, lock, CloseSettings(wait_ms=0), clock=Pauses())
    result = await closer.close(OURS, "ETH", "stop_loss")
    assert (result.status, result.ok) == (CloseStatus.UNKNOWN, False)
    assert gateway.attempts == 2
    assert (await closer.close(OURS, "ETH", "manual")).status is CloseStatus.BUSY
    assert gateway.attempts == 2
    await clock.advance(CloseSettings().lease_ttl_ms / 1000)
    gateway.lost_before = 0
    assert (await closer.close(OURS, "ETH", "manual")).status is CloseStatus.CLOSED
    assert await eth_size(venue) == 0


async def test_concurrent_closes_with_an_unknown_outcome_still_send_one_order(venue: SimVenue) -> None:
    await open_position(venue, Side.BUY, "1")
    ports, gateway, _ = racing(venue, unknown_after=1)
    closer = ExactlyOnceCloser({OURS: ports}, LocalCloseLock(clock=LIVE), clock=Pauses())
    results = await asyncio.gather(*(closer.close(OURS, "ETH", "manual") for _ in range(5)))
    assert len(gateway.sent) == 1
    assert all(r.ok for r in results)
    assert await eth_size(venue) == 0


async def test_a_position_closed_between_the_read_and_the_send_counts_as_flat(venue: SimVenue) -> None:
    """The venue refuses the reduce-only order (it would open a position); a fresh read shows flat."""
    await open_position(venue, Side.BUY, "1")
    ports, gateway, account = racing(venue)
    account.stale = list(await venue.account.positions())
    await venue.gateway.submit(OrderRequest("ETH", Side.SELL, Decimal("1"), Decimal("2900"), Tif.IOC))
    result = await ExactlyOnceCloser({OURS: ports}, LocalCloseLock(clock=LIVE), clock=LIVE).close(
        OURS, "ETH", "stop_loss"
    )
    assert result.status is CloseStatus.ALREADY_FLAT
    assert gateway.attempts == 1
    assert gateway.sent == []


async def test_a_held_lock_answers_busy_after_the_wait_and_sends_nothing(venue: SimVenue) -> None:
    await open_position(venue, Side.BUY, "1")
    lock = LocalCloseLock(clock=LIVE)
    held = await lock.acquire(f"close:{OURS}:ETH", 60_000)
    assert held is not None
    ports, gateway, _ = racing(venue)
    closer = ExactlyOnceCloser({OURS: ports}, lock, CloseSettings(wait_ms=0), clock=LIVE)
    result = await closer.close(OURS, "ETH", "manual")
    assert (result.status, result.ok) == (CloseStatus.BUSY, False)
    assert gateway.attempts == 0
    assert await eth_size(venue) == 1


async def test_a_holder_whose_lease_was_taken_over_does_not_send(venue: SimVenue) -> None:
    """The fencing check before sending: the lease ran out while the position was being read."""
    await open_position(venue, Side.BUY, "1")
    clock = SimClock()
    lock = LocalCloseLock(clock=clock)
    ports, gateway, _ = racing(venue)

    class Slow(RacingAccount):
        async def positions(self) -> list[Position]:
            out = await self.inner.positions()
            await clock.advance(
                60
            )  # the read took longer than the lease: it expired, and someone took it over
            assert await lock.acquire(f"close:{OURS}:ETH", 60_000) is not None
            return out

    slow = Ports(ports.gateway, venue.market, cast(AccountState, Slow(venue.account)))
    result = await ExactlyOnceCloser(
        {OURS: slow}, lock, CloseSettings(lease_ttl_ms=30_000), clock=LIVE
    ).close(OURS, "ETH", "manual")
    assert result.status is CloseStatus.BUSY
    assert gateway.attempts == 0


# -------------------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("position", "fraction", "size"),
    [
        ("1.2345", "1", "1.2345"),
        ("-1.2345", "1", "1.2345"),
        ("1", "0.3", "0.3"),
        ("0.0003", "0.3", "0.0001"),  # at least one lot
        ("0.0001", "0.5", "0.0001"),  # never more than the position
    ],
)
def test_close_size(position: str, fraction: str, size: str) -> None:
    assert close_size(ETH, Decimal(position), Decimal(fraction)) == Decimal(size)


def test_close_price_is_on_the_grid_and_within_the_cap() -> None:
    assert close_price(ETH, Decimal("3000.05"), Side.SELL, Decimal("0.5")) == Decimal("2985.1")
    assert close_price(ETH, Decimal("3000.05"), Side.BUY, Decimal("0.5")) == Decimal("3015")


def test_result_ok_only_for_closed_or_flat() -> None:
    ok = {s for s in CloseStatus if CloseResult(OURS, "ETH", "x", s).ok}
    assert ok == {CloseStatus.CLOSED, CloseStatus.ALREADY_FLAT}


async def test_fraction_outside_the_unit_interval_is_refused(venue: SimVenue) -> None:
    closer = ExactlyOnceCloser({OURS: venue}, LocalCloseLock(clock=LIVE), clock=LIVE)
    with pytest.raises(ValueError, match="fraction"):
        await closer.close(OURS, "ETH", "manual", Decimal(0))


# -------------------------------------------------------------------------------------- local lock


async def test_local_lock_tokens_strictly_increase_and_only_the_owner_releases() -> None:
    lock = LocalCloseLock(clock=SimClock(5_000))  # 5 us
    first = await lock.acquire("k", 1000)
    assert first is not None
    assert await lock.acquire("k", 1000) is None
    assert not await lock.release(Lease("k", "someone-else", first.token, 1000))
    assert await lock.release(first)
    assert not await lock.release(first)  # twice: no longer ours
    second = await lock.acquire("k", 1000)
    other = await lock.acquire("other", 1000)
    assert second is not None
    assert other is not None
    assert first.token < second.token < other.token


async def test_local_lock_tokens_start_from_the_wall_clock_so_a_restart_never_reuses_one() -> None:
    before = await LocalCloseLock(clock=SimClock(start_ms=1)).acquire("k", 1000)
    after = await LocalCloseLock(clock=SimClock(start_ms=2)).acquire("k", 1000)
    assert before is not None
    assert after is not None
    assert before.token < after.token


async def test_local_lock_expiry_lets_the_next_holder_in_and_fences_the_old_one() -> None:
    clock = SimClock()
    lock = LocalCloseLock(clock=clock)
    crashed = await lock.acquire("k", 500)
    assert crashed is not None
    await clock.advance(0.499)
    assert await lock.acquire("k", 500) is None
    await clock.advance(0.002)
    taker = await lock.acquire("k", 500)
    assert taker is not None
    assert taker.token > crashed.token
    assert not await lock.extend(crashed, 500)
    assert not await lock.release(crashed)
    assert await lock.extend(taker, 500)
    assert await lock.release(taker)


async def test_local_lock_extension_keeps_the_lease() -> None:
    clock = SimClock()
    lock = LocalCloseLock(clock=clock)
    lease = await lock.acquire("k", 500)
    assert lease is not None
    await clock.advance(0.4)
    assert await lock.extend(lease, 500)
    await clock.advance(0.4)
    assert await lock.acquire("k", 500) is None


async def test_local_lock_waiter_gets_the_lease_when_the_holder_releases() -> None:
    lock = LocalCloseLock(clock=LIVE)
    holder = await lock.acquire("k", 60_000)
    assert holder is not None
    waiter = asyncio.ensure_future(lock.acquire("k", 60_000, wait_ms=60_000))
    await asyncio.sleep(0)
    assert not waiter.done()
    assert await lock.release(holder)
    lease = await waiter
    assert lease is not None
    assert lease.token > holder.token


async def test_local_lock_refuses_a_non_positive_ttl() -> None:
    with pytest.raises(ValueError, match="ttl"):
        await LocalCloseLock(clock=LIVE).acquire("k", 0)
