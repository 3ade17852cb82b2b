"""Speed of the synthetic market: path steps and order-book ladders.

``python -m bench.bench_market`` prints one line per figure; ``run()`` returns them as
``(name, value, unit)`` for the bench runner. Each figure is the median of a few repeats.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from bench._stats import median
from hyperfollow.domain.rules import Instrument
from hyperfollow.exchange.market import DEFAULT_MODELS, SyntheticMarket, build_quotes

REPEATS = 5
_SZ_DECIMALS = {"BTC": 5, "ETH": 4, "SOL": 2, "HYPE": 2, "xyz:TSLA": 3, "xyz:NVDA": 3, "PURR/USDC": 0}
INSTRUMENTS = [
    Instrument(coin, k, sz, is_spot="/" in coin, dex=coin.split(":")[0] if ":" in coin else "")
    for k, (coin, sz) in enumerate(_SZ_DECIMALS.items())
]


def _best_rate(work: Callable[[], int]) -> float:
    """Median over REPEATS of (units of work done) / (seconds taken)."""
    rates = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        units = work()
        rates.append(units / (time.perf_counter() - start))
    return median(rates)


def bench_advance_bulk(sim_ms: int = 600_000) -> float:
    """Coin-steps per second when one call advances all coins by ``sim_ms`` (catching up)."""
    market = SyntheticMarket(DEFAULT_MODELS, seed=7, start_ms=0)
    n_coins = len(market.coins())

    def work() -> int:
        start = market.now_ms
        market.advance_to(start + sim_ms)
        return n_coins * sim_ms // market.step_ms

    return _best_rate(work)


def bench_advance_ticks(ticks: int = 5_000) -> float:
    """``advance_to`` calls per second when a live clock ticks one 100 ms step at a time (7 coins)."""
    market = SyntheticMarket(DEFAULT_MODELS, seed=7, start_ms=0)

    def work() -> int:
        for _ in range(ticks):
            market.advance_to(market.now_ms + market.step_ms)
        return ticks

    return _best_rate(work)


def bench_build_quotes(calls: int = 2_000, levels: int = 20) -> float:
    """``build_quotes`` calls per second (20 levels a side, size jitter on), cycling through the coins."""
    rnd = random.Random(1)
    jobs = [(inst, DEFAULT_MODELS[inst.coin]) for inst in INSTRUMENTS]

    def work() -> int:
        for k in range(calls):
            inst, model = jobs[k % len(jobs)]
            build_quotes(
                inst,
                model.start_px * (1.0 + 0.001 * (k % 17)),
                0.3,
                levels=levels,
                half_spread_bps=model.half_spread_bps,
                level_step_bps=model.level_step_bps,
                base_size_usd=model.base_size_usd,
                rng=rnd,
            )
        return calls

    return _best_rate(work)


def run() -> list[tuple[str, float, str]]:
    """All market figures as (name, value, unit)."""
    bulk = bench_advance_bulk()
    return [
        ("market.advance_to bulk, 7 coins, 100 ms steps", bulk, "coin-steps/s"),
        ("market.advance_to bulk, per coin-step", 1e6 / bulk, "us"),
        ("market.advance_to one 100 ms tick, 7 coins", bench_advance_ticks(), "calls/s"),
        ("market.build_quotes 20 levels a side", bench_build_quotes(), "calls/s"),
    ]


def main() -> None:
    """Print the figures, one a line."""
    for name, value, unit in run():
        print(f"{name:<52} {value:>14,.2f} {unit}")


if __name__ == "__main__":
    main()
