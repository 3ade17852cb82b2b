"""Leader fill histories: every recorded format becomes domain fills in position order, exact values."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import groupby
from pathlib import Path

import pytest
import yaml

from hyperfollow.backtest.data.fills import (
    audit_fills,
    audit_queries,
    load_fills,
    placeholder_address,
    trade_history_csv,
    user_fills_json,
)
from hyperfollow.domain.model import Fill, Side
from hyperfollow.recordings import RecordingError
from shared_data import shared, shared_data, vendored

AUDIT = "real/copytrader_audit_202607/exchange_leader_fills.json.gz"


def _chained_within_each_ms(fills: list[Fill]) -> bool:
    """Each fill of a millisecond starts where the previous fill of its coin in that millisecond ended."""
    for _, same_ms in groupby(fills, key=lambda f: f.time_ms):
        last: dict[str, Decimal] = {}
        for f in same_ms:
            if f.coin in last and f.start_position != last[f.coin]:
                return False
            last[f.coin] = f.start_position + f.signed_size
    return True


def _breaks(fills: list[Fill]) -> int:
    """Places where a coin's fill does not start where its previous fill ended."""
    end: dict[str, Decimal] = {}
    n = 0
    for f in fills:
        n += f.coin in end and f.start_position != end[f.coin]
        end[f.coin] = f.start_position + f.signed_size
    return n


# --------------------------------------------------------------------------- JSON


def test_audit_envelope_slots_and_values_as_recorded() -> None:
    queries = audit_queries(vendored(AUDIT))
    assert [(q.slot, len(q.fills), q.truncated) for q in queries] == [
        ("acc2", 122, False), ("acc3", 647, False), ("acc4", 65, False), ("acc6", 833, False),
        ("acc9", 909, False),
    ]  # fmt: skip
    acc9 = audit_fills(vendored(AUDIT), "acc9")
    assert acc9 == list(next(q for q in queries if q.slot == "acc9").fills)
    assert acc9[0] == Fill(
        address=placeholder_address("audit:exchange_leader_fills.json.gz:acc9"),
        coin="CASHCAT",
        side=Side.SELL,
        price=Decimal("0.05944"),
        size=Decimal("25235.0"),
        time_ms=1784453933129,
        start_position=Decimal("0.0"),
        direction="Open Short",
        closed_pnl=Decimal("0.0"),
        fee=Decimal("0.515988"),
        oid=498632312334,
        tid=421340130066864,
        hash="0x6a0175eb55bd1f4f6b7b04404463cb0202b400d0f0b03e210dca213e14b0f93a",
        crossed=False,
        cloid="0xc261f8f69d5c3d0f7f0f29e1f31c8fed",
        builder_fee=Decimal("0.299993"),
    )
    assert {f.coin for f in acc9} >= {"xyz:CXMT", "CASHCAT", "BCH"}
    assert [f.time_ms for f in acc9] == sorted(f.time_ms for f in acc9)
    assert _chained_within_each_ms(acc9)
    assert len({f.address for q in queries for f in q.fills}) == 5  # one stand-in address per slot


def test_audit_envelope_slot_choice() -> None:
    with pytest.raises(RecordingError, match=r"several slots \['acc2', 'acc3', 'acc4', 'acc6', 'acc9'\]"):
        load_fills(vendored(AUDIT))
    with pytest.raises(RecordingError, match="no slot 'acc1'"):
        load_fills(vendored(AUDIT), slot="acc1")
    history = load_fills(vendored(AUDIT), slot="acc4", address="0x" + "ab" * 20)
    assert history.source == "audit:acc4"
    assert {f.address for f in history.fills} == {"0x" + "ab" * 20}
    assert {f.coin for f in history.fills} == {"KAITO"}


def test_user_fills_by_time_answer_of_the_venue(tmp_path: Path) -> None:
    cassette = yaml.safe_load(vendored("hl-real/test_get_user_fills_by_time.yaml").read_text())
    body = cassette["interactions"][0]["response"]["body"]["string"]
    raw = json.loads(body)
    path = tmp_path / "fills.json"
    path.write_text(body)
    fills = user_fills_json(path, "0xB7B6F3CEA3F66BF525F5D8F965F6DBF6D9B017B2")
    assert len(fills) == len(raw) == 500
    oldest = min(raw, key=lambda r: r["time"])
    assert fills[0].time_ms == oldest["time"]
    assert fills[0].address == "0xb7b6f3cea3f66bf525f5d8f965f6dbf6d9b017b2"
    sui = next(f for f in fills if f.hash == raw[0]["hash"] and f.price == Decimal(raw[0]["px"]))
    assert (sui.coin, sui.size, sui.start_position, sui.closed_pnl) == (
        raw[0]["coin"], Decimal(raw[0]["sz"]), Decimal(raw[0]["startPosition"]), Decimal(raw[0]["closedPnl"]),
    )  # fmt: skip
    assert [f.time_ms for f in fills] == sorted(r["time"] for r in raw)
    assert all(f.tid is None for f in fills)  # 2023: the venue had no trade ids yet
    assert len({f.ref for f in fills}) == 500  # yet each fill keeps its own identity
    # (this account often crossed itself: its buy and its sell of one match both start at the same
    # position, so the startPosition chain is not checked here)
    assert load_fills(path).source == "userFills"


