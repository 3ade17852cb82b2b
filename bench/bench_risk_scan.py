"""Speed of the risk monitor's scan: all open positions checked against their exit thresholds at once.

``python -m bench.bench_risk_scan`` prints one line per figure; ``run()`` returns them as
``(name, value, unit)`` for the bench runner. Books of 1,000 / 10,000 / 100,000 positions (seeded) over
150 coins; each figure is the median of REPEATS timed calls on the same book.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from bench._stats import median
from hyperfollow.risk.exits import ExitPolicy, ExitState, TakeProfitTier
from hyperfollow.risk.scan import Holding, PositionBook

SIZES = (1_000, 10_000, 100_000)
COINS = [f"C{k}" for k in range(150)]
HOUR = 3_600_000
NOW = 50 * HOUR
LIQ_ALERT, MARGIN_ALERT = 0.05, 0.8
REPEATS = {1_000: 200, 10_000: 50, 100_000: 15}

GOALS = {"scan 100,000 positions (numpy SoA)": ("<", 10.0)}

POLICIES = [
    ExitPolicy(),  # the default: -15 % ROE hard stop
    ExitPolicy(
        take_profit_tiers=(
            TakeProfitTier(Decimal(20), Decimal("0.3")),
            TakeProfitTier(Decimal(50), Decimal(1)),
        )
    ),
    ExitPolicy(trailing_activation_pct=Decimal(2), trailing_retrace_pct=Decimal(8)),
    ExitPolicy(stop_loss_price_pct=Decimal(5), max_holding_ms=72 * HOUR, liquidation_buffer_pct=Decimal(5)),
]


def build(n: int, seed: int = 5) -> tuple[PositionBook, dict[str, Decimal], dict[str, float]]:
    """A book of ``n`` positions (mixed policies, sides, leverages) and mids about 1 % from the entries."""
    rng = random.Random(seed)
    book = PositionBook(capacity=n, liq_alert_pct=LIQ_ALERT * 100, margin_use_alert=MARGIN_ALERT)
    base = {coin: Decimal(rng.randint(1_000, 100_000)) / 100 for coin in COINS}
    for k in range(n):
        coin = COINS[k % len(COINS)]
        entry = base[coin] * Decimal(rng.randint(970, 1030)) / 1000
        size = Decimal(rng.randint(1, 10_000)) / 100
        long = rng.random() < 0.5
        liq = entry * Decimal("0.7" if long else "1.3")
        book.upsert(
            Holding(
                f"0x{k // 20:040x}",  # 20 positions per account, all on different coins
                coin,
                size if long else -size,
                entry,
                Decimal(rng.choice([1, 2, 3, 5, 10])),
                POLICIES[k % len(POLICIES)],
                ExitState(entry_time_ms=rng.randint(0, 49) * HOUR),
                liq,
            )
        )
    equity = {f"0x{account:040x}": Decimal(rng.randint(200_000, 2_000_000)) for account in range(n // 20 + 1)}
    for account, value in equity.items():
        book.set_equity(account, value)
    mids = {coin: base[coin] * Decimal(rng.randint(995, 1005)) / 1000 for coin in COINS}
    book.set_marks(mids)
    return book, mids, {account: float(value) for account, value in equity.items()}


def as_dicts(book: PositionBook) -> list[dict[str, Any]]:
    """The same positions as one dict of floats each (the thresholds precomputed, as the book does)."""
    a = book._a  # the bench reads the book's mirrors to give the loop the same precomputed thresholds
    out = []
    for i in range(len(book)):
        h = book.holding(i)
        out.append(
            {
                "account": h.account,
                "coin": h.coin,
                "size": float(abs(h.size)),
                "leverage": float(h.leverage),
                "liq": float(a.f["liq"][i]),
                "long": h.size > 0,
                "exit_px": float(a.f["exit_px"][i]),
                "tp_px": float(a.f["tp_px"][i]),
                "ratchet_px": float(a.f["ratchet_px"][i]),
                "deadline": int(a.deadline[i]),
            }
        )
    return out


def loop_scan(
    positions: list[dict[str, Any]], mids: dict[str, float], equity: dict[str, float], now_ms: int
) -> list[int]:
    """The scan written as a plain Python loop over dict-per-position (NaN comparisons are False): the same
    thresholds, liquidation distance and per-account margin use."""
    margin: dict[str, float] = {}
    for p in positions:
        margin[p["account"]] = margin.get(p["account"], 0.0) + p["size"] * mids[p["coin"]] / p["leverage"]
    need = []
    for i, p in enumerate(positions):
        mark = mids[p["coin"]]
        if p["long"]:
            hit = mark <= p["exit_px"] or mark >= p["tp_px"] or mark >= p["ratchet_px"]
        else:
            hit = mark >= p["exit_px"] or mark <= p["tp_px"] or mark <= p["ratchet_px"]
        hit = hit or now_ms >= p["deadline"] or abs(mark - p["liq"]) <= LIQ_ALERT * mark
        if hit or margin[p["account"]] / equity[p["account"]] > MARGIN_ALERT:
            need.append(i)
    return need


def _median_ms(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return median(times) * 1000.0


def run() -> list[tuple[str, float, str]]:
    """Scan time per book size (numpy SoA, and the dict loop beside it), plus the candidates' exact
    re-check cost."""
    rows: list[tuple[str, float, str]] = []
    for n in SIZES:
        book, mids, equity = build(n)
        fmids = {c: float(m) for c, m in mids.items()}
        positions = as_dicts(book)
        fast = set(book.scan(NOW).tolist())
        if set(loop_scan(positions, fmids, equity, NOW)) != fast:
            raise AssertionError("the dict loop and the vectorised scan disagree")
        reps = REPEATS[n]
        rows.append((f"scan {n:,} positions (numpy SoA)", _median_ms(lambda b=book: b.scan(NOW), reps), "ms"))
        rows.append(
            (
                f"scan {n:,} positions (mids update + scan)",
                _median_ms(lambda b=book, m=mids: (b.set_marks(m), b.scan(NOW)), reps),
                "ms",
            )
        )
        loop_reps = max(3, reps // 5)
        rows.append(
            (
                f"scan {n:,} positions (dict loop)",
                _median_ms(lambda p=positions, m=fmids, e=equity: loop_scan(p, m, e, NOW), loop_reps),
                "ms",
            )
        )
        rows.append((f"scan {n:,}: candidates", float(len(fast)), "positions"))
        if n == SIZES[-1]:
            start = time.perf_counter()
            decisions = book.check(NOW)  # exact Decimal re-check of every candidate; updates their states
            took = time.perf_counter() - start
            rows.append(("exact re-check per candidate (evaluate)", took / max(1, len(fast)) * 1e6, "us"))
            rows.append((f"scan {n:,}: decisions after re-check", float(len(decisions)), "positions"))
            rows.append((f"scan {n:,}: candidates at the next scan", float(len(book.scan(NOW))), "positions"))
    return rows


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:<48} {value:>12,.3f} {unit}")
