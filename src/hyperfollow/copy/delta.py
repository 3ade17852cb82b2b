"""Delta sync: on a schedule, bring the follower's per-coin allocation back to the leader's. Pure.

For each coin either account holds, the target is the leader's position scaled by the sizing mode
(equity ratio: the same allocation, notional / equity; reverse-aware) and the copy ratio. The difference
is traded when it is worth more than ``delta_band_pct`` of the follower's equity, at most once per
``delta_cooldown_secs`` per coin. Increases respect the $10 minimum and the caps; reductions are
reduce-only, rounded down. When the leader is flat in a coin our position there is closed whole,
whatever the band and the cooldown (an exit is not churn). Nothing is traded on a stale leader snapshot.

The targets together are bounded by the follow's exposure bound (``exposure_bound_usd``: our equity x the
copy ratio x the leverage cap), scaled down by one factor when they exceed it (``bound_targets``), and each
increase is capped by the room left under that bound, so a leader on high leverage, with no budget set,
cannot lever the follower beyond what its settings allow. A leader position that predates the follow is
bought into only as the follow's ``existing_positions`` says (``lifecycle.existing_position_gate``, the same
rule mirror mode joins by).

Intents come out reductions first (they free margin and budget), then increases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from hyperfollow.copy.guards import HUNDRED, resolve_cross, resolve_leverage
from hyperfollow.copy.lifecycle import existing_position_gate
from hyperfollow.copy.model import (
    CopyIntent,
    Decision,
    FollowSettings,
    Leg,
    SizingMode,
    Skip,
    SkipReason,
    numbers,
)
from hyperfollow.copy.orders import OrderContext
from hyperfollow.copy.sizing import ZERO, cap_size, equity_ratio, requested_size
from hyperfollow.domain.model import AccountSnapshot, Position, Side
from hyperfollow.domain.rules import Instrument, Rounding, quantize_size

ALL_COINS = "*"


@dataclass(frozen=True, slots=True)
class _Coin:
    ctx: OrderContext
    ours: Decimal  # signed
    target: Decimal  # signed, before lots
    leader_size: Decimal
    info: dict[str, str]
    note: str = ""  # appended to the intents' reasons (the bound's scaling)


def target_position(
    leader_size: Decimal,
    *,
    mark: Decimal,
    settings: FollowSettings,
    ratio: Decimal,
) -> Decimal:
    """Our signed target in a coin where the leader holds ``leader_size`` (signed), before lots and caps."""
    if leader_size == 0:
        return ZERO
    size = requested_size(abs(leader_size), price=mark, settings=settings, ratio=ratio)
    sign = (1 if leader_size > 0 else -1) * (-1 if settings.reverse else 1)
    return size * sign


def exposure_bound_usd(follower_equity: Decimal, settings: FollowSettings) -> Decimal:
    """The most notional (at the marks) a delta follow may hold: our equity x ``copy_ratio`` (the follow's
    share of our capital) x ``leverage`` (its leverage cap, 3x by default; in every leverage mode the most
    gross leverage its share may reach)."""
    return max(ZERO, follower_equity) * settings.copy_ratio * settings.leverage


@dataclass(frozen=True, slots=True)
class BoundTargets:
    """Targets after the exposure bound: signed sizes by coin, and the numbers behind them."""

    targets: dict[str, Decimal]
    exposure_usd: Decimal  # the targets' notional before the bound
    bound_usd: Decimal
    scale: Decimal  # 1 when the targets were within the bound

    @property
    def binding(self) -> bool:
        return self.scale < 1

    def numbers(self) -> dict[str, str]:
        """Skip detail: the bound, the targets' notional before it and the factor applied."""
        return numbers(bound_usd=self.bound_usd, exposure_usd=self.exposure_usd, scale=self.scale)


