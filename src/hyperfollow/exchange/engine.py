"""The matching engine and clearinghouse of the embedded exchange.

Integer ticks and lots throughout (see ``book`` and ``accounts``). Every public method that trades
returns the venue's per-order status object (``{"resting": ...}``, ``{"filled": ...}``,
``{"error": ...}``) so the wire layer only has to wrap it. Events for WebSocket subscribers are
appended to ``outbox`` (when it is a list) as ``(channel, key, payload)`` tuples and drained by the
server after each request or market step.

Fills and trades are kept as compact integer records (``Fill``, ``Trade``) and turned into the venue's
JSON only when someone reads them (``fill_wire``, ``trade_wire``): formatting decimals is the costliest
part of a trade, and most fills are never read.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from hyperfollow.domain.rules import Instrument, scaled_to_wire, ticks_are_valid
from hyperfollow.exchange.accounts import Account, Fill, Position, ntl_div
from hyperfollow.exchange.book import Order, OrderBook, Trigger
from hyperfollow.exchange.candles import CandleStore
from hyperfollow.exchange.clock import SimClock
from hyperfollow.exchange.market import valid_ticks_ceil, valid_ticks_floor
from hyperfollow.exchange.universe import Universe

Status = dict[str, Any] | str
Event = tuple[str, str, Any]

TAKER_FEE = 450  # per million of notional: 0.045 %
MAKER_FEE = 150  # 0.015 %
SPOT_TAKER_FEE, SPOT_MAKER_FEE = 700, 400
MIN_ORDER_MICRO = 10 * 1_000_000
MARKET_TRIGGER_SLIPPAGE = 0.10  # market TP/SL orders execute as IOC within 10 % of the mark
PRICE_BAND = 0.80  # "Order price cannot be more than 80% away from the reference price"
IOC_TIFS = ("Ioc", "FrontendMarket", "LiquidationMarket")
TID_BITS = 50  # the venue's trade ids are 50-bit hashes: uniform in [0, 2**50), ~1e14..1e15
_TID_MASK = (1 << TID_BITS) - 1


class EngineError(Exception):
    """A whole-action rejection; its text is the venue's."""


@dataclass(slots=True)
class OrderSpec:
    """One order as the engine takes it: integers on the instrument's grid."""

    asset: int
    is_buy: bool
    px: int
    sz: int
    reduce_only: bool = False
    tif: str = "Gtc"
    cloid: str | None = None
    trigger: Trigger | None = None


class Rejection(NamedTuple):
    """Why an order was refused: the venue's text, and the status ``orderStatus`` then reports
    (None: the venue keeps no record of it)."""

    text: str
    status: str | None


class Trade(NamedTuple):
    """One print on the tape (``Engine.trade_wire`` formats)."""

    asset: int
    taker_is_buy: bool
    px: int
    sz: int
    time: int
    tid: int
    buyer: str
    seller: str
    seq: int = 0  # the engine's trade counter: prints in execution order (trade ids are not)


class OrderUpdate(NamedTuple):
    """An order's state when it changed (its size then, since ``Order.sz`` moves on)."""

    order: Order
    sz: int
    status: str
    status_ts: int


def event_hash(*parts: object) -> str:
    """A stable 32-byte hex id for a venue event (transaction hashes of fills, deposits, ...)."""
    return "0x" + hashlib.blake2b(repr(parts).encode(), digest_size=32).hexdigest()


@lru_cache(maxsize=4096)
def tx_hash(tid: int, asset: int) -> str:
    """The hash shared by both fills of a trade and its print."""
    return event_hash("tx", tid, asset)


def fee_for(ntl_micro: int, rate: int) -> int:
    return (ntl_micro * rate + 500_000) // 1_000_000


def tid_keys(seed: int) -> tuple[tuple[int, int], ...]:
    """Round keys (addend, odd multiplier) of ``trade_id`` for one seed."""
    digest = hashlib.blake2b(f"hyperfollow-tid:{seed}".encode(), digest_size=48).digest()
    words = [int.from_bytes(digest[i : i + 8], "big") & _TID_MASK for i in range(0, 48, 8)]
    return tuple((words[i], words[i + 1] | 1) for i in range(0, 6, 2))


def trade_id(keys: tuple[tuple[int, int], ...], n: int) -> int:
    """The ``n``-th trade id: a keyed bijection of the counter on 50 bits.

    Like the venue's (a hash of the two order ids), the ids look random: large, and not increasing
    in execution order, even within one order's fills. Being a bijection, distinct counters never
    collide. Every round (add a key, xor-shift, multiply by an odd key) is invertible mod 2**50.
    """
    x = n & _TID_MASK
    for add, mul in keys:
        x = (x + add) & _TID_MASK
        x ^= x >> 23
        x = (x * mul) & _TID_MASK
        x ^= x >> 29
    return x


