"""StreamSupervisor against the embedded exchange: market channels, fills exactly once across client-
and server-side disconnects (with fills made while we were away), and the 10-user WS limit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
from support import Trader, Venue

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.hyperliquid.stream import StreamSupervisor
from hyperfollow.domain.model import Fill, StreamEvent

T = TypeVar("T")
WAIT = 10.0  # a guard against hanging, never an assertion about speed


class Gate:
    """A TCP relay in front of the venue's port that can play "network down" (refuse connections)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.open = True
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Gate:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._pipes:
            task.cancel()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()


def ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://") + "/ws"


def fetcher(venue: Venue) -> Callable[[str, int], Any]:
    async def fetch(address: str, start_ms: int) -> list[Fill]:
        body = {"type": "userFillsByTime", "user": address, "startTime": start_ms}
        return parse.fills(address, await asyncio.to_thread(venue.info_request, body))

    return fetch


@contextlib.asynccontextmanager
async def supervised(venue: Venue, url: str | None = None, **kw: Any) -> AsyncIterator[StreamSupervisor]:
    options: dict[str, Any] = {
        "backoff_initial_secs": 0.05,
        "backoff_max_secs": 0.2,
        "poll_interval_secs": 0.05,
        "poll_max_per_min": None,
        "now_ms": venue.server.exchange.clock.now_ms,  # the stepped venue keeps its own time
    }
    options.update(kw)
    sup = StreamSupervisor(url or ws_url(venue.url), fetch_fills=fetcher(venue), **options)
    await sup.start()
    try:
        yield sup
    finally:
        await sup.close()


async def take(it: AsyncIterator[T], n: int = 1) -> list[T]:
    return [await asyncio.wait_for(anext(it), WAIT) for _ in range(n)]


async def event(events: AsyncIterator[StreamEvent], kind: str) -> StreamEvent:
    while True:
        e = await asyncio.wait_for(anext(events), WAIT)
        if e.kind == kind:
            return e


async def market_buy(trader: Trader, size: float = 0.01) -> None:
    result = await asyncio.to_thread(trader.exchange.market_open, "ETH", True, size)
    assert result["status"] == "ok", result


def rest_fills(venue: Venue, trader: Trader) -> set[tuple[str, int]]:
    return {
        (trader.user, int(f["tid"])) for f in venue.info_request({"type": "userFills", "user": trader.user})
    }


async def collect_until(fills: AsyncIterator[Fill], expected: set[tuple[str, int]], got: list[Fill]) -> None:
    """Append fills to ``got`` until every expected key is in it (fails on timeout)."""
    while not expected <= {(f.address, f.tid) for f in got}:
        got += await take(fills)


# ---------------------------------------------------------------------- tests


async def test_market_channels_flow(fresh_venue: Venue) -> None:
    venue = fresh_venue
    async with supervised(venue) as sup:
        books, trades, bbo, mids = sup.books(["ETH"]), sup.trades(["ETH"]), sup.bbo(["ETH"]), sup.mids()
        (book,) = await take(books)  # snapshots on subscribe
        (quote,) = await take(bbo)
        (first_mids,) = await take(mids)
        assert book.coin == "ETH"
        assert book.best_bid is not None
        assert book.best_ask is not None
        assert quote.bid is not None
        assert quote.bid.price == book.best_bid
        assert first_mids["ETH"] == book.mid

        trader = await asyncio.to_thread(venue.trader, "stream-market")
        await market_buy(trader, 0.25)
        (trade,) = await take(trades)
        assert (trade.coin, trade.side.value, trade.buyer) == ("ETH", "B", trader.user)
        await asyncio.to_thread(venue.advance, 2_000)  # a market step: the book moves on
        while (await take(books))[0].time_ms <= book.time_ms:
            pass
        assert sup.stats.messages > 4


