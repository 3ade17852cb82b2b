"""Venue-aware guards shared by the mirror and delta decisions: prices, drift, minimum value, leverage."""

from __future__ import annotations

from decimal import Decimal

from hyperfollow.copy.model import ExecutionStyle, FollowSettings, LeverageMode, MarginMode
from hyperfollow.domain.model import Side, Tif
from hyperfollow.domain.rules import MIN_ORDER_VALUE, Instrument, Rounding, quantize_price

HUNDRED = Decimal(100)
BPS = Decimal(10_000)


def worst_price(instrument: Instrument, mark: Decimal, side: Side, slippage_cap_pct: Decimal) -> Decimal:
    """The worst price we accept: ``mark`` +/- the slippage cap, on the price grid.

    Rounded towards caution (a buy's cap DOWN, a sell's UP), so it is never worse than the cap; the
    adapter's own rounding of an order price goes the same way and leaves it unchanged.
    """
    if side is Side.BUY:
        return quantize_price(instrument, mark * (1 + slippage_cap_pct / HUNDRED), Rounding.DOWN)
    return quantize_price(instrument, mark * (1 - slippage_cap_pct / HUNDRED), Rounding.UP)


def adverse_drift_pct(side: Side, reference: Decimal, mark: Decimal) -> Decimal:
    """How far (%) the mark moved against us since ``reference`` (the leader's fill price): up for a buy,
    down for a sell; negative when it moved in our favour."""
    if reference <= 0:
        return Decimal(0)
    moved = (mark - reference) / reference * HUNDRED
    return moved if side is Side.BUY else -moved


def min_value_price(settings: FollowSettings, side: Side, mark: Decimal, limit_price: Decimal) -> Decimal:
    """The price at which an opening order's value is checked against the $10 minimum.

    The venue checks the order's own price. A taker buy is sent above the mark but fills near it, a sell
    is sent below it; a maker order rests near the touch, behind the mark. Take the lowest of those, so an
    order we emit is worth $10 wherever it ends up.
    """
    px = min(mark, limit_price)
    if settings.execution is ExecutionStyle.MAKER and side is Side.BUY:
        px = min(px, mark * (1 - settings.maker_offset_bps / BPS))
    return px


def opens_enough(size: Decimal, price: Decimal) -> bool:
    """True when an opening order of ``size`` at ``price`` meets the venue's minimum order value."""
    return size * price >= MIN_ORDER_VALUE


def resolve_leverage(settings: FollowSettings, instrument: Instrument, leader_leverage: int | None) -> int:
    """The leverage to set before opening: followed, fixed or capped (settings.leverage is the cap), and
    never above what the instrument allows."""
    theirs = leader_leverage if leader_leverage and leader_leverage > 0 else settings.leverage
    if settings.leverage_mode is LeverageMode.FOLLOW:
        lev = theirs
    elif settings.leverage_mode is LeverageMode.FIXED:
        lev = settings.leverage
    else:
        lev = min(theirs, settings.leverage)
    return max(1, min(lev, max(1, instrument.max_leverage)))


def resolve_cross(settings: FollowSettings, instrument: Instrument) -> bool:
    """Cross margin unless isolated is asked for or the instrument allows isolated only (HIP-3 dexes)."""
    return settings.margin_mode is MarginMode.CROSS and not instrument.only_isolated


def order_tif(settings: FollowSettings) -> Tif:
    """IOC for the taker style; post-only (ALO) for the maker style (the executor re-prices at the touch)."""
    return Tif.ALO if settings.execution is ExecutionStyle.MAKER else Tif.IOC
