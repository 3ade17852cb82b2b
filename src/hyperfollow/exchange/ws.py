"""WebSocket subscriptions: routing engine events to subscribers in the venue's frames.

Frames are ``{"channel": name, "data": payload}``. Each message is serialized once and queued to
every subscriber; a writer task per connection sends it, and a connection whose queue overflows is
dropped (a slow consumer must not stall the venue). User events (fills, order updates) are pushed
right after the request or step that caused them; books, bbo, mids and candles once per market step.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from hyperfollow.exchange.engine import Engine
from hyperfollow.exchange.info import InfoApi, error_text, is_address

SubKey = tuple[str, ...]
USER_SUBS = frozenset(
    {
        "userFills",
        "orderUpdates",
        "userEvents",
        "userFundings",
        "userNonFundingLedgerUpdates",
        "webData2",
        "notification",
        "activeAssetData",
    }
)
MAX_QUEUE = 20_000


def dumps(channel: str, data: Any) -> str:
    return json.dumps({"channel": channel, "data": data}, separators=(",", ":"))


def quote(value: Any, limit: int = 120) -> str:
    """A client's JSON value as an error text may quote it: compact, escaped, bounded."""
    try:
        text = json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        text = "..."
    return error_text(text, limit)


def error_frame(text: str) -> str:
    """The venue's error frame, ``{"channel": "error", "data": text}``, with ``text`` made safe."""
    return dumps("error", error_text(text))


class Connection:
    """One client socket: its subscriptions and an outgoing queue drained by a writer task."""

    def __init__(self, ip: str, send: Callable[[str], Any]) -> None:
        self.ip = ip
        self.send = send
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.subs: set[SubKey] = set()
        self.closed = False

    def push(self, text: str) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= MAX_QUEUE:
            self.closed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(text)

    async def writer(self) -> None:
        while True:
            text = await self.queue.get()
            if text is None:
                return
            await self.send(text)


