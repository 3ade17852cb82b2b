"""The shared maker of intents and skips: one ``OrderContext`` per decision (who, coin, mark, settings)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hyperfollow.copy.guards import min_value_price, opens_enough, order_tif, worst_price
from hyperfollow.copy.model import CopyIntent, FollowSettings, Leg, Skip, SkipReason, numbers
from hyperfollow.copy.sizing import Limit, Sized
from hyperfollow.domain.ids import cloid_for
from hyperfollow.domain.model import Side
from hyperfollow.domain.rules import MIN_ORDER_VALUE, Instrument


@dataclass(frozen=True, slots=True)
class OrderContext:
    """What every leg of one decision shares: who, which coin, at what mark, with which settings.

    ``ref`` names the cause (the leader fill's key, "delta:<ms>", ...) and feeds the cloid.
    """

    follower: str
    leader: str
    instrument: Instrument
    settings: FollowSettings
    mark: Decimal
    ref: str
    leverage: int
    is_cross: bool

    def intent(self, side: Side, size: Decimal, *, leg: Leg, reduce_only: bool, reason: str) -> CopyIntent:
        """An intent of this decision: limit at the slippage cap from the mark, cloid from (ref, leg)."""
        return CopyIntent(
            follower=self.follower,
            leader=self.leader,
            coin=self.instrument.coin,
            side=side,
            size=size,
            reduce_only=reduce_only,
            leg=leg,
            limit_price=worst_price(self.instrument, self.mark, side, self.settings.slippage_cap_pct),
            tif=order_tif(self.settings),
            leverage=self.leverage,
            is_cross=self.is_cross,
            cloid=cloid_for(self.follower, self.leader, self.ref, leg),
            reason=reason,
            fill_key=self.ref,
            mark=self.mark,
        )

    def skip(self, reason: SkipReason, detail: dict[str, str]) -> Skip:
        """A skip of this decision with the numbers behind it."""
        return Skip(self.follower, self.leader, self.instrument.coin, reason, detail, self.ref)

    def close_all(self, position: Decimal, *, leg: Leg, reason: str) -> CopyIntent:
        """Reduce-only order closing the whole of ``position`` (signed, non-zero)."""
        return self.intent(Side.of(position < 0), abs(position), leg=leg, reduce_only=True, reason=reason)

    def open_leg(
        self, sized: Sized, side: Side, *, leg: Leg, reason: str, numbers_in: dict[str, str]
    ) -> CopyIntent | Skip:
        """An opening order of ``sized.size`` on ``side``, or the skip saying why not: delisted, a cap or
        the budget left no room, less than a lot, or below the $10 minimum at the price the venue will see."""
        if self.instrument.is_delisted:
            return self.skip(SkipReason.SKIP_DELISTED, numbers_in)
        limit = worst_price(self.instrument, self.mark, side, self.settings.slippage_cap_pct)
        check_px = min_value_price(self.settings, side, self.mark, limit)
        detail = numbers_in | numbers(
            requested=sized.requested,
            size=sized.size,
            value_usd=sized.size * check_px,
            minimum_usd=MIN_ORDER_VALUE,
            limited_by=sized.limited_by.value if sized.limited_by else None,
            room_usd=sized.room_usd,
        )
        if sized.size == 0 and sized.limited_by is not None:
            why = SkipReason.SKIP_BUDGET if sized.limited_by is Limit.BUDGET else SkipReason.SKIP_CAP
            return self.skip(why, detail)
        if sized.size == 0 and opens_enough(sized.requested, check_px):
            return self.skip(SkipReason.SKIP_ZERO_SIZE, detail)  # less than one lot, yet worth $10
        if not opens_enough(sized.size, check_px):
            return self.skip(SkipReason.SKIP_MIN_NOTIONAL, detail)
        return self.intent(side, sized.size, leg=leg, reduce_only=False, reason=reason)
