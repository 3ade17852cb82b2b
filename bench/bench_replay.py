"""Speed of the replay core (``hyperfollow.backtest.replay``), and a peer on the same bars.

Figures (each the median of ``REPEATS`` runs over data built before timing starts):

* ``replay, 3 sources merged, Python callback``: 1.2 M best-bid/offer records in three feeds (one per
  coin, random gaps, their timestamps interleaved), data latency fixed 200 µs, fixed 350 µs and uniform
  100-900 µs (seeded); every record moves the simulated time through a ``set_time`` callback and reaches
  a Python callback that updates that coin's running mid (integer half-ticks). Batches of 4,096 records,
  as a loader hands them over (timestamps as an int64 array, records as tuples);
* ``replay, 1 source, Python callback``: the same callback over one feed (no merging);
* ``replay, 3 sources via Source.of``: the first figure, but the sources are plain record iterators
  that ``Source.of`` cuts into batches (reading each record's timestamp in Python);
* ``SMA cross 1m bars, replay``: a long-only SMA(10)/SMA(30) cross on 30,000 synthetic one-minute bars.
  The strategy sees each bar at its close; its orders reach a simulated venue (its own zero-latency copy
  of the bars) 1 ns later and fill at the venue's last close, which is the next bar's open. Counted in
  bars (two deliveries each: venue and strategy);
* ``SMA cross 1m bars, backtrader`` and ``SMA cross, replay vs backtrader``: the same strategy and bars in
  backtrader (``cerebro.run()``, ``stdstats=False``, market orders filled at the next open), run in the
  peer's own venv (``bench/peer_env.sh``). Both sides must execute the same orders for the same PnL, or
  the module fails. Without the peer venv the module says so and prints our figures alone.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from bench._stats import median
from hyperfollow.backtest.replay import (
    FixedLatency,
    LatencyModel,
    Replay,
    ReplayContext,
    Source,
    UniformLatency,
)

REPEATS = 5
PEER_REPEATS = 3
EVENTS_PER_SOURCE = 400_000
BATCH = 4_096
BARS = 30_000
FAST, SLOW = 10, 30
MINUTE_NS = 60_000_000_000
PEER_DIR = Path(os.environ.get("HF_BENCH_PEER_DIR", "/tmp/hf-bench-peer"))
PEER_SCRIPT = Path(__file__).with_name("peer_backtrader.py")

GOALS = {
    "replay, 3 sources merged, Python callback": (">=", 1_000_000.0),
    "SMA cross, replay vs backtrader": (">=", 10.0),
}

Bbo = tuple[int, int, int, int]  # (venue ts ns, coin index, bid ticks, ask ticks)


def bbo_feed(coin: int, n: int, seed: int) -> tuple[np.ndarray, list[Bbo]]:
    """One coin's quotes: random gaps (mean 1 ms), a bid walking by ticks and a one-to-three tick spread."""
    rng = np.random.default_rng(seed)
    ts = 1_700_000_000_000_000_000 + np.cumsum(rng.integers(1, 2_000_000, size=n))
    bid = 6_000_000 + np.cumsum(rng.integers(-1, 2, size=n))
    ask = bid + rng.integers(1, 4, size=n)
    pool: dict[int, int] = {}  # one int object per price level, as a decoder's cache would give
    bids = [pool.setdefault(b, b) for b in bid.tolist()]
    asks = [pool.setdefault(a, a) for a in ask.tolist()]
    return ts, list(zip(ts.tolist(), [coin] * n, bids, asks, strict=True))


def as_batches(ts: np.ndarray, recs: list[Any]) -> list[tuple[np.ndarray, list[Any]]]:
    return [(ts[k : k + BATCH], recs[k : k + BATCH]) for k in range(0, len(recs), BATCH)]


COINS = 3


def latencies() -> list[LatencyModel]:
    """The three feeds' data latency, fresh (seeded) for every run."""
    return [FixedLatency(200_000), FixedLatency(350_000), UniformLatency(100_000, 900_000, seed=3)]


