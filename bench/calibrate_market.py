"""Calibrate the synthetic market to the recorded real venue; writes ``exchange/calibrated.py``.

``python -m bench.calibrate_market`` reads ``../shared/fixtures/real`` (the djienne L2 + trade captures
of 2025-09-03/04 for BTC, ETH and SOL; the copier audit's live capture and the hftbacktest capture for
addresses and orders per level; the axon 1-minute candles) and writes two tables:

- ``RECORDED``: the microstructure figures of every capture (``microstructure.measure``), what the
  realism bench and tests compare the synthetic market with;
- ``PROFILES``: per recorded coin, the book and tape parameters the market model is built from
  (depth profile by level, level gaps, orders per level, trade sizes and rates, buyer share).

Re-runnable: the output depends only on the recordings.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np

from bench.recorded import (
    DJIENNE,
    load_axon_closes,
    load_djienne,
    load_hftbacktest,
    load_live_books,
)
from hyperfollow.exchange.microstructure import Print, Snapshot, measure, minute_autocorrelation

OUT = Path(__file__).resolve().parents[1] / "src" / "hyperfollow" / "exchange" / "calibrated.py"
LEVEL_QUANTILES = (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98)
ORDER_QUANTILES = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)
LIVE_KEYS = ("trades_per_min", "median_trade_usd", "buy_share", "addresses_5m", "orders_per_level")


def _clean(figures: dict[str, float], keys: tuple[str, ...] | None = None) -> dict[str, float]:
    return {
        k: round(v, 4 if abs(v) < 100 else 1)
        for k, v in figures.items()
        if not math.isnan(v) and (keys is None or k in keys)
    }


def recorded() -> dict[str, dict[str, dict[str, float]]]:
    """Figures per capture per coin (only the figures a capture is long or rich enough to give)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for folder in DJIENNE:
        day = folder.rsplit("_", 1)[1]
        name = f"djienne {day[:4]}-{day[4:6]}-{day[6:]}"
        out[name] = {coin: _clean(measure(b, p)) for coin, (b, p, _) in load_djienne(folder).items()}
    live = load_live_books()
    out["copier audit live 2026-07-22"] = {
        coin: _clean(measure(b, p, orders_per_level=n), LIVE_KEYS) for coin, (b, p, n) in live.items()
    }
    hft = load_hftbacktest()
    out["hftbacktest 2025-01-26"] = {
        coin: _clean(measure(b, p, orders_per_level=n), ("orders_per_level",))
        for coin, (b, p, n) in hft.items()
    }
    out["axon 1m candles 2026-07-25"] = {
        coin: {"ac1_1m": round(minute_autocorrelation(load_axon_closes(coin)), 4)} for coin in ("BTC", "ETH")
    }
    return out


def _taker_orders(prints: list[Print]) -> list[float]:
    """USD size of each taker order: the prints of one venue time and side are one order's fills."""
    orders: dict[tuple[int, bool], float] = {}
    for p in prints:
        key = (p.ts_ms, p.taker_is_buy)
        orders[key] = orders.get(key, 0.0) + p.px * p.sz
    return list(orders.values())


def _tick(books: list[Snapshot]) -> float:
    return min(
        abs(s[i + 1][0] - s[i][0]) for b in books[:200] for s in (b.bids, b.asks) for i in range(len(s) - 1)
    )


def profiles() -> dict[str, dict[str, list[float] | float]]:
    """Book and tape parameters per recorded coin, both djienne captures pooled.

    ``level_usd``: per level (0 = best) the USD size at ``LEVEL_QUANTILES`` (both sides pooled);
    ``gap_ticks``: share of consecutive levels 1, 2 and 3+ ticks apart; ``wide_spread``: share of books
    whose spread is more than one tick; ``taker_orders_per_min`` and ``order_usd`` (at
    ``ORDER_QUANTILES``): the taker orders behind the prints (the prints of one venue time and side);
    ``prints_per_min`` and ``print_usd`` (same quantiles): the prints themselves; ``buy_share``: share of
    prints bought; ``orders_per_level``: mean ``n`` per level of the live BTC books (the only feed here
    with order counts; used for every coin).
    """
    captures = [load_djienne(folder) for folder in DJIENNE]
    live_n = np.array(load_live_books()["BTC"][2], dtype=float).reshape(-1, 2, 20).mean(axis=(0, 1))
    out: dict[str, dict[str, list[float] | float]] = {}
    for coin in captures[0]:
        books = [b for cap in captures for b in cap[coin][0] if len(b.bids) >= 20 and len(b.asks) >= 20]
        prints = [p for cap in captures for p in cap[coin][1]]
        minutes = sum((cap[coin][1][-1].ts_ms - cap[coin][1][0].ts_ms) / 60_000 for cap in captures)
        levels = np.array([[px * sz for px, sz in side[:20]] for b in books for side in (b.bids, b.asks)])
        tick = _tick(books)
        gaps = Counter(
            min(3, round(abs(side[i + 1][0] - side[i][0]) / tick))
            for b in books
            for side in (b.bids, b.asks)
            for i in range(19)
        )
        total_gaps = sum(gaps.values())
        wide = sum(round((b.asks[0][0] - b.bids[0][0]) / tick) > 1 for b in books) / len(books)
        orders = _taker_orders([p for cap in captures for p in cap[coin][1]])
        out[coin] = {
            "level_usd": [
                [round(float(q), 1) for q in np.quantile(levels[:, i], LEVEL_QUANTILES)] for i in range(20)
            ],
            "gap_ticks": [round(gaps[k] / total_gaps, 4) for k in (1, 2, 3)],
            "wide_spread": round(wide, 4),
            "taker_orders_per_min": round(len(orders) / minutes, 2),
            "order_usd": [round(float(q), 1) for q in np.quantile(orders, ORDER_QUANTILES)],
            "prints_per_min": round(len(prints) / minutes, 2),
            "print_usd": [
                round(float(q), 1) for q in np.quantile([p.px * p.sz for p in prints], ORDER_QUANTILES)
            ],
            "buy_share": round(sum(p.taker_is_buy for p in prints) / len(prints), 4),
            "orders_per_level": [round(float(n), 2) for n in live_n],
        }
    return out


def main() -> None:
    """Write the tables."""
    tables = {"RECORDED": recorded(), "PROFILES": profiles()}
    lines = [
        '"""Calibration tables of the synthetic market, written by ``python -m bench.calibrate_market``.',
        "",
        "Generated from the recorded real venue (see that script); do not edit by hand.",
        '"""',
        "",
        "from typing import Any",
        "",
    ]
    for name, table in tables.items():
        body = json.dumps(table, indent=4)
        kind = "dict[str, dict[str, dict[str, float]]]" if name == "RECORDED" else "dict[str, dict[str, Any]]"
        lines.append(f"{name}: {kind} = {body}")
        lines.append("")
    OUT.write_text("\n".join(lines) + "\n")
    subprocess.run(["ruff", "format", str(OUT)], check=False, capture_output=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
