"""Fill de-duplication for streams that merge WebSocket push, REST polling and gap backfill.

The same fill reaches us several times: in the ``userFills`` snapshot on every (re)subscribe, as a
push, in a poll that overlaps the previous one, in the backfill after a reconnect. ``FillDeduper``
lets each one through once, in memory bounded per address:

* it remembers the keys (``tid``, or ``Fill.key`` for the venue's old fills without one) of the last
  ``max_keys`` fills accepted per address;
* when it forgets a key (the oldest accepted first) it raises that address's *floor* to the forgotten
  fill's time: a fill at or below the floor can no longer be told apart from one already seen, so it
  is dropped as a duplicate (a lost very old fill is the price of never delivering one twice: for copy
  trading a double is worse than a miss);
* optionally (``window_ms``) keys older than the newest fill minus the window are forgotten as well,
  raising the floor the same way.

A fill older than fills already accepted but not yet seen (a backfill finding one the push missed)
is accepted once: the deduper orders nothing, it only refuses repeats. It is pure (no I/O, no clock)
and cheap: a dict lookup, a set lookup and a deque append per fill.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from hyperfollow.domain.model import Fill

DEFAULT_MAX_KEYS = 10_000  # the venue serves an account's 10,000 most recent fills at most


@dataclass(slots=True)
class _Seen:
    keys: set[Hashable] = field(default_factory=set)
    order: deque[tuple[Hashable, int]] = field(default_factory=deque)  # (key, time_ms), accept order
    floor: int | None = None  # fills at or before this time count as seen
    newest: int | None = None  # the latest time accepted (the watermark)


def fill_key(fill: Fill) -> Hashable:
    """The per-address identity of a fill: its trade id, or ``Fill.key`` when the venue had none."""
    return fill.tid if fill.tid is not None else fill.key


class FillDeduper:
    """Accepts each fill once (per address), with bounded memory; see the module docstring."""

    __slots__ = ("_by_address", "_max_keys", "_window_ms", "accepted", "dropped")

    def __init__(self, max_keys: int = DEFAULT_MAX_KEYS, window_ms: int | None = None) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be positive")
        self._max_keys = max_keys
        self._window_ms = window_ms
        self._by_address: dict[str, _Seen] = {}
        self.accepted = 0
        self.dropped = 0

    def accept(self, fill: Fill) -> bool:
        """True the first time this fill is offered; False for a repeat (or one below the floor)."""
        seen = self._by_address.get(fill.address)
        if seen is None:
            seen = self._by_address[fill.address] = _Seen()
        key = fill.tid if fill.tid is not None else fill.key
        time_ms = fill.time_ms
        if key in seen.keys or (seen.floor is not None and time_ms <= seen.floor):
            self.dropped += 1
            return False
        seen.keys.add(key)
        seen.order.append((key, time_ms))
        if seen.newest is None or time_ms > seen.newest:
            seen.newest = time_ms
        if len(seen.order) > self._max_keys:
            self._forget_oldest(seen)
        if self._window_ms is not None:
            horizon = seen.newest - self._window_ms
            while seen.order and seen.order[0][1] < horizon:
                self._forget_oldest(seen)
        self.accepted += 1
        return True

    def accept_many(self, fills: Iterable[Fill]) -> list[Fill]:
        """The fills not seen before, in the order given (callers order them: ``in_position_order``)."""
        accept = self.accept
        return [f for f in fills if accept(f)]

    def seen(self, fill: Fill) -> bool:
        """Whether ``accept`` would refuse this fill (no side effect)."""
        seen = self._by_address.get(fill.address)
        if seen is None:
            return False
        return fill_key(fill) in seen.keys or (seen.floor is not None and fill.time_ms <= seen.floor)

    def watermark(self, address: str) -> int | None:
        """The latest fill time accepted for ``address`` (None before any)."""
        seen = self._by_address.get(address)
        return None if seen is None else seen.newest

    def floor(self, address: str) -> int | None:
        """Fills of ``address`` at or before this time are refused as already seen."""
        seen = self._by_address.get(address)
        return None if seen is None else seen.floor

    def remembered(self, address: str) -> int:
        """How many keys are held for ``address`` (at most ``max_keys``)."""
        seen = self._by_address.get(address)
        return 0 if seen is None else len(seen.keys)

    @staticmethod
    def _forget_oldest(seen: _Seen) -> None:
        key, time_ms = seen.order.popleft()
        seen.keys.discard(key)
        if seen.floor is None or time_ms > seen.floor:
            seen.floor = time_ms
