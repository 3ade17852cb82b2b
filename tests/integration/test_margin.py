"""Leverage and margin through the SDK: cross/isolated leverage, isolated margin, HIP-3 (isolated only)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal

import pytest
from support import Trader, Venue, dec, serve_venue

DEFAULT_OK = {"status": "ok", "response": {"type": "default"}}
GTC = {"limit": {"tif": "Gtc"}}


@pytest.fixture(scope="module")
def venue() -> Iterator[Venue]:
    """This module's SDK clients also load the `xyz` builder dex."""
    with serve_venue(perp_dexs=["", "xyz"]) as v:
        yield v


def test_update_leverage_cross_shows_in_user_state(trader: Trader) -> None:
    assert trader.exchange.update_leverage(10, "ETH", is_cross=True) == DEFAULT_OK
    trader.exchange.market_open("ETH", True, 0.2)
    position = trader.positions()["ETH"]
    assert position["leverage"] == {"type": "cross", "value": 10}
    assert position["maxLeverage"] == 25
    assert dec(position["marginUsed"]) == dec(position["positionValue"]) / 10
    state = trader.state()
    assert dec(state["crossMarginSummary"]["totalMarginUsed"]) == dec(position["marginUsed"])

    # lowering leverage on an open cross position raises the margin it uses
    assert trader.exchange.update_leverage(4, "ETH", is_cross=True) == DEFAULT_OK
    position = trader.positions()["ETH"]
    assert position["leverage"] == {"type": "cross", "value": 4}
    assert dec(position["marginUsed"]) == dec(position["positionValue"]) / 4


def test_leverage_limits_and_mode_switch_are_refused(trader: Trader) -> None:
    over = trader.exchange.update_leverage(26, "ETH")  # ETH max leverage is 25
    assert over["status"] == "err"
    assert "Max leverage is 25" in over["response"]
    zero = trader.exchange.update_leverage(0, "ETH")
    assert zero["status"] == "err"

    trader.exchange.market_open("ETH", False, 0.1)
    before = trader.snapshot()
    switched = trader.exchange.update_leverage(5, "ETH", is_cross=False)
    assert switched == {"status": "err", "response": "Cannot switch leverage type with open position."}
    assert trader.snapshot() == before
    assert trader.positions()["ETH"]["leverage"] == {"type": "cross", "value": 20}


def test_isolated_leverage_and_margin(trader: Trader) -> None:
    assert trader.exchange.update_leverage(5, "SOL", is_cross=False) == DEFAULT_OK
    (status,) = trader.exchange.market_open("SOL", True, 10)["response"]["data"]["statuses"]
    avg_px = dec(status["filled"]["avgPx"])
    (fill,) = trader.info.user_fills(trader.address)
    fee = dec(fill["fee"])

    position = trader.positions()["SOL"]
    assert position["leverage"]["type"] == "isolated"
    assert position["leverage"]["value"] == 5
    margin = avg_px * 10 / 5
    assert dec(position["leverage"]["rawUsd"]) == margin - avg_px * 10
    upnl = dec(position["unrealizedPnl"])
    assert dec(position["marginUsed"]) == margin + upnl
    assert position["liquidationPx"] is not None
    assert Decimal(0) < dec(position["liquidationPx"]) < avg_px
    state = trader.state()
    assert dec(state["withdrawable"]) == Decimal(10000) - margin - fee
    assert dec(state["marginSummary"]["accountValue"]) == Decimal(10000) - fee + upnl

    # add $100 of margin: it moves from the cross balance into the position
    assert trader.exchange.update_isolated_margin(100, "SOL") == DEFAULT_OK
    position = trader.positions()["SOL"]
    assert dec(position["marginUsed"]) == margin + 100 + upnl
    assert dec(trader.state()["withdrawable"]) == Decimal(10000) - margin - fee - 100
    liq_after_add = dec(position["liquidationPx"])

    # remove $50 again
    assert trader.exchange.update_isolated_margin(-50, "SOL") == DEFAULT_OK
    position = trader.positions()["SOL"]
    assert dec(position["marginUsed"]) == margin + 50 + upnl
    assert dec(position["liquidationPx"]) > liq_after_add

    # removing more than the position can spare is refused and changes nothing
    before = trader.snapshot()
    refused = trader.exchange.update_isolated_margin(-1000, "SOL")
    assert refused == {"status": "err", "response": "Insufficient margin to remove."}
    assert trader.snapshot() == before


def test_isolated_margin_without_isolated_position_is_refused(trader: Trader) -> None:
    before = trader.snapshot()
    result = trader.exchange.update_isolated_margin(10, "BTC")
    assert result["status"] == "err"
    assert trader.snapshot() == before


def test_hip3_order_is_isolated_on_its_own_dex(venue: Venue, trader: Trader) -> None:
    assert trader.info.name_to_asset("xyz:TSLA") == 110000
    assert trader.exchange.info.name_to_asset("xyz:TSLA") == 110000
    mids = trader.info.all_mids("xyz")
    assert set(mids) == {"xyz:TSLA", "xyz:NVDA"}

    # cross margin is refused on an isolated-only HIP-3 asset, and nothing changes
    before = trader.snapshot("xyz")
    cross = trader.exchange.update_leverage(5, "xyz:TSLA", is_cross=True)
    assert cross == {"status": "err", "response": "Cross margin is not allowed for this asset."}
    assert trader.snapshot("xyz") == before
    assert trader.exchange.update_leverage(4, "xyz:TSLA", is_cross=False) == DEFAULT_OK

    (status,) = trader.exchange.market_open("xyz:TSLA", True, 1.5)["response"]["data"]["statuses"]
    avg_px = dec(status["filled"]["avgPx"])
    positions = trader.positions("xyz")
    assert set(positions) == {"xyz:TSLA"}
    tsla = positions["xyz:TSLA"]
    assert tsla["szi"] == "1.5"
    assert tsla["leverage"]["type"] == "isolated"
    assert tsla["leverage"]["value"] == 4
    assert tsla["maxLeverage"] == 10
    assert trader.positions("") == {}  # the main dex does not show it
    (fill,) = trader.info.user_fills(trader.address)
    assert fill["coin"] == "xyz:TSLA"
    # HIP-3 taker fee: twice the validator schedule (0.09 %)
    assert dec(fill["fee"]) == (avg_px * Decimal("1.5") * Decimal("0.0009")).quantize(
        Decimal("0.000001"), ROUND_HALF_UP
    )

    bid = float(mids["xyz:TSLA"]) * 0.9
    result = trader.exchange.order("xyz:TSLA", True, 1, round(bid, 1), GTC)
    oid = result["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert [o["oid"] for o in trader.open_orders("xyz")] == [oid]
    assert trader.open_orders("") == []
    assert trader.open_orders("xyz")[0]["coin"] == "xyz:TSLA"
    assert trader.exchange.cancel("xyz:TSLA", oid)["response"]["data"]["statuses"] == ["success"]

    closed = trader.exchange.market_close("xyz:TSLA")
    assert closed["response"]["data"]["statuses"][0]["filled"]["totalSz"] == "1.5"
    assert trader.positions("xyz") == {}
