"""The market-data cache: one per process, shared by every strategy, over one venue's ``MarketData``.

What it keeps:

* **mids**, from the venue's ``allMids`` stream while someone subscribes to it, and from REST reads: a coin's
  mid is served without a request while it is younger than the caller's max age; a coin the stream has not
  shown (another dex) or a stale one costs one REST read of every dex (``marks``);
* **L2 books, BBO and recent trades** per coin, from the venue's streams;
* **instruments** (read once, then served from memory) and **bars** (closed bars are kept: a closed bar never
  changes, so a window already read costs no request; the open bar is always read again).

Subscriptions are reference-counted: however many components subscribe to a feed (the mids, or one coin's
book, BBO or trades), the venue sees **one** stream; closing the last handle closes it. A stream that fails
is re-opened after ``retry_secs``.

Staleness: each open feed has a max age (``CacheSettings``, per kind of feed) on the clock's monotonic time,
counted from its last streamed update (or from its opening, before the first). ``stale()`` answers at any
time; with a ``Bus``, a watchdog (every ``check_secs`` while a feed is open) publishes ``FeedStale`` when a
feed goes stale and ``FeedFresh`` when it comes back. Whoever guards trading (the risk layer's REDUCING)
listens for those; the cache itself decides nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

import structlog

from hyperfollow.core.bus import Backpressure, Bus, Event
from hyperfollow.core.clock import every
from hyperfollow.domain.model import Bbo, Candle, L2Book, Trade
from hyperfollow.domain.rules import Instrument
from hyperfollow.ports.clock import Clock
from hyperfollow.ports.venue import MarketData

log = structlog.get_logger(__name__)

NS = 1_000_000_000


class FeedKind(StrEnum):
    MIDS = "mids"  # every coin's mid (one stream for all coins)
    BOOK = "book"
    BBO = "bbo"
    TRADES = "trades"


@dataclass(frozen=True, slots=True, order=True)
class FeedKey:
    """One venue stream: a kind, and a coin (``""`` for the mids, one stream of every coin)."""

    kind: FeedKind
    coin: str = ""

    def __str__(self) -> str:
        return self.kind.value if not self.coin else f"{self.kind.value}:{self.coin}"


MIDS = FeedKey(FeedKind.MIDS)


class FeedStale(Event, frozen=True, kw_only=True):
    """A feed had no update for longer than its max age (``age_ns`` so far)."""

    feed: str
    coin: str
    age_ns: int


class FeedFresh(Event, frozen=True, kw_only=True):
    """A feed that was stale has updated again."""

    feed: str
    coin: str


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """Max ages (seconds of the clock's monotonic time) and stream supervision."""

    marks_max_age_secs: float = 2.0  # ``marks``: older mids are read again over REST
    mids_stale_secs: float = 10.0
    book_stale_secs: float = 10.0
    bbo_stale_secs: float = 10.0
    trades_stale_secs: float = 300.0  # a quiet coin prints rarely
    check_secs: float = 1.0  # the watchdog's period (only with a bus)
    retry_secs: float = 1.0  # a failed stream is re-opened after this
    trades_kept: int = 200  # recent trades kept per coin

    def max_age_secs(self, kind: FeedKind) -> float:
        return {
            FeedKind.MIDS: self.mids_stale_secs,
            FeedKind.BOOK: self.book_stale_secs,
            FeedKind.BBO: self.bbo_stale_secs,
            FeedKind.TRADES: self.trades_stale_secs,
        }[kind]


@dataclass(frozen=True, slots=True)
class StaleFeed:
    """A feed past its max age: how long since its last update (or its opening), in seconds."""

    key: FeedKey
    age_secs: float
    max_age_secs: float


def stale_feeds(
    since: Mapping[FeedKey, float], now: float, max_age: Callable[[FeedKind], float]
) -> list[StaleFeed]:
    """The feeds whose last update (``since``: monotonic seconds) is older than their kind's max age."""
    out = []
    for key in sorted(since):
        age, limit = now - since[key], max_age(key.kind)
        if age > limit:
            out.append(StaleFeed(key, age, limit))
    return out


INTERVAL_MS = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
    "2h": 7_200_000, "4h": 14_400_000, "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000,
    "3d": 259_200_000, "1w": 604_800_000,
}  # fmt: skip
"""Fixed-length bar intervals (``1M`` is a calendar month: never served from memory)."""


