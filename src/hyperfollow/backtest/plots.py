"""The report's charts, as PNG bytes: equity and drawdown, follower vs leader, trades on the price, the
distribution of trade returns.

matplotlib's object API on the Agg canvas (no pyplot, no global backend switch, no display). PNGs carry no
software or date metadata, so the same input gives the same bytes with the same matplotlib. Long series are
thinned to a min/max envelope per bucket before drawing: the picture keeps every spike, the file stays small.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from hyperfollow.backtest.metrics import EquityPoint, PricePoint, Trade, drawdown_pct, equity_arrays
from hyperfollow.domain.model import Side

MAX_POINTS = 4000  # drawn points per series (a 1,000 px wide chart shows no more)
DPI = 110
GREEN, RED, BLUE, GREY = "#1a9850", "#d73027", "#2b6cb0", "#888888"

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


def thin(ts: Ints, values: Floats, max_points: int = MAX_POINTS) -> tuple[Ints, Floats]:
    """At most about ``max_points`` points: each bucket's min and max (at the bucket's first time) and the
    last point, so peaks and troughs survive."""
    n = values.size
    if n <= max_points:
        return ts, values
    starts = np.linspace(0, n, max_points // 2, endpoint=False).astype(np.int64)
    lo = np.minimum.reduceat(values, starts)
    hi = np.maximum.reduceat(values, starts)
    t = np.append(np.repeat(ts[starts], 2), ts[-1])
    v = np.append(np.column_stack([lo, hi]).ravel(), values[-1])
    return t, v


def _when(ts: Ints) -> npt.NDArray[np.datetime64]:
    return ts.astype("datetime64[ms]")


def _time_axis(ax: Axes) -> None:
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]  # matplotlib's stubs leave it untyped
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def equity_drawdown_png(equity: Sequence[EquityPoint], title: str = "equity") -> bytes:
    """Equity (USD) above, drawdown from the running peak (%) below, on one time axis."""
    ts, values = equity_arrays(equity)
    dd = drawdown_pct(values)
    fig = Figure(figsize=(10, 5.6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    t, v = thin(ts, values)
    top.plot(_when(t), v, color=BLUE, linewidth=1.4)
    top.set_ylabel("equity (USD)")
    top.set_title(title)
    top.grid(alpha=0.3)
    t, d = thin(ts, -dd)
    bottom.fill_between(_when(t), d, 0.0, color=RED, alpha=0.35, linewidth=0)
    bottom.plot(_when(t), d, color=RED, linewidth=0.8)
    bottom.set_ylabel("drawdown (%)")
    bottom.grid(alpha=0.3)
    _time_axis(bottom)
    return _png(fig)


def versus_leader_png(follower: Sequence[EquityPoint], leader: Sequence[EquityPoint]) -> bytes:
    """Follower and leader equity, each as 100 at its first point (a $1k follower and a $1m leader share
    one axis)."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    for name, curve, colour, width in (("follower", follower, BLUE, 1.6), ("leader", leader, GREY, 1.1)):
        ts, values = equity_arrays(curve)
        if values[0] <= 0:
            continue
        t, v = thin(ts, values / values[0] * 100.0)
        ax.plot(_when(t), v, color=colour, linewidth=width, label=name)
    ax.axhline(100.0, color=GREY, linewidth=0.6, linestyle=":")
    ax.set_ylabel("equity (start = 100)")
    ax.set_title("follower vs leader")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    _time_axis(ax)
    return _png(fig)


def trades_on_price_png(coin: str, prices: Sequence[PricePoint], trades: Sequence[Trade]) -> bytes:
    """The coin's price with each trade: an entry marker (up: long, down: short), an exit cross, and a
    line between them, green for a net win and red otherwise."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    if prices:
        ts, values = equity_arrays(prices)
        t, v = thin(ts, values)
        ax.plot(_when(t), v, color=GREY, linewidth=0.9, label="price")
    if trades:
        opened = _when(np.array([t.open_ms for t in trades], dtype=np.int64))
        closed = _when(np.array([t.close_ms for t in trades], dtype=np.int64))
        entry = np.array([float(t.entry_px) for t in trades])
        exit_ = np.array([float(t.exit_px) for t in trades])
        won = np.array([t.net_pnl > 0 for t in trades])
        long = np.array([t.side is Side.BUY for t in trades])
        x0, x1 = opened.astype(np.float64) / 86_400_000, closed.astype(np.float64) / 86_400_000
        segments = np.stack([np.column_stack([x0, entry]), np.column_stack([x1, exit_])], axis=1)
        ax.scatter(opened[long], entry[long], marker="^", s=28, color=GREEN, label="long entry", zorder=3)
        ax.scatter(opened[~long], entry[~long], marker="v", s=28, color=RED, label="short entry", zorder=3)
        ax.scatter(closed, exit_, marker="x", s=22, color="black", linewidths=0.9, label="exit", zorder=3)
        # after the scatters: the axis is a date axis by now, in matplotlib's unit (days since 1970)
        colours = np.where(won, GREEN, RED)
        ax.add_collection(LineCollection(list(segments), colors=list(colours), linewidths=0.8, alpha=0.6))
    ax.set_title(f"{coin}: {len(trades)} trades")
    ax.set_ylabel("price")
    if prices or trades:
        ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    _time_axis(ax)
    return _png(fig)


def returns_png(returns_pct: Sequence[float]) -> bytes:
    """Histogram of the trades' net returns on their entry notional (%), with zero and the mean marked."""
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax = fig.subplots()
    values = np.asarray(returns_pct, dtype=np.float64)
    bins = int(min(60, max(10, np.sqrt(values.size) * 2)))
    ax.hist(values[values > 0], bins=bins, range=_range(values), color=GREEN, alpha=0.75, label="wins")
    ax.hist(values[values <= 0], bins=bins, range=_range(values), color=RED, alpha=0.75, label="losses")
    ax.axvline(0.0, color="black", linewidth=0.8)
    mean = float(values.mean())
    ax.axvline(mean, color=BLUE, linewidth=1.2, linestyle="--", label=f"mean {mean:.3f}%")
    ax.set_xlabel("net return per trade (% of entry notional)")
    ax.set_ylabel("trades")
    ax.set_title(f"distribution of {values.size} trade returns")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return _png(fig)


def _range(values: Floats) -> tuple[float, float]:
    lo, hi = float(values.min()), float(values.max())
    return (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)
