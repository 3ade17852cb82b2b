"""Candles built from trades: 1-minute bars kept, longer intervals aggregated on request."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from hyperfollow.domain.rules import Instrument, scaled_to_wire

INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1M": 2_592_000_000,
}
MAX_MINUTES = 60 * 24 * 31  # a month of 1m bars per coin
MAX_CANDLES = 5000  # the venue serves at most the latest 5000 candles


class CandleStore:
    """Per coin: minute -> [open, high, low, close (ticks), volume (lots), trades]."""

    def __init__(self) -> None:
        self.bars: dict[str, OrderedDict[int, list[int]]] = {}
        self.insts: dict[str, Instrument] = {}
        self.dirty: set[str] = set()

    def add_trade(self, coin: str, ts_ms: int, px: int, sz: int, inst: Instrument) -> None:
        minute = ts_ms - ts_ms % 60_000
        bars = self.bars.get(coin)
        if bars is None:
            bars = self.bars[coin] = OrderedDict()
            self.insts[coin] = inst
        bar = bars.get(minute)
        if bar is None:
            bars[minute] = [px, px, px, px, sz, 1]
            if len(bars) > MAX_MINUTES:
                bars.popitem(last=False)
        else:
            bar[1] = max(bar[1], px)
            bar[2] = min(bar[2], px)
            bar[3] = px
            bar[4] += sz
            bar[5] += 1
        self.dirty.add(coin)

    def snapshot(self, coin: str, interval: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Candles whose open time lies in [start, end], oldest first (venue shape)."""
        step = INTERVAL_MS.get(interval)
        bars = self.bars.get(coin)
        if step is None or bars is None:
            return []
        grouped: dict[int, list[int]] = {}
        for minute, bar in bars.items():
            t = minute - minute % step
            if t < start_ms - start_ms % step or t > end_ms:
                continue
            agg = grouped.get(t)
            if agg is None:
                grouped[t] = list(bar)
            else:
                agg[1] = max(agg[1], bar[1])
                agg[2] = min(agg[2], bar[2])
                agg[3] = bar[3]
                agg[4] += bar[4]
                agg[5] += bar[5]
        inst = self.insts[coin]
        out = [self._wire(coin, interval, t, step, bar, inst) for t, bar in sorted(grouped.items())]
        return out[-MAX_CANDLES:]

    def latest(self, coin: str, interval: str) -> dict[str, Any] | None:
        """The current (last) candle of an interval, for WebSocket pushes."""
        bars = self.bars.get(coin)
        step = INTERVAL_MS.get(interval)
        if not bars or step is None:
            return None
        last_minute = next(reversed(bars))
        start = last_minute - last_minute % step
        candles = self.snapshot(coin, interval, start, last_minute)
        return candles[-1] if candles else None

    @staticmethod
    def _wire(
        coin: str, interval: str, t: int, step: int, bar: list[int], inst: Instrument
    ) -> dict[str, Any]:
        px = inst.px_decimals
        return {
            "t": t,
            "T": t + step - 1,
            "s": coin,
            "i": interval,
            "o": scaled_to_wire(bar[0], px),
            "c": scaled_to_wire(bar[3], px),
            "h": scaled_to_wire(bar[1], px),
            "l": scaled_to_wire(bar[2], px),
            "v": scaled_to_wire(bar[4], inst.sz_decimals),
            "n": bar[5],
        }
