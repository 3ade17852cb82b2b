"""The pre-trade gate: one case on each side of every limit, what counts as increasing (adds, flips,
reduce-only), the trading states, and hypothesis properties (nothing increasing passes in HALTED or
REDUCING; reducing orders and cancels always pass; same inputs, same decision)."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from hyperfollow.domain.model import AccountSnapshot, CancelRequest, OrderRequest, Position, Side
from hyperfollow.risk.gate import (
    GateDecision,
    GateReason,
    PositionMark,
    RiskLimits,
    RiskSnapshot,
    TradingState,
    check_cancel,
    check_order,
    marks_from_account,
    split_order,
    strictest,
)

D = Decimal
NOW = 1_750_000_000_000
ACTIVE, REDUCING, HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED


def order(
    coin: str = "BTC", side: Side = Side.BUY, size: str = "1", *, reduce_only: bool = False
) -> OrderRequest:
    return OrderRequest(coin, side, D(size), D("100"), reduce_only=reduce_only)


def snap(
    positions: dict[str, tuple[str, str]] | None = None,
    *,
    equity: str = "10000",
    pnl: str = "0",
    recent: tuple[int, ...] = (),
    md_age_ms: int | None = 0,
    kill: bool = False,
    leverage: int | None = None,
) -> RiskSnapshot:
    marks = {c: PositionMark(D(s), D(m), leverage) for c, (s, m) in (positions or {}).items()}
    last = None if md_age_ms is None else NOW - md_age_ms
    return RiskSnapshot(D(equity), D(equity), D(pnl), marks, recent, last, kill)


# A roomy set of limits: each case below tightens the one it tests.
ROOMY = RiskLimits(
    max_open_positions=100,
    max_total_exposure_pct=D(10_000),
    max_coin_exposure_pct=D(10_000),
    max_order_notional_usd=None,
    max_leverage=50,
    max_orders_per_min=1000,
    max_daily_drawdown_pct=D(100),
)


def gate(o: OrderRequest, s: RiskSnapshot, limits: RiskLimits = ROOMY, state: TradingState = ACTIVE,
         mark: str | None = "100", **kw: Any) -> GateDecision:  # fmt: skip
    return check_order(o, None if mark is None else D(mark), s, limits, state, NOW, **kw)


# --------------------------------------------------------------------------- every limit, both sides

CASES: list[tuple[str, dict[str, Any], RiskSnapshot, OrderRequest, dict[str, Any], GateReason]] = [
    # max open positions: 2 held, limit 2 -> a third coin is refused, an add to a held one is not
    ("positions: add", {"max_open_positions": 2}, snap({"BTC": ("1", "100"), "ETH": ("1", "100")}),
     order("ETH"), {}, GateReason.ALLOWED),
    ("positions: new coin", {"max_open_positions": 2}, snap({"BTC": ("1", "100"), "ETH": ("1", "100")}),
     order("SOL"), {}, GateReason.MAX_POSITIONS),
    ("positions: flip keeps count", {"max_open_positions": 1}, snap({"BTC": ("1", "100")}),
     order("BTC", Side.SELL, "2"), {}, GateReason.ALLOWED),
    # total exposure 300 % of $10,000: $25,000 held, +$5,000 reaches it, +$5,001 passes it
    ("total: at", {"max_total_exposure_pct": D(300)}, snap({"ETH": ("250", "100")}),
     order("BTC", size="50"), {}, GateReason.ALLOWED),
    ("total: over", {"max_total_exposure_pct": D(300)}, snap({"ETH": ("250", "100")}),
     order("BTC", size="50.01"), {}, GateReason.TOTAL_EXPOSURE),
    ("total: shorts count", {"max_total_exposure_pct": D(300)}, snap({"ETH": ("-250", "100")}),
     order("BTC", size="50.01"), {}, GateReason.TOTAL_EXPOSURE),
    # one coin at most 100 % of equity: position after the order is what counts
    ("coin: at", {"max_coin_exposure_pct": D(100)}, snap({"BTC": ("60", "100")}),
     order("BTC", size="40"), {}, GateReason.ALLOWED),
    ("coin: over", {"max_coin_exposure_pct": D(100)}, snap({"BTC": ("60", "100")}),
     order("BTC", size="40.01"), {}, GateReason.COIN_EXPOSURE),
    ("coin: flip far side", {"max_coin_exposure_pct": D(100)}, snap({"BTC": ("60", "100")}),
     order("BTC", Side.SELL, "160.01"), {}, GateReason.COIN_EXPOSURE),
    # per-order notional cap, on the opening part only
    ("order: at", {"max_order_notional_usd": D(1000)}, snap(), order(size="10"), {}, GateReason.ALLOWED),
    ("order: over", {"max_order_notional_usd": D(1000)}, snap(), order(size="10.01"), {},
     GateReason.ORDER_NOTIONAL),
    ("order: flip counts the far side", {"max_order_notional_usd": D(1000)}, snap({"BTC": ("20", "100")}),
     order("BTC", Side.SELL, "30"), {}, GateReason.ALLOWED),
    ("order: flip far side over", {"max_order_notional_usd": D(1000)}, snap({"BTC": ("20", "100")}),
     order("BTC", Side.SELL, "30.01"), {}, GateReason.ORDER_NOTIONAL),
    # per-coin cap on the position's notional after the order
    ("coin cap: at", {"max_coin_notional_usd": {"BTC": D(500)}}, snap({"BTC": ("2", "100")}),
     order("BTC", size="3"), {}, GateReason.ALLOWED),
    ("coin cap: over", {"max_coin_notional_usd": {"BTC": D(500)}}, snap({"BTC": ("2", "100")}),
     order("BTC", size="3.01"), {}, GateReason.COIN_CAP),
    ("coin cap: other coin free", {"max_coin_notional_usd": {"BTC": D(500)}}, snap(),
     order("ETH", size="30"), {}, GateReason.ALLOWED),
    # leverage: the order's (set by the shell) or the position's
    ("leverage: at", {"max_leverage": 5}, snap(), order(), {"leverage": 5}, GateReason.ALLOWED),
    ("leverage: over", {"max_leverage": 5}, snap(), order(), {"leverage": 6}, GateReason.LEVERAGE),
    ("leverage: position's", {"max_leverage": 5}, snap({"BTC": ("1", "100")}, leverage=20),
     order(), {}, GateReason.LEVERAGE),
    # rate: orders sent in (now - 60 s, now]
    ("rate: under", {"max_orders_per_min": 3}, snap(recent=(NOW - 1000, NOW - 59_999)), order(), {},
     GateReason.ALLOWED),
    ("rate: at", {"max_orders_per_min": 3}, snap(recent=(NOW - 1000, NOW - 2000, NOW)), order(), {},
     GateReason.RATE_LIMIT),
    ("rate: a minute ago drops out", {"max_orders_per_min": 3},
     snap(recent=(NOW - 1000, NOW - 2000, NOW - 60_000)), order(), {}, GateReason.ALLOWED),
    # daily drawdown 10 % of the day's start equity, daily loss $500
    ("drawdown: under", {"max_daily_drawdown_pct": D(10)}, snap(pnl="-999.99"), order(), {},
     GateReason.ALLOWED),
    ("drawdown: reached", {"max_daily_drawdown_pct": D(10)}, snap(pnl="-1000"), order(), {},
     GateReason.DAILY_DRAWDOWN),
    ("loss: under", {"max_daily_loss_usd": D(500)}, snap(pnl="-499.99"), order(), {}, GateReason.ALLOWED),
    ("loss: reached", {"max_daily_loss_usd": D(500)}, snap(pnl="-500"), order(), {}, GateReason.DAILY_LOSS),
    ("loss: a winning day", {"max_daily_loss_usd": D(500)}, snap(pnl="5000"), order(), {},
     GateReason.ALLOWED),
    # stale market data
    ("stale: at", {"stale_market_data_ms": 10_000}, snap(md_age_ms=10_000), order(), {}, GateReason.ALLOWED),
    ("stale: over", {"stale_market_data_ms": 10_000}, snap(md_age_ms=10_001), order(), {},
     GateReason.STALE_MARKET_DATA),
    ("stale: none yet", {}, snap(md_age_ms=None), order(), {}, GateReason.STALE_MARKET_DATA),
    # kill switch, inputs
    ("kill switch", {}, snap(kill=True), order(), {}, GateReason.KILL_SWITCH),
    ("no equity", {}, snap(equity="0"), order(), {}, GateReason.NO_EQUITY),
    ("no mark", {}, snap(), order(), {"mark": None}, GateReason.NO_MARK),
    ("zero mark", {}, snap(), order(), {"mark": "0"}, GateReason.NO_MARK),
]  # fmt: skip


@pytest.mark.parametrize(("limits", "snapshot", "o", "kw", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_each_limit(
    limits: dict[str, Any], snapshot: RiskSnapshot, o: OrderRequest, kw: dict[str, Any], expected: GateReason
) -> None:
    decision = gate(o, snapshot, replace(ROOMY, **limits), **kw)
    assert decision.reason is expected, decision.text
    assert decision.allowed is (expected is GateReason.ALLOWED)
    assert decision.increasing


@pytest.mark.parametrize(("limits", "snapshot", "o", "kw", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_a_close_passes_every_limit(
    limits: dict[str, Any], snapshot: RiskSnapshot, o: OrderRequest, kw: dict[str, Any], expected: GateReason
) -> None:
    """Whatever limit refuses an opening order, a reduce-only close of a held position passes it."""
    held = snapshot.positions.get("BTC")
    size = abs(held.size) if held else D(1)
    side = Side.SELL if held is None or held.size > 0 else Side.BUY
    decision = gate(order("BTC", side, str(size), reduce_only=True), snapshot, replace(ROOMY, **limits), **kw)
    assert decision.allowed
    assert decision.reason is GateReason.REDUCES
    assert not decision.increasing


def test_refusal_carries_the_numbers() -> None:
    d = gate(order(size="10.01"), snap(), replace(ROOMY, max_order_notional_usd=D(1000)))
    assert d.numbers == {"notional_usd": D("1001.00"), "limit_usd": D(1000)}
    assert "1001.00" in d.text
    assert "1000" in d.text
    assert d.opening_size == D("10.01")


def test_allowed_carries_the_numbers() -> None:
    d = gate(order(size="2"), snap({"ETH": ("3", "100")}))
    assert d.allowed
    assert d.reason is GateReason.ALLOWED
    assert d.numbers == {"notional_usd": D(200), "position_usd": D(200), "gross_usd": D(500)}


def test_checks_run_in_a_fixed_order() -> None:
    """Several limits breached at once: the first in the documented order is reported."""
    tight = replace(ROOMY, max_orders_per_min=1, max_order_notional_usd=D(1), max_leverage=1)
    d = gate(order(size="5"), snap(recent=(NOW,)), tight, leverage=3)
    assert d.reason is GateReason.RATE_LIMIT
    assert gate(order(size="5"), snap(), tight, leverage=3).reason is GateReason.ORDER_NOTIONAL


def test_invalid_size() -> None:
    d = gate(OrderRequest("BTC", Side.BUY, D(0), D(100)), snap())
    assert not d.allowed
    assert d.reason is GateReason.INVALID_ORDER


# --------------------------------------------------------------------------- increasing or not


@pytest.mark.parametrize(
    ("position", "side", "size", "reduce_only", "expected"),
    [
        ("0", Side.BUY, "1", False, ("0", "1")),  # new long
        ("0", Side.SELL, "1", False, ("0", "1")),  # new short
        ("2", Side.BUY, "1", False, ("0", "1")),  # add long
        ("-2", Side.SELL, "1", False, ("0", "1")),  # add short
        ("2", Side.SELL, "1", False, ("1", "0")),  # shrink long
        ("2", Side.SELL, "2", False, ("2", "0")),  # close long exactly
        ("-2", Side.BUY, "2", False, ("2", "0")),  # close short exactly
        ("2", Side.SELL, "3", False, ("2", "1")),  # flip: 2 closes, 1 opens short
        ("-2", Side.BUY, "5", False, ("2", "3")),  # flip: 2 closes, 3 opens long
        ("2", Side.SELL, "3", True, ("3", "0")),  # reduce-only: the venue clips it to the position
        ("0", Side.BUY, "1", True, ("1", "0")),  # reduce-only on flat: the venue refuses it, never opens
    ],
)
def test_split_order(
    position: str, side: Side, size: str, reduce_only: bool, expected: tuple[str, str]
) -> None:
    assert split_order(order(side=side, size=size, reduce_only=reduce_only), D(position)) == tuple(
        map(D, expected)
    )


@pytest.mark.parametrize("state", [REDUCING, HALTED])
def test_flip_refused_when_not_active_with_the_closable_part(state: TradingState) -> None:
    d = gate(order("BTC", Side.SELL, "3"), snap({"BTC": ("2", "100")}), state=state)
    assert not d.allowed
    assert d.reason is (GateReason.HALTED if state is HALTED else GateReason.REDUCING)
    assert (d.reducible_size, d.opening_size) == (D(2), D(1))


@pytest.mark.parametrize("state", [REDUCING, HALTED])
@pytest.mark.parametrize("kind", ["new", "add"])
def test_increasing_refused_when_not_active(state: TradingState, kind: str) -> None:
    s = snap({"BTC": ("2", "100")}) if kind == "add" else snap()
    d = gate(order("BTC", Side.BUY, "1"), s, state=state)
    assert not d.allowed
    assert d.increasing


@pytest.mark.parametrize("state", list(TradingState))
def test_shrinking_passes_in_every_state(state: TradingState) -> None:
    d = gate(order("BTC", Side.SELL, "1"), snap({"BTC": ("2", "100")}, kill=True, pnl="-9999"), state=state)
    assert d.allowed
    assert d.reason is GateReason.REDUCES
    assert d.reducible_size == D(1)


def test_stricter_of_given_and_implied_state() -> None:
    """The state says REDUCING, the snapshot says the kill switch is on: the refusal names the switch;
    the state says HALTED and the snapshot is fine: the refusal names HALTED."""
    assert gate(order(), snap(kill=True), state=REDUCING).reason is GateReason.KILL_SWITCH
    assert gate(order(), snap(md_age_ms=None), state=HALTED).reason is GateReason.HALTED
    assert strictest(ACTIVE, HALTED) is HALTED
    assert strictest(REDUCING, ACTIVE) is REDUCING


def test_cancel_always_passes() -> None:
    d = check_cancel(CancelRequest("BTC", oid=7))
    assert d.allowed
    assert d.reason is GateReason.CANCEL


# --------------------------------------------------------------------------- limits and snapshot values


@pytest.mark.parametrize(
    "bad",
    [
        {"max_open_positions": 0},
        {"max_total_exposure_pct": D(0)},
        {"max_coin_exposure_pct": D(-1)},
        {"max_order_notional_usd": D("NaN")},
        {"max_leverage": 0},
        {"max_orders_per_min": 0},
        {"max_daily_drawdown_pct": D(101)},
        {"max_daily_loss_usd": D(0)},
        {"stale_market_data_ms": 0},
        {"max_coin_notional_usd": {"BTC": D(0)}},
        {"max_total_exposure_pct": 300.0},  # money is Decimal, never float
        {"max_open_positions": True},
    ],
)
def test_limits_are_validated(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad)).split("[")[0]):
        RiskLimits(**bad)


def test_limit_defaults_and_frozen_caps() -> None:
    limits = RiskLimits(max_coin_notional_usd={"BTC": D(5)})
    assert limits.max_daily_loss_usd is None
    assert limits.stale_market_data_ms == 10_000
    with pytest.raises(TypeError):
        limits.max_coin_notional_usd["ETH"] = D(1)  # type: ignore[index]


def test_snapshot_derived_values() -> None:
    s = snap(
        {"BTC": ("0.5", "60000"), "ETH": ("-10", "3000"), "SOL": ("0", "150")}, pnl="-250", equity="5000"
    )
    assert s.open_positions == 2
    assert "SOL" not in s.positions
    assert s.gross_exposure_usd == D(60_000)
    assert s.daily_loss_usd == D(250)
    assert s.daily_drawdown_pct == D(5)
    zero_start = RiskSnapshot(D(100), D(0), D(-50))
    assert zero_start.daily_drawdown_pct == 0
    assert zero_start.market_data_age_ms(NOW) is None


def test_marks_from_account() -> None:
    def pos(coin: str, size: str, value: str) -> Position:
        return Position(coin, D(size), D(1), D(0), 7, True, D(value), D(0))

    account = AccountSnapshot(
        "0xabc", NOW, D(1000), D(0), D(0), (pos("BTC", "-2", "200"), pos("ETH", "1", "50"))
    )
    marks = marks_from_account(account, {"ETH": D("51")})
    assert marks == {"BTC": PositionMark(D(-2), D(100), 7), "ETH": PositionMark(D(1), D(51), 7)}


# --------------------------------------------------------------------------- properties

COINS = ["BTC", "ETH", "SOL"]
sizes = st.decimals(min_value=D("0.001"), max_value=D(1000), places=3)
marks_st = st.decimals(min_value=D("0.01"), max_value=D(100_000), places=2)


@st.composite
def snapshots(draw: st.DrawFn) -> RiskSnapshot:
    positions = {
        c: PositionMark(draw(sizes) * draw(st.sampled_from([1, -1])), draw(marks_st),
                        draw(st.sampled_from([None, 3, 20])))
        for c in draw(st.lists(st.sampled_from(COINS), unique=True))
    }  # fmt: skip
    recent = tuple(NOW - t for t in draw(st.lists(st.integers(0, 120_000), max_size=10)))
    md = draw(st.one_of(st.none(), st.integers(NOW - 30_000, NOW)))
    equity = draw(st.decimals(min_value=D(-100), max_value=D(1_000_000), places=2))
    pnl = draw(st.decimals(min_value=D(-50_000), max_value=D(50_000), places=2))
    return RiskSnapshot(equity, draw(st.decimals(min_value=D(0), max_value=D(1_000_000), places=2)), pnl,
                        positions, recent, md, draw(st.booleans()))  # fmt: skip


@st.composite
def limit_sets(draw: st.DrawFn) -> RiskLimits:
    pct = st.decimals(min_value=D(1), max_value=D(1000), places=1)
    usd = st.one_of(st.none(), st.decimals(min_value=D(1), max_value=D(1_000_000), places=2))
    return RiskLimits(
        max_open_positions=draw(st.integers(1, 4)),
        max_total_exposure_pct=draw(pct),
        max_coin_exposure_pct=draw(pct),
        max_order_notional_usd=draw(usd),
        max_coin_notional_usd=draw(st.dictionaries(st.sampled_from(COINS), marks_st, max_size=2)),
        max_leverage=draw(st.integers(1, 50)),
        max_orders_per_min=draw(st.integers(1, 12)),
        max_daily_drawdown_pct=draw(st.decimals(min_value=D(1), max_value=D(100), places=1)),
        max_daily_loss_usd=draw(usd),
        stale_market_data_ms=draw(st.integers(1, 20_000)),
    )


orders_st = st.builds(
    OrderRequest,
    st.sampled_from(COINS),
    st.sampled_from(list(Side)),
    sizes,
    marks_st,
    reduce_only=st.booleans(),
)
any_mark = st.one_of(st.none(), marks_st)


def _increases(o: OrderRequest, s: RiskSnapshot) -> bool:
    """Independent of split_order: does |position| grow, or does it change sign?"""
    held = s.positions.get(o.coin)
    before = held.size if held else D(0)
    after = before + (o.size if o.is_buy else -o.size)
    return not o.reduce_only and (abs(after) > abs(before) or before * after < 0)


@hsettings(max_examples=400)
@given(orders_st, any_mark, snapshots(), limit_sets(), st.sampled_from([REDUCING, HALTED]), st.integers(0, 5))
def test_nothing_increasing_passes_unless_active(
    o: OrderRequest, mark: Decimal | None, s: RiskSnapshot, limits: RiskLimits, state: TradingState, lev: int
) -> None:
    d = check_order(o, mark, s, limits, state, NOW, leverage=lev or None)
    if _increases(o, s):
        assert not d.allowed
        assert d.increasing
    else:
        assert d.allowed


@hsettings(max_examples=300)
@given(st.data(), any_mark, snapshots(), limit_sets(), st.sampled_from(list(TradingState)))
def test_closes_and_cancels_always_pass(
    data: st.DataObject, mark: Decimal | None, s: RiskSnapshot, limits: RiskLimits, state: TradingState
) -> None:
    coin = data.draw(st.sampled_from(COINS))
    held = s.positions.get(coin)
    if held is None:
        close = data.draw(orders_st.map(lambda o: replace(o, coin=coin, reduce_only=True)))
    else:
        part = data.draw(st.decimals(min_value=D("0.001"), max_value=abs(held.size), places=3))
        close = OrderRequest(coin, Side.SELL if held.size > 0 else Side.BUY, part, D(1),
                             reduce_only=data.draw(st.booleans()))  # fmt: skip
    d = check_order(close, mark, s, limits, state, NOW)
    assert d.allowed
    assert d.reason is GateReason.REDUCES
    assert not d.increasing
    assert check_cancel(CancelRequest(coin, cloid="0x" + "1" * 32)).allowed


@hsettings(max_examples=300)
@given(orders_st, any_mark, snapshots(), limit_sets(), st.sampled_from(list(TradingState)))
def test_deterministic(
    o: OrderRequest, mark: Decimal | None, s: RiskSnapshot, limits: RiskLimits, state: TradingState
) -> None:
    first = check_order(o, mark, s, limits, state, NOW)
    rebuilt = RiskSnapshot(s.equity_usd, s.day_start_equity_usd, s.pnl_today_usd, dict(s.positions),
                           s.recent_order_times_ms, s.last_market_data_ms, s.kill_switch)  # fmt: skip
    assert check_order(o, mark, rebuilt, limits, state, NOW) == first
    json.dumps({k: str(v) for k, v in first.numbers.items()})  # loggable


@hsettings(max_examples=300)
@given(orders_st, marks_st, snapshots(), limit_sets())
def test_an_allowed_increase_stays_within_the_limits(
    o: OrderRequest, mark: Decimal, s: RiskSnapshot, limits: RiskLimits
) -> None:
    d = check_order(o, mark, s, limits, ACTIVE, NOW)
    if not (d.allowed and d.increasing):
        return
    held = s.positions.get(o.coin)
    before = held.size if held else D(0)
    after_usd = abs(before + (o.size if o.is_buy else -o.size)) * mark
    gross = s.gross_exposure_usd - (held.notional_usd if held else 0) + after_usd
    assert after_usd / s.equity_usd * 100 <= limits.max_coin_exposure_pct
    assert gross / s.equity_usd * 100 <= limits.max_total_exposure_pct
    assert limits.max_order_notional_usd is None or d.opening_size * mark <= limits.max_order_notional_usd
    assert s.orders_in_last_minute(NOW) < limits.max_orders_per_min
    assert held is not None or s.open_positions < limits.max_open_positions
    assert not s.kill_switch
    assert s.last_market_data_ms is not None
