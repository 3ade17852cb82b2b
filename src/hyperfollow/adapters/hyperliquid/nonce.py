"""Per-signer nonces: wall-clock milliseconds, strictly increasing, never reused.

The venue keeps the 100 highest nonces of each signer and refuses a duplicate or one below the
smallest of them; it also wants a nonce within (now - 2 days, now + 1 day). The SDK signs with the
raw wall clock, so two actions of one signer within a millisecond collide (hyperliquid-api.md 8).
Here ``next()`` is ``max(wall ms, last + 1)`` under a lock: SDK calls run on executor threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)


def wall_ms() -> int:
    """Wall-clock epoch milliseconds."""
    return time.time_ns() // 1_000_000


class NonceSource:
    """Monotonic nonces of one signer (share one instance per signer key in a process)."""

    def __init__(self, clock: Callable[[], int] = wall_ms) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last = 0
        self._last_wall: int | None = None

    def next(self) -> int:
        """A nonce greater than every nonce handed out before, as close to the wall clock as possible."""
        with self._lock:
            now = self._clock()
            if self._last_wall is not None and now < self._last_wall:
                # The clock stepped back (NTP, VM resume): keep counting up from the last nonce.
                # Logged once per jump: later readings that are behind ``_last`` but rising are not.
                log.warning(
                    "nonce.clock_jump_back",
                    wall_ms=now,
                    previous_wall_ms=self._last_wall,
                    last_nonce=self._last,
                )
            self._last_wall = now
            self._last = max(now, self._last + 1)
            return self._last

    @property
    def last(self) -> int:
        """The last nonce handed out (0 before the first)."""
        with self._lock:
            return self._last


_BY_SIGNER: dict[str, NonceSource] = {}
_BY_SIGNER_LOCK = threading.Lock()


def nonce_source_for(signer_address: str) -> NonceSource:
    """The process-wide nonce source of one signer: two clients signing with the same key (say, two
    venue connections of one agent) must still never share a nonce."""
    key = signer_address.lower()
    with _BY_SIGNER_LOCK:
        source = _BY_SIGNER.get(key)
        if source is None:
            source = _BY_SIGNER[key] = NonceSource()
        return source
