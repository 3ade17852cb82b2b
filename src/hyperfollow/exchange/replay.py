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

import csv
import gzip
import io
import json
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal, TypeGuard

_PLAIN_DECIMAL = re.compile(r"^\d+(\.\d+)?$")
_INTERVAL_MS = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "8h": 28_800_000, "12h": 43_200_000,
    "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000,
}  # fmt: skip
_OPEN_KEYS = ("t", "time_open", "openTime", "open_time", "timestamp", "time", "ts")
_CLOSE_KEYS = ("T", "time_close", "closeTime", "close_time")
_OHLCV_KEYS = (("o", "open"), ("h", "high"), ("l", "low"), ("c", "close"), ("v", "volume"))
_COIN_KEYS = ("s", "symbol", "coin")
_SECONDS_BELOW = 100_000_000_000  # an epoch below this is in seconds (ms would be before 1973)


class RecordingError(ValueError):
    """Malformed recording: the message names the file and where in it."""

    def __init__(self, path: str | Path, where: str | None, message: str) -> None:
        super().__init__(f"{path}: {where}: {message}" if where else f"{path}: {message}")
        self.path = str(path)
        self.where = where


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
    """Parse a websocket capture or a candle file (see the module doc); ``coin`` names candles' coin."""
    path = Path(path)
    text = _read_text(path)
    kind = _detect(path, text)
    counts: Counter[str] = Counter()
    if kind == "ws":
        events: list[ReplayEvent] = list(_parse_ws_lines(path, text, counts))
    elif kind == "csv":
        events = list(_parse_csv_candles(path, text, coin))
    else:
        events = list(_parse_json_candles(path, text, coin))
    return Recording(events, source=str(path), frame_counts=counts)


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise RecordingError(path, None, f"cannot read: {exc}") from exc


def _detect(path: Path, text: str) -> Literal["ws", "csv", "json"]:
    body = text.lstrip()
    first = body.split("\n", 1)[0].strip()
    if body.startswith("["):
        return "json"
    if body.startswith("{"):
        try:
            obj = json.loads(first)
        except ValueError:
            return "json"  # a multi-line JSON document
        return "ws" if isinstance(obj, dict) and "channel" in obj else "json"
    stamp, _, rest = first.partition(" ")
    if stamp.isdigit() and rest.lstrip().startswith("{"):
        return "ws"
    if "," in first and not stamp.isdigit():
        return "csv"
    raise RecordingError(
        path, "line 1", "unrecognised format: expected '<local_ns> <ws json>' lines, JSON lines, candles"
    )


# --------------------------------------------------------------------------- websocket frames


def _parse_ws_lines(path: Path, text: str, counts: Counter[str]) -> Iterator[ReplayEvent]:
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        try:
            local_ms, frame = _split_ws_line(line)
            yield from _frame_events(frame, local_ms)
            counts[str(frame["channel"])] += 1
        except (ValueError, TypeError) as exc:
            raise RecordingError(path, f"line {lineno}", str(exc)) from exc


