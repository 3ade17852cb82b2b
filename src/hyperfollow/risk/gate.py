"""The pre-trade gate: may this order go out, given the account, the limits and the trading state?

Pure: ``check_order(order, mark, snapshot, limits, state, now_ms)`` returns a ``GateDecision`` (allowed or
not, a reason the user can read, the numbers compared). The async shell builds the ``RiskSnapshot`` from
our own fills and mids, calls the gate before every submit, and logs/persists what it refuses.

What "increasing" means (decided against the live position in the snapshot, never against our records):

* a reduce-only order, and a plain order that only shrinks ``|position|`` (opposite side, size <= |position|),
  are *reducing*: they always pass, in every state and whatever the limits (a close must never be blocked
  by a risk limit; the venue refuses a reduce-only order that would open anything);
* a flip (opposite side, size > |position|) is *increasing* for the part beyond zero: that part is what the
  limits check, and in REDUCING or HALTED the whole order is refused (one order cannot be half admitted);
  ``GateDecision.reducible_size`` then says how much of it a reduce-only close may still send;
* anything else (a new position, an add) is increasing.

Notionals are valued at the mark the caller passes (not the limit price: a resting order far from the
mark would otherwise look smaller than the position it makes). Resting opening orders are not part of
the snapshot: the shell adds their sizes to ``positions`` if it wants them to count.

The breakers' conditions (kill switch, daily loss, daily drawdown, stale market data) are evaluated here
too, on the snapshot passed in: the gate applies the stricter of the state it is given and the state the
snapshot implies, so an order checked between two breaker ticks cannot slip through a fresh breach.
``breakers.next_state`` turns the same conditions into state changes.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from hyperfollow.domain.model import AccountSnapshot, CancelRequest, OrderRequest

HUNDRED = Decimal(100)
ZERO = Decimal(0)
MINUTE_MS = 60_000


class TradingState(StrEnum):
    """What the circuit breakers allow. Ordered by strictness (``strictest`` picks the later one)."""

    ACTIVE = "active"  # every order that passes the limits
    REDUCING = "reducing"  # only orders that reduce exposure, closes and cancels
    HALTED = "halted"  # only closes and cancels (optionally everything is flattened)


_STRICTNESS = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


def strictest(a: TradingState, b: TradingState) -> TradingState:
    """The more restrictive of two states."""
    return a if _STRICTNESS[a] >= _STRICTNESS[b] else b


def _check_decimal(
    name: str, value: Decimal | None, *, optional: bool = False, zero_ok: bool = False
) -> None:
    if value is None and optional:
        return
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"{name} must be a finite Decimal, got {value!r}")
    if value < 0 or (value == 0 and not zero_ok):
        raise ValueError(f"{name} must be {'>= 0' if zero_ok else '> 0'}, got {value}")


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Pre-trade limits and breaker thresholds of one account. Limits are inclusive maxima (reaching a
    value is allowed, passing it is not; the loss breakers trip on reaching theirs). ``None`` turns a
    dollar limit off.

    Defaults: 10 open positions; gross exposure at most 300 % of equity (3x), 100 % in one coin; $50,000 per
    order (a fat-finger stop: set it near your account size); no per-coin caps; leverage setting at most
    10x; 60 orders a minute; halt at a 10 % daily drawdown; no dollar loss limit; market data older than
    10 s (the stream supervisor's own staleness threshold) means REDUCING; a halt does not flatten.
    """

    max_open_positions: int = 10
    max_total_exposure_pct: Decimal = Decimal(300)  # sum of |size| x mark over all coins, % of equity
    max_coin_exposure_pct: Decimal = Decimal(100)  # |size| x mark of one coin, % of equity
    max_order_notional_usd: Decimal | None = Decimal(50_000)  # the opening part of one order, at the mark
    max_coin_notional_usd: Mapping[str, Decimal] = field(default_factory=dict)  # coin -> cap on |size| x mark
    max_leverage: int = 10  # the venue leverage setting of the coin the order opens on
    max_orders_per_min: int = 60  # increasing orders are refused once this many went out in the last 60 s
    max_daily_drawdown_pct: Decimal = Decimal(10)  # today's loss, % of the UTC day's starting equity
    max_daily_loss_usd: Decimal | None = None  # today's loss (realized + unrealized) in dollars
    stale_market_data_ms: int = 10_000
    flatten_on_halt: bool = False  # HALTED also closes every position (the shell acts on the event)

    def __post_init__(self) -> None:
        _check_int("max_open_positions", self.max_open_positions, 1)
        _check_decimal("max_total_exposure_pct", self.max_total_exposure_pct)
        _check_decimal("max_coin_exposure_pct", self.max_coin_exposure_pct)
        _check_decimal("max_order_notional_usd", self.max_order_notional_usd, optional=True)
        _check_int("max_leverage", self.max_leverage, 1)
        _check_int("max_orders_per_min", self.max_orders_per_min, 1)
        _check_decimal("max_daily_drawdown_pct", self.max_daily_drawdown_pct)
        if self.max_daily_drawdown_pct > HUNDRED:
            raise ValueError(f"max_daily_drawdown_pct must be <= 100, got {self.max_daily_drawdown_pct}")
        _check_decimal("max_daily_loss_usd", self.max_daily_loss_usd, optional=True)
        _check_int("stale_market_data_ms", self.stale_market_data_ms, 1)
        if not isinstance(self.flatten_on_halt, bool):
            raise ValueError(f"flatten_on_halt must be a bool, got {self.flatten_on_halt!r}")
        caps = dict(self.max_coin_notional_usd)
        for coin, cap in caps.items():
            _check_decimal(f"max_coin_notional_usd[{coin!r}]", cap)
        object.__setattr__(self, "max_coin_notional_usd", MappingProxyType(caps))  # frozen all the way


