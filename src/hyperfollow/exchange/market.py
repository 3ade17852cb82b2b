"""Seeded synthetic market: per-coin price paths calibrated to the real venue's microstructure.

Pure and deterministic: the same seed gives the same paths, whatever the caller's chunking of time.
Each coin draws from its own PCG64 streams, derived from the seed and the coin name, so adding or
removing a coin never changes the others.

The model of one coin, per fixed step ``dt``::

    k     ~ Poisson(event_rate dt)                                 price-moving events this step
    inc   = sigma sqrt(k) s t_df                                   heavy-tailed (Student t) move, drawn
                                                                   ``lookahead`` steps before it applies
    x    += (trend - sigma^2 / 2) dt + inc + jump                  efficient log-price (Poisson jumps)
    lag   = a (lag - inc)                                          the quotes follow x within a second
    h     = a_h h                                                  transient impact of taker flow
    ref   = exp(x + lag + h)                                       traded reference price

Most steps move nothing (the venue's mid is unchanged most seconds); a move is a heavy-tailed event and
the quotes reach it over a few hundred milliseconds, which gives the short-horizon momentum of the
real 1 s returns without any mean reversion at the minute scale. ``sigma`` follows a calm / normal /
stormy Markov chain (dwell times of hours), ``trend`` follows trend episodes (up, down or flat, lasting
hours). Because moves are drawn ahead of time, the path knows its own near future: the book
``imbalance`` shows the next ``imbalance_lead_steps`` moves plus slow noise (so it leads the price the
way a real order-book imbalance does), and ``outlook`` / ``outlook_long`` are the next
``outlook_s`` seconds of moves, normalised: the hidden information a skilled simulated trader acts on.
Taker flow moves the reference through ``impact``: part of the move is permanent, the rest decays
with ``impact_halflife_s``. Everything is plain float math on pre-drawn batches.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum
from typing import NamedTuple, Protocol

import numpy as np
from numpy.random import PCG64, Generator, SeedSequence

from hyperfollow.domain.rules import MAX_SIG_FIGS, Instrument

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
BPS = 1e-4
DEFAULT_STEP_MS = 100
MAX_OPERATOR_PX = Decimal(1_000_000_000)  # an operator's price beyond this is a typo, not a scenario
_BATCH = 2048  # steps drawn at once
_IMBALANCE_GAIN = 0.9
_IMBALANCE_NOISE_S = 4.0  # time constant of the imbalance's uninformative part
# Embedded jump chain of the volatility regimes: row = from, column = to (no self-transitions).
REGIME_TRANSITIONS: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.85, 0.15),
    (0.55, 0.0, 0.45),
    (0.25, 0.75, 0.0),
)


class Regime(IntEnum):
    """Volatility regime of a coin."""

    CALM = 0
    NORMAL = 1
    STORMY = 2


_REGIMES = (Regime.CALM, Regime.NORMAL, Regime.STORMY)


@dataclass(frozen=True, slots=True)
class CoinModel:
    """Parameters of one coin's synthetic path and book (fractions are of price, times as named)."""

    coin: str
    start_px: float
    daily_vol: float = 0.04  # long-run average daily volatility of the log-price
    jump_rate_per_day: float = 2.0
    jump_scale: float = 0.006  # std of a jump's log size
    regime_vol_mult: tuple[float, float, float] = (0.55, 1.0, 2.2)  # relative, renormalised
    regime_mean_hours: tuple[float, float, float] = (5.0, 4.0, 1.5)
    trend_mean_hours: float = 4.0
    trend_strength: float = 1.5  # |drift| per day during a trend episode, in units of daily_vol
    trend_prob: float = 0.6  # share of episodes that trend (the rest are flat)
    event_rate_per_s: float = 0.2  # price-moving events per second (the mid is still most seconds)
    event_df: float = 5.0  # Student t degrees of freedom of an event's size (> 2; smaller: heavier)
    lag_halflife_s: float = 0.25  # how fast the quotes reach a move of the efficient price
    impact_permanent: float = 0.5  # share of a taker's impact that stays
    impact_halflife_s: float = 60.0  # decay of the rest
    imbalance_lead_steps: int = 80  # how many future moves the book imbalance reveals
    imbalance_info: float = 0.65  # in [0, 1]: weight of the future moves in the imbalance
    outlook_s: tuple[float, float] = (180.0, 1_800.0)  # horizons of ``outlook`` and ``outlook_long``
    half_spread_bps: float = 2.0
    level_step_bps: float = 1.5
    base_size_usd: float = 10_000.0

    def __post_init__(self) -> None:
        positive = (
            self.start_px,
            self.lag_halflife_s,
            self.impact_halflife_s,
            self.event_rate_per_s,
            self.trend_mean_hours,
            *self.regime_mean_hours,
        )
        non_negative = (self.daily_vol, self.jump_rate_per_day, self.jump_scale)
        if not all(v > 0 and math.isfinite(v) for v in positive):
            raise ValueError(f"{self.coin}: prices, half-life and mean durations must be positive")
        if not all(v >= 0 and math.isfinite(v) for v in (*non_negative, *self.regime_vol_mult)):
            raise ValueError(f"{self.coin}: volatilities, jump rate and scales must be non-negative")
        if max(self.regime_vol_mult) <= 0:
            raise ValueError(f"{self.coin}: at least one regime must have a positive volatility")
        if not (0.0 <= self.imbalance_info <= 1.0 and 0.0 <= self.trend_prob <= 1.0):
            raise ValueError(f"{self.coin}: imbalance_info and trend_prob must be in [0, 1]")
        if not (self.event_df > 2 and 0.0 <= self.impact_permanent <= 1.0):
            raise ValueError(f"{self.coin}: event_df must exceed 2 and impact_permanent be in [0, 1]")
        short, long = self.outlook_s
        if self.imbalance_lead_steps < 1 or not 0 < short <= long:
            raise ValueError(f"{self.coin}: imbalance_lead_steps must be positive and outlook_s increasing")


