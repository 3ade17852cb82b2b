"""Mirror mode: one leader fill in, the follower's intents (and skips) out. Pure: no I/O, no clock.

The leader's ``dir`` is honoured exactly:

* **Open Long / Open Short**: open (or add to) our position on that side, sized by the follow's sizing
  mode and caps; the $10 minimum, the drift guard and the toggles (adds, opens only) apply. If we hold the
  other side (we were out of step), ours is closed first, reduce-only.
* **Close Long / Close Short**: close the same fraction of our position as the leader closed of theirs
  (all of it when they went flat), reduce-only, rounded down, never more than we hold; no minimum.
* **Long > Short / Short > Long** (a flip): close our whole position first (reduce-only), then open the
  other side sized from the part of the leader's fill beyond its close.

Reverse mode copies ``fills.reversed_fill(fill)``: every signal inverted. Spot fills are not copied.

``follower_position`` is our signed position in the coin that belongs to this follow: the live position
plus what is in flight, when the follower copies one leader per coin (the service keeps it per leader
otherwise). ``budget_used_usd`` is the notional this follow already holds, at the mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hyperfollow.copy.fills import Action, Direction, parse_direction, reversed_fill
from hyperfollow.copy.guards import adverse_drift_pct, resolve_cross, resolve_leverage
from hyperfollow.copy.model import CopyIntent, Decision, FollowSettings, SizingMode, Skip, SkipReason, numbers
from hyperfollow.copy.orders import OrderContext
from hyperfollow.copy.sizing import ZERO, close_size, equity_ratio, target_size
from hyperfollow.domain.model import Fill, Side
from hyperfollow.domain.rules import Instrument


def decide_mirror(
    fill: Fill,
    *,
    leader_equity: Decimal,
    follower_equity: Decimal,
    follower_position: Decimal,
    mark: Decimal,
    instrument: Instrument,
    settings: FollowSettings,
    follower: str,
    leader: str,
    budget_used_usd: Decimal = ZERO,
    preexisting: bool = False,
    leader_leverage: int | None = None,
) -> Decision:
    """The follower's intents and skips for one leader fill (see the module docstring).

    ``preexisting``: the leader's position in this coin predates the follow and was not joined. Its adds
    are skipped and its closes find nothing of ours (SKIP_PREEXISTING); a flip's new side is a fresh
    position and is copied. An open from flat is never preexisting. ``leader_leverage`` feeds the
    FOLLOW and CAP leverage modes when known. ``mark`` must be positive.
    """
    if fill.coin != instrument.coin:
        raise ValueError(f"fill of {fill.coin} decided with the instrument of {instrument.coin}")
    if mark <= 0:
        raise ValueError(f"mark must be positive, got {mark}")
    ref = fill.ref
    ctx = OrderContext(
        follower=follower,
        leader=leader,
        instrument=instrument,
        settings=settings,
        mark=mark,
        ref=ref,
        leverage=resolve_leverage(settings, instrument, leader_leverage),
        is_cross=resolve_cross(settings, instrument),
    )
    seen = reversed_fill(fill) if settings.reverse else fill
    direction = parse_direction(seen.direction)
    base = numbers(
        leader_dir=fill.direction,
        leader_size=fill.size,
        leader_start=fill.start_position,
        leader_price=fill.price,
        mark=mark,
        follower_position=follower_position,
    )
    if direction.action is Action.SPOT or instrument.is_spot:
        return [ctx.skip(SkipReason.SKIP_SPOT, base)]
    if direction.action is Action.UNKNOWN:
        return [ctx.skip(SkipReason.SKIP_UNKNOWN_DIR, base)]
    start = seen.start_position
    if seen.side is not direction.order_side or start * direction.sign < 0:
        return [ctx.skip(SkipReason.SKIP_BAD_FILL, base)]
    ratio = equity_ratio(follower_equity, leader_equity)
    args = _Args(ctx, seen, direction, ratio, follower_position, budget_used_usd, preexisting, base)
    if direction.action is Action.OPEN:
        return _on_open(args)
    if start == 0:  # a close or a flip from flat contradicts itself
        return [ctx.skip(SkipReason.SKIP_BAD_FILL, base)]
    if direction.action is Action.CLOSE or seen.size <= abs(start):
        return _on_close(args)
    return _on_flip(args)


@dataclass(frozen=True, slots=True)
class _Args:
    ctx: OrderContext
    fill: Fill  # as seen: reversed in reverse mode
    direction: Direction
    ratio: Decimal
    position: Decimal
    budget_used_usd: Decimal
    preexisting: bool
    base: dict[str, str]

    def open(
        self,
        leader_size: Decimal,
        sign: int,
        held: Decimal,
        budget_used: Decimal,
        why: str,
        info: dict[str, str],
    ) -> CopyIntent | Skip:
        """Our opening leg on side ``sign`` for a leader opening ``leader_size`` (``held``: ours already on
        that side)."""
        ctx = self.ctx
        if ctx.settings.sizing is SizingMode.EQUITY_RATIO and self.ratio <= 0:
            return ctx.skip(SkipReason.SKIP_NO_EQUITY, info)
        sized = target_size(
            leader_size,
            price=ctx.mark,
            instrument=ctx.instrument,
            settings=ctx.settings,
            ratio=self.ratio,
            position_usd=held * ctx.mark,
            budget_used_usd=budget_used,
        )
        return ctx.open_leg(sized, Side.of(sign > 0), leg="open", reason=why, numbers_in=info)

    def drift_skip(self, side: Side) -> Skip | None:
        drift = adverse_drift_pct(side, self.fill.price, self.ctx.mark)
        if drift > self.ctx.settings.drift_guard_pct:
            detail = self.base | numbers(drift_pct=drift, guard_pct=self.ctx.settings.drift_guard_pct)
            return self.ctx.skip(SkipReason.SKIP_DRIFT, detail)
        return None


def _on_open(a: _Args) -> Decision:
    ctx, settings, sign = a.ctx, a.ctx.settings, a.direction.sign
    is_add = a.fill.start_position != 0
    if is_add and a.preexisting:
        return [ctx.skip(SkipReason.SKIP_PREEXISTING, a.base)]
    if is_add and not settings.follow_adds:
        return [ctx.skip(SkipReason.SKIP_ADDS_OFF, a.base)]
    out: Decision = []
    held = a.position * sign  # > 0: we hold this side; < 0: the other side
    budget_used = a.budget_used_usd
    if held < 0:  # out of step with the leader: leave the other side first
        if settings.opens_only:
            detail = a.base | {"note": "we hold the other side and exits are not copied"}
            return [ctx.skip(SkipReason.SKIP_OPENS_ONLY, detail)]
        out.append(ctx.close_all(a.position, leg="close", reason=f"realign before {a.fill.direction}"))
        budget_used = max(ZERO, budget_used - abs(a.position) * ctx.mark)
        held = ZERO
    drift = a.drift_skip(Side.of(sign > 0))
    if drift is not None:
        out.append(drift)
        return out
    verb = "add to" if is_add else "open"
    why = f"leader {a.fill.direction}: {verb} ours"
    out.append(a.open(a.fill.size, sign, held, budget_used, why, a.base))
    return out


def _on_close(a: _Args) -> Decision:
    ctx, settings, sign = a.ctx, a.ctx.settings, a.direction.sign
    start = abs(a.fill.start_position)
    full = a.fill.size >= start
    if settings.opens_only:
        return [ctx.skip(SkipReason.SKIP_OPENS_ONLY, a.base)]
    if not full and not settings.follow_reduces:
        return [ctx.skip(SkipReason.SKIP_REDUCES_OFF, a.base)]
    ours = a.position * sign
    if ours <= 0:
        reason = SkipReason.SKIP_PREEXISTING if a.preexisting else SkipReason.SKIP_NO_POSITION
        return [ctx.skip(reason, a.base)]
    size = close_size(ours, a.fill.size, start, ctx.instrument)
    if size == 0:
        return [ctx.skip(SkipReason.SKIP_ZERO_SIZE, a.base | numbers(fraction=a.fill.size / start))]
    what = "close ours" if size == ours else f"close {a.fill.size / start:.4f} of ours"
    return [
        ctx.intent(Side.of(sign < 0), size, leg="close", reduce_only=True, reason=f"leader closed: {what}")
    ]


def _on_flip(a: _Args) -> Decision:
    ctx, settings, old = a.ctx, a.ctx.settings, a.direction.sign
    beyond = a.fill.size - abs(a.fill.start_position)  # the part of the fill that opened the other side
    out: Decision = []
    ours = a.position * old
    budget_used = a.budget_used_usd
    if ours > 0 and settings.opens_only:  # no close, and an open now would only net against ours
        detail = a.base | {"note": "we still hold the side the leader left"}
        return [ctx.skip(SkipReason.SKIP_OPENS_ONLY, detail)]
    if ours > 0:
        why = f"leader {a.fill.direction}: close ours first"
        out.append(ctx.close_all(a.position, leg="close", reason=why))
        budget_used = max(ZERO, budget_used - ours * ctx.mark)
    else:
        reason = SkipReason.SKIP_PREEXISTING if a.preexisting else SkipReason.SKIP_NO_POSITION
        out.append(ctx.skip(reason, a.base))
    drift = a.drift_skip(Side.of(old < 0))
    if drift is not None:
        out.append(drift)
        return out
    held_new = max(ZERO, -a.position * old)  # we were already on the new side (out of step)
    why = f"leader {a.fill.direction}: open the other side"
    out.append(a.open(beyond, -old, held_new, budget_used, why, a.base | numbers(leader_beyond=beyond)))
    return out
