"""Exit policies: one value object per position and one pure evaluation (no I/O, no clock reads).

Conventions (they hold for every function here):

* ``size`` is signed as in :class:`hyperfollow.domain.model.Position`: > 0 long, < 0 short.
* **ROE %** = price move % x leverage, signed in our favour: ``(mark - entry) / entry * 100 * leverage``
  for a long, the negative of that for a short. A 5 % move against a 3x long is -15 % ROE.
* Percentages are **positive magnitudes**: ``stop_loss_roe_pct=15`` means "close at -15 % ROE",
  ``trailing_retrace_pct=8`` means "close 8 % below the best price (above, for a short)".
* A stop fires when the mark reaches it (long: ``mark <= stop``; short: ``mark >= stop``); a take-profit
  tier fires when ``ROE >= trigger``; a time stop when ``now_ms - entry_time_ms >= max_holding_ms``.
* Every :class:`ExitAction` is reduce-only and carries an :class:`ExitReason`. Sizes are exact Decimals
  (the shell quantizes them through ``domain.rules``); a full close is always the whole position.

A full close is returned again on every evaluation while its condition holds: the exactly-once close
(lock per account and coin; closing a flat position is a success) turns repeats into one order. A
take-profit tier, by contrast, is recorded in the state and never fires twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise

from hyperfollow.domain.model import Side

HUNDRED = Decimal(100)
ZERO = Decimal(0)
ONE = Decimal(1)


class ExitReason(StrEnum):
    """Why a position (or part of it) was closed; on every close."""

    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"
    TRAILING_STOP = "trailing_stop"
    TIME_STOP = "time_stop"
    BREAK_EVEN_STOP = "break_even_stop"
    LIQUIDATION_RISK = "liquidation_risk"  # too close to the liquidation price (policy buffer)
    LEADER_CLOSED = "leader_closed"
    LEADER_LIQUIDATED = "leader_liquidated"
    CIRCUIT_BREAKER = "circuit_breaker"
    KILL_SWITCH = "kill_switch"
    RECONCILIATION = "reconciliation"  # flat sweep / orphan cleanup
    MANUAL = "manual"


def _check_pct(name: str, value: Decimal | None, *, low: Decimal = ZERO, high: Decimal | None = None) -> None:
    if value is None:
        return
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"{name} must be a finite Decimal, got {value!r}")
    if value <= low or (high is not None and value >= high):
        bound = f"in ({low}, {high})" if high is not None else f"> {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")


@dataclass(frozen=True, slots=True)
class TakeProfitTier:
    """Close ``close_fraction`` (0 < f <= 1) of the position open when ROE reaches ``trigger_roe_pct``."""

    trigger_roe_pct: Decimal
    close_fraction: Decimal

    def __post_init__(self) -> None:
        _check_pct("trigger_roe_pct", self.trigger_roe_pct)
        _check_pct("close_fraction", self.close_fraction)
        if self.close_fraction > ONE:
            raise ValueError(f"close_fraction must be <= 1, got {self.close_fraction}")


@dataclass(frozen=True, slots=True)
class ExitPolicy:
    """How one position is exited. Defaults (issue 5): hard stop at -15 % ROE, no take-profit tiers,
    trailing off, time stop off, no break-even move, no liquidation buffer.

    * ``stop_loss_roe_pct`` / ``stop_loss_price_pct``: the hard stop, by ROE or by price move; when both are
      set the tighter applies; both ``None`` means no hard stop.
    * ``take_profit_tiers``: strictly increasing triggers; each tier fires once and closes its fraction of
      the position open at that moment (``1`` closes the rest).
    * ``trailing_retrace_pct``: trailing stop distance from the watermark (best price since activation);
      ``trailing_activation_pct``: favourable price move from entry that activates it (0 = at once).
    * ``max_holding_ms``: time stop. ``break_even_after_tier`` (1-based): once that tier fired, the stop
      moves to entry (+ ``break_even_offset_pct`` in our favour, to cover fees).
    * ``liquidation_buffer_pct``: close when the mark is within this % of the liquidation price.
    """

    stop_loss_roe_pct: Decimal | None = Decimal(15)
    stop_loss_price_pct: Decimal | None = None
    take_profit_tiers: tuple[TakeProfitTier, ...] = ()
    trailing_activation_pct: Decimal = ZERO
    trailing_retrace_pct: Decimal | None = None
    max_holding_ms: int | None = None
    break_even_after_tier: int | None = None
    break_even_offset_pct: Decimal = ZERO
    liquidation_buffer_pct: Decimal | None = None

    def __post_init__(self) -> None:
        _check_pct("stop_loss_roe_pct", self.stop_loss_roe_pct)
        _check_pct("stop_loss_price_pct", self.stop_loss_price_pct, high=HUNDRED)
        _check_pct("trailing_retrace_pct", self.trailing_retrace_pct, high=HUNDRED)
        _check_pct("trailing_activation_pct", self.trailing_activation_pct, low=Decimal(-1))
        _check_pct("break_even_offset_pct", self.break_even_offset_pct, low=Decimal(-1), high=HUNDRED)
        _check_pct("liquidation_buffer_pct", self.liquidation_buffer_pct, high=HUNDRED)
        if self.max_holding_ms is not None and self.max_holding_ms <= 0:
            raise ValueError(f"max_holding_ms must be > 0, got {self.max_holding_ms}")
        triggers = [t.trigger_roe_pct for t in self.take_profit_tiers]
        if any(b <= a for a, b in pairwise(triggers)):
            raise ValueError(f"take-profit triggers must be strictly increasing, got {triggers}")
        if self.break_even_after_tier is not None and not 1 <= self.break_even_after_tier <= len(triggers):
            raise ValueError(f"break_even_after_tier must name a tier (1..{len(triggers)})")

    @property
    def trailing(self) -> bool:
        """Whether the trailing stop is on."""
        return self.trailing_retrace_pct is not None


@dataclass(frozen=True, slots=True)
class ExitState:
    """What one position's exit rules remember between evaluations.

    ``watermark`` is the best mark since the trailing stop activated (``None`` before); ``stop_price`` the
    ratcheted dynamic stop (trailing or break-even, ``None`` until one applies; it never loosens) and
    ``stop_reason`` which of the two set it; ``tiers_fired`` the 0-based take-profit tiers already done.
    """

    entry_time_ms: int
    watermark: Decimal | None = None
    stop_price: Decimal | None = None
    stop_reason: ExitReason | None = None
    tiers_fired: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class ExitAction:
    """A reduce-only close: ``size`` (exact, > 0) on ``side`` is ``fraction`` of the position evaluated.

    ``level`` is the threshold that fired: the stop or trigger price, or ``None`` (time stop);
    ``tier`` the 0-based take-profit tier; ``roe_pct`` the ROE at ``mark``."""

    reason: ExitReason
    side: Side
    size: Decimal
    fraction: Decimal
    mark: Decimal
    roe_pct: Decimal
    level: Decimal | None = None
    tier: int | None = None
    reduce_only: bool = True

    @property
    def full(self) -> bool:
        """Whether this closes the whole position."""
        return self.fraction == ONE


def roe_pct(*, size: Decimal, entry_price: Decimal, mark: Decimal, leverage: Decimal | int) -> Decimal:
    """ROE % = price move % x leverage, positive when the position gains."""
    move = (mark - entry_price) / entry_price * HUNDRED * leverage
    return move if size > 0 else -move


def _away(price: Decimal, pct: Decimal, *, long: bool) -> Decimal:
    """``price`` moved ``pct`` % against a long (down) or against a short (up)."""
    return price * (ONE - pct / HUNDRED) if long else price * (ONE + pct / HUNDRED)


def _toward(price: Decimal, pct: Decimal, *, long: bool) -> Decimal:
    """``price`` moved ``pct`` % in favour of a long (up) or of a short (down)."""
    return price * (ONE + pct / HUNDRED) if long else price * (ONE - pct / HUNDRED)


def _tighter(a: Decimal | None, b: Decimal | None, *, long: bool) -> Decimal | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b) if long else min(a, b)


def hard_stop_price(
    policy: ExitPolicy, *, size: Decimal, entry_price: Decimal, leverage: Decimal | int
) -> Decimal | None:
    """The hard stop's price (the tighter of the ROE and price stops), or ``None`` when there is none."""
    long = size > 0
    by_price = by_roe = None
    if policy.stop_loss_price_pct is not None:
        by_price = _away(entry_price, policy.stop_loss_price_pct, long=long)
    if policy.stop_loss_roe_pct is not None:
        by_roe = _away(entry_price, policy.stop_loss_roe_pct / Decimal(leverage), long=long)
        if by_roe <= ZERO:  # a long can lose at most 100 % of price: this ROE stop can never be reached
            by_roe = None
    return _tighter(by_price, by_roe, long=long)