_DEFAULT_TABLE: tuple[tuple[str, float, float, float, float, float, float, float, float], ...] = (
    # coin, start_px, daily_vol, jumps/day, jump_scale, events/s, lag_halflife_s, half_spread_bps, size_usd
    # BTC, ETH and SOL: daily volatility from the recorded daily candles (BTC 2.4 %, ETH 3.3 %) and the
    # recorded 1 s volatility ratios (SOL ~1.15x ETH); events/s and lag from the recorded mid changes.
    # HYPE and the HIP-3 equities have no recording here: HYPE is SOL's shape at 1.4x its volatility,
    # the equities keep their typical daily volatility. The last two columns only shape the ladder of a
    # replayed coin (``build_quotes``); the synthetic book comes from ``liquidity``.
    ("BTC", 95_000.0, 0.024, 1.0, 0.003, 0.14, 0.2, 0.05, 600_000.0),
    ("ETH", 3_500.0, 0.033, 1.0, 0.004, 0.2, 0.2, 0.12, 300_000.0),
    ("SOL", 180.0, 0.038, 1.5, 0.005, 0.2, 0.2, 0.25, 120_000.0),
    ("HYPE", 35.0, 0.053, 2.0, 0.008, 0.2, 0.2, 0.5, 40_000.0),
    ("xyz:TSLA", 250.0, 0.035, 0.5, 0.008, 0.12, 0.3, 1.5, 8_000.0),
    ("xyz:NVDA", 180.0, 0.03, 0.5, 0.006, 0.12, 0.3, 1.5, 8_000.0),
    ("PURR/USDC", 0.19, 0.08, 2.0, 0.015, 0.1, 0.4, 12.0, 2_000.0),
)

DEFAULT_MODELS: dict[str, CoinModel] = {
    coin: CoinModel(
        coin,
        px,
        vol,
        jumps,
        jump_scale,
        event_rate_per_s=events,
        lag_halflife_s=lag,
        half_spread_bps=half,
        level_step_bps=half / 2,
        base_size_usd=size,
    )
    for coin, px, vol, jumps, jump_scale, events, lag, half, size in _DEFAULT_TABLE
}


