"""A backtest's figures, and the result data model every run hands to them (and to ``report``).

The data model (what a replay produces; money is ``Decimal``, times are venue epoch milliseconds):

``BacktestResult``
  ``equity``
      ``Sequence[EquityPoint]``, ``(ts_ms, equity_usd)``: the account's equity marked to market (cash plus
      unrealised PnL, after fees and funding), ``ts_ms`` non-decreasing, at least one point (the starting
      equity at the run's start). Sample it at every fill and on a regular cadence of simulated time (each
      mark update, or every minute): drawdown is measured on these points, Sharpe and Sortino on their
      resampling (below). No deposits or withdrawals: every change of equity is trading.
  ``trades``
      ``Sequence[Trade]``: closed round trips, see ``Trade``; ``roundtrips.round_trips`` builds them from the
      run's ``(owner, Fill)`` and ``FundingPaid`` events. A position still open at the end of the run counts
      only if the replay closes it (at the last mark); otherwise it is in the equity, not the trades.
  ``skips_by_reason``
      ``Mapping[str, int]``: signals not acted on, by the skip reason's name (``SKIP_MIN_NOTIONAL``...).
  ``models``
      ``Mapping[str, str]``: one line per model the run used, saying which model and its parameters, at least
      ``latency``, ``queue``, ``fees``, ``slippage`` and ``funding`` (the report prints them as given).
  ``prices``
      ``Mapping[str, Sequence[PricePoint]]``: optional price series per coin (mid or last trade,
      ``(ts_ms, price)``), for the chart of trades on the price.
  ``passive``
      ``PassiveOrders | None``: maker orders posted and filled, when the run posted any.
  ``leader_return_pct``, ``leader_equity``
      copy runs: the leader's own return over the same period (given, not computed here) and, optionally,
      the leader's equity curve for the side-by-side chart.
  ``title``, ``meta``
      what ran: a title, and ``Mapping[str, str]`` facts such as the mode, the leader, the config file, and
      where the instrument rules came from (recorded ``meta`` or inferred from the fills).
  ``sample_period_ms``
      the resampling period of Sharpe and Sortino (default one hour).

Definitions (``compute_metrics``):

- ``total_return_pct`` = (last equity / first equity - 1) x 100; None when the first equity is not positive.
- ``max_drawdown_pct``: the largest fall from a running peak, (peak - equity) / peak x 100 over the equity
  points as given (not resampled), reported as a positive number; 0 when equity never falls.
- ``sharpe`` and ``sortino``: the equity is resampled to a fixed grid t_k = t_0 + k x P (P =
  ``sample_period_ms``, k = 0..K, K = floor((t_end - t_0) / P)), taking at each t_k the last equity at or
  before it (a step function; the partial period after t_K is left out). Period returns are simple,
  r_k = E_k / E_{k-1} - 1, k = 1..K; the risk-free rate is 0. ``sharpe`` = mean(r) / stdev(r, ddof=1) x
  sqrt(N), ``sortino`` = mean(r) / sqrt(mean(min(r, 0)^2)) x sqrt(N), with N = 365 days / P periods a year
  (crypto trades every day: 8,760 for hourly periods). Both are None with fewer than two returns, when the
  equity is flat (stdev below 1e-12: 0 / 0 is undefined, and 0 would claim a measured, risk-free result),
  or when a resampled equity is not positive. ``sortino`` is ``inf`` when no period lost and the mean is
  positive (``summary.json`` writes it null and says so in ``notes``).
- A trade's net PnL is ``pnl - fees - funding``; a win has net PnL > 0, a loss < 0 (a net 0 is neither).
  ``win_rate`` = wins / trades, a fraction (None without trades). ``profit_factor`` = sum of winning net
  PnL / -(sum of losing net PnL): ``inf`` when there are wins and no losses (null in ``summary.json``, with a
  note), None without trades or when every trade nets 0.
- ``avg_trade_secs``: mean of (close - open) in seconds. ``turnover_usd``: traded notional of both legs,
  size x (entry + exit). ``fees_usd``: fees paid (rebates negative). ``exposure_pct``: the share of the run
  (first to last equity point) with at least one trade open (the union of the trades' intervals).
- ``passive_fill_ratio``: passive orders that filled (at least in part) / passive orders posted;
  ``passive_fill_ratio_usd``: filled notional / posted notional. None when nothing was posted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from hyperfollow.domain.model import Side

EquityPoint = tuple[int, Decimal]  # (venue time ms, equity USD)
PricePoint = tuple[int, Decimal]  # (venue time ms, price)

HOUR_MS = 3_600_000
YEAR_MS = 365 * 86_400_000
FLAT_STDEV = 1e-12  # a return stdev below this is a flat curve: float noise, not volatility

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Trade:
    """One closed round trip of one owner in one coin.

    ``side`` is the opening side (``Side.BUY``: long, ``Side.SELL``: short). ``entry_px`` and ``exit_px`` are
    size-weighted averages of the opening and closing fills; ``size`` is the (positive) size opened and
    closed. ``pnl`` is the realised price PnL before fees and funding; ``fees`` the fees of both legs (a
    rebate is negative); ``funding`` the funding paid while open (received: negative). ``owner`` says whose
    trade it is: a strategy and its sub-key, e.g. ``copy:0xleader``.
    """

    coin: str
    side: Side
    open_ms: int
    close_ms: int
    entry_px: Decimal
    exit_px: Decimal
    size: Decimal
    pnl: Decimal
    fees: Decimal
    owner: str
    funding: Decimal = _ZERO

    def __post_init__(self) -> None:
        if self.close_ms < self.open_ms:
            raise ValueError(f"trade closes before it opens: {self.open_ms} > {self.close_ms}")
        if self.size <= 0 or self.entry_px <= 0 or self.exit_px <= 0:
            raise ValueError("a trade's size and prices are positive")

    @property
    def net_pnl(self) -> Decimal:
        return self.pnl - self.fees - self.funding

    @property
    def notional(self) -> Decimal:
        """The entry notional, size x entry price."""
        return self.size * self.entry_px

    @property
    def return_pct(self) -> Decimal:
        """Net PnL on the entry notional, in percent (unlevered: what the trade made on what it moved)."""
        return self.net_pnl / self.notional * 100

    @property
    def duration_ms(self) -> int:
        return self.close_ms - self.open_ms

    @property
    def direction(self) -> str:
        return "long" if self.side is Side.BUY else "short"


@dataclass(frozen=True, slots=True)
class PassiveOrders:
    """Maker (post-only or resting) orders a run posted, and how many of them filled at least in part."""

    posted: int
    filled: int
    posted_usd: Decimal = _ZERO
    filled_usd: Decimal = _ZERO

    def __post_init__(self) -> None:
        if not 0 <= self.filled <= self.posted:
            raise ValueError(f"passive orders filled {self.filled} of {self.posted}")


@dataclass(frozen=True)
class BacktestResult:
    """What one backtest (or paper) run produced: the input of ``compute_metrics`` and ``write_report``."""

    equity: Sequence[EquityPoint]
    trades: Sequence[Trade] = ()
    skips_by_reason: Mapping[str, int] = field(default_factory=dict)
    models: Mapping[str, str] = field(default_factory=dict)
    prices: Mapping[str, Sequence[PricePoint]] = field(default_factory=dict)
    passive: PassiveOrders | None = None
    leader_return_pct: Decimal | None = None
    leader_equity: Sequence[EquityPoint] = ()
    title: str = "backtest"
    meta: Mapping[str, str] = field(default_factory=dict)
    sample_period_ms: int = HOUR_MS


@dataclass(frozen=True, slots=True)
class TradeStats:
    """Figures over a set of trades (all of them, one coin's, one owner's)."""

    trades: int
    wins: int
    losses: int
    win_rate: float | None
    profit_factor: float | None
    avg_trade_secs: float | None
    pnl_usd: Decimal
    fees_usd: Decimal
    funding_usd: Decimal
    net_pnl_usd: Decimal
    turnover_usd: Decimal


@dataclass(frozen=True, slots=True)
class Metrics:
    """Every figure of a run; see the module docstring for the definitions."""

    start_ms: int
    end_ms: int
    start_equity_usd: Decimal
    end_equity_usd: Decimal
    total_return_pct: float | None
    max_drawdown_pct: float
    sharpe: float | None
    sortino: float | None
    sample_period_ms: int
    periods_per_year: float
    trades: int
    wins: int
    losses: int
    win_rate: float | None
    profit_factor: float | None
    avg_trade_secs: float | None
    pnl_usd: Decimal
    fees_usd: Decimal
    funding_usd: Decimal
    net_pnl_usd: Decimal
    turnover_usd: Decimal
    exposure_pct: float | None
    by_coin: dict[str, TradeStats]
    by_owner: dict[str, TradeStats]
    skips: int
    skips_by_reason: dict[str, int]
    passive_posted: int | None
    passive_filled: int | None
    passive_fill_ratio: float | None
    passive_fill_ratio_usd: float | None
    leader_return_pct: float | None


def _ratio(num: Decimal, den: Decimal) -> float | None:
    return None if den == 0 else float(num / den)


def trade_stats(trades: Iterable[Trade]) -> TradeStats:
    """Win rate, profit factor, duration and the money sums of ``trades`` (exact: Decimal sums)."""
    n = wins = losses = 0
    duration_ms = 0
    pnl = fees = funding = won = lost = turnover = _ZERO
    for t in trades:
        n += 1
        net = t.net_pnl
        if net > 0:
            wins += 1
            won += net
        elif net < 0:
            losses += 1
            lost -= net
        duration_ms += t.duration_ms
        pnl += t.pnl
        fees += t.fees
        funding += t.funding
        turnover += t.size * (t.entry_px + t.exit_px)
    if lost > 0:
        profit_factor: float | None = float(won / lost)
    else:
        profit_factor = math.inf if won > 0 else None
    return TradeStats(
        trades=n,
        wins=wins,
        losses=losses,
        win_rate=wins / n if n else None,
        profit_factor=profit_factor,
        avg_trade_secs=duration_ms / n / 1000 if n else None,
        pnl_usd=pnl,
        fees_usd=fees,
        funding_usd=funding,
        net_pnl_usd=pnl - fees - funding,
        turnover_usd=turnover,
    )


def _grouped(trades: Sequence[Trade], key: str) -> dict[str, TradeStats]:
    groups: dict[str, list[Trade]] = {}
    for t in trades:
        groups.setdefault(getattr(t, key), []).append(t)
    return {name: trade_stats(group) for name, group in sorted(groups.items())}


def equity_arrays(
    equity: Sequence[EquityPoint],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The curve as numpy arrays (times, equity as float64), checked: non-empty, times non-decreasing."""
    if not equity:
        raise ValueError("an equity curve needs at least one point (the starting equity)")
    ts = np.fromiter((p[0] for p in equity), dtype=np.int64, count=len(equity))
    values = np.fromiter((float(p[1]) for p in equity), dtype=np.float64, count=len(equity))
    if ts.size > 1 and bool(np.any(np.diff(ts) < 0)):
        raise ValueError("equity times go backwards")
    return ts, values