class MarketSubscription:
    """A component's handle on one feed; ``close`` (or ``aclose``, which also waits for the stream to end
    when it was the last handle) gives it back. Closing twice is harmless."""

    def __init__(self, cache: MarketCache, key: FeedKey) -> None:
        self._cache = cache
        self.key = key
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._cache._release(self.key)

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            await self._cache._release_and_wait(self.key)

    async def __aenter__(self) -> MarketSubscription:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


class _Feed:
    __slots__ = ("last", "opened", "refs", "stale", "task")

    def __init__(self, opened: float) -> None:
        self.refs = 0
        self.opened = opened
        self.last: float | None = None  # monotonic time of the last streamed update
        self.stale = False  # as last reported on the bus
        self.task: asyncio.Task[None] | None = None


class MarketCache:
    """Mids, books, BBO, recent trades, instruments and bars of ``market``, on ``clock``."""

    def __init__(
        self,
        market: MarketData,
        *,
        clock: Clock,
        settings: CacheSettings | None = None,
        bus: Bus | None = None,
    ) -> None:
        self._market = market
        self._clock = clock
        self.settings = settings or CacheSettings()
        self._bus = bus
        self._mids: dict[str, Decimal] = {}
        self._seen: dict[str, float] = {}  # coin -> monotonic time its mid arrived (streamed or read)
        self._books: dict[str, L2Book] = {}
        self._bbos: dict[str, Bbo] = {}
        self._trades: dict[str, deque[Trade]] = {}
        self._instruments: dict[str, Instrument] = {}
        self._listed: list[Instrument] | None = None
        self._bars: dict[tuple[str, str], dict[int, Candle]] = {}
        self._feeds: dict[FeedKey, _Feed] = {}
        self._watchdog: asyncio.Task[None] | None = None

    @property
    def market(self) -> MarketData:
        return self._market

    # ------------------------------------------------------------------ mids

    def mid(self, coin: str) -> Decimal | None:
        """The last mid seen for ``coin`` (streamed or read), without a request."""
        return self._mids.get(coin)

    def last_mid_ms(self, now_ms: int) -> int | None:
        """When the newest mid arrived, on the caller's epoch clock ``now_ms``."""
        if not self._seen:
            return None
        return now_ms - int((self._clock.monotonic() - max(self._seen.values())) * 1000)

    async def marks(
        self, coins: Iterable[str] | None = None, *, max_age_secs: float | None = None
    ) -> dict[str, Decimal]:
        """Mids: without a request when every coin asked for is younger than ``max_age_secs`` (default
        ``settings.marks_max_age_secs``); else (or with ``coins`` None) one REST read of every dex."""
        if coins is not None:
            age = self.settings.marks_max_age_secs if max_age_secs is None else max_age_secs
            oldest = self._clock.monotonic() - age
            if all(self._seen.get(c, -1.0) >= oldest for c in coins):
                return self._mids
        self.put_mids(await self._market.mids())
        return dict(self._mids)

    def put_mids(self, mids: Mapping[str, Decimal]) -> None:
        """Record mids (a stream message or a read); coins not in ``mids`` keep their last value."""
        now = self._clock.monotonic()
        self._mids = {**self._mids, **mids}  # a stream of one dex keeps the others' last values
        for coin in mids:
            self._seen[coin] = now

    def subscribe_mids(self) -> MarketSubscription:
        """Follow the venue's mids stream (one for the process) until the handle is closed."""
        return self.subscribe(MIDS)

    # ------------------------------------------------------------------ books, BBO, trades

    def subscribe_book(self, coin: str) -> MarketSubscription:
        return self.subscribe(FeedKey(FeedKind.BOOK, coin))

    def subscribe_bbo(self, coin: str) -> MarketSubscription:
        return self.subscribe(FeedKey(FeedKind.BBO, coin))

    def subscribe_trades(self, coin: str) -> MarketSubscription:
        return self.subscribe(FeedKey(FeedKind.TRADES, coin))

    def book(self, coin: str) -> L2Book | None:
        """The last streamed L2 book of ``coin``."""
        return self._books.get(coin)

    def bbo(self, coin: str) -> Bbo | None:
        """The newest best bid and offer of ``coin``: the BBO stream's, or the top of its book stream's."""
        quote = self._bbos.get(coin)
        book = self._books.get(coin)
        if book is not None and (quote is None or book.time_ms > quote.time_ms):
            return Bbo(coin, book.time_ms, book.bids[0] if book.bids else None,
                       book.asks[0] if book.asks else None)  # fmt: skip
        return quote

    def trades(self, coin: str) -> list[Trade]:
        """The recent streamed trades of ``coin`` (at most ``settings.trades_kept``), oldest first."""
        return list(self._trades.get(coin, ()))

    # ------------------------------------------------------------------ instruments and bars

    async def instrument(self, coin: str) -> Instrument:
        """One perp, read once (``UnknownInstrument`` is not remembered: a later listing is found)."""
        inst = self._instruments.get(coin)
        if inst is None:
            inst = self._instruments[coin] = await self._market.instrument(coin)
        return inst

    async def instruments(self, *, refresh: bool = False) -> list[Instrument]:
        """Every listed perp, read once (``refresh`` reads the listing again)."""
        if self._listed is None or refresh:
            self._listed = await self._market.instruments()
            self._instruments.update((i.coin, i) for i in self._listed)
        return list(self._listed)

    async def bars(self, coin: str, interval: str, start_ms: int, end_ms: int) -> list[Candle]:
        """The bars from the one holding ``start_ms`` to the one opening at or before ``end_ms``, oldest first
        (the venue's window): from memory when each of them is a closed bar already read, else one read
        (whose closed bars are kept)."""
        kept = self._bars.setdefault((coin, interval), {})
        step = INTERVAL_MS.get(interval)
        if step is not None and start_ms <= end_ms:
            opens = range(start_ms - start_ms % step, end_ms + 1, step)
            if opens and all(o in kept for o in opens):
                return [kept[o] for o in opens]
        bars = await self._market.candles(coin, interval, start_ms, end_ms)
        now = self._clock.now_ms()
        for bar in bars:
            if bar.close_ms < now:
                kept[bar.open_ms] = bar
        return bars

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, key: FeedKey) -> MarketSubscription:
        """A handle on ``key``'s feed: the first one opens the venue stream, the others share it."""
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = _Feed(self._clock.monotonic())
            feed.task = asyncio.create_task(self._follow(key, self._open_now(key)), name=f"market.{key}")
            self._start_watchdog()
        feed.refs += 1
        return MarketSubscription(self, key)

    def subscribers(self, key: FeedKey) -> int:
        """How many open handles ``key``'s feed has (0: no venue stream)."""
        feed = self._feeds.get(key)
        return 0 if feed is None else feed.refs

    def feeds(self) -> list[FeedKey]:
        """The feeds open now (one venue stream each)."""
        return sorted(self._feeds)

    def _release(self, key: FeedKey) -> asyncio.Task[None] | None:
        feed = self._feeds.get(key)
        if feed is None:
            return None
        feed.refs -= 1
        if feed.refs > 0:
            return None
        del self._feeds[key]
        task = feed.task
        if task is not None:
            task.cancel()  # the stream is closed on the task's way out
        if not self._feeds and self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        return task

    async def _release_and_wait(self, key: FeedKey) -> None:
        task = self._release(key)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        """Close every feed (whatever handles are left) and stop the watchdog."""
        tasks = [f.task for f in self._feeds.values() if f.task is not None]
        self._feeds.clear()
        if self._watchdog is not None:
            tasks.append(self._watchdog)
            self._watchdog = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _open(self, key: FeedKey) -> AsyncIterator[Any]:
        market = self._market
        if key.kind is FeedKind.MIDS:
            return market.stream_mids()
        if key.kind is FeedKind.BOOK:
            return market.stream_books([key.coin])
        if key.kind is FeedKind.BBO:
            return market.stream_bbo([key.coin])
        return market.stream_trades([key.coin])

    def _open_now(self, key: FeedKey) -> AsyncIterator[Any] | None:
        """Open at once (the subscription is registered before anything can be missed); a failure is
        logged and retried by the feed's task."""
        try:
            return self._open(key)
        except Exception:
            log.exception("market.stream_failed", feed=str(key), retry_secs=self.settings.retry_secs)
            return None

    async def _follow(self, key: FeedKey, first: AsyncIterator[Any] | None) -> None:
        """Apply the stream's items until cancelled; re-open it after a failure."""
        stream = first
        retry = first is None
        while True:
            if retry:
                await self._clock.sleep(self.settings.retry_secs)
            retry = True
            try:
                if stream is None:
                    stream = self._open(key)
                async for item in stream:
                    self._apply(key, item)
                log.info("market.stream_ended", feed=str(key))
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("market.stream_failed", feed=str(key), retry_secs=self.settings.retry_secs)
            finally:
                if stream is not None:
                    await _close(stream)
                stream = None

    def _apply(self, key: FeedKey, item: Any) -> None:
        feed = self._feeds.get(key)
        if feed is not None:
            feed.last = self._clock.monotonic()
        kind = key.kind
        if kind is FeedKind.MIDS:
            self.put_mids(item)
        elif kind is FeedKind.BOOK:
            self._books[item.coin] = item
        elif kind is FeedKind.BBO:
            self._bbos[item.coin] = item
        else:
            kept = self._trades.get(item.coin)
            if kept is None:
                kept = self._trades[item.coin] = deque(maxlen=self.settings.trades_kept)
            kept.append(item)

    # ------------------------------------------------------------------ staleness

    def stale(self) -> list[StaleFeed]:
        """The open feeds past their max age now."""
        since = {k: f.opened if f.last is None else f.last for k, f in self._feeds.items()}
        return stale_feeds(since, self._clock.monotonic(), self.settings.max_age_secs)

    def is_stale(self, key: FeedKey) -> bool:
        return any(s.key == key for s in self.stale())

    def check(self) -> list[FeedStale | FeedFresh]:
        """Compare each open feed with what was last reported; publish (with a bus) and return the changes."""
        now_ns = self._clock.now_ns()
        stale = {s.key: s for s in self.stale()}
        events: list[FeedStale | FeedFresh] = []
        for key, feed in sorted(self._feeds.items()):
            gone = stale.get(key)
            if gone is not None and not feed.stale:
                feed.stale = True
                events.append(FeedStale(ts_event=now_ns, ts_init=now_ns, feed=key.kind.value, coin=key.coin,
                                        age_ns=round(gone.age_secs * NS)))  # fmt: skip
                log.warning("market.stale", feed=str(key), age_secs=round(gone.age_secs, 3))
            elif gone is None and feed.stale:
                feed.stale = False
                events.append(FeedFresh(ts_event=now_ns, ts_init=now_ns, feed=key.kind.value, coin=key.coin))
                log.info("market.fresh", feed=str(key))
        if self._bus is not None:
            for event in events:
                try:
                    self._bus.publish_nowait(event)
                except Backpressure:  # a blocked reader must never stop the watchdog: it is told next time
                    log.warning("market.stale_unpublished", feed=event.feed, coin=event.coin)
                    missed = self._feeds.get(FeedKey(FeedKind(event.feed), event.coin))
                    if missed is not None:
                        missed.stale = isinstance(event, FeedFresh)
        return events

    def _start_watchdog(self) -> None:
        if self._bus is None or self._watchdog is not None:
            return

        async def watch() -> None:
            async for _ in every(self._clock, self.settings.check_secs):
                try:
                    self.check()
                except Exception:  # a broken listener must never stop the watchdog
                    log.exception("market.check_failed")

        self._watchdog = asyncio.create_task(watch(), name="market.watchdog")


async def _close(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
