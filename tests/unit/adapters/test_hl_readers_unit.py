"""REST readers against a fake client: fill pagination, merged snapshots, open orders, mids."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hyperfollow.adapters.hyperliquid.account import (
    FILLS_PAGE,
    fetch_fills,
    fetch_open_orders,
    fetch_snapshot,
)
from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.adapters.hyperliquid.market import HyperliquidMarketData, InstrumentDirectory

USER = "0x" + "ab" * 20
CONFIG = HyperliquidConfig(base_url="http://127.0.0.1:9", account_address=USER, secret_key="0x" + "11" * 32)


def raw_fill(tid: int, time_ms: int) -> dict[str, Any]:
    return {
        "coin": "ETH", "px": "2000.0", "sz": "0.01", "side": "B", "time": time_ms, "startPosition": "0.0",
        "dir": "Open Long", "closedPnl": "0.0", "hash": f"0x{tid:064x}", "oid": tid, "crossed": True,
        "fee": "0.01", "tid": tid, "feeToken": "USDC",
    }  # fmt: skip


class Venue:
    """Answers userFillsByTime as the venue does: the first FILLS_PAGE fills from startTime on."""

    def __init__(self, fills: list[dict[str, Any]]) -> None:
        self.fills = fills
        self.requests: list[dict[str, Any]] = []

    @property
    def config(self) -> HyperliquidConfig:
        return CONFIG

    async def info(self, payload: dict[str, Any]) -> Any:
        self.requests.append(payload)
        kind = payload["type"]
        if kind == "userFillsByTime":
            assert payload["user"] == USER
            return [f for f in self.fills if f["time"] >= payload["startTime"]][:FILLS_PAGE]
        if kind == "clearinghouseState":
            dex = payload["dex"]
            coin, value = ("ETH", "1000.5") if dex == "" else ("xyz:TSLA", "200.25")
            position = {"coin": coin, "szi": "1.0", "leverage": {"type": "cross", "value": 5}}
            return {
                "assetPositions": [{"type": "oneWay", "position": position}],
                "marginSummary": {"accountValue": value, "totalMarginUsed": "10.0"},
                "withdrawable": "900.0" if dex == "" else "0.0",
                "time": 5 if dex == "" else 7,
            }
        if kind == "frontendOpenOrders":
            coin = "ETH" if payload["dex"] == "" else "xyz:TSLA"
            oid = 1 if payload["dex"] == "" else 2
            return [
                {"coin": coin, "side": "B", "limitPx": "1.0", "sz": "1.0", "oid": oid, "timestamp": 10 - oid}
            ]
        if kind == "perpDexs":
            return [None, {"name": "xyz"}]
        if kind == "meta":
            name = "ETH" if payload["dex"] == "" else "xyz:TSLA"
            return {"universe": [{"name": name, "szDecimals": 2}]}
        if kind == "allMids":
            return (
                {"ETH": "2000.5", "@1": "0.1", "PURR/USDC": "0.2"}
                if payload["dex"] == ""
                else {"xyz:TSLA": "250.0"}
            )
        raise AssertionError(payload)


async def test_fills_are_paged_past_the_page_limit_without_repeats() -> None:
    # 4,500 fills, ten per millisecond: pages overlap on their last millisecond
    raws = [raw_fill(tid, 1_000 + tid // 10) for tid in range(4_500)]
    venue = Venue(raws)
    fills = await fetch_fills(venue, USER.upper().replace("0X", "0x"), 1_000)
    assert [f.tid for f in fills] == list(range(4_500))
    assert len(venue.requests) == 3
    assert [r["startTime"] for r in venue.requests] == [1_000, 1_199, 1_398]


async def test_fills_page_stuck_in_one_millisecond_moves_on() -> None:
    raws = [raw_fill(tid, 1_000) for tid in range(FILLS_PAGE)] + [raw_fill(FILLS_PAGE + 1, 1_001)]
    venue = Venue(raws)
    fills = await fetch_fills(venue, USER, 1_000)
    assert len(fills) == FILLS_PAGE + 1
    assert [r["startTime"] for r in venue.requests] == [1_000, 1_001]


async def test_fills_from_an_empty_account() -> None:
    venue = Venue([])
    assert await fetch_fills(venue, USER, 0) == []
    assert len(venue.requests) == 1


async def test_snapshot_merges_every_dex_and_orders_come_from_every_dex() -> None:
    venue = Venue([])
    snapshot = await fetch_snapshot(venue, ["", "xyz"], USER)
    assert snapshot.equity == Decimal("1200.75")
    assert snapshot.withdrawable == Decimal("900.0")
    assert snapshot.margin_used == Decimal("20.0")
    assert snapshot.time_ms == 7
    assert [p.coin for p in snapshot.positions] == ["ETH", "xyz:TSLA"]
    orders = await fetch_open_orders(venue, ["", "xyz"], USER)
    assert [(o.coin, o.oid) for o in orders] == [("xyz:TSLA", 2), ("ETH", 1)]  # oldest first


async def test_mids_cover_every_dex_without_spot() -> None:
    venue = Venue([])
    directory = InstrumentDirectory(venue)
    await directory.load()
    market = HyperliquidMarketData(venue, directory, streams=None)  # type: ignore[arg-type]
    assert await market.mids() == {"ETH": Decimal("2000.5"), "xyz:TSLA": Decimal("250.0")}
    assert [i.coin for i in await market.instruments()] == ["ETH", "xyz:TSLA"]