class _Clock:
    """Stands in for the simulated clock the replay drives."""

    __slots__ = ("ns",)

    def __init__(self) -> None:
        self.ns = 0

    def set_time(self, ns: int) -> None:
        self.ns = ns


def _mid_callback() -> tuple[Callable[[Bbo], None], list[int]]:
    mids = [0, 0, 0]

    def on_bbo(rec: Bbo) -> None:
        mids[rec[1]] = rec[2] + rec[3]  # the running mid, in half-ticks: exact

    return on_bbo, mids


def _rate(make: Callable[[], Replay], expected: int) -> float:
    rates = []
    for _ in range(REPEATS):
        replay = make()
        on_bbo, mids = _mid_callback()
        gc.collect()  # the records are built up front; a streaming loader would not keep them all alive
        start = time.perf_counter()
        stats = replay.run(on_bbo)
        seconds = time.perf_counter() - start
        if stats.events != expected or not any(mids):
            raise RuntimeError(f"replay delivered {stats.events} of {expected} records")
        rates.append(stats.events / seconds)
    return median(rates)


def bench_mid(feeds: list[tuple[np.ndarray, list[Bbo]]]) -> dict[str, float]:
    clock = _Clock()
    total = sum(len(recs) for _, recs in feeds)
    batches = [as_batches(ts, recs) for ts, recs in feeds]

    def merged() -> Replay:
        sources = [Source(b, latency=lat) for b, lat in zip(batches, latencies(), strict=True)]
        return Replay(sources, set_time=clock.set_time)

    def from_records() -> Replay:
        sources = [
            Source.of(recs, ts_of=itemgetter(0), batch_size=BATCH, latency=lat)
            for (_, recs), lat in zip(feeds, latencies(), strict=True)
        ]
        return Replay(sources, set_time=clock.set_time)

    def single() -> Replay:
        return Replay([Source(batches[0], latency=latencies()[0])], set_time=clock.set_time)

    return {
        "replay, 3 sources merged, Python callback": _rate(merged, total),
        "replay, 1 source, Python callback": _rate(single, len(feeds[0][1])),
        "replay, 3 sources via Source.of": _rate(from_records, total),
    }


def synthetic_bars(n: int, seed: int) -> np.ndarray:
    """1-minute bars as int64 rows (close time ns, open, high, low, close, volume); open = last close."""
    rng = np.random.default_rng(seed)
    close = 1_000_000 + np.cumsum(rng.integers(-40, 41, size=n))
    opens = np.concatenate(([1_000_000], close[:-1]))
    high = np.maximum(opens, close) + rng.integers(0, 15, size=n)
    low = np.minimum(opens, close) - rng.integers(0, 15, size=n)
    ts = 1_700_000_000_000_000_000 + MINUTE_NS * np.arange(1, n + 1)
    vol = rng.integers(1, 1_000, size=n)
    return np.stack([ts, opens, high, low, close, vol], axis=1).astype(np.int64)


class SmaCross:
    """Long-only SMA cross on bar closes, with backtrader's CrossOver rule (the last non-zero difference)."""

    def __init__(self, ctx: ReplayContext, fast: int, slow: int) -> None:
        self.ctx = ctx
        self.fast, self.slow = fast, slow
        self.ring = [0] * slow
        self.n = 0
        self.sum_fast = self.sum_slow = 0
        self.nzd = 0
        self.long = False

    def on_bar(self, bar: tuple[int, ...]) -> None:
        close = bar[4]
        n, ring, slow = self.n, self.ring, self.slow
        self.sum_fast += close - ring[(n - self.fast) % slow]
        self.sum_slow += close - ring[n % slow]
        ring[n % slow] = close
        self.n = n = n + 1
        if n < slow:
            return
        diff = slow * self.sum_fast - self.fast * self.sum_slow  # sign of SMA(fast) - SMA(slow), exact
        if n > slow:
            if not self.long:
                if self.nzd < 0 < diff:
                    self.long = True
                    self.ctx.submit(1)
            elif self.nzd > 0 > diff:
                self.long = False
                self.ctx.submit(0)
        if diff or n == slow:
            self.nzd = diff


