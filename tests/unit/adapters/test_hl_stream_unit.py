"""StreamSupervisor against a scripted local WebSocket server: routing, subscriptions, bad frames,
staleness, reconnect + backfill, the WS user limit, clean close."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from typing import Any, TypeVar

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.hyperliquid.stream import StreamSupervisor, WsUserLimitError
from hyperfollow.adapters.hyperliquid.ws_conn import WsConnection
from hyperfollow.domain.model import Fill, StreamEvent

T = TypeVar("T")
A = "0x" + "a" * 40
B = "0x" + "b" * 40
C = "0x" + "c" * 40
D = "0x" + "d" * 40
E = "0x" + "e" * 40
WAIT = 5.0  # a guard against hanging, never an assertion about speed


def wire_fill(tid: int, time_ms: int, oid: int = 1) -> dict[str, Any]:
    return {
        "coin": "ETH", "px": "100.5", "sz": "0.1", "side": "B", "time": time_ms, "startPosition": "0",
        "dir": "Open Long", "closedPnl": "0", "hash": f"0x{tid:x}", "oid": oid, "crossed": True,
        "fee": "0.01", "tid": tid, "feeToken": "USDC",
    }  # fmt: skip


BOOK = {
    "coin": "ETH",
    "time": 1000,
    "levels": [[{"px": "99", "sz": "1", "n": 1}], [{"px": "101", "sz": "2", "n": 1}]],
}


def frame(channel: str, data: Any) -> str:
    return json.dumps({"channel": channel, "data": data})


class FakeVenue:
    """A scripted /ws: acks subscriptions, sends snapshots from ``fills``, answers pings."""

    def __init__(self) -> None:
        self.fills: dict[str, list[dict[str, Any]]] = {}  # what REST knows
        self.snapshot_fills: dict[str, list[dict[str, Any]]] | None = None  # None: same as REST
        self.received: list[dict[str, Any]] = []
        self.conns: list[ServerConnection] = []
        self.accepting = True
        self.pong = True
        self.market_snapshots = True
        self.fetches: list[tuple[str, int]] = []
        self.server: Server | None = None
        self.url = ""

    async def __aenter__(self) -> FakeVenue:
        self.server = await serve(self._handler, "127.0.0.1", 0, process_request=self._gate)
        port = next(iter(self.server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def _gate(self, conn: ServerConnection, request: Request) -> Response | None:
        if self.accepting:
            return None
        return Response(HTTPStatus.SERVICE_UNAVAILABLE.value, "down", Headers(), b"down")

    async def _handler(self, ws: ServerConnection) -> None:
        self.conns.append(ws)
        try:
            async for text in ws:
                msg = json.loads(text)
                self.received.append(msg)
                if msg["method"] == "ping":
                    if self.pong:
                        await ws.send('{"channel":"pong"}')
                elif msg["method"] == "subscribe":
                    sub = msg["subscription"]
                    await ws.send(frame("subscriptionResponse", msg))
                    for text_out in self._snapshot(sub):
                        await ws.send(text_out)
        except ConnectionClosed:
            pass
        finally:
            self.conns.remove(ws)

    def _snapshot(self, sub: dict[str, Any]) -> list[str]:
        kind = sub["type"]
        if kind == "userFills":
            source = self.fills if self.snapshot_fills is None else self.snapshot_fills
            data = {"user": sub["user"], "isSnapshot": True, "fills": list(source.get(sub["user"], []))}
            return [frame("userFills", data)]
        if not self.market_snapshots:
            return []
        if kind == "allMids":
            return [frame("allMids", {"mids": {"ETH": "100", "BTC": "50000"}})]
        if kind == "l2Book":
            return [frame("l2Book", {**BOOK, "coin": sub["coin"]})]
        return []

    async def send_all(self, text: str) -> None:
        for ws in list(self.conns):
            await ws.send(text)

    async def push_fill(self, user: str, fill: dict[str, Any]) -> None:
        self.fills.setdefault(user, []).append(fill)
        await self.send_all(frame("userFills", {"user": user, "fills": [fill]}))

    async def fetch(self, address: str, start_ms: int) -> list[Fill]:
        self.fetches.append((address, start_ms))
        return parse.fills(address, [f for f in self.fills.get(address, []) if f["time"] >= start_ms])

    def subscribed(self, kind: str) -> list[dict[str, Any]]:
        return [
            m["subscription"]
            for m in self.received
            if m["method"] == "subscribe" and m["subscription"]["type"] == kind
        ]

    def unsubscribed(self, kind: str) -> list[dict[str, Any]]:
        return [
            m["subscription"]
            for m in self.received
            if m["method"] == "unsubscribe" and m["subscription"]["type"] == kind
        ]


async def until(predicate: Callable[[], Any], what: str = "condition") -> None:
    async def spin() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(spin(), WAIT)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


async def take(it: AsyncIterator[T], n: int = 1) -> list[T]:
    return [await asyncio.wait_for(anext(it), WAIT) for _ in range(n)]


async def event(events: AsyncIterator[StreamEvent], kind: str) -> StreamEvent:
    while True:
        e = await asyncio.wait_for(anext(events), WAIT)
        if e.kind == kind:
            return e


@pytest.fixture
async def venue() -> AsyncIterator[FakeVenue]:
    async with FakeVenue() as v:
        yield v


def supervisor(venue: FakeVenue, **kw: Any) -> StreamSupervisor:
    options: dict[str, Any] = {
        "backoff_initial_secs": 0.02,
        "backoff_max_secs": 0.1,
        "poll_max_per_min": None,
    }
    options.update(kw)
    return StreamSupervisor(venue.url, fetch_fills=venue.fetch, **options)


# ---------------------------------------------------------------------- market data


async def test_market_channels_are_subscribed_and_parsed(venue: FakeVenue) -> None:
    sup = supervisor(venue)
    await sup.start()
    books, trades, bbo, mids = sup.books(["ETH"]), sup.trades(["ETH"]), sup.bbo(["ETH"]), sup.mids()
    (book,) = await take(books)
    assert (book.coin, book.best_bid, book.best_ask) == ("ETH", 99, 101)
    assert (await take(mids))[0]["BTC"] == 50000
    await venue.send_all(frame("trades", [{"coin": "ETH", "side": "A", "px": "100", "sz": "1", "time": 5,
                                           "hash": "0x", "tid": 9, "users": [A, B]}]))  # fmt: skip
    await venue.send_all(
        frame("bbo", {"coin": "ETH", "time": 6, "bbo": [None, {"px": "101", "sz": "2", "n": 1}]})
    )
    (trade,) = await take(trades)
    assert (trade.tid, trade.seller) == (9, B)
    (quote,) = await take(bbo)
    assert quote.bid is None
    assert quote.ask is not None
    assert quote.ask.price == 101
    # the messages exactly as the venue documents them; allMids once (consumer + staleness sentinel)
    assert venue.subscribed("l2Book") == [{"type": "l2Book", "coin": "ETH"}]
    assert venue.subscribed("trades") == [{"type": "trades", "coin": "ETH"}]
    assert venue.subscribed("bbo") == [{"type": "bbo", "coin": "ETH"}]
    assert venue.subscribed("allMids") == [{"type": "allMids"}]
    await sup.close()


async def test_consumers_share_one_subscription_and_unsubscribe_when_all_leave(venue: FakeVenue) -> None:
    sup = supervisor(venue)
    await sup.start()
    first, second = sup.books(["ETH"]), sup.books(["ETH", "BTC"])
    assert (await take(first))[0].coin == "ETH"
    got = {b.coin for b in await take(second, 2)}
    assert got == {"ETH", "BTC"}
    await first.aclose()
    await venue.send_all(frame("l2Book", {**BOOK, "time": 2000}))
    assert (await take(second))[0].time_ms == 2000  # still flowing for the other consumer
    assert venue.unsubscribed("l2Book") == []
    async with second:
        pass  # leaving the block closes it
    await until(lambda: len(venue.unsubscribed("l2Book")) == 2, "unsubscribes")
    await until(lambda: venue.unsubscribed("allMids") == [{"type": "allMids"}], "sentinel released")
    assert venue.subscribed("l2Book") == [
        {"type": "l2Book", "coin": "ETH"},
        {"type": "l2Book", "coin": "BTC"},
    ]
    await sup.close()


async def test_malformed_frames_are_skipped(venue: FakeVenue) -> None:
    sup = supervisor(venue)
    await sup.start()
    mids = sup.mids()
    await take(mids)
    bad_frames = [
        "not json",
        "[1, 2]",
        '{"no": "channel"}',
        frame("l2Book", {"coin": "ETH"}),
        frame("trades", {"x": 1}),
        frame("allMids", 7),
        frame("mystery", {}),
        "Websocket connection established.",
    ]
    for bad in bad_frames:
        await venue.send_all(bad)
    await venue.send_all(frame("allMids", {"mids": {"ETH": "123"}}))
    assert (await take(mids))[0] == {"ETH": 123}
    assert sup.stats.reconnects == 0
    await sup.close()


# ---------------------------------------------------------------------- liveness


async def test_silent_feed_is_stale_then_fresh_after_reconnect(venue: FakeVenue) -> None:
    venue.market_snapshots = False  # subscribe, then say nothing (pongs still answered)
    sup = supervisor(venue, stale_after_secs=0.2, heartbeat_secs=0.05)
    events = sup.events()
    await sup.start()
    mids = sup.mids()
    stale = await event(events, "stale")
    assert "no market data" in stale.detail
    assert "stale" in (await event(events, "disconnected")).detail
    venue.market_snapshots = True
    await event(events, "connected")
    await event(events, "fresh")
    assert (await take(mids))[0]["ETH"] == 100
    assert sup.stats.reconnects >= 1
    await sup.close()


async def test_connection_without_pongs_is_dropped(venue: FakeVenue) -> None:
    venue.pong = False
    sup = supervisor(venue, heartbeat_secs=0.05, pong_timeout_secs=0.1)
    events = sup.events()
    await sup.start()
    sup.fills([A])  # user data only: no staleness rule, the heartbeat decides
    assert "dead" in (await event(events, "disconnected")).detail
    assert any(m["method"] == "ping" for m in venue.received)
    await sup.close()


async def test_backoff_is_capped_and_jittered() -> None:
    class Quiet:
        def __getattr__(self, name: str) -> Callable[..., None]:
            return lambda *a: None

    conn = WsConnection("ws://127.0.0.1:1/ws", "t", Quiet(), backoff_initial_secs=0.5, backoff_max_secs=4)
    delays = [conn._backoff(n) for n in range(12)]
    assert all(0.25 <= d <= 4 for d in delays)
    assert max(delays[8:]) > 1  # grows to the cap...
    assert len(set(delays)) > 6  # ...with jitter


# ---------------------------------------------------------------------- fills


async def test_since_none_skips_the_snapshot_and_delivers_later_fills(venue: FakeVenue) -> None:
    venue.fills[A] = [wire_fill(1, 100), wire_fill(2, 100)]
    sup = supervisor(venue)
    await sup.start()
    fills = sup.fills([A])
    await until(lambda: venue.subscribed("userFills"), "userFills subscription")
    await until(lambda: sup._fills._addrs[A].primed, "snapshot")
    await venue.push_fill(A, wire_fill(3, 100))
    assert [f.tid for f in await take(fills)] == [3]
    assert venue.subscribed("userFills") == [{"type": "userFills", "user": A}]
    await sup.close()


async def test_since_ms_delivers_history_once_and_in_order(venue: FakeVenue) -> None:
    venue.fills[A] = [wire_fill(1, 50), wire_fill(2, 100), wire_fill(3, 200)]
    sup = supervisor(venue)
    await sup.start()
    fills = sup.fills([A], since_ms=100)
    got = await take(fills, 2)  # the snapshot and the history fetch both carry 2 and 3
    await venue.push_fill(A, wire_fill(4, 300))
    got += await take(fills)
    assert [f.tid for f in got] == [2, 3, 4]
    assert (A, 100) in venue.fetches
    await sup.close()


async def test_reconnect_backfills_what_the_snapshot_missed_exactly_once(venue: FakeVenue) -> None:
    venue.fills[A] = [wire_fill(1, 100)]
    sup = supervisor(venue, overlap_ms=10)
    events = sup.events()
    await sup.start()
    fills = sup.fills([A])
    await until(lambda: sup._fills._addrs[A].primed, "snapshot")
    await venue.push_fill(A, wire_fill(2, 200))
    assert [f.tid for f in await take(fills)] == [2]

    venue.accepting = False
    await sup.force_reconnect()
    await event(events, "disconnected")
    # fills while we are away; the venue's snapshot on resubscribe will not show them (stale cache),
    # so only the REST backfill finds them
    venue.fills[A] += [wire_fill(3, 300), wire_fill(4, 300)]
    venue.snapshot_fills = {A: [wire_fill(1, 100), wire_fill(2, 200)]}
    venue.accepting = True
    backfilled = await event(events, "backfilled")
    assert "new=2" in backfilled.detail
    assert (A, 190) in venue.fetches  # from the last fill seen before the gap, minus the overlap
    assert [f.tid for f in await take(fills, 2)] == [3, 4]
    await venue.push_fill(A, wire_fill(4, 300))  # the venue repeats itself: dropped
    await venue.push_fill(A, wire_fill(5, 400))
    assert [f.tid for f in await take(fills)] == [5]
    stats = sup.stats
    assert stats.backfilled == 2
    assert stats.reconnects == 1
    assert stats.duplicates_dropped >= 3
    await sup.close()


async def test_user_limit_pushes_the_first_addresses_and_polls_the_rest(venue: FakeVenue) -> None:
    sup = supervisor(venue, max_ws_users=2, poll_interval_secs=0.02)
    await sup.start()
    fills = sup.fills([A, B, C])
    await until(lambda: len(venue.subscribed("userFills")) == 2, "two userFills subscriptions")
    assert {s["user"] for s in venue.subscribed("userFills")} == {A, B}
    assert sup.ws_addresses() == [A, B]
    await until(lambda: any(addr == C for addr, _ in venue.fetches), "C polled")
    await until(lambda: sup._fills._addrs[C].primed, "C baseline")
    venue.fills[C] = [wire_fill(7, int(1e13))]
    await venue.push_fill(A, wire_fill(8, int(1e13)))
    got = {(f.address, f.tid) for f in await take(fills, 2)}
    assert got == {(C, 7), (A, 8)}
    assert sup.stats.polled == 1

    # an order stream needs a WS slot: the last fill-only address is demoted to polling
    orders = sup.orders(D)
    await until(lambda: venue.unsubscribed("userFills") == [{"type": "userFills", "user": B}], "B demoted")
    assert sup.ws_addresses() == [A, D]
    await until(lambda: venue.subscribed("orderUpdates") == [{"type": "orderUpdates", "user": D}], "orders")
    assert venue.subscribed("userEvents") == [{"type": "userEvents", "user": D}]
    more = sup.orders(E)  # every slot now carries orders: A is polled too
    assert sup.ws_addresses() == [D, E]
    with pytest.raises(WsUserLimitError, match="users per IP"):
        sup.orders("0x" + "f" * 40)
    await more.aclose()
    await orders.aclose()
    await until(lambda: sup.ws_addresses() == [A, B], "slots freed: A and B pushed again")
    await until(lambda: len(venue.subscribed("userFills")) == 4, "resubscribed")
    await sup.close()


async def test_priority_hook_chooses_who_is_pushed(venue: FakeVenue) -> None:
    sup = supervisor(venue, max_ws_users=1, ws_priority=lambda a: 0 if a == C else 1)
    await sup.start()
    fills = sup.fills([A, C])
    await until(lambda: venue.subscribed("userFills") == [{"type": "userFills", "user": C}], "C pushed")
    await fills.aclose()
    await sup.close()


async def test_orders_and_user_events_come_from_a_socket_of_their_own(venue: FakeVenue) -> None:
    sup = supervisor(venue)
    await sup.start()
    orders, user = sup.orders(A), sup.user_events(A)
    await until(lambda: len(venue.conns) == 1 and venue.subscribed("userEvents"), "account socket")
    order = {"coin": "ETH", "side": "B", "limitPx": "100", "sz": "0", "oid": 5, "timestamp": 1, "origSz": "1"}
    await venue.send_all(frame("orderUpdates", [{"order": order, "status": "filled", "statusTimestamp": 2}]))
    await venue.send_all(frame("user", {"nonUserCancel": [{"coin": "ETH", "oid": 6}]}))
    (state,) = await take(orders)
    assert (state.oid, state.status, state.status_ms) == (5, "filled", 2)
    assert (await take(user))[0] == {"nonUserCancel": [{"coin": "ETH", "oid": 6}]}
    await orders.aclose()
    await user.aclose()
    await until(lambda: not venue.conns, "account socket closed once nobody listens")
    await sup.close()


async def test_close_ends_every_iterator_and_socket(venue: FakeVenue) -> None:
    sup = supervisor(venue)
    await sup.start()
    books, fills, events = sup.books(["ETH"]), sup.fills([A]), sup.events()
    await take(books)

    async def drain(it: AsyncIterator[Any]) -> int:
        return len([x async for x in it])

    tasks = [asyncio.create_task(drain(it)) for it in (books, fills, events)]
    await asyncio.sleep(0)
    await sup.close()
    await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
    await until(lambda: not venue.conns, "socket closed")
    late = sup.books(["BTC"])
    assert [b async for b in late] == []


async def test_history_older_than_the_poll_baseline_is_not_delivered_after_promotion(
    venue: FakeVenue,
) -> None:
    venue.fills[B] = [wire_fill(1, 5_000), wire_fill(2, 9_500)]  # before the subscription, both
    sup = supervisor(
        venue, max_ws_users=1, poll_interval_secs=0.02, now_ms=lambda: 10_000, baseline_window_ms=1_000
    )
    await sup.start()
    fills_a, fills_b = sup.fills([A]), sup.fills([B])
    await until(lambda: (B, 9_000) in venue.fetches, "B's baseline poll")
    await fills_a.aclose()  # frees the slot: B moves to push, and its snapshot brings fill 1 along
    await until(lambda: venue.subscribed("userFills")[-1:] == [{"type": "userFills", "user": B}], "B pushed")
    await until(lambda: sup._fills.mode(B) == "ws", "B in push mode")
    await venue.push_fill(B, wire_fill(3, 10_000))
    assert [f.tid for f in await take(fills_b)] == [3]
    await sup.close()