class CoinState(NamedTuple):
    """One coin after a step: ``trend`` = efficient drift per day (log units), ``imbalance`` in [-1, 1].

    ``outlook`` and ``outlook_long``: the coming moves over the model's two ``outlook_s`` horizons,
    in units of their standard deviation (hidden information; the venue shows nothing of it).
    """

    ts_ms: int
    ref_px: float
    efficient_px: float
    imbalance: float
    regime: Regime
    trend: float
    outlook: float = 0.0
    outlook_long: float = 0.0


# --------------------------------------------------------------------------- seeding and regimes


def coin_seed_sequence(seed: int, coin: str) -> SeedSequence:
    """The root seed sequence of ``coin``: depends only on the seed and the coin's name."""
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    name_key = int.from_bytes(hashlib.blake2b(coin.encode(), digest_size=8).digest(), "big")
    return SeedSequence([seed, name_key])


def stationary_regime_shares(model: CoinModel) -> tuple[float, float, float]:
    """Long-run share of time spent in each regime (embedded-chain stationary law x mean dwell)."""
    p = np.array(REGIME_TRANSITIONS)
    eigvals, eigvecs = np.linalg.eig(p.T)
    nu = np.real(eigvecs[:, int(np.argmin(np.abs(eigvals - 1.0)))])
    weights = np.abs(nu) * np.array(model.regime_mean_hours)
    shares = weights / weights.sum()
    return (float(shares[0]), float(shares[1]), float(shares[2]))


def _normalised_mults(model: CoinModel) -> tuple[float, float, float]:
    """Regime multipliers scaled so the time-averaged variance equals ``daily_vol**2``."""
    shares = stationary_regime_shares(model)
    mean_sq = sum(s * v * v for s, v in zip(shares, model.regime_vol_mult, strict=True))
    k = 1.0 / math.sqrt(mean_sq)
    a, b, c = model.regime_vol_mult
    return (a * k, b * k, c * k)


# --------------------------------------------------------------------------- one coin


