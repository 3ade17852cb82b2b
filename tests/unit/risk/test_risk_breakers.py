"""Circuit breakers: every transition of ACTIVE / REDUCING / HALTED, the events they emit, the sticky halt
and its reset, and a hypothesis walk over random snapshot sequences."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from hyperfollow.risk.breakers import (
    DAY_MS,
    BreakerReason,
    ResetRefused,
    StateChange,
    next_state,
    reset,
    utc_day_start_ms,
)
from hyperfollow.risk.gate import Breach, RiskLimits, RiskSnapshot, TradingState

D = Decimal
NOW = 1_750_000_000_000
ACTIVE, REDUCING, HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED
LIMITS = RiskLimits(max_daily_drawdown_pct=D(10), max_daily_loss_usd=D(500), stale_market_data_ms=10_000)


def snap(
    *, pnl: str = "0", md_age_ms: int | None = 0, kill: bool = False, start: str = "10000"
) -> RiskSnapshot:
    return RiskSnapshot(
        D(start), D(start), D(pnl), {}, (), None if md_age_ms is None else NOW - md_age_ms, kill
    )


@pytest.mark.parametrize(
    ("current", "snapshot", "expected", "reason"),
    [
        (ACTIVE, snap(), ACTIVE, None),
        (ACTIVE, snap(md_age_ms=10_000), ACTIVE, None),
        (ACTIVE, snap(md_age_ms=10_001), REDUCING, BreakerReason.STALE_MARKET_DATA),
        (ACTIVE, snap(md_age_ms=None), REDUCING, BreakerReason.STALE_MARKET_DATA),
        (REDUCING, snap(md_age_ms=20_000), REDUCING, None),
        (REDUCING, snap(), ACTIVE, BreakerReason.MARKET_DATA_FRESH),
        (ACTIVE, snap(kill=True), HALTED, BreakerReason.KILL_SWITCH),
        (REDUCING, snap(kill=True, md_age_ms=None), HALTED, BreakerReason.KILL_SWITCH),
        (ACTIVE, snap(pnl="-499.99"), ACTIVE, None),
        (ACTIVE, snap(pnl="-500"), HALTED, BreakerReason.DAILY_LOSS),
        (ACTIVE, snap(pnl="-300", start="3000"), HALTED, BreakerReason.DAILY_DRAWDOWN),  # 10 % of 3,000
        (ACTIVE, snap(pnl="-299.99", start="3000"), ACTIVE, None),
        (REDUCING, snap(pnl="-600", md_age_ms=None), HALTED, BreakerReason.DAILY_LOSS),
        # priority: the switch, then the dollar loss, then the drawdown
        (ACTIVE, snap(pnl="-5000", kill=True), HALTED, BreakerReason.KILL_SWITCH),
        (ACTIVE, snap(pnl="-5000"), HALTED, BreakerReason.DAILY_LOSS),
        # sticky
        (HALTED, snap(), HALTED, None),
        (HALTED, snap(md_age_ms=None), HALTED, None),
    ],
)
def test_transitions(
    current: TradingState, snapshot: RiskSnapshot, expected: TradingState, reason: BreakerReason | None
) -> None:
    state, changes = next_state(snapshot, LIMITS, current, NOW)
    assert state is expected
    if reason is None:
        assert changes == []
    else:
        [change] = changes
        assert (change.from_state, change.to_state, change.reason) == (current, expected, reason)
        assert change.time_ms == NOW
        assert change.text


def test_event_numbers_and_dict() -> None:
    _, [change] = next_state(snap(pnl="-300", start="3000"), LIMITS, ACTIVE, NOW)
    assert change.numbers == {"drawdown_pct": D(10), "limit_pct": D(10), "loss_usd": D(300),
                              "day_start_equity_usd": D(3000)}  # fmt: skip
    as_dict = change.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["numbers"] == {"drawdown_pct": "10", "limit_pct": "10", "loss_usd": "300",
                                  "day_start_equity_usd": "3000"}  # fmt: skip
    assert (as_dict["from"], as_dict["to"], as_dict["reason"]) == ("active", "halted", "DAILY_DRAWDOWN")
    _, [stale] = next_state(snap(md_age_ms=12_345), LIMITS, ACTIVE, NOW)
    assert stale.numbers == {"age_ms": 12_345, "limit_ms": 10_000}
    assert "12345 ms" in stale.text


@pytest.mark.parametrize("flatten", [True, False])
def test_flatten_on_halt_rides_on_the_event(flatten: bool) -> None:
    limits = RiskLimits(flatten_on_halt=flatten)
    _, [halt] = next_state(snap(kill=True), limits, ACTIVE, NOW)
    assert halt.flatten is flatten
    _, [stale] = next_state(snap(md_age_ms=None), limits, ACTIVE, NOW)
    assert stale.flatten is False  # only a halt flattens


def test_halt_stays_into_the_next_day_until_reset() -> None:
    next_day = utc_day_start_ms(NOW) + DAY_MS + 1
    fresh_day = RiskSnapshot(D(9000), D(9000), D(0), {}, (), next_day, False)
    assert next_state(fresh_day, LIMITS, HALTED, next_day) == (HALTED, [])
    state, [change] = reset(fresh_day, LIMITS, HALTED, next_day, by="ops@desk")
    assert state is ACTIVE
    assert (change.from_state, change.to_state, change.reason, change.by) == (
        HALTED, ACTIVE, BreakerReason.MANUAL_RESET, "ops@desk"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("snapshot", "breach"),
    [(snap(kill=True), Breach.KILL_SWITCH), (snap(pnl="-500"), Breach.DAILY_LOSS),
     (snap(pnl="-450", start="4000"), Breach.DAILY_DRAWDOWN)],
)  # fmt: skip
def test_reset_refused_while_a_halt_condition_holds(snapshot: RiskSnapshot, breach: Breach) -> None:
    with pytest.raises(ResetRefused) as refused:
        reset(snapshot, LIMITS, HALTED, NOW)
    assert refused.value.trip.breach is breach
    assert str(refused.value).startswith("cannot reset: ")


def test_reset_into_stale_data_goes_to_reducing() -> None:
    state, [change] = reset(snap(md_age_ms=None), LIMITS, HALTED, NOW)
    assert state is REDUCING
    assert change.reason is BreakerReason.MANUAL_RESET
    assert change.numbers == {"age_ms": None, "limit_ms": 10_000}


def test_reset_outside_halted_is_next_state() -> None:
    assert reset(snap(), LIMITS, ACTIVE, NOW) == (ACTIVE, [])
    state, [change] = reset(snap(), LIMITS, REDUCING, NOW)
    assert state is ACTIVE
    assert change.reason is BreakerReason.MARKET_DATA_FRESH


def test_utc_day_start() -> None:
    assert utc_day_start_ms(1_750_000_000_000) == 1_749_945_600_000  # 2025-06-15 00:00 UTC
    assert utc_day_start_ms(1_749_945_600_000) == 1_749_945_600_000


# --------------------------------------------------------------------------- a random walk

ticks = st.builds(
    lambda pnl, age, kill: (pnl, age, kill),
    st.decimals(min_value=D(-1500), max_value=D(1500), places=2),
    st.one_of(st.none(), st.integers(0, 20_000)),
    st.booleans() | st.just(False),
)


@hsettings(max_examples=200)
@given(st.lists(ticks, min_size=1, max_size=30), st.lists(st.booleans(), min_size=30, max_size=30))
def test_walk(steps: list[tuple[Decimal, int | None, bool]], resets: list[bool]) -> None:
    """Each change starts where the last ended and ends at the returned state; no change, no event; a
    halt only ends by a reset; a reset only succeeds when no halt condition holds."""
    state = ACTIVE
    log: list[StateChange] = []
    for i, (pnl, age, kill) in enumerate(steps):
        now = NOW + i * 1000
        s = RiskSnapshot(D(10_000), D(10_000), pnl, {}, (), None if age is None else now - age, kill)
        before = state
        state, changes = next_state(s, LIMITS, state, now)
        assert (state is not before) == bool(changes)
        assert all(c.from_state is before and c.to_state is state for c in changes)
        if before is HALTED:
            assert state is HALTED
        if kill or -pnl >= 500:
            assert state is HALTED
        log += changes
        if resets[i] and state is HALTED:
            try:
                state, changes = reset(s, LIMITS, state, now)
            except ResetRefused:
                assert kill or -pnl >= 500
            else:
                assert not kill
                assert -pnl < 500
                assert state is not HALTED
                log += changes
    for a, b in itertools.pairwise(log):
        assert a.to_state is b.from_state