def take_profit_price(
    tier: TakeProfitTier, *, size: Decimal, entry_price: Decimal, leverage: Decimal | int
) -> Decimal:
    """The mark at which ``tier`` fires (ROE = trigger)."""
    return _toward(entry_price, tier.trigger_roe_pct / Decimal(leverage), long=size > 0)


def liquidation_trigger_price(
    policy: ExitPolicy, *, size: Decimal, liquidation_price: Decimal | None
) -> Decimal | None:
    """The mark at which the policy's liquidation buffer fires: long ``mark <= liq / (1 - b)``, short
    ``mark >= liq / (1 + b)`` (the distance ``|mark - liq| / mark`` is then at most ``b``)."""
    if policy.liquidation_buffer_pct is None or liquidation_price is None or liquidation_price <= ZERO:
        return None
    b = policy.liquidation_buffer_pct / HUNDRED
    return liquidation_price / (ONE - b) if size > 0 else liquidation_price / (ONE + b)


def native_stop_price(
    policy: ExitPolicy, state: ExitState, *, size: Decimal, entry_price: Decimal, leverage: Decimal | int
) -> Decimal | None:
    """Where the exchange-side trigger stop should sit: the tighter of the hard stop and the state's
    ratcheted (trailing / break-even) stop, and of the trailing distance from the state's watermark (the
    same after any evaluation; it matters for a state built by hand, e.g. restored or adopted); ``None``
    when none exists. Unquantized: the shell rounds it through ``domain.rules`` (towards the mark, so the
    venue's stop is never looser than ours)."""
    long = size > 0
    hard = hard_stop_price(policy, size=size, entry_price=entry_price, leverage=leverage)
    stop = _tighter(hard, state.stop_price, long=long)
    if state.watermark is not None and policy.trailing_retrace_pct is not None:
        stop = _tighter(stop, _away(state.watermark, policy.trailing_retrace_pct, long=long), long=long)
    return stop