class PricePath:
    """The price path of one coin. Advance it with ``step`` / ``advance``; it never reads a clock.

    ``jumps`` and ``regime_switches`` count the events so far (for tests and the operator's view).
    """

    def __init__(self, model: CoinModel, seed: int, start_ms: int = 0) -> None:
        noise_seq, event_seq = coin_seed_sequence(seed, model.coin).spawn(2)
        self.model = model
        self._noise = Generator(PCG64(noise_seq))
        self._events = Generator(PCG64(event_seq))
        self._mults = _normalised_mults(model)
        self._info = model.imbalance_info
        self._ts = start_ms
        self._x = math.log(model.start_px)
        self._m = 0.0  # log(ref / efficient): always lag + transient impact
        self._lag = 0.0
        self._h = 0.0
        self._inc: list[float] = []  # unit moves of the current batch (variance dt_days per step)
        self._eps: list[float] = []  # normals of the imbalance's slow noise
        self._i = 0
        self._fut: list[float] = []  # the coming moves, filled at the first step (it needs dt)
        self._head = 0
        self._sums = (0.0, 0.0, 0.0)  # the next lead / outlook / outlook_long moves
        self._k = (model.imbalance_lead_steps, 1, 1)  # those horizons in steps (set with dt)
        self._noise_level = 0.0
        self._dt_ms = 0
        self._coef = (0.0, 0.0, 0.0, 0.0)  # dt_days, lag decay, impact decay, noise decay per step
        self.jumps = 0
        self.regime_switches = 0
        self._init_events(start_ms)
        self._state = self._make_state()

    def _init_events(self, start_ms: int) -> None:
        ev = self._events
        shares = stationary_regime_shares(self.model)
        self._regime = _REGIMES[self._pick(shares)]
        self._next_regime = start_ms + ev.exponential(self.model.regime_mean_hours[self._regime] * HOUR_MS)
        self._trend = 0.0
        self._next_trend = float(start_ms)
        self._new_trend()
        rate = self.model.jump_rate_per_day
        self._next_jump = start_ms + ev.exponential(DAY_MS / rate) if rate > 0 else math.inf
        self._next_event = min(self._next_regime, self._next_trend, self._next_jump)

    @property
    def state(self) -> CoinState:
        """The state after the last step (or the initial state)."""
        return self._state

    @property
    def ts_ms(self) -> int:
        """Simulated time of the path."""
        return self._ts

    def set_price(self, px: float) -> CoinState:
        """Move the reference price to ``px`` now (an operator's shock); the path continues from there."""
        if not px > 0 or not math.isfinite(px):
            raise ValueError(f"price must be positive and finite, got {px}")
        self._x = math.log(px) - self._m
        self._state = self._make_state()
        return self._state

    def step(self, dt_ms: int) -> CoinState:
        """Advance one step of ``dt_ms`` milliseconds."""
        return self.advance(1, dt_ms)

    def impact(self, log_move: float) -> CoinState:
        """Taker flow moved the price by ``log_move``: ``impact_permanent`` of it stays, the rest decays."""
        if not math.isfinite(log_move):
            raise ValueError(f"impact must be finite, got {log_move}")
        permanent = self.model.impact_permanent
        self._x += permanent * log_move
        self._h += (1.0 - permanent) * log_move
        self._m = self._lag + self._h
        self._state = self._make_state()
        return self._state

    def advance(self, n_steps: int, dt_ms: int) -> CoinState:
        """Advance ``n_steps`` steps of ``dt_ms`` each; same result as calling ``step`` n times.

        The hot loop: state lives in locals, rare events (regime, trend, jump) leave it through
        ``_handle_events``; one pre-drawn move and one normal are consumed per step whatever happens,
        so the streams stay aligned however the caller chunks time.
        """
        if dt_ms <= 0:
            raise ValueError(f"dt_ms must be positive, got {dt_ms}")
        if n_steps <= 0:
            return self._state
        dt_days, a, a_h, rho = self._prepare(dt_ms)
        rho_c = math.sqrt(1.0 - rho * rho)
        ts, x, lag, h, noise = self._ts, self._x, self._lag, self._h, self._noise_level
        inc, eps, i = self._inc, self._eps, self._i
        fut, head, size = self._fut, self._head, len(self._fut)
        k_imb, k_short, _ = self._k
        s_imb, s_short, s_long = self._sums
        sig = self.model.daily_vol * self._mults[self._regime]
        drift = (self._trend - 0.5 * sig * sig) * dt_days
        for _ in range(n_steps):
            ts += dt_ms
            if ts >= self._next_event:
                self._x = x
                self._handle_events(ts)
                x = self._x
                sig = self.model.daily_vol * self._mults[self._regime]
                drift = (self._trend - 0.5 * sig * sig) * dt_days
            if i >= len(inc):
                self._head = head
                inc, eps, i = self._refill(dt_ms)
                s_imb, s_short, s_long = self._exact_sums()  # bound the running sums' rounding drift
            old = fut[head]
            x += drift + old
            lag = a * (lag - old)
            h *= a_h
            new = inc[i] * sig
            fut[head] = new
            j = head + k_imb
            s_imb += fut[j - size if j >= size else j] - old
            j = head + k_short
            s_short += fut[j - size if j >= size else j] - old
            s_long += new - old
            head = head + 1 if head + 1 < size else 0
            noise = rho * noise + rho_c * eps[i]
            i += 1
        self._ts, self._x, self._lag, self._h, self._noise_level = ts, x, lag, h, noise
        self._m = lag + h
        self._i, self._head, self._sums = i, head, (s_imb, s_short, s_long)
        self._state = self._make_state()
        return self._state

    # ----------------------------------------------------------------- internals

    def _prepare(self, dt_ms: int) -> tuple[float, float, float, float]:
        """Per-step coefficients for ``dt_ms``; on the first step, also draws the coming moves."""
        if dt_ms != self._dt_ms:
            dt_s = dt_ms / 1000.0
            decay = math.log(2.0) * dt_s
            self._coef = (
                dt_ms / DAY_MS,
                math.exp(-decay / self.model.lag_halflife_s),
                math.exp(-decay / self.model.impact_halflife_s),
                math.exp(-dt_s / _IMBALANCE_NOISE_S),
            )
            self._dt_ms = dt_ms
            if not self._fut:
                lead = self.model.imbalance_lead_steps
                short, long = (max(1, round(h * 1000 / dt_ms)) for h in self.model.outlook_s)
                self._k = (lead, short, max(lead, long))
                self._fill_lookahead(dt_ms)
        return self._coef

    def _fill_lookahead(self, dt_ms: int) -> None:
        sig = self.model.daily_vol * self._mults[self._regime]
        fut: list[float] = []
        size = self._k[2]
        while len(fut) < size:
            inc, _, _ = self._refill(dt_ms)
            fut.extend(v * sig for v in inc[: size - len(fut)])
        self._fut = fut
        self._inc, self._eps, self._i = [], [], 0
        self._sums = self._exact_sums()

    def _refill(self, dt_ms: int) -> tuple[list[float], list[float], int]:
        """A batch of unit moves: Poisson-many Student t events per step, variance ``dt_days`` per step."""
        model = self.model
        lam = model.event_rate_per_s * dt_ms / 1000.0
        df = model.event_df
        scale = math.sqrt((dt_ms / DAY_MS) / lam * (df - 2.0) / df)
        counts = self._noise.poisson(lam, _BATCH)
        sizes = self._noise.standard_t(df, _BATCH)
        self._inc = (np.sqrt(counts) * sizes * scale).tolist()
        self._eps = self._noise.standard_normal(_BATCH).tolist()
        self._i = 0
        return self._inc, self._eps, 0

    def _exact_sums(self) -> tuple[float, float, float]:
        fut, head = self._fut, self._head
        if not fut:
            return (0.0, 0.0, 0.0)
        ordered = fut[head:] + fut[:head]
        k_imb, k_short, _ = self._k
        return math.fsum(ordered[:k_imb]), math.fsum(ordered[:k_short]), math.fsum(ordered)

    def _make_state(self) -> CoinState:
        sig = self.model.daily_vol * self._mults[self._regime]
        dt_days = self._coef[0]
        s_imb, s_short, s_long = self._sums
        k_imb, k_short, k_long = self._k
        unit = sig * math.sqrt(dt_days) if sig > 0 and dt_days > 0 else 0.0
        info = self._info
        signal = s_imb / (unit * math.sqrt(k_imb)) if unit else 0.0
        raw = info * signal + math.sqrt(1.0 - info * info) * self._noise_level
        return CoinState(
            self._ts,
            math.exp(self._x + self._m),
            math.exp(self._x),
            math.tanh(_IMBALANCE_GAIN * raw),
            self._regime,
            self._trend,
            s_short / (unit * math.sqrt(k_short)) if unit else 0.0,
            s_long / (unit * math.sqrt(k_long)) if unit else 0.0,
        )

    def _pick(self, probs: tuple[float, ...]) -> int:
        u = float(self._events.random())
        acc = 0.0
        for k, p in enumerate(probs):
            acc += p
            if u < acc:
                return k
        return len(probs) - 1

    def _handle_events(self, ts: int) -> None:
        """Apply every regime switch, trend change and jump due at or before ``ts``, in time order."""
        ev = self._events
        while self._next_event <= ts:
            if self._next_regime == self._next_event:
                self._regime = _REGIMES[self._pick(REGIME_TRANSITIONS[self._regime])]
                self._next_regime += ev.exponential(self.model.regime_mean_hours[self._regime] * HOUR_MS)
                self.regime_switches += 1
            elif self._next_trend == self._next_event:
                self._new_trend()
            else:
                self._x += self.model.jump_scale * float(ev.standard_normal())
                self._next_jump += ev.exponential(DAY_MS / self.model.jump_rate_per_day)
                self.jumps += 1
            self._next_event = min(self._next_regime, self._next_trend, self._next_jump)

    def _new_trend(self) -> None:
        ev, model = self._events, self.model
        if float(ev.random()) < model.trend_prob:
            direction = 1.0 if float(ev.random()) < 0.5 else -1.0
            size = model.trend_strength * model.daily_vol * math.exp(0.35 * float(ev.standard_normal()))
            self._trend = direction * size
        else:
            self._trend = 0.0
        self._next_trend += ev.exponential(model.trend_mean_hours * HOUR_MS)


