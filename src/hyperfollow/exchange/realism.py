"""Runs of the synthetic market as a client of the venue would see them, for the microstructure figures.

``simulate`` drives the embedded engine on a stepped clock and records, per coin, what a subscriber of
``l2Book`` and ``trades`` gets: a book snapshot every ``snapshot_ms`` (the public feed pushes at most
every 0.5 s) and every print with its buyer and seller. ``impact_probe`` sends one large market order
and follows the mid afterwards. Deterministic for a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hyperfollow.domain.rules import Instrument
from hyperfollow.exchange.clock import SimClock
from hyperfollow.exchange.driver import MarketDriver
from hyperfollow.exchange.engine import Engine, OrderSpec
from hyperfollow.exchange.microstructure import BOOK_LEVELS, Print, Snapshot
from hyperfollow.exchange.traders import DEFAULT_TRADERS
from hyperfollow.exchange.universe import Universe

START_MS = 1_757_000_000_000  # 2025-09-04, near the recorded captures
DEMO_COINS = ("BTC", "ETH", "SOL", "HYPE", "xyz:TSLA", "xyz:NVDA", "PURR/USDC")


@dataclass
class Run:
    """What a run recorded: per coin the snapshots and prints; per simulated trader its PnL in USD."""

    books: dict[str, list[Snapshot]] = field(default_factory=dict)
    prints: dict[str, list[Print]] = field(default_factory=dict)
    orders_per_level: dict[str, list[int]] = field(default_factory=dict)
    trader_pnl: dict[str, float] = field(default_factory=dict)
    minutes: float = 0.0


def _engine(seed: int, coins: tuple[str, ...], traders: bool) -> tuple[Engine, MarketDriver]:
    engine = Engine(Universe(), SimClock(start_ms=START_MS, stepped=True))
    driver = MarketDriver(engine, seed, list(coins), traders=DEFAULT_TRADERS if traders else None)
    return engine, driver


def snapshot(engine: Engine, inst: Instrument) -> tuple[Snapshot, list[int]]:
    """The book of ``inst`` as ``l2Book`` shows it (20 levels a side), and each level's order count."""
    book = engine.books[inst.asset]
    px_scale, sz_scale = 10**inst.px_decimals, 10**inst.sz_decimals
    sides = [book.depth(is_buy, BOOK_LEVELS) for is_buy in (True, False)]
    bids, asks = ([(px / px_scale, sz / sz_scale) for px, sz, _ in side] for side in sides)
    return Snapshot(engine.now(), bids, asks), [n for side in sides for _, _, n in side]


def simulate(
    seed: int,
    minutes: float,
    coins: tuple[str, ...] = DEMO_COINS,
    *,
    traders: bool = True,
    step_ms: int = 500,
    snapshot_ms: int = 500,
) -> Run:
    """Run the market for ``minutes`` of simulated time in steps of ``step_ms``; record every coin."""
    engine, driver = _engine(seed, coins, traders)
    insts = [engine.universe.by_coin[c] for c in coins]
    run = Run(minutes=minutes)
    last_seq = engine.next_tid
    start_equity = {t.spec.name: _equity(engine, t.address) for t in driver.traders}
    end = engine.now() + int(minutes * 60_000)
    next_snap = engine.now()
    while engine.now() < end:
        engine.clock.advance(step_ms)
        driver.step(engine.now())
        for inst in insts:
            for trade in engine.trades[inst.asset]:
                if trade.seq > last_seq:
                    px = trade.px / 10**inst.px_decimals
                    sz = trade.sz / 10**inst.sz_decimals
                    run.prints.setdefault(inst.coin, []).append(
                        Print(trade.time, px, sz, trade.taker_is_buy, (trade.buyer, trade.seller))
                    )
        last_seq = engine.next_tid
        if engine.now() >= next_snap:
            next_snap += snapshot_ms
            for inst in insts:
                snap, counts = snapshot(engine, inst)
                run.books.setdefault(inst.coin, []).append(snap)
                run.orders_per_level.setdefault(inst.coin, []).extend(counts)
    for t in driver.traders:
        run.trader_pnl[t.spec.name] = _equity(engine, t.address) - start_equity[t.spec.name]
    return run


def _equity(engine: Engine, address: str) -> float:
    acct = engine.accounts.get(address)
    return acct.total_value(engine.marks) / 1e6 if acct is not None else 0.0


def impact_counterfactual(
    seed: int,
    coin: str = "BTC",
    usd: float = 1_000_000.0,
    warmup_s: int = 60,
    after_s: tuple[int, ...] = (0, 10),
) -> dict[str, float]:
    """A market buy of ``usd`` after ``warmup_s``: its effect on the mid, in bps, ``after_s`` later.

    The same seed is run twice, with and without the order (stepped mode is deterministic), so the
    figure is the order's own effect, free of the market's moves meanwhile: ``{"0s": bps, "10s": ...}``.
    """
    with_order, without = (
        _mids_after(seed, coin, usd, warmup_s, after_s),
        _mids_after(seed, coin, 0.0, warmup_s, after_s),
    )
    return {f"{h}s": (with_order[h] / without[h] - 1) * 1e4 for h in after_s}


def _mids_after(
    seed: int, coin: str, usd: float, warmup_s: int, after_s: tuple[int, ...]
) -> dict[int, float]:
    engine, driver = _engine(seed, DEMO_COINS, traders=False)
    inst = engine.universe.by_coin[coin]
    for _ in range(warmup_s * 10):
        engine.clock.advance(100)
        driver.step(engine.now())
    if usd > 0:
        whale = "0x" + "7a" * 20
        engine.deposit(whale, int(usd * 1_000_000))
        mark = engine.marks[inst.asset]
        lots = int(usd * 10**inst.sz_decimals / (mark / 10**inst.px_decimals))
        limit = engine._round_px(inst, mark * 1.05, up=True)
        engine.place(whale, OrderSpec(inst.asset, True, limit, lots, tif="Ioc"))
    out: dict[int, float] = {}
    elapsed = 0
    for horizon in sorted(after_s):
        while elapsed < horizon * 1000:
            engine.clock.advance(100)
            driver.step(engine.now())
            elapsed += 100
        out[horizon] = _mid(engine, inst)
    return out


def _mid(engine: Engine, inst: Instrument) -> float:
    mid = engine.mid(inst.asset)
    return float(mid) if mid is not None else math.nan