@dataclass(frozen=True, slots=True)
class PositionMark:
    """One open position as the gate sees it: signed size (> 0 long), its mark, the venue leverage setting."""

    size: Decimal
    mark: Decimal
    leverage: int | None = None

    @property
    def notional_usd(self) -> Decimal:
        return abs(self.size) * self.mark


@dataclass(frozen=True, slots=True)
class RiskSnapshot:
    """The account at one moment, as the shell keeps it from our fills and mids (never polled per check).

    ``pnl_today_usd`` is realized + unrealized PnL since the start of the UTC day (losses are negative);
    the daily loss is measured on it rather than on the equity change, so deposits and withdrawals neither
    trip nor hide a breaker. ``recent_order_times_ms`` are the send times of our recent orders (only the
    last minute matters); ``last_market_data_ms`` is ``None`` until the first market data arrived.
    """

    equity_usd: Decimal
    day_start_equity_usd: Decimal
    pnl_today_usd: Decimal
    positions: Mapping[str, PositionMark] = field(default_factory=dict)
    recent_order_times_ms: tuple[int, ...] = ()
    last_market_data_ms: int | None = None
    kill_switch: bool = False
    # derived once here, because the gate runs many times per snapshot
    gross_exposure_usd: Decimal = field(init=False)
    open_positions: int = field(init=False)

    def __post_init__(self) -> None:
        positions = MappingProxyType({c: p for c, p in self.positions.items() if p.size != 0})
        object.__setattr__(self, "positions", positions)
        object.__setattr__(self, "recent_order_times_ms", tuple(sorted(self.recent_order_times_ms)))
        object.__setattr__(
            self, "gross_exposure_usd", sum((p.notional_usd for p in positions.values()), ZERO)
        )
        object.__setattr__(self, "open_positions", len(positions))

    @property
    def daily_loss_usd(self) -> Decimal:
        """Today's loss in dollars (0 on a winning day)."""
        return max(ZERO, -self.pnl_today_usd)

    @property
    def daily_drawdown_pct(self) -> Decimal:
        """Today's loss as % of the day's starting equity (0 when that equity is not positive: a fresh
        account funded today is guarded by the dollar limit only)."""
        if self.day_start_equity_usd <= 0:
            return ZERO
        return self.daily_loss_usd / self.day_start_equity_usd * HUNDRED

    def market_data_age_ms(self, now_ms: int) -> int | None:
        """How old the newest market data is (``None``: none yet)."""
        return None if self.last_market_data_ms is None else now_ms - self.last_market_data_ms

    def orders_in_last_minute(self, now_ms: int) -> int:
        """Orders sent in ``(now - 60 s, now]``."""
        times = self.recent_order_times_ms  # sorted in __post_init__: two binary searches, not a scan
        return bisect_right(times, now_ms) - bisect_right(times, now_ms - MINUTE_MS)


