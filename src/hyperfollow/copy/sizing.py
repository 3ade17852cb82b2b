"""Pure sizing: how much of a leader's trade we copy, and what stops us copying more.

Opening sizes go through the follow's sizing mode (equity ratio, fixed multiplier, fixed notional), the
copy ratio, then the caps (order, position, per-leader budget, all in USD at the mark), and are rounded
DOWN to whole lots: never more than asked. Closing sizes are the same fraction of our position as the
leader closed of theirs, rounded down, never more than we hold (the whole position when the leader went flat).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from hyperfollow.copy.model import FollowSettings, SizingMode
from hyperfollow.domain.rules import Instrument, Rounding, quantize_size

ZERO = Decimal(0)


class Limit(StrEnum):
    """What shrank an opening size below the sizing mode's answer."""

    ORDER_CAP = "max_order_usd"
    POSITION_CAP = "max_position_usd"
    BUDGET = "budget_usd"
    EXPOSURE = "exposure_bound_usd"  # delta sync: the follow's share of equity x its leverage cap


@dataclass(frozen=True, slots=True)
class Sized:
    """An opening size on the lot grid, what the sizing mode asked for, and what shrank it (if anything).

    ``room_usd`` is the notional the binding limit still allowed (None when nothing limited the size).
    """

    size: Decimal
    requested: Decimal
    limited_by: Limit | None = None
    room_usd: Decimal | None = None

    @property
    def shrunk(self) -> bool:
        return self.limited_by is not None


def equity_ratio(follower_equity: Decimal, leader_equity: Decimal) -> Decimal:
    """Follower equity / leader equity; 0 when either account has no (positive) equity."""
    if leader_equity <= 0 or follower_equity <= 0:
        return ZERO
    return follower_equity / leader_equity


def requested_size(
    leader_size: Decimal, *, price: Decimal, settings: FollowSettings, ratio: Decimal
) -> Decimal:
    """The size the sizing mode asks for (before caps and lots): ``ratio`` is the equity ratio."""
    if settings.sizing is SizingMode.EQUITY_RATIO:
        base = leader_size * ratio
    elif settings.sizing is SizingMode.FIXED_MULTIPLIER:
        base = leader_size * settings.multiplier
    else:
        assert settings.notional_usd is not None  # FollowSettings checks it
        base = settings.notional_usd / price if price > 0 else ZERO
    return max(ZERO, base * settings.copy_ratio)


def cap_size(
    requested: Decimal,
    *,
    price: Decimal,
    instrument: Instrument,
    settings: FollowSettings,
    position_usd: Decimal = ZERO,
    budget_used_usd: Decimal = ZERO,
    exposure_bound_usd: Decimal | None = None,
) -> Sized:
    """Apply the order cap, the position cap (``position_usd`` = our notional already on that side of the
    coin), the leader budget (``budget_used_usd`` already used) and, when given, the follow's exposure bound
    (against the same notional held), then round down to lots."""
    size, limited_by, room = requested, None, None
    caps = (
        (Limit.ORDER_CAP, settings.max_order_usd, ZERO),
        (Limit.POSITION_CAP, settings.max_position_usd, position_usd),
        (Limit.BUDGET, settings.budget_usd, budget_used_usd),
        (Limit.EXPOSURE, exposure_bound_usd, budget_used_usd),
    )
    for limit, cap, used in caps:
        if cap is None or price <= 0:
            continue
        left = max(ZERO, cap - used)
        if size * price > left:
            size, limited_by, room = left / price, limit, left
    return Sized(quantize_size(instrument, size, Rounding.DOWN), requested, limited_by, room)


def target_size(
    leader_size: Decimal,
    *,
    price: Decimal,
    instrument: Instrument,
    settings: FollowSettings,
    ratio: Decimal,
    position_usd: Decimal = ZERO,
    budget_used_usd: Decimal = ZERO,
) -> Sized:
    """Our opening size for a leader opening ``leader_size``: sizing mode, copy ratio, caps, lots (down)."""
    requested = requested_size(leader_size, price=price, settings=settings, ratio=ratio)
    return cap_size(
        requested,
        price=price,
        instrument=instrument,
        settings=settings,
        position_usd=position_usd,
        budget_used_usd=budget_used_usd,
    )


def close_size(
    ours: Decimal, leader_closed: Decimal, leader_start: Decimal, instrument: Instrument
) -> Decimal:
    """How much of our position (``ours``, absolute) to close when the leader closed ``leader_closed`` of
    ``leader_start`` (absolute): the same fraction, rounded down to lots; all of it when the leader went
    flat. Never more than ``ours``."""
    ours = abs(ours)
    if ours == 0:
        return ZERO
    start = abs(leader_start)
    if start == 0 or leader_closed >= start:
        return ours
    share = quantize_size(instrument, ours * leader_closed / start, Rounding.DOWN)
    return min(share, ours)
