"""Exactly-once close across workers with a real Redis: ``RedisCloseLock`` (SET NX PX + INCR fencing
token + Lua compare-and-delete) and two closers on separate SimVenues of one exchange account.

Redis: ``HYPERFOLLOW_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``). Every test uses a key
prefix of its own and deletes its keys afterwards. A Redis that cannot be reached fails the test (it is
never skipped).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from hyperfollow.adapters.sim import SimVenue
from hyperfollow.core.clock import LiveClock
from hyperfollow.domain.model import OrderAck, OrderRequest, OrderState, Position, Side, Tif
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.ports.venue import AccountState, OrderGateway
from hyperfollow.risk.close import CloseSettings, CloseStatus, ExactlyOnceCloser, Ports
from hyperfollow.risk.locks import Lease, LockUnavailable, RedisCloseLock

REDIS_URL = os.environ.get("HYPERFOLLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
HOW_TO_START = (
    "start it with `bash scripts/services.sh` (runs `redis-server --daemonize yes --bind 127.0.0.1 "
    "--port 6379`), or point HYPERFOLLOW_TEST_REDIS_URL at a Redis you may write to"
)
START_MS = 1_767_225_600_000
OURS = "0x" + "a1" * 20
KEY = f"close:{OURS}:ETH"
LIVE = LiveClock()


class Crash(BaseException):
    """A worker dying mid-close: nothing of the closer's own error handling runs past it."""


class RacingGateway:
    """Yields around each call, records orders that reached the venue; ``crash_after`` really sends
    and then dies (the worker is SIGKILLed after its order left)."""

    def __init__(self, inner: OrderGateway, *, crash_after: bool = False) -> None:
        self.inner = inner
        self.sent: list[OrderRequest] = []
        self.attempts = 0
        self.crash_after = crash_after

    async def submit(self, order: OrderRequest) -> OrderAck:
        self.attempts += 1
        await asyncio.sleep(0)
        ack = await self.inner.submit(order)
        self.sent.append(order)
        if self.crash_after:
            raise Crash
        await asyncio.sleep(0)
        return ack

    async def order_status(self, ref: int | str) -> OrderState | None:
        return await self.inner.order_status(ref)


class RacingAccount:
    def __init__(self, inner: AccountState) -> None:
        self.inner = inner
        self.address = inner.address

    async def positions(self) -> list[Position]:
        await asyncio.sleep(0)
        out = await self.inner.positions()
        await asyncio.sleep(0)
        return out


