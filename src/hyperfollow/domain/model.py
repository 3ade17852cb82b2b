"""Value types that cross the venue ports: orders, acknowledgements, fills, positions, books.

Money is ``Decimal`` built from the venue's strings (never from floats); times are venue epoch
milliseconds (``*_ms``). Every type is frozen: a message, not a mutable record. Parsers that build
them from Hyperliquid's JSON live in ``adapters/hyperliquid/parse.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

import msgspec


def _plain(value: Decimal) -> str:
    """One spelling per number: no exponent, no trailing zeros, -0 is 0."""
    return format((value + 0).normalize(), "f")


class Side(StrEnum):
    BUY = "B"  # the venue's side letters: B(id) buys, A(sk) sells
    SELL = "A"

    @property
    def is_buy(self) -> bool:
        return self is Side.BUY

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @staticmethod
    def of(is_buy: bool) -> Side:
        return Side.BUY if is_buy else Side.SELL


class Tif(StrEnum):
    GTC = "Gtc"  # rests until filled or cancelled
    IOC = "Ioc"  # fills what it can at once, the rest is cancelled
    ALO = "Alo"  # post-only: rejected if it would cross


class TpSl(StrEnum):
    TAKE_PROFIT = "tp"
    STOP_LOSS = "sl"


class Grouping(StrEnum):
    NONE = "na"
    NORMAL_TPSL = "normalTpsl"  # first order is the entry, the rest its TP/SL
    POSITION_TPSL = "positionTpsl"  # TP/SL on the whole position, resized with it


@dataclass(frozen=True, slots=True)
class Trigger:
    """A stop/take-profit trigger: fires when the mark crosses ``price``."""

    price: Decimal
    kind: TpSl
    is_market: bool = True


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order as strategies and copy trading express it; the adapter puts it on the venue's grid.

    ``price`` is the limit (for a market-style IOC: the worst price accepted). The adapter rounds it
    towards the caller's interest (buys down, sells up) and ``size`` down to whole lots, so an order is
    never worse or larger than asked; a reduce-only size is expected to be exact already.
    """

    coin: str
    side: Side
    size: Decimal
    price: Decimal
    tif: Tif = Tif.GTC
    reduce_only: bool = False
    cloid: str | None = None
    trigger: Trigger | None = None

    @property
    def is_buy(self) -> bool:
        return self.side is Side.BUY


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """Cancel by venue order id (``oid``) or by client order id (``cloid``): exactly one is set."""

    coin: str
    oid: int | None = None
    cloid: str | None = None

    def __post_init__(self) -> None:
        if (self.oid is None) == (self.cloid is None):
            raise ValueError("a cancel names exactly one of oid or cloid")


class AckStatus(StrEnum):
    RESTING = "resting"  # on the book (or a trigger waiting)
    FILLED = "filled"  # filled at once (wholly, or partly for an IOC whose rest was cancelled)
    WAITING = "waiting"  # a normalTpsl child waiting for its entry to fill / its trigger


@dataclass(frozen=True, slots=True)
class OrderAck:
    """The venue accepted the order (a rejection raises ``VenueRejected`` instead)."""

    status: AckStatus
    oid: int | None
    cloid: str | None = None
    filled_size: Decimal = Decimal(0)
    avg_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderState:
    """An order as ``orderStatus`` / ``openOrders`` report it."""

    coin: str
    side: Side
    price: Decimal
    size: Decimal  # remaining
    orig_size: Decimal
    oid: int
    timestamp_ms: int
    status: str  # "open", "filled", "canceled", "triggered", "rejected", "marginCanceled", ...
    cloid: str | None = None
    reduce_only: bool = False
    trigger_price: Decimal | None = None
    status_ms: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status == "open"


