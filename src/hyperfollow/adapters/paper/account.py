"""The simulated account: the paper engine, its persistence, its streams, and ``ports.AccountState``.

``PaperSession`` is what the roles share: the engine holding the one account, the ``/info`` handler over
it (``exchange.info.InfoApi``: the account is read with the same requests and parsers as a real one), the
fill and order streams fed from the engine's outbox, and ``persist`` (state and new records to the
``PaperLedger``). A gateway call persists before it returns, as a venue answers only once it has
booked an order; maker fills from the outside tape are persisted as they happen.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

import structlog

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.paper.engine import PaperEngine
from hyperfollow.adapters.paper.snapshot import Doc, fill_doc, order_doc, restore, state_doc
from hyperfollow.adapters.sim.feed import Feed
from hyperfollow.domain.errors import UnknownInstrument, VenueRejected
from hyperfollow.domain.model import AccountSnapshot, Fill, OrderState, Position, RateLimitStatus
from hyperfollow.domain.rules import Instrument
from hyperfollow.exchange.info import MAX_FILLS, BadRequest, InfoApi

log = structlog.get_logger(__name__)


class SavedAccount(Protocol):
    """A paper account as the store returns it."""

    @property
    def state(self) -> Doc: ...

    @property
    def fills(self) -> Sequence[list[Any]]:
        """Fill records, oldest first."""
        ...

    @property
    def orders(self) -> Sequence[Doc]:
        """Finished orders, oldest first."""
        ...


class PaperLedger(Protocol):
    """Where a paper account is kept (``store.paper.StorePaperLedger``; a dict in unit tests)."""

    async def load(self, address: str) -> SavedAccount | None: ...

    async def save(
        self, address: str, state: Doc, fills: Sequence[list[Any]], orders: Sequence[Doc], now_ms: int
    ) -> None:
        """Replace the state, append the fills, upsert the finished orders: one transaction."""
        ...


class PaperSession:
    """One simulated account on a ``PaperEngine``."""

    def __init__(self, engine: PaperEngine, address: str, ledger: PaperLedger) -> None:
        self.engine = engine
        self.address = address.lower()
        self.ledger = ledger
        self.info_api = InfoApi(engine)
        self.instruments = {i.coin: i for i in engine.universe.perps()}
        self._fill_feeds: list[Feed[Fill]] = []
        self._order_feeds: list[Feed[OrderState]] = []
        self._save_lock = asyncio.Lock()
        self.closed = False

    async def open(self, start_usd_micro: int) -> bool:
        """Load the account from the ledger, or create it with ``start_usd_micro``; True when resumed."""
        saved = await self.ledger.load(self.address)
        if saved is not None:
            restore(self.engine, saved.state, saved.fills, saved.orders)
            state = saved.state
            log.info(
                "paper.resumed", account=self.address, usdc=state["usdc"], positions=len(state["positions"]),
                open_orders=len(state["open_orders"]),
            )  # fmt: skip
        else:
            self.engine.deposit(self.address, start_usd_micro)
            log.info("paper.created", account=self.address, usdc=start_usd_micro)
        self.engine.new_fills.clear()
        self.engine.new_orders.clear()
        self.engine.outbox = []
        await self.persist(force=True)
        return saved is not None

    def now_ms(self) -> int:
        return self.engine.now()

    def instrument(self, coin: str) -> Instrument:
        inst = self.instruments.get(coin)
        if inst is None:
            spot = "/" in coin or coin.startswith("@")
            what = "spot is not traded by this adapter" if spot else "not a listed perp"
            raise UnknownInstrument(f"Invalid asset: {coin} ({what}).")
        return inst

    def info(self, request: Mapping[str, Any]) -> Any:
        try:
            return self.info_api.handle(dict(request))
        except BadRequest as exc:
            raise VenueRejected(str(exc)) from None

    # ------------------------------------------------------------------ events and persistence

    def publish(self) -> bool:
        """Hand the engine's new fills and order updates to the streams; True if there were any."""
        engine = self.engine
        events, engine.outbox = engine.outbox or [], []
        engine.dirty_books.clear()
        for channel, key, record in events:
            if key != self.address:
                continue
            if channel == "userFills":
                fill = parse.fill(self.address, engine.fill_wire(record))
                self._fill_feeds = [f for f in self._fill_feeds if not f.closed]
                for fill_feed in self._fill_feeds:
                    fill_feed.push(fill)
            elif channel == "orderUpdates":
                state = parse.order_update(engine.order_update_wire(record))
                self._order_feeds = [f for f in self._order_feeds if not f.closed]
                for order_feed in self._order_feeds:
                    order_feed.push(state)
        return bool(events)

    async def persist(self, *, force: bool = False) -> None:
        """Save the state and the records booked since the last save (nothing to do: nothing written)."""
        async with self._save_lock:
            engine = self.engine
            fills, orders = engine.new_fills, engine.new_orders
            if not (force or fills or orders):
                return
            engine.new_fills, engine.new_orders = [], []
            await self.ledger.save(
                self.address,
                state_doc(engine, self.address),
                [fill_doc(f) for f in fills],
                [order_doc(o) for o in orders],
                self.now_ms(),
            )

    def fill_feed(self, since_ms: int | None) -> Feed[Fill]:
        feed: Feed[Fill] = Feed()
        if since_ms is not None:
            feed.extend(self.fills_since(since_ms))
        if self.closed:
            feed.close()
        else:
            self._fill_feeds.append(feed)
        return feed

    def order_feed(self) -> Feed[OrderState]:
        feed: Feed[OrderState] = Feed()
        if self.closed:
            feed.close()
        else:
            self._order_feeds.append(feed)
        return feed

    def close(self) -> None:
        self.closed = True
        for fill_feed in self._fill_feeds:
            fill_feed.close()
        for order_feed in self._order_feeds:
            order_feed.close()
        self._fill_feeds, self._order_feeds = [], []

    # ------------------------------------------------------------------ reads

    def dexes(self) -> list[str]:
        return self.engine.universe.dex_names()

    def snapshot(self) -> AccountSnapshot:
        now = self.now_ms()
        parts = [
            parse.account_snapshot(
                self.address, self.info({"type": "clearinghouseState", "user": self.address, "dex": d}), now
            )
            for d in self.dexes()
        ]
        return parse.merge_snapshots(parts)

    def fills_since(self, start_ms: int) -> list[Fill]:
        """``userFillsByTime`` from ``start_ms``, paged, oldest first."""
        out: dict[tuple[object, ...], Fill] = {}
        start = start_ms
        while True:
            raw = self.info({"type": "userFillsByTime", "user": self.address, "startTime": start})
            page = parse.fills(self.address, raw)
            for fill in page:
                out.setdefault(fill.key, fill)
            if len(raw) < MAX_FILLS or not page:
                break
            start = max(page[-1].time_ms, start + 1)
        return parse.in_position_order(out.values())


