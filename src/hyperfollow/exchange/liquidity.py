"""The synthetic book and tape: market makers quoting a calibrated ladder, and a crowd of takers.

Everything here trades through the engine as ordinary orders, so queue position, partial fills,
depletion and refills are the engine's. Shapes come from the recorded venue (``calibrated.PROFILES``,
written by ``bench/calibrate_market.py``):

- ``Quoter`` keeps, per coin, a ladder of levels one tick apart (rare gaps as recorded), the spread one
  tick, level sizes drawn from the recorded quantiles of each level (the front is mostly dust with a
  large best level, the deep book steadier), several orders per level from a pool of maker addresses.
  It updates on the venue's book cadence: it moves the ladder only when the reference price leaves the
  quoted spread (so the mid changes under once a second), refills levels takers depleted, re-draws a
  few front levels (makers flicker at the top) and leans the deep levels on the informative imbalance.
- ``Tape`` sends taker orders from hundreds of addresses (a few very active, most occasional), leaning
  slightly with the book imbalance. Their sizes follow the recorded prints (most fill against one
  maker order) and their rate the recorded prints per minute, less the prints a sweep splits into.

HYPE and the HIP-3 coins have no recording: their profiles are SOL's (the closest recorded coin in
tick size and liquidity) scaled by their typical liquidity and activity (``DERIVED``).
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from hyperfollow.domain.rules import Instrument
from hyperfollow.exchange.accounts import ntl_div
from hyperfollow.exchange.calibrated import PROFILES
from hyperfollow.exchange.engine import MIN_ORDER_MICRO, Engine, OrderSpec
from hyperfollow.exchange.market import CoinState, valid_ticks_ceil, valid_ticks_floor

LEVEL_QUANTILES = (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98)
ORDER_QUANTILES = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)
BOOK_MS = 500  # the public l2Book is pushed at most every 0.5 s: makers update on that cadence
LEVELS = 20
MAKER_FUNDS_MICRO = 10**9 * 1_000_000  # each maker's deep pockets: $1bn
TAKER_FUNDS_MICRO = 10**8 * 1_000_000
N_MAKERS = 120
N_TAKERS = 2_000
MIN_PART_USD = 11.0
MAX_ORDERS_PER_LEVEL = 8
FRONT = 5  # levels 0..4: "the front", where takers trade and makers flicker
BEST_FLOOR = 0.3  # the makers' best level is drawn from the recorded one's quantiles above this
PRINTS_PER_ORDER = 1.3  # measured on the synthetic book: an order the size of a print sometimes splits


@dataclass(frozen=True, slots=True)
class Profile:
    """Book and tape shape of one coin (USD sizes, per-level tables best level first)."""

    level_usd: tuple[tuple[float, ...], ...]  # per level: USD size at LEVEL_QUANTILES
    gap_ticks: tuple[float, float, float]  # share of neighbouring levels 1, 2, 3+ ticks apart
    orders_per_level: tuple[float, ...]
    prints_per_min: float
    print_usd: tuple[float, ...]  # USD size of a print at ORDER_QUANTILES
    spread_ticks: int = 1
    flicker: float = 0.25  # chance per update that a front level is re-drawn
    deep_refresh: float = 0.1  # same, for the levels behind the first five
    front_lean: float = 0.15  # how much the imbalance leans the first five levels ...
    deep_lean: float = 0.5  # ... and the rest
    taker_lean: float = 0.25  # buy probability = 0.5 + taker_lean * imbalance
    daily_volume_usd: float = 1e9  # for the square-root impact law of taker flow

    def scaled(self, size: float, rate: float, spread_ticks: int = 1) -> Profile:
        """This shape with ``size`` times the USD sizes and ``rate`` times the taker orders."""
        return Profile(
            tuple(tuple(max(MIN_PART_USD + 1, q * size) for q in level) for level in self.level_usd),
            self.gap_ticks,
            tuple(max(1.0, n * min(1.0, size**0.25)) for n in self.orders_per_level),
            self.prints_per_min * rate,
            tuple(max(MIN_PART_USD, q * min(1.0, size**0.5)) for q in self.print_usd),
            spread_ticks,
            self.flicker,
            self.deep_refresh,
            self.front_lean,
            self.deep_lean,
            self.taker_lean,
            self.daily_volume_usd * size * rate,
        )


# Typical daily traded volume on the venue (2025): the scale of the square-root impact of a taker.
DAILY_VOLUME_USD = {"BTC": 3e9, "ETH": 1.5e9, "SOL": 4e8}


def _recorded(coin: str) -> Profile:
    p = PROFILES[coin]
    return Profile(
        tuple(tuple(level) for level in p["level_usd"]),
        (p["gap_ticks"][0], p["gap_ticks"][1], p["gap_ticks"][2]),
        tuple(p["orders_per_level"]),
        p["prints_per_min"],
        tuple(p["print_usd"]),
        daily_volume_usd=DAILY_VOLUME_USD.get(coin, 1e9),
    )


# coin: (recorded coin it is derived from, size factor, taker rate factor, spread in ticks)
DERIVED: dict[str, tuple[str, float, float, int]] = {
    "HYPE": ("SOL", 0.5, 0.8, 1),  # HYPE perps: about half SOL's depth, nearly its activity
    "xyz:TSLA": ("SOL", 0.03, 0.3, 3),  # HIP-3 equities: thin books (a few $k a level), a few ticks wide
    "xyz:NVDA": ("SOL", 0.03, 0.3, 3),
}  # spot pairs keep the single market maker's ladder (makers would need token inventories)
DEFAULT_PROFILES: dict[str, Profile] = {coin: _recorded(coin) for coin in PROFILES}
DEFAULT_PROFILES.update(
    {
        coin: DEFAULT_PROFILES[base].scaled(size, rate, ticks)
        for coin, (base, size, rate, ticks) in DERIVED.items()
    }
)


def sample_quantiles(qs: tuple[float, ...], levels: tuple[float, ...], u: float) -> float:
    """Inverse CDF from a few quantiles: piecewise linear in log size (clamped at the outer ones)."""
    if u <= qs[0]:
        return levels[0]
    if u >= qs[-1]:
        return levels[-1]
    k = bisect.bisect_right(qs, u) - 1
    w = (u - qs[k]) / (qs[k + 1] - qs[k])
    lo, hi = math.log(levels[k]), math.log(levels[k + 1])
    return math.exp(lo + w * (hi - lo))


def pool_address(kind: str, index: int) -> str:
    """A stable, realistic-looking address of the ``index``-th maker or taker of the crowd."""
    return "0x" + hashlib.blake2b(f"hyperfollow-{kind}:{index}".encode(), digest_size=20).hexdigest()


class Crowd:
    """The maker and taker addresses shared by every coin; accounts are funded on first use."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.makers = [pool_address("maker", k) for k in range(N_MAKERS)]
        self.maker_set = frozenset(self.makers)
        self.takers = [pool_address("taker", k) for k in range(N_TAKERS)]
        self.crowd_set = self.maker_set | frozenset(self.takers)
        weights = [1.0 / (k + 8) ** 1.1 for k in range(N_TAKERS)]  # a few very active, a long tail
        total = sum(weights)
        acc, self.taker_cdf = 0.0, []
        for w in weights:
            acc += w / total
            self.taker_cdf.append(acc)
        self._funded: set[str] = set()
        self.addresses: set[str] = set()

    def ensure(self, address: str, funds_micro: int) -> str:
        if address not in self._funded:
            self.engine.deposit(address, funds_micro)
            self.engine.account(address).keep_history = False
            self._funded.add(address)
            self.addresses.add(address)
        return address

    def maker(self, u: float) -> str:
        return self.ensure(self.makers[min(N_MAKERS - 1, int(u * u * N_MAKERS))], MAKER_FUNDS_MICRO)

    def taker(self, u: float, offset: int) -> str:
        k = min(N_TAKERS - 1, bisect.bisect_left(self.taker_cdf, u))
        return self.ensure(self.takers[(k + offset) % N_TAKERS], TAKER_FUNDS_MICRO)


