"""Leaderboard loaders: the stats leaderboard JSON, whale-tracker snapshots and their CSV time series."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from hyperfollow.backtest.data.leaderboard import (
    WindowPerformance,
    leaderboard_csv,
    market_totals_csv,
    positions_csv,
    stats_leaderboard,
    whale_snapshot,
)
from hyperfollow.recordings import RecordingError
from shared_data import shared, shared_data

WHALES = "real/leaderboard_whales_202602"


@shared_data
def test_stats_leaderboard_rows_as_recorded() -> None:
    rows = list(
        stats_leaderboard(shared("real/leaderboard_raw_excerpt/stats_leaderboard_excerpt_5rows.json"))
    )
    assert len(rows) == 5
    first = rows[0]
    assert first.address == "0x85ecf584f25db6f146718b86d493e33c5af72052"
    assert first.account_value == Decimal("63346133.5276160091")
    assert first.window("day") == WindowPerformance(
        "day", Decimal("335839.8303929999"), Decimal("0.0051449408"), Decimal("542162193.9700000286")
    )
    assert [w.window for w in first.windows] == ["day", "week", "month", "allTime"]
    assert first.display_name is None
    assert rows[-1].display_name is not None  # row #10 of the source: the first with a name


@shared_data
def test_whale_snapshot_and_time_series() -> None:
    snap = whale_snapshot(shared(f"{WHALES}/raw_snapshot_2026-02-10T05.json.gz"))
    assert snap.totals.snapshot_ms == 1770702523690  # 2026-02-10T05:48:43.690318Z
    assert (snap.totals.total_oi, snap.totals.active_markets, snap.totals.total_traders) == (
        Decimal("4153301637.320184"), 228, 30593,
    )  # fmt: skip
    assert [e.list for e in snap.entries].count("daily") == 200
    second = snap.entries[1]
    assert (second.rank, second.address, second.pnl) == (
        2, "0x40e7f70d8c5dbf7b27dab33ed826484b3c657e56", Decimal("2508064.268789"),
    )  # fmt: skip
    hype = next(p for p in snap.positions if p.address == second.address and p.coin == "HYPE")
    assert (hype.signed_size, hype.entry_px, hype.liquidation_px) == (
        Decimal("-1033358.35"), Decimal("24.8681"), Decimal("45.7068493447"),
    )  # fmt: skip
    traders = list(leaderboard_csv(shared(f"{WHALES}/traders.csv.gz")))
    assert len(traders) == 14_400
    assert (traders[1].snapshot_ms, traders[1].rank, traders[1].account_value, traders[1].n_positions) == (
        1770197667568, 2, Decimal("22739537.14923"), 3,
    )  # fmt: skip
    positions = list(positions_csv(shared(f"{WHALES}/positions.csv.gz")))
    assert len(positions) == 61_375
    assert (positions[0].coin, positions[0].signed_size, positions[0].leverage) == (
        "BTC", Decimal("-116.7339"), Decimal("40.0"),
    )  # fmt: skip
    totals = list(market_totals_csv(shared(f"{WHALES}/snapshots.csv")))
    assert len(totals) == 24
    assert totals[0].commit == "ccdc426c2767c5518e12355543b0b0225874d39a"


def test_malformed_leaderboard_names_file_and_row(tmp_path: Path) -> None:
    good = {"ethAddress": "0x" + "1" * 40, "accountValue": "1", "windowPerformances": [], "prize": 0}
    path = tmp_path / "board.json"
    path.write_text(json.dumps({"leaderboardRows": [good, {**good, "ethAddress": "bob"}]}))
    with pytest.raises(RecordingError, match=r"row #2: not a 0x address"):
        list(stats_leaderboard(path))
    path = tmp_path / "positions.csv"
    path.write_text(
        "snapshot_utc,address,coin,direction,size,entryPx,leverage,positionValue,unrealizedPnl,liquidationPx\n"
        f"2026-02-04T09:34:27Z,0x{'1' * 40},BTC,Sideways,1,1,1,1,1,\n"
    )
    with pytest.raises(RecordingError, match=r"line 2: direction must be Long or Short"):
        list(positions_csv(path))
