"""Replay of recorded market data: real fixtures parse as documented, malformed input is named."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path
from typing import TypeVar

import pytest

from hyperfollow.exchange.replay import (
    BookEvent,
    CandleEvent,
    Recording,
    RecordingError,
    TradeEvent,
    intra_candle_path,
    load_recording,
    merge_recordings,
)
from shared_data import vendored

REAL = vendored("real")

BOOK_LINE = (
    '1737918843893903000 {"channel":"l2Book","data":{"coin":"BTC","time":1737918843542,"levels":'
    '[[{"n":5,"px":"105055.0","sz":"3.03622"}],[{"n":13,"px":"105056.0","sz":"6.34472"}]]}}'
)
TRADE_LINE = (
    '1737918844167767000 {"channel":"trades","data":[{"coin":"BTC","px":"105056.0","side":"B",'
    '"sz":"0.00219","tid":121451470284048,"time":1737918844000}]}'
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


E = TypeVar("E", BookEvent, TradeEvent, CandleEvent)


def _of(rec: Recording, kind: type[E]) -> list[E]:
    return [e for e in rec if isinstance(e, kind)]


# --------------------------------------------------------------------------- real recordings


def test_hftbacktest_capture_has_the_documented_frames() -> None:
    path = REAL / "ws_hftbacktest_20250126/btcusd_20250126.gz"
    rec = load_recording(path)
    assert rec.frame_counts == {"l2Book": 46, "trades": 9}
    frames = [json.loads(line.split(b" ", 1)[1]) for line in gzip.decompress(path.read_bytes()).splitlines()]
    n_trades = sum(len(f["data"]) for f in frames if f["channel"] == "trades")
    books, trades = _of(rec, BookEvent), _of(rec, TradeEvent)
    assert len(books) == 46
    assert len(trades) == n_trades
    assert rec.coins() == ["BTC"]
    assert all(len(b.bids) == len(b.asks) == 20 for b in books)
    first = next(b for b in books if b.ts_ms == frames[0]["data"]["time"])
    assert first.bids[0] == ("105055.0", "3.03622")  # strings exactly as recorded
    assert first.asks[0] == ("105056.0", "6.34472")
    assert {t.side for t in trades} == {"B", "A"}
    assert all(t.tid is not None for t in trades)
    stamps = [e.ts_ms for e in rec]
    assert stamps == sorted(stamps)
    assert rec.start_ms == stamps[0]
    assert rec.end_ms == stamps[-1]
    assert 1737918780000 < rec.start_ms < rec.end_ms < 1737918870000  # 2025-01-26 19:13..19:14:30 UTC


def test_json_lines_capture_with_hip3_coins() -> None:
    rec = load_recording(REAL / "copytrader_audit_202607/live_books_5m.jsonl.gz")
    assert rec.frame_counts == {"l2Book": 285, "trades": 931}
    assert len(_of(rec, BookEvent)) == 285
    assert rec.coins() == ["BTC", "CASHCAT", "xyz:CL", "xyz:CXMT", "xyz:KR200"]


@pytest.mark.parametrize(
    ("name", "coins", "count", "interval_ms"),
    [
        ("candles_axon/btc-1m.csv", ["BTC"], 900, 60_000),
        ("candles_axon/eth-1h.csv", ["ETH"], 800, 3_600_000),
        ("candles_xsa_202507/btc_usdc_ohlcv_1h.csv", ["BTC"], 169, 3_600_000),
        ("leader_copyscalper_202511/candles_ZEC_5m.json.gz", ["ZEC"], 962, 300_000),
        ("candles_claygeo_daily/H1-TREND-DAILY-20260722-001.json.gz", ["BTC", "ETH"], 2 * 1199, 86_400_000),
    ],
)
def test_real_candle_files(name: str, coins: list[str], count: int, interval_ms: int) -> None:
    rec = load_recording(REAL / name)
    candles = _of(rec, CandleEvent)
    assert len(candles) == len(rec) == count
    assert rec.coins() == coins
    assert {c.interval_ms for c in candles} == {interval_ms}
    assert all(float(c.l) <= min(float(c.o), float(c.c)) for c in candles)
    assert rec.end_ms == candles[-1].ts_ms + interval_ms


def test_close_time_only_candles_get_their_open_time() -> None:
    rec = load_recording(REAL / "candles_axon/btc-1m.csv")
    first = rec.events[0]
    assert isinstance(first, CandleEvent)
    assert first.ts_ms == 1785023399999 + 1 - 60_000  # T = open + interval - 1
    assert (first.o, first.h, first.l, first.c, first.v) == ("64378", "64378", "64377", "64377", "1.51684")


# --------------------------------------------------------------------------- formats


def test_hyperliquid_candle_list_and_coin_override(tmp_path: Path) -> None:
    candles = [
        {"t": 1_700_000_000_000 + k * 300_000, "T": 1_700_000_299_999 + k * 300_000, "s": "xyz:TSLA",
         "i": "5m", "o": "250.1", "h": "251.0", "l": "249.5", "c": "250.7", "v": "12.5", "n": 40}
        for k in range(3)
    ]  # fmt: skip
    path = _write(tmp_path, "anything.json", json.dumps(candles))
    rec = load_recording(path)
    assert rec.coins() == ["xyz:TSLA"]
    assert [e.ts_ms for e in rec] == [c["t"] for c in candles]
    assert {e.interval_ms for e in _of(rec, CandleEvent)} == {300_000}
    assert load_recording(path, coin="TSLA").coins() == ["TSLA"]


def test_gzip_is_detected_by_content_and_other_channels_are_skipped(tmp_path: Path) -> None:
    sub = '1737918843000000000 {"channel":"subscriptionResponse","data":{"method":"subscribe"}}'
    path = tmp_path / "capture.txt"
    path.write_bytes(gzip.compress(f"{sub}\n{BOOK_LINE}\n\n{TRADE_LINE}\n".encode()))
    rec = load_recording(path)
    assert rec.frame_counts == {"subscriptionResponse": 1, "l2Book": 1, "trades": 1}
    assert [type(e) for e in rec] == [BookEvent, TradeEvent]
    trade = rec.events[1]
    assert trade == TradeEvent(1737918844000, "BTC", "105056.0", "0.00219", "B", 121451470284048)


def test_book_without_venue_time_uses_the_local_receive_time(tmp_path: Path) -> None:
    line = BOOK_LINE.replace('"time":1737918843542,', "")
    rec = load_recording(_write(tmp_path, "cap.log", line))
    assert rec.events[0].ts_ms == 1737918843893


def test_merge_and_window(tmp_path: Path) -> None:
    ws = load_recording(_write(tmp_path, "a.log", f"{BOOK_LINE}\n{TRADE_LINE}\n"))
    csv_text = "T,o,h,l,c,v\n1737918909999,1,2,0.5,1.5,3\n"
    candles = load_recording(_write(tmp_path, "sol-1m.csv", csv_text))
    both = merge_recordings(ws, candles)
    assert [type(e) for e in both] == [BookEvent, TradeEvent, CandleEvent]
    assert both.coins() == ["BTC", "SOL"]
    assert both.end_ms == 1737918910000
    assert both.frame_counts == {"l2Book": 1, "trades": 1}
    assert [type(e) for e in both.between(1737918843542, 1737918844000)] == [BookEvent]
    assert both.between(0, 1) == []


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('1737918845000000000 {"channel":"l2Book","data":{"coin":"BTC",', "invalid JSON"),
        ("not-a-stamp {}", "expected '<local_ns> <json>'"),
        (TRADE_LINE.replace('"side":"B"', '"side":"X"'), "side must be 'B' or 'A'"),
        (TRADE_LINE.replace('"px":"105056.0",', ""), "missing 'px'"),
        (TRADE_LINE.replace('"105056.0"', '"abc"'), "not a number"),
        (BOOK_LINE.replace('{"n":5,"px":"105055.0","sz":"3.03622"}', '["105055.0","3.03622"]'), "book level"),
        ('1737918845000000000 {"data":{}}', "no 'channel'"),
        ('1737918845000000000 ["l2Book"]', "expected a JSON object"),
    ],
)
def test_malformed_ws_line_names_file_and_line(tmp_path: Path, bad: str, message: str) -> None:
    path = _write(tmp_path, "broken.log", f"{BOOK_LINE}\n{TRADE_LINE}\n{bad}\n{BOOK_LINE}\n")
    with pytest.raises(RecordingError, match=message) as info:
        load_recording(path)
    assert str(info.value).startswith(f"{path}: line 3: ")
    assert info.value.path == str(path)


@pytest.mark.parametrize(
    ("rows", "where", "message"),
    [
        ("1700000059999,1,2,0.5,1.5,3\n1700000119999,1,x,0.5,1.5,3\n", "line 3", "not a number"),
        ("1700000059999,1,2,0.5,1.5,3\n1700000119999,1,1.2,0.5,1.5,3\n", "line 3", "inconsistent candle"),
        ("1700000059999,1,2,0.5,1.5\n", "line 2", "wrong number of columns"),
        (",1,2,0.5,1.5,3\n", "line 2", "no open or close time"),
    ],
)
def test_malformed_csv_candle(tmp_path: Path, rows: str, where: str, message: str) -> None:
    path = _write(tmp_path, "eth-1m.csv", "T,o,h,l,c,v\n" + rows)
    with pytest.raises(RecordingError, match=message) as info:
        load_recording(path)
    assert str(info.value).startswith(f"{path}: {where}: ")


def test_malformed_json_candles(tmp_path: Path) -> None:
    good = {"timestamp": 1763085420000, "open": 1.05, "high": 1.06, "low": 1.04, "close": 1.055}
    bad = {"timestamp": 1763085480000, "open": 1.05, "high": 1.06, "low": 1.04}
    path = _write(tmp_path, "candles_ASTER_1m.json", json.dumps([good, bad]))
    with pytest.raises(RecordingError, match=r"candle #2: missing open/high/low/close"):
        load_recording(path)
    with pytest.raises(RecordingError, match="invalid JSON"):
        load_recording(_write(tmp_path, "c.json", "[{]"))
    with pytest.raises(RecordingError, match="no candles"):
        load_recording(_write(tmp_path, "d.json", '{"a": 1}'))


def test_unrecognised_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="line 1: unrecognised format"):
        load_recording(_write(tmp_path, "x.txt", "hello world\n"))
    with pytest.raises(RecordingError, match="cannot read"):
        load_recording(tmp_path / "missing.log")
    path = tmp_path / "trunc.gz"
    path.write_bytes(gzip.compress(BOOK_LINE.encode())[:-10])
    with pytest.raises(RecordingError, match="cannot read"):
        load_recording(path)


# --------------------------------------------------------------------------- intra-candle path


def _candle(o: str, h: str, lo: str, c: str) -> CandleEvent:
    return CandleEvent(1_000_000, "BTC", o, h, lo, c, "1", 60_000)


@pytest.mark.parametrize(
    ("candle", "extremes_in_order"),
    [
        (_candle("100", "110", "98", "108"), [98.0, 110.0]),  # open nearer the low: low first
        (_candle("100", "101", "90", "95"), [101.0, 90.0]),  # open nearer the high: high first
        (_candle("100", "101", "90", "100.5"), [101.0, 90.0]),  # rising, but the high is nearer
        (_candle("100", "110", "98", "99"), [98.0, 110.0]),  # falling, but the low is nearer
        (_candle("100", "105", "95", "103"), [95.0, 105.0]),  # tie, rising candle: low first
        (_candle("100", "105", "95", "97"), [105.0, 95.0]),  # tie, falling candle: high first
    ],
)
def test_intra_candle_path(candle: CandleEvent, extremes_in_order: list[float]) -> None:
    path = intra_candle_path(candle, 7_000)
    times = [t for t, _ in path]
    prices = [p for _, p in path]
    assert times[0] == candle.ts_ms
    assert times[-1] == candle.ts_ms + candle.interval_ms
    assert times == sorted(set(times))
    assert prices[0] == float(candle.o)
    assert prices[-1] == float(candle.c)
    assert min(prices) == float(candle.l)
    assert max(prices) == float(candle.h)
    first, second = extremes_in_order
    assert prices.index(first) < prices.index(second)
    steps = [abs(b - a) / (tb - ta) for (ta, a), (tb, b) in itertools.pairwise(path)]
    assert max(steps) == pytest.approx(min(s for s in steps if s > 0), rel=0.05)  # constant speed
    assert intra_candle_path(candle, 7_000) == path


def test_flat_candle_path_and_bad_step() -> None:
    flat = _candle("5", "5", "5", "5")
    assert {p for _, p in intra_candle_path(flat, 10_000)} == {5.0}
    with pytest.raises(ValueError, match="step_ms"):
        intra_candle_path(flat, 0)