@dataclass(slots=True)
class _Level:
    target: int  # lots the makers want here
    oids: list[int]


class Quoter:
    """The makers' ladder of one coin; ``update`` is called every ``BOOK_MS`` of simulated time."""

    def __init__(self, engine: Engine, crowd: Crowd, inst: Instrument, profile: Profile, seed: int) -> None:
        self.engine, self.crowd, self.inst, self.profile = engine, crowd, inst, profile
        self.rng = random.Random(f"quoter:{seed}:{inst.coin}")
        self.sides: dict[bool, dict[int, _Level]] = {True: {}, False: {}}
        self.bid0 = 0  # best bid of the ladder (ticks), 0 before the first update
        self.ask0 = 0

    # ------------------------------------------------------------------ the ladder

    def update(self, state: CoinState, force: bool = False) -> None:
        """Move the ladder if the reference left the quoted spread, then refill and re-draw levels."""
        inst = self.inst
        ref = state.ref_px * 10**inst.px_decimals
        if force or not self.bid0 or not self.bid0 <= ref <= self.ask0:
            self._recentre(ref)
        imb = state.imbalance
        for is_buy in (True, False):
            self._maintain(is_buy, imb)

    def _recentre(self, ref: float) -> None:
        """Quote ``spread_ticks`` wide with the mid as close to ``ref`` as the grid allows; a price on
        a tick (an operator's round move) gets an even spread, so the mid is that price."""
        dec = self.inst.px_decimals
        base = max(valid_ticks_floor(math.floor(ref), dec), valid_ticks_ceil(1, dec))
        step = valid_ticks_ceil(base + 1, dec) - base
        n = self.profile.spread_ticks
        if n % 2 and min(abs(ref - base), abs(base + step - ref)) < 0.01 * step:
            n += 1
        bid = base + round((ref - n * step / 2 - base) / step) * step
        bid = max(valid_ticks_floor(bid, dec), valid_ticks_ceil(1, dec))
        ask = bid
        for _ in range(n):
            ask = valid_ticks_ceil(ask + 1, dec)
        self.bid0, self.ask0 = bid, ask
        for is_buy, side in self.sides.items():
            inside = [px for px in side if (px > bid if is_buy else px < ask)]
            for px in inside:
                self._drop(is_buy, px)

    def _maintain(self, is_buy: bool, imb: float) -> None:
        side, rng, profile = self.sides[is_buy], self.rng, self.profile

        prices = self._ladder_prices(is_buy)
        wanted = set(prices)
        for px in [p for p in side if p not in wanted]:
            self._drop(is_buy, px)
        lean = imb if is_buy else -imb
        for index, px in enumerate(prices):
            level = side.get(px)
            if level is None:
                self._build(is_buy, px, index, lean)
                continue
            # takers reach the front: only its levels are checked for depletion at every update
            front = index < FRONT
            if rng.random() < (profile.flicker if front else profile.deep_refresh) or (
                front and self._resting(level) < 0.4 * level.target
            ):
                self._resize(is_buy, px, level, self._target_lots(px, index, lean), index)

    def _ladder_prices(self, is_buy: bool) -> list[int]:
        """The level prices of one side, best first: existing levels kept, the ticks between the new
        touch and them filled (a move), new deep levels with the recorded gaps."""
        dec, side = self.inst.px_decimals, self.sides[is_buy]
        first = self.bid0 if is_buy else self.ask0
        existing = sorted((p for p in side if (p < first if is_buy else p > first)), reverse=is_buy)
        out: list[int] = [first]
        rng, gaps = self.rng, self.profile.gap_ticks
        for px in existing:
            if len(out) == 1:
                fill = self._next(first, is_buy, dec)
                while (fill > px if is_buy else fill < px) and fill > 0 and len(out) < LEVELS:
                    out.append(fill)
                    fill = self._next(fill, is_buy, dec)
            if len(out) >= LEVELS:
                break
            out.append(px)
        while len(out) < LEVELS:
            px = self._next(out[-1], is_buy, dec)
            u = rng.random()
            if u > gaps[0]:
                px = self._next(px, is_buy, dec)
                if u > gaps[0] + gaps[1]:
                    px = self._next(px, is_buy, dec)
            if px <= 0:
                break
            out.append(px)
        return out

    @staticmethod
    def _next(px: int, is_buy: bool, dec: int) -> int:
        return valid_ticks_floor(px - 1, dec) if is_buy else valid_ticks_ceil(px + 1, dec)

    def _target_lots(self, px: int, index: int, lean: float) -> int:
        profile = self.profile
        u = self.rng.random()
        if index == 0:  # the recorded touch includes the moments after takers hit it: quote its upper part
            u = BEST_FLOOR + (1.0 - BEST_FLOOR) * u
        usd = sample_quantiles(LEVEL_QUANTILES, profile.level_usd[min(index, LEVELS - 1)], u)
        usd *= max(0.05, 1.0 + (profile.deep_lean if index >= FRONT else profile.front_lean) * lean)
        return self._lots(px, max(usd, MIN_PART_USD))

    def _lots(self, px: int, usd: float) -> int:
        inst = self.inst
        return max(1, int(usd * 10**inst.px_decimals * 10**inst.sz_decimals / px))

    def _usd(self, px: int, lots: int) -> float:
        inst = self.inst
        scale: int = 10 ** (inst.px_decimals + inst.sz_decimals)
        return px * lots / scale

    def _build(self, is_buy: bool, px: int, index: int, lean: float) -> None:
        target = self._target_lots(px, index, lean)
        level = self.sides[is_buy][px] = _Level(target, [])
        self._add(is_buy, px, level, target, index)

    def _add(self, is_buy: bool, px: int, level: _Level, lots: int, index: int) -> None:
        """Rest ``lots`` more at ``px``, split into several makers' orders."""
        rng, profile = self.rng, self.profile
        mean_n = profile.orders_per_level[min(index, len(profile.orders_per_level) - 1)]
        usd = self._usd(px, lots)
        n = 1 + min(MAX_ORDERS_PER_LEVEL - 1, int(rng.expovariate(1.0 / max(1e-9, mean_n - 1.0))))
        n = max(1, min(n, int(usd // MIN_PART_USD)))
        weights = [rng.expovariate(1.0) for _ in range(n)]
        total = sum(weights)
        for w in weights:
            part = max(self._lots(px, MIN_PART_USD), int(lots * w / total))
            oid = self._place(is_buy, px, part)
            if oid is not None:
                level.oids.append(oid)

    def _place(self, is_buy: bool, px: int, lots: int) -> int | None:
        engine = self.engine
        if px * lots // ntl_div(self.inst) < MIN_ORDER_MICRO:
            return None
        maker = self.crowd.maker(self.rng.random())
        # the makers' orders are valid by construction (grid prices, minimum value, funded makers):
        # straight to matching, without the per-order checks of a client's order
        order = engine._new_order(maker, OrderSpec(self.inst.asset, is_buy, px, lots, tif="Gtc"), "na")
        status = engine._execute(self.inst, order)
        if isinstance(status, dict) and "resting" in status:
            oid: int = status["resting"]["oid"]
            return oid
        return None

    def _resting(self, level: _Level) -> int:
        live = self.engine.live
        total, kept = 0, []
        for oid in level.oids:
            order = live.get(oid)
            if order is not None:
                kept.append(oid)
                total += order.sz
        level.oids = kept
        return total

    def _resize(self, is_buy: bool, px: int, level: _Level, target: int, index: int) -> None:
        """Bring a level to ``target`` lots: cancel from the back of its queue, or add behind it."""
        live, engine = self.engine.live, self.engine
        left = self._resting(level)
        while level.oids and left > target:
            order = live[level.oids.pop()]
            left -= order.sz
            engine._cancel(order, "canceled")
        level.target = target
        if target - left > 0 and self._usd(px, target - left) >= MIN_PART_USD:
            oid = self._place(is_buy, px, target - left)  # one maker joins the back of the queue
            if oid is not None:
                level.oids.append(oid)

    def _drop(self, is_buy: bool, px: int) -> None:
        level = self.sides[is_buy].pop(px, None)
        if level is None:
            return
        live = self.engine.live
        for oid in level.oids:
            order = live.get(oid)
            if order is not None:
                self.engine._cancel(order, "canceled")

    def clear(self) -> None:
        """Withdraw every quote (the coin is being replayed from a recording instead)."""
        for is_buy in (True, False):
            for px in list(self.sides[is_buy]):
                self._drop(is_buy, px)
        self.bid0 = self.ask0 = 0


class Tape:
    """The crowd of takers of one coin: IOC orders at the recorded rate and sizes."""

    def __init__(self, engine: Engine, crowd: Crowd, inst: Instrument, profile: Profile, seed: int) -> None:
        self.engine, self.crowd, self.inst, self.profile = engine, crowd, inst, profile
        self.rng = random.Random(f"tape:{seed}:{inst.coin}")
        self.offset = int.from_bytes(hashlib.blake2b(inst.coin.encode(), digest_size=4).digest(), "big")
        self.rate_per_ms = profile.prints_per_min / PRINTS_PER_ORDER / 60_000

    def act(self, dt_ms: int, state: CoinState) -> None:
        """Send the taker orders that arrive within the next ``dt_ms``."""
        rng = self.rng
        p = self.rate_per_ms * dt_ms
        n = 0
        u = rng.random()
        acc = prob = math.exp(-p)  # Poisson count by inversion (a handful at most)
        while u > acc and n < 20:
            n += 1
            prob *= p / n
            acc += prob
        for _ in range(n):
            self._order(state)

    def _order(self, state: CoinState) -> None:
        engine, inst, rng, profile = self.engine, self.inst, self.rng, self.profile
        book = engine.books[inst.asset]
        is_buy = rng.random() < 0.5 + profile.taker_lean * state.imbalance
        best = book.best_ask() if is_buy else book.best_bid()
        if best is None:
            return
        usd = sample_quantiles(ORDER_QUANTILES, profile.print_usd, rng.random())
        usd = max(usd, MIN_PART_USD)
        scale = 10**inst.px_decimals
        lots = max(1, int(usd * scale * 10**inst.sz_decimals / best))
        slip = 1.0 + (1 if is_buy else -1) * 0.003
        limit = engine._round_px(inst, best * slip, up=is_buy)
        taker = self.crowd.taker(rng.random(), self.offset)
        engine.place(taker, OrderSpec(inst.asset, is_buy, limit, lots, tif="Ioc"))


def profiles_for(coins: Mapping[str, object]) -> dict[str, Profile]:
    """The profile of each listed coin that has one."""
    return {coin: DEFAULT_PROFILES[coin] for coin in coins if coin in DEFAULT_PROFILES}