def _split_ws_line(line: str) -> tuple[int | None, Mapping[str, Any]]:
    if line.startswith("{"):
        frame = _json_object(line)
        stamp = frame.get("received_wall_ns")
        return (stamp // 1_000_000 if _is_int(stamp) else None), frame
    stamp_text, _, rest = line.partition(" ")
    if not stamp_text.isdigit():
        raise ValueError(f"expected '<local_ns> <json>', got {line[:60]!r}")
    return int(stamp_text) // 1_000_000, _json_object(rest)


def _json_object(text: str) -> Mapping[str, Any]:
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _frame_events(frame: Mapping[str, Any], local_ms: int | None) -> list[ReplayEvent]:
    if "channel" not in frame:
        raise ValueError("not a websocket frame: no 'channel'")
    channel, data = frame["channel"], frame.get("data")
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


# --------------------------------------------------------------------------- candles


def _parse_csv_candles(path: Path, text: str, coin: str | None) -> list[CandleEvent]:
    reader = csv.DictReader(io.StringIO(text), skipinitialspace=True)
    rows: list[tuple[str, Mapping[str, Any]]] = []
    for row in reader:
        if None in row or any(v is None for v in row.values()):
            raise RecordingError(path, f"line {reader.line_num}", "wrong number of columns")
        rows.append((f"line {reader.line_num}", {k.strip(): v.strip() for k, v in row.items()}))
    return _candles_from_rows(path, rows, coin)


def _parse_json_candles(path: Path, text: str, coin: str | None) -> list[CandleEvent]:
    try:
        doc = json.loads(text, parse_float=str)
    except ValueError as exc:
        raise RecordingError(path, f"line {getattr(exc, 'lineno', '?')}", f"invalid JSON: {exc}") from None
    lists = [doc] if isinstance(doc, list) else _find_candle_lists(doc)
    if not lists:
        raise RecordingError(path, None, "no candles: expected a JSON list or objects holding 'candles'")
    rows: list[tuple[str, Mapping[str, Any]]] = []
    for j, items in enumerate(lists, 1):
        for n, item in enumerate(items, 1):
            where = f"candle #{n}" + (f" of list #{j}" if len(lists) > 1 else "")
            if not isinstance(item, dict):
                raise RecordingError(path, where, f"expected an object, got {_preview(item)}")
            rows.append((where, item))
    return _candles_from_rows(path, rows, coin)


def _find_candle_lists(obj: Any) -> list[list[Any]]:
    if isinstance(obj, dict):
        found = [v for k, v in obj.items() if k == "candles" and isinstance(v, list)]
        for k, v in obj.items():
            if k != "candles":
                found.extend(_find_candle_lists(v))
        return found
    return []


def _candles_from_rows(
    path: Path, rows: list[tuple[str, Mapping[str, Any]]], coin: str | None
) -> list[CandleEvent]:
    fallback_interval = _rows_interval(rows) or _filename_interval(path) or 60_000
    fallback_coin = coin or _filename_coin(path)
    out = []
    for where, row in rows:
        try:
            out.append(_candle(row, coin, fallback_coin, fallback_interval))
        except (ValueError, TypeError) as exc:
            raise RecordingError(path, where, str(exc)) from exc
    return out


def _candle(row: Mapping[str, Any], coin: str | None, fallback_coin: str, interval: int) -> CandleEvent:
    open_ms, close_ms = _first_ms(row, _OPEN_KEYS), _first_ms(row, _CLOSE_KEYS)
    interval = _row_interval(row, open_ms, close_ms) or interval
    if open_ms is None:
        if close_ms is None:
            raise ValueError(f"no open or close time in {_preview(row)}")
        open_ms = close_ms + 1 - interval
    o, h, lo, c, v = (_first_text(row, keys) for keys in _OHLCV_KEYS)
    if v is None:
        v = "0"
    if o is None or h is None or lo is None or c is None:
        raise ValueError(f"missing open/high/low/close in {_preview(row)}")
    fo, fh, fl, fc = float(o), float(h), float(lo), float(c)
    if not (fl <= min(fo, fc) and fh >= max(fo, fc) and fl > 0):
        raise ValueError(f"inconsistent candle o={o} h={h} l={lo} c={c}")
    symbol = coin or _first_str(row, _COIN_KEYS) or fallback_coin
    if not symbol:
        raise ValueError("no coin: pass load_recording(path, coin=...)")
    return CandleEvent(open_ms, symbol, o, h, lo, c, v, interval)


def _row_interval(row: Mapping[str, Any], open_ms: int | None, close_ms: int | None) -> int | None:
    name = row.get("i", row.get("interval"))
    if isinstance(name, str) and name in _INTERVAL_MS:
        return _INTERVAL_MS[name]
    if open_ms is not None and close_ms is not None and close_ms >= open_ms:
        return close_ms + 1 - open_ms
    return None


def _rows_interval(rows: list[tuple[str, Mapping[str, Any]]]) -> int | None:
    """Smallest positive spacing of the rows' open (else close) times, if any."""
    stamps: list[int] = []
    for _, row in rows[:500]:
        try:
            ms = _first_ms(row, _OPEN_KEYS)
            ms = ms if ms is not None else _first_ms(row, _CLOSE_KEYS)
        except (ValueError, TypeError):
            continue  # reported with its position by the main pass
        if ms is not None:
            stamps.append(ms)
    stamps.sort()
    gaps = [b - a for a, b in pairwise(stamps) if b > a]
    return min(gaps) if gaps else None


def _stem(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".gz", ".csv", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return name


def _filename_interval(path: Path) -> int | None:
    match = re.search(r"(?:^|[_\-.])(\d+[mhdw])(?:$|[_\-.])", _stem(path))
    return _INTERVAL_MS.get(match.group(1)) if match else None


def _filename_coin(path: Path) -> str:
    stem = _stem(path).removeprefix("candles_").removeprefix("candles-")
    return re.split(r"[_\-. ]", stem)[0].upper()


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


def _decimal_text(value: Any) -> str:
    """A positive-or-zero number as a plain decimal string (recorded strings kept verbatim)."""
    if isinstance(value, str) and _PLAIN_DECIMAL.match(value):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"not a number: {_preview(value)}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {_preview(value)}") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"not a non-negative finite number: {_preview(value)}")
    return format(number, "f")


def _first_text(row: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    for key in keys:
        if key in row and row[key] not in ("", None):
            return _decimal_text(row[key])
    return None


def _first_str(row: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    for key in keys:
        value = row.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _first_ms(row: Mapping[str, Any], keys: Iterable[str]) -> int | None:
    for key in keys:
        if key in row and row[key] not in ("", None):
            return _to_ms(row[key])
    return None


def _to_ms(value: Any) -> int:
    """Epoch ms from an int/float/digit string (seconds when small) or an ISO-8601 string (UTC if naive)."""
    if isinstance(value, str) and not re.fullmatch(r"\d+(\.\d+)?", value):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"not a timestamp: {value!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"not a timestamp: {_preview(value)}")
    number = float(value)
    return int(number * 1000) if number < _SECONDS_BELOW else int(number)


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
