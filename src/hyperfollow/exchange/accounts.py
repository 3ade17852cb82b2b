"""Accounts, positions and margin maths, all in integers.

Units: USDC in micro-USD (1e-6, the venue's own `usd` integer unit). A perp price in ticks times a
size in lots is exactly micro-USD (ticks are 10^-(6-szDecimals), lots 10^-szDecimals). Spot notionals
come out in 10^-8 and are divided by ``ntl_div`` = 100.

Margin (Hyperliquid docs): initial margin = position value / leverage; maintenance margin = position
value / (2 * maxLeverage). Cross positions share the account's USDC; an isolated position carries
its own margin, moved out of the cross balance when it grows and back when it shrinks.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from hyperfollow.domain.rules import Instrument
from hyperfollow.exchange.book import Order

MICRO = 1_000_000
HISTORY_LIMIT = 10_000  # the venue keeps the 10,000 most recent fills retrievable
ORDER_HISTORY_LIMIT = 2_000


def ntl_div(inst: Instrument) -> int:
    """Divide ticks*lots by this to get micro-USD."""
    divisor: int = 10 ** (inst.px_decimals + inst.sz_decimals - 6)
    return divisor


@dataclass(slots=True)
class Position:
    asset: int
    szi: int = 0  # signed lots
    entry_ntl: int = 0  # micro-USD cost of the open size (always >= 0)
    is_cross: bool = True
    leverage: int = 20
    margin: int = 0  # isolated only: micro-USD held by the position
    funding_all: int = 0  # cumulative funding, micro-USD, positive = paid
    funding_open: int = 0
    funding_change: int = 0

    def value(self, mark: int) -> int:
        return abs(self.szi) * mark

    def upnl(self, mark: int) -> int:
        signed_entry = self.entry_ntl if self.szi > 0 else -self.entry_ntl
        return self.szi * mark - signed_entry


class FillEffect(NamedTuple):
    """What one fill did to one account's position (a tuple: one is built per fill, on the hot path)."""

    start_szi: int
    direction: str
    closed_pnl: int  # micro-USD, before fees
    fee: int  # micro-USD, negative = rebate


class Fill(NamedTuple):
    """One side of a trade, as the account's history keeps it (integers; ``Engine.fill_wire`` formats)."""

    user: str
    asset: int
    is_buy: bool
    px: int  # ticks
    sz: int  # lots
    time: int  # ms
    start: int  # position before, lots
    direction: str
    closed_pnl: int  # micro-USD
    oid: int
    crossed: bool
    fee: int  # micro-USD
    tid: int
    cloid: str | None
    liquidation_mark: int | None  # ticks; set on the liquidated user's fill


