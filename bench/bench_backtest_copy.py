"""Copying a wallet in a backtest: real leader fills through the full copy engine and risk layer.

``hyperfollow backtest copy`` (``app.backtest_copy.run_copy_backtest``) on three real leaders, one run each,
with the default follow settings and exits, 300 ms latency and a $10,000 follower:

* the copyscalper's UI trade-history export (``../shared/fixtures/real/leader_copyscalper_202511``, 8,347
  fills, 10 coins, 4 days);
* slots ``acc9`` (909 fills) and ``acc6`` (833 fills) of the copier audit (``tests/fixtures``).

Each run builds its own stepped embedded exchange, re-trades every recorded order, and the copy engine and the
risk service handle everything on the exchange's clock. The figures: the wall time of all runs together (the
goal is for 10,000 fills: the time is scaled to 10,000 when the set is smaller), and fills per second.
"""

from __future__ import annotations

import time
from pathlib import Path

import structlog

from hyperfollow.app.backtest_copy import run_copy_backtest
from hyperfollow.backtest.data.fills import FillHistory, load_fills
from hyperfollow.backtest.metrics import compute_metrics
from hyperfollow.copy.model import FollowSettings

ROOT = Path(__file__).resolve().parents[1]
AUDIT = ROOT / "tests/fixtures/real/copytrader_audit_202607/exchange_leader_fills.json.gz"
SCALPER = ROOT.parent / "shared/fixtures/real/leader_copyscalper_202511/trade_history.csv.gz"
TARGET_FILLS = 10_000

GOALS = {"10,000 leader fills, wall time": ("<=", 10.0)}


def _histories() -> list[tuple[str, FillHistory]]:
    out = [(f"audit {slot}", load_fills(AUDIT, slot=slot)) for slot in ("acc9", "acc6")]
    if SCALPER.exists():
        out.insert(0, ("copyscalper", load_fills(SCALPER)))
    return out


def run() -> list[tuple[str, float, str]]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    histories = _histories()
    fills = sum(len(h.fills) for _, h in histories)
    rows: list[tuple[str, float, str]] = []
    total = 0.0
    for name, history in histories:
        start = time.perf_counter()
        result = run_copy_backtest(history, FollowSettings())
        seconds = time.perf_counter() - start
        total += seconds
        m = compute_metrics(result)
        ours = m.total_return_pct if m.total_return_pct is not None else float("nan")
        theirs = m.leader_return_pct if m.leader_return_pct is not None else float("nan")
        rows.append((f"{name}: {len(history.fills):,} fills", seconds, f"s (return {ours:+.2f} % vs leader "
                     f"{theirs:+.2f} %, {m.trades} trades, fees {m.fees_usd:.2f} USD)"))  # fmt: skip
    rows.append(
        ("leader fills through copy + risk", fills / total, f"fills/s ({fills:,} fills, {total:.2f} s)")
    )
    rows.append(("10,000 leader fills, wall time", total * TARGET_FILLS / fills, "s (scaled from the run)"))
    return rows


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:45s} {value:12.2f} {unit}")
