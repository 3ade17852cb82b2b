"""Candle files in the layouts users have, as the domain's ``Candle`` (exact ``Decimal`` prices):

* a JSON list of Hyperliquid candles ``{t,T,s,i,o,h,l,c,v,n}`` (``candleSnapshot``) or of
  ``{timestamp, open, high, low, close, volume[, trades]}``, streamed item by item;
* a JSON object holding ``candles`` lists anywhere inside (read whole: such files are small);
* CSV with similar columns (``T,o,h,l,c,v``; ``time_open,time_close,open,high,low,close,volume,num_trades``),
  streamed row by row.

The coin comes from the row (``s`` / ``symbol``), else the ``coin`` argument, else the file name
(``btc-1m.csv`` -> ``BTC``); the interval from the row (``i`` / ``interval``), its open and close times,
the smallest spacing of the first 500 rows, or the file name, in that order. A row with only a close time
(``T`` = open + interval - 1, the venue's convention) gets its open time from the interval. The candle's
``close_ms`` is always ``open_ms + interval - 1``. ``trades`` is 0 where the file does not record it.
Malformed input raises ``RecordingError`` naming the file and the line (CSV) or the candle (JSON).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from itertools import chain, islice, pairwise
from pathlib import Path
from typing import Any

from hyperfollow.domain.model import Candle
from hyperfollow.recordings.source import RecordingError, csv_rows, detect, first_line, json_items, load_json

INTERVAL_MS = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "8h": 28_800_000, "12h": 43_200_000,
    "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000,
}  # fmt: skip
_INTERVAL_NAME = {ms: name for name, ms in INTERVAL_MS.items()}
_PLAIN_DECIMAL = re.compile(r"^\d+(\.\d+)?$")
_OPEN_KEYS = ("t", "time_open", "openTime", "open_time", "timestamp", "time", "ts")
_CLOSE_KEYS = ("T", "time_close", "closeTime", "close_time")
_OHLCV_KEYS = (("o", "open"), ("h", "high"), ("l", "low"), ("c", "close"), ("v", "volume"))
_TRADES_KEYS = ("n", "trades", "num_trades", "count")
_COIN_KEYS = ("s", "symbol", "coin")
_SECONDS_BELOW = 100_000_000_000  # an epoch below this is in seconds (ms would be before 1973)
_SNIFF_ROWS = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Row = tuple[str, Mapping[str, Any]]  # (where in the file, the row)


def interval_name(ms: int) -> str:
    """``60_000`` -> ``"1m"``; spacings the venue has no name for: ``"<n>m"``, ``"<n>s"`` or ``"<n>ms"``."""
    if ms in _INTERVAL_NAME:
        return _INTERVAL_NAME[ms]
    if ms % 60_000 == 0:
        return f"{ms // 60_000}m"
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def interval_ms(candle: Candle) -> int:
    """The span a candle covers (``close_ms`` is its last millisecond)."""
    return candle.close_ms + 1 - candle.open_ms


def iter_candles(path: str | Path, *, coin: str | None = None) -> Iterator[Candle]:
    """The candles of a CSV or JSON candle file, in file order (see the module doc)."""
    path = Path(path)
    kind = detect(path)
    if kind == "csv":
        rows: Iterable[Row] = ((f"line {n}", row) for n, row in csv_rows(path))
    elif kind == "json" and _first_char(path) == "[":
        items = json_items(path, "item", "candle")
        rows = ((f"candle #{n}", _object(path, f"candle #{n}", item)) for n, item in items)
    elif kind == "json":
        rows = _document_rows(path)
    else:
        raise RecordingError(path, "line 1", "websocket frames, not candles")
    return candles_from_rows(path, rows, coin)


def _first_char(path: Path) -> str:
    return first_line(path, 8)[:1]


def _object(path: Path, where: str, item: Any) -> Mapping[str, Any]:
    if not isinstance(item, dict):
        raise RecordingError(path, where, f"expected an object, got {_preview(item)}")
    return item


def _document_rows(path: Path) -> Iterator[Row]:
    lists = _find_candle_lists(load_json(path))
    if not lists:
        raise RecordingError(path, None, "no candles: expected a JSON list or objects holding 'candles'")
    for j, items in enumerate(lists, 1):
        for n, item in enumerate(items, 1):
            where = f"candle #{n}" + (f" of list #{j}" if len(lists) > 1 else "")
            yield where, _object(path, where, item)


def _find_candle_lists(obj: Any) -> list[list[Any]]:
    if isinstance(obj, dict):
        found = [v for k, v in obj.items() if k == "candles" and isinstance(v, list)]
        for k, v in obj.items():
            if k != "candles":
                found.extend(_find_candle_lists(v))
        return found
    return []


def candles_from_rows(path: str | Path, rows: Iterable[Row], coin: str | None = None) -> Iterator[Candle]:
    """Candles of ``(where, row)`` pairs; the first 500 rows are buffered to infer a missing interval."""
    path = Path(path)
    iterator = iter(rows)
    head = list(islice(iterator, _SNIFF_ROWS))
    fallback_interval = _rows_interval(head) or _filename_interval(path) or 60_000
    fallback_coin = coin or _filename_coin(path)
    for where, row in chain(head, iterator):
        try:
            yield candle_from_row(row, coin, fallback_coin, fallback_interval)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise RecordingError(path, where, str(exc)) from None


def candle_from_row(row: Mapping[str, Any], coin: str | None, fallback_coin: str, interval: int) -> Candle:
    """One row as a candle (``ValueError`` saying what is wrong)."""
    open_ms, close_ms = _first_ms(row, _OPEN_KEYS), _first_ms(row, _CLOSE_KEYS)
    interval = _row_interval(row, open_ms, close_ms) or interval
    if open_ms is None:
        if close_ms is None:
            raise ValueError(f"no open or close time in {_preview(row)}")
        open_ms = close_ms + 1 - interval
    o, h, lo, c, v = (_first_text(row, keys) for keys in _OHLCV_KEYS)
    if o is None or h is None or lo is None or c is None:
        raise ValueError(f"missing open/high/low/close in {_preview(row)}")
    do, dh, dl, dc = Decimal(o), Decimal(h), Decimal(lo), Decimal(c)
    if not (dl <= min(do, dc) and dh >= max(do, dc) and dl > 0):
        raise ValueError(f"inconsistent candle o={o} h={h} l={lo} c={c}")
    symbol = coin or _first_str(row, _COIN_KEYS) or fallback_coin
    if not symbol:
        raise ValueError("no coin: pass coin=...")
    trades = next((row[k] for k in _TRADES_KEYS if row.get(k) not in ("", None)), 0)
    return Candle(
        coin=symbol,
        interval=interval_name(interval),
        open_ms=open_ms,
        close_ms=open_ms + interval - 1,
        open=do,
        high=dh,
        low=dl,
        close=dc,
        volume=Decimal(v) if v is not None else Decimal(0),
        trades=_count(trades),
    )


def _count(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"not a trade count: {value!r}")
    number = Decimal(str(value))
    if number != number.to_integral_value() or number < 0:
        raise ValueError(f"not a trade count: {value!r}")
    return int(number)


def _row_interval(row: Mapping[str, Any], open_ms: int | None, close_ms: int | None) -> int | None:
    name = row.get("i", row.get("interval"))
    if isinstance(name, str) and name in INTERVAL_MS:
        return INTERVAL_MS[name]
    if open_ms is not None and close_ms is not None and close_ms >= open_ms:
        return close_ms + 1 - open_ms
    return None


def _rows_interval(rows: list[Row]) -> int | None:
    """Smallest positive spacing of the rows' open (else close) times, if any."""
    stamps: list[int] = []
    for _, row in rows:
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
    return INTERVAL_MS.get(match.group(1)) if match else None


