"""Backtest metrics: hand-computed cases, the edge cases the docstring defines, and agreement with a plain
loop-by-loop implementation on random curves."""

from __future__ import annotations

import math
import statistics
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperfollow.backtest.metrics import (
    HOUR_MS,
    YEAR_MS,
    BacktestResult,
    EquityPoint,
    PassiveOrders,
    Trade,
    compute_metrics,
)
from hyperfollow.domain.model import Side

D = Decimal
MIN = 60_000


def trade(
    coin: str = "BTC",
    side: Side = Side.BUY,
    open_ms: int = 0,
    close_ms: int = MIN,
    entry: str = "100",
    exit_: str = "110",
    size: str = "1",
    pnl: str = "10",
    fees: str = "0",
    owner: str = "copy:a",
    funding: str = "0",
) -> Trade:
    return Trade(
        coin, side, open_ms, close_ms, D(entry), D(exit_), D(size), D(pnl), D(fees), owner, D(funding)
    )


# 100 -> 110 -> 99 -> 108.9 on the hourly grid: returns +10%, -10%, +10%. Between grid points a dip to 50
# (drawdown, not Sharpe) and a last jump to 200 after the last full hour (return, not Sharpe).
HAND_EQUITY: list[EquityPoint] = [
    (0, D(100)),
    (30 * MIN, D(50)),
    (HOUR_MS, D(105)),
    (HOUR_MS, D(110)),  # same millisecond: the later point is the equity at that time
    (2 * HOUR_MS, D(99)),
    (3 * HOUR_MS, D("108.9")),
    (3 * HOUR_MS + 30 * MIN, D(200)),
]

HAND_TRADES = [
    trade("BTC", Side.BUY, 0, 10 * MIN, "100", "110", "2", "20", "1", "copy:a"),  # net +19
    trade("ETH", Side.SELL, 5 * MIN, 20 * MIN, "50", "55", "1", "-5", "0.5", "copy:b", "0.5"),  # net -6
    trade("BTC", Side.BUY, 60 * MIN, 90 * MIN, "100", "100", "1", "0", "0", "copy:a"),  # net 0
]


def test_hand_computed_equity_figures() -> None:
    m = compute_metrics(BacktestResult(equity=HAND_EQUITY))
    assert m.total_return_pct == pytest.approx(100.0)
    assert m.max_drawdown_pct == pytest.approx(50.0)  # 100 -> 50, deeper than 110 -> 99
    # r = (0.1, -0.1, 0.1): mean 1/30, stdev sqrt(12)/30, so Sharpe = sqrt(8760 / 12) = sqrt(730)
    assert m.periods_per_year == 8760
    assert m.sharpe == pytest.approx(math.sqrt(730), rel=1e-12)
    # downside deviation sqrt(0.01 / 3): Sortino = (1/30) / (0.1 / sqrt(3)) * sqrt(8760) = sqrt(2920)
    assert m.sortino == pytest.approx(math.sqrt(2920), rel=1e-12)
    assert (m.start_ms, m.end_ms) == (0, 3 * HOUR_MS + 30 * MIN)
    assert (m.start_equity_usd, m.end_equity_usd) == (D(100), D(200))


def test_hand_computed_trade_figures() -> None:
    m = compute_metrics(BacktestResult(equity=HAND_EQUITY, trades=HAND_TRADES))
    assert (m.trades, m.wins, m.losses) == (3, 1, 1)
    assert m.win_rate == pytest.approx(1 / 3)
    assert m.profit_factor == pytest.approx(19 / 6)
    assert m.avg_trade_secs == pytest.approx((600 + 900 + 1800) / 3)
    assert (m.pnl_usd, m.fees_usd, m.funding_usd, m.net_pnl_usd) == (D(15), D("1.5"), D("0.5"), D(13))
    assert m.turnover_usd == D(2 * 210 + 105 + 200)
    # open 0..20 min (two overlapping trades) and 60..90 min, over a 210 min run
    assert m.exposure_pct == pytest.approx(50 / 210 * 100)
    assert list(m.by_coin) == ["BTC", "ETH"]
    btc, eth = m.by_coin["BTC"], m.by_coin["ETH"]
    assert (btc.trades, btc.wins, btc.losses, btc.profit_factor) == (2, 1, 0, math.inf)
    assert (eth.trades, eth.losses, eth.profit_factor, eth.net_pnl_usd) == (1, 1, 0.0, D(-6))
    a = m.by_owner["copy:a"]
    assert (a.trades, a.net_pnl_usd, a.turnover_usd, a.avg_trade_secs) == (2, D(19), D(620), 1200.0)
    assert m.by_owner["copy:b"].win_rate == 0.0


