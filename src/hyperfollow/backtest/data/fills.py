"""Leader fill histories as the domain's ``Fill``, oldest first and in position order.

Formats:

* a ``userFillsByTime`` (or ``userFills``) answer saved as a JSON array of the venue's fill objects
  (``hyperfollow download fills`` writes this), streamed item by item;
* the copier-audit envelope ``{endpoint, retrieved_at_ms, queries: [{slot | slots, start_ms, end_ms,
  response_count, truncated_at_2000, fills: [...]}, ...]}``: one ``AuditQuery`` per slot;
* CSV holding the venue's fill fields (``coin,px,sz,side,time|time_ms,startPosition,dir,closedPnl,hash,oid,
  crossed,fee,tid,...``), as wallet backups and collectors write them (``time`` in ms, or a date-time, UTC
  unless it carries an offset);
* the venue UI's trade-history CSV export ``time,coin,dir,px,sz,ntl,fee,closedPnl`` (optionally with a
  ``time_ms_utc`` column), see ``trade_history_csv`` for what is reconstructed.

The wire objects are parsed by the Hyperliquid adapter's ``parse.fill`` and ordered by
``parse.in_position_order`` (the venue's trade ids are not in position order within a millisecond). Files
that carry no address (the audit envelope, the UI export) get a deterministic stand-in,
``placeholder_address(label)``, unless one is passed. Malformed input raises ``RecordingError`` naming the
file and the fill (JSON) or line (CSV).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.domain.model import Fill, Side
from hyperfollow.recordings.candles import to_ms
from hyperfollow.recordings.source import (
    RecordingError,
    csv_header,
    csv_rows,
    detect,
    first_line,
    json_items,
)

_BAD = (KeyError, ValueError, TypeError, ArithmeticError, IndexError, AttributeError)
_USDC_QUANTUM = Decimal("0.000001")
_TAKER_ABOVE = Decimal("0.00015")  # the venue's base maker rate: a fill charged more crossed the book
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UI_TIME = "%m/%d/%Y - %H:%M:%S"
_BUYS = {"Open Long", "Close Short", "Short > Long", "Buy"}
_SELLS = {"Open Short", "Close Long", "Long > Short", "Sell"}


@dataclass(frozen=True, slots=True)
class FillHistory:
    """One wallet's fills from one file, in position order, and what the loader had to infer."""

    fills: tuple[Fill, ...]
    source: str  # "userFills", "audit:<slot>", "fills-csv", "trade-history-csv"
    inferred: tuple[str, ...] = ()  # fields reconstructed rather than recorded (trade-history CSV)
    restarts: int = 0  # trade-history CSV: times the position chain had to restart (see there)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """One slot's query in the copier-audit envelope."""

    slot: str
    start_ms: int
    end_ms: int
    response_count: int
    truncated: bool
    fills: tuple[Fill, ...]


def placeholder_address(label: str) -> str:
    """A stable stand-in 0x address for a wallet a file does not name (not anyone's real address)."""
    return "0x" + hashlib.blake2b(label.encode(), digest_size=20).hexdigest()


# --------------------------------------------------------------------------- entry point


def load_fills(path: str | Path, *, address: str | None = None, slot: str | None = None) -> FillHistory:
    """A fill history of any supported file (detected from its start, and the CSV header)."""
    path = Path(path)
    kind = detect(path)
    if kind == "json" and first_line(path, 8).startswith("["):
        who = address or placeholder_address(f"file:{path.name}")
        return FillHistory(tuple(user_fills_json(path, who)), "userFills")
    if kind == "json":
        queries = audit_queries(path, address=address)
        names = [q.slot for q in queries]
        if slot is None and len(queries) == 1:
            slot = names[0]
        if slot is None:
            raise RecordingError(path, None, f"several slots {names}: choose one (slot=...)")
        picked = next((q for q in queries if q.slot == slot), None)
        if picked is None:
            raise RecordingError(path, None, f"no slot {slot!r} (slots: {names})")
        return FillHistory(picked.fills, f"audit:{slot}")
    if kind == "csv":
        header = set(csv_header(path))
        who = address or placeholder_address(f"file:{path.name}")
        if {"oid", "side", "startPosition"} <= header:
            return FillHistory(tuple(fills_csv(path, who)), "fills-csv")
        if {"time", "coin", "dir", "px", "sz", "fee", "closedPnl"} <= header:
            return trade_history_csv(path, who)
    raise RecordingError(path, None, "not a fill history: expected userFills JSON, the audit envelope or CSV")


