"""Hyperliquid venue rules: instruments, price/size quantization, minimum order value.

The one place where exact money meets the venue's grid. Rules (Hyperliquid docs, "Tick and lot size"):

- a size has at most ``szDecimals`` decimals;
- a price has at most 5 significant figures AND at most ``MAX_DECIMALS - szDecimals`` decimals
  (``MAX_DECIMALS`` is 6 for perps, 8 for spot); an integer price is always valid, whatever its length;
- an order opening or increasing a position must be worth at least $10 (perps) or 10 quote units (spot).

Everything here is pure and works on ``Decimal`` built from strings, or on integers scaled to the
instrument's finest grid ("ticks" for prices, "lots" for sizes), which is what the matching engine uses.
For perps ``ticks * lots`` is a notional in micro-USD exactly (10^-(6-s) * 10^-s = 10^-6).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from enum import Enum
from typing import Any

PERP_MAX_DECIMALS = 6
SPOT_MAX_DECIMALS = 8
MAX_SIG_FIGS = 5
MIN_ORDER_VALUE = Decimal(10)
SPOT_ASSET_OFFSET = 10_000
HIP3_ASSET_OFFSET = 100_000
HIP3_DEX_STRIDE = 10_000
_SIG_FIG_LIMIT: int = 10**MAX_SIG_FIGS


class Rounding(Enum):
    """Direction of a quantization. Aggressive buys round UP, sells DOWN; opening sizes DOWN."""

    UP = ROUND_CEILING
    DOWN = ROUND_FLOOR
    NEAREST = ROUND_HALF_EVEN


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable market as the venue lists it."""

    coin: str  # "BTC", "xyz:TSLA", "PURR/USDC", "@107"
    asset: int  # venue asset id used in order actions
    sz_decimals: int
    max_leverage: int = 1
    is_spot: bool = False
    only_isolated: bool = False
    dex: str = ""  # "" for the main perp dex, the builder dex name for HIP-3
    is_delisted: bool = False

    @property
    def px_decimals(self) -> int:
        """Most decimals a price may carry on this instrument (also the tick exponent)."""
        return (SPOT_MAX_DECIMALS if self.is_spot else PERP_MAX_DECIMALS) - self.sz_decimals

    @property
    def lot(self) -> Decimal:
        return Decimal(1).scaleb(-self.sz_decimals)


def asset_id_for(dex_index: int, index: int) -> int:
    """Asset id of entry ``index`` of perp dex number ``dex_index`` (0 = main dex)."""
    if dex_index == 0:
        return index
    return HIP3_ASSET_OFFSET + dex_index * HIP3_DEX_STRIDE + index


# --------------------------------------------------------------------------- validation


def _decimals_of(x: Decimal) -> int:
    exponent = x.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _sig_figs(x: Decimal) -> int:
    digits = x.normalize().as_tuple().digits
    return len(digits)


def price_is_valid(inst: Instrument, px: Decimal) -> bool:
    """True when ``px`` is on the venue's price grid for ``inst`` (positive, finite)."""
    if not px.is_finite() or px <= 0:
        return False
    if px == px.to_integral_value():
        return True
    return _decimals_of(px) <= inst.px_decimals and _sig_figs(px) <= MAX_SIG_FIGS


def size_is_valid(inst: Instrument, sz: Decimal) -> bool:
    """True when ``sz`` is a positive whole number of lots."""
    return sz.is_finite() and sz > 0 and _decimals_of(sz) <= inst.sz_decimals


def meets_min_value(px: Decimal, sz: Decimal, minimum: Decimal = MIN_ORDER_VALUE) -> bool:
    """The venue's minimum order value (applies to orders that open or increase a position)."""
    return px * sz >= minimum


# --------------------------------------------------------------------------- quantization


def allowed_price_decimals(inst: Instrument, px: Decimal) -> int:
    """Decimals a price of this magnitude may carry: min(tick decimals, 5 significant figures)."""
    magnitude = px.adjusted()  # floor(log10(px)) for px > 0
    return max(0, min(inst.px_decimals, MAX_SIG_FIGS - 1 - magnitude))


