"""The synthetic market against the recorded venue: each microstructure figure held in a band.

One 10-minute run of the embedded market (makers, the tape, the simulated traders) for two seeds,
measured as a subscriber of ``l2Book`` and ``trades`` sees it, against the recorded figures of
``calibrated.RECORDED`` (the djienne captures of BTC, ETH and SOL; addresses from the copier audit's
live capture). Bands: a factor of 2 around the recorded range for sizes and rates, and the
thresholds a strategy developer relies on for the rest. The full 30-minute table is
``python -m bench realism``.
"""

from __future__ import annotations

import math
from functools import cache

import pytest

from hyperfollow.exchange.calibrated import RECORDED
from hyperfollow.exchange.clock import SimClock
from hyperfollow.exchange.driver import MarketDriver
from hyperfollow.exchange.engine import Engine
from hyperfollow.exchange.market import DEFAULT_MODELS, SyntheticMarket
from hyperfollow.exchange.microstructure import measure, minute_autocorrelation
from hyperfollow.exchange.realism import START_MS, impact_counterfactual, simulate
from hyperfollow.exchange.universe import Universe

SEEDS = (7, 8)
MINUTES = 10.0
COINS = ("BTC", "ETH", "SOL")
WITHIN_FACTOR_2 = (
    "trades_per_min",
    "median_trade_usd",
    "spread_bps",
    "best_usd",
    "cover20_bps",
    "cost100k_bps",
    "mid_changes_per_s",
)


@cache
def figures(seed: int) -> dict[str, dict[str, float]]:
    run = simulate(seed, MINUTES)
    return {
        coin: measure(run.books[coin], run.prints[coin], orders_per_level=run.orders_per_level[coin])
        for coin in COINS
    }


def recorded_range(coin: str, key: str) -> tuple[float, float]:
    values = [c[coin][key] for c in RECORDED.values() if coin in c and key in c[coin]]
    assert values, f"no recorded {key} for {coin}"
    return min(values), max(values)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("coin", COINS)
@pytest.mark.parametrize("key", WITHIN_FACTOR_2)
def test_sizes_and_rates_within_a_factor_of_two_of_the_recording(seed: int, coin: str, key: str) -> None:
    lo, hi = recorded_range(coin, key)
    value = figures(seed)[coin][key]
    assert lo / 2 <= value <= hi * 2, f"{coin} {key}: {value:.4g} outside [{lo / 2:.4g}, {hi * 2:.4g}]"


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("coin", COINS)
def test_price_process_and_imbalance_shapes(seed: int, coin: str) -> None:
    f = figures(seed)[coin]
    assert f["unchanged_s_share"] >= 0.5  # the mid is still most seconds
    assert f["ac1_1s"] >= 0  # short-horizon momentum, as recorded (+0.04 ... +0.21)
    assert f["kurt_1s"] >= 6  # heavy tails (recorded 11 ... 300)
    assert f["obi_ratio"] >= 1.3  # the front flickers: std(OBI5) / std(OBI20), recorded 1.4 ... 3.9
    assert f["obi_flips"] <= 0.2  # the 20-level imbalance persists (recorded 0.08 ... 0.16)
    assert f["obi_deep_lead"] > 0.1  # the deep book tells where the price goes next
    assert f["orders_per_level"] >= 2  # queue position means something (recorded ~6 for BTC)


@pytest.mark.parametrize("seed", SEEDS)
def test_many_addresses_trade(seed: int) -> None:
    for coin in COINS:
        assert figures(seed)[coin]["addresses_5m"] >= 50


@pytest.mark.parametrize("coin", ["BTC", "ETH"])
def test_no_mean_reversion_at_the_minute_scale(coin: str) -> None:
    market = SyntheticMarket({coin: DEFAULT_MODELS[coin]}, 7, START_MS)
    closes = [market.advance_to(START_MS + k * 60_000)[coin].ref_px for k in range(36 * 60 + 1)]
    assert abs(minute_autocorrelation(closes)) <= 0.06  # recorded 0.006 ... 0.02; sampling noise ~0.02


def test_a_large_buy_moves_the_price_and_most_of_the_move_stays() -> None:
    moves = impact_counterfactual(7, "BTC", 1_000_000.0, warmup_s=20, after_s=(0, 1, 10))
    assert moves["0s"] >= 0  # it walks the book (a best level of ~$1M may absorb it whole)
    assert moves["1s"] > 0.5  # bps: the makers quote around the moved price at their next update
    assert moves["10s"] >= moves["1s"] / 3
    assert not math.isnan(moves["10s"])


def test_the_book_follows_the_price_from_any_start_time() -> None:
    """A live exchange starts at the wall clock's millisecond, off the 100 ms grid: makers still update."""
    engine = Engine(Universe(), SimClock(start_ms=START_MS + 123, stepped=True))
    driver = MarketDriver(engine, 7, ["BTC"], traders=None)
    inst = engine.universe.by_coin["BTC"]
    mids = set()
    for _ in range(240):
        engine.clock.advance(500)
        driver.step(engine.now())
        mids.add(engine.mid(inst.asset))
    ref = driver.market.path("BTC").state.ref_px * 10**inst.px_decimals
    mid = engine.mid(inst.asset)
    assert mid is not None
    assert len(mids) > 5
    assert abs(mid / ref - 1) < 2e-4
