"""Start and end of a follow: joining the leader's existing positions, and what stopping does to ours.

Closing a follow closes its *share* of the venue's position. One account copying several leaders holds one
net position per coin at the venue; the per-follow ledgers attribute shares of it (follow A +1 ETH and
follow B -1 ETH: the venue holds nothing). ``plan_close`` decides, per coin, what is sent reduce-only (never
more than the net on the closing share's side) and which shares are settled between the ledgers without a
trade (``Settlement``: the offsetting parts, moved at the mark).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from hyperfollow.copy.guards import adverse_drift_pct, resolve_cross, resolve_leverage
from hyperfollow.copy.model import (
    CopyIntent,
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
from hyperfollow.domain.ids import cloid_for
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


@dataclass(frozen=True, slots=True)
class Settlement:
    """A follow's share moved without a trade: ``change`` (signed) added to the share of ``leader``'s copies
    in ``coin`` at ``price`` (the mark). ``counterparty`` is the leader whose opposite share took the other
    side of it (the two cancel out at the venue); None when no share did: the venue holds none of it."""

    follower: str
    leader: str
    coin: str
    change: Decimal
    price: Decimal
    counterparty: str | None
    ref: str


@dataclass(frozen=True, slots=True)
class ClosePlan:
    """What closing some follows' shares of one account does: reduce-only closes (by leader) and the
    settlements between ledgers."""

    closes: dict[str, Decision]
    settlements: list[Settlement]


SETTLEMENT_DIR = "Settlement"  # the direction of a settlement's book fill
_SETTLEMENT_HASH = "settle:"


def settlement_fill(settlement: Settlement, *, start: Decimal, index: int, now_ms: int) -> Fill:
    """The book entry of a settlement: a fill of ours at the mark with no venue trade behind it, so that the
    journal moves the leader's share (and realizes its PnL at the mark) as it does for a venue fill, and a
    restart loads the settled ledgers. ``start`` is the share before it; ``index`` its place in the plan."""
    s = settlement
    tag = cloid_for(s.follower, s.leader, s.ref, s.counterparty or "-", index)[2:]
    return Fill(
        address=s.follower.lower(),
        coin=s.coin,
        side=Side.of(s.change > 0),
        price=s.price,
        size=abs(s.change),
        time_ms=now_ms,
        start_position=start,
        direction=SETTLEMENT_DIR,
        closed_pnl=Decimal(0),
        fee=Decimal(0),
        oid=0,
        tid=None,
        hash=_SETTLEMENT_HASH + tag,
        crossed=False,
    )


def is_settlement(fill: Fill) -> bool:
    """True for a settlement's book entry (not a venue fill)."""
    return fill.hash.startswith(_SETTLEMENT_HASH) and fill.direction == SETTLEMENT_DIR


def _sign(x: Decimal) -> int:
    return (x > 0) - (x < 0)


def against_net(intents: Sequence[CopyIntent], net: Callable[[str], Decimal]) -> list[CopyIntent]:
    """``intents`` as the account's net position lets them go, in order (``net(coin)``: the follower's
    position summed over every follow, what the venue holds).

    One account holds every follow's share netted: beside an opposite share, closing ours moves the net
    *towards the other share*, past what the venue holds on our side, which a reduce-only order may not do
    ("Reduce only order would increase position"). Such a close goes as a plain order of the same size (the
    share it closes is still exactly ours); a close the net covers stays reduce-only.
    """
    nets: dict[str, Decimal] = {}
    out: list[CopyIntent] = []
    for intent in intents:
        held = nets[intent.coin] if intent.coin in nets else net(intent.coin)
        on_our_side = held if intent.side is Side.SELL else -held
        if intent.reduce_only and on_our_side < intent.size:
            intent = replace(intent, reduce_only=False)
        nets[intent.coin] = held + (intent.size if intent.side is Side.BUY else -intent.size)
        out.append(intent)
    return out


def net_to_close(shares: Mapping[str, Decimal], venue_position: Decimal) -> Decimal:
    """The part of the venue's position (signed) that our shares account for: their sum, never beyond what
    the venue holds on that side (a foreign position is not ours to close; a gap the venue no longer holds
    cannot be closed there)."""
    ours = sum(shares.values(), Decimal(0))
    if _sign(ours) != _sign(venue_position):
        return Decimal(0)
    return ours if abs(ours) <= abs(venue_position) else venue_position