def test_fills_straddling_a_millisecond_come_in_position_order(tmp_path: Path) -> None:
    """The venue's tids are not in position order: a close listed before the open it follows."""
    base = {"coin": "ETH", "px": "100.0", "side": "B", "time": 1000, "oid": 1, "hash": "0x1", "crossed": True}
    raws = [
        {**base, "sz": "1.0", "startPosition": "1.0", "dir": "Open Long", "tid": 1},
        {**base, "sz": "1.0", "startPosition": "0.0", "dir": "Open Long", "tid": 2},
    ]
    path = tmp_path / "f.json"
    path.write_text(json.dumps(raws))
    fills = user_fills_json(path, "0x" + "1" * 40)
    assert [f.tid for f in fills] == [2, 1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"coin":"ETH"', r"fill #1: invalid JSON"),
        ("[1]", r"fill #1: a fill must be an object"),
        ('[{"coin":"ETH","sz":"1","side":"B","time":1,"oid":1}]', r"fill #1: missing field 'px'"),
        ('[{"coin":"ETH","px":"x","sz":"1","side":"B","time":1,"oid":1}]', r"fill #1: not a number"),
        ('[{"coin":"ETH","px":"1","sz":"0","side":"B","time":1,"oid":1}]', r"fill #1: .*must be positive"),
        (
            '[{"coin":"ETH","px":"1","sz":"1","side":"Q","time":1,"oid":1}]',
            r"fill #1: 'Q' is not a valid Side",
        ),
    ],
)
def test_malformed_fills_json_names_file_and_fill(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(RecordingError, match=message) as info:
        user_fills_json(path, "0x" + "1" * 40)
    assert str(info.value).startswith(f"{path}: fill #1: ")


def test_malformed_envelope(tmp_path: Path) -> None:
    path = tmp_path / "env.json"
    path.write_text(json.dumps({"queries": [{"slot": "a", "response_count": 2, "fills": []}]}))
    with pytest.raises(RecordingError, match=r"query #1: response_count 2 but 0 fills"):
        audit_queries(path)
    path.write_text(json.dumps({"queries": [{"fills": []}]}))
    with pytest.raises(RecordingError, match=r"query #1: missing field 'slots'"):
        audit_queries(path)


# --------------------------------------------------------------------------- CSV


@shared_data
def test_ui_trade_history_export_reconstructed() -> None:
    path = shared("real/leader_copyscalper_202511/trade_history.csv.gz")
    history = trade_history_csv(path, "0x" + "c" * 40)
    fills = list(history.fills)
    assert len(fills) == 8347
    assert history.inferred == ("side", "start_position", "oid", "tid", "hash", "crossed")
    first = fills[0]  # line 2: 1762962841000,11/12/2025 - 16:54:01,MET,Close Short,0.47276,952,...
    assert (first.time_ms, first.coin, first.direction, first.side) == (
        1762962841000,
        "MET",
        "Close Short",
        Side.BUY,
    )
    assert (first.price, first.size, first.fee, first.closed_pnl) == (
        Decimal("0.47276"), Decimal("952"), Decimal("0.133895"), Decimal("32.338825"),
    )  # fmt: skip
    assert first.crossed  # 0.133895 / 450.06752 = 0.030 %: a taker's rate
    aero = next(f for f in fills if f.coin == "AERO")  # line 4: closedPnl -2.0589239999999998 (a float)
    assert aero.closed_pnl == Decimal("-2.058924")
    assert {f.direction for f in fills} == {
        "Open Long", "Open Short", "Close Long", "Close Short", "Long > Short", "Short > Long",
    }  # "(Price Improved)" dropped  # fmt: skip
    # every direction agrees with the reconstructed position it starts from
    for f in fills:
        start, size = f.start_position, f.size
        agrees = {
            "Open Long": start >= 0,
            "Open Short": start <= 0,
            "Close Long": start >= size,
            "Close Short": start <= -size,
            "Long > Short": 0 < start < size,
            "Short > Long": -size < start < 0,
        }
        assert agrees[f.direction], f
    # the chain is continuous but where the export contradicts itself (counted as restarts)
    assert _breaks(fills) == history.restarts == 11
    # synthetic ids: unique tids, one oid (and hash) per sweep, the same on every load
    assert len({f.tid for f in fills}) == len(fills)
    assert len({f.oid for f in fills}) == len({f.hash for f in fills}) < len(fills)
    assert trade_history_csv(path, "0x" + "c" * 40) == history


@shared_data
def test_ui_export_local_time_column(tmp_path: Path) -> None:
    """Without the added UTC column the export's own local time is read in the given zone."""
    source = shared("real/leader_copyscalper_202511/trade_history.csv.gz")
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(source.read_bytes()).decode())))[:200]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[k for k in rows[0] if k != "time_ms_utc"])
    writer.writeheader()
    writer.writerows({k: v for k, v in r.items() if k != "time_ms_utc"} for r in rows)
    path = tmp_path / "export.csv"
    path.write_text(out.getvalue())
    cet = timezone(timedelta(hours=1))
    history = trade_history_csv(path, "0x" + "c" * 40, tz=cet)
    assert history.inferred[0] == "time_ms"
    assert sorted(f.time_ms for f in history.fills) == sorted(int(r["time_ms_utc"]) for r in rows)
    assert load_fills(path).source == "trade-history-csv"