class PaperAccountState:
    """``ports.AccountState`` of the simulated account."""

    def __init__(self, session: PaperSession) -> None:
        self._s = session

    @property
    def address(self) -> str:
        return self._s.address

    async def snapshot(self) -> AccountSnapshot:
        return self._s.snapshot()

    async def positions(self) -> list[Position]:
        return list(self._s.snapshot().positions)

    async def open_orders(self) -> list[OrderState]:
        """``frontendOpenOrders`` of every dex (triggers included), oldest first."""
        s = self._s
        out: list[OrderState] = []
        for dex in s.dexes():
            raw = s.info({"type": "frontendOpenOrders", "user": s.address, "dex": dex})
            out.extend(parse.order_state(o) for o in raw)
        return sorted(out, key=lambda o: (o.timestamp_ms, o.oid))

    async def equity(self) -> Decimal:
        return self._s.snapshot().equity

    async def fills_since(self, start_ms: int) -> list[Fill]:
        return self._s.fills_since(start_ms)

    async def rate_limit(self) -> RateLimitStatus:
        """A paper account spends no venue budget; the figures are the engine's bookkeeping."""
        return parse.rate_limit(self._s.info({"type": "userRateLimit", "user": self._s.address}))

    def stream_fills(self, since_ms: int | None = None) -> AsyncIterator[Fill]:
        return self._s.fill_feed(since_ms)

    def stream_orders(self) -> AsyncIterator[OrderState]:
        return self._s.order_feed()
