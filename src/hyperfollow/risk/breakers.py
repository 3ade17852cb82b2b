"""Circuit breakers: the trading state machine ACTIVE / REDUCING / HALTED, pure, time passed in.

``next_state(snapshot, limits, current, now_ms)`` returns the new state and the ``StateChange`` events that
led there (none when nothing changed); the shell persists and logs every event and, for a change into
HALTED with ``flatten`` set, closes every position (reduce-only closes always pass the gate).

Transitions (the conditions are ``gate.halt_trip`` / ``gate.stale_trip``):

* manual kill switch on, daily loss >= ``max_daily_loss_usd``, daily drawdown >= ``max_daily_drawdown_pct``
  -> HALTED, from any state;
* market data older than ``stale_market_data_ms`` (or none yet) -> REDUCING; back to ACTIVE when fresh;
* HALTED is sticky: only ``reset`` (a person's decision) leaves it, and only once no halting condition
  holds. It does not lift itself at the next UTC day: a loss halt's condition clears then (today's PnL
  starts again from zero), so a reset is accepted from that moment, but somebody has to ask for it.
  A kill-switch halt needs the switch off first.

REDUCING here belongs to the staleness breaker: fresh data lifts it. (An operator who wants "reduce only"
for another reason uses the kill switch, which halts, or sets the limits.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from hyperfollow.risk.gate import (
    Breach,
    RiskLimits,
    RiskSnapshot,
    TradingState,
    Trip,
    current_trip,
    halt_trip,
    stale_trip,
)

DAY_MS = 86_400_000


def utc_day_start_ms(now_ms: int) -> int:
    """Start of the UTC day containing ``now_ms`` (where the snapshot's day start equity is taken)."""
    return now_ms - now_ms % DAY_MS


class BreakerReason(StrEnum):
    """Why the trading state changed. The value is what the user reads."""

    KILL_SWITCH = "manual kill switch on"
    DAILY_LOSS = "max daily loss reached"
    DAILY_DRAWDOWN = "max daily drawdown reached"
    STALE_MARKET_DATA = "market data is stale"
    MARKET_DATA_FRESH = "market data is fresh again"
    MANUAL_RESET = "manual reset"


_BREACH_REASON = {b: BreakerReason[b.name] for b in Breach}


@dataclass(frozen=True, slots=True)
class StateChange:
    """One trading state change: the event the shell persists and logs (``to_dict`` for both)."""

    from_state: TradingState
    to_state: TradingState
    reason: BreakerReason
    text: str
    time_ms: int
    numbers: Mapping[str, Decimal | int | None] = field(default_factory=dict)
    flatten: bool = False  # a change into HALTED with ``flatten_on_halt``: close every position now
    by: str | None = None  # who asked, for a manual reset

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: exact decimal strings for the numbers."""
        return {
            "from": self.from_state.value,
            "to": self.to_state.value,
            "reason": self.reason.name,
            "text": self.text,
            "time_ms": self.time_ms,
            "numbers": {k: _plain(v) for k, v in self.numbers.items()},
            "flatten": self.flatten,
            "by": self.by,
        }


def _plain(value: Decimal | int | None) -> str | None:
    """One spelling per number ("10", not "10.0" or "1E+1"), exact."""
    if value is None:
        return None
    return format((value + 0).normalize(), "f") if isinstance(value, Decimal) else str(value)


class ResetRefused(ValueError):
    """A reset was asked while a halting condition still holds (``trip`` says which, with its numbers)."""

    def __init__(self, trip: Trip) -> None:
        super().__init__(f"cannot reset: {trip.text}")
        self.trip = trip


def _change(current: TradingState, trip: Trip, limits: RiskLimits, now_ms: int) -> StateChange:
    flatten = trip.state is TradingState.HALTED and limits.flatten_on_halt
    return StateChange(
        current, trip.state, _BREACH_REASON[trip.breach], trip.text, now_ms, trip.numbers, flatten
    )


def next_state(
    snapshot: RiskSnapshot, limits: RiskLimits, current: TradingState, now_ms: int
) -> tuple[TradingState, list[StateChange]]:
    """The state the breakers call for now, and the change events on the way (empty: no change)."""
    if current is TradingState.HALTED:
        return current, []  # sticky until reset()
    trip = current_trip(snapshot, limits, now_ms)
    if trip is not None:
        if trip.state is current:
            return current, []
        return trip.state, [_change(current, trip, limits, now_ms)]
    if current is TradingState.REDUCING:
        age = snapshot.market_data_age_ms(now_ms)
        change = StateChange(current, TradingState.ACTIVE, BreakerReason.MARKET_DATA_FRESH,
                             f"market data {age} ms old", now_ms, {"age_ms": age})  # fmt: skip
        return TradingState.ACTIVE, [change]
    return current, []


def reset(
    snapshot: RiskSnapshot, limits: RiskLimits, current: TradingState, now_ms: int, *, by: str = "manual"
) -> tuple[TradingState, list[StateChange]]:
    """Leave HALTED on a person's request: to ACTIVE, or REDUCING if market data is stale.

    Raises ``ResetRefused`` while the kill switch is on or a loss limit is still breached (a loss halt can
    be reset from the next UTC day, when today's PnL starts again). Outside HALTED this is ``next_state``.
    """
    if current is not TradingState.HALTED:
        return next_state(snapshot, limits, current, now_ms)
    halt = halt_trip(snapshot, limits)
    if halt is not None:
        raise ResetRefused(halt)
    stale = stale_trip(snapshot, limits, now_ms)
    target = stale.state if stale is not None else TradingState.ACTIVE
    numbers = dict(stale.numbers) if stale is not None else {}
    text = f"reset by {by}" + (f"; {stale.text}" if stale is not None else "")
    return target, [StateChange(current, target, BreakerReason.MANUAL_RESET, text, now_ms, numbers, by=by)]