def plan_close(
    positions: Mapping[str, Mapping[str, Decimal]],
    *,
    closing: Collection[str],
    venue_positions: Mapping[str, Decimal],
    marks: Mapping[str, Decimal],
    instruments: Mapping[str, Instrument],
    settings: Mapping[str, FollowSettings],
    follower: str,
    stop_ref: str,
) -> ClosePlan:
    """Close the shares of the ``closing`` leaders' follows (``positions``: coin -> leader -> signed share,
    for every leader the follower's ledger holds; ``settings`` for each closing leader).

    Per coin, with ``net`` the venue position our shares account for (``net_to_close``), each closing share
    (those on the net's side first, largest first, so one order usually closes the net):

    * the part the net still holds on its side, min(|share|, net), is closed reduce-only, and leaves the net;
    * the rest is offset against shares on the other side (the closing ones first): both move towards zero
      by the same size at the mark, recorded as a pair of ``Settlement``; nothing is sent for it;
    * what no share offsets (the venue holds less than the ledgers say) is settled alone at the mark.

    So closing A (+1) beside B (-1) on a flat account sends nothing and settles both; closing everything
    sends at most the net per coin and leaves every ledger flat. ``stop_ref`` feeds the cloids. A coin without
    an instrument or a mark is skipped (nothing can be priced), with its numbers.
    """
    plan = ClosePlan({}, [])
    for coin in sorted(positions):
        shares = {leader: size for leader, size in positions[coin].items() if size != 0}
        mine = sorted(leader for leader in closing if shares.get(leader))
        if not mine:
            continue
        ref = f"stop:{stop_ref}:{coin}"
        inst, mark = instruments.get(coin), marks.get(coin)
        if inst is None or mark is None or mark <= 0:
            why = SkipReason.SKIP_UNKNOWN_COIN if inst is None else SkipReason.SKIP_NO_MARK
            for leader in mine:
                skip = Skip(follower, leader, coin, why, numbers(size=shares[leader], mark=mark), ref)
                plan.closes.setdefault(leader, []).append(skip)
            continue
        net = net_to_close(shares, venue_positions.get(coin, Decimal(0)))
        mine.sort(key=lambda leader: (_sign(shares[leader]) != _sign(net), -abs(shares[leader])))
        for leader in mine:
            ctx = OrderContext(follower, leader, inst, settings[leader], mark, ref, 1,
                               resolve_cross(settings[leader], inst))  # fmt: skip
            net = _close_share(plan, ctx, shares, net, closing)
    return plan


def _close_share(
    plan: ClosePlan, ctx: OrderContext, shares: dict[str, Decimal], net: Decimal, closing: Collection[str]
) -> Decimal:
    """Close ``ctx.leader``'s share: reduce-only up to the net on its side, the rest settled (``shares`` is
    updated). Returns the net left."""
    share = shares[ctx.leader]
    side = _sign(share)
    size = min(abs(share), max(Decimal(0), net * side))
    if size > 0:
        why = (
            "follow stopped: close ours"
            if size == abs(share)
            else "follow stopped: close our part of the net"
        )
        intent = ctx.intent(Side.of(share < 0), size, leg="close", reduce_only=True, reason=why)
        plan.closes.setdefault(ctx.leader, []).append(intent)
        net -= size * side
        share -= size * side
    plan.settlements.extend(
        _offset(shares, ctx.leader, share, closing, ctx.follower, ctx.instrument.coin, ctx.mark, ctx.ref)
    )
    return net


def _offset(
    shares: dict[str, Decimal],
    leader: str,
    rest: Decimal,
    closing: Collection[str],
    follower: str,
    coin: str,
    mark: Decimal,
    ref: str,
) -> list[Settlement]:
    """Settle ``rest`` (signed) of ``leader``'s share against the opposite shares in ``shares`` (updated)."""
    out: list[Settlement] = []
    shares[leader] = Decimal(0)
    side = _sign(rest)
    others = sorted(
        (k for k, v in shares.items() if k != leader and _sign(v) == -side),
        key=lambda k: (k not in closing, -abs(shares[k]), k),
    )
    for other in others:
        if rest == 0:
            break
        size = min(abs(rest), abs(shares[other]))
        out.append(Settlement(follower, leader, coin, -size * side, mark, other, ref))
        out.append(Settlement(follower, other, coin, size * side, mark, leader, ref))
        shares[other] += size * side
        rest -= size * side
    if rest != 0:
        out.append(Settlement(follower, leader, coin, -rest, mark, None, ref))
    return out