# --------------------------------------------------------------------------- JSON


def _fill(address: str, raw: Any) -> Fill:
    if not isinstance(raw, Mapping):
        raise ValueError(f"a fill must be an object, got {str(raw)[:40]!r}")
    fill = parse.fill(address, raw)
    if not (fill.price.is_finite() and fill.size.is_finite() and fill.price > 0 and fill.size > 0):
        raise ValueError(f"fill price and size must be positive, got {fill.price}/{fill.size}")
    if not isinstance(raw["time"], int) or isinstance(raw["time"], bool):
        raise ValueError(f"fill time must be integer ms, got {raw['time']!r}")
    return fill


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    if isinstance(exc, ArithmeticError):
        return "not a number"
    return str(exc) or type(exc).__name__


def _parse_all(path: Path, address: str, items: Iterable[tuple[int, Any]], what: str) -> list[Fill]:
    out = []
    for n, raw in items:
        try:
            out.append(_fill(address, raw))
        except _BAD as exc:
            raise RecordingError(path, f"{what} #{n}", _reason(exc)) from None
    return parse.in_position_order(out)


def user_fills_json(path: str | Path, address: str) -> list[Fill]:
    """A JSON array of the venue's fill objects (a ``userFillsByTime`` answer, or pages of them)."""
    path = Path(path)
    return _parse_all(path, address, json_items(path, "item", "fill"), "fill")


def audit_queries(path: str | Path, *, address: str | None = None) -> list[AuditQuery]:
    """Every query of the copier-audit envelope (``address``: one for all, else a stand-in per slot)."""
    path = Path(path)
    out = []
    for n, query in json_items(path, "queries.item", "query"):
        where = f"query #{n}"
        try:
            slot = str(query["slot"]) if "slot" in query else "+".join(map(str, query["slots"]))
            raws = query["fills"]
            if not isinstance(raws, list):
                raise ValueError("'fills' must be a list")
            count = int(query.get("response_count", len(raws)))
        except _BAD as exc:
            raise RecordingError(path, where, _reason(exc)) from None
        if count != len(raws):
            raise RecordingError(path, where, f"response_count {count} but {len(raws)} fills")
        who = address or placeholder_address(f"audit:{path.name}:{slot}")
        fills = _parse_all(path, who, ((i, r) for i, r in enumerate(raws, 1)), f"{where} ({slot}) fill")
        out.append(
            AuditQuery(
                slot=slot,
                start_ms=int(query.get("start_ms", 0)),
                end_ms=int(query.get("end_ms", 0)),
                response_count=count,
                truncated=bool(query.get("truncated_at_2000", False)),
                fills=tuple(fills),
            )
        )
    if not out:
        raise RecordingError(path, None, "no 'queries': not the audit envelope")
    return out


def audit_fills(path: str | Path, slot: str, *, address: str | None = None) -> list[Fill]:
    """One slot's fills of the audit envelope."""
    return list(load_fills(path, address=address, slot=slot).fills)


# --------------------------------------------------------------------------- CSV of the venue's fields


def fills_csv(path: str | Path, address: str) -> list[Fill]:
    """CSV rows holding the venue's fill fields (see the module doc)."""
    path = Path(path)
    out = []
    for lineno, row in csv_rows(path):
        try:
            out.append(_fill(address, _wire_row(row)))
        except _BAD as exc:
            raise RecordingError(path, f"line {lineno}", _reason(exc)) from None
    return parse.in_position_order(out)


def _wire_row(row: Mapping[str, str]) -> dict[str, Any]:
    """A CSV row back into the venue's JSON shape (types restored, empty cells dropped)."""
    raw: dict[str, Any] = {k: v for k, v in row.items() if v != ""}
    stamp = row.get("time_ms") or row["time"]
    raw["time"] = int(stamp) if stamp.isdigit() else to_ms(stamp.replace(" ", "T", 1))
    raw["oid"] = int(row["oid"])
    raw["tid"] = int(row["tid"]) if row.get("tid") else None
    raw["crossed"] = row.get("crossed", "").lower() == "true"
    liquidation = row.get("liquidation", "")
    if liquidation and liquidation.lower() not in ("false", "none", "null"):
        raw["liquidation"] = json.loads(liquidation) if liquidation.startswith("{") else {}
    else:
        raw.pop("liquidation", None)
    return raw