# --------------------------------------------------------------------------- all coins


class SyntheticMarket:
    """All coins of the venue, stepped on a fixed grid of ``step_ms`` from ``start_ms``."""

    def __init__(
        self,
        models: Mapping[str, CoinModel],
        seed: int,
        start_ms: int,
        step_ms: int = DEFAULT_STEP_MS,
    ) -> None:
        if step_ms <= 0:
            raise ValueError(f"step_ms must be positive, got {step_ms}")
        self.seed = seed
        self.step_ms = step_ms
        self._now = start_ms
        self._paths: dict[str, PricePath] = {}
        for coin, model in models.items():
            if coin != model.coin:
                raise ValueError(f"model key {coin!r} does not match model.coin {model.coin!r}")
            self._paths[coin] = PricePath(model, seed, start_ms)

    @property
    def now_ms(self) -> int:
        """Time of the last completed step (always on the step grid)."""
        return self._now

    def coins(self) -> list[str]:
        """Coins in the order they were given."""
        return list(self._paths)

    def path(self, coin: str) -> PricePath:
        """The path of one coin (KeyError for an unknown coin)."""
        return self._paths[coin]

    def states(self) -> dict[str, CoinState]:
        """Current state of every coin."""
        return {coin: p.state for coin, p in self._paths.items()}

    def advance_to(self, ts_ms: int) -> dict[str, CoinState]:
        """Step every coin up to the last grid point at or before ``ts_ms`` (never backwards)."""
        n = (ts_ms - self._now) // self.step_ms
        if n > 0:
            for p in self._paths.values():
                p.advance(n, self.step_ms)
            self._now += n * self.step_ms
        return self.states()

    def set_price(self, coin: str, px: float) -> CoinState:
        """Move one coin's reference price to ``px`` now; its path continues from there."""
        return self._paths[coin].set_price(px)

    def add_coin(self, model: CoinModel) -> CoinState:
        """List a new coin starting now at ``model.start_px``; the other coins are unaffected."""
        if model.coin in self._paths:
            raise ValueError(f"coin {model.coin!r} already listed")
        path = PricePath(model, self.seed, self._now)
        self._paths[model.coin] = path
        return path.state


