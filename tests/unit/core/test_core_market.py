"""The market-data cache over the in-process sim venue (a stepped embedded exchange, seed 7, no simulated
traders: the market maker quotes ETH and BTC) on a ``SimClock``: one venue stream per feed however many
components subscribe, the last close ends it, staleness on the simulated clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

import pytest

from hyperfollow.adapters.sim import SimVenue
from hyperfollow.core.bus import Bus, Event, Overflow
from hyperfollow.core.clock import SimClock
from hyperfollow.core.market import (
    MIDS,
    CacheSettings,
    FeedFresh,
    FeedKey,
    FeedKind,
    FeedStale,
    MarketCache,
    stale_feeds,
)
from hyperfollow.domain.errors import UnknownInstrument
from hyperfollow.domain.model import Bbo, Candle, L2Book, OrderRequest, Side, Tif, Trade
from hyperfollow.domain.rules import Instrument
from hyperfollow.exchange.embedded import EmbeddedExchange

START_MS = 1_767_225_600_000
TRADER = "0x" + "7a" * 20
BOOK_ETH = FeedKey(FeedKind.BOOK, "ETH")


class Counting:
    """The sim venue's ``MarketData``, recording every stream it opens and every REST read."""

    def __init__(self, market: Any) -> None:
        self._m = market
        self.streams: list[tuple[str, tuple[str, ...], Any]] = []
        self.reads: list[str] = []
        self.fail_next_open = 0

    def _opened(self, kind: str, coins: Sequence[str], stream: Any) -> Any:
        self.streams.append((kind, tuple(coins), stream))
        return stream

    def _maybe_fail(self) -> None:
        if self.fail_next_open:
            self.fail_next_open -= 1
            raise ConnectionError("venue down")

    async def instruments(self) -> list[Instrument]:
        self.reads.append("instruments")
        return list(await self._m.instruments())

    async def instrument(self, coin: str) -> Instrument:
        self.reads.append(f"instrument:{coin}")
        inst: Instrument = await self._m.instrument(coin)
        return inst

    async def mids(self) -> dict[str, Decimal]:
        self.reads.append("mids")
        return dict(await self._m.mids())

    async def l2_book(self, coin: str) -> L2Book:
        book: L2Book = await self._m.l2_book(coin)
        return book

    async def recent_trades(self, coin: str) -> list[Trade]:
        return list(await self._m.recent_trades(coin))

    async def candles(self, coin: str, interval: str, start_ms: int, end_ms: int) -> list[Candle]:
        self.reads.append(f"candles:{coin}:{interval}")
        return list(await self._m.candles(coin, interval, start_ms, end_ms))

    def stream_books(self, coins: Sequence[str]) -> AsyncIterator[L2Book]:
        self._maybe_fail()
        return self._opened("book", coins, self._m.stream_books(coins))  # type: ignore[no-any-return]

    def stream_trades(self, coins: Sequence[str]) -> AsyncIterator[Trade]:
        self._maybe_fail()
        return self._opened("trades", coins, self._m.stream_trades(coins))  # type: ignore[no-any-return]

    def stream_bbo(self, coins: Sequence[str]) -> AsyncIterator[Bbo]:
        self._maybe_fail()
        return self._opened("bbo", coins, self._m.stream_bbo(coins))  # type: ignore[no-any-return]

    def stream_mids(self) -> AsyncIterator[dict[str, Decimal]]:
        self._maybe_fail()
        return self._opened("mids", (), self._m.stream_mids())  # type: ignore[no-any-return]

    def open_streams(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(kind, coins) for kind, coins, s in self.streams if not s.closed]


@pytest.fixture
async def venue() -> AsyncIterator[tuple[EmbeddedExchange, SimVenue]]:
    ex = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=START_MS)
    ex.set_price("ETH", Decimal(3000))
    ex.set_price("BTC", Decimal(90000))
    ex.fund(TRADER, "100000")
    v = SimVenue(ex, TRADER)
    yield ex, v
    await v.close()


async def spin(times: int = 10) -> None:
    for _ in range(times):
        await asyncio.sleep(0)