# --------------------------------------------------------------------------- the UI's trade-history export


def trade_history_csv(path: str | Path, address: str, *, tz: tzinfo = UTC) -> FillHistory:
    """The venue UI's trade-history export: ``time,coin,dir,px,sz,ntl,fee,closedPnl`` per fill.

    Recorded: time (to the second), coin, direction, price, size, fee, closed PnL. Inferred (and named in
    ``FillHistory.inferred``):

    * ``time_ms``: ``time_ms_utc`` when the file has it, else ``time`` (``11/12/2025 - 16:54:01``) read in
      ``tz``: the export writes the browser's local time, so pass the zone it was made in;
    * ``side`` from the direction (Open Long, Close Short, Short > Long buy; the others sell); a
      ``(Price Improved)`` suffix is dropped from ``direction``;
    * ``start_position`` per coin, by chaining the sizes in file order (oldest first; a newest-first
      export is reversed): the history starts at the position nearest to flat that every direction allows
      (a first ``Close Long 5`` means at least 5 long). Where a direction contradicts the running position
      (a fill missing from the export, or two fills of one second listed the other way round) the chain
      restarts at the allowed position nearest to where it stood; ``restarts`` counts those;
    * ``oid`` and ``hash``: one synthetic order per run of consecutive rows with the same second, coin and
      side (a sweep); ``tid``: synthetic per row. Both are 48-bit numbers hashed from the row, stable
      across runs, and not the venue's;
    * ``crossed``: the fee rate (fee / price x size) above the venue's base maker rate, 0.015 %;
    * ``fee`` and ``closed_pnl``: the export's floats (``-2.0589239999999998``) rounded to USDC's 6 places.
    """
    path = Path(path)
    rows = [_ui_row(path, lineno, row, tz) for lineno, row in csv_rows(path)]
    if len(rows) > 1 and rows[0].time_ms > rows[-1].time_ms:
        rows.reverse()
    starts, restarts = _start_positions(rows)
    fills = [
        _ui_fill(address, row, start, ids) for row, start, ids in zip(rows, starts, _ids(rows), strict=True)
    ]
    inferred: tuple[str, ...] = ("side", "start_position", "oid", "tid", "hash", "crossed")
    if "time_ms_utc" not in csv_header(path):
        inferred = ("time_ms", *inferred)
    return FillHistory(tuple(parse.in_position_order(fills)), "trade-history-csv", inferred, restarts)


@dataclass(frozen=True, slots=True)
class _UiRow:
    time_ms: int
    coin: str
    direction: str
    side: Side
    px: Decimal
    sz: Decimal
    fee: Decimal
    closed_pnl: Decimal
    px_text: str
    sz_text: str


def _usdc(text: str) -> Decimal:
    value = Decimal(text)
    if not value.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    exponent = value.as_tuple().exponent
    return value.quantize(_USDC_QUANTUM) if isinstance(exponent, int) and exponent < -6 else value


def _ui_row(path: Path, lineno: int, row: Mapping[str, str], tz: tzinfo) -> _UiRow:
    try:
        if row.get("time_ms_utc"):
            time_ms = int(row["time_ms_utc"])
        else:
            local = datetime.strptime(row["time"], _UI_TIME).replace(tzinfo=tz)
            time_ms = (local - _EPOCH) // timedelta(milliseconds=1)
        direction = row["dir"].removesuffix(" (Price Improved)").strip()
        if direction in _BUYS:
            side = Side.BUY
        elif direction in _SELLS:
            side = Side.SELL
        else:
            raise ValueError(f"unknown direction {row['dir']!r}")
        px, sz = Decimal(row["px"]), Decimal(row["sz"])
        if not (px.is_finite() and sz.is_finite() and px > 0 and sz > 0):
            raise ValueError(f"px and sz must be positive, got {row['px']!r}/{row['sz']!r}")
        coin = row["coin"]
        if not coin:
            raise ValueError("empty coin")
        return _UiRow(
            time_ms,
            coin,
            direction,
            side,
            px,
            sz,
            _usdc(row["fee"]),
            _usdc(row["closedPnl"]),
            row["px"],
            row["sz"],
        )
    except _BAD as exc:
        raise RecordingError(path, f"line {lineno}", _reason(exc)) from None


def _quantum(size: Decimal) -> Decimal:
    exponent = size.as_tuple().exponent
    return Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0)


