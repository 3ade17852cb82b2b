"""``PaperEngine``: the embedded exchange's clearinghouse for a simulated account, matched against a
market outside it (the real venue's books and prints) by the fill models of ``models``.

Everything but the matching is the exchange engine's own code: order validation (tick grid, the $10
minimum, reduce-only, post-only, margin, the price band), fees (taker 0.045 %, maker 0.015 %, twice that
on HIP-3 dexes), positions, entry prices, realized PnL and margin (``accounts.Account``), TP/SL triggers on
the mark, cancel / modify / scheduled cancel, order history and ``orderStatus``, liquidation. What changes:

* an order meets the outside book (``set_book``) instead of the engine's own: a taker walks its levels;
  what rests goes into the engine's book, which holds only our orders and is never matched against;
* a resting order fills when an outside print reaches it (``on_print``), behind the queue it joined;
* post-only and modify-IOC checks look at the outside book; the mark and the mid are the outside mid.

The engine's prints, candles and day statistics are not produced: the tape is the real venue's.
"""

from __future__ import annotations

from collections.abc import Callable

from hyperfollow.adapters.paper.models import (
    Level,
    Resting,
    consume,
    crosses,
    level_size,
    maker_fills,
    walk,
)
from hyperfollow.domain.rules import Instrument
from hyperfollow.exchange.accounts import Fill, ntl_div
from hyperfollow.exchange.book import Order, OrderBook
from hyperfollow.exchange.clock import SimClock
from hyperfollow.exchange.engine import IOC_TIFS, Engine, OrderSpec, Rejection, Status, trade_id
from hyperfollow.exchange.universe import Universe


class VenueClock(SimClock):
    """The engine's clock read from a callable (the venue's time as the process sees it)."""

    def __init__(self, now_ms: Callable[[], int]) -> None:
        super().__init__(start_ms=now_ms(), stepped=True)
        self._now = now_ms
        self._last = 0

    def now_ms(self) -> int:
        self._last = max(self._last, self._now())  # never backwards, as the venue's block time
        return self._last

    def advance(self, ms: int) -> int:
        raise RuntimeError("the paper engine's clock follows the venue; it cannot be advanced")


