"""Close locks: one holder at a time per key (``close:<account>:<coin>``), with expiry and fencing tokens.

A lock is taken as a *lease*: it expires after ``ttl_ms`` unless extended, so a holder that dies (SIGKILL,
a lost worker) does not block closes for ever. Every lease carries a *fencing token*, strictly increasing
per key across holders, processes and restarts; a holder whose lease ran out and was taken over has an
older token than the new holder, cannot release or extend the new holder's lease, and is told so when it
checks (``extend`` answers False) before acting.

Two implementations of ``CloseLock``:

* ``LocalCloseLock``: in-process (asyncio), the default for one process. Tokens start from the clock's
  epoch time in microseconds, so a restarted process never re-issues a token of its previous life (the
  closer puts the token into its cloids).
* ``RedisCloseLock``: several workers share one Redis. ``SET key value NX PX ttl`` takes the lease, an
  ``INCR`` on the key's counter (never expiring) gives the token, both in one Lua script so no holder
  exists without a token; release and extension are Lua compare-and-delete / compare-and-pexpire on the
  holder's own value (random owner + token), so only the holder can end or prolong its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from hyperfollow.ports.clock import Clock

log = structlog.get_logger(__name__)


class LockUnavailable(Exception):
    """The lock service could not be asked (Redis down, a timeout): nobody knows who holds the lock."""


@dataclass(frozen=True, slots=True)
class Lease:
    """A held lock: ``owner`` proves who holds it, ``token`` orders holders (higher = later)."""

    key: str
    owner: str
    token: int
    ttl_ms: int


class CloseLock(Protocol):
    """Mutual exclusion per key with expiry and fencing tokens (see the module docstring)."""

    async def acquire(self, key: str, ttl_ms: int, *, wait_ms: int = 0) -> Lease | None:
        """A lease on ``key`` for ``ttl_ms``, waiting up to ``wait_ms`` for the current holder to release
        or expire; None when the key is still held after the wait. ``LockUnavailable`` when the lock
        service cannot be reached."""
        ...

    async def release(self, lease: Lease) -> bool:
        """End the lease; False when it was no longer ours (expired, and maybe taken by someone else)."""
        ...

    async def extend(self, lease: Lease, ttl_ms: int) -> bool:
        """Make the lease run ``ttl_ms`` from now; False when it is no longer ours (do not act then)."""
        ...


def _owner() -> str:
    return secrets.token_hex(16)


# ---------------------------------------------------------------------------------------------- local


@dataclass(slots=True)
class _Hold:
    owner: str
    token: int
    expires_at: float


class LocalCloseLock:
    """``CloseLock`` for one process (one event loop): asyncio, no I/O.

    ``clock``: its monotonic time decides expiry, its epoch time (in microseconds) seeds the tokens.
    """

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock
        self._held: dict[str, _Hold] = {}
        self._released: dict[str, asyncio.Event] = {}
        self._last_token = 0

    def _next_token(self) -> int:
        # Strictly increasing, and ahead of any token a previous run of this process handed out.
        self._last_token = max(self._last_token + 1, self._clock.now_ns() // 1000)
        return self._last_token

    def _live(self, key: str) -> _Hold | None:
        hold = self._held.get(key)
        if hold is not None and hold.expires_at <= self._clock.monotonic():
            del self._held[key]  # expired: as if released
            return None
        return hold

    async def acquire(self, key: str, ttl_ms: int, *, wait_ms: int = 0) -> Lease | None:
        """See ``CloseLock.acquire``. Check-and-take has no await in between, so it is atomic on the loop."""
        _check_ttl(ttl_ms)
        deadline = self._clock.monotonic() + wait_ms / 1000
        while True:
            hold = self._live(key)
            now = self._clock.monotonic()
            if hold is None:
                owner = _owner()
                token = self._next_token()
                self._held[key] = _Hold(owner, token, now + ttl_ms / 1000)
                return Lease(key, owner, token, ttl_ms)
            left = deadline - now
            if left <= 0:
                return None
            event = self._released.setdefault(key, asyncio.Event())
            # Wake on a release, or when the holder's lease runs out, whichever comes first.
            with contextlib.suppress(TimeoutError):
                await self._clock.wait_for(event.wait(), timeout=max(0.0, min(left, hold.expires_at - now)))

    async def release(self, lease: Lease) -> bool:
        """See ``CloseLock.release``."""
        hold = self._live(lease.key)
        if hold is None or hold.owner != lease.owner:
            return False
        del self._held[lease.key]
        event = self._released.pop(lease.key, None)
        if event is not None:
            event.set()
        return True

    async def extend(self, lease: Lease, ttl_ms: int) -> bool:
        """See ``CloseLock.extend``."""
        _check_ttl(ttl_ms)
        hold = self._live(lease.key)
        if hold is None or hold.owner != lease.owner:
            return False
        hold.expires_at = self._clock.monotonic() + ttl_ms / 1000
        return True


# ---------------------------------------------------------------------------------------------- redis

# KEYS[1] the lock, KEYS[2] its token counter; ARGV[1] the owner, ARGV[2] ttl ms.
# Returns {token, 0} when taken, {0, pttl} when someone holds it (pttl: ms left on their lease).
_ACQUIRE = """
local pttl = redis.call('PTTL', KEYS[1])
if pttl ~= -2 then
  return {0, pttl}
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
return {token, 0}
"""

# KEYS[1] the lock; ARGV[1] the holder's value. Deletes only the caller's own lease.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1] the lock; ARGV[1] the holder's value, ARGV[2] the new ttl ms.
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class RedisCloseLock:
    """``CloseLock`` shared by workers through one Redis (``redis.asyncio`` client, built by the caller).

    Keys: ``<prefix>{<key>}`` holds ``<token>:<owner>`` with a PX expiry; ``<prefix>{<key>}:fence`` is the
    token counter and never expires (tokens must keep increasing after every lease is gone). Waiting is
    polling: every ``poll_ms`` at most, sooner when the holder's lease ends sooner, on ``clock``.
    """

    def __init__(
        self,
        client: Redis,
        *,
        clock: Clock,
        prefix: str = "hyperfollow:lock:",
        poll_ms: int = 25,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._poll_ms = poll_ms
        self._clock = clock
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._extend = client.register_script(_EXTEND)

    def redis_key(self, key: str) -> str:
        """The Redis key holding the lease on ``key`` (its counter is this + ``:fence``). The braces are a
        Redis Cluster hash tag: both keys of one script must live in one slot."""
        return f"{self._prefix}{{{key}}}"

    @staticmethod
    def _value(lease: Lease) -> str:
        return f"{lease.token}:{lease.owner}"

    async def _call(self, script: Any, keys: list[str], args: list[str | int]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except RedisError as exc:
            log.warning("risk.lock_unavailable", keys=keys, error=repr(exc))
            raise LockUnavailable(f"redis: {exc!r}") from exc

    async def acquire(self, key: str, ttl_ms: int, *, wait_ms: int = 0) -> Lease | None:
        """See ``CloseLock.acquire``."""
        _check_ttl(ttl_ms)
        lock_key = self.redis_key(key)
        deadline = self._clock.monotonic() + wait_ms / 1000
        owner = _owner()
        while True:
            token, pttl = await self._call(
                self._acquire, [lock_key, lock_key + ":fence"], [owner, int(ttl_ms)]
            )
            if int(token) > 0:
                return Lease(key, owner, int(token), ttl_ms)
            left_ms = (deadline - self._clock.monotonic()) * 1000
            if left_ms <= 0:
                return None
            # pttl -1 (a key without expiry: not ours to judge) counts as "poll again".
            pause_ms = self._poll_ms if int(pttl) < 0 else min(self._poll_ms, max(1, int(pttl)))
            await self._clock.sleep(min(pause_ms, left_ms) / 1000)

    async def release(self, lease: Lease) -> bool:
        """See ``CloseLock.release``."""
        done = await self._call(self._release, [self.redis_key(lease.key)], [self._value(lease)])
        return int(done) == 1

    async def extend(self, lease: Lease, ttl_ms: int) -> bool:
        """See ``CloseLock.extend``."""
        _check_ttl(ttl_ms)
        done = await self._call(self._extend, [self.redis_key(lease.key)], [self._value(lease), int(ttl_ms)])
        return int(done) == 1


def _check_ttl(ttl_ms: int) -> None:
    if ttl_ms <= 0:
        raise ValueError(f"a lease needs a positive ttl, got {ttl_ms} ms")
