"""Synthetic market: determinism, statistics of the path, informative imbalance, quotes on the grid."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperfollow.domain.rules import Instrument, ticks_are_valid
from hyperfollow.exchange.market import (
    DEFAULT_MODELS,
    CoinModel,
    PricePath,
    Regime,
    SyntheticMarket,
    build_quotes,
    stationary_regime_shares,
    valid_ticks_ceil,
    valid_ticks_floor,
)

# szDecimals as listed on Hyperliquid (BTC/ETH/SOL from the recorded meta; PURR is a 0-decimal token).
INSTRUMENTS = {
    "BTC": Instrument("BTC", 0, 5, 40),
    "ETH": Instrument("ETH", 1, 4, 25),
    "SOL": Instrument("SOL", 5, 2, 20),
    "HYPE": Instrument("HYPE", 159, 2, 10),
    "xyz:TSLA": Instrument("xyz:TSLA", 110000, 3, 10, dex="xyz"),
    "xyz:NVDA": Instrument("xyz:NVDA", 110001, 3, 10, dex="xyz"),
    "PURR/USDC": Instrument("PURR/USDC", 10000, 0, is_spot=True),
}
START = 1_750_000_000_000


def _series(path: PricePath, n: int, dt_ms: int) -> tuple[np.ndarray, np.ndarray]:
    ref, imb = np.empty(n), np.empty(n)
    for j in range(n):
        s = path.step(dt_ms)
        ref[j], imb[j] = s.ref_px, s.imbalance
    return ref, imb


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_path_different_seed_different_path() -> None:
    a = SyntheticMarket(DEFAULT_MODELS, seed=11, start_ms=START)
    b = SyntheticMarket(DEFAULT_MODELS, seed=11, start_ms=START)
    c = SyntheticMarket(DEFAULT_MODELS, seed=12, start_ms=START)
    for t in range(START + 1_000, START + 600_000, 60_000):
        sa, sb, sc = a.advance_to(t), b.advance_to(t), c.advance_to(t)
        assert sa == sb
    assert all(sa[coin].ref_px != sc[coin].ref_px for coin in DEFAULT_MODELS)


def test_adding_a_coin_does_not_change_the_others() -> None:
    alone = SyntheticMarket({"ETH": DEFAULT_MODELS["ETH"]}, seed=5, start_ms=START)
    crowd = SyntheticMarket(DEFAULT_MODELS, seed=5, start_ms=START)
    assert alone.advance_to(START + 3_600_000)["ETH"] == crowd.advance_to(START + 3_600_000)["ETH"]


def test_chunking_of_time_does_not_change_the_path() -> None:
    whole = SyntheticMarket(DEFAULT_MODELS, seed=3, start_ms=START)
    chunked = SyntheticMarket(DEFAULT_MODELS, seed=3, start_ms=START)
    rnd = random.Random(1)
    t = START
    end = START + 2 * 3_600_000
    while t < end:
        t = min(end, t + rnd.choice([1, 37, 99, 100, 250, 1_000, 4_321, 60_000, 900_000]))
        states = chunked.advance_to(t)
        assert chunked.now_ms <= t < chunked.now_ms + chunked.step_ms
        assert all(s.ts_ms == chunked.now_ms for s in states.values())
    assert chunked.now_ms == end
    assert whole.advance_to(end) == chunked.states()


def test_step_and_advance_agree_and_time_never_goes_back() -> None:
    one, many = PricePath(DEFAULT_MODELS["SOL"], 9, START), PricePath(DEFAULT_MODELS["SOL"], 9, START)
    for _ in range(5_000):
        last = one.step(100)
    assert many.advance(5_000, 100) == last
    market = SyntheticMarket(DEFAULT_MODELS, seed=1, start_ms=START)
    later = market.advance_to(START + 10_000)
    assert market.advance_to(START) == later
    assert market.now_ms == START + 10_000


def test_set_price_moves_the_reference_and_the_path_continues() -> None:
    market = SyntheticMarket(DEFAULT_MODELS, seed=2, start_ms=START)
    market.advance_to(START + 60_000)
    assert market.set_price("BTC", 50_000.0).ref_px == pytest.approx(50_000.0, rel=1e-12)
    after = market.advance_to(START + 120_000)["BTC"].ref_px
    assert 49_000.0 < after < 51_000.0
    with pytest.raises(ValueError, match="positive"):
        market.set_price("BTC", 0.0)


def test_add_coin_and_model_key_checks() -> None:
    market = SyntheticMarket({"BTC": DEFAULT_MODELS["BTC"]}, seed=2, start_ms=START)
    market.advance_to(START + 5_000)
    state = market.add_coin(DEFAULT_MODELS["HYPE"])
    assert state.ts_ms == START + 5_000
    assert market.coins() == ["BTC", "HYPE"]
    with pytest.raises(ValueError, match="already"):
        market.add_coin(DEFAULT_MODELS["HYPE"])
    with pytest.raises(ValueError, match="does not match"):
        SyntheticMarket({"ETH": DEFAULT_MODELS["BTC"]}, seed=1, start_ms=0)


@pytest.mark.parametrize(
    "changes",
    [
        {"start_px": 0.0},
        {"daily_vol": -0.01},
        {"regime_mean_hours": (1.0, 0.0, 1.0)},
        {"lag_halflife_s": float("nan")},
        {"event_rate_per_s": 0.0},
        {"event_df": 2.0},
        {"impact_permanent": 1.5},
        {"outlook_s": (100.0, 10.0)},
        {"imbalance_info": 1.5},
        {"imbalance_lead_steps": 0},
        {"regime_vol_mult": (0.0, 0.0, 0.0)},
    ],
)
def test_bad_model_parameters_are_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="BTC"):
        replace(DEFAULT_MODELS["BTC"], **changes)


# --------------------------------------------------------------------------- statistics of the path


def test_regimes_switch_on_a_scale_of_hours_with_the_stationary_shares() -> None:
    model = DEFAULT_MODELS["BTC"]
    path = PricePath(model, 21, START)
    n_hours = 100 * 24
    regimes = np.empty(n_hours, dtype=int)
    returns = np.empty(n_hours)
    prev = math.log(path.state.efficient_px)
    for j in range(n_hours):
        regimes[j] = path.state.regime
        now = math.log(path.advance(60, 60_000).efficient_px)
        returns[j], prev = now - prev, now
    switches_per_day = path.regime_switches / 100
    assert 2.0 < switches_per_day < 12.0
    shares = stationary_regime_shares(model)
    for regime in Regime:
        assert abs((regimes == regime).mean() - shares[regime]) < 0.08
    vols = [returns[regimes == r].std() for r in Regime]
    assert vols[Regime.CALM] < vols[Regime.NORMAL] < vols[Regime.STORMY]
    assert returns.std() * math.sqrt(24) == pytest.approx(model.daily_vol, rel=0.2)


@pytest.mark.parametrize(("rate", "days", "dt_ms"), [(2.0, 400, 60_000), (500.0, 2, 100)])
def test_jumps_arrive_at_the_configured_rate(rate: float, days: int, dt_ms: int) -> None:
    path = PricePath(CoinModel("J", 100.0, jump_rate_per_day=rate, jump_scale=0.01), 4, 0)
    path.advance(days * 86_400_000 // dt_ms, dt_ms)
    expected = rate * days
    assert abs(path.jumps - expected) < 4 * math.sqrt(expected)


def test_no_jumps_when_the_rate_is_zero() -> None:
    path = PricePath(CoinModel("J", 100.0, jump_rate_per_day=0.0), 4, 0)
    path.advance(100_000, 60_000)
    assert path.jumps == 0


def test_trend_tells_the_direction_of_the_next_hours() -> None:
    path = PricePath(DEFAULT_MODELS["ETH"], 8, START)
    trends, returns = [], []
    for _ in range(150 * 24):
        trend, before = path.state.trend, path.state.ref_px
        trends.append(trend)
        returns.append(math.log(path.advance(60, 60_000).ref_px / before))
    assert np.corrcoef(trends, returns)[0, 1] > 0.1
    assert any(t > 0 for t in trends)
    assert any(t < 0 for t in trends)
    assert any(t == 0 for t in trends)


def test_reference_follows_the_efficient_price_within_its_lag_and_never_pulls_back() -> None:
    """The quotes reach a move within ``lag_halflife_s``; minute returns carry no mean reversion."""
    model = DEFAULT_MODELS["BTC"]
    path = PricePath(model, 6, START)
    dev = np.empty(20_000)
    closes = np.empty(dev.size // 10)
    for j in range(dev.size):
        s = path.step(100)
        dev[j] = math.log(s.ref_px / s.efficient_px)
        if j % 10 == 9:
            closes[j // 10] = s.ref_px
    assert np.abs(dev).max() < 50e-4  # never far: a few bps at most
    lag_steps = max(1, round(model.lag_halflife_s * 10))
    assert abs(np.corrcoef(dev[: -10 * lag_steps], dev[10 * lag_steps :])[0, 1]) < 0.2
    market = SyntheticMarket({"ETH": DEFAULT_MODELS["ETH"]}, seed=3, start_ms=START)
    minutes = np.array([market.advance_to(START + k * 60_000)["ETH"].ref_px for k in range(48 * 60)])
    r = np.diff(np.log(minutes))
    assert abs(np.corrcoef(r[:-1], r[1:])[0, 1]) < 0.08  # about 0, as in the recorded 1-minute candles


def test_moves_are_rare_heavy_tailed_events_with_short_momentum() -> None:
    """Most seconds the reference does not move; 1 s returns are fat-tailed and positively autocorrelated."""
    path = PricePath(DEFAULT_MODELS["BTC"], 12, START)
    px = np.array([path.advance(10, 100).ref_px for _ in range(6 * 3_600)])
    r = np.diff(np.log(px))
    quiet = np.mean(np.abs(r) < 0.05e-4)  # under half a BTC tick
    assert quiet > 0.5
    d = r - r.mean()
    assert float(np.mean(d**4) / np.mean(d**2) ** 2) > 6
    assert np.corrcoef(r[:-1], r[1:])[0, 1] > 0


def test_impact_moves_the_reference_and_partly_decays() -> None:
    model = DEFAULT_MODELS["BTC"]
    a, b = PricePath(model, 4, START), PricePath(model, 4, START)
    a.advance(600, 100)
    b.advance(600, 100)
    moved = a.impact(2e-4)
    assert math.log(moved.ref_px / b.state.ref_px) == pytest.approx(2e-4, rel=1e-9)
    later_a, later_b = a.advance(100, 100), b.advance(100, 100)  # 10 s
    kept = math.log(later_a.ref_px / later_b.ref_px) / 2e-4
    assert 0.9 < kept < 1.0
    far_a, far_b = a.advance(36_000, 100), b.advance(36_000, 100)  # an hour
    assert math.log(far_a.ref_px / far_b.ref_px) / 2e-4 == pytest.approx(model.impact_permanent, abs=0.01)


def test_outlook_tells_the_coming_moves() -> None:
    model = DEFAULT_MODELS["SOL"]
    path = PricePath(model, 5, START)
    views, moves = [], []
    for _ in range(400):
        state = path.state
        k = round(model.outlook_s[0] * 10)
        after = path.advance(k, 100)
        views.append(state.outlook)
        moves.append(math.log(after.ref_px / state.ref_px))
    assert np.corrcoef(views, moves)[0, 1] > 0.8


@pytest.mark.parametrize("coin", list(DEFAULT_MODELS))
def test_imbalance_leads_the_reference_price(coin: str) -> None:
    model = DEFAULT_MODELS[coin]
    ref, imb = _series(PricePath(model, 17, START), 60_000, 100)
    k = model.imbalance_lead_steps
    move = ref[k:] - ref[:-k]
    future = np.corrcoef(imb[:-k], move)[0, 1]  # imbalance now vs the next k steps
    past = np.corrcoef(imb[k:], move)[0, 1]  # imbalance now vs the last k steps
    assert future > 0.15
    assert abs(past) < 0.1  # sampling noise only: ~0.04 std with 60,000 overlapping 80-step moves
    assert future > 3 * abs(past)
    assert imb.min() >= -1.0
    assert imb.max() <= 1.0


def test_uninformed_imbalance_carries_no_signal() -> None:
    model = replace(DEFAULT_MODELS["BTC"], imbalance_info=0.0)
    ref, imb = _series(PricePath(model, 17, START), 20_000, 100)
    k = model.imbalance_lead_steps
    assert abs(np.corrcoef(imb[:-k], ref[k:] - ref[:-k])[0, 1]) < 0.05


# --------------------------------------------------------------------------- the price grid


@pytest.mark.parametrize("px_decimals", [0, 1, 2, 4, 6, 8])
@pytest.mark.parametrize("around", [1, 10_000, 99_990, 999_900, 12_345_600])
def test_grid_rounding_is_the_nearest_valid_price(px_decimals: int, around: int) -> None:
    for ticks in range(max(1, around - 300), around + 300):
        down, up = valid_ticks_floor(ticks, px_decimals), valid_ticks_ceil(ticks, px_decimals)
        assert ticks_are_valid(down, px_decimals)
        assert down <= ticks
        assert ticks_are_valid(up, px_decimals)
        assert up >= ticks
        assert not any(ticks_are_valid(t, px_decimals) for t in range(down + 1, ticks))
        assert not any(ticks_are_valid(t, px_decimals) for t in range(ticks + 1, up))


# --------------------------------------------------------------------------- quotes


def _quotes(
    coin: str, ref_px: float, imbalance: float, rng: random.Random | None = None
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    m = DEFAULT_MODELS[coin]
    return build_quotes(
        INSTRUMENTS[coin],
        ref_px,
        imbalance,
        half_spread_bps=m.half_spread_bps,
        level_step_bps=m.level_step_bps,
        base_size_usd=m.base_size_usd,
        rng=rng,
    )


@settings(max_examples=300, deadline=None)
@given(
    coin=st.sampled_from(list(DEFAULT_MODELS)),
    log_mult=st.floats(-3.0, 3.0),
    imbalance=st.floats(-1.0, 1.0),
    seed=st.integers(0, 2**32),
)
def test_quotes_are_valid_on_the_grid(coin: str, log_mult: float, imbalance: float, seed: int) -> None:
    inst = INSTRUMENTS[coin]
    ref_px = DEFAULT_MODELS[coin].start_px * 10**log_mult
    bids, asks = _quotes(coin, ref_px, imbalance, random.Random(seed))
    assert len(bids) == len(asks) == 20
    for t, lots in bids + asks:
        assert ticks_are_valid(t, inst.px_decimals)
        assert lots >= 1
    bid_px, ask_px = [t for t, _ in bids], [t for t, _ in asks]
    assert all(a > b for a, b in itertools.pairwise(bid_px))
    assert all(b > a for a, b in itertools.pairwise(ask_px))
    assert bid_px[0] < ask_px[0]
    scale = 10**inst.px_decimals
    assert bid_px[0] / scale <= ref_px <= ask_px[0] / scale


@pytest.mark.parametrize("coin", list(DEFAULT_MODELS))
def test_book_shape_spread_depth_and_skew(coin: str) -> None:
    inst, px = INSTRUMENTS[coin], DEFAULT_MODELS[coin].start_px
    bids, asks = _quotes(coin, px, 0.0)
    scale = 10**inst.px_decimals
    spread_bps = (asks[0][0] - bids[0][0]) / scale / px * 1e4
    assert spread_bps < (5.0 if coin in ("BTC", "ETH") else 40.0)
    usd = [t * lots / scale / 10**inst.sz_decimals for t, lots in bids]
    assert usd[-1] > 3 * usd[0]  # depth grows away from the touch
    heavy_bids, _ = _quotes(coin, px, 0.8)
    _, light_asks = _quotes(coin, px, 0.8)
    assert sum(s for _, s in heavy_bids) > 1.5 * sum(s for _, s in bids)
    assert sum(s for _, s in light_asks) < sum(s for _, s in asks)
    lean_bids, lean_asks = _quotes(coin, px, -0.9)
    assert sum(t * s for t, s in lean_asks) > 3 * sum(t * s for t, s in lean_bids)


def test_spread_is_wider_for_small_coins() -> None:
    def spread(coin: str) -> float:
        bids, asks = _quotes(coin, DEFAULT_MODELS[coin].start_px, 0.0)
        return (asks[0][0] - bids[0][0]) / bids[0][0]

    assert spread("BTC") < spread("SOL") < spread("HYPE") < spread("PURR/USDC")


def test_levels_never_merge_when_the_step_is_below_a_tick() -> None:
    bids, asks = build_quotes(
        INSTRUMENTS["BTC"], 95_000.0, 0.0, half_spread_bps=0.0, level_step_bps=0.01, base_size_usd=1e3
    )
    assert len({t for t, _ in bids}) == len({t for t, _ in asks}) == 20
    assert bids[0][0] < asks[0][0]
    assert asks[0][0] - bids[0][0] == 10  # one whole dollar: BTC prices above 10k are integers


def test_bids_stop_before_a_zero_price_and_bad_reference_is_rejected() -> None:
    tiny = Instrument("TINY", 1, 0, 3)
    bids, asks = build_quotes(tiny, 2e-6, 0.0, half_spread_bps=50, level_step_bps=5_000, base_size_usd=10)
    assert 0 < len(bids) < 20
    assert len(asks) == 20
    assert all(t > 0 for t, _ in bids)
    with pytest.raises(ValueError, match="ref_px"):
        build_quotes(tiny, float("nan"), 0.0, half_spread_bps=1, level_step_bps=1, base_size_usd=10)