def bound_targets(
    targets: Mapping[str, Decimal], marks: Mapping[str, Decimal], bound_usd: Decimal
) -> BoundTargets:
    """Scale every target (signed size by coin) by one factor when their notional at ``marks`` exceeds
    ``bound_usd``, so that it equals the bound.

    Proportional scaling keeps the leader's allocation: the same coins, sides and weights, as the leader's
    book would be at a lower leverage. Filling coins one by one up to the bound would instead favour
    whichever coins come first and drop the rest, a book the leader does not hold.
    """
    exposure = sum((abs(size) * marks[coin] for coin, size in targets.items()), ZERO)
    if exposure <= bound_usd:
        return BoundTargets(dict(targets), exposure, bound_usd, Decimal(1))
    scale = max(ZERO, bound_usd) / exposure
    return BoundTargets({c: s * scale for c, s in targets.items()}, exposure, bound_usd, scale)


def allocation_gap_pct(ours: Decimal, target: Decimal, mark: Decimal, follower_equity: Decimal) -> Decimal:
    """How far our allocation is from the target, in % of our equity."""
    return abs(target - ours) * mark / follower_equity * HUNDRED


def decide_delta(
    leader_snapshot: AccountSnapshot,
    follower_snapshot: AccountSnapshot,
    *,
    marks: Mapping[str, Decimal],
    instruments: Mapping[str, Instrument],
    last_adjust_ms: Mapping[str, int],
    now_ms: int,
    settings: FollowSettings,
    leader_snapshot_age_ms: int,
    max_snapshot_age_ms: int,
    follower: str | None = None,
    leader: str | None = None,
    follower_positions: Mapping[str, Decimal] | None = None,
    budget_used_usd: Decimal | None = None,
    preexisting: Mapping[str, int] | None = None,
) -> Decision:
    """One delta-sync round for one follow (see the module docstring).

    ``follower`` / ``leader`` default to the snapshots' addresses. ``follower_positions`` (signed, by coin)
    replaces the follower snapshot's positions when the follower copies several leaders and keeps each
    one's share; ``budget_used_usd`` defaults to those positions' notional at the marks. The cloids derive
    from the leader snapshot's time and the coin: the same snapshot decided twice gives the same orders.

    ``preexisting``: coins where the leader held a position when the follow started, with its side then
    (1 long, -1 short). While the leader still holds that side and we hold nothing there, the coin goes
    through ``existing_position_gate``: skipped (and left out of the exposure bound) unless it may be joined.
    """
    follower = follower if follower is not None else follower_snapshot.address
    leader = leader if leader is not None else leader_snapshot.address
    if leader_snapshot_age_ms > max_snapshot_age_ms:
        detail = numbers(age_ms=leader_snapshot_age_ms, max_age_ms=max_snapshot_age_ms)
        return [
            Skip(follower, leader, ALL_COINS, SkipReason.SKIP_STALE_LEADER, detail, _ref(leader_snapshot))
        ]
    if leader_snapshot.equity <= 0 or follower_snapshot.equity <= 0:
        detail = numbers(leader_equity=leader_snapshot.equity, follower_equity=follower_snapshot.equity)
        return [Skip(follower, leader, ALL_COINS, SkipReason.SKIP_NO_EQUITY, detail, _ref(leader_snapshot))]
    ours_by_coin = (
        dict(follower_positions)
        if follower_positions is not None
        else {p.coin: p.size for p in follower_snapshot.positions}
    )
    if budget_used_usd is None:
        budget_used_usd = sum((abs(s) * marks.get(c, ZERO) for c, s in ours_by_coin.items()), ZERO)
    plan = _Round(
        follower=follower,
        leader=leader,
        settings=settings,
        ratio=equity_ratio(follower_snapshot.equity, leader_snapshot.equity),
        follower_equity=follower_snapshot.equity,
        cooldown_ms=int(settings.delta_cooldown_secs * 1000),
        budget_used_usd=budget_used_usd,
        bound_usd=exposure_bound_usd(follower_snapshot.equity, settings),
    )
    theirs = {p.coin: p for p in leader_snapshot.positions}
    coins = sorted(c for c in set(ours_by_coin) | set(theirs) if ours_by_coin.get(c) or _size(theirs, c))
    pre = preexisting or {}
    tradable: list[_Tradable] = []
    for coin in coins:
        t = _tradable(plan, coin, _ref(leader_snapshot), ours_by_coin, theirs, instruments, marks, pre)
        if t is not None:
            tradable.append(t)
    bounded = bound_targets({t.inst.coin: t.target for t in tradable}, marks, plan.bound_usd)
    extra = bounded.numbers() if bounded.binding else {}
    for t in tradable:
        since = _since(now_ms, last_adjust_ms.get(t.inst.coin))
        plan.coin(t.inst, t.mark, t.ref, t.ours, t.position, t.info | extra, since,
                  target=bounded.targets[t.inst.coin], scale=bounded.scale)  # fmt: skip
    return plan.finish()


