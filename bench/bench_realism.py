"""Realism of the synthetic market: its microstructure figures next to the real venue's, per coin.

``python -m bench realism --seeds 7 8 --minutes 30`` runs the embedded market (market makers, the
background tape and the simulated traders) on a stepped clock for each seed and prints one table:
each figure of ``microstructure.FIGURES`` for BTC, ETH and SOL, the recorded range (two djienne
captures, plus the copier audit's live capture for the addresses and order counts) beside each seed's
value. Below it: the 1-minute return autocorrelation (48 h of the price path alone, against the
recorded 1-minute candles), the impact of a $1M BTC market buy (at once: the book it walked; 1 s
later: after the makers' next update, which quote around the moved price), and the simulated
traders' PnL.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from hyperfollow.exchange.market import DEFAULT_MODELS, SyntheticMarket
from hyperfollow.exchange.microstructure import FIGURES, measure, minute_autocorrelation
from hyperfollow.exchange.realism import START_MS, impact_counterfactual, simulate

COINS = ("BTC", "ETH", "SOL")
MINUTE_SERIES_HOURS = 48


def recorded_figures() -> dict[str, list[dict[str, float]]]:
    """The recorded figures per coin, one dict per capture (from the committed calibration table)."""
    from hyperfollow.exchange.calibrated import RECORDED

    out: dict[str, list[dict[str, float]]] = {}
    for capture in RECORDED.values():
        for coin, figures in capture.items():
            out.setdefault(coin, []).append(figures)
    return out


def synthetic_minute_autocorrelation(seed: int, coin: str, hours: int = MINUTE_SERIES_HOURS) -> float:
    """Lag-1 autocorrelation of 1-minute returns of ``coin``'s reference price over ``hours``."""
    market = SyntheticMarket({coin: DEFAULT_MODELS[coin]}, seed, START_MS)
    closes = [market.advance_to(START_MS + k * 60_000)[coin].ref_px for k in range(hours * 60 + 1)]
    return minute_autocorrelation(closes)


def _range(values: Sequence[float]) -> str:
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    return _fmt(lo) if _fmt(lo) == _fmt(hi) else f"{_fmt(lo)} … {_fmt(hi)}"


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "n/a"
    a = abs(v)
    if a >= 10_000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    """Print the table of real vs synthetic figures."""
    parser = argparse.ArgumentParser(prog="python -m bench realism", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8])
    parser.add_argument("--minutes", type=float, default=30.0)
    args = parser.parse_args(argv)
    console = Console(width=max(170, Console().width))
    real = recorded_figures()
    measured: dict[int, dict[str, dict[str, float]]] = {}
    pnl: dict[int, dict[str, float]] = {}
    t0 = time.perf_counter()
    for seed in args.seeds:
        run = simulate(seed, args.minutes)
        measured[seed] = {
            coin: measure(
                run.books[coin], run.prints.get(coin, []), orders_per_level=run.orders_per_level[coin]
            )
            for coin in run.books
        }
        pnl[seed] = run.trader_pnl
    sim_s = time.perf_counter() - t0

    table = Table(
        title=f"real vs synthetic, {args.minutes:g} simulated minutes per seed",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("figure", no_wrap=True)
    for coin in COINS:
        table.add_column(f"{coin} real", justify="right", no_wrap=True)
        for seed in args.seeds:
            table.add_column(f"{coin} s{seed}", justify="right", no_wrap=True)
    for key, label in FIGURES:
        row = [label]
        for coin in COINS:
            row.append(_range([f.get(key, math.nan) for f in real.get(coin, [])]))
            row += [_fmt(measured[s].get(coin, {}).get(key, math.nan)) for s in args.seeds]
        table.add_row(*row)
    row = ["1 min return autocorrelation, lag 1"]
    for coin in COINS:
        row.append(_range([f.get("ac1_1m", math.nan) for f in real.get(coin, [])]))
        row += [_fmt(synthetic_minute_autocorrelation(s, coin)) for s in args.seeds]
    table.add_row(*row)
    console.print(table)

    impact = Table(
        title="a $1M BTC market buy: mid move vs the same seed without it, bps", box=box.SIMPLE_HEAD
    )
    for column in ("seed", "at once", "1 s later", "10 s later", "60 s later", "kept at 10 s"):
        impact.add_column(column, justify="right")
    for seed in args.seeds:
        moves = impact_counterfactual(seed, "BTC", 1_000_000.0, after_s=(0, 1, 10, 60))
        kept = moves["10s"] / moves["1s"] if moves["1s"] else math.nan
        row = [_fmt(moves[k]) for k in ("0s", "1s", "10s", "60s")]
        impact.add_row(str(seed), *row, _fmt(kept))
    console.print(impact)

    traders = Table(title="simulated traders' PnL over the run, USD", box=box.SIMPLE_HEAD)
    traders.add_column("trader")
    for seed in args.seeds:
        traders.add_column(f"seed {seed}", justify="right")
    for name in pnl[args.seeds[0]]:
        traders.add_row(name, *[f"{pnl[s].get(name, math.nan):,.0f}" for s in args.seeds])
    console.print(traders)
    console.print(f"simulation {sim_s:.1f}s for {len(args.seeds)} seed(s) x {args.minutes:g} min")
    return 0


def run() -> list[tuple[str, float, str]]:
    """For the generic runner: a few headline figures of one short run (seed 7, 5 minutes)."""
    figures = measure_short(7, 5.0)
    return [(f"{coin} {key}", value, "") for coin, fs in figures.items() for key, value in fs.items()]


def measure_short(seed: int, minutes: float) -> dict[str, dict[str, float]]:
    """Figures of BTC, ETH and SOL after a short run."""
    run_ = simulate(seed, minutes)
    return {
        coin: measure(
            run_.books[coin], run_.prints.get(coin, []), orders_per_level=run_.orders_per_level[coin]
        )
        for coin in COINS
    }


if __name__ == "__main__":
    raise SystemExit(main())