class Engine:
    """Order books, accounts, margin, triggers, funding and liquidation for every listed market."""

    def __init__(
        self, universe: Universe | None = None, clock: SimClock | None = None, *, seed: int = 0
    ) -> None:
        self.universe = universe or Universe()
        self.clock = clock or SimClock(stepped=True)
        self.insts = self.universe.by_asset
        self.books: dict[int, OrderBook] = {a: OrderBook() for a in self.insts}
        self.marks: dict[int, int] = {}  # asset -> mark price, ticks (only trading markets)
        self.oracles: dict[int, int] = {}
        self.accounts: dict[str, Account] = {}
        self.triggers: dict[int, dict[int, Order]] = {a: {} for a in self.insts}
        self.live: dict[int, Order] = {}  # oid -> open order (resting or waiting for trigger)
        self.candles = CandleStore()
        self.trades: dict[int, deque[Trade]] = {a: deque(maxlen=200) for a in self.insts}
        self.funding_history: dict[int, deque[dict[str, Any]]] = {a: deque(maxlen=5000) for a in self.insts}
        self.day_stats: dict[int, list[int]] = {}  # asset -> [notional micro, base lots]
        self.prev_day_px: dict[int, int] = {}
        self.outbox: list[Event] | None = None
        self.dirty_books: set[int] = set()
        self.next_oid = 1_000_000
        self.next_tid = 1  # a counter; the tid on the wire is ``trade_id(tid_keys, counter)``
        self.tid_keys = tid_keys(seed)
        # Every finished order of the accounts that keep history, for orderStatus (which, unlike
        # historicalOrders, does not forget): oid -> order, and (user, cloid) -> its latest oid.
        self.order_log: dict[int, Order] = {}
        self.cloid_log: dict[tuple[str, str], int] = {}
        self.next_funding_ms = (self.clock.now_ms() // 3_600_000 + 1) * 3_600_000

    # ================================================================ helpers

    def now(self) -> int:
        return self.clock.now_ms()

    def account(self, user: str) -> Account:
        acct = self.accounts.get(user)
        if acct is None:
            acct = self.accounts[user] = Account(user)
        return acct

    def is_known(self, user: str) -> bool:
        acct = self.accounts.get(user)
        return acct is not None and (
            acct.usdc > 0 or bool(acct.positions) or acct.cum_volume > 0 or any(acct.spot.values())
        )

    def emit(self, channel: str, key: str, payload: Any) -> None:
        if self.outbox is not None:
            self.outbox.append((channel, key, payload))

    def px_wire(self, inst: Instrument, ticks: int) -> str:
        return scaled_to_wire(ticks, inst.px_decimals)

    def sz_wire(self, inst: Instrument, lots: int) -> str:
        return scaled_to_wire(lots, inst.sz_decimals)

    def is_trading(self, asset: int) -> bool:
        return asset in self.marks

    # ================================================================ funds and prices

    def deposit(self, user: str, usd_micro: int) -> None:
        """Credit USDC to a user's perp balance (the operator's `/sim/fund`)."""
        acct = self.account(user)
        acct.usdc += usd_micro
        acct.spot["USDC"] = acct.spot.get("USDC", 0)
        acct.ledger.append(
            {
                "time": self.now(),
                "hash": self._hash("dep", self.now(), user),
                "delta": {"type": "deposit", "usdc": scaled_to_wire(usd_micro, 6)},
            }
        )

    def set_prices(self, asset: int, oracle: int, mark: int | None = None) -> None:
        """Move the oracle (and mark) price of a market, then fire any trigger it crosses."""
        self.oracles[asset] = oracle
        book = self.books[asset]
        bid, ask = book.best_bid(), book.best_ask()
        if mark is None:
            mark = sorted([oracle, bid, ask])[1] if bid is not None and ask is not None else oracle
        self.marks[asset] = mark
        self.prev_day_px.setdefault(asset, mark)
        if self.triggers[asset]:
            self._check_triggers(asset)

    def reset_reference(self, asset: int, px: int) -> None:
        """An operator's price shock: oracle and mark (the 80 % band's reference) jump to ``px`` before
        the book follows; triggers are checked at the next ``set_prices``, against the new book."""
        self.oracles[asset] = self.marks[asset] = px
        self.prev_day_px.setdefault(asset, px)

    def mid(self, asset: int) -> int | None:
        book = self.books[asset]
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None:
            return (bid + ask) // 2
        return self.marks.get(asset)

    # ================================================================ orders

    def place(self, user: str, spec: OrderSpec, group: str = "na") -> Status:
        """Validate and place one order; returns its venue status."""
        return self._place(user, spec, group)[0]

    def _place(self, user: str, spec: OrderSpec, group: str = "na") -> tuple[Status, Order | None]:
        """``place``, also returning the order (None when validation refused it)."""
        inst = self.insts.get(spec.asset)
        if inst is None:
            return {"error": "Invalid asset."}, None
        refused = self._validate(user, inst, spec)
        if refused is not None:
            self._record_rejection(user, spec, group, refused)
            return {"error": f"{refused.text} asset={spec.asset}"}, None
        order = self._new_order(user, spec, group)
        return self._submit(inst, order), order

    def _submit(self, inst: Instrument, order: Order) -> Status:
        """A validated order goes live: a trigger waits, a limit order matches and maybe rests."""
        if order.trigger is not None:
            return self._rest_trigger(order)
        return self._execute(inst, order)

    def _record_rejection(self, user: str, spec: OrderSpec, group: str, refused: Rejection) -> None:
        """The venue gives a refused order an oid and a final status that orderStatus reports."""
        acct = self.accounts.get(user)
        if refused.status is None or acct is None or not acct.keep_history:
            return
        order = self._new_order(user, spec, group)
        order.status = refused.status
        self._record(order)

    def place_batch(self, user: str, specs: list[OrderSpec], grouping: str = "na") -> list[Status]:
        """Place orders in sequence; with ``normalTpsl`` the first is the entry, the rest its TP/SL."""
        if grouping != "normalTpsl" or len(specs) < 2 or specs[0].trigger is not None:
            return [self.place(user, s, grouping if s.trigger is not None else "na") for s in specs]
        parent_status, parent = self._place(user, specs[0])
        out: list[Status] = [parent_status]
        for spec in specs[1:]:
            if parent is None or (isinstance(parent_status, dict) and "error" in parent_status):
                out.append({"error": "Parent order was rejected."})
                continue
            status, child = self._place(user, spec, "normalTpsl")
            if child is None:
                out.append(status)
                continue
            child.parent = parent  # also once the entry has filled: TP/SL cancel only their own sibling
            if parent.oid in self.live:
                parent.children = [*(parent.children or []), child]
                out.append("waitingForFill")
            else:
                out.append("waitingForTrigger")
        return out

    def _new_order(self, user: str, spec: OrderSpec, group: str) -> Order:
        self.next_oid += 1
        now = self.now()
        return Order(
            self.next_oid,
            user,
            spec.asset,
            spec.is_buy,
            spec.px,
            spec.sz,
            spec.sz,
            spec.tif,
            spec.reduce_only,
            spec.cloid,
            now,
            spec.trigger,
            "open",
            now,
            0,
            group,
        )

    def _validate(
        self, user: str, inst: Instrument, spec: OrderSpec, replacing: Order | None = None
    ) -> Rejection | None:
        """Every check a new order must pass, without changing anything.

        ``replacing``: the order a modify would cancel first; its margin counts as free, its cloid as
        not taken, and it is not in the book a post-only order could cross.
        """
        if inst.is_delisted or spec.asset not in self.marks:
            return Rejection("Trading is halted.", None)
        if spec.sz <= 0:
            return Rejection("Order has zero size.", None)
        if not ticks_are_valid(spec.px, inst.px_decimals):
            return Rejection("Price must be divisible by tick size.", "tickRejected")
        if spec.trigger is not None and not ticks_are_valid(spec.trigger.px, inst.px_decimals):
            return Rejection("Invalid TP/SL price.", "badTriggerPxRejected")
        mark = self.marks[spec.asset]
        if abs(spec.px - mark) > PRICE_BAND * mark:
            return Rejection(
                "Order price cannot be more than 80% away from the reference price", "oracleRejected"
            )
        acct = self.accounts.get(user)
        if acct is None or not self.is_known(user):
            return Rejection("Insufficient margin to place order.", None)
        if spec.cloid is not None and any(
            o.cloid == spec.cloid and o is not replacing for o in acct.open_orders.values()
        ):
            return Rejection("Duplicate cloid.", None)
        if spec.reduce_only and spec.trigger is None and not inst.is_spot:
            pos = acct.positions.get(spec.asset)
            szi = pos.szi if pos else 0
            if szi == 0 or (szi > 0) == spec.is_buy:
                return Rejection("Reduce only order would increase position.", "reduceOnlyRejected")
        if not spec.reduce_only and spec.px * spec.sz // ntl_div(inst) < MIN_ORDER_MICRO:
            text = (
                "Order must have minimum value of 10 USDC."
                if inst.is_spot
                else "Order must have minimum value of $10."
            )
            return Rejection(text, "minTradeNtlRejected")
        if spec.tif == "Alo" and spec.trigger is None:
            book = self.books[spec.asset]
            if self._crosses(book, spec.is_buy, spec.px, replacing):
                bbo = f"{self._bbo_text(inst, book.best_bid())}@{self._bbo_text(inst, book.best_ask())}"
                return Rejection(
                    f"Post only order would have immediately matched, bbo was {bbo}.", "badAloPxRejected"
                )
        if inst.is_spot:
            return self._check_spot_balance(acct, inst, spec)
        if spec.trigger is None and not spec.reduce_only:
            need = self._increase_margin(acct, inst, spec.is_buy, spec.px, spec.sz)
            freed = replacing.margin if replacing is not None else 0
            if need > 0 and need > self._available(acct) + freed:
                return Rejection("Insufficient margin to place order.", "perpMarginRejected")
        return None

    def _crosses(self, book: OrderBook, is_buy: bool, px: int, ignore: Order | None) -> bool:
        """``book.crosses``, as if ``ignore`` were not resting."""
        if not book.crosses(is_buy, px):
            return False
        if ignore is None or ignore.is_buy == is_buy or ignore.oid not in self.live:
            return True
        return any(maker is not ignore for maker in self._crossing(book, is_buy, px))

    def _crossing(self, book: OrderBook, is_buy: bool, px: int) -> Iterator[Order]:
        """Resting orders a taker at ``px`` would meet, best first (nothing is consumed)."""
        levels, prices = (book.asks, book.ask_px) if is_buy else (book.bids, book.bid_px)
        for level_px in prices if is_buy else reversed(prices):
            if (level_px > px) if is_buy else (level_px < px):
                return
            yield from levels[level_px].values()

    def _would_match(self, user: str, inst: Instrument, spec: OrderSpec) -> bool:
        """Would an immediate-or-cancel order trade at all? (Own orders and reduce-only orders with
        nothing left to reduce are cancelled, not traded with.)"""
        for maker in self._crossing(self.books[spec.asset], spec.is_buy, spec.px):
            if maker.user != user and (inst.is_spot or not maker.reduce_only or self._reducible(maker)):
                return True
        return False

    def _bbo_text(self, inst: Instrument, px: int | None) -> str:
        return "None" if px is None else self.px_wire(inst, px)

    def _available(self, acct: Account) -> int:
        return acct.available(self.marks, self.insts)

    def _increase_margin(self, acct: Account, inst: Instrument, is_buy: bool, px: int, sz: int) -> int:
        """Initial margin the part of this order that increases |position| would need (micro-USD)."""
        pos = acct.positions.get(inst.asset)
        szi = pos.szi if pos else 0
        increase = sz if szi == 0 or (szi > 0) == is_buy else max(0, sz - abs(szi))
        if increase == 0:
            return 0
        _, lev = (pos.is_cross, pos.leverage) if pos and pos.szi else acct.lev_for(inst)
        return -(-px * increase // lev)

    def _check_spot_balance(self, acct: Account, inst: Instrument, spec: OrderSpec) -> Rejection | None:
        base = inst.coin.split("/")[0]
        if spec.is_buy:
            need = spec.px * spec.sz  # 1e-8 USDC
            have = acct.spot.get("USDC", 0) + acct.usdc * 100
        else:
            need = spec.sz * 10 ** (8 - inst.sz_decimals)
            have = acct.spot.get(base, 0)
        return (
            None
            if need <= have
            else Rejection("Insufficient spot balance", "insufficientSpotBalanceRejected")
        )

    # ---------------------------------------------------------------- execution

    def _execute(self, inst: Instrument, order: Order) -> Status:
        book = self.books[order.asset]
        acct = self.accounts[order.user]
        if order.reduce_only and not inst.is_spot:
            order.sz = min(order.sz, self._reducible(order))
        if order.sz == 0:  # a triggered reduce-only order whose position closed or flipped meanwhile
            return self._reject_reduce_only(inst, order)
        if book.crosses(order.is_buy, order.px):
            self._match(inst, book, order)
        if order.sz == 0:
            return self._finish_filled(inst, order)
        if order.tif in IOC_TIFS:
            return self._finish_ioc(inst, order)
        return self._rest(inst, book, acct, order)

    def _finish_filled(self, inst: Instrument, order: Order) -> Status:
        order.status, order.status_ts = "filled", self.now()
        self._order_update(inst, order)
        self._record(order)
        body: dict[str, Any] = {
            "totalSz": self.sz_wire(inst, order.filled_sz),
            "avgPx": self._avg_px_wire(inst, order),
            "oid": order.oid,
        }
        if order.cloid:
            body["cloid"] = order.cloid
        return {"filled": body}

    def _reject_reduce_only(self, inst: Instrument, order: Order) -> Status:
        order.status, order.status_ts = "reduceOnlyCanceled", self.now()
        self._order_update(inst, order)
        self._record(order)
        return {"error": f"Reduce only order would increase position. asset={order.asset}"}

    def _finish_ioc(self, inst: Instrument, order: Order) -> Status:
        if order.filled_sz:
            return self._finish_filled(inst, order)
        order.status, order.status_ts = "iocCancelRejected", self.now()
        self._record(order)
        return {"error": f"Order could not immediately match against any resting orders. asset={order.asset}"}

    def _rest(self, inst: Instrument, book: OrderBook, acct: Account, order: Order) -> Status:
        if not order.reduce_only and not inst.is_spot:
            order.margin = self._increase_margin(acct, inst, order.is_buy, order.px, order.sz)
            acct.order_margin += order.margin
        book.add(order)
        acct.open_orders[order.oid] = order
        self.live[order.oid] = order
        self.dirty_books.add(order.asset)
        self._order_update(inst, order)
        if order.filled_sz:
            self._activate_children(order)
        body: dict[str, Any] = {"oid": order.oid}
        if order.cloid:
            body["cloid"] = order.cloid
        return {"resting": body}

    def _rest_trigger(self, order: Order) -> Status:
        acct = self.accounts[order.user]
        self.triggers[order.asset][order.oid] = order
        acct.open_orders[order.oid] = order
        self.live[order.oid] = order
        self._order_update(self.insts[order.asset], order)
        body: dict[str, Any] = {"oid": order.oid}
        if order.cloid:
            body["cloid"] = order.cloid
        return {"resting": body}

    def _match(self, inst: Instrument, book: OrderBook, taker: Order) -> None:
        for maker in book.makers(taker.is_buy, taker.px):
            if taker.sz == 0:
                break
            if maker.user == taker.user:
                self._cancel(maker, "selfTradeCanceled")
                continue
            qty = min(taker.sz, maker.sz)
            if maker.reduce_only and not inst.is_spot:
                qty = min(qty, self._reducible(maker))
                if qty == 0:
                    self._cancel(maker, "reduceOnlyCanceled")
                    continue
            self._trade(inst, maker, taker, qty)
            if maker.sz == 0:
                self._close_maker(inst, book, maker)
            else:
                break

    def _reducible(self, order: Order) -> int:
        pos = self.accounts[order.user].positions.get(order.asset)
        if pos is None or pos.szi == 0 or (pos.szi > 0) == order.is_buy:
            return 0
        return abs(pos.szi)

    def _close_maker(self, inst: Instrument, book: OrderBook, maker: Order) -> None:
        book.remove(maker)
        self._release(maker)
        maker.status, maker.status_ts = "filled", self.now()
        self._order_update(inst, maker)
        self._record(maker)

    def _release(self, order: Order) -> None:
        acct = self.accounts[order.user]
        acct.open_orders.pop(order.oid, None)
        self.live.pop(order.oid, None)
        acct.order_margin -= order.margin
        order.margin = 0

    def _trade(self, inst: Instrument, maker: Order, taker: Order, qty: int) -> None:
        px, now = maker.px, self.now()
        tid = 0
        while tid == 0:  # one counter value maps to 0, which is no trade id
            self.next_tid += 1
            tid = trade_id(self.tid_keys, self.next_tid)
        ntl = px * qty // ntl_div(inst)
        for order, crossed in ((maker, False), (taker, True)):
            order.sz -= qty
            order.filled_sz += qty
            order.filled_ntl += px * qty
            if order.margin:
                reserved = order.margin * order.sz // (order.sz + qty)
                self.accounts[order.user].order_margin -= order.margin - reserved
                order.margin = reserved
            self._fill_account(inst, order, px, qty, ntl, crossed, tid, now)
        buyer, seller = (maker, taker) if maker.is_buy else (taker, maker)
        trade = Trade(inst.asset, taker.is_buy, px, qty, now, tid, buyer.user, seller.user, self.next_tid)
        self.trades[inst.asset].append(trade)
        if self.outbox is not None:
            self.outbox.append(("trades", inst.coin, trade))
        stats = self.day_stats.setdefault(inst.asset, [0, 0])
        stats[0] += ntl
        stats[1] += qty
        self.candles.add_trade(inst.coin, now, px, qty, inst)
        self.dirty_books.add(inst.asset)
        for order in (maker, taker):
            if order.children:
                self._activate_children(order)

    def _fill_account(
        self, inst: Instrument, order: Order, px: int, qty: int, ntl: int, crossed: bool, tid: int, now: int
    ) -> None:
        acct = self.accounts[order.user]
        if inst.is_spot:
            rate = SPOT_TAKER_FEE if crossed else SPOT_MAKER_FEE
            fee = fee_for(ntl, rate)
            self._spot_fill(acct, inst, order.is_buy, px, qty, fee)
            start, direction, closed = 0, "Buy" if order.is_buy else "Sell", 0
        else:
            rate = TAKER_FEE if crossed else MAKER_FEE
            fee = fee_for(ntl, rate * (2 if inst.dex else 1))
            effect = acct.apply_fill(inst, order.is_buy, px, qty, fee)
            start, direction, closed, _ = effect
            if acct.positions[inst.asset].szi == 0:
                self._on_flat(acct, inst)
        if not acct.keep_history and self.outbox is None:
            return
        liq_mark = self.marks[inst.asset] if order.tif == "LiquidationMarket" else None
        fill = Fill(
            order.user, inst.asset, order.is_buy, px, qty, now, start, direction, closed,
            order.oid, crossed, fee, tid, order.cloid, liq_mark,
        )  # fmt: skip
        if acct.keep_history:
            acct.fills.append(fill)
        if self.outbox is not None:
            self.outbox.append(("userFills", order.user, fill))

    def fill_wire(self, fill: Fill) -> dict[str, Any]:
        """A fill as ``userFills`` / the WS channel carry it."""
        inst = self.insts[fill.asset]
        out: dict[str, Any] = {
            "coin": inst.coin,
            "px": scaled_to_wire(fill.px, inst.px_decimals),
            "sz": scaled_to_wire(fill.sz, inst.sz_decimals),
            "side": "B" if fill.is_buy else "A",
            "time": fill.time,
            "startPosition": scaled_to_wire(fill.start, inst.sz_decimals),
            "dir": fill.direction,
            "closedPnl": scaled_to_wire(fill.closed_pnl, 6),
            "hash": tx_hash(fill.tid, fill.asset),
            "oid": fill.oid,
            "crossed": fill.crossed,
            "fee": scaled_to_wire(fill.fee, 6),
            "tid": fill.tid,
            "feeToken": "USDC",
            "twapId": None,
        }
        if fill.cloid:
            out["cloid"] = fill.cloid
        if fill.liquidation_mark is not None:
            out["liquidation"] = {
                "liquidatedUser": fill.user,
                "markPx": scaled_to_wire(fill.liquidation_mark, inst.px_decimals),
                "method": "market",
            }
        return out

    def trade_wire(self, trade: Trade) -> dict[str, Any]:
        """A print as ``recentTrades`` / the ``trades`` channel carry it (with ``users: [buyer, seller]``)."""
        inst = self.insts[trade.asset]
        return {
            "coin": inst.coin,
            "side": "B" if trade.taker_is_buy else "A",
            "px": scaled_to_wire(trade.px, inst.px_decimals),
            "sz": scaled_to_wire(trade.sz, inst.sz_decimals),
            "time": trade.time,
            "hash": tx_hash(trade.tid, trade.asset),
            "tid": trade.tid,
            "users": [trade.buyer, trade.seller],
        }

    def _spot_fill(self, acct: Account, inst: Instrument, is_buy: bool, px: int, qty: int, fee: int) -> None:
        base = inst.coin.split("/")[0]
        quote_1e8 = px * qty
        base_1e8 = qty * 10 ** (8 - inst.sz_decimals)
        usdc = acct.spot.get("USDC", 0)
        if is_buy and usdc < quote_1e8:  # draw the shortfall from the perp balance
            take = -(-(quote_1e8 - usdc) // 100)
            acct.usdc -= take
            usdc += take * 100
        sign = 1 if is_buy else -1
        acct.spot["USDC"] = usdc - sign * quote_1e8 - fee * 100
        acct.spot[base] = acct.spot.get(base, 0) + sign * base_1e8
        acct.cum_volume += quote_1e8 // 100

    def _on_flat(self, acct: Account, inst: Instrument) -> None:
        """A position just went flat: reduce-only and position TP/SL orders on it are cancelled."""
        for order in list(acct.open_orders.values()):
            if order.asset == inst.asset and (
                order.is_position_tpsl or (order.reduce_only and order.trigger is None)
            ):
                self._cancel(order, "reduceOnlyCanceled")

    def _avg_px_wire(self, inst: Instrument, order: Order) -> str:
        """Volume-weighted fill price on the price grid's decimals (venue style "1891.4")."""
        scale = 10**inst.px_decimals
        num, den = order.filled_ntl * scale, order.filled_sz
        ticks_scaled = (2 * num + den) // (2 * den)  # rounded half up, in 10^-(2*px_decimals)
        return scaled_to_wire(ticks_scaled, 2 * inst.px_decimals)

    def _activate_children(self, parent: Order) -> None:
        """normalTpsl: once the entry has filled, its TP/SL children wait for their trigger."""
        for child in parent.children or []:
            if child.oid in self.live:
                child.sz = child.orig_sz = min(child.orig_sz, parent.filled_sz)
        parent.children = [c for c in parent.children or [] if c.oid in self.live] or None

    # ---------------------------------------------------------------- cancel / modify

    def cancel(self, user: str, asset: int, oid: int) -> Status:
        order = self.live.get(oid)
        if order is None or order.user != user or order.asset != asset:
            return {"error": f"Order was never placed, already canceled, or filled. asset={asset}"}
        self._cancel(order, "canceled")
        return "success"

    def cancel_by_cloid(self, user: str, asset: int, cloid: str) -> Status:
        acct = self.accounts.get(user)
        order = self._find_cloid(acct, cloid) if acct else None
        if order is None or order.asset != asset:
            return {"error": f"Order was never placed, already canceled, or filled. asset={asset}"}
        self._cancel(order, "canceled")
        return "success"

    def _find_cloid(self, acct: Account, cloid: str) -> Order | None:
        cloid = cloid.lower()
        for order in acct.open_orders.values():
            if order.cloid == cloid:
                return order
        return None

    def _cancel(self, order: Order, status: str) -> None:
        if order.trigger is not None and not order.triggered:
            self.triggers[order.asset].pop(order.oid, None)
        else:
            self.books[order.asset].remove(order)
            self.dirty_books.add(order.asset)
        self._release(order)
        order.status, order.status_ts = status, self.now()
        self._order_update(self.insts[order.asset], order)
        self._record(order)
        if order.children and not order.filled_sz:
            for child in order.children:
                if child.oid in self.live:
                    self._cancel(child, "canceled")

    def cancel_all(self, user: str, status: str = "canceled") -> int:
        acct = self.accounts.get(user)
        if acct is None:
            return 0
        orders = list(acct.open_orders.values())
        for order in orders:
            if order.oid in self.live:
                self._cancel(order, status)
        return len(orders)

    def modify(self, user: str, oid: int | str, spec: OrderSpec) -> Status:
        """Cancel-replace: the old order goes, a new one (new oid) takes the new parameters.

        The replacement is validated in full first, as if the old order were gone (its margin free,
        its cloid not taken). A refused modify changes nothing: the old order keeps resting as it was.
        An immediate-or-cancel replacement that could not trade is refused the same way.
        """
        acct = self.accounts.get(user)
        order = None
        if isinstance(oid, str):
            order = self._find_cloid(acct, oid) if acct else None
        else:
            order = self.live.get(oid)
        if order is None or order.user != user:
            return {"error": "Cannot modify canceled or filled order"}
        inst = self.insts.get(spec.asset)
        if inst is None:
            return {"error": "Invalid asset."}
        if spec.cloid is None and order.cloid:
            spec.cloid = order.cloid
        refused = self._validate(user, inst, spec, replacing=order)
        ioc = spec.trigger is None and spec.tif in IOC_TIFS
        if refused is None and ioc and not self._would_match(user, inst, spec):
            refused = Rejection("Order could not immediately match against any resting orders.", None)
        if refused is not None:
            return {"error": f"{refused.text} asset={spec.asset}"}
        self._cancel(order, "canceled")
        return self._submit(inst, self._new_order(user, spec, order.group))

    # ---------------------------------------------------------------- triggers

    def _check_triggers(self, asset: int) -> None:
        mark = self.marks[asset]
        fired = []
        for order in self.triggers[asset].values():
            trig = order.trigger
            assert trig is not None
            parent = order.parent
            if parent is not None and parent.oid in self.live and not parent.filled_sz:
                continue  # normalTpsl child: inactive until its entry order fills
            # TP of a long (sell) and SL of a short (buy) fire above; the other two fire below.
            above = (trig.tpsl == "tp") != order.is_buy
            if (mark >= trig.px) if above else (mark <= trig.px):
                fired.append(order)
        for order in fired:
            if order.oid in self.live:
                self._fire(order)

    def _fire(self, order: Order) -> None:
        inst = self.insts[order.asset]
        acct = self.accounts[order.user]
        self.triggers[order.asset].pop(order.oid, None)
        self._release(order)
        order.triggered = True
        order.status, order.status_ts = "triggered", self.now()
        self._order_update(inst, order)
        trig = order.trigger
        assert trig is not None
        if order.is_position_tpsl or order.reduce_only:
            pos = acct.positions.get(order.asset)
            order.sz = (
                abs(pos.szi) if pos and (order.is_position_tpsl or order.sz > abs(pos.szi)) else order.sz
            )
        if trig.is_market:
            mark = self.marks[order.asset]
            slip = (
                mark * (1 + MARKET_TRIGGER_SLIPPAGE) if order.is_buy else mark * (1 - MARKET_TRIGGER_SLIPPAGE)
            )
            order.px = self._round_px(inst, slip, up=order.is_buy)
            order.tif = "FrontendMarket"
        if not order.reduce_only and not inst.is_spot:  # margin is checked when the order goes live
            need = self._increase_margin(acct, inst, order.is_buy, order.px, order.sz)
            if need > 0 and need > self._available(acct):
                order.status, order.status_ts = "marginCanceled", self.now()
                self._order_update(inst, order)
                self._record(order)
                return
        self._cancel_siblings(order)
        result = self._execute(inst, order)
        if isinstance(result, dict) and "error" in result and order.status == "triggered":
            order.status = "canceled"
            self._record(order)

    def _cancel_siblings(self, order: Order) -> None:
        """TP and SL of the same group are one-cancels-the-other."""
        if order.group == "na":
            return
        acct = self.accounts[order.user]
        for other in list(acct.open_orders.values()):
            if (
                other.asset == order.asset
                and other.group == order.group
                and other.trigger is not None
                and not other.triggered
                and other.parent is order.parent
            ):
                self._cancel(other, "siblingFilledCanceled")

    def _round_px(self, inst: Instrument, px: float, up: bool) -> int:
        """Nearest valid price (5 significant figures, tick decimals) at or beyond ``px`` ticks."""
        if up:
            return valid_ticks_ceil(math.ceil(px), inst.px_decimals)
        return max(1, valid_ticks_floor(math.floor(px), inst.px_decimals))

    # ---------------------------------------------------------------- bookkeeping

    def _record(self, order: Order) -> None:
        """An order reached a final status: into the account's recent history and the order log."""
        acct = self.accounts.get(order.user)
        if acct is not None and acct.keep_history:
            acct.orders.append(order)
            self.order_log[order.oid] = order
            if order.cloid:
                self.cloid_log[(order.user, order.cloid)] = order.oid

    def find_order(self, user: str, key: int | str) -> Order | None:
        """The user's order by oid or cloid, open or finished (the latest one to carry a cloid)."""
        acct = self.accounts.get(user)
        if acct is None:
            return None
        if isinstance(key, str):
            order = self._find_cloid(acct, key)
            if order is not None:
                return order
            oid = self.cloid_log.get((user, key.lower()))
            if oid is None:
                return None
            key = oid
        order = acct.open_orders.get(key) or self.order_log.get(key)
        return order if order is not None and order.user == user else None

    def _order_update(self, inst: Instrument, order: Order) -> None:
        if self.outbox is not None:
            update = OrderUpdate(order, order.sz, order.status, order.status_ts)
            self.outbox.append(("orderUpdates", order.user, update))

    def order_update_wire(self, update: OrderUpdate) -> dict[str, Any]:
        """An ``orderUpdates`` item."""
        order = update.order
        wire = self.order_wire(self.insts[order.asset], order)
        wire["sz"] = self.sz_wire(self.insts[order.asset], update.sz)
        return {"order": wire, "status": update.status, "statusTimestamp": update.status_ts}

    def order_wire(self, inst: Instrument, order: Order) -> dict[str, Any]:
        """The basic order object of openOrders / orderUpdates."""
        out: dict[str, Any] = {
            "coin": inst.coin,
            "side": "B" if order.is_buy else "A",
            "limitPx": self.px_wire(inst, order.px),
            "sz": self.sz_wire(inst, order.sz),
            "oid": order.oid,
            "timestamp": order.timestamp,
            "origSz": self.sz_wire(inst, order.orig_sz),
        }
        if order.cloid:
            out["cloid"] = order.cloid
        if order.reduce_only:
            out["reduceOnly"] = True
        return out

    def _hash(self, *parts: object) -> str:
        return event_hash(*parts)

    def position(self, user: str, asset: int) -> Position | None:
        acct = self.accounts.get(user)
        return acct.positions.get(asset) if acct else None
