"""Recorded market data, replayed instead of the synthetic generator.

``load_recording(path)`` reads one file (gzip detected by its magic bytes, whatever its name):

* websocket captures, one frame a line, either ``<local_ns> <raw ws json>`` (hftbacktest collector)::

      1737918843893903000 {"channel":"l2Book","data":{"coin":"BTC","time":1737918843542,"levels":[[..],[..]]}}

  or JSON lines ``{"received_wall_ns": 1784683656613941900, "channel": "trades", "data": [...]}``.
  ``l2Book`` and ``trades`` frames become events; other channels (subscriptionResponse, pong, ...) are
  skipped. Event time is the venue's ``time`` field (the local receive time when it is absent);
* candles: a JSON list of Hyperliquid candles ``{t,T,s,i,o,h,l,c,v,n}`` or of
  ``{timestamp, open, high, low, close, volume}``, a JSON object holding ``candles`` lists, or CSV
  with similar columns (``T,o,h,l,c,v``; ``time_open,time_close,open,high,low,close,volume``).
  The coin comes from the row (``s`` / ``symbol``), else the ``coin`` argument, else the file name
  (``btc-1m.csv`` -> ``BTC``); the interval from the row, the open/close times, the spacing of the
  rows or the file name, in that order.

Prices and sizes are kept as the recorded strings. Malformed input raises ``RecordingError`` naming
the file and the line (or the candle's position in a JSON list).
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal, TypeGuard

import msgspec

from hyperfollow.domain.model import Candle
from hyperfollow.recordings.candles import decimal_text as _decimal_text
from hyperfollow.recordings.candles import interval_ms, iter_candles
from hyperfollow.recordings.source import RecordingError, detect
from hyperfollow.recordings.ws import frames

__all__ = [
    "BookEvent", "CandleEvent", "Recording", "RecordingError", "ReplayEvent", "TradeEvent",
    "intra_candle_path", "load_recording", "merge_recordings",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class BookEvent:
    """An L2 snapshot: levels best first, ``(px, sz)`` strings as recorded."""

    ts_ms: int
    coin: str
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """One print; ``side`` is the aggressor ("B" buy, "A" sell)."""

    ts_ms: int
    coin: str
    px: str
    sz: str
    side: Literal["B", "A"]
    tid: int | None = None


@dataclass(frozen=True, slots=True)
class CandleEvent:
    """One candle; ``ts_ms`` is its open time, it covers ``[ts_ms, ts_ms + interval_ms)``."""

    ts_ms: int
    coin: str
    o: str
    h: str
    l: str  # noqa: E741 - the venue's own field name
    c: str
    v: str = "0"
    interval_ms: int = 60_000


ReplayEvent = BookEvent | TradeEvent | CandleEvent


def _end_of(event: ReplayEvent) -> int:
    return event.ts_ms + event.interval_ms if isinstance(event, CandleEvent) else event.ts_ms


class Recording:
    """Time-ordered replay events of one or more files (ties keep file order)."""

    def __init__(
        self, events: Iterable[ReplayEvent], source: str = "", frame_counts: Mapping[str, int] | None = None
    ) -> None:
        self.events: tuple[ReplayEvent, ...] = tuple(sorted(events, key=lambda e: e.ts_ms))
        self.source = source
        #: websocket frames read per channel, skipped channels included (empty for candle files)
        self.frame_counts: dict[str, int] = dict(frame_counts or {})
        self._ts = [e.ts_ms for e in self.events]

    def __iter__(self) -> Iterator[ReplayEvent]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def coins(self) -> list[str]:
        """Coins present, sorted."""
        return sorted({e.coin for e in self.events})

    @property
    def start_ms(self) -> int:
        """Time of the first event (ValueError when empty)."""
        if not self.events:
            raise ValueError(f"empty recording {self.source}")
        return self._ts[0]

    @property
    def end_ms(self) -> int:
        """Time of the last event; for candles, the close of the last candle."""
        if not self.events:
            raise ValueError(f"empty recording {self.source}")
        return max(_end_of(e) for e in self.events)

    def between(self, start_ms: int, end_ms: int) -> list[ReplayEvent]:
        """Events with ``start_ms <= ts_ms < end_ms``, in order (for a replay clock's tick)."""
        return list(self.events[bisect_left(self._ts, start_ms) : bisect_left(self._ts, end_ms)])


def merge_recordings(*recordings: Recording) -> Recording:
    """One recording holding the events of all of them, time-ordered."""
    events = [e for rec in recordings for e in rec.events]
    counts: Counter[str] = Counter()
    for rec in recordings:
        counts.update(rec.frame_counts)
    return Recording(events, source="+".join(rec.source for rec in recordings), frame_counts=counts)


# --------------------------------------------------------------------------- entry point


def load_recording(path: str | Path, *, coin: str | None = None) -> Recording:
    """Parse a websocket capture or a candle file (see the module doc); ``coin`` names candles' coin.

    The file is streamed (``hyperfollow.recordings``); only the events are kept.
    """
    path = Path(path)
    counts: Counter[str] = Counter()
    if detect(path) == "ws":
        events: list[ReplayEvent] = list(_parse_ws_lines(path, counts))
    else:
        events = [_candle_event(c) for c in iter_candles(path, coin=coin)]
    return Recording(events, source=str(path), frame_counts=counts)


def _candle_event(c: Candle) -> CandleEvent:
    text = _plain
    return CandleEvent(
        c.open_ms, c.coin, text(c.open), text(c.high), text(c.low), text(c.close), text(c.volume),
        interval_ms(c),
    )  # fmt: skip


def _plain(value: Decimal) -> str:
    return format(value, "f")


# --------------------------------------------------------------------------- websocket frames


def _parse_ws_lines(path: Path, counts: Counter[str]) -> Iterator[ReplayEvent]:
    for lineno, frame in frames(path):
        try:
            local_ms = None if frame.recv_ns is None else frame.recv_ns // 1_000_000
            data = msgspec.json.decode(frame.data) if frame.channel in ("l2Book", "trades") else None
            yield from _frame_events(frame.channel, data, local_ms)
        except (ValueError, TypeError) as exc:
            raise RecordingError(path, f"line {lineno}", str(exc)) from exc
        counts[frame.channel] += 1


def _frame_events(channel: str, data: Any, local_ms: int | None) -> list[ReplayEvent]:
    if channel == "l2Book":
        return [_book_event(_mapping(data, "l2Book data"), local_ms)]
    if channel == "trades":
        if not isinstance(data, list):
            raise ValueError("trades data must be a list")
        return [_trade_event(_mapping(t, "trade")) for t in data]
    return []


def _book_event(data: Mapping[str, Any], local_ms: int | None) -> BookEvent:
    levels = _field(data, "levels", "l2Book data")
    if not (isinstance(levels, list) and len(levels) == 2 and all(isinstance(s, list) for s in levels)):
        raise ValueError("l2Book levels must be [bids, asks]")
    ts = data.get("time", local_ms)
    if not _is_int(ts):
        raise ValueError("l2Book frame without a time")
    bids = [_level(x) for x in levels[0]]
    asks = [_level(x) for x in levels[1]]
    return BookEvent(ts, _coin(data), bids, asks)


def _level(entry: Any) -> tuple[str, str]:
    level = _mapping(entry, "book level")
    return _decimal_text(_field(level, "px", "book level")), _decimal_text(_field(level, "sz", "book level"))


def _trade_event(t: Mapping[str, Any]) -> TradeEvent:
    side = _field(t, "side", "trade")
    if side not in ("B", "A"):
        raise ValueError(f"trade side must be 'B' or 'A', got {side!r}")
    ts = _field(t, "time", "trade")
    if not _is_int(ts):
        raise ValueError(f"trade time must be an integer (ms), got {ts!r}")
    tid = t.get("tid")
    px = _decimal_text(_field(t, "px", "trade"))
    sz = _decimal_text(_field(t, "sz", "trade"))
    return TradeEvent(ts, _coin(t), px, sz, side, tid if _is_int(tid) else None)


def _coin(obj: Mapping[str, Any]) -> str:
    coin = obj.get("coin")
    if not isinstance(coin, str) or not coin:
        raise ValueError(f"missing or empty 'coin' in {_preview(obj)}")
    return coin


# --------------------------------------------------------------------------- field helpers


def _is_int(x: Any) -> TypeGuard[int]:
    return isinstance(x, int) and not isinstance(x, bool)


def _preview(obj: Any) -> str:
    text = json.dumps(obj, default=str) if not isinstance(obj, str) else repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def _mapping(obj: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(obj, dict):
        raise ValueError(f"{what} must be an object, got {_preview(obj)}")
    return obj


def _field(obj: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in obj:
        raise ValueError(f"missing {key!r} in {what} {_preview(obj)}")
    return obj[key]


# --------------------------------------------------------------------------- candle -> price path


def intra_candle_path(candle: CandleEvent, step_ms: int) -> list[tuple[int, float]]:
    """A deterministic price path through a candle: open, the nearer extreme, the other one, close.

    Time is shared between the legs in proportion to their length (constant speed); the path is
    sampled every ``step_ms`` from the open time to the close time ``ts_ms + interval_ms`` inclusive,
    and passes exactly through the high and the low. Ties (open as near the high as the low) go to
    the low first for a rising candle, to the high first otherwise.
    """
    if step_ms <= 0:
        raise ValueError(f"step_ms must be positive, got {step_ms}")
    o, h, lo, c = float(candle.o), float(candle.h), float(candle.l), float(candle.c)
    low_first = (o - lo < h - o) or (o - lo == h - o and c >= o)
    anchors = [o, lo, h, c] if low_first else [o, h, lo, c]
    legs = [abs(b - a) for a, b in pairwise(anchors)]
    total, t0, span = sum(legs), candle.ts_ms, candle.interval_ms
    if total == 0:
        return [(t, o) for t in range(t0, t0 + span + 1, step_ms)]
    anchor_ts = [t0, t0 + round(span * legs[0] / total), t0 + round(span * (legs[0] + legs[1]) / total)]
    anchor_ts.append(t0 + span)
    times = sorted(set(range(t0, t0 + span + 1, step_ms)) | set(anchor_ts))
    return [(t, _interpolate(t, anchor_ts, anchors)) for t in times]


def _interpolate(t: int, xs: list[int], ys: list[float]) -> float:
    for k in range(len(xs) - 1):
        if t <= xs[k + 1]:
            if t == xs[k + 1]:
                return ys[k + 1]
            return ys[k] + (ys[k + 1] - ys[k]) * (t - xs[k]) / (xs[k + 1] - xs[k])
    return ys[-1]
