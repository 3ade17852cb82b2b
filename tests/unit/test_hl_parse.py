"""The adapter's parsers on real recorded Hyperliquid data (tests/fixtures), not on our own shapes."""

from __future__ import annotations

import csv
import gzip
import json
from decimal import Decimal
from typing import Any

import pytest
import yaml

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.domain.errors import (
    InsufficientMargin,
    MinNotional,
    OrderNotFound,
    PostOnlyWouldCross,
    VenueRejected,
)
from hyperfollow.domain.model import AckStatus, Side
from shared_data import shared, shared_data, vendored

HL_REAL = vendored("hl-real")
REAL = vendored("real")
USER = "0xb7b6f3cea3f66bf525f5d8f965f6dbf6d9b017b2"


def cassette(name: str, request_type: str) -> Any:
    """The recorded answer to the first request of ``request_type`` in an SDK cassette."""
    doc = yaml.safe_load((HL_REAL / f"{name}.yaml").read_text())
    for item in doc["interactions"]:
        if json.loads(item["request"]["body"])["type"] == request_type:
            return json.loads(item["response"]["body"]["string"])
    raise LookupError(f"{name} has no {request_type} request")


def test_user_fills_old_format_without_tid_parse_exactly() -> None:
    raw = cassette("test_get_user_fills_by_time", "userFillsByTime")
    fills = parse.fills(USER, raw)
    assert len(fills) == len(raw) > 1
    first = next(f for f in fills if f.size == Decimal("142.7"))
    assert (first.coin, first.side, first.price, first.direction) == (
        "SUI",
        Side.SELL,
        Decimal("1.3189"),
        "Close Long",
    )
    assert first.closed_pnl == Decimal("-0.25686")
    assert first.start_position == Decimal("4623.5")
    assert first.tid is None  # 2023 fills predate trade ids
    assert [f.time_ms for f in fills] == sorted(f.time_ms for f in fills)
    # one sweep shares a hash; the fallback key still tells its fills apart
    assert len({f.hash for f in fills}) < len(fills)
    assert len({f.key for f in fills}) == len(fills)


def test_clearinghouse_state_to_snapshot() -> None:
    raw = cassette("test_get_user_state", "clearinghouseState")
    snap = parse.account_snapshot(USER, raw, now_ms=1)
    assert snap.equity == Decimal("1182.312496")
    assert snap.margin_used == Decimal("171.740766")
    assert snap.withdrawable == Decimal("1010.57173")
    btc = snap.position("BTC")
    assert btc is not None
    assert (btc.size, btc.entry_price, btc.leverage, btc.is_cross) == (
        Decimal("-0.00785"),
        Decimal("26951.0"),
        20,
        True,
    )
    assert btc.liquidation_price == Decimal("173198.69592357")
    eth = snap.position("ETH")
    assert eth is not None
    assert eth.liquidation_price is None  # null on the wire
    assert len(snap.positions) == len(raw["assetPositions"])


def test_l2_book_candles_mids_open_orders() -> None:
    book = parse.l2_book(cassette("test_get_l2_snapshot", "l2Book"))
    assert book.coin == "DYDX"
    assert book.bids[0] == parse.Level("2.111", "134.4", 1)
    assert (book.bids[0].price, book.bids[0].size, book.bids[0].orders) == (
        Decimal("2.111"),
        Decimal("134.4"),
        1,
    )
    assert book.best_bid is not None
    assert book.best_ask is not None
    assert book.best_bid < book.best_ask
    assert all(a.price > b.price for a, b in zip(book.bids, book.bids[1:], strict=False))
    candles = [parse.candle(c) for c in cassette("test_get_candles_snapshot", "candleSnapshot")]
    assert candles[0].coin == "kPEPE"
    assert candles[0].close == Decimal("0.001604")
    assert candles[0].volume == Decimal("520665683.0")
    assert all(c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high for c in candles)
    mids = parse.mids(cassette("test_get_all_mids", "allMids"))
    assert mids["BTC"] == Decimal("30135.0")
    orders = [parse.order_state(o) for o in cassette("test_get_open_orders", "openOrders")]
    assert orders[0].coin == "MATIC"
    assert orders[0].price == Decimal("1.0357")
    assert orders[0].orig_size == orders[0].size  # openOrders carries no origSz
    triggers = [parse.order_state(o) for o in cassette("test_get_frontend_open_orders", "frontendOpenOrders")]
    tp = triggers[0]
    assert (tp.trigger_price, tp.reduce_only) == (Decimal("10.004"), True)


