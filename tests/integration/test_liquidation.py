"""Liquidation: a highly levered wallet, a price shock against it, and what the venue reports."""

from __future__ import annotations

from decimal import Decimal

from support import Inbox, Venue, dec

DEFAULT_OK = {"status": "ok", "response": {"type": "default"}}
GTC = {"limit": {"tif": "Gtc"}}


def test_cross_liquidation(fresh_venue: Venue) -> None:
    venue = fresh_venue
    degen = venue.trader("degen", usd="1000")
    careful = venue.trader("careful", usd="100000")
    assert degen.exchange.update_leverage(25, "ETH") == DEFAULT_OK
    opened = degen.exchange.market_open("ETH", True, 5)  # ~$17,500 on $1,000
    assert opened["response"]["data"]["statuses"][0]["filled"]["totalSz"] == "5.0"
    careful.exchange.market_open("ETH", True, 1)  # $3,500 on $100,000: survives
    sol_px = round(venue.mid("SOL") * 0.9)
    sol_oid = degen.exchange.order("SOL", True, 1, sol_px, GTC)["response"]["data"]["statuses"][0]["resting"][
        "oid"
    ]
    position = degen.positions()["ETH"]
    liq_px = dec(position["liquidationPx"])
    assert Decimal(3300) < liq_px < Decimal(3500)

    info = venue.ws_info()
    events, fills = Inbox(), Inbox()
    info.subscribe({"type": "userEvents", "user": degen.address}, events)
    info.subscribe({"type": "userFills", "user": degen.address}, fills)
    fills.wait(what="userFills snapshot")

    venue.set_price("ETH", "3350")  # below the liquidation price

    assert degen.positions() == {}
    liquidation_fill = degen.info.user_fills(degen.address)[0]
    assert liquidation_fill["dir"] == "Close Long"
    assert liquidation_fill["sz"] == "5.0"
    assert liquidation_fill["liquidation"]["liquidatedUser"] == degen.user
    assert liquidation_fill["liquidation"]["method"] == "market"
    assert dec(liquidation_fill["liquidation"]["markPx"]) < liq_px
    assert dec(liquidation_fill["closedPnl"]) < 0
    assert degen.open_orders() == []
    assert degen.info.query_order_by_oid(degen.address, sol_oid)["order"]["status"] == "liquidatedCanceled"
    assert dec(degen.state()["marginSummary"]["accountValue"]) >= 0

    event = events.wait(lambda m: "liquidation" in m["data"], what="userEvents liquidation")
    assert event["channel"] == "user"
    liquidation = event["data"]["liquidation"]
    assert set(liquidation) == {"lid", "liquidator", "liquidated_user", "liquidated_ntl_pos",
                                "liquidated_account_value"}  # fmt: skip
    assert liquidation["liquidated_user"] == degen.user
    assert dec(liquidation["liquidated_ntl_pos"]) == Decimal(3350) * 5
    assert dec(liquidation["liquidated_account_value"]) < dec(liquidation["liquidated_ntl_pos"]) / 50
    streamed = fills.wait(lambda m: not m["data"].get("isSnapshot"), what="userFills with the liquidation")
    assert streamed["data"]["fills"][-1] == liquidation_fill

    assert careful.positions()["ETH"]["szi"] == "1.0"
    assert all("liquidation" not in f for f in careful.info.user_fills(careful.address))


def test_isolated_liquidation_spares_the_cross_account(fresh_venue: Venue) -> None:
    venue = fresh_venue
    trader = venue.trader("isolated-degen", usd="5000")
    assert trader.exchange.update_leverage(20, "SOL", is_cross=False) == DEFAULT_OK
    trader.exchange.market_open("SOL", True, 100)  # ~$18,000 isolated on ~$900 of margin
    trader.exchange.market_open("ETH", True, 0.5)  # cross, modest
    sol = trader.positions()["SOL"]
    assert sol["leverage"]["type"] == "isolated"
    liq_px = dec(sol["liquidationPx"])
    assert Decimal(170) < liq_px < Decimal(180)

    cross_before = trader.state()["crossMarginSummary"]

    venue.set_price("SOL", "168")  # a gap through the bankruptcy price: the loss exceeds the margin
    positions = trader.positions()
    assert "SOL" not in positions
    assert positions["ETH"]["szi"] == "0.5"
    fill = trader.info.user_fills(trader.address)[0]
    assert fill["coin"] == "SOL"
    assert fill["liquidation"]["liquidatedUser"] == trader.user
    # only the isolated margin was lost: the cross account is exactly as it was
    assert trader.state()["crossMarginSummary"] == cross_before
