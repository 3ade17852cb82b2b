"""Recorded market data as a stream of typed events, in bounded memory.

Formats (each streamed line by line / row by row; gzip detected by content):

* websocket captures, ``<local_ns> <raw ws json>`` lines (hftbacktest's collector) or JSON lines
  ``{received_wall_ns, channel, data}``: ``l2Book``, ``trades``, ``bbo`` and ``candle`` frames become events
  (decoded by the Hyperliquid adapter's own wire parsers); other channels (``subscriptionResponse``,
  ``pong``, ``allMids``...) are counted and skipped. A trades frame gives one event per print;
* CSV L2 snapshots ``timestamp,sequence,exchange_timestamp,bid_price_0,bid_size_0,ask_price_0,ask_size_0,...``
  (``timestamp`` is our receive time in epoch seconds, ``exchange_timestamp`` the book's venue time in ms);
* CSV trade tapes ``timestamp,price,size,side(buy|sell),trade_id,exchange_timestamp``;
* CSV best bid/ask changes ``timestamp,price,size,side(bid|ask),exchange_timestamp``: the rows of one
  ``exchange_timestamp`` are folded into one ``Bbo`` carrying both sides as last known;
* candle files (``hyperfollow.recordings.candles``).

Each event is a ``MarketEvent``: the domain value (``L2Book``, ``Trade``, ``Bbo``, ``Candle``; exact decimal
strings / ``Decimal``, venue times in ms) and our receive time in ns where the file records it. CSV files
carry no order counts per level (``Level.n`` is 0) and no trade hash (``Trade.hash`` is ""). The coin of a
CSV file comes from the ``coin`` argument, else its name (``orderbooks_BTC.csv.gz`` -> ``BTC``).
Malformed input raises ``RecordingError`` naming the file and the line.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import msgspec

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.domain.model import Bbo, Candle, L2Book, Level, Side, Trade
from hyperfollow.recordings.candles import decimal_text, iter_candles
from hyperfollow.recordings.source import RecordingError, csv_header, csv_rows, detect
from hyperfollow.recordings.ws import WsFrame, frames

MarketItem = L2Book | Trade | Bbo | Candle
_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_NS_PER_S = Decimal(1_000_000_000)
_BAD = (KeyError, ValueError, TypeError, ArithmeticError, IndexError)


@dataclass(frozen=True, slots=True)
class MarketEvent:
    """One recorded market message: the venue's value and when we received it (epoch ns, None: not
    recorded)."""

    item: MarketItem
    recv_ns: int | None = None

    @property
    def venue_ms(self) -> int:
        """When the venue knew it: a book's, print's or BBO's time; a candle's close (the end of its last
        millisecond: a candle is known only once complete)."""
        item = self.item
        return item.close_ms + 1 if isinstance(item, Candle) else item.time_ms


# --------------------------------------------------------------------------- entry point


def market_events(
    path: str | Path, *, coin: str | None = None, counts: Counter[str] | None = None
) -> Iterator[MarketEvent]:
    """Events of any supported file (detected from its first line and CSV header), in file order."""
    path = Path(path)
    kind = detect(path)
    if kind == "ws":
        return ws_capture(path, counts=counts)
    if kind == "csv":
        header = set(csv_header(path))
        if {"bid_price_0", "ask_price_0", "exchange_timestamp"} <= header:
            return l2_csv(path, coin=coin)
        if {"price", "size", "side", "trade_id", "exchange_timestamp"} <= header:
            return trades_csv(path, coin=coin)
        if {"price", "size", "side", "exchange_timestamp"} <= header:
            return bbo_csv(path, coin=coin)
    return candles(path, coin=coin)


def candles(path: str | Path, *, coin: str | None = None) -> Iterator[MarketEvent]:
    """A candle file's candles as events (no receive time)."""
    return (MarketEvent(c) for c in iter_candles(path, coin=coin))


# --------------------------------------------------------------------------- websocket captures


