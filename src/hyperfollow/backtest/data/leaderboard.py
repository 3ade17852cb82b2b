"""Leaderboard snapshots: the venue's stats leaderboard JSON and leaderboard time series.

* the stats leaderboard (``stats-data.../Mainnet/leaderboard``): ``{"leaderboardRows": [{ethAddress,
  accountValue, windowPerformances: [["day", {pnl, roi, vlm}], ...], prize, displayName}, ...]}``, streamed
  row by row (the full board holds tens of thousands);
* a whale-tracker snapshot ``{lastUpdated, dashboard: {totalOI, volume24h, activeMarkets, totalTraders},
  whaleTracker: {daily: [...], weekly: [...]}}`` (traders with their open positions);
* its CSV time series: ``traders.csv`` (``snapshot_utc,list,rank,address,displayName,accountValue,pnl,roi,
  volume,n_positions``), ``positions.csv`` (``snapshot_utc,address,coin,direction,size,entryPx,leverage,
  positionValue,unrealizedPnl,liquidationPx``) and ``snapshots.csv`` (``snapshot_utc,commit,totalOI,
  volume24h,activeMarkets,totalTraders``), streamed row by row.

Money is ``Decimal`` (exact as recorded), times epoch ms UTC. Malformed input raises ``RecordingError``
naming the file and the row (JSON) or line (CSV).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from hyperfollow.recordings.candles import to_ms
from hyperfollow.recordings.source import RecordingError, csv_rows, json_items, load_json

_BAD = (KeyError, ValueError, TypeError, ArithmeticError, IndexError, AttributeError)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WindowPerformance:
    window: str  # "day", "week", "month", "allTime"
    pnl: Decimal
    roi: Decimal  # a fraction: 0.05 is +5 %
    volume: Decimal


@dataclass(frozen=True, slots=True)
class LeaderboardRow:
    """One row of the stats leaderboard."""

    address: str  # lower case
    account_value: Decimal
    windows: tuple[WindowPerformance, ...]
    display_name: str | None = None
    prize: Decimal = Decimal(0)

    def window(self, name: str) -> WindowPerformance | None:
        return next((w for w in self.windows if w.window == name), None)


@dataclass(frozen=True, slots=True)
class LeaderboardEntry:
    """A trader's place on a ranked list of one snapshot (the list's window: ``daily`` or ``weekly``)."""

    snapshot_ms: int
    list: str
    rank: int  # 1 = first
    address: str
    account_value: Decimal
    pnl: Decimal
    roi: Decimal
    volume: Decimal
    n_positions: int
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class PositionEntry:
    """An open position of a listed trader at a snapshot (``size`` positive; ``direction`` says the side)."""

    snapshot_ms: int
    address: str
    coin: str
    direction: str  # "Long" | "Short"
    size: Decimal
    entry_px: Decimal
    leverage: Decimal
    position_value: Decimal
    unrealized_pnl: Decimal
    liquidation_px: Decimal | None

    @property
    def signed_size(self) -> Decimal:
        return -self.size if self.direction == "Short" else self.size


@dataclass(frozen=True, slots=True)
class MarketTotals:
    snapshot_ms: int
    total_oi: Decimal
    volume_24h: Decimal
    active_markets: int
    total_traders: int
    commit: str = ""


@dataclass(frozen=True, slots=True)
class WhaleSnapshot:
    totals: MarketTotals
    entries: tuple[LeaderboardEntry, ...]
    positions: tuple[PositionEntry, ...]


def _dec(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a number: {value!r}")
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number


def _opt_dec(value: Any) -> Decimal | None:
    return None if value in (None, "") else _dec(value)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    if isinstance(exc, ArithmeticError):
        return "not a number"
    return str(exc) or type(exc).__name__


def _address(value: Any) -> str:
    text = str(value).strip().lower()
    if not (len(text) == 42 and text.startswith("0x")):
        raise ValueError(f"not a 0x address: {value!r:.50}")
    return text


# --------------------------------------------------------------------------- stats leaderboard


def stats_leaderboard(path: str | Path) -> Iterator[LeaderboardRow]:
    """Rows of the stats leaderboard JSON, in the file's order."""
    path = Path(path)
    for n, raw in json_items(path, "leaderboardRows.item", "row"):
        try:
            yield _stats_row(raw)
        except _BAD as exc:
            raise RecordingError(path, f"row #{n}", _reason(exc)) from None