def test_skips_passive_and_leader_are_carried() -> None:
    m = compute_metrics(
        BacktestResult(
            equity=HAND_EQUITY,
            skips_by_reason={"SKIP_SLIPPAGE": 2, "SKIP_MIN_NOTIONAL": 5},
            passive=PassiveOrders(posted=8, filled=6, posted_usd=D(800), filled_usd=D(500)),
            leader_return_pct=D("12.5"),
        )
    )
    assert m.skips == 7
    assert list(m.skips_by_reason.items()) == [("SKIP_MIN_NOTIONAL", 5), ("SKIP_SLIPPAGE", 2)]
    assert (m.passive_posted, m.passive_filled, m.passive_fill_ratio) == (8, 6, 0.75)
    assert m.passive_fill_ratio_usd == 0.625
    assert m.leader_return_pct == 12.5


def test_without_passive_orders_the_fill_ratio_is_none() -> None:
    none_given = compute_metrics(BacktestResult(equity=HAND_EQUITY))
    none_posted = compute_metrics(BacktestResult(equity=HAND_EQUITY, passive=PassiveOrders(0, 0)))
    assert none_given.passive_fill_ratio is None
    assert none_given.passive_posted is None
    assert none_posted.passive_posted == 0
    assert none_posted.passive_fill_ratio is None
    assert none_posted.passive_fill_ratio_usd is None


def test_no_trades() -> None:
    m = compute_metrics(BacktestResult(equity=HAND_EQUITY))
    assert (m.trades, m.wins, m.losses) == (0, 0, 0)
    assert m.win_rate is None
    assert m.profit_factor is None
    assert m.avg_trade_secs is None
    assert (m.fees_usd, m.turnover_usd, m.net_pnl_usd) == (0, 0, 0)
    assert m.exposure_pct == 0.0
    assert m.by_coin == {}
    assert m.by_owner == {}


def test_flat_equity_has_no_sharpe_or_sortino() -> None:
    flat = [(k * HOUR_MS, D(1000)) for k in range(48)]
    m = compute_metrics(BacktestResult(equity=flat))
    assert m.sharpe is None
    assert m.sortino is None
    assert m.total_return_pct == 0.0
    assert m.max_drawdown_pct == 0.0


def test_steady_growth_has_no_sharpe_and_infinite_sortino() -> None:
    # 1% every hour: a zero stdev (up to float noise) and no losing period
    growth = [(k * HOUR_MS, D(100) * D("1.01") ** k) for k in range(24)]
    m = compute_metrics(BacktestResult(equity=growth))
    assert m.sharpe is None
    assert m.sortino == math.inf
    assert m.max_drawdown_pct == 0.0


def test_all_wins_profit_factor_is_infinite() -> None:
    wins = [trade(pnl="10"), trade(coin="ETH", pnl="3", fees="1")]
    m = compute_metrics(BacktestResult(equity=HAND_EQUITY, trades=wins))
    assert m.profit_factor == math.inf
    assert m.win_rate == 1.0


def test_only_breakeven_trades_have_no_profit_factor() -> None:
    even = [trade(pnl="1", fees="1"), trade(pnl="0", exit_="100")]
    m = compute_metrics(BacktestResult(equity=HAND_EQUITY, trades=even))
    assert m.profit_factor is None
    assert (m.wins, m.losses, m.win_rate) == (0, 0, 0.0)


def test_one_point_and_short_runs() -> None:
    one = compute_metrics(BacktestResult(equity=[(5, D(100))]))
    assert (one.total_return_pct, one.max_drawdown_pct, one.sharpe, one.sortino) == (0.0, 0.0, None, None)
    assert one.exposure_pct is None  # a zero-length run has no share of time
    # two hourly returns are the fewest with a stdev; one is not enough
    one_return = [(0, D(100)), (HOUR_MS, D(101)), (HOUR_MS + 1, D(90))]
    assert compute_metrics(BacktestResult(equity=one_return)).sharpe is None
    two_returns = [(0, D(100)), (HOUR_MS, D(101)), (2 * HOUR_MS, D(100))]
    assert compute_metrics(BacktestResult(equity=two_returns)).sharpe is not None


def test_wiped_out_equity_has_no_ratio() -> None:
    ruin = [(0, D(100)), (HOUR_MS, D(50)), (2 * HOUR_MS, D(0)), (3 * HOUR_MS, D(0))]
    m = compute_metrics(BacktestResult(equity=ruin))
    assert m.sharpe is None
    assert m.sortino is None
    assert m.max_drawdown_pct == 100.0
    assert m.total_return_pct == -100.0


def test_sample_period_sets_the_annualisation() -> None:
    daily = [(k * 86_400_000, D(100 + (k % 3))) for k in range(30)]
    m = compute_metrics(BacktestResult(equity=daily, sample_period_ms=86_400_000))
    assert m.periods_per_year == 365
    hourly = compute_metrics(BacktestResult(equity=daily))
    # the step function repeats each daily value 24 times: other returns, another figure
    assert hourly.sharpe != m.sharpe


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one point"):
        compute_metrics(BacktestResult(equity=[]))
    with pytest.raises(ValueError, match="backwards"):
        compute_metrics(BacktestResult(equity=[(10, D(1)), (5, D(1))]))
    with pytest.raises(ValueError, match="closes before it opens"):
        trade(open_ms=10, close_ms=5)
    with pytest.raises(ValueError, match="positive"):
        trade(size="0")
    with pytest.raises(ValueError, match="filled"):
        PassiveOrders(posted=1, filled=2)