@pytest.mark.parametrize("side", ["client", "server"])
async def test_fills_arrive_once_across_a_reconnect_with_fills_in_the_gap(
    fresh_venue: Venue, side: str
) -> None:
    venue = fresh_venue
    port = int(venue.url.rsplit(":", 1)[1])
    trader = await asyncio.to_thread(venue.trader, f"stream-gap-{side}")
    async with Gate(port) as gate, supervised(venue, ws_url(f"http://127.0.0.1:{gate.port}")) as sup:
        events = sup.events()
        fills = sup.fills([trader.user], since_ms=venue.now())
        await event(events, "connected")
        await market_buy(trader)
        delivered: list[Fill] = []
        await collect_until(fills, rest_fills(venue, trader), delivered)

        gate.open = False  # the network is down until we say so
        if side == "client":
            await sup.force_reconnect()
        else:
            await asyncio.to_thread(close_server_sockets, venue)
        await event(events, "disconnected")
        await market_buy(trader)  # two fills nobody pushes to us
        await market_buy(trader, 0.02)
        gate.open = True
        await event(events, "connected")
        await event(events, "backfilled")

        await market_buy(trader)  # live again
        await collect_until(fills, rest_fills(venue, trader), delivered)
        keys = [(f.address, f.tid) for f in delivered]
        assert len(keys) == len(set(keys)) == len(rest_fills(venue, trader)) >= 4
        assert sup.stats.reconnects >= 1
        assert sup.stats.duplicates_dropped > 0  # the resubscribe snapshot and the backfill overlapped


def in_venue_loop(venue: Venue, action: Callable[[], Awaitable[None]]) -> None:
    """Run ``action`` in the venue's own event loop (its sockets and hub live there)."""
    assert venue.server._ticker is not None
    loop = venue.server._ticker.get_loop()
    asyncio.run_coroutine_threadsafe(action(), loop).result(WAIT)


def close_server_sockets(venue: Venue) -> None:
    """The venue closes every WebSocket."""

    async def close_all() -> None:
        for ws in list(venue.server._sockets):
            await ws.close()

    in_venue_loop(venue, close_all)


def silence_server_feeds(venue: Venue) -> None:
    """The venue forgets every subscriber but keeps the sockets open: a silent feed."""
    hub = venue.server.hub

    async def forget_all() -> None:
        for conn in {c for conns in hub.subs.values() for c in conns}:
            hub.drop(conn)

    in_venue_loop(venue, forget_all)


async def test_a_silent_feed_goes_stale_then_fresh(fresh_venue: Venue) -> None:
    venue = fresh_venue
    async with supervised(venue, stale_after_secs=0.3, heartbeat_secs=0.1) as sup:
        events = sup.events()
        books = sup.books(["ETH"])
        await take(books)
        await asyncio.to_thread(silence_server_feeds, venue)
        stale = await event(events, "stale")
        assert "ETH" in stale.subjects
        await event(events, "connected")  # the supervisor gave up on the silent socket
        fresh = await event(events, "fresh")
        assert "ETH" in fresh.subjects
        (book,) = await take(books)  # the resubscribe snapshot, once more
        assert book.coin == "ETH"


async def test_twelve_addresses_ten_pushed_two_polled_each_fill_once(fresh_venue: Venue) -> None:
    venue = fresh_venue
    traders = await asyncio.gather(*(asyncio.to_thread(venue.trader, f"stream-12-{i}") for i in range(12)))
    async with supervised(venue) as sup:
        fills = sup.fills([t.address for t in traders], since_ms=venue.now())
        assert sup.ws_addresses() == sorted(t.user for t in traders[:10])

        for trader in traders:
            await market_buy(trader)
        expected = set().union(*(rest_fills(venue, t) for t in traders))
        delivered: list[Fill] = []
        await collect_until(fills, expected, delivered)
        for trader in traders[::3]:  # a second round, so late duplicates would have shown up by now
            await market_buy(trader)
        expected = set().union(*(rest_fills(venue, t) for t in traders))
        await collect_until(fills, expected, delivered)

        keys = [(f.address, f.tid) for f in delivered]
        assert len(keys) == len(set(keys)) == len(expected) >= 16
        polled = {t.user for t in traders[10:]}
        assert sup.stats.polls > 0
        assert polled <= {f.address for f in delivered}