def _stats_row(raw: Mapping[str, Any]) -> LeaderboardRow:
    windows = tuple(
        WindowPerformance(str(name), _dec(perf["pnl"]), _dec(perf["roi"]), _dec(perf["vlm"]))
        for name, perf in raw["windowPerformances"]
    )
    name = raw.get("displayName")
    return LeaderboardRow(
        address=_address(raw["ethAddress"]),
        account_value=_dec(raw["accountValue"]),
        windows=windows,
        display_name=name if isinstance(name, str) and name else None,
        prize=_dec(raw.get("prize") or 0),
    )


# --------------------------------------------------------------------------- whale-tracker snapshot


def whale_snapshot(path: str | Path) -> WhaleSnapshot:
    """One whale-tracker JSON snapshot: market totals, the daily and weekly lists, their positions."""
    path = Path(path)
    doc = load_json(path)
    try:
        ms = to_ms(doc["lastUpdated"])
        totals = _totals(ms, doc["dashboard"], "")
        tracker = doc["whaleTracker"]
    except _BAD as exc:
        raise RecordingError(path, None, _reason(exc)) from None
    entries: list[LeaderboardEntry] = []
    positions: list[PositionEntry] = []
    seen: set[str] = set()  # a trader on both lists has one set of positions
    for name in ("daily", "weekly"):
        for rank, raw in enumerate(tracker.get(name) or [], 1):
            try:
                entry = _entry(ms, name, rank, raw, len(raw.get("positions") or []))
                entries.append(entry)
                if entry.address not in seen:
                    seen.add(entry.address)
                    positions.extend(_position(ms, entry.address, p) for p in raw.get("positions") or [])
            except _BAD as exc:
                raise RecordingError(path, f"whaleTracker.{name} #{rank}", _reason(exc)) from None
    return WhaleSnapshot(totals, tuple(entries), tuple(positions))


def _totals(ms: int, raw: Mapping[str, Any], commit: str) -> MarketTotals:
    return MarketTotals(
        snapshot_ms=ms,
        total_oi=_dec(raw["totalOI"]),
        volume_24h=_dec(raw["volume24h"]),
        active_markets=int(raw["activeMarkets"]),
        total_traders=int(raw["totalTraders"]),
        commit=commit,
    )


def _entry(ms: int, name: str, rank: int, raw: Mapping[str, Any], n_positions: int) -> LeaderboardEntry:
    display = raw.get("displayName")
    return LeaderboardEntry(
        snapshot_ms=ms,
        list=name,
        rank=rank,
        address=_address(raw["address"]),
        account_value=_dec(raw["accountValue"]),
        pnl=_dec(raw["pnl"]),
        roi=_dec(raw["roi"]),
        volume=_dec(raw["volume"]),
        n_positions=n_positions,
        display_name=display if isinstance(display, str) and display else None,
    )


def _position(ms: int, address: Any, raw: Mapping[str, Any]) -> PositionEntry:
    direction = str(raw["direction"])
    if direction not in ("Long", "Short"):
        raise ValueError(f"direction must be Long or Short, got {direction!r}")
    return PositionEntry(
        snapshot_ms=ms,
        address=_address(address),
        coin=str(raw["coin"]),
        direction=direction,
        size=abs(_dec(raw["size"])),
        entry_px=_dec(raw["entryPx"]),
        leverage=_dec(raw["leverage"]),
        position_value=_dec(raw["positionValue"]),
        unrealized_pnl=_dec(raw["unrealizedPnl"]),
        liquidation_px=_opt_dec(raw.get("liquidationPx")),
    )


# --------------------------------------------------------------------------- CSV time series


def _csv(path: str | Path, convert: Callable[[dict[str, str]], T]) -> Iterator[T]:
    path = Path(path)
    for lineno, row in csv_rows(path):
        try:
            yield convert(row)
        except _BAD as exc:
            raise RecordingError(path, f"line {lineno}", _reason(exc)) from None


def leaderboard_csv(path: str | Path) -> Iterator[LeaderboardEntry]:
    """``traders.csv`` rows."""

    def convert(row: dict[str, str]) -> LeaderboardEntry:
        return _entry(to_ms(row["snapshot_utc"]), row["list"], int(row["rank"]), row, int(row["n_positions"]))

    return _csv(path, convert)


def positions_csv(path: str | Path) -> Iterator[PositionEntry]:
    """``positions.csv`` rows."""
    return _csv(path, lambda row: _position(to_ms(row["snapshot_utc"]), row["address"], row))


def market_totals_csv(path: str | Path) -> Iterator[MarketTotals]:
    """``snapshots.csv`` rows."""
    return _csv(path, lambda row: _totals(to_ms(row["snapshot_utc"]), row, row.get("commit", "")))
