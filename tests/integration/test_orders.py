"""Order lifecycle through the official SDK: rest, fill, cancel, modify, status queries, market orders."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hyperliquid.utils.types import Cloid
from support import Trader, Venue, dec

ETH = 1  # asset id of ETH on the main dex
GTC = {"limit": {"tif": "Gtc"}}
IOC = {"limit": {"tif": "Ioc"}}

OPEN_ORDER_KEYS = {"coin", "side", "limitPx", "sz", "oid", "timestamp", "origSz"}
FRONTEND_KEYS = OPEN_ORDER_KEYS | {
    "triggerCondition", "isTrigger", "triggerPx", "children", "isPositionTpsl", "reduceOnly", "orderType",
    "tif", "cloid",
}  # fmt: skip


def _resting_oid(result: dict[str, Any]) -> int:
    assert result["status"] == "ok", result
    assert result["response"]["type"] == "order"
    (status,) = result["response"]["data"]["statuses"]
    assert set(status) == {"resting"}, status
    oid = status["resting"]["oid"]
    assert isinstance(oid, int)
    return oid


def test_limit_order_rests_with_open_order_shapes(venue: Venue, trader: Trader) -> None:
    bid, _ = venue.book("ETH")
    px = round(bid * 0.9)  # far below the book: rests
    oid = _resting_oid(trader.exchange.order("ETH", True, 0.01, px, GTC))

    orders = trader.open_orders()
    assert len(orders) == 1
    order = orders[0]
    assert set(order) == OPEN_ORDER_KEYS
    assert order["coin"] == "ETH"
    assert order["side"] == "B"
    assert dec(order["limitPx"]) == px
    assert order["sz"] == order["origSz"] == "0.01"
    assert order["oid"] == oid
    assert order["timestamp"] == venue.now()  # stepped clock: the order was stamped "now"

    (front,) = trader.info.frontend_open_orders(trader.address)
    assert set(front) == FRONTEND_KEYS
    assert front["oid"] == oid
    assert front["orderType"] == "Limit"
    assert front["tif"] == "Gtc"
    assert front["triggerCondition"] == "N/A"
    assert front["isTrigger"] is False
    assert front["triggerPx"] == "0.0"
    assert front["children"] == []
    assert front["isPositionTpsl"] is False
    assert front["reduceOnly"] is False
    assert front["cloid"] is None

    # The resting buy reserves margin: 0.01 * px / 20x (default cross leverage).
    state = trader.state()
    assert dec(state["withdrawable"]) == Decimal(10000) - Decimal(px) * Decimal("0.01") / 20
    assert state["assetPositions"] == []


def test_order_status_by_oid_then_cancel(venue: Venue, trader: Trader) -> None:
    bid, _ = venue.book("ETH")
    px = round(bid * 0.9)
    oid = _resting_oid(trader.exchange.order("ETH", True, 0.02, px, GTC))

    status = trader.info.query_order_by_oid(trader.address, oid)
    assert status["status"] == "order"
    assert status["order"]["status"] == "open"
    assert isinstance(status["order"]["statusTimestamp"], int)
    assert status["order"]["order"]["oid"] == oid
    assert status["order"]["order"]["sz"] == "0.02"
    assert status["order"]["order"]["orderType"] == "Limit"

    result = trader.exchange.cancel("ETH", oid)
    assert result == {"status": "ok", "response": {"type": "cancel", "data": {"statuses": ["success"]}}}
    assert trader.open_orders() == []
    assert trader.info.query_order_by_oid(trader.address, oid)["order"]["status"] == "canceled"
    assert dec(trader.state()["withdrawable"]) == 10000  # the reserved margin is released

    again = trader.exchange.cancel("ETH", oid)
    assert again["response"]["data"]["statuses"] == [
        {"error": f"Order was never placed, already canceled, or filled. asset={ETH}"}
    ]


def test_order_status_unknown_oid_and_cloid(venue: Venue, trader: Trader) -> None:
    assert trader.info.query_order_by_oid(trader.address, 999_999_999) == {"status": "unknownOid"}
    assert trader.info.query_order_by_cloid(trader.address, Cloid.from_int(0xDEAD)) == {
        "status": "unknownOid"
    }
    # another user's order is unknown to me
    other = venue.trader("order-status-other")
    bid, _ = venue.book("ETH")
    oid = _resting_oid(other.exchange.order("ETH", True, 0.01, round(bid * 0.9), GTC))
    assert trader.info.query_order_by_oid(trader.address, oid) == {"status": "unknownOid"}
    assert other.exchange.cancel("ETH", oid)["response"]["data"]["statuses"] == ["success"]


def test_cloid_order_status_and_cancel_by_cloid(venue: Venue, trader: Trader) -> None:
    cloid = Cloid.from_int(0x1234_5678)
    bid, _ = venue.book("ETH")
    result = trader.exchange.order("ETH", True, 0.01, round(bid * 0.9), GTC, cloid=cloid)
    (status,) = result["response"]["data"]["statuses"]
    assert status["resting"]["cloid"] == cloid.to_raw()
    oid = status["resting"]["oid"]

    by_cloid = trader.info.query_order_by_cloid(trader.address, cloid)
    assert by_cloid["status"] == "order"
    assert by_cloid["order"]["order"]["oid"] == oid
    assert by_cloid["order"]["order"]["cloid"] == cloid.to_raw()
    assert trader.open_orders()[0]["cloid"] == cloid.to_raw()

    result = trader.exchange.cancel_by_cloid("ETH", cloid)
    assert result["response"]["data"]["statuses"] == ["success"]
    assert trader.open_orders() == []
    assert trader.info.query_order_by_cloid(trader.address, cloid)["order"]["status"] == "canceled"
    again = trader.exchange.cancel_by_cloid("ETH", cloid)
    assert "error" in again["response"]["data"]["statuses"][0]


def test_ioc_fills_against_the_book(venue: Venue, trader: Trader) -> None:
    book = venue.info_request({"type": "l2Book", "coin": "ETH"})
    best_ask = book["levels"][1][0]
    assert dec(best_ask["sz"]) >= Decimal("0.5")  # so the whole order fills at the best ask
    limit = round(float(best_ask["px"]) * 1.01)

    result = trader.exchange.order("ETH", True, 0.5, limit, IOC)
    (status,) = result["response"]["data"]["statuses"]
    filled = status["filled"]
    assert filled["totalSz"] == "0.5"
    assert dec(filled["avgPx"]) == dec(best_ask["px"])
    assert isinstance(filled["oid"], int)

    (fill,) = trader.info.user_fills(trader.address)
    assert fill["coin"] == "ETH"
    assert fill["side"] == "B"
    assert dec(fill["px"]) == dec(best_ask["px"])
    assert fill["sz"] == "0.5"
    assert fill["dir"] == "Open Long"
    assert fill["startPosition"] == "0.0"
    assert fill["crossed"] is True
    assert fill["oid"] == filled["oid"]
    assert dec(fill["closedPnl"]) == 0
    ntl = dec(best_ask["px"]) * Decimal("0.5")
    assert dec(fill["fee"]) == (ntl * Decimal("0.00045")).quantize(Decimal("0.000001"), ROUND_HALF_UP)
    assert fill["feeToken"] == "USDC"

    position = trader.positions()["ETH"]
    assert position["szi"] == "0.5"
    assert dec(position["entryPx"]) == dec(best_ask["px"])
    assert position["leverage"] == {"type": "cross", "value": 20}
    state = trader.state()
    mark_value = dec(position["positionValue"])
    upnl = dec(position["unrealizedPnl"])
    assert upnl == mark_value - ntl
    assert dec(state["marginSummary"]["accountValue"]) == Decimal(10000) - dec(fill["fee"]) + upnl
    assert trader.info.query_order_by_oid(trader.address, filled["oid"])["order"]["status"] == "filled"


def test_ioc_without_liquidity_is_rejected(venue: Venue, trader: Trader) -> None:
    bid, _ = venue.book("ETH")
    result = trader.exchange.order("ETH", True, 0.01, round(bid * 0.95), IOC)
    assert result["status"] == "ok"
    assert result["response"]["data"]["statuses"] == [
        {"error": f"Order could not immediately match against any resting orders. asset={ETH}"}
    ]
    assert trader.positions() == {}
    assert trader.open_orders() == []
    assert trader.info.user_fills(trader.address) == []


def test_gtc_crossing_order_fills_then_rests_remainder(venue: Venue, trader: Trader) -> None:
    """A Gtc buy above the best ask takes the ask and rests what is left at its limit price."""
    book = venue.info_request({"type": "l2Book", "coin": "ETH"})
    ask0 = book["levels"][1][0]
    size = dec(ask0["sz"]) + Decimal("0.1")  # more than the best level
    venue.fund(trader.address, str(int(size * dec(ask0["px"]) / 10)))  # a real best level is ~$0.3M
    # limit at the best ask: only that level trades, the rest rests at the best ask price
    result = trader.exchange.order("ETH", True, float(size), float(ask0["px"]), GTC)
    (status,) = result["response"]["data"]["statuses"]
    oid = status["resting"]["oid"]
    (order,) = trader.open_orders()
    assert order["oid"] == oid
    assert order["sz"] == "0.1"
    assert dec(order["origSz"]) == size
    assert trader.positions()["ETH"]["szi"] == ask0["sz"]
    assert trader.info.query_order_by_oid(trader.address, oid)["order"]["status"] == "open"
    assert trader.exchange.cancel("ETH", oid)["response"]["data"]["statuses"] == ["success"]
    assert (
        trader.exchange.market_close("ETH")["response"]["data"]["statuses"][0]["filled"]["totalSz"]
        == ask0["sz"]
    )


def test_modify_by_oid(venue: Venue, trader: Trader) -> None:
    bid, _ = venue.book("ETH")
    oid = _resting_oid(trader.exchange.order("ETH", True, 0.01, round(bid * 0.9), GTC))
    new_px = round(bid * 0.85)

    result = trader.exchange.modify_order(oid, "ETH", True, 0.02, new_px, GTC)
    new_oid = _resting_oid(result)

    (order,) = trader.open_orders()
    assert order["oid"] == new_oid
    assert order["sz"] == "0.02"
    assert dec(order["limitPx"]) == new_px
    status = trader.info.query_order_by_oid(trader.address, new_oid)
    assert status["order"]["status"] == "open"
    assert dec(status["order"]["order"]["limitPx"]) == new_px
    if new_oid != oid:
        assert trader.info.query_order_by_oid(trader.address, oid)["order"]["status"] == "canceled"
    # margin now reflects the modified order only
    expected = Decimal(10000) - Decimal(new_px) * Decimal("0.02") / 20
    assert dec(trader.state()["withdrawable"]) == expected

    unknown = trader.exchange.modify_order(987_654_321, "ETH", True, 0.02, new_px, GTC)
    assert "error" in unknown["response"]["data"]["statuses"][0]
    assert trader.open_orders() == [order]


def test_modify_by_cloid(venue: Venue, trader: Trader) -> None:
    cloid = Cloid.from_int(0xC10D)
    bid, _ = venue.book("ETH")
    trader.exchange.order("ETH", False, 0.01, round(bid * 1.1), GTC, cloid=cloid)
    new_px = round(bid * 1.2)

    result = trader.exchange.modify_order(cloid, "ETH", False, 0.03, new_px, GTC, cloid=cloid)
    new_oid = _resting_oid(result)
    (order,) = trader.open_orders()
    assert order["oid"] == new_oid
    assert order["side"] == "A"
    assert order["sz"] == "0.03"
    assert dec(order["limitPx"]) == new_px
    assert order["cloid"] == cloid.to_raw()
    by_cloid = trader.info.query_order_by_cloid(trader.address, cloid)
    assert by_cloid["order"]["status"] == "open"
    assert by_cloid["order"]["order"]["oid"] == new_oid
    assert dec(by_cloid["order"]["order"]["limitPx"]) == new_px


def test_modify_into_the_book_fills(venue: Venue, trader: Trader) -> None:
    bid, ask = venue.book("ETH")
    oid = _resting_oid(trader.exchange.order("ETH", True, 0.01, round(bid * 0.9), GTC))
    result = trader.exchange.modify_order(oid, "ETH", True, 0.01, round(ask * 1.01), GTC)
    (status,) = result["response"]["data"]["statuses"]
    assert status["filled"]["totalSz"] == "0.01"
    assert dec(status["filled"]["avgPx"]) == Decimal(str(ask))
    assert trader.open_orders() == []
    assert trader.positions()["ETH"]["szi"] == "0.01"


def test_market_open_and_close(venue: Venue, trader: Trader) -> None:
    opened = trader.exchange.market_open("ETH", False, 0.2)
    (status,) = opened["response"]["data"]["statuses"]
    assert status["filled"]["totalSz"] == "0.2"
    position = trader.positions()["ETH"]
    assert position["szi"] == "-0.2"
    assert dec(position["entryPx"]) == dec(status["filled"]["avgPx"])

    closed = trader.exchange.market_close("ETH")
    (status,) = closed["response"]["data"]["statuses"]
    assert status["filled"]["totalSz"] == "0.2"
    assert trader.positions() == {}

    fills = trader.info.user_fills(trader.address)  # newest first
    assert [f["dir"] for f in fills] == ["Close Short", "Open Short"]
    assert [f["side"] for f in fills] == ["B", "A"]
    assert fills[0]["startPosition"] == "-0.2"
    expected_pnl = (dec(fills[1]["px"]) - dec(fills[0]["px"])) * Decimal("0.2")
    assert dec(fills[0]["closedPnl"]) == expected_pnl
    pnl = sum(dec(f["closedPnl"]) - dec(f["fee"]) for f in fills)
    state = trader.state()
    assert dec(state["marginSummary"]["accountValue"]) == Decimal(10000) + pnl
    assert dec(state["withdrawable"]) == Decimal(10000) + pnl


def test_market_close_partial_size(venue: Venue, trader: Trader) -> None:
    trader.exchange.market_open("SOL", True, 1.5)
    result = trader.exchange.market_close("SOL", sz=0.5)
    assert result["response"]["data"]["statuses"][0]["filled"]["totalSz"] == "0.5"
    assert trader.positions()["SOL"]["szi"] == "1.0"
    assert trader.info.user_fills(trader.address)[0]["dir"] == "Close Long"
