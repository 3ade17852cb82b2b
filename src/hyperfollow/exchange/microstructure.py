"""Microstructure figures of one coin's market, from a stream of book snapshots and trade prints.

The same pure function measures a recording of the real venue and a run of the synthetic market, so
the two can be compared figure by figure (``bench realism``, the calibration script, the realism tests).
Prices and sizes are floats here: these are statistics, never money.

Definitions (every median is over snapshots or prints, every rate over the stream's time span):

- ``trades_per_min``: prints per minute; ``median_trade_usd``: median ``px * sz`` of a print.
- ``spread_bps``: median best ask minus best bid, over the mid.
- ``best_usd``: median USD size of the best level, both sides pooled.
- ``cover20_bps``: median distance from the best to the 20th level of a side, over the mid.
- ``cost100k_bps``: median cost of a $100k market order walking the book, against the mid, both sides.
- ``mid_changes_per_s``: snapshots whose mid differs from the previous snapshot's, per second.
- ``unchanged_s_share``: share of one-second intervals (mid sampled as of each second) without a change.
- ``ac1_1s`` / ``kurt_1s``: lag-1 autocorrelation and (plain, normal = 3) kurtosis of 1 s log returns.
- ``obi_ratio``: std of the 5-level order-book imbalance over std of the 20-level one.
- ``obi_flips``: sign changes of the 20-level imbalance per snapshot.
- ``obi_front_lead`` / ``obi_deep_lead``: correlation of the imbalance of levels 1-5 / 6-20 with the
  mid's log return over the next ``LEAD_MS`` (which part of the book tells where the price goes).
- ``addresses_5m``: distinct addresses (buyers and sellers) printing per 5 minutes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOK_LEVELS = 20
COST_ORDER_USD = 100_000.0
LEAD_MS = 10_000


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One l2Book snapshot: (price, size) per level, best first."""

    ts_ms: int
    bids: Sequence[tuple[float, float]]
    asks: Sequence[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class Print:
    """One trade print; ``users`` = (buyer, seller) when the feed carries them."""

    ts_ms: int
    px: float
    sz: float
    taker_is_buy: bool
    users: tuple[str, str] | None = None


# key, label as printed in the table, and how it is compared: "ratio" (within a factor) or "value"
FIGURES: tuple[tuple[str, str], ...] = (
    ("trades_per_min", "trades per minute"),
    ("median_trade_usd", "median trade, USD"),
    ("buy_share", "taker buy share of prints"),
    ("spread_bps", "median spread, bps"),
    ("best_usd", "best level, USD per side"),
    ("cover20_bps", "20 levels cover, bps"),
    ("cost100k_bps", "cost of a $100k market order, bps"),
    ("orders_per_level", "orders per level (n)"),
    ("mid_changes_per_s", "mid changes per second"),
    ("unchanged_s_share", "seconds with the mid unchanged"),
    ("ac1_1s", "1 s return autocorrelation, lag 1"),
    ("kurt_1s", "1 s return kurtosis"),
    ("vol_1s_bps", "1 s return std, bps"),
    ("obi_ratio", "std(OBI over 5 levels) / std(OBI over 20)"),
    ("obi_flips", "OBI sign flips per snapshot"),
    ("obi_front_lead", "corr(OBI levels 1-5, next 10 s return)"),
    ("obi_deep_lead", "corr(OBI levels 6-20, next 10 s return)"),
    ("addresses_5m", "distinct trading addresses per 5 min"),
)


def measure(
    books: Sequence[Snapshot],
    prints: Sequence[Print],
    *,
    orders_per_level: Sequence[int] = (),
) -> dict[str, float]:
    """Every figure of ``FIGURES`` for one coin (NaN where the stream has too little to say).

    ``orders_per_level`` are the ``n`` counts of the levels seen, when the feed carries them.
    """
    out = dict.fromkeys((key for key, _ in FIGURES), math.nan)
    books = [b for b in books if b.bids and b.asks]
    times = [b.ts_ms for b in books] + [p.ts_ms for p in prints]
    if not times:
        return out
    span_ms = max(times) - min(times)
    if prints and span_ms > 0:
        out["trades_per_min"] = len(prints) / (span_ms / 60_000)
        out["median_trade_usd"] = float(np.median([p.px * p.sz for p in prints]))
        out["buy_share"] = sum(p.taker_is_buy for p in prints) / len(prints)
        out["addresses_5m"] = _addresses_per_5m(prints)
    if orders_per_level:
        out["orders_per_level"] = float(np.mean(orders_per_level))
    if books:
        out.update(_book_figures(books))
    return out


def _book_figures(books: Sequence[Snapshot]) -> dict[str, float]:
    mids = np.array([(b.bids[0][0] + b.asks[0][0]) / 2 for b in books])
    spread = [(b.asks[0][0] - b.bids[0][0]) / m * 1e4 for b, m in zip(books, mids, strict=True)]
    best = [b.bids[0][0] * b.bids[0][1] for b in books] + [b.asks[0][0] * b.asks[0][1] for b in books]
    cover = [
        (abs(side[-1][0] - side[0][0]) / m * 1e4)
        for b, m in zip(books, mids, strict=True)
        for side in (b.bids, b.asks)
        if len(side) >= BOOK_LEVELS
    ]
    cost = [
        c
        for b, m in zip(books, mids, strict=True)
        for side in (b.bids, b.asks)
        if (c := _walk_cost_bps(side, m, COST_ORDER_USD)) is not None
    ]
    out = {
        "spread_bps": float(np.median(spread)),
        "best_usd": float(np.median(best)),
        "cover20_bps": float(np.median(cover)) if cover else math.nan,
        "cost100k_bps": float(np.median(cost)) if cost else math.nan,
    }
    span_s = (books[-1].ts_ms - books[0].ts_ms) / 1000
    if span_s > 0:
        out["mid_changes_per_s"] = float(np.count_nonzero(np.diff(mids))) / span_s
    out.update(_second_figures([b.ts_ms for b in books], mids))
    obi5 = np.array([_obi(b, 5) for b in books])
    obi20 = np.array([_obi(b, BOOK_LEVELS) for b in books])
    if len(books) > 2 and obi20.std() > 0:
        out["obi_ratio"] = float(obi5.std() / obi20.std())
        signs = np.sign(obi20)
        out["obi_flips"] = float(np.count_nonzero(signs[1:] != signs[:-1])) / (len(books) - 1)
    ts = np.array([b.ts_ms for b in books], dtype=np.int64)
    later = np.searchsorted(ts, ts + LEAD_MS)
    ok = later < len(books)
    if ok.sum() > 10:
        future = np.log(mids[later[ok]] / mids[ok])
        deep = np.array([_obi(b, BOOK_LEVELS, 5) for b in books])
        for key, obi in (("obi_front_lead", obi5), ("obi_deep_lead", deep)):
            x = obi[ok]
            if x.std() > 0 and future.std() > 0:
                out[key] = float(np.corrcoef(x, future)[0, 1])
    return out


def _walk_cost_bps(side: Sequence[tuple[float, float]], mid: float, usd: float) -> float | None:
    """Average price of a market order of ``usd`` walking ``side``, as bps away from ``mid``."""
    left, base = usd, 0.0
    for px, sz in side:
        take = min(left, px * sz)
        base += take / px
        left -= take
        if left <= 0:
            return abs(usd / base - mid) / mid * 1e4
    return None


def _obi(book: Snapshot, levels: int, skip: int = 0) -> float:
    bid = sum(sz for _, sz in book.bids[skip:levels])
    ask = sum(sz for _, sz in book.asks[skip:levels])
    return (bid - ask) / (bid + ask) if bid + ask > 0 else 0.0


def second_grid(ts_ms: Sequence[int], values: np.ndarray) -> np.ndarray:
    """``values`` as of each whole second from the first timestamp (last value at or before it)."""
    t = np.asarray(ts_ms, dtype=np.int64)
    grid = np.arange(t[0], t[-1] + 1, 1000)
    idx = np.searchsorted(t, grid, side="right") - 1
    return np.asarray(values)[idx]


def _second_figures(ts_ms: Sequence[int], mids: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    per_s = second_grid(ts_ms, mids)
    if per_s.size < 10:
        return out
    r = np.diff(np.log(per_s))
    out["unchanged_s_share"] = float(np.mean(r == 0))
    out["vol_1s_bps"] = float(r.std() * 1e4)
    out["ac1_1s"] = autocorrelation(r, 1)
    out["kurt_1s"] = kurtosis(r)
    return out


def autocorrelation(x: np.ndarray, lag: int) -> float:
    """Sample autocorrelation at ``lag`` (NaN for a constant or too short series)."""
    x = np.asarray(x, dtype=float)
    if x.size <= lag + 2:
        return math.nan
    d = x - x.mean()
    den = float(d @ d)
    return float(d[:-lag] @ d[lag:]) / den if den > 0 else math.nan


def kurtosis(x: np.ndarray) -> float:
    """Plain kurtosis E[d^4] / E[d^2]^2 (3 for a normal law; NaN for a constant series)."""
    d = np.asarray(x, dtype=float) - np.mean(x)
    m2 = float(np.mean(d * d))
    return float(np.mean(d**4)) / (m2 * m2) if m2 > 0 else math.nan


def _addresses_per_5m(prints: Sequence[Print]) -> float:
    with_users = [p for p in prints if p.users is not None]
    if not with_users:
        return math.nan
    start = with_users[0].ts_ms
    windows: dict[int, set[str]] = {}
    for p in with_users:
        assert p.users is not None
        windows.setdefault((p.ts_ms - start) // 300_000, set()).update(p.users)
    span = with_users[-1].ts_ms - start
    full = [k for k in windows if (k + 1) * 300_000 <= span] or list(windows)[:1]
    return float(np.mean([len(windows[k]) for k in full]))


def minute_autocorrelation(closes: Sequence[float]) -> float:
    """Lag-1 autocorrelation of 1-minute log returns from consecutive 1-minute closes."""
    px = np.asarray(closes, dtype=float)
    return autocorrelation(np.diff(np.log(px)), 1)