def test_historical_orders_and_rate_limit() -> None:
    items = cassette("test_historical_orders", "historicalOrders")
    states = [parse.order_update(i) for i in items]
    assert states[0].status == "iocCancelRejected"
    assert states[0].status_ms == items[0]["statusTimestamp"]
    assert not states[0].is_open
    limit = parse.rate_limit(cassette("test_user_rate_limit", "userRateLimit"))
    assert (limit.used, limit.cap) == (36589831368, 170043731737)
    assert limit.remaining == 170043731737 - 36589831368


def test_copier_audit_leader_fills_hip3_builder_fee_and_liquidation() -> None:
    doc = json.loads(
        gzip.decompress((REAL / "copytrader_audit_202607" / "exchange_leader_fills.json.gz").read_bytes())
    )
    raws = [f for q in doc["queries"] for f in q["fills"]]
    fills = [parse.fill("0x" + "1" * 40, r) for r in raws]
    assert len(fills) == 2576
    assert len({f.key for f in fills}) == len({(r["tid"]) for r in raws})
    hip3 = [f for f in fills if f.coin.startswith("xyz:")]
    assert hip3
    with_builder = next(f for f in fills if f.builder_fee)
    assert with_builder.cloid is not None
    assert with_builder.cloid.startswith("0x")
    liq = next(f for f in fills if f.liquidation)
    assert liq.liquidated_user == "0x1e727eb6a2c09b3bb3eecba0eb1379e0e352563d"
    assert not liq.liquidated_self
    flips = [f for f in fills if f.direction == "Short > Long"]
    assert len(flips) == 1
    assert flips[0].start_position < 0


def test_ws_frames_from_hftbacktest_capture() -> None:
    lines = (
        gzip.decompress((REAL / "ws_hftbacktest_20250126" / "btcusd_20250126.gz").read_bytes())
        .decode()
        .splitlines()
    )
    frames = [json.loads(line.split(" ", 1)[1]) for line in lines]
    books = [parse.l2_book(f["data"]) for f in frames if f["channel"] == "l2Book"]
    trades = [parse.trade(t) for f in frames if f["channel"] == "trades" for t in f["data"]]
    assert len(books) == 46
    assert all(len(b.bids) == len(b.asks) == 20 for b in books)
    assert all(b.best_bid is not None and b.best_ask is not None and b.best_bid < b.best_ask for b in books)
    assert trades[0].price == Decimal("105056.0")
    assert trades[0].buyer == "0xe9ed7e16612d676df804f5aecd16e1f9bf9ec9dd"
    assert len({t.tid for t in trades}) == len(trades)


@shared_data
def test_whale_fills_csv_round_trip() -> None:
    with gzip.open(shared("real/leader_whale_b317_20251209/user_fills.csv.gz"), "rt") as fh:
        rows = list(csv.DictReader(fh))
    raws = [
        {**r, "time": 0, "oid": int(r["oid"]), "tid": int(r["tid"]), "crossed": r["crossed"] == "True"}
        for r in rows
    ]
    fills = parse.fills("0xb317d2bc2d3d2df5fa441b5bae0ab9d8b07283ae", raws)
    assert len(fills) == 966
    assert {f.direction for f in fills} == {"Open Long"}
    assert sum(f.size for f in fills) == sum(Decimal(r["sz"]) for r in rows)  # exact, no float drift


# ------------------------------------------------------------------ /exchange envelopes


