"""The pre-trade gate, in-process: ``check_order`` calls per second on a realistic account.

One ``RiskSnapshot`` of a $250,000 account with 50 open positions (seeded: coins ``C00``-``C49``, 60 % long,
marks from $0.05 to $60,000, $4,000-20,000 each, about 2.5x gross exposure, leverage 3-10x), 30 orders sent
in the last minute, fresh market data, a 0.4 % loss today, and the default ``RiskLimits`` with 5 per-coin
caps of $25,000, the per-order cap raised to $100,000 and 60 open positions allowed. A seeded plan of 10,000
orders over those 50 coins and 10 more is drawn before timing: adds and new coins of $500-2,000, partial
reductions and reduce-only closes, flips ($1,000 beyond flat), and fat-finger orders of $150,000-240,000.
Measured outcome (checked before timing, shown as a row): about 68 % allowed after every check, 17 %
reducing (decided on the first branch), 15 % refused on a limit. Each is one ``check_order(...)`` call in
state ACTIVE.

Figures, median of 7 passes: checks per second over the whole plan and its inverse (µs per check); µs per
check over the allowed orders only (the longest path: trading state, breakers, rate, notional, coin cap,
leverage, positions, coin and total exposure); one ``next_state`` breaker tick (run once a second, so for
scale); building the ``RiskSnapshot`` (done when a fill or mid changes it, not per check: it sorts the order
times and sums the gross exposure once, which is why the check does not grow with the number of positions).
"""

from __future__ import annotations

import random
import time
from decimal import Decimal

from bench._stats import median
from hyperfollow.domain.model import OrderRequest, Side
from hyperfollow.risk.breakers import next_state
from hyperfollow.risk.gate import (
    GateReason,
    PositionMark,
    RiskLimits,
    RiskSnapshot,
    TradingState,
    check_order,
)

NOW = 1_750_000_000_000
PASSES = 7
N_ORDERS = 10_000
EQUITY = Decimal(250_000)


def _account(rng: random.Random) -> tuple[RiskSnapshot, dict[str, Decimal]]:
    marks: dict[str, Decimal] = {}
    positions: dict[str, PositionMark] = {}
    for i in range(60):  # 50 held, 10 more coins with a mark to open on
        coin = f"C{i:02d}"
        mark = Decimal(str(round(10 ** rng.uniform(-1.3, 4.78), 4)))
        marks[coin] = mark
        if i < 50:
            notional = Decimal(rng.randrange(4_000, 20_000))  # about 2.5x equity in all
            size = (notional / mark).quantize(Decimal("0.001")) or Decimal("0.001")
            positions[coin] = PositionMark(size if rng.random() < 0.6 else -size, mark, rng.randrange(3, 11))
    recent = tuple(NOW - rng.randrange(0, 59_000) for _ in range(30))
    snap = RiskSnapshot(EQUITY, EQUITY + 1_000, Decimal(-1_000), positions, recent, NOW - 200, False)
    return snap, marks


def _plan(
    rng: random.Random, snap: RiskSnapshot, marks: dict[str, Decimal]
) -> list[tuple[OrderRequest, Decimal]]:
    plan = []
    coins = list(marks)
    for _ in range(N_ORDERS):
        coin = rng.choice(coins)
        mark = marks[coin]
        held = snap.positions.get(coin)
        pos = held.size if held else Decimal(0)
        away = Side.SELL if pos > 0 else Side.BUY  # reduces (or flips) the position
        toward = away.opposite if pos else rng.choice(list(Side))
        r = rng.random()
        if r < 0.6:  # an add or a new coin: $500-2,000
            o = OrderRequest(coin, toward, _size(Decimal(rng.randrange(500, 2_000)), mark), mark)
        elif r < 0.8 and pos:  # a reduction: part of the position, or a reduce-only close of all of it
            part = abs(pos) if rng.random() < 0.5 else (abs(pos) / 2).quantize(Decimal("0.001"))
            o = OrderRequest(coin, away, part, mark, reduce_only=part == abs(pos))
        elif r < 0.9 and pos:  # a flip: close and open $1,000 the other way
            o = OrderRequest(coin, away, abs(pos) + _size(Decimal(1_000), mark), mark)
        else:  # refused: a fat finger (per-order cap) or a coin already at its caps
            o = OrderRequest(coin, toward, _size(Decimal(rng.choice([150_000, 240_000])), mark), mark)
        plan.append((o, mark))
    return plan


def _size(usd: Decimal, mark: Decimal) -> Decimal:
    return max(Decimal("0.001"), (usd / mark).quantize(Decimal("0.001")))


def _time(plan: list[tuple[OrderRequest, Decimal]], snap: RiskSnapshot, limits: RiskLimits) -> float:
    active = TradingState.ACTIVE
    start = time.perf_counter()
    for o, mark in plan:
        check_order(o, mark, snap, limits, active, NOW)
    return time.perf_counter() - start


def run() -> list[tuple[str, float, str]]:
    rng = random.Random(5)
    snap, marks = _account(rng)
    caps = {c: Decimal(25_000) for c in list(marks)[:5]}
    limits = RiskLimits(
        max_open_positions=60, max_order_notional_usd=Decimal(100_000), max_coin_notional_usd=caps
    )
    plan = _plan(rng, snap, marks)
    outcomes = [check_order(o, m, snap, limits, TradingState.ACTIVE, NOW).reason for o, m in plan]
    allowed = sum(r is GateReason.ALLOWED for r in outcomes)
    reduces = sum(r is GateReason.REDUCES for r in outcomes)
    refused = len(plan) - allowed - reduces
    if not (allowed > 0.6 * N_ORDERS and reduces > 0.1 * N_ORDERS and refused > 0.05 * N_ORDERS):
        raise RuntimeError(
            f"unexpected plan outcomes: {allowed} allowed, {reduces} reduce, {refused} refused"
        )
    full = [(o, m) for (o, m), r in zip(plan, outcomes, strict=True) if r is GateReason.ALLOWED]

    mixed = median([_time(plan, snap, limits) for _ in range(PASSES)])
    worst = median([_time(full, snap, limits) for _ in range(PASSES)])
    ticks = []
    for _ in range(PASSES):
        start = time.perf_counter()
        for i in range(N_ORDERS):
            next_state(snap, limits, TradingState.ACTIVE, NOW + i)
        ticks.append(time.perf_counter() - start)
    tick = median(ticks)
    positions, recent = dict(snap.positions), snap.recent_order_times_ms
    builds = []
    for _ in range(PASSES):
        start = time.perf_counter()
        for _ in range(1_000):
            RiskSnapshot(EQUITY, EQUITY, Decimal(0), positions, recent, NOW, False)
        builds.append(time.perf_counter() - start)
    build = median(builds)
    return [
        ("gate checks/s (50 positions, mixed plan)", len(plan) / mixed, "checks/s"),
        ("gate us/check (mixed plan)", mixed / len(plan) * 1e6, "µs"),
        ("gate us/check, allowed (every check run)", worst / len(full) * 1e6, "µs"),
        ("gate plan: allowed / reduces / refused", allowed / len(plan) * 100,
         f"% allowed, {reduces / len(plan) * 100:.0f} % reduces, {refused / len(plan) * 100:.0f} % refused"),
        ("breaker tick (next_state)", tick / N_ORDERS * 1e6, "µs"),
        ("RiskSnapshot build (50 positions, 30 order times)", build / 1_000 * 1e6, "µs"),
    ]  # fmt: skip


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:45s} {value:12.3f} {unit}")