@dataclass(frozen=True, slots=True)
class _Tradable:
    """A coin this round may trade, with its unbounded target (signed)."""

    ref: str
    inst: Instrument
    mark: Decimal
    ours: Decimal
    position: Position | None
    info: dict[str, str]
    target: Decimal


def _tradable(
    plan: _Round,
    coin: str,
    snapshot_ref: str,
    ours_by_coin: Mapping[str, Decimal],
    theirs: Mapping[str, Position],
    instruments: Mapping[str, Instrument],
    marks: Mapping[str, Decimal],
    preexisting: Mapping[str, int],
) -> _Tradable | None:
    """The coin with its target, or None after adding the skip that says why it is not traded."""
    ref = f"{snapshot_ref}:{coin}"
    inst, mark = instruments.get(coin), marks.get(coin)
    ours, position = ours_by_coin.get(coin, ZERO), theirs.get(coin)
    info = numbers(leader_size=_size(theirs, coin), follower_position=ours, mark=mark)
    why: tuple[SkipReason, dict[str, str]]
    if inst is None or inst.is_spot:
        why = (SkipReason.SKIP_UNKNOWN_COIN if inst is None else SkipReason.SKIP_SPOT), {}
    elif mark is None or mark <= 0:
        why = SkipReason.SKIP_NO_MARK, {}
    else:
        gate = _preexisting_gate(position, ours, mark, plan.settings, preexisting)
        if gate is None:
            leader_size = position.size if position is not None else ZERO
            target = target_position(leader_size, mark=mark, settings=plan.settings, ratio=plan.ratio)
            return _Tradable(ref, inst, mark, ours, position, info, target)
        why = gate
    plan.first.append(Skip(plan.follower, plan.leader, coin, why[0], info | why[1], ref))
    return None


def _preexisting_gate(
    position: Position | None,
    ours: Decimal,
    mark: Decimal,
    settings: FollowSettings,
    preexisting: Mapping[str, int],
) -> tuple[SkipReason, dict[str, str]] | None:
    """The existing-positions rule for a coin whose leader position predates the follow and is unchanged
    in side, while we hold nothing there; None otherwise (a fresh position, or ours to adjust)."""
    if position is None or position.size == 0 or ours != 0:
        return None
    side = preexisting.get(position.coin)
    if side is None or side != (1 if position.size > 0 else -1):
        return None
    return existing_position_gate(position, mark=mark, settings=settings)