@dataclass
class Worker:
    """One worker process: its own Redis connection, lock, venue connection and closer."""

    client: Redis
    lock: RedisCloseLock
    venue: SimVenue
    gateway: RacingGateway
    closer: ExactlyOnceCloser


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """The test Redis, checked reachable; its keys under this test's prefix are deleted afterwards."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        pytest.fail(f"Redis at {REDIS_URL} is not reachable ({exc!r}): {HOW_TO_START}")
    try:
        yield REDIS_URL
    finally:
        await client.aclose()


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    prefix = f"hftest:{secrets.token_hex(6)}:"
    yield prefix
    client = Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def exchange() -> EmbeddedExchange:
    ex = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=START_MS)
    ex.set_price("ETH", "3000")
    ex.fund(OURS, "10000")
    return ex


@pytest.fixture
async def workers(
    redis_url: str, prefix: str, exchange: EmbeddedExchange
) -> AsyncIterator[tuple[Worker, Worker]]:
    made: list[Worker] = []
    for _ in range(2):
        client = Redis.from_url(redis_url)
        lock = RedisCloseLock(client, prefix=prefix, poll_ms=10, clock=LIVE)
        venue = SimVenue(exchange, OURS)
        gateway = RacingGateway(venue.gateway)
        ports = Ports(
            cast(OrderGateway, gateway), venue.market, cast(AccountState, RacingAccount(venue.account))
        )
        made.append(Worker(client, lock, venue, gateway, ExactlyOnceCloser({OURS: ports}, lock, clock=LIVE)))
    yield made[0], made[1]
    for w in made:
        await w.venue.close()
        await w.client.aclose()


async def open_long(venue: SimVenue, size: str) -> None:
    ack = await venue.gateway.submit(OrderRequest("ETH", Side.BUY, Decimal(size), Decimal("3100"), Tif.IOC))
    assert ack.filled_size == Decimal(size)


async def eth_size(venue: SimVenue) -> Decimal:
    return next((p.size for p in await venue.account.positions() if p.coin == "ETH"), Decimal(0))


async def wait_gone(client: Redis, key: str) -> None:
    """Until Redis expires ``key`` (no assertion on how long that takes)."""
    while await client.exists(key):
        await asyncio.sleep(0.01)


# ------------------------------------------------------------------------------------------- closes


async def test_two_workers_racing_to_close_one_position_send_one_order(
    workers: tuple[Worker, Worker],
) -> None:
    a, b = workers
    await open_long(a.venue, "2")
    results = await asyncio.gather(
        *(
            w.closer.close(OURS, "ETH", reason)
            for reason in ("stop_loss", "manual", "leader_closed")
            for w in (a, b)
        )
    )
    sent = a.gateway.sent + b.gateway.sent
    assert len(sent) == 1
    assert (sent[0].size, sent[0].side, sent[0].reduce_only) == (Decimal("2"), Side.SELL, True)
    assert a.gateway.attempts + b.gateway.attempts == 1
    assert await eth_size(a.venue) == 0
    assert all(r.ok for r in results)
    assert [r.status for r in results].count(CloseStatus.CLOSED) == 1


async def test_a_worker_that_crashed_after_sending_leaves_a_lease_that_expires_and_nothing_is_doubled(
    workers: tuple[Worker, Worker],
) -> None:
    a, b = workers
    await open_long(a.venue, "1")
    a.gateway.crash_after = True
    crashing = ExactlyOnceCloser(
        {OURS: Ports(cast(OrderGateway, a.gateway), a.venue.market, a.venue.account)},
        a.lock,
        CloseSettings(lease_ttl_ms=150),
        clock=LIVE,
    )
    with pytest.raises(Crash):
        await crashing.close(OURS, "ETH", "stop_loss")
    assert await a.client.exists(a.lock.redis_key(KEY))  # the dead worker's lease is still there

    result = await b.closer.close(OURS, "ETH", "monitor")  # waits for the expiry, then reads flat
    assert result.status is CloseStatus.ALREADY_FLAT
    assert b.gateway.attempts == 0
    assert len(a.gateway.sent) == 1
    assert await eth_size(b.venue) == 0


async def test_a_worker_that_crashed_before_sending_is_taken_over_after_its_lease_expires(
    workers: tuple[Worker, Worker],
) -> None:
    a, b = workers
    await open_long(a.venue, "1")
    dead = await a.lock.acquire(KEY, 150)  # took the lock, then died without releasing it
    assert dead is not None
    result = await b.closer.close(OURS, "ETH", "circuit_breaker")
    assert result.status is CloseStatus.CLOSED
    assert result.token is not None
    assert result.token > dead.token
    assert len(b.gateway.sent) == 1
    assert await eth_size(b.venue) == 0


async def test_a_held_lease_makes_the_other_worker_answer_busy_without_an_order(
    workers: tuple[Worker, Worker], exchange: EmbeddedExchange
) -> None:
    a, b = workers
    await open_long(a.venue, "1")
    held = await a.lock.acquire(KEY, 60_000)
    assert held is not None
    impatient = ExactlyOnceCloser({OURS: b.venue}, b.lock, CloseSettings(wait_ms=0), clock=LIVE)
    result = await impatient.close(OURS, "ETH", "manual")
    assert result.status is CloseStatus.BUSY
    assert await eth_size(b.venue) == 1
    assert await a.lock.release(held)
    assert (await impatient.close(OURS, "ETH", "manual")).status is CloseStatus.CLOSED


async def test_an_unreachable_redis_fails_the_close_without_an_order(exchange: EmbeddedExchange) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    venue = SimVenue(exchange, OURS)
    try:
        await open_long(venue, "1")
        closer = ExactlyOnceCloser({OURS: venue}, RedisCloseLock(client, clock=LIVE), clock=LIVE)
        result = await closer.close(OURS, "ETH", "manual")
        assert result.status is CloseStatus.FAILED
        assert "redis" in result.error
        assert await eth_size(venue) == 1
        with pytest.raises(LockUnavailable):
            await RedisCloseLock(client, clock=LIVE).release(Lease(KEY, "x", 1, 1000))
    finally:
        await venue.close()
        await client.aclose()


# ------------------------------------------------------------------------------------------ the lock


async def test_a_stale_holder_cannot_release_or_extend_the_new_holders_lease(
    workers: tuple[Worker, Worker],
) -> None:
    a, b = workers
    old = await a.lock.acquire(KEY, 100)
    assert old is not None
    await wait_gone(a.client, a.lock.redis_key(KEY))
    new = await b.lock.acquire(KEY, 60_000)
    assert new is not None
    assert new.token > old.token

    assert not await a.lock.release(old)
    assert not await a.lock.extend(old, 60_000)
    assert await b.client.get(b.lock.redis_key(KEY)) == f"{new.token}:{new.owner}".encode()
    assert await a.lock.acquire(KEY, 60_000) is None  # still held by the new holder

    assert await b.lock.extend(new, 60_000)
    assert await b.lock.release(new)
    assert not await b.client.exists(b.lock.redis_key(KEY))


async def test_tokens_strictly_increase_across_workers(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    tokens = []
    for i in range(10):
        lock = (a, b)[i % 2].lock
        lease = await lock.acquire(KEY, 60_000)
        assert lease is not None
        tokens.append(lease.token)
        assert await lock.release(lease)
    assert tokens == sorted(set(tokens))
    assert len(tokens) == 10


async def test_only_one_of_many_concurrent_acquirers_gets_the_lease(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    leases = await asyncio.gather(*(w.lock.acquire(KEY, 60_000) for w in (a, b) for _ in range(5)))
    held = [lease for lease in leases if lease is not None]
    assert len(held) == 1


async def test_a_waiting_worker_gets_the_lease_when_the_holder_releases(
    workers: tuple[Worker, Worker],
) -> None:
    a, b = workers
    holder = await a.lock.acquire(KEY, 60_000)
    assert holder is not None
    waiter = asyncio.ensure_future(b.lock.acquire(KEY, 60_000, wait_ms=30_000))
    await asyncio.sleep(0.03)
    assert not waiter.done()
    assert await a.lock.release(holder)
    lease = await waiter
    assert lease is not None
    assert lease.token > holder.token