@dataclass(frozen=True, slots=True)
class Fill:
    """One of an account's fills. Unique per (address, tid); ``hash`` is the transaction's (shared by
    every fill of one order's sweep). Fills recorded before the venue had trade ids carry ``tid=None``."""

    address: str  # lower-case 0x address the fill belongs to
    coin: str
    side: Side
    price: Decimal
    size: Decimal
    time_ms: int
    start_position: Decimal
    direction: str  # "Open Long", "Close Short", "Long > Short", "Buy", ... as the venue says
    closed_pnl: Decimal
    fee: Decimal
    oid: int
    tid: int | None
    hash: str
    crossed: bool
    fee_token: str = "USDC"
    cloid: str | None = None
    liquidation: bool = False  # the fill is part of a liquidation (of ``liquidated_user``)
    liquidated_user: str | None = None
    builder_fee: Decimal = Decimal(0)

    @property
    def liquidated_self(self) -> bool:
        """This account was the one liquidated (the venue sends the field to both sides)."""
        return self.liquidated_user == self.address

    @property
    def key(self) -> tuple[object, ...]:
        """De-duplication key: the same fill seen by push, poll or backfill has the same key."""
        if self.tid is not None:
            return (self.address, self.tid)
        return (self.address, self.hash, self.oid, self.price, self.size, self.start_position)

    @property
    def ref(self) -> str:
        """``key`` as text without the address, one spelling per fill ("1.50" and "1.5" alike):
        ``tid:<tid>``, or ``h:<hash>:<oid>:<px>:<sz>:<start>`` for fills from before trade ids. Journals,
        cursors, skip logs and cloids name a fill by it."""
        if self.tid is not None:
            return f"tid:{self.tid}"
        return (
            f"h:{self.hash}:{self.oid}:{_plain(self.price)}:{_plain(self.size)}:{_plain(self.start_position)}"
        )

    @property
    def signed_size(self) -> Decimal:
        return self.size if self.side is Side.BUY else -self.size


@dataclass(frozen=True, slots=True)
class Position:
    """An open perp position (``size`` signed: > 0 long, < 0 short)."""

    coin: str
    size: Decimal
    entry_price: Decimal
    unrealized_pnl: Decimal
    leverage: int
    is_cross: bool
    position_value: Decimal
    margin_used: Decimal
    liquidation_price: Decimal | None = None
    return_on_equity: Decimal = Decimal(0)

    @property
    def is_long(self) -> bool:
        return self.size > 0


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """An account's perp state at ``time_ms``: what equity ratios and reconciliation need."""

    address: str
    time_ms: int
    equity: Decimal  # account value: balance + unrealized PnL (+ isolated margins)
    margin_used: Decimal
    withdrawable: Decimal
    positions: tuple[Position, ...] = ()

    def position(self, coin: str) -> Position | None:
        return next((p for p in self.positions if p.coin == coin), None)


class Level(msgspec.Struct, frozen=True):
    """One price level of a book, as the venue sent it: the exact decimal strings, ``Decimal`` on access.

    (Books arrive many times a second per coin with 40 levels each, and consumers read a few of them:
    turning all 80 numbers into Decimals up front would cost more than decoding the whole frame.
    Strings are exact, so nothing is lost; ``price`` and ``size`` build the Decimal when asked.)
    """

    px: str
    sz: str
    n: int  # orders at the level

    @property
    def price(self) -> Decimal:
        return Decimal(self.px)

    @property
    def size(self) -> Decimal:
        return Decimal(self.sz)

    @property
    def orders(self) -> int:
        return self.n


class L2Book(msgspec.Struct, frozen=True):
    coin: str
    time_ms: int
    bids: tuple[Level, ...]  # best first
    asks: tuple[Level, ...]

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0].price if self.asks else None

    @property
    def mid(self) -> Decimal | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0].price + self.asks[0].price) / 2


@dataclass(frozen=True, slots=True)
class Trade:
    """A print on the public tape; ``side`` is the aggressor's."""

    coin: str
    side: Side
    price: Decimal
    size: Decimal
    time_ms: int
    tid: int
    hash: str
    buyer: str | None = None
    seller: str | None = None


@dataclass(frozen=True, slots=True)
class Bbo:
    coin: str
    time_ms: int
    bid: Level | None
    ask: Level | None


@dataclass(frozen=True, slots=True)
class Candle:
    coin: str
    interval: str
    open_ms: int
    close_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trades: int


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """The address action budget (``userRateLimit``): requests used out of the cap."""

    used: int
    cap: int
    cum_volume: Decimal

    @property
    def remaining(self) -> int:
        return max(0, self.cap - self.used)


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """Something the stream supervisor wants the rest of the system to know (risk uses ``stale``)."""

    kind: str  # "connected", "disconnected", "stale", "fresh", "backfilled", "gap"
    detail: str = ""
    time_ms: int = 0
    subjects: tuple[str, ...] = field(default_factory=tuple)