def stop_moved_enough(old: Decimal | None, new: Decimal | None, min_step_pct: Decimal) -> bool:
    """Whether the venue stop is worth moving from ``old`` to ``new``: only on a step of at least
    ``min_step_pct`` % of the old level (each move costs address actions). A first stop always is; a
    vanished stop (``new`` None) is the shell's cancel, not a move."""
    if new is None:
        return False
    if old is None or old == ZERO:
        return True
    return abs(new - old) / abs(old) * HUNDRED >= min_step_pct


def _ratchet(
    policy: ExitPolicy, state: ExitState, *, long: bool, entry_price: Decimal, mark: Decimal
) -> ExitState:
    """Update the trailing watermark with ``mark`` and tighten the dynamic stop (never loosen)."""
    if policy.trailing_retrace_pct is None:
        return state
    watermark = state.watermark
    if watermark is None:
        activation = _toward(entry_price, policy.trailing_activation_pct, long=long)
        if (mark < activation) if long else (mark > activation):
            return state
        watermark = mark
    else:
        watermark = max(watermark, mark) if long else min(watermark, mark)
    trail = _away(watermark, policy.trailing_retrace_pct, long=long)
    stop, reason = state.stop_price, state.stop_reason
    if _tighter(stop, trail, long=long) != stop:
        stop, reason = trail, ExitReason.TRAILING_STOP
    return replace(state, watermark=watermark, stop_price=stop, stop_reason=reason)


