"""Start and end of a follow: joining the leader's existing positions, and what stopping does to ours."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from hyperfollow.copy.guards import adverse_drift_pct, resolve_cross, resolve_leverage
from hyperfollow.copy.model import (
    Decision,
    ExistingPositions,
    FollowSettings,
    SizingMode,
    Skip,
    SkipReason,
    StopAction,
    numbers,
)
from hyperfollow.copy.orders import OrderContext
from hyperfollow.copy.sizing import ZERO, equity_ratio, target_size
from hyperfollow.domain.model import Fill, Position, Side
from hyperfollow.domain.rules import Instrument


def renews_position(fill: Fill) -> bool:
    """True when a leader fill opened its position from flat, closed it, or turned it to the other side:
    whatever it holds in the coin afterwards no longer predates a follow."""
    start = fill.start_position
    end = start + fill.signed_size
    return start == 0 or end == 0 or end * start < 0


def existing_position_gate(
    leader_position: Position, *, mark: Decimal, settings: FollowSettings
) -> tuple[SkipReason, dict[str, str]] | None:
    """May we buy into a leader position that was open when the follow started? None: yes, join it now.

    The follow's ``existing_positions`` choice, shared by both modes (mirror joins once when the follow
    starts, delta sync at each round while the position lasts): IGNORE (or a flat leader) gives
    SKIP_PREEXISTING; JOIN gives SKIP_JOIN_GUARD, with the numbers, while the mark is more than
    ``join_price_guard_pct`` worse for us (reverse-aware) than the leader's entry.
    """
    if settings.existing_positions is ExistingPositions.IGNORE or leader_position.size == 0:
        return SkipReason.SKIP_PREEXISTING, {}
    sign = (1 if leader_position.size > 0 else -1) * (-1 if settings.reverse else 1)
    drift = adverse_drift_pct(Side.of(sign > 0), leader_position.entry_price, mark)
    if drift > settings.join_price_guard_pct:
        return SkipReason.SKIP_JOIN_GUARD, numbers(drift_pct=drift, guard_pct=settings.join_price_guard_pct)
    return None


def decide_join(
    leader_position: Position,
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
) -> Decision:
    """Our scaled share of a leader position that was open when the follow started.

    Nothing but a SKIP_PREEXISTING skip unless ``existing_positions`` is JOIN. Joining opens our side
    (reverse-aware) sized as if the leader had just opened its whole position, when the mark is no more
    than ``join_price_guard_pct`` worse for us than the leader's entry. Nothing is done when we already
    hold that side (joining twice must not double the position); the cloid derives from the leader's
    position (size, entry), so a restart re-derives it while the position is unchanged.
    """
    coin = instrument.coin
    ref = f"join:{coin}:{leader_position.size}:{leader_position.entry_price}"
    ctx = OrderContext(
        follower,
        leader,
        instrument,
        settings,
        mark,
        ref,
        resolve_leverage(settings, instrument, leader_position.leverage),
        resolve_cross(settings, instrument),
    )
    sign = (1 if leader_position.size > 0 else -1) * (-1 if settings.reverse else 1)
    base = numbers(
        leader_size=leader_position.size,
        leader_entry=leader_position.entry_price,
        mark=mark,
        follower_position=follower_position,
    )
    gate = existing_position_gate(leader_position, mark=mark, settings=settings)
    if gate is not None and gate[0] is SkipReason.SKIP_PREEXISTING:
        return [ctx.skip(SkipReason.SKIP_PREEXISTING, base)]
    if instrument.is_spot:
        return [ctx.skip(SkipReason.SKIP_SPOT, base)]
    if follower_position * sign > 0:
        return []
    out: Decision = []
    budget_used = budget_used_usd
    if follower_position != 0:  # we hold the other side: leave it first
        out.append(ctx.close_all(follower_position, leg="close", reason="join: leave the other side"))
        budget_used = max(ZERO, budget_used - abs(follower_position) * mark)
    side = Side.of(sign > 0)
    if gate is not None:
        out.append(ctx.skip(gate[0], base | gate[1]))
        return out
    ratio = equity_ratio(follower_equity, leader_equity)
    if settings.sizing is SizingMode.EQUITY_RATIO and ratio <= 0:
        out.append(ctx.skip(SkipReason.SKIP_NO_EQUITY, base))
        return out
    sized = target_size(
        abs(leader_position.size),
        price=mark,
        instrument=instrument,
        settings=settings,
        ratio=ratio,
        budget_used_usd=budget_used,
    )
    out.append(ctx.open_leg(sized, side, leg="open", reason="join the leader's position", numbers_in=base))
    return out


def decide_stop(
    positions: Mapping[str, Decimal],
    *,
    marks: Mapping[str, Decimal],
    instruments: Mapping[str, Instrument],
    settings: FollowSettings,
    follower: str,
    leader: str,
    stop_ref: str,
) -> Decision:
    """What stopping a follow does to our positions (signed sizes by coin, those copied from this leader).

    KEEP: nothing. CLOSE: a reduce-only close of each, whole. ``stop_ref`` names the stop (e.g. its time)
    and feeds the cloids, so retrying the same stop re-derives the same orders.
    """
    if settings.stop_action is StopAction.KEEP:
        return []
    out: Decision = []
    for coin in sorted(positions):
        size = positions[coin]
        if size == 0:
            continue
        ref = f"stop:{stop_ref}:{coin}"
        inst, mark = instruments.get(coin), marks.get(coin)
        if inst is None:
            out.append(Skip(follower, leader, coin, SkipReason.SKIP_UNKNOWN_COIN, numbers(size=size), ref))
            continue
        if mark is None or mark <= 0:
            out.append(Skip(follower, leader, coin, SkipReason.SKIP_NO_MARK, numbers(size=size), ref))
            continue
        ctx = OrderContext(follower, leader, inst, settings, mark, ref, 1, resolve_cross(settings, inst))
        out.append(ctx.close_all(size, leg="close", reason="follow stopped: close ours"))
    return out