class PaperEngine(Engine):
    """The exchange engine with an outside market (see the module docstring)."""

    def __init__(self, universe: Universe, now_ms: Callable[[], int], *, seed: int = 0) -> None:
        super().__init__(universe, VenueClock(now_ms), seed=seed)
        self.outbox = []
        self.outside: dict[int, tuple[list[Level], list[Level]]] = {}  # asset -> (bids, asks), best first
        self.outside_mid: dict[int, int] = {}
        self.queue: dict[int, int] = {}  # resting oid -> lots ahead of it at its price
        self.new_fills: list[Fill] = []  # booked since the owner last took them (persistence)
        self.new_orders: list[Order] = []  # finished since the owner last took them
        self._checking = -1

    # ------------------------------------------------------------------ the outside market

    def set_book(self, asset: int, bids: list[Level], asks: list[Level]) -> None:
        """A new snapshot of the outside book (queues of resting orders are not touched: only prints
        consume them, see ``models``)."""
        self.outside[asset] = (bids, asks)

    def set_mid(self, asset: int, mid: int) -> None:
        """The outside mid becomes oracle and mark (margin, PnL, price band, TP/SL triggers fire)."""
        self.outside_mid[asset] = mid
        self.set_prices(asset, mid, mid)

    def on_print(self, asset: int, taker_is_buy: bool, px: int, sz: int) -> int:
        """An outside print: our resting orders it reaches fill as makers at their own price.
        Returns the lots filled."""
        inst = self.insts[asset]
        book = self.books[asset]
        side = book.asks if taker_is_buy else book.bids
        orders = {o.oid: o for level in side.values() for o in level.values()}
        if not orders:
            return 0
        resting = [Resting(o.oid, o.is_buy, o.px, o.sz, self.queue.get(o.oid, 0)) for o in orders.values()]
        fills, queues = maker_fills(resting, taker_is_buy, px, sz)
        self.queue.update(queues)
        filled = 0
        for oid, qty in fills:
            order = orders[oid]
            if order.reduce_only:
                qty = min(qty, self._reducible(order))
                if qty == 0:
                    self._cancel(order, "reduceOnlyCanceled")
                    continue
            self._book_fill(inst, order, order.px, qty, crossed=False)
            filled += qty
            if order.sz == 0:
                self._close_maker(inst, book, order)
        return filled

    def best(self, asset: int, bid: bool) -> int | None:
        bids, asks = self.outside.get(asset, ([], []))
        levels = bids if bid else asks
        return levels[0].px if levels else None

    # ------------------------------------------------------------------ matching (overrides)

    def _execute(self, inst: Instrument, order: Order) -> Status:
        acct = self.accounts[order.user]
        if order.reduce_only and not inst.is_spot:
            order.sz = min(order.sz, self._reducible(order))
        if order.sz == 0:
            return self._reject_reduce_only(inst, order)
        self._take(inst, order)
        if order.sz == 0:
            return self._finish_filled(inst, order)
        if order.tif in IOC_TIFS:
            return self._finish_ioc(inst, order)
        bids, asks = self.outside.get(order.asset, ([], []))
        self.queue[order.oid] = level_size(bids if order.is_buy else asks, order.px)
        return self._rest(inst, self.books[order.asset], acct, order)

    def _take(self, inst: Instrument, order: Order) -> None:
        """Walk the outside book's opposite side up to the order's limit."""
        bids, asks = self.outside.get(order.asset, ([], []))
        levels = asks if order.is_buy else bids
        fills = walk(levels, order.is_buy, order.px, order.sz)
        consume(levels, fills)
        for px, qty in fills:
            if order.reduce_only:  # the position may have run out on the way
                qty = min(qty, self._reducible(order))
                if qty == 0:
                    break
            self._book_fill(inst, order, px, qty, crossed=True)

    def _book_fill(self, inst: Instrument, order: Order, px: int, qty: int, *, crossed: bool) -> None:
        """Our side of a trade with the outside market (``Engine._trade`` for one order)."""
        tid = 0
        while tid == 0:  # one counter value maps to 0, which is no trade id
            self.next_tid += 1
            tid = trade_id(self.tid_keys, self.next_tid)
        ntl = px * qty // ntl_div(inst)
        order.sz -= qty
        order.filled_sz += qty
        order.filled_ntl += px * qty
        if order.margin:
            reserved = order.margin * order.sz // (order.sz + qty)
            self.accounts[order.user].order_margin -= order.margin - reserved
            order.margin = reserved
        self._fill_account(inst, order, px, qty, ntl, crossed, tid, self.now())
        if order.children:
            self._activate_children(order)

    def _fill_account(
        self, inst: Instrument, order: Order, px: int, qty: int, ntl: int, crossed: bool, tid: int, now: int
    ) -> None:
        super()._fill_account(inst, order, px, qty, ntl, crossed, tid, now)
        acct = self.accounts[order.user]
        if acct.fills:
            self.new_fills.append(acct.fills[-1])

    def _record(self, order: Order) -> None:
        super()._record(order)
        self.new_orders.append(order)

    def _release(self, order: Order) -> None:
        super()._release(order)
        self.queue.pop(order.oid, None)

    def _validate(
        self, user: str, inst: Instrument, spec: OrderSpec, replacing: Order | None = None
    ) -> Rejection | None:
        self._checking = spec.asset  # the asset ``_crosses`` is asked about
        return super()._validate(user, inst, spec, replacing)

    def _crosses(self, book: OrderBook, is_buy: bool, px: int, ignore: Order | None) -> bool:
        """Post-only: would the order meet the outside book?"""
        return crosses(is_buy, px, self.best(self._checking, bid=not is_buy))

    def _would_match(self, user: str, inst: Instrument, spec: OrderSpec) -> bool:
        return crosses(spec.is_buy, spec.px, self.best(inst.asset, bid=not spec.is_buy))

    def mid(self, asset: int) -> int | None:
        return self.outside_mid.get(asset, self.marks.get(asset))