@shared_data
def test_fill_csv_backups_of_the_venue_fields() -> None:
    whale = load_fills(shared("real/leader_whale_b317_20251209/user_fills.csv.gz"), address="0x" + "b" * 40)
    assert whale.source == "fills-csv"
    assert len(whale.fills) == 966
    first = whale.fills[0]  # ETH,3120.0,0.1,B,2025-12-09 03:46:40.519,66740.7889,Open Long,0.0,0x36d8..
    utc = datetime(2025, 12, 9, 3, 46, 40, 519000, tzinfo=UTC)
    assert first.time_ms == (utc - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    assert (first.price, first.size, first.start_position, first.oid, first.tid, first.crossed) == (
        Decimal("3120.0"), Decimal("0.1"), Decimal("66740.7889"), 263131605475, 443499067212463, False,
    )  # fmt: skip
    assert _chained_within_each_ms(list(whale.fills))
    scorpius = load_fills(shared("real/account_scorpius_202606/fills_2026-06.csv"))
    assert len(scorpius.fills) == 182
    btc = scorpius.fills[0]  # fill-205791279505247,...,1781326295955,...,BTC,Open Long,B,63614.0,0.00031
    assert (btc.time_ms, btc.coin, btc.price, btc.size, btc.tid, btc.fee) == (
        1781326295955, "BTC", Decimal("63614.0"), Decimal("0.00031"), 205791279505247, Decimal("0.002958"),
    )  # fmt: skip
    by_coin: dict[str, int] = defaultdict(int)
    for f in scorpius.fills:
        by_coin[f.coin] += 1
    assert by_coin["BTC"] == 49
    assert by_coin["HYPE"] == 14


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("1762962847000,x,UNI,Sideways,7.79,109.5,853.07,0.058,-14.37", "unknown direction 'Sideways'"),
        ("1762962847000,x,UNI,Close Long,7.79,-1,853.07,0.058,-14.37", "px and sz must be positive"),
        ("1762962847000,x,UNI,Close Long,7.79,1,853.07,abc,-14.37", "not a number"),
    ],
)
def test_malformed_ui_export_names_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    header = "time_ms_utc,time,coin,dir,px,sz,ntl,fee,closedPnl\n"
    good = "1762962841000,x,MET,Close Short,0.47276,952,450.06752,0.133895,32.338825\n"
    path = tmp_path / "export.csv"
    path.write_text(header + good + row + "\n")
    with pytest.raises(RecordingError, match=message) as info:
        trade_history_csv(path, "0x" + "c" * 40)
    assert str(info.value).startswith(f"{path}: line 3: ")


def test_ui_export_start_position_chain(tmp_path: Path) -> None:
    """Hand-made export: opens from flat, a flip, a close; then a contradiction restarts the chain."""
    header = "time_ms_utc,time,coin,dir,px,sz,ntl,fee,closedPnl\n"
    rows = [
        "1000,x,ETH,Close Long,10,2,20,0.001,1",  # at least 2 long before: starts at 2
        "2000,x,ETH,Open Short,10,3,30,0.009,0",
        "3000,x,ETH,Short > Long,10,5,50,0.001,0",  # -3 -> +2
        "4000,x,ETH,Close Long,10,2,20,0.001,0",  # +2 -> 0
        "5000,x,ETH,Close Short,10,1,10,0.001,0",  # contradicts flat: a fill is missing
        "6000,x,ETH,Open Long,10,1,10,0.001,0",
    ]
    path = tmp_path / "export.csv"
    path.write_text(header + "\n".join(rows) + "\n")
    history = trade_history_csv(path, "0x" + "c" * 40)
    assert [f.start_position for f in history.fills] == [2, 0, -3, 2, -1, 0]
    assert history.restarts == 1
    assert [f.crossed for f in history.fills] == [False, True, False, False, False, False]