def _allowed(row: _UiRow, before: Decimal) -> tuple[Decimal | None, Decimal | None]:
    """Bounds on the history's starting position ``p0`` for this fill to start at ``p0 + before`` as its
    direction says (None: unbounded). Flips need a strictly non-zero side: one size quantum is kept."""
    size, q, d = row.sz, _quantum(row.sz), row.direction
    if d == "Open Long":
        return -before, None
    if d == "Open Short":
        return None, -before
    if d == "Close Long":
        return size - before, None
    if d == "Close Short":
        return None, -size - before
    if d == "Long > Short":
        return q - before, size - q - before
    if d == "Short > Long":
        return -size + q - before, -q - before
    return None, None  # spot Buy / Sell: no position


def _nearest(target: Decimal, lo: Decimal | None, hi: Decimal | None) -> Decimal:
    if lo is not None and target < lo:
        return lo
    if hi is not None and target > hi:
        return hi
    return target


def _start_positions(rows: list[_UiRow]) -> tuple[list[Decimal], int]:
    """Each row's start position (see ``trade_history_csv``) and the number of chain restarts."""
    by_coin: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_coin.setdefault(row.coin, []).append(i)
    starts = [Decimal(0)] * len(rows)
    restarts = 0
    for indices in by_coin.values():
        offsets, n = _segments([rows[i] for i in indices])
        restarts += n
        for i, start in zip(indices, offsets, strict=True):
            starts[i] = start
    return starts, restarts


def _segments(rows: list[_UiRow]) -> tuple[list[Decimal], int]:
    cumulative: list[Decimal] = []
    total = Decimal(0)
    for row in rows:
        cumulative.append(total)
        total += row.sz if row.side is Side.BUY else -row.sz
    out: list[Decimal] = []
    p0 = Decimal(0)  # the first segment aims at flat: start_position = p0 + cumulative
    seg_start, lo, hi, restarts = 0, None, None, 0
    for i, row in enumerate(rows):
        new_lo, new_hi = _allowed(row, cumulative[i])
        lo2 = new_lo if lo is None else (lo if new_lo is None else max(lo, new_lo))
        hi2 = new_hi if hi is None else (hi if new_hi is None else min(hi, new_hi))
        if lo2 is not None and hi2 is not None and lo2 > hi2:  # contradiction: close the segment
            p0 = _nearest(p0, lo, hi)
            out.extend(p0 + c for c in cumulative[seg_start:i])
            seg_start, restarts = i, restarts + 1
            lo2, hi2 = new_lo, new_hi
        lo, hi = lo2, hi2
    p0 = _nearest(p0, lo, hi)
    out.extend(p0 + c for c in cumulative[seg_start:])
    return out, restarts


def _id48(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=6).digest(), "big")


def _ids(rows: list[_UiRow]) -> Iterator[tuple[int, int, str]]:
    """``(oid, tid, hash)`` per row: one order per run of rows with the same second, coin and side."""
    seen: Counter[str] = Counter()
    runs: Counter[str] = Counter()
    previous: tuple[int, str, Side] | None = None
    order_key = ""
    for row in rows:
        key = (row.time_ms, row.coin, row.side)
        if key != previous:
            base = f"{row.time_ms}|{row.coin}|{row.side.value}"
            runs[base] += 1
            order_key = f"order|{base}|{runs[base]}"
            previous = key
        fill_key = f"fill|{row.time_ms}|{row.coin}|{row.direction}|{row.px_text}|{row.sz_text}"
        seen[fill_key] += 1
        tx = "0x" + hashlib.blake2b(order_key.encode(), digest_size=32).hexdigest()
        yield _id48(order_key), _id48(f"{fill_key}|{seen[fill_key]}"), tx


def _ui_fill(address: str, row: _UiRow, start: Decimal, ids: tuple[int, int, str]) -> Fill:
    oid, tid, tx = ids
    notional = row.px * row.sz
    return Fill(
        address=address.lower(),
        coin=row.coin,
        side=row.side,
        price=row.px,
        size=row.sz,
        time_ms=row.time_ms,
        start_position=start,
        direction=row.direction,
        closed_pnl=row.closed_pnl,
        fee=row.fee,
        oid=oid,
        tid=tid,
        hash=tx,
        crossed=notional > 0 and row.fee / notional > _TAKER_ABOVE,
    )