def _filename_coin(path: Path) -> str:
    stem = _stem(path).removeprefix("candles_").removeprefix("candles-")
    return re.split(r"[_\-. ]", stem)[0].upper()


# --------------------------------------------------------------------------- field helpers


def _preview(obj: Any) -> str:
    text = repr(obj) if isinstance(obj, str) else _json_preview(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def _json_preview(obj: Any) -> str:
    return json.dumps(obj, default=str)


def decimal_text(value: Any) -> str:
    """A non-negative number as a plain decimal string (recorded strings kept verbatim)."""
    if isinstance(value, str) and _PLAIN_DECIMAL.match(value):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"not a number: {_preview(value)}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {_preview(value)}") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"not a non-negative finite number: {_preview(value)}")
    return format(number, "f")


def _first_text(row: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    for key in keys:
        if key in row and row[key] not in ("", None):
            return decimal_text(row[key])
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
            return to_ms(row[key])
    return None


def to_ms(value: Any) -> int:
    """Epoch ms from an int/decimal/digit string (seconds when small) or an ISO-8601 string (UTC if naive)."""
    if isinstance(value, str) and not re.fullmatch(r"\d+(\.\d+)?", value):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"not a timestamp: {value!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - _EPOCH) // timedelta(milliseconds=1)
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"not a timestamp: {_preview(value)}")
    number = Decimal(str(value))
    return int(number * 1000) if number < _SECONDS_BELOW else int(number)