@dataclass
class Account:
    user: str
    usdc: int = 0  # cross balance, micro-USD
    positions: dict[int, Position] = field(default_factory=dict)
    leverage: dict[int, tuple[bool, int]] = field(default_factory=dict)  # asset -> (is_cross, leverage)
    open_orders: dict[int, Order] = field(default_factory=dict)  # oid -> Order (resting and trigger)
    order_margin: int = 0  # micro-USD reserved by resting orders that would increase a position
    spot: dict[str, int] = field(default_factory=dict)  # token -> balance in 1e-8 units
    fills: deque[Fill] = field(default_factory=lambda: deque(maxlen=HISTORY_LIMIT))
    orders: deque[Order] = field(default_factory=lambda: deque(maxlen=ORDER_HISTORY_LIMIT))
    fundings: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=HISTORY_LIMIT))
    ledger: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=HISTORY_LIMIT))
    cum_volume: int = 0  # micro-USD traded
    n_actions: int = 0  # address action budget used
    schedule_cancel_ms: int | None = None
    schedule_cancel_count: dict[int, int] = field(default_factory=dict)  # UTC day -> triggers set
    keep_history: bool = True
    is_vault: bool = False
    leader: str | None = None  # vault / sub-account: the user allowed to act for it
    vault_shares: dict[str, int] = field(default_factory=dict)  # vault only: depositor -> shares
    vault_locked_until: dict[str, int] = field(default_factory=dict)  # vault only: depositor -> ms

    def lev_for(self, inst: Instrument) -> tuple[bool, int]:
        default = (not inst.only_isolated, min(20, inst.max_leverage))
        return self.leverage.get(inst.asset, default)

    # ------------------------------------------------------------------ margin summary

    def cross_summary(self, marks: dict[int, int], insts: dict[int, Instrument]) -> tuple[int, int, int, int]:
        """(account value, notional, initial margin used, maintenance margin) of the cross part."""
        value = self.usdc
        ntl = used = maint = 0
        for asset, pos in self.positions.items():
            if not pos.is_cross or pos.szi == 0:
                continue
            mark = marks[asset]
            inst = insts[asset]
            pv = pos.value(mark)
            value += pos.upnl(mark)
            ntl += pv
            used += -(-pv // pos.leverage)
            maint += pv // (2 * inst.max_leverage)
        return value, ntl, used, maint

    def isolated_equity(self, pos: Position, mark: int) -> int:
        return pos.margin + pos.upnl(mark)

    def total_value(self, marks: dict[int, int]) -> int:
        """Account value: cross balance + every position's PnL + isolated margins."""
        total = self.usdc
        for asset, pos in self.positions.items():
            if pos.szi:
                total += pos.upnl(marks[asset]) + (0 if pos.is_cross else pos.margin)
        return total

    def available(self, marks: dict[int, int], insts: dict[int, Instrument]) -> int:
        """Margin free for new orders (micro-USD)."""
        value, _, used, _ = self.cross_summary(marks, insts)
        return value - used - self.order_margin

    # ------------------------------------------------------------------ fills

    def apply_fill(self, inst: Instrument, is_buy: bool, px: int, sz: int, fee: int) -> FillEffect:
        """Book a perp fill of ``sz`` lots at ``px`` ticks: position, entry, realized PnL, fee, margin."""
        pos = self.positions.get(inst.asset)
        if pos is None:
            is_cross, lev = self.lev_for(inst)
            pos = self.positions[inst.asset] = Position(inst.asset, is_cross=is_cross, leverage=lev)
        start = pos.szi
        delta = sz if is_buy else -sz
        closed_pnl = 0
        if start == 0 or (start > 0) == is_buy:  # open or add
            pos.entry_ntl += px * sz
            if not pos.is_cross:
                add = -(-px * sz // pos.leverage)
                pos.margin += add
                self.usdc -= add
            if start == 0:
                pos.funding_open = 0
        else:
            closing = min(sz, abs(start))
            cost = pos.entry_ntl * closing // abs(start) if closing < abs(start) else pos.entry_ntl
            closed_pnl = (px * closing - cost) if start > 0 else (cost - px * closing)
            released = pos.margin * closing // abs(start) if closing < abs(start) else pos.margin
            pos.entry_ntl -= cost
            pos.margin -= released
            self.usdc += closed_pnl + released
            rest = sz - closing
            if rest:  # flip: open the other side with what is left
                pos.entry_ntl = px * rest
                pos.funding_open = 0
                if not pos.is_cross:
                    add = -(-px * rest // pos.leverage)
                    pos.margin += add
                    self.usdc -= add
        pos.szi = start + delta
        pos.funding_change = 0
        self.usdc -= fee
        self.cum_volume += px * sz
        return FillEffect(start, direction_of(start, delta), closed_pnl, fee)


def direction_of(start: int, delta: int) -> str:
    """The fill's `dir` text exactly as the venue writes it."""
    end = start + delta
    if start == 0:
        return "Open Long" if delta > 0 else "Open Short"
    if start > 0:
        if delta > 0:
            return "Open Long"
        return "Long > Short" if end < 0 else "Close Long"
    if delta < 0:
        return "Open Short"
    return "Short > Long" if end > 0 else "Close Short"


def liquidation_px(pos: Position, inst: Instrument, mark: int, margin_available: int) -> float | None:
    """Hyperliquid's formula: px - side * margin_available / size / (1 - l * side), l = 1/(2*maxLev).

    Result in ticks (float); None when the position is flat or the price would be non-positive.
    """
    if pos.szi == 0:
        return None
    side = 1 if pos.szi > 0 else -1
    l_rate = 1 / (2 * inst.max_leverage)
    px = mark - side * margin_available / abs(pos.szi) / (1 - l_rate * side)
    return px if px > 0 else None


# ---------------------------------------------------------------------- vault shares
# A vault's equity belongs to its depositors (its leader included) in proportion to their shares.
# The first deposit mints one share per micro-USD; later ones at the vault's equity per share, so
# profit, loss and outside credits move every depositor's equity alike. Rounding favours the vault.


def shares_for_deposit(total_shares: int, equity: int, usd: int) -> int | None:
    """Shares a deposit of ``usd`` micro-USD mints; None when the vault has shares but no equity
    (a deposit would buy a share of nothing)."""
    if total_shares == 0:
        return usd
    if equity <= 0:
        return None
    return usd * total_shares // equity


def equity_of_shares(shares: int, total_shares: int, equity: int) -> int:
    """Micro-USD of the vault's equity that ``shares`` own (rounded down, never negative)."""
    if total_shares <= 0 or equity <= 0:
        return 0
    return shares * equity // total_shares


def shares_for_withdrawal(usd: int, shares: int, total_shares: int, equity: int) -> int:
    """Shares a withdrawal of ``usd`` micro-USD burns (rounded up; all of them for the whole equity)."""
    if usd >= equity_of_shares(shares, total_shares, equity):
        return shares
    return min(shares, -(-usd * total_shares // equity))