def test_trade_properties() -> None:
    t = trade(side=Side.SELL, entry="50", exit_="40", size="2", pnl="20", fees="1", funding="-1")
    assert t.net_pnl == D(20)
    assert t.return_pct == D(20)  # 20 on a notional of 100
    assert t.direction == "short"
    assert t.duration_ms == MIN


# --- an independent, loop-by-loop implementation of the definitions ---------------------------------


def naive_equity(points: list[EquityPoint], period_ms: int) -> dict[str, float | None]:
    first, last = points[0][1], points[-1][1]
    peak, worst = points[0][1], Decimal(0)
    for _, e in points:
        peak = max(peak, e)
        if peak > 0:
            worst = max(worst, (peak - e) / peak)
    start, end = points[0][0], points[-1][0]
    grid: list[Decimal] = []
    t = start
    while t <= end:
        grid.append([e for ts, e in points if ts <= t][-1])
        t += period_ms
    sharpe: float | None = None
    sortino: float | None = None
    if len(grid) >= 3 and all(e > 0 for e in grid):
        exact = [Fraction(b) / Fraction(a) - 1 for a, b in pairwise(grid)]
        returns = [float(r) for r in exact]
        n_year = YEAR_MS / period_ms
        mean = statistics.fmean(returns)
        if len(set(exact)) > 1:
            sharpe = mean / statistics.stdev(returns) * math.sqrt(n_year)
        down = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
        if down > 0:
            sortino = mean / down * math.sqrt(n_year)
        elif mean > 0:
            sortino = math.inf
    return {
        "total_return_pct": float((last - first) / first * 100),
        "max_drawdown_pct": float(worst * 100),
        "sharpe": sharpe,
        "sortino": sortino,
    }


def naive_exposure(trades: list[Trade], start: int, end: int) -> float | None:
    """Sweep the sorted open/close events, counting open trades."""
    if end <= start:
        return None
    events = sorted(
        [(min(max(t.open_ms, start), end), 1) for t in trades]
        + [(min(max(t.close_ms, start), end), -1) for t in trades]
    )
    covered, depth, since = 0, 0, start
    for at, step in events:
        if depth > 0:
            covered += at - since
        depth += step
        since = at
    return covered / (end - start) * 100


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None or math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


curves = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3 * HOUR_MS),
        st.decimals(min_value=1, max_value=1000, places=2, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=60,
).map(lambda steps: [(sum(dt for dt, _ in steps[: i + 1]), equity) for i, (_, equity) in enumerate(steps)])


@st.composite
def trades_within(draw: st.DrawFn, span: int) -> list[Trade]:
    out = []
    for _ in range(draw(st.integers(0, 12))):
        opened = draw(st.integers(-HOUR_MS, span + HOUR_MS))
        closed = opened + draw(st.integers(0, 5 * HOUR_MS))
        pnl = draw(st.decimals(-100, 100, places=2))
        fees = draw(st.decimals(0, 5, places=2))
        coin = draw(st.sampled_from(["BTC", "ETH", "xyz:TSLA"]))
        out.append(trade(coin=coin, open_ms=opened, close_ms=closed, pnl=str(pnl), fees=str(fees)))
    return out


@settings(max_examples=300, deadline=None)
@given(curve=curves, period=st.sampled_from([MIN, 15 * MIN, HOUR_MS]))
def test_equity_figures_match_a_plain_implementation(curve: list[EquityPoint], period: int) -> None:
    m = compute_metrics(BacktestResult(equity=curve, sample_period_ms=period))
    expected = naive_equity(curve, period)
    got = {k: getattr(m, k) for k in expected}
    assert all(close(got[k], expected[k]) for k in expected), (got, expected)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), curve=curves)
def test_trade_figures_match_a_plain_implementation(data: st.DataObject, curve: list[EquityPoint]) -> None:
    start, end = curve[0][0], curve[-1][0]
    trades = data.draw(trades_within(end - start))
    m = compute_metrics(BacktestResult(equity=curve, trades=trades))
    nets = [t.pnl - t.fees for t in trades]
    won = sum((n for n in nets if n > 0), Decimal(0))
    lost = -sum((n for n in nets if n < 0), Decimal(0))
    assert m.trades == len(trades)
    assert m.wins == sum(1 for n in nets if n > 0)
    assert m.net_pnl_usd == sum(nets, Decimal(0))
    assert m.fees_usd == sum((t.fees for t in trades), Decimal(0))
    if lost:
        assert close(m.profit_factor, float(won / lost))
    else:
        assert m.profit_factor == (math.inf if won else None)
    assert close(m.exposure_pct, naive_exposure(trades, start, end))
    assert sum(s.trades for s in m.by_coin.values()) == len(trades)
    assert sum((s.net_pnl_usd for s in m.by_coin.values()), Decimal(0)) == m.net_pnl_usd
