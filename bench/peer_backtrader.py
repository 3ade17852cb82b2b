"""The peer side of ``bench_replay``: the same SMA cross in backtrader, run in the peer's own venv.

``python peer_backtrader.py BARS.npy FAST SLOW REPEATS`` reads bars saved by ``bench_replay`` (int64 rows
``ts_ns, open, high, low, close, volume``), runs a long-only SMA cross (buy one unit when the fast SMA
crosses above the slow one, close when it crosses below; market orders, filled at the next bar's open)
``REPEATS`` times and prints one JSON line: the median bars/s of ``cerebro.run()``, the orders executed
and the PnL. It imports nothing of hyperfollow: it runs where only backtrader, pandas and numpy are.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import backtrader as bt
import numpy as np
import pandas as pd


class SmaCross(bt.Strategy):  # type: ignore[misc]
    params = (("fast", 10), ("slow", 30))

    def __init__(self) -> None:
        fast = bt.ind.SMA(self.data.close, period=self.p.fast)
        slow = bt.ind.SMA(self.data.close, period=self.p.slow)
        self.crossover = bt.ind.CrossOver(fast, slow)
        self.executed = 0

    def notify_order(self, order: bt.Order) -> None:
        if order.status == order.Completed:
            self.executed += 1

    def next(self) -> None:
        if not self.position:
            if self.crossover > 0:
                self.buy(size=1)
        elif self.crossover < 0:
            self.close()


def frame(bars: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        bars[:, 1:].astype(float),
        index=pd.to_datetime(bars[:, 0], unit="ns"),
        columns=["open", "high", "low", "close", "volume"],
    )


def run_once(df: pd.DataFrame, fast: int, slow: int) -> tuple[float, int, float]:
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=df))
    cerebro.addstrategy(SmaCross, fast=fast, slow=slow)
    cash = 1e12
    cerebro.broker.setcash(cash)
    start = time.perf_counter()
    (strategy,) = cerebro.run()
    seconds = time.perf_counter() - start
    return seconds, strategy.executed, cerebro.broker.getvalue() - cash


def main() -> None:
    path, fast, slow, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    bars = np.load(path)
    df = frame(bars)
    runs = [run_once(df, fast, slow) for _ in range(repeats)]
    rates = [len(bars) / seconds for seconds, _, _ in runs]
    _, executed, pnl = runs[-1]
    print(json.dumps({"bars_per_s": statistics.median(rates), "orders": executed, "pnl": pnl,
                      "version": bt.__version__}))  # fmt: skip


if __name__ == "__main__":
    main()
