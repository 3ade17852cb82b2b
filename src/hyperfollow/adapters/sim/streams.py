"""Subscriptions of one simulated connection: what each stream takes from a drain of the engine, and
what it re-sends when the connection comes back (the WS snapshots, the fill backfill).

Every subscription owns a ``Feed`` (the consumer's async iterator). ``offer`` is called with each
``Published`` drain while the connection is up; ``resync`` after a reconnect.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Generic, Protocol, TypeVar

from hyperfollow.adapters.hyperliquid.dedupe import FillDeduper
from hyperfollow.adapters.sim.feed import Feed
from hyperfollow.adapters.sim.hub import Published
from hyperfollow.domain.model import Bbo, Fill, L2Book, OrderState, Trade

T = TypeVar("T")


class Subscription(Protocol):
    @property
    def closed(self) -> bool: ...

    def close(self) -> None: ...

    def offer(self, published: Published) -> None: ...

    def resync(self) -> int:
        """Catch up after a reconnect; returns how many items were re-delivered."""
        ...


class _Stream(Generic[T]):
    """A subscription's feed and its life cycle (the consumer closing the feed ends it)."""

    def __init__(self) -> None:
        self.feed: Feed[T] = Feed()

    @property
    def closed(self) -> bool:
        return self.feed.closed

    def close(self) -> None:
        self.feed.close()


class FillSubscription(_Stream[Fill]):
    """Fills of some addresses, each delivered once: live pushes, an optional backfill from
    ``since_ms``, and a backfill from the last delivered fill after every reconnect."""

    def __init__(
        self,
        users: Sequence[str],
        history: Callable[[Sequence[str], int], list[Fill]],
        now_ms: int,
        since_ms: int | None,
    ) -> None:
        self.users = tuple(dict.fromkeys(u.lower() for u in users))
        self._history = history
        self._dedupe = FillDeduper()
        super().__init__()
        if since_ms is None:
            self._mark_ms = now_ms
            for fill in history(self.users, now_ms):  # already happened: not news for this stream
                self._dedupe.accept(fill)
        else:
            self._mark_ms = since_ms
            self._deliver(history(self.users, since_ms))

    def _deliver(self, fills: list[Fill]) -> int:
        n = 0
        for fill in fills:
            if self._dedupe.accept(fill):
                self.feed.push(fill)
                self._mark_ms = max(self._mark_ms, fill.time_ms)
                n += 1
        return n

    def offer(self, published: Published) -> None:
        fills = [f for user in self.users for f in published.fills(user)]
        if len(self.users) > 1:
            fills.sort(key=lambda f: f.time_ms)  # stable: each address keeps the engine's order
        self._deliver(fills)

    def resync(self) -> int:
        # From the last fill delivered (inclusive: the venue's ms is not unique), as the Hyperliquid
        # adapter backfills with userFillsByTime; what was already delivered is dropped by the deduper.
        return self._deliver(self._history(self.users, self._mark_ms))


class OrderSubscription(_Stream[OrderState]):
    """``orderUpdates`` of one address (no snapshot and no backfill: the venue offers none)."""

    def __init__(self, user: str) -> None:
        self.user = user
        super().__init__()

    def offer(self, published: Published) -> None:
        self.feed.extend(published.orders(self.user))

    def resync(self) -> int:
        return 0


class TradeSubscription(_Stream[Trade]):
    """Prints of some coins (no backfill: a gap on the tape stays a gap, as on the venue)."""

    def __init__(self, coins: Sequence[str]) -> None:
        self.coins = tuple(dict.fromkeys(coins))
        super().__init__()

    def offer(self, published: Published) -> None:
        for coin in self.coins:
            self.feed.extend(published.trades(coin))

    def resync(self) -> int:
        return 0


class BookSubscription(_Stream[L2Book]):
    """Full L2 snapshots of some coins: one on subscribe and on reconnect, then one per changed book."""

    def __init__(
        self,
        coins: Sequence[str],
        snapshot: Callable[[str], L2Book],
    ) -> None:
        self.coins = tuple(dict.fromkeys(coins))
        self._snapshot = snapshot
        super().__init__()
        self.resync()

    def offer(self, published: Published) -> None:
        for coin in self.coins:
            if coin in published.dirty_coins:
                self.feed.push(published.book(coin))

    def resync(self) -> int:
        for coin in self.coins:
            self.feed.push(self._snapshot(coin))
        return len(self.coins)


def bbo_of(book: L2Book) -> Bbo:
    return Bbo(
        book.coin, book.time_ms, book.bids[0] if book.bids else None, book.asks[0] if book.asks else None
    )


class BboSubscription(_Stream[Bbo]):
    """Best bid/offer of some coins: a snapshot on subscribe and reconnect, then only on change."""

    def __init__(
        self,
        coins: Sequence[str],
        snapshot: Callable[[str], L2Book],
    ) -> None:
        self.coins = tuple(dict.fromkeys(coins))
        self._snapshot = snapshot
        self._last: dict[str, tuple[object, object]] = {}
        super().__init__()
        self.resync()

    def _push(self, bbo: Bbo, force: bool) -> None:
        key = (bbo.bid, bbo.ask)
        if force or self._last.get(bbo.coin) != key:
            self._last[bbo.coin] = key
            self.feed.push(bbo)

    def offer(self, published: Published) -> None:
        for coin in self.coins:
            if coin in published.dirty_coins:
                self._push(bbo_of(published.book(coin)), force=False)

    def resync(self) -> int:
        for coin in self.coins:
            self._push(bbo_of(self._snapshot(coin)), force=True)
        return len(self.coins)


class MidsSubscription(_Stream[dict[str, Decimal]]):
    """All mids: a snapshot on subscribe and reconnect, then whenever any mid changed."""

    def __init__(
        self,
        snapshot: Callable[[], dict[str, Decimal]],
    ) -> None:
        self._snapshot = snapshot
        self._last: dict[str, Decimal] | None = None
        super().__init__()
        self.resync()

    def offer(self, published: Published) -> None:
        mids = published.mids()
        if mids != self._last:
            self._last = mids
            self.feed.push(dict(mids))

    def resync(self) -> int:
        self._last = self._snapshot()
        self.feed.push(dict(self._last))
        return 1