def cache_over(
    v: SimVenue, clock: SimClock, bus: Bus | None = None, **kw: Any
) -> tuple[MarketCache, Counting]:
    market = Counting(v.market)
    return MarketCache(market, clock=clock, settings=CacheSettings(**kw), bus=bus), market


# ---------------------------------------------------------------------- one venue stream per feed


async def test_two_consumers_of_one_coin_make_one_venue_subscription_and_the_last_close_ends_it(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    _, v = venue
    cache, market = cache_over(v, SimClock(start_ms=START_MS))
    first = cache.subscribe_book("ETH")
    second = cache.subscribe_book("ETH")
    await spin()
    assert market.open_streams() == [("book", ("ETH",))]
    assert cache.subscribers(BOOK_ETH) == 2
    book = cache.book("ETH")
    assert book is not None
    assert book.mid is not None
    assert book.mid == pytest.approx(Decimal(3000), rel=Decimal("0.01"))

    await first.aclose()
    await first.aclose()  # twice: harmless, the other consumer keeps its stream
    assert market.open_streams() == [("book", ("ETH",))]
    await v.set_price("ETH", Decimal(3100))
    await spin()
    moved = cache.book("ETH")
    assert moved is not None
    assert moved.mid is not None
    assert moved.mid > book.mid  # still streamed for the consumer left

    await second.aclose()
    assert market.open_streams() == []  # the venue's stream is closed
    assert cache.feeds() == []
    assert len(market.streams) == 1  # and it was only ever opened once


async def test_each_kind_and_coin_is_its_own_stream_and_the_mids_one_for_all(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    _, v = venue
    cache, market = cache_over(v, SimClock(start_ms=START_MS))
    handles = [cache.subscribe_mids() for _ in range(3)]
    handles += [cache.subscribe_book("ETH"), cache.subscribe_bbo("ETH"), cache.subscribe_trades("ETH")]
    handles += [cache.subscribe_book("BTC"), cache.subscribe_book("BTC")]
    await spin()
    assert sorted(market.open_streams()) == [
        ("bbo", ("ETH",)), ("book", ("BTC",)), ("book", ("ETH",)), ("mids", ()), ("trades", ("ETH",)),
    ]  # fmt: skip
    assert cache.subscribers(MIDS) == 3
    eth_mid = cache.mid("ETH")
    assert eth_mid is not None
    quote = cache.bbo("ETH")
    assert quote is not None
    assert quote.bid is not None
    assert quote.ask is not None
    assert quote.bid.price < eth_mid < quote.ask.price

    taker = await v.gateway.submit(OrderRequest("ETH", Side.BUY, Decimal("0.5"), Decimal(4000), Tif.IOC))
    assert taker.filled_size == Decimal("0.5")
    await spin()
    prints = cache.trades("ETH")
    assert prints
    assert {t.side for t in prints} == {Side.BUY}
    assert sum(t.size for t in prints) == Decimal("0.5")
    for handle in handles:
        handle.close()
    await spin()
    assert market.open_streams() == []
    await cache.close()


async def test_a_book_alone_gives_the_bbo(venue: tuple[EmbeddedExchange, SimVenue]) -> None:
    _, v = venue
    cache, _ = cache_over(v, SimClock(start_ms=START_MS))
    async with cache.subscribe_book("BTC"):
        await spin()
        book, quote = cache.book("BTC"), cache.bbo("BTC")
        assert book is not None
        assert quote is not None
        assert (quote.bid, quote.ask, quote.time_ms) == (book.bids[0], book.asks[0], book.time_ms)
    assert cache.bbo("ETH") is None


async def test_a_failed_stream_is_opened_again_after_its_retry_on_the_clock(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    _, v = venue
    clock = SimClock(start_ms=START_MS)
    cache, market = cache_over(v, clock, retry_secs=3.0)
    market.fail_next_open = 2
    handle = cache.subscribe_book("ETH")
    await clock.advance(2.9)
    assert market.open_streams() == []
    assert cache.book("ETH") is None
    await clock.advance(3.0)  # the second try fails too
    assert market.open_streams() == []
    await clock.advance(0.2)  # 6.1 s: the third opens
    assert market.open_streams() == [("book", ("ETH",))]
    assert cache.book("ETH") is not None
    await handle.aclose()
    assert market.open_streams() == []


# ---------------------------------------------------------------------- mids


async def test_streamed_mids_are_served_without_a_request_until_older_than_the_max_age(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    _, v = venue
    clock = SimClock(start_ms=START_MS)
    cache, market = cache_over(v, clock, marks_max_age_secs=2.0)
    assert cache.last_mid_ms(clock.now_ms()) is None
    async with cache.subscribe_mids():
        await spin()
        marks = await cache.marks({"ETH", "BTC"})
        assert marks["ETH"] > 0
        assert market.reads == []
        await clock.advance(1.5)
        assert cache.last_mid_ms(clock.now_ms()) == START_MS  # arrived at the start
        await cache.marks({"ETH"})
        assert market.reads == []  # 1.5 s old: fresh
        await cache.marks({"ETH"}, max_age_secs=1.0)  # a stricter caller reads again
        assert market.reads == ["mids"]
        await clock.advance(2.5)  # no stream message since: older than 2 s
        await cache.marks({"ETH"})
        assert market.reads == ["mids", "mids"]
        await cache.marks({"NOPE"})  # never shown: one read every time
        assert market.reads == ["mids", "mids", "mids"]
        await cache.marks()  # every coin: a read
        assert len(market.reads) == 4


def test_a_mids_message_of_one_dex_keeps_the_others() -> None:
    cache = MarketCache(Counting(None), clock=SimClock())
    cache.put_mids({"ETH": Decimal(3000), "xyz:TSLA": Decimal(400)})
    cache.put_mids({"ETH": Decimal(3001)})
    assert (cache.mid("ETH"), cache.mid("xyz:TSLA"), cache.mid("BTC")) == (Decimal(3001), Decimal(400), None)


# ---------------------------------------------------------------------- staleness


async def test_a_stale_feed_is_reported_after_its_max_age_on_the_simulated_clock(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    _, v = venue
    clock = SimClock(start_ms=START_MS)
    bus = Bus()
    seen = bus.subscribe(Event, maxsize=16, overflow=Overflow.DROP_OLDEST, name="ui")
    cache, _ = cache_over(v, clock, bus, book_stale_secs=5.0, check_secs=1.0)
    handle = cache.subscribe_book("ETH")
    await spin()
    assert cache.book("ETH") is not None  # the snapshot at subscription: an update at t=0

    await clock.advance(4.5)
    assert cache.stale() == []
    assert seen.qsize() == 0
    await clock.advance(1.0)  # 5.5 s without an update; the watchdog's tick at 5 s saw 5.0 (not past)
    assert [s.key for s in cache.stale()] == [BOOK_ETH]
    assert cache.is_stale(BOOK_ETH)
    assert seen.qsize() == 0  # the next tick (6 s) reports it
    await clock.advance(0.5)
    event = seen.get_nowait()
    assert isinstance(event, FeedStale)
    assert (event.feed, event.coin) == ("book", "ETH")
    assert event.age_ns == 6 * 1_000_000_000
    assert event.ts_event == event.ts_init == (START_MS + 6_000) * 1_000_000

    await clock.advance(10.0)  # still stale: reported once
    assert seen.qsize() == 0
    await v.set_price("ETH", Decimal(3050))  # the book moves: an update
    await spin()
    assert cache.stale() == []
    await clock.advance(1.0)
    fresh = seen.get_nowait()
    assert isinstance(fresh, FeedFresh)
    assert (fresh.feed, fresh.coin) == ("book", "ETH")
    assert seen.qsize() == 0

    await handle.aclose()
    await clock.advance(60.0)  # no feed open: nothing to report, no watchdog left
    assert seen.qsize() == 0
    assert clock.next_deadline_ns() is None


async def test_a_feed_that_never_updates_is_stale_from_its_opening(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    _, v = venue
    clock = SimClock(start_ms=START_MS)
    cache, _ = cache_over(v, clock, trades_stale_secs=30.0)  # no bus: the query alone
    async with cache.subscribe_trades("BTC"):
        await clock.advance(29.0)
        assert cache.stale() == []
        await clock.advance(2.0)
        [stale] = cache.stale()
        assert (stale.key, stale.age_secs, stale.max_age_secs) == (
            FeedKey(FeedKind.TRADES, "BTC"), 31.0, 30.0,
        )  # fmt: skip
        assert clock.next_deadline_ns() is None  # without a bus no watchdog runs
    assert cache.stale() == []  # closed: not a feed any more


def test_stale_feeds_is_pure_and_strict() -> None:
    limits = CacheSettings(mids_stale_secs=2.0, book_stale_secs=5.0).max_age_secs
    since = {MIDS: 8.0, BOOK_ETH: 4.0, FeedKey(FeedKind.BOOK, "BTC"): 5.0}
    assert [(s.key, s.age_secs) for s in stale_feeds(since, 10.0, limits)] == [(BOOK_ETH, 6.0)]


# ---------------------------------------------------------------------- instruments and bars


async def test_instruments_are_read_once_and_an_unknown_coin_is_not_remembered(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    _, v = venue
    cache, market = cache_over(v, SimClock(start_ms=START_MS))
    eth = await cache.instrument("ETH")
    assert eth == await v.market.instrument("ETH")
    assert await cache.instrument("ETH") is eth
    assert market.reads == ["instrument:ETH"]
    for _ in range(2):
        with pytest.raises(UnknownInstrument):
            await cache.instrument("NOPE")
    assert market.reads.count("instrument:NOPE") == 2
    listed = await cache.instruments()
    assert {"ETH", "BTC"} <= {i.coin for i in listed}
    await cache.instruments()
    assert market.reads.count("instruments") == 1
    await cache.instrument("BTC")  # known from the listing
    assert "instrument:BTC" not in market.reads


async def test_closed_bars_are_served_from_memory_and_the_open_bar_is_read_again(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    ex, v = venue
    for _ in range(3):  # a print in each of three minutes
        ack = await v.gateway.submit(OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(4000), Tif.IOC))
        assert ack.filled_size == Decimal("0.1")
        await v.step(60_000)
    clock = SimClock(start_ms=ex.clock.now_ms())  # the cache's epoch time is the venue's
    cache, market = cache_over(v, clock)
    start, end = START_MS, START_MS + 120_000
    first = await cache.bars("ETH", "1m", start, end)
    assert [b.open_ms for b in first] == [START_MS, START_MS + 60_000, START_MS + 120_000]
    again = await cache.bars("ETH", "1m", start + 30_000, end)  # the same bars (the venue's window)
    assert again == first
    assert market.reads == ["candles:ETH:1m"]  # all closed: the second came from memory
    await cache.bars("ETH", "1m", start, end + 60_000)  # reaches the bar still open
    assert market.reads == ["candles:ETH:1m"] * 2


async def test_a_full_blocking_reader_gets_the_stale_report_at_the_next_check(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    _, v = venue
    clock = SimClock(start_ms=START_MS)
    bus = Bus()
    risk = bus.subscribe(FeedStale, maxsize=1, overflow=Overflow.BLOCK, name="risk")
    cache, _ = cache_over(v, clock, bus, bbo_stale_secs=2.0)
    async with cache.subscribe_bbo("ETH"):
        await spin()
        bus.publish_nowait(FeedStale(ts_event=0, ts_init=0, feed="book", coin="BTC", age_ns=0))  # fills it
        assert [type(e) for e in cache.check()] == []
        await clock.advance(3.0)  # stale at the 3 s tick; the reader's queue is full: not delivered
        assert cache.is_stale(FeedKey(FeedKind.BBO, "ETH"))
        assert risk.get_nowait().coin == "BTC"
        [event] = cache.check()  # reported again, now that there is room
        assert isinstance(event, FeedStale)
        assert risk.get_nowait() == event
        assert cache.check() == []
