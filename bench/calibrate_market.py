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
from pathlib import Path

from bench.recorded import (
    DJIENNE,
    load_axon_closes,
    load_djienne,
    load_hftbacktest,
    load_live_books,
)
from hyperfollow.exchange.microstructure import measure, minute_autocorrelation

OUT = Path(__file__).resolve().parents[1] / "src" / "hyperfollow" / "exchange" / "calibrated.py"
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


def main() -> None:
    """Write the tables."""
    tables = {"RECORDED": recorded()}
    lines = [
        '"""Calibration tables of the synthetic market, written by ``python -m bench.calibrate_market``.',
        "",
        "Generated from the recorded real venue (see that script); do not edit by hand.",
        '"""',
        "",
    ]
    for name, table in tables.items():
        body = json.dumps(table, indent=4)
        lines.append(f"{name}: dict[str, dict[str, dict[str, float]]] = {body}")
        lines.append("")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