def drawdown_pct(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The fall from the running peak at each point, in percent (>= 0; 0 where the peak is not positive)."""
    peak = np.maximum.accumulate(values)
    safe = np.where(peak > 0, peak, 1.0)
    return np.where(peak > 0, (peak - values) / safe * 100.0, 0.0)


def resample(
    ts: npt.NDArray[np.int64], values: npt.NDArray[np.float64], period_ms: int
) -> npt.NDArray[np.float64]:
    """The equity at t_0 + k x period for k = 0..K: the last point at or before each grid time."""
    if period_ms <= 0:
        raise ValueError("the sample period is positive")
    k = (int(ts[-1]) - int(ts[0])) // period_ms
    grid = ts[0] + period_ms * np.arange(k + 1, dtype=np.int64)
    idx = np.searchsorted(ts, grid, side="right") - 1
    sampled: npt.NDArray[np.float64] = values[idx]
    return sampled


def sharpe_sortino(
    ts: npt.NDArray[np.int64], values: npt.NDArray[np.float64], period_ms: int
) -> tuple[float | None, float | None]:
    """Annualised Sharpe and Sortino of the resampled period returns (see the module docstring)."""
    sampled = resample(ts, values, period_ms)
    if sampled.size < 3 or bool(np.any(sampled <= 0)):
        return None, None
    returns = sampled[1:] / sampled[:-1] - 1.0
    mean = float(returns.mean())
    scale = math.sqrt(YEAR_MS / period_ms)
    stdev = float(returns.std(ddof=1))
    sharpe = None if stdev < FLAT_STDEV else mean / stdev * scale
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if downside > 0:
        sortino: float | None = mean / downside * scale
    else:
        sortino = math.inf if mean > 0 else None
    return sharpe, sortino


def exposure_pct(trades: Sequence[Trade], start_ms: int, end_ms: int) -> float | None:
    """The share of [start, end] with at least one trade open, in percent; None for a zero-length run."""
    span = end_ms - start_ms
    if span <= 0:
        return None
    if not trades:
        return 0.0
    opens = np.clip(np.fromiter((t.open_ms for t in trades), np.int64, len(trades)), start_ms, end_ms)
    closes = np.clip(np.fromiter((t.close_ms for t in trades), np.int64, len(trades)), start_ms, end_ms)
    order = np.argsort(opens, kind="stable")
    opens, closes = opens[order], closes[order]
    reach = np.maximum.accumulate(closes)  # the latest close so far: an interval opening later is a new block
    new_block = np.ones(opens.size, dtype=bool)
    new_block[1:] = opens[1:] > reach[:-1]
    starts = np.flatnonzero(new_block)
    block_end = np.maximum.reduceat(closes, starts)
    covered = int(np.sum(block_end - opens[starts]))
    return covered / span * 100.0


def compute_metrics(result: BacktestResult) -> Metrics:
    """Every figure of ``result`` (pure; definitions in the module docstring)."""
    ts, values = equity_arrays(result.equity)
    start_ms, end_ms = int(ts[0]), int(ts[-1])
    first, last = result.equity[0][1], result.equity[-1][1]
    sharpe, sortino = sharpe_sortino(ts, values, result.sample_period_ms)
    totals = trade_stats(result.trades)
    passive = result.passive
    return Metrics(
        start_ms=start_ms,
        end_ms=end_ms,
        start_equity_usd=first,
        end_equity_usd=last,
        total_return_pct=float((last - first) / first * 100) if first > 0 else None,
        max_drawdown_pct=float(drawdown_pct(values).max()),
        sharpe=sharpe,
        sortino=sortino,
        sample_period_ms=result.sample_period_ms,
        periods_per_year=YEAR_MS / result.sample_period_ms,
        trades=totals.trades,
        wins=totals.wins,
        losses=totals.losses,
        win_rate=totals.win_rate,
        profit_factor=totals.profit_factor,
        avg_trade_secs=totals.avg_trade_secs,
        pnl_usd=totals.pnl_usd,
        fees_usd=totals.fees_usd,
        funding_usd=totals.funding_usd,
        net_pnl_usd=totals.net_pnl_usd,
        turnover_usd=totals.turnover_usd,
        exposure_pct=exposure_pct(result.trades, start_ms, end_ms),
        by_coin=_grouped(result.trades, "coin"),
        by_owner=_grouped(result.trades, "owner"),
        skips=sum(result.skips_by_reason.values()),
        skips_by_reason=dict(sorted(result.skips_by_reason.items())),
        passive_posted=None if passive is None else passive.posted,
        passive_filled=None if passive is None else passive.filled,
        passive_fill_ratio=None
        if passive is None or passive.posted == 0
        else passive.filled / passive.posted,
        passive_fill_ratio_usd=None if passive is None else _ratio(passive.filled_usd, passive.posted_usd),
        leader_return_pct=None if result.leader_return_pct is None else float(result.leader_return_pct),
    )