@dataclass(slots=True)
class _Round:
    """One delta round in the making: reductions go first, increases wait for the budget they free."""

    follower: str
    leader: str
    settings: FollowSettings
    ratio: Decimal
    follower_equity: Decimal
    cooldown_ms: int
    budget_used_usd: Decimal
    bound_usd: Decimal
    first: Decision = field(default_factory=list)
    later: list[_Coin] = field(default_factory=list)

    def coin(
        self,
        inst: Instrument,
        mark: Decimal,
        ref: str,
        ours: Decimal,
        position: Position | None,
        info: dict[str, str],
        since_ms: int | None,
        *,
        target: Decimal,
        scale: Decimal,
    ) -> None:
        """Plan one coin towards ``target`` (signed, after the exposure bound, which scaled it by ``scale``):
        ``since_ms`` is the time since our last adjustment of it (None: never)."""
        settings = self.settings
        lev = resolve_leverage(settings, inst, position.leverage if position else None)
        ctx = OrderContext(
            self.follower, self.leader, inst, settings, mark, ref, lev, resolve_cross(settings, inst)
        )
        leader_size = position.size if position is not None else ZERO
        gap = allocation_gap_pct(ours, target, mark, self.follower_equity)
        note = (
            f" (scaled x{scale:.4f} to the follow's ${self.bound_usd:.2f} exposure bound)"
            if scale < 1
            else ""
        )
        c = _Coin(ctx, ours, target, leader_size, info | numbers(target=target, gap_pct=gap), note)
        if leader_size == 0:  # the leader left the coin: so do we, band and cooldown notwithstanding
            self._close_all(c)
        elif gap <= settings.delta_band_pct:
            self.first.append(
                ctx.skip(SkipReason.SKIP_IN_BAND, c.info | numbers(band_pct=settings.delta_band_pct))
            )
        elif since_ms is not None and since_ms < self.cooldown_ms:
            detail = c.info | numbers(since_ms=since_ms, cooldown_ms=self.cooldown_ms)
            self.first.append(ctx.skip(SkipReason.SKIP_COOLDOWN, detail))
        elif ours != 0 and (ours > 0) != (target > 0):  # the leader is on the other side now
            if self._close_all(c):
                self.later.append(_Coin(ctx, ZERO, target, leader_size, c.info, c.note))
        elif abs(target) < abs(ours):
            step = _reduce(c)
            if isinstance(step, CopyIntent):
                self.budget_used_usd = max(ZERO, self.budget_used_usd - step.size * mark)
            self.first.append(step)
        else:
            self.later.append(c)

    def _close_all(self, c: _Coin) -> bool:
        ctx = c.ctx
        if ctx.settings.opens_only:
            self.first.append(ctx.skip(SkipReason.SKIP_OPENS_ONLY, c.info))
            return False
        why = "leader left the coin: close ours" if c.leader_size == 0 else "leader changed side: close ours"
        self.first.append(ctx.close_all(c.ours, leg="close", reason=why))
        self.budget_used_usd = max(ZERO, self.budget_used_usd - abs(c.ours) * ctx.mark)
        return True

    def finish(self) -> Decision:
        out = list(self.first)
        for c in self.later:
            step = _increase(c, self.settings, self.ratio, self.budget_used_usd, self.bound_usd)
            if not isinstance(step, Skip):
                self.budget_used_usd += step.size * c.ctx.mark
            out.append(step)
        return out


def _since(now_ms: int, last_ms: int | None) -> int | None:
    return None if last_ms is None else now_ms - last_ms


def _ref(snapshot: AccountSnapshot) -> str:
    return f"delta:{snapshot.time_ms}"


def _size(positions: Mapping[str, Position], coin: str) -> Decimal:
    p = positions.get(coin)
    return p.size if p is not None else ZERO


def _reduce(c: _Coin) -> CopyIntent | Skip:
    ctx, settings = c.ctx, c.ctx.settings
    if settings.opens_only:
        return ctx.skip(SkipReason.SKIP_OPENS_ONLY, c.info)
    if not settings.follow_reduces:
        return ctx.skip(SkipReason.SKIP_REDUCES_OFF, c.info)
    size = min(abs(c.ours), quantize_size(ctx.instrument, abs(c.ours) - abs(c.target), Rounding.DOWN))
    if size == 0:
        return ctx.skip(SkipReason.SKIP_ZERO_SIZE, c.info)
    reason = "reduce to the leader's allocation" + c.note
    return ctx.intent(Side.of(c.ours < 0), size, leg="adjust", reduce_only=True, reason=reason)


def _increase(
    c: _Coin, settings: FollowSettings, ratio: Decimal, budget_used_usd: Decimal, bound_usd: Decimal
) -> CopyIntent | Skip:
    ctx = c.ctx
    if c.ours != 0 and not settings.follow_adds:
        return ctx.skip(SkipReason.SKIP_ADDS_OFF, c.info)
    if settings.sizing is SizingMode.EQUITY_RATIO and ratio <= 0:
        return ctx.skip(SkipReason.SKIP_NO_EQUITY, c.info)
    sized = cap_size(
        abs(c.target) - abs(c.ours),
        price=ctx.mark,
        instrument=ctx.instrument,
        settings=settings,
        position_usd=abs(c.ours) * ctx.mark,
        budget_used_usd=budget_used_usd,
        exposure_bound_usd=bound_usd,
    )
    leg: Leg = "adjust" if c.ours != 0 else "open"
    reason = "increase to the leader's allocation" if c.ours != 0 else "open the leader's allocation"
    reason += c.note
    return ctx.open_leg(sized, Side.of(c.target > 0), leg=leg, reason=reason, numbers_in=c.info)