# --------------------------------------------------------------------------- operator prices


def operator_price_error(inst: Instrument, px: Decimal) -> str | None:
    """Why an operator's price for ``inst`` is refused (None: it is fine).

    A price must be a whole number of the instrument's ticks (so the mark is exact on its grid) and at
    most ``MAX_OPERATOR_PX``: 1e-30 or 1e30 would leave no book a market maker could quote.
    """
    tick = Decimal(1).scaleb(-inst.px_decimals)
    if px.is_finite() and tick <= px <= MAX_OPERATOR_PX and px % tick == 0:
        return None
    return (
        f"px must be a whole number of ticks ({tick:f} for {inst.coin}) from {tick:f} "
        f"to {MAX_OPERATOR_PX:f}, got {px}"
    )


# --------------------------------------------------------------------------- quotes on the grid


class UniformSource(Protocol):
    """Anything with ``random() -> float`` in [0, 1): ``random.Random`` or ``numpy.random.Generator``."""

    def random(self) -> float: ...


def _grid_step(ticks: int, px_decimals: int) -> int:
    """Spacing of valid prices around ``ticks`` (5 significant figures, integers always valid)."""
    excess = len(str(ticks)) - MAX_SIG_FIGS
    return 10 ** min(excess, px_decimals) if excess > 0 else 1