def ws_capture(path: str | Path, *, counts: Counter[str] | None = None) -> Iterator[MarketEvent]:
    """Events of a websocket capture; ``counts`` (if given) receives the frames read per channel."""
    path = Path(path)
    for lineno, frame in frames(path):
        decoder = _CHANNELS.get(frame.channel)
        if counts is not None:
            counts[frame.channel] += 1
        if decoder is None:
            continue
        try:
            items = decoder(frame)
        except _BAD as exc:
            raise RecordingError(path, f"line {lineno}", f"{frame.channel}: {_reason(exc)}") from None
        for item in items:
            yield MarketEvent(item, frame.recv_ns)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    if isinstance(exc, ArithmeticError):
        return "not a number"
    return str(exc) or type(exc).__name__


def _book(frame: WsFrame) -> list[MarketItem]:
    try:
        book = parse.l2_book_from_raw(frame.data)
    except msgspec.ValidationError as exc:
        if "missing required field `time`" not in str(exc) or frame.recv_ns is None:
            raise ValueError(str(exc)) from None
        # a book without the venue's time (some collectors drop it): our receive time stands in
        data = parse.raw_json(frame.data)
        book = parse.l2_book({**data, "time": frame.recv_ns // 1_000_000})
    for level in (*book.bids, *book.asks):
        _check_level(level)
    _check_sides(book)
    return [book]


def _trades(frame: WsFrame) -> list[MarketItem]:
    data = parse.raw_json(frame.data)
    if not isinstance(data, list):
        raise ValueError("trades data must be a list")
    out: list[MarketItem] = []
    for raw in data:
        if not isinstance(raw, Mapping):
            raise ValueError(f"a trade must be an object, got {str(raw)[:40]!r}")
        t = parse.trade(raw)
        _check_amounts(t.price, t.size, "trade")
        out.append(t)
    return out


def _bbo(frame: WsFrame) -> list[MarketItem]:
    item = parse.bbo(parse.raw_json(frame.data))
    for level in (item.bid, item.ask):
        if level is not None:
            _check_level(level)
    return [item]


def _candle(frame: WsFrame) -> list[MarketItem]:
    c = parse.candle(parse.raw_json(frame.data))
    if not (0 < c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close)):
        raise ValueError(f"inconsistent candle o={c.open} h={c.high} l={c.low} c={c.close}")
    return [c]


_CHANNELS: dict[str, Callable[[WsFrame], list[MarketItem]]] = {
    "l2Book": _book,
    "trades": _trades,
    "bbo": _bbo,
    "candle": _candle,
}


def _check_level(level: Level) -> None:
    if not (_NUMBER.match(level.px) and _NUMBER.match(level.sz)):
        raise ValueError(f"book level px/sz must be plain decimals, got {level.px!r}/{level.sz!r}")


def _check_sides(book: L2Book) -> None:
    bids, asks = [lv.price for lv in book.bids], [lv.price for lv in book.asks]
    if any(a <= b for a, b in itertools.pairwise(bids)):
        raise ValueError("bids must be best (highest) first")
    if any(b <= a for a, b in itertools.pairwise(asks)):
        raise ValueError("asks must be best (lowest) first")


def _check_amounts(price: Decimal, size: Decimal, what: str) -> None:
    if not (price.is_finite() and size.is_finite() and price > 0 and size > 0):
        raise ValueError(f"{what} price and size must be positive, got {price}/{size}")


# --------------------------------------------------------------------------- CSV files


def _csv_coin(path: Path, coin: str | None, prefixes: tuple[str, ...]) -> str:
    if coin:
        return coin
    stem = path.name
    for suffix in (".gz", ".csv"):
        stem = stem.removesuffix(suffix)
    for prefix in prefixes:
        if stem.lower().startswith(prefix):
            return stem[len(prefix) :]
    raise RecordingError(path, None, f"no coin: name the file {prefixes[0]}<COIN>.csv or pass coin=...")


def _csv_level(px: str, sz: str) -> Level:
    """A level from CSV cells; numbers a CSV writer spelt with an exponent (``1e-05``) made plain."""
    return Level(decimal_text(px), decimal_text(sz), 0)


def _recv_ns(text: str) -> int:
    """Epoch seconds as recorded (``1756904112.5465927``) -> exact integer ns."""
    try:
        seconds = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"timestamp is not a number: {text!r}") from None
    if not seconds.is_finite() or seconds <= 0:
        raise ValueError(f"timestamp is not a positive number: {text!r}")
    return int(seconds * _NS_PER_S)