class BarVenue:
    """Fills a target position at the last close it has seen (the next bar's open)."""

    def __init__(self) -> None:
        self.px = 0
        self.position = 0
        self.cash = 0
        self.orders = 0

    def on_bar(self, bar: tuple[int, ...]) -> None:
        self.px = bar[4]

    def on_action(self, target: int) -> None:
        self.cash -= (target - self.position) * self.px
        self.position = target
        self.orders += 1

    def pnl(self) -> int:
        return self.cash + self.position * self.px


def bench_sma_ours(bars: np.ndarray) -> tuple[float, int, int]:
    rows = [tuple(r) for r in bars.tolist()]
    ts = bars[:, 0].copy()
    rates = []
    venue = BarVenue()
    for _ in range(REPEATS):
        venue = BarVenue()
        replay = Replay(
            [Source([(ts, rows)], handler=venue.on_bar, name="venue"), Source([(ts, rows)], name="strategy")],
            order_latency=FixedLatency(1),
        )
        strategy = SmaCross(replay.context, FAST, SLOW)
        gc.collect()
        start = time.perf_counter()
        replay.run(strategy.on_bar, venue.on_action)
        rates.append(len(rows) / (time.perf_counter() - start))
    return median(rates), venue.orders, venue.pnl()


def peer_python() -> Path | None:
    python = PEER_DIR / ".venv" / "bin" / "python"
    if not python.exists():
        return None
    probe = subprocess.run([str(python), "-c", "import backtrader"], capture_output=True, check=False)
    return python if probe.returncode == 0 else None


def bench_sma_backtrader(python: Path, bars: np.ndarray) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hf-bench-bars-") as tmp:
        path = Path(tmp) / "bars.npy"
        np.save(path, bars)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        done = subprocess.run(
            [str(python), str(PEER_SCRIPT), str(path), str(FAST), str(SLOW), str(PEER_REPEATS)],
            capture_output=True,
            text=True,
            cwd=tmp,
            env=env,
            timeout=900,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"backtrader peer failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run() -> list[tuple[str, float, str]]:
    """All replay figures as (name, value, unit); the peer's only when its venv exists."""
    feeds = [bbo_feed(coin, EVENTS_PER_SOURCE, seed=100 + coin) for coin in range(COINS)]
    rows = [(name, value, "events/s") for name, value in bench_mid(feeds).items()]
    del feeds
    bars = synthetic_bars(BARS, seed=7)
    ours, orders, pnl = bench_sma_ours(bars)
    rows.append(("SMA cross 1m bars, replay", ours, "bars/s"))
    python = peer_python()
    if python is None:
        print(f"peer not installed: run bench/peer_env.sh (looked for backtrader in {PEER_DIR}/.venv)")
        return rows
    peer = bench_sma_backtrader(python, bars)
    if peer["orders"] != orders or abs(peer["pnl"] - pnl) > 1e-6:
        raise RuntimeError(
            f"the peer did different work: backtrader {peer['orders']} orders, PnL {peer['pnl']}; "
            f"replay {orders} orders, PnL {pnl}"
        )
    print(f"peer: backtrader {peer['version']}, {orders} orders executed by both, PnL {pnl} ticks each")
    rows.append(("SMA cross 1m bars, backtrader", peer["bars_per_s"], "bars/s"))
    rows.append(("SMA cross, replay vs backtrader", ours / peer["bars_per_s"], "x"))
    return rows


def main() -> None:
    """Print the figures, one a line."""
    for name, value, unit in run():
        print(f"{name:<52} {value:>14,.2f} {unit}")


if __name__ == "__main__":
    main()