def valid_ticks_floor(ticks: int, px_decimals: int) -> int:
    """Largest valid price (in ticks) at or below ``ticks``; 0 when there is none."""
    if ticks <= 0:
        return 0
    step = _grid_step(ticks, px_decimals)
    return ticks - ticks % step


def valid_ticks_ceil(ticks: int, px_decimals: int) -> int:
    """Smallest valid price (in ticks) at or above ``ticks`` (a carry to a power of ten is valid)."""
    ticks = max(ticks, 1)
    step = _grid_step(ticks, px_decimals)
    return -(-ticks // step) * step


def build_quotes(
    inst: Instrument,
    ref_px: float,
    imbalance: float,
    *,
    levels: int = 20,
    half_spread_bps: float,
    level_step_bps: float,
    base_size_usd: float,
    rng: UniformSource | None = None,
    depth_growth: float = 0.35,
    skew: float = 0.8,
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """A market maker's ladder around ``ref_px``: (bids, asks) of (price_ticks, size_lots), best first.

    Level ``i`` sits ``half_spread_bps + i * level_step_bps`` from the reference, rounded onto the
    venue grid (bids down, asks up, one tick further when rounding would merge two levels). Depth grows
    by ``depth_growth`` per level; bids are scaled by ``1 + skew * imbalance`` and asks by
    ``1 - skew * imbalance`` (``skew`` < 1 keeps both positive); ``rng`` adds +-40 % size jitter.
    Fewer levels are returned only when a bid would fall to a price of zero.
    """
    if not ref_px > 0 or not math.isfinite(ref_px):
        raise ValueError(f"ref_px must be positive and finite, got {ref_px}")
    imb = min(1.0, max(-1.0, imbalance))
    bid_px = _ladder(inst.px_decimals, ref_px, half_spread_bps, level_step_bps, levels, side=-1, prev=0)
    best_bid = bid_px[0] if bid_px else 0
    ask_px = _ladder(inst.px_decimals, ref_px, half_spread_bps, level_step_bps, levels, side=1, prev=best_bid)
    sizes = (inst.px_decimals, inst.sz_decimals, base_size_usd, depth_growth, rng)
    bids = _with_sizes(bid_px, 1.0 + skew * imb, *sizes)
    asks = _with_sizes(ask_px, 1.0 - skew * imb, *sizes)
    return bids, asks


def _ladder(
    px_dec: int, ref_px: float, half_bps: float, step_bps: float, levels: int, side: int, prev: int
) -> list[int]:
    """Level prices in ticks, strictly moving away from the reference (side -1 bids, +1 asks).

    ``prev`` is the price the first ask must exceed (the best bid); ignored for bids.
    """
    ref_ticks = ref_px * 10**px_dec
    out: list[int] = []
    for i in range(levels):
        target = ref_ticks * (1.0 + side * (half_bps + i * step_bps) * BPS)
        if side < 0:
            t = valid_ticks_floor(math.floor(target), px_dec)
            if out and t >= prev:
                t = valid_ticks_floor(prev - 1, px_dec)
            if t <= 0:
                break
        else:
            t = valid_ticks_ceil(math.ceil(target), px_dec)
            if t <= prev:
                t = valid_ticks_ceil(prev + 1, px_dec)
        out.append(t)
        prev = t
    return out


def _with_sizes(
    prices: list[int],
    factor: float,
    px_dec: int,
    sz_dec: int,
    base_usd: float,
    growth: float,
    rng: UniformSource | None,
) -> list[tuple[int, int]]:
    px_scale, lot_scale = 10**px_dec, 10**sz_dec
    out = []
    for i, t in enumerate(prices):
        usd = base_usd * factor * (1.0 + growth * i)
        if rng is not None:
            usd *= 0.6 + 0.8 * rng.random()
        lots = int(usd * px_scale * lot_scale / t)
        out.append((t, max(1, lots)))
    return out
