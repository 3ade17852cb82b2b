"""The stream supervisor: Hyperliquid's WebSocket feeds as supervised, self-healing async iterators.

We run our own client over ``websockets`` (the SDK's WebsocketManager never reconnects). Layout:

* one *main* connection (``ws_conn.WsConnection``) carries market data (``l2Book``, ``trades``,
  ``bbo``, ``allMids``) and ``userFills`` of the addresses pushed over WS (their messages carry the
  user, so one socket serves them all);
* one connection per address with ``orders()`` / ``user_events()`` consumers: ``orderUpdates`` and
  ``userEvents`` (channel ``"user"``) frames carry no user field (venue quirk; the SDK allows one of
  each per socket for that reason), so only a socket of their own tells whose they are.

Every subscription is reference counted (several consumers share one venue subscription) and re-sent
on reconnect. While any book/trade/bbo subscription exists, ``allMids`` is held as well: the venue
pushes it continuously, so silence on the socket means the feed is stale, not that a market is quiet.

The 10-user limit (venue: at most 10 distinct users across an IP's user subscriptions): at most
``max_ws_users`` addresses get WS user subscriptions. Addresses with order/event consumers come first
(orders cannot be polled; ``orders()`` raises ``WsUserLimitError`` beyond the limit), then fill-only
addresses in the order first asked for (or by ``ws_priority(address)``, lower first). The rest are
polled through ``fetch_fills``; a fill-only address can be demoted to polling to make room for an
order stream and promoted back when a slot frees. Push, poll and backfill of fills go through
``poller.FillRouter`` (de-duplication, gap backfill, ordering; its docstring states the guarantees).

Order updates and user events missed while a socket was down are not replayed (the venue has no
replay for them): the supervisor emits ``StreamEvent("gap", subjects=(address,))`` on reconnect and
consumers reconcile over REST.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import msgspec
import structlog

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.hyperliquid.poller import FillConsumer, FillFetcher, FillRouter, Mode, Subscription
from hyperfollow.adapters.hyperliquid.ws_conn import WsConnection
from hyperfollow.domain.model import Bbo, Fill, L2Book, OrderState, StreamEvent, Trade

__all__ = ["FillFetcher", "StreamStats", "StreamSupervisor", "Subscription", "WsUserLimitError"]

log = structlog.get_logger(__name__)
T = TypeVar("T")
MARKET_QUEUE = 1_000  # books/trades buffered per market consumer; a slow one loses the oldest
_SENTINEL = ("allMids", "")


class WsUserLimitError(RuntimeError):
    """More addresses need WebSocket user streams (orders/events) than the venue allows per IP."""


@dataclass(frozen=True, slots=True)
class StreamStats:
    """Counters since start: reconnects (successful re-opens of any socket), data frames received,
    duplicate fills dropped, fills first found by a reconnect backfill / by polling, polls made, fill
    fetches that failed (they are retried)."""

    reconnects: int = 0
    messages: int = 0
    duplicates_dropped: int = 0
    backfilled: int = 0
    polled: int = 0
    polls: int = 0
    fetch_failures: int = 0


@dataclass(eq=False)
class _Account:
    """The per-address socket of orderUpdates / userEvents and its consumers."""

    conn: WsConnection
    orders: set[Subscription[OrderState]] = field(default_factory=set)
    events: set[Subscription[dict[str, Any]]] = field(default_factory=set)


class StreamSupervisor:
    """Supervised Hyperliquid streams over one ``ws_url``; see the module docstring."""

    def __init__(
        self,
        ws_url: str,
        *,
        fetch_fills: FillFetcher,
        max_ws_users: int = 10,
        heartbeat_secs: float = 20.0,
        stale_after_secs: float = 10.0,
        pong_timeout_secs: float = 10.0,
        backoff_initial_secs: float = 0.25,
        backoff_max_secs: float = 30.0,
        poll_interval_secs: float = 2.0,
        poll_max_per_min: float | None = 40.0,
        overlap_ms: int = 2_000,
        baseline_window_ms: int = 60_000,
        ws_priority: Callable[[str], float] | None = None,
        now_ms: Callable[[], int] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """``now_ms`` is the venue's clock (default: wall clock); it stamps events and places the first
        poll of an address (``baseline_window_ms`` before now). Pass the venue's when it runs its own
        (a stepped or sped-up embedded exchange). ``poll_max_per_min`` caps polls in all (None: no cap)."""
        self.ws_url = ws_url
        self.max_ws_users = max_ws_users
        self._conn_options: dict[str, Any] = {
            "heartbeat_secs": heartbeat_secs,
            "stale_after_secs": stale_after_secs,
            "pong_timeout_secs": pong_timeout_secs,
            "backoff_initial_secs": backoff_initial_secs,
            "backoff_max_secs": backoff_max_secs,
            "rng": rng,
        }
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))
        self._priority = ws_priority
        self._fills = FillRouter(
            fetch_fills,
            emit=self._emit,
            now_ms=self._now_ms,
            poll_interval_secs=poll_interval_secs,
            poll_max_per_min=poll_max_per_min,
            overlap_ms=overlap_ms,
            baseline_window_ms=baseline_window_ms,
        )
        self._main: WsConnection | None = None
        self._accounts: dict[str, _Account] = {}
        self._market: dict[tuple[str, str], set[Subscription[Any]]] = {}
        self._market_subs: dict[tuple[str, str], dict[str, Any]] = {}
        self._fill_subs: set[str] = set()
        self._fill_consumers: dict[Subscription[Fill], FillConsumer] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._events: set[Subscription[StreamEvent]] = set()
        self._started = False
        self._closed = False
        self._reconnects = 0
        self._messages = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the sockets of every subscription made so far (later ones open their own as needed)."""
        self._started = True
        if self._main is not None:
            self._main.start()
        for account in self._accounts.values():
            account.conn.start()

    async def close(self) -> None:
        """Cancel every task, close every socket, end every iterator."""
        if self._closed:
            return
        self._closed = True
        conns = [a.conn for a in self._accounts.values()] + ([self._main] if self._main else [])
        for conn in conns:
            await conn.close()
        await self._fills.aclose()
        for task in list(self._closing):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        subs: list[Subscription[Any]] = [*self._fill_consumers.keys(), *self._events]
        subs += [s for group in self._market.values() for s in group]
        for account in self._accounts.values():
            subs += [*account.orders, *account.events]
        for sub in subs:
            sub.end()

    async def force_reconnect(self) -> None:
        """Drop every open socket as the network would; each reconnects (and backfills) on its own.
        A socket still connecting is left alone."""
        for conn in [self._main, *(a.conn for a in self._accounts.values())]:
            if conn is not None:
                conn.drop("forced reconnect")

    @property
    def stats(self) -> StreamStats:
        c = self._fills.counters
        return StreamStats(
            reconnects=self._reconnects,
            messages=self._messages,
            duplicates_dropped=c.duplicates_dropped,
            backfilled=c.backfilled,
            polled=c.polled,
            polls=c.polls,
            fetch_failures=c.fetch_failures,
        )

    def ws_addresses(self) -> list[str]:
        """Addresses currently on WS user subscriptions (the rest of ``fills`` are polled)."""
        return sorted(set(self._accounts) | self._fill_subs)

    def _connection(self, name: str) -> WsConnection:
        conn = WsConnection(self.ws_url, name, self, **self._conn_options)
        if self._started and not self._closed:
            conn.start()
        return conn

    def _main_conn(self) -> WsConnection:
        if self._main is None:
            self._main = self._connection("main")
        return self._main

    # ------------------------------------------------------------------ market data

    def books(self, coins: Sequence[str]) -> Subscription[L2Book]:
        """Full L2 snapshots of ``coins`` (one per venue push)."""
        return self._open_market([("l2Book", c) for c in coins])

    def trades(self, coins: Sequence[str]) -> Subscription[Trade]:
        return self._open_market([("trades", c) for c in coins])

    def bbo(self, coins: Sequence[str]) -> Subscription[Bbo]:
        return self._open_market([("bbo", c) for c in coins])

    def mids(self) -> Subscription[dict[str, Decimal]]:
        """Every mid of the main perp dex (and spot), as the venue pushes ``allMids``."""
        return self._open_market([_SENTINEL])

    def _open_market(self, keys: list[tuple[str, str]]) -> Subscription[Any]:
        sub: Subscription[Any] = Subscription(lambda s: self._close_market(s, keys), MARKET_QUEUE)
        if self._closed:
            sub.end()
            return sub
        for key in keys:
            self._market.setdefault(key, set()).add(sub)
        self._sync_market()
        return sub

    def _close_market(self, sub: Subscription[Any], keys: list[tuple[str, str]]) -> None:
        for key in keys:
            group = self._market.get(key)
            if group is not None:
                group.discard(sub)
                if not group:
                    del self._market[key]
        self._sync_market()

    def _sync_market(self) -> None:
        """Venue subscriptions = the keys consumers want, plus the allMids sentinel (module docstring)."""
        if self._closed:
            return
        wanted = set(self._market)
        if any(kind != "allMids" for kind, _ in wanted):
            wanted.add(_SENTINEL)
        conn = self._main_conn()
        for key in list(self._market_subs):
            if key not in wanted:
                conn.remove(self._market_subs.pop(key))
        for kind, coin in wanted - set(self._market_subs):
            sub: dict[str, Any] = {"type": kind} if kind == "allMids" else {"type": kind, "coin": coin}
            self._market_subs[(kind, coin)] = sub
            conn.add(sub)

    def _publish(self, key: tuple[str, str], item: Any) -> None:
        for sub in self._market.get(key, ()):
            sub.push(item)

    # ------------------------------------------------------------------ user streams

    def fills(self, addresses: Sequence[str], since_ms: int | None = None) -> Subscription[Fill]:
        """Each fill of ``addresses`` once, in one stream (per address by ``(time_ms, tid)``; see
        ``poller``). ``since_ms``: also every fill from that venue time on (fetched, then merged);
        None: only fills after this call (the venue's snapshot of older ones is not delivered)."""
        out: Subscription[Fill] = Subscription(self._close_fills)
        if self._closed:
            out.end()
            return out
        self._fill_consumers[out] = self._fills.open(addresses, since_ms, out)
        self._rebalance()
        return out

    def _close_fills(self, out: Subscription[Fill]) -> None:
        consumer = self._fill_consumers.pop(out, None)
        if consumer is not None:
            self._fills.close(consumer)
            self._rebalance()

    def orders(self, address: str) -> Subscription[OrderState]:
        """``orderUpdates`` of ``address`` (live only; a ``gap`` event follows each reconnect)."""
        out: Subscription[OrderState] = Subscription(lambda s: self._close_account(address.lower(), s))
        if self._closed:
            out.end()
            return out
        self._account(address.lower()).orders.add(out)
        return out

    def user_events(self, address: str) -> Subscription[dict[str, Any]]:
        """Raw ``userEvents`` payloads of ``address`` (fills, funding, liquidation, nonUserCancel)."""
        out: Subscription[dict[str, Any]] = Subscription(lambda s: self._close_account(address.lower(), s))
        if self._closed:
            out.end()
            return out
        self._account(address.lower()).events.add(out)
        return out

    def _account(self, address: str) -> _Account:
        account = self._accounts.get(address)
        if account is not None:
            return account
        if len(self._accounts) >= self.max_ws_users:
            raise WsUserLimitError(
                f"{address}: already {len(self._accounts)} addresses with order/event streams "
                f"(the venue allows {self.max_ws_users} users per IP)"
            )
        account = self._accounts[address] = _Account(self._connection(f"user:{address[:10]}"))
        account.conn.add({"type": "orderUpdates", "user": address})
        account.conn.add({"type": "userEvents", "user": address})
        self._rebalance()
        return account

    def _close_account(self, address: str, sub: Subscription[Any]) -> None:
        account = self._accounts.get(address)
        if account is None:
            return
        account.orders.discard(sub)
        account.events.discard(sub)
        if not account.orders and not account.events:
            del self._accounts[address]
            self._spawn(account.conn.close())
            self._rebalance()

    def _rebalance(self) -> None:
        """Give WS user slots (module docstring) and move fill addresses between push and poll."""
        if self._closed:
            return
        followed = self._fills.addresses()
        rank = {a: i for i, a in enumerate(followed)}
        others = [a for a in followed if a not in self._accounts]
        priority = self._priority
        if priority is not None:
            others.sort(key=lambda a: (priority(a), rank[a]))
        free = max(0, self.max_ws_users - len(self._accounts))
        pushed = set(others[:free]) | (set(followed) & set(self._accounts))
        conn = self._main_conn() if followed or self._fill_subs else None
        for address in list(self._fill_subs):
            if address not in pushed:
                self._fill_subs.discard(address)
                assert conn is not None
                conn.remove({"type": "userFills", "user": address})
        for address in followed:
            mode: Mode = "ws" if address in pushed else "poll"
            if self._fills.mode(address) == "ws" and mode == "poll":
                log.info("stream.ws_demoted", address=address)
            self._fills.set_mode(address, mode)
            if mode == "ws" and address not in self._fill_subs:
                self._fill_subs.add(address)
                assert conn is not None
                conn.add({"type": "userFills", "user": address})

    # ------------------------------------------------------------------ events

    def events(self) -> Subscription[StreamEvent]:
        """Connection, staleness, backfill and gap events from now on."""
        out: Subscription[StreamEvent] = Subscription(self._events.discard, 10_000)
        if self._closed:
            out.end()
        else:
            self._events.add(out)
        return out

    def _emit(self, event: StreamEvent) -> None:
        for sub in self._events:
            sub.push(event)

    def _subjects(self, conn: WsConnection) -> tuple[str, ...]:
        if conn is self._main:
            return tuple(sorted({str(s.get("coin") or s.get("user") or "*") for s in conn.subscriptions}))
        return tuple(a for a, acct in self._accounts.items() if acct.conn is conn)

    # ------------------------------------------------------------------ ConnListener

    def on_connected(self, conn: WsConnection, reconnect: bool) -> None:
        self._emit(StreamEvent("connected", conn.name, self._now_ms(), self._subjects(conn)))
        if not reconnect:
            return
        self._reconnects += 1
        if conn is self._main:
            self._fills.on_connected()
        else:
            self._emit(StreamEvent("gap", "order updates not replayed", self._now_ms(), self._subjects(conn)))

    def on_disconnected(self, conn: WsConnection, reason: str) -> None:
        self._emit(
            StreamEvent("disconnected", f"{conn.name}: {reason}", self._now_ms(), self._subjects(conn))
        )
        if conn is self._main:
            self._fills.on_disconnected()

    def on_stale(self, conn: WsConnection, silent_secs: float) -> None:
        detail = f"{conn.name}: no market data for {silent_secs:.1f}s"
        self._emit(StreamEvent("stale", detail, self._now_ms(), self._subjects(conn)))

    def on_fresh(self, conn: WsConnection) -> None:
        self._emit(StreamEvent("fresh", conn.name, self._now_ms(), self._subjects(conn)))

    def on_frame(self, conn: WsConnection, channel: str, data: msgspec.Raw) -> None:
        self._messages += 1
        if channel == "l2Book":
            book = parse.l2_book_from_raw(data)
            self._publish(("l2Book", book.coin), book)
            return
        if channel == "allMids" and not self._market.get(_SENTINEL):
            return  # only the staleness sentinel: arriving was all it had to do
        payload = parse.raw_json(data)
        if channel == "userFills":
            address = str(payload["user"]).lower()
            fills = parse.fills(address, payload["fills"])
            self._fills.on_push(address, fills, snapshot=bool(payload.get("isSnapshot")))
        elif channel == "trades":
            for item in payload:
                trade = parse.trade(item)
                self._publish(("trades", trade.coin), trade)
        elif channel == "bbo":
            bbo = parse.bbo(payload)
            self._publish(("bbo", bbo.coin), bbo)
        elif channel == "allMids":
            if not payload.get("dex"):  # we subscribe the main dex only
                self._publish(_SENTINEL, parse.mids(payload))
        elif channel == "orderUpdates":
            updates = [parse.order_update(item) for item in payload]
            for account in self._accounts_of(conn):
                for sub in account.orders:
                    for update in updates:
                        sub.push(update)
        elif channel == "user":
            for account in self._accounts_of(conn):
                for events in account.events:
                    events.push(payload)
        else:
            log.debug("stream.unrouted", conn=conn.name, channel=channel)

    def _accounts_of(self, conn: WsConnection) -> list[_Account]:
        return [a for a in self._accounts.values() if a.conn is conn]

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a clean-up in the background (called from synchronous unsubscribe paths)."""
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no running loop (interpreter shutdown): nothing left to clean
            coro.close()
            return
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