def marks_from_account(account: AccountSnapshot, mids: Mapping[str, Decimal]) -> dict[str, PositionMark]:
    """``RiskSnapshot.positions`` from a venue account snapshot, valued at ``mids`` (the venue's own
    position value / size where a mid is missing)."""
    out: dict[str, PositionMark] = {}
    for p in account.positions:
        if p.size == 0:
            continue
        mark = mids.get(p.coin) or p.position_value / abs(p.size)
        out[p.coin] = PositionMark(p.size, mark, p.leverage)
    return out


class Breach(StrEnum):
    """A breaker condition that holds on a snapshot. The value is what the user reads."""

    KILL_SWITCH = "manual kill switch on"
    DAILY_LOSS = "max daily loss reached"
    DAILY_DRAWDOWN = "max daily drawdown reached"
    STALE_MARKET_DATA = "market data is stale"


@dataclass(frozen=True, slots=True)
class Trip:
    """A breach with the numbers behind it and the state it calls for."""

    breach: Breach
    state: TradingState
    text: str
    numbers: Mapping[str, Decimal | int | None]


def halt_trip(snapshot: RiskSnapshot, limits: RiskLimits) -> Trip | None:
    """The first condition that calls for HALTED (kill switch, dollar loss, drawdown), or ``None``."""
    halted = TradingState.HALTED
    if snapshot.kill_switch:
        return Trip(Breach.KILL_SWITCH, halted, "manual kill switch on", {})
    loss = snapshot.daily_loss_usd
    if limits.max_daily_loss_usd is not None and loss >= limits.max_daily_loss_usd:
        text = f"daily loss ${loss} reached the limit ${limits.max_daily_loss_usd}"
        return Trip(
            Breach.DAILY_LOSS, halted, text, {"loss_usd": loss, "limit_usd": limits.max_daily_loss_usd}
        )
    dd = snapshot.daily_drawdown_pct
    if dd >= limits.max_daily_drawdown_pct:
        text = f"daily drawdown {dd:.2f} % reached the limit {limits.max_daily_drawdown_pct} %"
        numbers = {"drawdown_pct": dd, "limit_pct": limits.max_daily_drawdown_pct, "loss_usd": loss,
                   "day_start_equity_usd": snapshot.day_start_equity_usd}  # fmt: skip
        return Trip(Breach.DAILY_DRAWDOWN, halted, text, numbers)
    return None


def stale_trip(snapshot: RiskSnapshot, limits: RiskLimits, now_ms: int) -> Trip | None:
    """REDUCING when the newest market data is older than the limit (or there is none yet)."""
    age = snapshot.market_data_age_ms(now_ms)
    if age is not None and age <= limits.stale_market_data_ms:
        return None
    text = (
        "no market data yet"
        if age is None
        else f"market data {age} ms old (limit {limits.stale_market_data_ms})"
    )
    numbers = {"age_ms": age, "limit_ms": limits.stale_market_data_ms}
    return Trip(Breach.STALE_MARKET_DATA, TradingState.REDUCING, text, numbers)


def current_trip(snapshot: RiskSnapshot, limits: RiskLimits, now_ms: int) -> Trip | None:
    """The strictest breaker condition holding now: a halt first, then staleness."""
    return halt_trip(snapshot, limits) or stale_trip(snapshot, limits, now_ms)


