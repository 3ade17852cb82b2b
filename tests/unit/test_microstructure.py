"""The microstructure figures on hand-made streams whose figures are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hyperfollow.exchange.microstructure import (
    Print,
    Snapshot,
    autocorrelation,
    kurtosis,
    measure,
    minute_autocorrelation,
    second_grid,
)


def _book(ts: int, mid_ticks: int, bid_sizes: list[float], ask_sizes: list[float]) -> Snapshot:
    """A book with one-tick ($1) levels around ``mid_ticks + 0.5``, prices near 10,000."""
    bids = [(float(mid_ticks - i), s) for i, s in enumerate(bid_sizes)]
    asks = [(float(mid_ticks + 1 + i), s) for i, s in enumerate(ask_sizes)]
    return Snapshot(ts, bids, asks)


def test_book_figures_of_a_known_book() -> None:
    books = [_book(t * 500, 10_000, [2.0] * 20, [1.0] * 20) for t in range(40)]
    f = measure(books, [])
    mid = 10_000.5
    assert f["spread_bps"] == pytest.approx(1 / mid * 1e4)
    assert f["best_usd"] == pytest.approx((10_000 * 2 + 10_001 * 1) / 2, rel=1e-3)  # median of both sides
    assert f["cover20_bps"] == pytest.approx(19 / mid * 1e4)
    assert f["mid_changes_per_s"] == 0
    assert f["unchanged_s_share"] == 1.0
    assert math.isnan(f["obi_ratio"])  # a constant imbalance has no spread to compare
    assert math.isnan(f["trades_per_min"])


def test_cost_walks_the_book() -> None:
    # $100k at ~10,000: 10 coins; the ask has 4 coins at 10,001 and 6 at 10,002
    books = [
        _book(0, 10_000, [100.0] * 20, [4.0, 6.0] + [1.0] * 18),
        _book(500, 10_000, [100.0] * 20, [100.0] * 20),
    ]
    f = measure(books, [])
    mid = 10_000.5
    usd = 100_000.0
    base = 40_004 / 10_001 + (usd - 40_004) / 10_002
    ask_cost = (usd / base - mid) / mid * 1e4
    bid_cost = (mid - 10_000) / mid * 1e4
    # four sides: two bids at half a tick, the 4+6 ask and a deep ask at half a tick; median of four values
    assert f["cost100k_bps"] == pytest.approx(bid_cost)
    assert ask_cost > bid_cost


def test_mid_changes_seconds_and_imbalance() -> None:
    books = []
    rng = np.random.default_rng(1)
    for k in range(400):  # a snapshot every 500 ms; the mid steps up by a tick every 4 s
        front = list(rng.uniform(0.1, 5.0, 5))
        books.append(
            _book(k * 500, 10_000 + k // 8, front + [3.0] * 15, list(rng.uniform(0.1, 5.0, 5)) + [3.0] * 15)
        )
    f = measure(books, [])
    assert f["mid_changes_per_s"] == pytest.approx(49 / 199.5)
    assert f["unchanged_s_share"] == pytest.approx(0.75, abs=0.01)  # one second in four sees the step
    assert f["obi_ratio"] > 1.5  # the front flickers, the deep book is flat


def test_tape_figures() -> None:
    prints = [
        Print(k * 1_000, 100.0, 1.0 + (k % 3), k % 4 != 0, (f"0x{k % 7:040x}", f"0x{100 + k % 5:040x}"))
        for k in range(600)
    ]
    f = measure([], prints)
    assert f["trades_per_min"] == pytest.approx(600 / (599 / 60))
    assert f["median_trade_usd"] == 200.0
    assert f["buy_share"] == 0.75
    assert f["addresses_5m"] == 12


def test_statistics_helpers() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(200_000)
    assert kurtosis(x) == pytest.approx(3.0, abs=0.05)
    assert abs(autocorrelation(x, 1)) < 0.01
    ar = np.empty_like(x)
    ar[0] = 0
    for i in range(1, x.size):
        ar[i] = 0.5 * ar[i - 1] + x[i]
    assert autocorrelation(ar, 1) == pytest.approx(0.5, abs=0.01)
    closes = np.exp(np.cumsum(rng.standard_normal(5_000) * 1e-3)) * 100
    assert abs(minute_autocorrelation(list(closes))) < 0.05
    assert list(second_grid([0, 400, 1_500, 2_000], np.array([1.0, 2.0, 3.0, 4.0]))) == [1.0, 2.0, 4.0]
