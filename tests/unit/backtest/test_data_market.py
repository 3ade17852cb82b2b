"""Market-data loaders: every recorded format parses to the values read by hand from the files."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from hyperfollow.backtest.data.market import MarketEvent, candles, market_events, ws_capture
from hyperfollow.domain.model import Bbo, Candle, L2Book, Level, Side, Trade
from hyperfollow.recordings import RecordingError
from shared_data import shared, shared_data, vendored

HFT = "real/ws_hftbacktest_20250126/btcusd_20250126.gz"
LIVE = "real/copytrader_audit_202607/live_books_5m.jsonl.gz"


def _items(events: list[MarketEvent], kind: type) -> list:  # type: ignore[type-arg]
    return [e.item for e in events if isinstance(e.item, kind)]


# --------------------------------------------------------------------------- websocket captures


def test_hftbacktest_capture_values_as_recorded() -> None:
    counts: Counter[str] = Counter()
    events = list(ws_capture(vendored(HFT), counts=counts))
    assert counts == {"l2Book": 46, "trades": 9}
    books, trades = _items(events, L2Book), _items(events, Trade)
    assert (len(books), len(trades)) == (46, 64)
    first = events[0]
    assert first.recv_ns == 1737918843893903000
    book = first.item
    assert isinstance(book, L2Book)
    assert (book.coin, book.time_ms, len(book.bids), len(book.asks)) == ("BTC", 1737918843542, 20, 20)
    assert book.bids[0] == Level("105055.0", "3.03622", 5)
    assert book.asks[0] == Level("105056.0", "6.34472", 13)
    assert book.bids[-1] == Level("105030.0", "17.50772", 39)
    trade_event = next(e for e in events if isinstance(e.item, Trade))
    assert trade_event.recv_ns == 1737918844167767000
    assert trade_event.item == Trade(
        coin="BTC",
        side=Side.BUY,
        price=Decimal("105056.0"),
        size=Decimal("0.00219"),
        time_ms=1737918794873,
        tid=121451470284048,
        hash="0xde477894bfb2b4eac0a8041c9228ca013100955485522c8e6e787dfa0077475b",
        buyer="0xe9ed7e16612d676df804f5aecd16e1f9bf9ec9dd",
        seller="0x6802b4267f7f2bf7003dcf993c51542245b38329",
    )
    assert trade_event.venue_ms == 1737918794873


def test_json_lines_capture_values_as_recorded() -> None:
    counts: Counter[str] = Counter()
    events = list(market_events(vendored(LIVE), counts=counts))
    assert counts == {"l2Book": 285, "trades": 931}
    assert {b.coin for b in _items(events, L2Book)} == {"BTC", "CASHCAT", "xyz:KR200", "xyz:CXMT", "xyz:CL"}
    first = events[0]
    assert first.recv_ns == 1784683656613941900
    assert isinstance(first.item, L2Book)
    assert (first.item.time_ms, first.item.bids[0], first.item.asks[0]) == (
        1784683655994,
        Level("66410.0", "1.99792", 6),
        Level("66411.0", "6.49625", 29),
    )
    trade = next(e for e in events if isinstance(e.item, Trade))
    assert trade.recv_ns == 1784683656665067500
    assert isinstance(trade.item, Trade)
    assert (trade.item.price, trade.item.size, trade.item.time_ms, trade.item.tid) == (
        Decimal("66405.0"), Decimal("0.0602"), 1784683648442, 671457096840761,
    )  # fmt: skip
    stamps = [e.recv_ns for e in events]
    assert stamps == sorted(stamps)  # a capture is in receive order


def test_bbo_and_candle_frames(tmp_path: Path) -> None:
    bbo = {"coin": "BTC", "time": 1700000000123, "bbo": [{"px": "99.5", "sz": "2", "n": 1}, None]}
    candle = {"t": 1700000040000, "T": 1700000099999, "s": "BTC", "i": "1m", "o": "1", "c": "2", "h": "2.5",
              "l": "0.5", "v": "10", "n": 3}  # fmt: skip
    lines = [
        json.dumps({"received_wall_ns": 1700000000200000000, "channel": "bbo", "data": bbo}),
        "1700000100000000000 " + json.dumps({"channel": "candle", "data": candle}),
        "1700000100000000001 " + json.dumps({"channel": "pong"}),
    ]
    path = tmp_path / "cap.log"
    path.write_text("\n".join(lines) + "\n")
    events = list(market_events(path))
    assert events[0] == MarketEvent(
        Bbo("BTC", 1700000000123, Level("99.5", "2", 1), None), 1700000000200000000
    )
    assert isinstance(events[1].item, Candle)
    assert events[1].item.high == Decimal("2.5")
    assert events[1].venue_ms == 1700000100000  # a candle is known once it has closed
    assert len(events) == 2


def test_book_without_venue_time_takes_the_receive_time(tmp_path: Path) -> None:
    line = gzip.decompress(vendored(HFT).read_bytes()).split(b"\n", 1)[0].decode()
    path = tmp_path / "cap.log"
    path.write_text(line.replace(',"time":1737918843542', ""))
    (event,) = ws_capture(path)
    assert isinstance(event.item, L2Book)
    assert event.item.time_ms == 1737918843893


BOOK = (
    '1737918843893903000 {"channel":"l2Book","data":{"coin":"BTC","time":1737918843542,"levels":'
    '[[{"n":5,"px":"105055.0","sz":"3.03622"}],[{"n":13,"px":"105056.0","sz":"6.34472"}]]}}'
)
TRADE = (
    '1737918844167767000 {"channel":"trades","data":[{"coin":"BTC","px":"105056.0","side":"B",'
    '"sz":"0.00219","tid":121451470284048,"time":1737918844000,"hash":"0x1"}]}'
)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('1737918845000000000 {"channel":"l2Book","data":{"coin":"BTC",', "invalid JSON"),
        ("not-a-stamp {}", "expected '<local_ns> <json>'"),
        ('1737918845000000000 {"data":{}}', "no 'channel'"),
        (TRADE.replace('"side":"B"', '"side":"X"'), "trades: 'X' is not a valid Side"),
        (TRADE.replace('"px":"105056.0",', ""), "trades: missing field 'px'"),
        (TRADE.replace('"105056.0"', '"abc"'), "trades: not a number"),
        (TRADE.replace('"0.00219"', '"-1"'), "must be positive"),
        (BOOK.replace('"105055.0"', '"1e5"'), "plain decimals"),
        (BOOK.replace('"105056.0"', '"105000.0"'), None),  # a crossed book is recorded as it was
        (BOOK.replace('[{"n":5', '[{"n":5,"px":"105050.0","sz":"1"},{"n":5'), "bids must be best"),
    ],
)
def test_malformed_frame_names_file_and_line(tmp_path: Path, bad: str, message: str | None) -> None:
    path = tmp_path / "broken.log"
    path.write_text(f"{BOOK}\n\n{TRADE}\n{bad}\n{BOOK}\n")
    if message is None:
        assert len(list(ws_capture(path))) == 4
        return
    with pytest.raises(RecordingError, match=message) as info:
        list(ws_capture(path))
    assert str(info.value).startswith(f"{path}: line 4: ")


# --------------------------------------------------------------------------- candles


def test_candle_files_in_every_vendored_layout() -> None:
    axon = list(candles(vendored("real/candles_axon/btc-1m.csv")))
    assert len(axon) == 900
    first = axon[0].item
    assert first == Candle(
        "BTC", "1m", 1785023340000, 1785023399999, Decimal("64378"), Decimal("64378"), Decimal("64377"),
        Decimal("64377"), Decimal("1.51684"), 0,
    )  # fmt: skip
    xsa = [e.item for e in candles(vendored("real/candles_xsa_202507/btc_usdc_ohlcv_1h.csv"))]
    assert (len(xsa), xsa[0].open_ms, xsa[0].close_ms, xsa[0].open, xsa[0].trades) == (
        169, 1753380000000, 1753383599999, Decimal("119198.0"), 12634,
    )  # fmt: skip
    zec = [e.item for e in market_events(vendored("real/leader_copyscalper_202511/candles_ZEC_5m.json.gz"))]
    assert len(zec) == 962
    assert {c.interval for c in zec} == {"5m"}
    daily = [
        e.item for e in candles(vendored("real/candles_claygeo_daily/H1-TREND-DAILY-20260722-001.json.gz"))
    ]
    btc = [c for c in daily if c.coin == "BTC"]
    assert (len(btc), btc[0].open_ms, btc[0].close, btc[1].high) == (
        1199, 1681084800000, Decimal("29626"), Decimal("30573.7"),
    )  # fmt: skip


def test_candle_snapshot_answer_of_the_venue(tmp_path: Path) -> None:
    cassette = yaml.safe_load(vendored("hl-real/test_get_candles_snapshot.yaml").read_text())
    body = next(
        i["response"]["body"]["string"]
        for i in cassette["interactions"]
        if "candleSnapshot" in i["request"]["body"]
    )
    raw = json.loads(body)
    path = tmp_path / "answer.json"
    path.write_text(body)
    got = [e.item for e in candles(path)]
    assert len(got) == len(raw) == 24
    assert got[0] == Candle(
        raw[0]["s"], raw[0]["i"], raw[0]["t"], raw[0]["T"], Decimal(raw[0]["o"]), Decimal(raw[0]["h"]),
        Decimal(raw[0]["l"]), Decimal(raw[0]["c"]), Decimal(raw[0]["v"]), raw[0]["n"],
    )  # fmt: skip


# --------------------------------------------------------------------------- CSV books, tapes, BBO


@shared_data
def test_djienne_csv_book_tape_and_bbo_values_as_recorded() -> None:
    folder = shared("real/l2_djienne_20250903")
    books = list(market_events(folder / "orderbooks_BTC.csv.gz"))
    assert len(books) == 446
    first = books[0]
    assert first.recv_ns == 1756904112546592700  # 1756904112.5465927 s, exactly
    assert isinstance(first.item, L2Book)
    assert (first.item.coin, first.item.time_ms) == ("BTC", 1756904112212)
    assert first.item.bids[0] == Level("111038.0", "8.84885", 0)
    assert first.item.asks[0] == Level("111039.0", "0.0036", 0)
    assert len(first.item.bids) == len(first.item.asks) == 20
    line_363 = books[363 - 2].item  # the writer spelt one size "1e-05"
    assert isinstance(line_363, L2Book)
    assert line_363.asks[0].sz == "0.00001"
    tape = [e.item for e in market_events(folder / "trades_BTC.csv.gz")]
    assert len(tape) == 1497
    assert tape[0] == Trade("BTC", Side.BUY, Decimal("111039.0"), Decimal("0.00091"), 1756904102005,
                            1062032029372010, "")  # fmt: skip
    assert tape[1].side is Side.SELL
    bbo = [e.item for e in market_events(folder / "prices_BTC.csv.gz")]
    assert bbo[0] == Bbo(
        "BTC", 1756904112212, Level("111038.0", "8.84885", 0), Level("111039.0", "0.0036", 0)
    )
    assert all(isinstance(b, Bbo) and b.bid is not None and b.ask is not None for b in bbo)
    stamps = [b.time_ms for b in bbo]
    assert len(set(stamps)) == len(stamps)  # one BBO per venue time


@shared_data
@pytest.mark.parametrize("day", ["20250903", "20250904"])
def test_every_djienne_file_parses(day: str) -> None:
    folder = shared(f"real/l2_djienne_{day}")
    counts = {p.name: sum(1 for _ in market_events(p)) for p in sorted(folder.glob("*.csv.gz"))}
    expected_books = 446 if day == "20250903" else 2452
    assert all(counts[f"orderbooks_{c}.csv.gz"] == expected_books for c in ("BTC", "ETH", "SOL", "WLFI"))
    tapes = {"20250903": (1497, 782, 1027, 183), "20250904": (4281, 4766, 2921, 1762)}[day]
    assert tuple(counts[f"trades_{c}.csv.gz"] for c in ("BTC", "ETH", "SOL", "WLFI")) == tapes


@pytest.mark.parametrize(
    ("name", "rows", "message"),
    [
        ("trades_BTC.csv", "1.5,100.0,1.0,up,7,1000\n", "side must be buy or sell"),
        ("trades_BTC.csv", "1.5,100.0,x,buy,7,1000\n", "not a number"),
        ("trades_BTC.csv", "1.5,100.0,1.0,buy,7,soon\n", "exchange_timestamp must be integer ms"),
        ("prices_BTC.csv", "1.5,100.0,1.0,mid,1000\n", "side must be bid or ask"),
        ("orderbooks_BTC.csv", "1.5,1,1000,100.0,1.0,abc,1.0\n", "not a number"),
        ("orderbooks_BTC.csv", "1.5,1,1000,100.0,1.0\n", "wrong number of columns"),
    ],
)
def test_malformed_csv_names_file_and_line(tmp_path: Path, name: str, rows: str, message: str) -> None:
    headers = {
        "trades": "timestamp,price,size,side,trade_id,exchange_timestamp\n1.4,100.0,1.0,buy,6,999\n",
        "prices": "timestamp,price,size,side,exchange_timestamp\n1.4,100.0,1.0,bid,999\n",
        "orderbooks": "timestamp,sequence,exchange_timestamp,bid_price_0,bid_size_0,ask_price_0,ask_size_0\n"
        "1.4,1,999,100.0,1.0,101.0,1.0\n",
    }
    path = tmp_path / name
    path.write_text(headers[name.split("_")[0]] + rows)
    with pytest.raises(RecordingError, match=message) as info:
        list(market_events(path))
    assert str(info.value).startswith(f"{path}: line 3: ")
