"""Matching engine throughput, in-process: order actions per second for a place / cancel / cross mix.

One BTC book (asset 0, whole-dollar prices around $60,000) with four maker accounts resting 400 orders,
four taker accounts crossing it. A deterministic plan (seeded ``random.Random``, drawn before the clock
starts) mixes:

* resting places: Gtc limit orders of a maker, 1-50 dollars away from $60,000 on its side (never
  crossing: bids stay below, asks above), weighted towards the touch so the book stays replenished;
* cancels of an earlier resting order that is still live (picked at random among the live ones);
* crossing IOC orders of a taker, buy or sell, that sweep the touch and trade.

Every action is one engine call (``place`` or ``cancel``); the figure is actions / wall second over the
loop (engine setup untimed; ``gc.collect()`` before each run, the collector left on during it), median of
``REPEATS`` fresh runs. The second figure runs the same plan with ``engine.outbox = []`` (WebSocket events
recorded and drained after every action, as ``ExchangeServer`` runs it); the two variants alternate.
Mix in a run: 50 % places, 30 % cancels, 20 % IOC; about 17,700 trades; the book ends near 2,600 orders.
"""

from __future__ import annotations

import gc
import random
import time
from dataclasses import dataclass, field

from bench._stats import median
from hyperfollow.exchange.engine import Engine, OrderSpec

ASSET = 0  # BTC: szDecimals 5, so prices are in 0.1-dollar ticks and sizes in 1e-5 BTC lots
MID = 600_000  # $60,000.0 in ticks
STEP = 10  # $1: at this price only whole dollars have <= 5 significant figures
LEVELS = 50
N_ACTIONS = 50_000
REPEATS = 7
SEED = 20240501
P_PLACE, P_CANCEL = 0.50, 0.30  # the rest (0.20) are crossing IOC orders
MAKERS = [f"0x{'a' * 39}{i}" for i in range(4)]
TAKERS = [f"0x{'b' * 39}{i}" for i in range(4)]
FUNDS_MICRO = 10_000_000 * 1_000_000  # $10m each

GOALS = {"engine actions/s (place/cancel/IOC mix)": (">=", 100_000.0)}

# A plan step: ("place", user, is_buy, px, sz) | ("cancel", u in [0, 1)) | ("ioc", user, is_buy, px, sz)
Step = tuple[str, str, bool, int, int] | tuple[str, float]


@dataclass
class RunResult:
    seconds: float
    actions: int
    counts: dict[str, int] = field(default_factory=dict)


def make_plan(n: int, seed: int = SEED) -> list[Step]:
    """The deterministic action sequence (drawn before timing, so RNG cost is not measured)."""
    rng = random.Random(seed)
    plan: list[Step] = []
    for _ in range(n):
        r = rng.random()
        if r < P_PLACE:
            is_buy = rng.random() < 0.5
            k = min(LEVELS, 1 + int(rng.expovariate(1 / 8)))
            px = MID - k * STEP if is_buy else MID + k * STEP
            plan.append(("place", rng.choice(MAKERS), is_buy, px, rng.randint(20, 200)))
        elif r < P_PLACE + P_CANCEL:
            plan.append(("cancel", rng.random()))
        else:
            is_buy = rng.random() < 0.5
            px = MID + (LEVELS + 10) * STEP if is_buy else MID - (LEVELS + 10) * STEP
            plan.append(("ioc", rng.choice(TAKERS), is_buy, px, rng.randint(20, 150)))
    return plan


def build_engine() -> tuple[Engine, list[tuple[str, int]]]:
    """A funded engine with a 400-order BTC book; returns it and the (user, oid) of the resting orders."""
    engine = Engine()
    engine.set_prices(ASSET, MID)
    for user in MAKERS + TAKERS:
        engine.deposit(user, FUNDS_MICRO)
    resting: list[tuple[str, int]] = []
    for k in range(1, LEVELS + 1):
        for user in MAKERS:
            for is_buy in (True, False):
                px = MID - k * STEP if is_buy else MID + k * STEP
                status = engine.place(user, OrderSpec(ASSET, is_buy, px, 100, tif="Gtc"))
                if not (isinstance(status, dict) and "resting" in status):
                    raise RuntimeError(f"the initial book did not rest: {status}")
                resting.append((user, status["resting"]["oid"]))
    return engine, resting


def run_plan(plan: list[Step], with_events: bool) -> RunResult:
    """Run ``plan`` on a fresh engine; only the action loop is timed."""
    engine, resting = build_engine()
    if with_events:
        engine.outbox = []
    live = engine.live
    place, cancel = engine.place, engine.cancel
    counts = {"place": 0, "cancel": 0, "ioc": 0, "ioc_filled": 0, "errors": 0}
    trades_before = engine.next_tid
    t0 = time.perf_counter()
    for step in plan:
        kind = step[0]
        if kind == "cancel":
            # a random resting order that is still live (fills remove some; they are dropped here)
            assert isinstance(step[1], float)
            while resting:
                i = int(step[1] * len(resting))
                user, oid = resting[i]
                resting[i] = resting[-1]
                resting.pop()
                if oid in live:
                    status = cancel(user, ASSET, oid)
                    counts["cancel"] += 1
                    if status != "success":
                        counts["errors"] += 1
                    break
        else:
            _, user, is_buy, px, sz = step  # type: ignore[misc]
            if kind == "place":
                status = place(user, OrderSpec(ASSET, is_buy, px, sz, tif="Gtc"))
                counts["place"] += 1
                if isinstance(status, dict) and "resting" in status:
                    resting.append((user, status["resting"]["oid"]))
                else:
                    counts["errors"] += 1
            else:
                status = place(user, OrderSpec(ASSET, is_buy, px, sz, tif="Ioc"))
                counts["ioc"] += 1
                if isinstance(status, dict) and "filled" in status:
                    counts["ioc_filled"] += 1
                else:
                    counts["errors"] += 1
        if with_events:
            engine.outbox = []  # what ExchangeServer's hub.flush() does after each request
    seconds = time.perf_counter() - t0
    counts["trades"] = engine.next_tid - trades_before
    counts["book_orders"] = len(engine.books[ASSET])
    actions = counts["place"] + counts["cancel"] + counts["ioc"]
    return RunResult(seconds, actions, counts)


def run() -> list[tuple[str, float, str]]:
    plan = make_plan(N_ACTIONS)
    plain: list[RunResult] = []
    events: list[RunResult] = []
    for _ in range(REPEATS):  # interleaved, so machine noise hits both variants alike
        for with_events, results in ((False, plain), (True, events)):
            gc.collect()
            results.append(run_plan(plan, with_events))
    rate = median([r.actions / r.seconds for r in plain])
    rate_events = median([r.actions / r.seconds for r in events])
    c = plain[0].counts
    if c["errors"]:
        raise RuntimeError(f"engine bench: {c['errors']} actions were rejected: {c}")
    n = plain[0].actions
    return [
        ("engine actions/s (place/cancel/IOC mix)", rate, "actions/s"),
        ("engine actions/s, WS events on (outbox)", rate_events, "actions/s"),
        ("engine us/action (median run)", 1e6 / rate, "us"),
        ("engine mix: resting Gtc places", 100 * c["place"] / n, "% of actions"),
        ("engine mix: cancels", 100 * c["cancel"] / n, "% of actions"),
        ("engine mix: crossing IOC (all filled)", 100 * c["ioc"] / n, "% of actions"),
        ("engine trades per run", float(c["trades"]), f"trades / {n} actions"),
    ]


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:45s} {value:14,.1f} {unit}")