def quantize_price(inst: Instrument, px: Decimal, rounding: Rounding = Rounding.NEAREST) -> Decimal:
    """Round a positive price onto the grid in the given direction.

    >>> eth = Instrument("ETH", 1, 4, 25)
    >>> quantize_price(eth, Decimal("2970.1485"), Rounding.DOWN)
    Decimal('2970.1')
    """
    if not px.is_finite() or px <= 0:
        raise ValueError(f"price must be positive and finite, got {px}")
    step = Decimal(1).scaleb(-allowed_price_decimals(inst, px))
    out = px.quantize(step, rounding=rounding.value)
    if out <= 0:  # rounding a tiny price down to zero: the smallest valid price instead
        out = Decimal(1).scaleb(-inst.px_decimals)
    if not price_is_valid(inst, out):  # a carry into the next power of ten: re-round once
        out = out.quantize(Decimal(1).scaleb(-allowed_price_decimals(inst, out)), rounding=rounding.value)
    return out


def quantize_size(inst: Instrument, sz: Decimal, rounding: Rounding = Rounding.DOWN) -> Decimal:
    """Round a size to whole lots (down by default: never open more than asked)."""
    if not sz.is_finite() or sz < 0:
        raise ValueError(f"size must be non-negative and finite, got {sz}")
    return sz.quantize(inst.lot, rounding=rounding.value)


def to_wire(x: Decimal) -> str:
    """The exact string for the wire: no exponent, no trailing zeros ("100", "0.3", "2970.1")."""
    if not x.is_finite():
        raise ValueError(f"not a finite number: {x}")
    if x == 0:
        return "0"
    return format(x.normalize(), "f")


# --------------------------------------------------------------------------- integer grid


def scaled_int(text: str, decimals: int) -> int | None:
    """Parse a plain decimal string into an integer scaled by 10**decimals.

    Returns None when the string is not a plain non-negative decimal or carries more (non-zero)
    decimals than allowed. Fast path used by the matching engine at the wire boundary.
    """
    if not text or len(text) > 40:
        return None
    whole, dot, frac = text.partition(".")
    if dot and not frac:
        return None
    if not text.isascii() or not whole.isdigit() or (frac and not frac.isdigit()):
        return None  # isascii: str.isdigit() accepts digits such as "²" that int() refuses
    frac = frac.rstrip("0")
    if len(frac) > decimals:
        return None
    scale: int = 10**decimals
    return int(whole) * scale + (int(frac.ljust(decimals, "0")) if frac else 0)


def ticks_are_valid(ticks: int, px_decimals: int) -> bool:
    """Price-grid check on a price already scaled to ``px_decimals``: integer or <= 5 sig figs."""
    if ticks <= 0:
        return False
    scale: int = 10**px_decimals
    if ticks % scale == 0:
        return True
    while ticks % 10 == 0:
        ticks //= 10
    return ticks < _SIG_FIG_LIMIT


def from_scaled(value: int, decimals: int) -> Decimal:
    """Inverse of ``scaled_int``: an exact Decimal."""
    return Decimal(value).scaleb(-decimals)


def scaled_to_wire(value: int, decimals: int) -> str:
    """Wire string of a scaled integer, in the venue's response style (at least one decimal: "26951.0")."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    if decimals == 0:
        return f"{sign}{value}.0"
    whole, frac = divmod(value, 10**decimals)
    frac_text = str(frac).rjust(decimals, "0").rstrip("0") or "0"
    return f"{sign}{whole}.{frac_text}"


# --------------------------------------------------------------------------- meta parsing


def instruments_from_meta(meta: Mapping[str, Any], dex_index: int = 0) -> list[Instrument]:
    """Instruments of one perp dex from its ``meta`` response (asset ids by list position)."""
    universe: Iterable[Mapping[str, Any]] = meta["universe"]
    out = []
    for index, entry in enumerate(universe):
        name = str(entry["name"])
        out.append(
            Instrument(
                coin=name,
                asset=asset_id_for(dex_index, index),
                sz_decimals=int(entry["szDecimals"]),
                max_leverage=int(entry.get("maxLeverage", 1)),
                only_isolated=bool(entry.get("onlyIsolated", False))
                or entry.get("marginMode") in ("strictIsolated", "noCross"),
                dex=name.split(":", 1)[0] if ":" in name else "",
                is_delisted=bool(entry.get("isDelisted", False)),
            )
        )
    return out


def instruments_from_spot_meta(spot_meta: Mapping[str, Any]) -> list[Instrument]:
    """Spot pairs from ``spotMeta``: asset 10000 + pair index, size decimals of the base token."""
    tokens = {int(t["index"]): t for t in spot_meta["tokens"]}
    out = []
    for pair in spot_meta["universe"]:
        base = tokens[int(pair["tokens"][0])]
        out.append(
            Instrument(
                coin=str(pair["name"]),
                asset=SPOT_ASSET_OFFSET + int(pair["index"]),
                sz_decimals=int(base["szDecimals"]),
                is_spot=True,
            )
        )
    return out