def _venue_ms(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"exchange_timestamp must be integer ms, got {text!r}")
    return int(text)


def _rows(path: Path, convert: Callable[[dict[str, str]], MarketEvent | None]) -> Iterator[MarketEvent]:
    for lineno, row in csv_rows(path):
        try:
            event = convert(row)
        except _BAD as exc:
            raise RecordingError(path, f"line {lineno}", _reason(exc)) from None
        if event is not None:
            yield event


def l2_csv(path: str | Path, *, coin: str | None = None) -> Iterator[MarketEvent]:
    """L2 snapshots of a CSV book file (levels best first; an empty cell ends that side)."""
    path = Path(path)
    name = _csv_coin(path, coin, ("orderbooks_", "orderbook_", "book_", "l2_"))
    header = csv_header(path)
    depth = sum(1 for col in header if col.startswith("bid_price_"))

    def side(row: dict[str, str], kind: str) -> tuple[Level, ...]:
        levels = []
        for i in range(depth):
            px, sz = row.get(f"{kind}_price_{i}", ""), row.get(f"{kind}_size_{i}", "")
            if not px and not sz:
                break
            levels.append(_csv_level(px, sz))
        return tuple(levels)

    def convert(row: dict[str, str]) -> MarketEvent:
        book = L2Book(name, _venue_ms(row["exchange_timestamp"]), side(row, "bid"), side(row, "ask"))
        _check_sides(book)
        return MarketEvent(book, _recv_ns(row["timestamp"]))

    return _rows(path, convert)


_TAPE_SIDES = {"buy": Side.BUY, "sell": Side.SELL, "b": Side.BUY, "a": Side.SELL}


def trades_csv(path: str | Path, *, coin: str | None = None) -> Iterator[MarketEvent]:
    """Prints of a CSV trade tape (``side`` is the aggressor's)."""
    path = Path(path)
    name = _csv_coin(path, coin, ("trades_", "trade_", "tape_"))

    def convert(row: dict[str, str]) -> MarketEvent:
        side = _TAPE_SIDES.get(row["side"].lower())
        if side is None:
            raise ValueError(f"side must be buy or sell, got {row['side']!r}")
        if not row["trade_id"].isdigit():
            raise ValueError(f"trade_id must be an integer, got {row['trade_id']!r}")
        price, size = Decimal(row["price"]), Decimal(row["size"])
        _check_amounts(price, size, "trade")
        trade = Trade(name, side, price, size, _venue_ms(row["exchange_timestamp"]), int(row["trade_id"]), "")
        return MarketEvent(trade, _recv_ns(row["timestamp"]))

    return _rows(path, convert)


def bbo_csv(path: str | Path, *, coin: str | None = None) -> Iterator[MarketEvent]:
    """Best bid/ask of a CSV of BBO changes: one ``Bbo`` per venue time, both sides as last known."""
    path = Path(path)
    name = _csv_coin(path, coin, ("prices_", "bbo_", "price_"))
    state: dict[str, Any] = {"bid": None, "ask": None, "ms": None, "recv": None}

    def flush() -> MarketEvent | None:
        if state["ms"] is None:
            return None
        return MarketEvent(Bbo(name, state["ms"], state["bid"], state["ask"]), state["recv"])

    def convert(row: dict[str, str]) -> MarketEvent | None:
        kind = row["side"].lower()
        if kind not in ("bid", "ask"):
            raise ValueError(f"side must be bid or ask, got {row['side']!r}")
        level = _csv_level(row["price"], row["size"])
        ms = _venue_ms(row["exchange_timestamp"])
        done = flush() if state["ms"] is not None and ms != state["ms"] else None
        state[kind], state["ms"], state["recv"] = level, ms, _recv_ns(row["timestamp"])
        return done

    def stream() -> Iterator[MarketEvent]:
        yield from _rows(path, convert)
        last = flush()
        if last is not None:
            yield last

    return stream()