def test_order_statuses_keep_per_order_errors_under_status_ok() -> None:
    response = {
        "status": "ok",
        "response": {
            "type": "order",
            "data": {
                "statuses": [
                    {"resting": {"oid": 77738308}},
                    {"filled": {"totalSz": "0.02", "avgPx": "1891.4", "oid": 77747314}},
                    {"error": "Insufficient margin to place order. asset=15"},
                    {"error": "Post only order would have immediately matched, bbo was 1891.3@1891.4."},
                    "waitingForFill",
                ]
            },
        },
    }
    out = parse.order_statuses(response, ["0x" + "a" * 32, None, None, "0x" + "b" * 32, None])
    assert out[0] == parse.OrderAck(AckStatus.RESTING, 77738308, "0x" + "a" * 32)
    filled = out[1]
    assert isinstance(filled, parse.OrderAck)
    assert (filled.filled_size, filled.avg_price) == (Decimal("0.02"), Decimal("1891.4"))
    assert isinstance(out[2], InsufficientMargin)
    assert isinstance(out[3], PostOnlyWouldCross)
    assert out[3].cloid == "0x" + "b" * 32
    assert out[4] == parse.OrderAck(AckStatus.WAITING, None, None)


def test_whole_action_errors_raise_and_unknown_shapes_are_not_guessed() -> None:
    with pytest.raises(VenueRejected, match="does not exist"):
        parse.default_ok({"status": "err", "response": "User or API Wallet 0xabc does not exist."})
    with pytest.raises(parse.UnexpectedResponse):
        parse.order_statuses(
            {"status": "ok", "response": {"type": "order", "data": {"statuses": []}}}, [None]
        )
    with pytest.raises(parse.UnexpectedResponse):
        parse.default_ok("<html>502</html>")
    cancels = parse.cancel_statuses(
        {
            "status": "ok",
            "response": {
                "type": "cancel",
                "data": {
                    "statuses": [
                        "success",
                        {"error": "Order was never placed, already canceled, or filled. asset=1"},
                    ]
                },
            },
        },
        2,
    )
    assert cancels[0] is None
    assert isinstance(cancels[1], OrderNotFound)
    assert isinstance(
        parse.order_statuses(
            {
                "status": "ok",
                "response": {
                    "type": "order",
                    "data": {"statuses": [{"error": "Order must have minimum value of $10. asset=0"}]},
                },
            },
            [None],
        )[0],
        MinNotional,
    )


def test_ws_book_fast_path_equals_the_dict_path_on_real_frames() -> None:
    raw = gzip.decompress((REAL / "copytrader_audit_202607" / "live_books_5m.jsonl.gz").read_bytes())
    records = [json.loads(line) for line in raw.decode().splitlines()]
    books = [r for r in records if r["channel"] == "l2Book"]
    assert len(books) == 285
    for record in books:
        frame = json.dumps({"channel": record["channel"], "data": record["data"]})
        channel, data = parse.decode_frame(frame)
        assert channel == "l2Book"
        fast = parse.l2_book_from_raw(data)
        assert fast == parse.l2_book(record["data"])
        assert isinstance(fast.bids[0].price, Decimal)
    assert {b["data"]["coin"] for b in books} >= {"BTC", "xyz:KR200"}
    trades = [r for r in records if r["channel"] == "trades"]
    channel, data = parse.decode_frame(json.dumps({"channel": "trades", "data": trades[0]["data"]}))
    assert next(parse.trade(t) for t in parse.raw_json(data)).coin == trades[0]["data"][0]["coin"]


def test_a_frame_that_is_not_json_raises_value_error() -> None:
    with pytest.raises(ValueError, match=r"truncated|malformed|JSON"):
        parse.decode_frame('{"channel": "l2Book", "data": {"coin"')
    with pytest.raises(ValueError, match="Expected `str`"):
        parse.l2_book_from_raw(b'{"coin": "BTC", "time": 1, "levels": [[{"px": 1, "sz": "1", "n": 1}], []]}')