class WsHub:
    """Subscriptions of every connection, and the fan-out of engine events."""

    def __init__(self, engine: Engine, info: InfoApi, max_users_per_ip: int | None = 10) -> None:
        self.engine = engine
        self.info = info
        self.max_users_per_ip = max_users_per_ip
        self.subs: dict[SubKey, set[Connection]] = {}
        self.last_bbo: dict[str, Any] = {}

    # ------------------------------------------------------------------ subscriptions

    def key_of(self, sub: Any) -> SubKey:
        """The routing key of a subscription object; ValueError when it is not one we know (any
        field of the wrong type included: coins, dexes and intervals are strings)."""
        if not isinstance(sub, Mapping) or not isinstance(sub.get("type"), str):
            raise ValueError("Invalid subscription")
        kind = sub["type"]
        universe = self.engine.universe
        if kind == "allMids":
            dex = sub.get("dex") or ""
            if not isinstance(dex, str) or dex not in universe.metas:
                raise ValueError("Invalid subscription")
            return (kind, dex)
        coin = sub.get("coin")
        if kind in ("l2Book", "trades", "bbo", "activeAssetCtx"):
            if not isinstance(coin, str) or coin not in universe.by_coin:
                raise ValueError("Invalid subscription")
            return (kind, coin)
        if kind == "candle":
            interval = sub.get("interval")
            if not isinstance(coin, str) or coin not in universe.by_coin or not isinstance(interval, str):
                raise ValueError("Invalid subscription")
            return (kind, coin, interval)
        if kind in USER_SUBS:
            user = sub.get("user")
            if not is_address(user):
                raise ValueError("Invalid subscription")
            if kind == "activeAssetData":
                if not isinstance(coin, str) or coin not in universe.by_coin:
                    raise ValueError("Invalid subscription")
                return (kind, user.lower(), coin)
            return (kind, user.lower())
        raise ValueError("Invalid subscription")

    def users_of_ip(self, ip: str) -> set[str]:
        return {
            k[1] for k, conns in self.subs.items() if k[0] in USER_SUBS and any(c.ip == ip for c in conns)
        }

    def subscribe(self, conn: Connection, sub: Any) -> None:
        try:
            key = self.key_of(sub)
        except ValueError:
            conn.push(error_frame(f"Invalid subscription {quote(sub)}"))
            return
        if key in conn.subs:
            conn.push(error_frame(f"Already subscribed: {quote(sub)}"))
            return
        if key[0] in USER_SUBS and self.max_users_per_ip is not None:
            users = self.users_of_ip(conn.ip)
            if key[1] not in users and len(users) >= self.max_users_per_ip:
                conn.push(error_frame(f"Cannot track more than {self.max_users_per_ip} total users."))
                return
        conn.subs.add(key)
        self.subs.setdefault(key, set()).add(conn)
        conn.push(dumps("subscriptionResponse", {"method": "subscribe", "subscription": sub}))
        for text in self._snapshot(key):
            conn.push(text)

    def unsubscribe(self, conn: Connection, sub: Any) -> None:
        try:
            key = self.key_of(sub)
        except ValueError:
            conn.push(error_frame(f"Invalid subscription {quote(sub)}"))
            return
        conn.subs.discard(key)
        self._forget(conn, key)
        conn.push(dumps("subscriptionResponse", {"method": "unsubscribe", "subscription": sub}))

    def _forget(self, conn: Connection, key: SubKey) -> None:
        conns = self.subs.get(key)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.subs[key]

    def drop(self, conn: Connection) -> None:
        for key in list(conn.subs):
            self._forget(conn, key)
        conn.subs.clear()
        conn.closed = True
        conn.queue.put_nowait(None)

    def _snapshot(self, key: SubKey) -> list[str]:
        e, kind = self.engine, key[0]
        if kind == "userFills":
            acct = e.accounts.get(key[1])
            fills = [e.fill_wire(f) for f in list(acct.fills)[-2000:]] if acct else []
            return [dumps("userFills", {"user": key[1], "isSnapshot": True, "fills": fills})]
        if kind == "userFundings":
            acct = e.accounts.get(key[1])
            return [
                dumps(
                    kind,
                    {"user": key[1], "isSnapshot": True, "fundings": list(acct.fundings) if acct else []},
                )
            ]
        if kind == "userNonFundingLedgerUpdates":
            acct = e.accounts.get(key[1])
            items = list(acct.ledger) if acct else []
            return [dumps(kind, {"user": key[1], "isSnapshot": True, "nonFundingLedgerUpdates": items})]
        if kind in ("l2Book", "bbo", "allMids", "activeAssetCtx", "activeAssetData"):
            return [text for text in [self._market_message(key, snapshot=True)] if text is not None]
        return []

    # ------------------------------------------------------------------ fan-out

    def _send(self, key: SubKey, text: str) -> None:
        for conn in self.subs.get(key, ()):
            conn.push(text)

    def flush(self, market_step: bool = False) -> None:
        """Route what the engine emitted since the last flush; with ``market_step`` also books and mids."""
        e = self.engine
        events, e.outbox = e.outbox or [], []
        if self.subs and events:
            self._route(events)
        if market_step:
            self._market_push()
        elif not self.subs:
            e.dirty_books.clear()

    def _route(self, events: list[tuple[str, str, Any]]) -> None:
        e = self.engine
        fills: dict[str, list[Any]] = {}
        trades: dict[str, list[Any]] = {}
        updates: dict[str, list[Any]] = {}
        for channel, key, payload in events:
            if channel == "userFills":
                if ("userFills", key) in self.subs or ("userEvents", key) in self.subs:
                    fills.setdefault(key, []).append(e.fill_wire(payload))
            elif channel == "trades":
                if ("trades", key) in self.subs:
                    trades.setdefault(key, []).append(e.trade_wire(payload))
            elif channel == "orderUpdates":
                if ("orderUpdates", key) in self.subs:
                    updates.setdefault(key, []).append(e.order_update_wire(payload))
            elif channel == "user" and ("userEvents", key) in self.subs:
                self._send(("userEvents", key), dumps("user", payload))
        for user, items in fills.items():
            if ("userFills", user) in self.subs:
                self._send(("userFills", user), dumps("userFills", {"user": user, "fills": items}))
            if ("userEvents", user) in self.subs:
                self._send(("userEvents", user), dumps("user", {"fills": items}))
        for coin, items in trades.items():
            if ("trades", coin) in self.subs:
                self._send(("trades", coin), dumps("trades", items))
        for user, items in updates.items():
            if ("orderUpdates", user) in self.subs:
                self._send(("orderUpdates", user), dumps("orderUpdates", items))

    def _market_push(self) -> None:
        e = self.engine
        dirty_coins = {e.insts[a].coin for a in e.dirty_books}
        e.dirty_books.clear()
        for key in list(self.subs):
            kind = key[0]
            if (kind in ("l2Book", "bbo") and key[1] in dirty_coins) or kind in ("allMids", "activeAssetCtx"):
                text = self._market_message(key)
                if text is not None:
                    self._send(key, text)
            elif kind == "candle" and key[1] in e.candles.dirty:
                candle = e.candles.latest(key[1], key[2])
                if candle is not None:
                    self._send(key, dumps("candle", candle))
        e.candles.dirty.clear()

    def _market_message(self, key: SubKey, snapshot: bool = False) -> str | None:
        """The current message of a market channel; bbo pushes are deduplicated (only on change), but
        a ``snapshot`` for a new subscriber is always sent and leaves the dedupe state alone."""
        e, kind = self.engine, key[0]
        if kind == "allMids":
            mids = self.info.all_mids({"dex": key[1]})
            return dumps("allMids", {"mids": mids, **({"dex": key[1]} if key[1] else {})})
        inst = e.universe.by_coin[key[-1] if kind == "activeAssetData" else key[1]]
        if kind == "l2Book":
            return dumps("l2Book", self.info.book_wire(inst))
        if kind == "bbo":
            book = self.info.book_wire(inst)
            levels = book["levels"]
            bbo = [levels[0][0] if levels[0] else None, levels[1][0] if levels[1] else None]
            if not snapshot:
                if self.last_bbo.get(inst.coin) == bbo:
                    return None
                self.last_bbo[inst.coin] = bbo
            return dumps("bbo", {"coin": inst.coin, "time": book["time"], "bbo": bbo})
        if kind == "activeAssetCtx":
            ctx = self.info._asset_ctx(inst)
            channel = "activeSpotAssetCtx" if inst.is_spot else "activeAssetCtx"
            return dumps(channel, {"coin": inst.coin, "ctx": ctx})
        if kind == "activeAssetData":
            return dumps(kind, self.info.active_asset_data({"user": key[1], "coin": inst.coin}))
        return None