def _crossed(mark: Decimal, level: Decimal | None, *, long: bool) -> bool:
    return level is not None and ((mark <= level) if long else (mark >= level))


def evaluate(
    policy: ExitPolicy,
    state: ExitState,
    *,
    size: Decimal,
    entry_price: Decimal,
    mark: Decimal,
    leverage: Decimal | int,
    now_ms: int,
    liquidation_price: Decimal | None = None,
) -> tuple[ExitState, list[ExitAction]]:
    """Evaluate one position at ``mark`` and ``now_ms``: the new state and the closes to make.

    Order: the trailing watermark ratchets with ``mark``; then full closes (the tighter of the hard and the
    dynamic stop, the liquidation buffer, the time stop; at most one action); otherwise the take-profit
    tiers reached, each once, sequentially on what remains, after which the break-even stop may move.
    """
    if size == ZERO:
        return state, []
    if entry_price <= ZERO or mark <= ZERO or Decimal(leverage) <= ZERO:
        raise ValueError(f"entry_price, mark and leverage must be > 0 ({entry_price}, {mark}, {leverage})")
    long = size > 0
    close_side = Side.SELL if long else Side.BUY
    amount = abs(size)
    roe = roe_pct(size=size, entry_price=entry_price, mark=mark, leverage=leverage)
    state = _ratchet(policy, state, long=long, entry_price=entry_price, mark=mark)

    def full(reason: ExitReason, level: Decimal | None) -> tuple[ExitState, list[ExitAction]]:
        return state, [ExitAction(reason, close_side, amount, ONE, mark, roe, level)]

    stop = native_stop_price(policy, state, size=size, entry_price=entry_price, leverage=leverage)
    if _crossed(mark, stop, long=long):
        dynamic = state.stop_price is not None and stop == state.stop_price
        reason = (state.stop_reason or ExitReason.STOP_LOSS) if dynamic else ExitReason.STOP_LOSS
        return full(reason, stop)
    liq_trigger = liquidation_trigger_price(policy, size=size, liquidation_price=liquidation_price)
    if _crossed(mark, liq_trigger, long=long):
        return full(ExitReason.LIQUIDATION_RISK, liq_trigger)
    if policy.max_holding_ms is not None and now_ms - state.entry_time_ms >= policy.max_holding_ms:
        return full(ExitReason.TIME_STOP, None)
    return _take_profits(
        policy, state, size=size, entry_price=entry_price, mark=mark, roe=roe, leverage=leverage
    )


def _take_profits(
    policy: ExitPolicy,
    state: ExitState,
    *,
    size: Decimal,
    entry_price: Decimal,
    mark: Decimal,
    roe: Decimal,
    leverage: Decimal | int,
) -> tuple[ExitState, list[ExitAction]]:
    long = size > 0
    amount = remaining = abs(size)
    fired = set(state.tiers_fired)
    actions: list[ExitAction] = []
    for i, tier in enumerate(policy.take_profit_tiers):
        if i in fired or roe < tier.trigger_roe_pct or remaining == ZERO:
            continue
        close = remaining if tier.close_fraction == ONE else remaining * tier.close_fraction
        remaining -= close
        fired.add(i)
        level = take_profit_price(tier, size=size, entry_price=entry_price, leverage=leverage)
        side = Side.SELL if long else Side.BUY
        actions.append(
            ExitAction(ExitReason.TAKE_PROFIT, side, close, close / amount, mark, roe, level, tier=i)
        )
    if not actions:
        return state, []
    state = replace(state, tiers_fired=frozenset(fired))
    be = policy.break_even_after_tier
    if be is not None and be - 1 in fired:
        level = _toward(entry_price, policy.break_even_offset_pct, long=long)
        if _tighter(state.stop_price, level, long=long) != state.stop_price:
            state = replace(state, stop_price=level, stop_reason=ExitReason.BREAK_EVEN_STOP)
    return state, actions