class GateReason(StrEnum):
    """Why the gate decided as it did. The value is what the user reads."""

    ALLOWED = "allowed"
    REDUCES = "reduces exposure: always allowed"
    CANCEL = "cancel: always allowed"
    HALTED = "trading halted: only closes and cancels"
    REDUCING = "reducing only: orders that add exposure are blocked"
    KILL_SWITCH = "manual kill switch on"
    DAILY_LOSS = "max daily loss reached"
    DAILY_DRAWDOWN = "max daily drawdown reached"
    STALE_MARKET_DATA = "market data is stale"
    INVALID_ORDER = "order size must be positive"
    NO_MARK = "no mark price for the coin"
    NO_EQUITY = "no equity to open with"
    RATE_LIMIT = "order rate limit reached"
    ORDER_NOTIONAL = "order notional above the per-order cap"
    COIN_CAP = "position above the coin's notional cap"
    LEVERAGE = "leverage above the cap"
    MAX_POSITIONS = "max open positions reached"
    COIN_EXPOSURE = "coin exposure above the limit"
    TOTAL_EXPOSURE = "total exposure above the limit"


_TRIP_REASON = {b: GateReason[b.name] for b in Breach}


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The gate's answer. ``opening_size`` is the part of the order that adds exposure (0 for a reducing
    order); ``reducible_size`` the part that reduces it (for a refused flip: what a reduce-only close of
    the position may still send)."""

    allowed: bool
    reason: GateReason
    text: str
    numbers: Mapping[str, Decimal | int | None] = field(default_factory=dict)
    opening_size: Decimal = ZERO
    reducible_size: Decimal = ZERO

    @property
    def increasing(self) -> bool:
        return self.opening_size > 0


def split_order(order: OrderRequest, position: Decimal) -> tuple[Decimal, Decimal]:
    """``(reducing, opening)`` parts of the order's size against the signed live ``position``.

    A reduce-only order is all reducing (the venue never lets it open anything). Otherwise the part up
    to a flat position reduces, the rest (an add, a new position, the far side of a flip) opens.
    """
    size = order.size
    if order.reduce_only:
        return size, ZERO
    against = (position > 0 and not order.is_buy) or (position < 0 and order.is_buy)
    if not against:
        return ZERO, size
    reducing = min(size, abs(position))
    return reducing, size - reducing


def check_cancel(cancel: CancelRequest) -> GateDecision:
    """Cancels always pass (they only ever lower risk); here so the shell has one path for both."""
    return GateDecision(True, GateReason.CANCEL, f"cancel on {cancel.coin}")


def check_order(
    order: OrderRequest,
    mark: Decimal | None,
    snapshot: RiskSnapshot,
    limits: RiskLimits,
    state: TradingState,
    now_ms: int,
    *,
    leverage: int | None = None,
) -> GateDecision:
    """May ``order`` be sent now? Pure and deterministic for the same inputs.

    ``mark`` values the order (``None`` or <= 0: unknown, so nothing may be opened on the coin);
    ``leverage`` is the venue leverage the shell will set for the coin (defaults to the position's).
    Checks run in a fixed order and the first failure is returned: size > 0; a reducing order passes here;
    then trading state (the stricter of ``state`` and the snapshot's breaches), mark, equity, order rate,
    per-order notional, per-coin cap, leverage, open positions, coin exposure, total exposure.
    """
    held = snapshot.positions.get(order.coin)
    position = held.size if held is not None else ZERO
    if order.size <= 0:
        return GateDecision(False, GateReason.INVALID_ORDER, f"order size {order.size} on {order.coin}")
    reducing, opening = split_order(order, position)
    if opening == 0:
        return GateDecision(
            True,
            GateReason.REDUCES,
            f"reduces {order.coin} by {reducing}",
            {"position": position, "size": order.size},
            ZERO,
            reducing,
        )
    refused = _state_refusal(snapshot, limits, state, now_ms, reducing, opening)
    if refused is not None:
        return refused
    return _check_limits(order, mark, held, snapshot, limits, now_ms, leverage, reducing, opening)


def _state_refusal(
    snapshot: RiskSnapshot,
    limits: RiskLimits,
    state: TradingState,
    now_ms: int,
    reducing: Decimal,
    opening: Decimal,
) -> GateDecision | None:
    trip = current_trip(snapshot, limits, now_ms)
    effective = strictest(state, trip.state) if trip is not None else state
    if effective is TradingState.ACTIVE:
        return None
    if trip is not None and trip.state is effective:
        reason, text, numbers = _TRIP_REASON[trip.breach], trip.text, trip.numbers
    else:
        reason = GateReason.HALTED if effective is TradingState.HALTED else GateReason.REDUCING
        text, numbers = f"trading state is {effective.value}", {}
    return GateDecision(False, reason, f"{reason.value} ({text})", numbers, opening, reducing)


def _check_limits(
    order: OrderRequest,
    mark: Decimal | None,
    held: PositionMark | None,
    snapshot: RiskSnapshot,
    limits: RiskLimits,
    now_ms: int,
    leverage: int | None,
    reducing: Decimal,
    opening: Decimal,
) -> GateDecision:
    coin = order.coin

    def refuse(reason: GateReason, text: str, **numbers: Decimal | int | None) -> GateDecision:
        return GateDecision(False, reason, f"{reason.value}: {text}", numbers, opening, reducing)

    if mark is None or mark <= 0:
        return refuse(GateReason.NO_MARK, f"mark {mark} for {coin}", mark=mark)
    equity = snapshot.equity_usd
    if equity <= 0:
        return refuse(GateReason.NO_EQUITY, f"equity ${equity}", equity_usd=equity)
    sent = snapshot.orders_in_last_minute(now_ms)
    if sent >= limits.max_orders_per_min:
        return refuse(
            GateReason.RATE_LIMIT,
            f"{sent} orders in the last minute (limit {limits.max_orders_per_min})",
            orders_last_min=sent,
            limit=limits.max_orders_per_min,
        )
    order_usd = opening * mark
    cap = limits.max_order_notional_usd
    if cap is not None and order_usd > cap:
        return refuse(
            GateReason.ORDER_NOTIONAL, f"${order_usd} > ${cap}", notional_usd=order_usd, limit_usd=cap
        )
    side = 1 if order.is_buy else -1
    position = held.size if held is not None else ZERO
    after_usd = abs(position + side * order.size) * mark
    coin_cap = limits.max_coin_notional_usd.get(coin)
    if coin_cap is not None and after_usd > coin_cap:
        return refuse(
            GateReason.COIN_CAP,
            f"{coin} ${after_usd} > ${coin_cap}",
            position_usd=after_usd,
            limit_usd=coin_cap,
        )
    lev = leverage if leverage is not None else (held.leverage if held is not None else None)
    if lev is not None and lev > limits.max_leverage:
        return refuse(
            GateReason.LEVERAGE, f"{lev}x > {limits.max_leverage}x", leverage=lev, limit=limits.max_leverage
        )
    if held is None and snapshot.open_positions >= limits.max_open_positions:
        return refuse(
            GateReason.MAX_POSITIONS,
            f"{snapshot.open_positions} open (limit {limits.max_open_positions})",
            open_positions=snapshot.open_positions,
            limit=limits.max_open_positions,
        )
    coin_pct = after_usd / equity * HUNDRED
    if coin_pct > limits.max_coin_exposure_pct:
        return refuse(
            GateReason.COIN_EXPOSURE,
            f"{coin} {coin_pct:.2f} % of equity > {limits.max_coin_exposure_pct} %",
            exposure_pct=coin_pct,
            limit_pct=limits.max_coin_exposure_pct,
            position_usd=after_usd,
        )
    gross = snapshot.gross_exposure_usd - (held.notional_usd if held is not None else ZERO) + after_usd
    total_pct = gross / equity * HUNDRED
    if total_pct > limits.max_total_exposure_pct:
        return refuse(
            GateReason.TOTAL_EXPOSURE,
            f"{total_pct:.2f} % of equity > {limits.max_total_exposure_pct} %",
            exposure_pct=total_pct,
            limit_pct=limits.max_total_exposure_pct,
            gross_usd=gross,
        )
    numbers = {"notional_usd": order_usd, "position_usd": after_usd, "gross_usd": gross}
    return GateDecision(
        True, GateReason.ALLOWED, f"opens {opening} {coin} (${order_usd})", numbers, opening, reducing
    )
