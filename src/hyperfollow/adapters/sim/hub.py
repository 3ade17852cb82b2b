"""One event hub per embedded exchange: it owns ``engine.outbox`` and fans its events out to every
``SimVenue`` on that exchange.

The engine appends ``(channel, key, record)`` to ``engine.outbox`` whenever an order changes, a fill
happens or a print hits the tape (``exchange/engine.py``). Over the wire, ``exchange/ws.py`` drains it
after each request and market step; in-process nobody does, so the hub takes that job. **The hub
owns the outbox**: an exchange driven by ``SimVenue`` must not also be served by ``ExchangeServer``
(both would drain the same list and each would see only part of the events).

A drain produces one ``Published`` view. It converts lazily, once per drain, and only what some
subscriber asks for: engine records become the venue's JSON (``Engine.fill_wire`` & co., or the
``l2Book`` / ``allMids`` info requests) and then domain types through the Hyperliquid parsers, so the
simulated streams carry exactly what the wire would.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.domain.model import Fill, L2Book, OrderState, Trade
from hyperfollow.exchange.embedded import EmbeddedExchange

Listener = Callable[["Published"], None]


class Published:
    """What one drain of the engine carried: fills, order updates and prints, plus the coins whose
    book changed. Domain values are built on first request and cached."""

    def __init__(self, exchange: EmbeddedExchange, events: list[tuple[str, str, Any]], dirty: set[str]):
        self.exchange = exchange
        self.time_ms = exchange.clock.now_ms()
        self.dirty_coins = frozenset(dirty)
        self._fills: dict[str, list[Any]] = {}
        self._orders: dict[str, list[Any]] = {}
        self._trades: dict[str, list[Any]] = {}
        for channel, key, record in events:
            if channel == "userFills":
                self._fills.setdefault(key, []).append(record)
            elif channel == "orderUpdates":
                self._orders.setdefault(key, []).append(record)
            elif channel == "trades":
                self._trades.setdefault(key, []).append(record)
            # "user" (funding, liquidation notices) has no domain stream yet
        self._cache: dict[tuple[str, str], Any] = {}

    @property
    def empty(self) -> bool:
        return not (self._fills or self._orders or self._trades or self.dirty_coins)

    def fills(self, user: str) -> list[Fill]:
        """``user``'s fills of this drain, in the order the engine made them."""
        key = ("fills", user)
        if key not in self._cache:
            engine = self.exchange.engine
            self._cache[key] = [parse.fill(user, engine.fill_wire(r)) for r in self._fills.get(user, ())]
        out: list[Fill] = self._cache[key]
        return out

    def orders(self, user: str) -> list[OrderState]:
        key = ("orders", user)
        if key not in self._cache:
            engine = self.exchange.engine
            self._cache[key] = [
                parse.order_update(engine.order_update_wire(r)) for r in self._orders.get(user, ())
            ]
        out: list[OrderState] = self._cache[key]
        return out

    def trades(self, coin: str) -> list[Trade]:
        key = ("trades", coin)
        if key not in self._cache:
            engine = self.exchange.engine
            self._cache[key] = [parse.trade(engine.trade_wire(r)) for r in self._trades.get(coin, ())]
        out: list[Trade] = self._cache[key]
        return out

    def book(self, coin: str) -> L2Book:
        """The book as ``l2Book`` answers now (call during the fan-out: it is the state after the drain)."""
        key = ("book", coin)
        if key not in self._cache:
            self._cache[key] = book_of(self.exchange, coin)
        out: L2Book = self._cache[key]
        return out

    def mids(self) -> dict[str, Decimal]:
        key = ("mids", "")
        if key not in self._cache:
            self._cache[key] = mids_of(self.exchange)
        out: dict[str, Decimal] = self._cache[key]
        return out


def book_of(exchange: EmbeddedExchange, coin: str) -> L2Book:
    raw = exchange.info({"type": "l2Book", "coin": coin})
    if raw is None:
        raise KeyError(coin)
    return parse.l2_book(raw)


def mids_of(exchange: EmbeddedExchange) -> dict[str, Decimal]:
    """``allMids`` of the main dex and of every HIP-3 dex, merged, perps only (the main dex's answer
    also carries spot mids, which the Hyperliquid adapter drops too)."""
    out: dict[str, Decimal] = {}
    for dex in exchange.engine.universe.dex_names():
        for coin, px in parse.mids(exchange.info({"type": "allMids", "dex": dex})).items():
            if "/" not in coin and not coin.startswith("@"):
                out[coin] = px
    return out


class SimHub:
    """The outbox drain of one exchange, shared by all ``SimVenue`` objects on it."""

    _hubs: ClassVar[weakref.WeakKeyDictionary[EmbeddedExchange, SimHub]] = weakref.WeakKeyDictionary()

    def __init__(self, exchange: EmbeddedExchange) -> None:
        self.exchange = exchange
        self._listeners: list[Listener] = []
        if exchange.engine.outbox is None:
            exchange.engine.outbox = []

    @classmethod
    def for_exchange(cls, exchange: EmbeddedExchange) -> SimHub:
        """The hub of ``exchange`` (created, and the engine's outbox switched on, on first use)."""
        hub = cls._hubs.get(exchange)
        if hub is None:
            hub = cls._hubs[exchange] = cls(exchange)
        return hub

    def attach(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def detach(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def publish(self) -> Published:
        """Drain what the engine emitted since the last drain and hand it to every listener."""
        engine = self.exchange.engine
        events, engine.outbox = engine.outbox or [], []
        dirty = {engine.insts[a].coin for a in engine.dirty_books}
        engine.dirty_books.clear()
        engine.candles.dirty.clear()  # nobody streams candles in-process; keep the set from growing
        published = Published(self.exchange, events, dirty)
        for listener in list(self._listeners):
            listener(published)
        return published
