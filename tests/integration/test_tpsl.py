"""TP/SL trigger orders: standalone reduce-only triggers, normalTpsl groups and positionTpsl.

Every test owns its exchange: prices are moved with `/sim/price`, which also moves the book and mark.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from support import Trader, Venue, dec

GTC = {"limit": {"tif": "Gtc"}}


def _sl(px: float, is_market: bool = True) -> dict[str, Any]:
    return {"trigger": {"triggerPx": px, "isMarket": is_market, "tpsl": "sl"}}


def _tp(px: float, is_market: bool = True) -> dict[str, Any]:
    return {"trigger": {"triggerPx": px, "isMarket": is_market, "tpsl": "tp"}}


def _status(result: dict[str, Any]) -> list[Any]:
    assert result["status"] == "ok", result
    return result["response"]["data"]["statuses"]  # type: ignore[no-any-return]


def _long_eth(trader: Trader, sz: float = 0.5) -> Decimal:
    (status,) = _status(trader.exchange.market_open("ETH", True, sz))
    assert status["filled"]["totalSz"] == str(sz)
    return dec(status["filled"]["avgPx"])


def test_stop_loss_fires_and_closes_the_long(fresh_venue: Venue) -> None:
    trader = fresh_venue.trader("sl-long")
    entry = _long_eth(trader)
    (sl,) = _status(trader.exchange.order("ETH", False, 0.5, 2900, _sl(3300), reduce_only=True))
    sl_oid = sl["resting"]["oid"]
    (tp,) = _status(trader.exchange.order("ETH", False, 0.5, 3900, _tp(3800), reduce_only=True))
    tp_oid = tp["resting"]["oid"]

    front = {o["oid"]: o for o in trader.info.frontend_open_orders(trader.address)}
    assert front[sl_oid]["orderType"] == "Stop Market"
    assert front[sl_oid]["isTrigger"] is True
    assert dec(front[sl_oid]["triggerPx"]) == 3300
    assert front[sl_oid]["triggerCondition"].startswith("Price below 3300")
    assert front[sl_oid]["reduceOnly"] is True
    assert front[sl_oid]["tif"] is None
    assert front[tp_oid]["orderType"] == "Take Profit Market"
    assert front[tp_oid]["triggerCondition"].startswith("Price above 3800")
    assert {o["oid"] for o in trader.open_orders()} == {sl_oid, tp_oid}

    fresh_venue.set_price("ETH", "3350")  # above the stop: nothing happens
    assert trader.positions()["ETH"]["szi"] == "0.5"
    assert trader.info.query_order_by_oid(trader.address, sl_oid)["order"]["status"] == "open"

    fresh_venue.set_price("ETH", "3250")  # through the stop
    assert trader.positions() == {}
    close = trader.info.user_fills(trader.address)[0]
    assert close["dir"] == "Close Long"
    assert close["sz"] == "0.5"
    assert close["oid"] == sl_oid
    assert Decimal(3200) < dec(close["px"]) < Decimal(3300)  # filled in the new book, not the old
    assert dec(close["closedPnl"]) == (dec(close["px"]) - entry) * Decimal("0.5")
    assert trader.info.query_order_by_oid(trader.address, sl_oid)["order"]["status"] == "filled"

    # The take-profit has nothing left to reduce: when the price later crosses it, it must not open a
    # short; it is cancelled as a reduce-only order that would increase the position.
    assert trader.info.query_order_by_oid(trader.address, tp_oid)["order"]["status"] == "open"
    fresh_venue.set_price("ETH", "3850")
    assert trader.positions() == {}
    assert all(f["dir"] != "Open Short" for f in trader.info.user_fills(trader.address))
    assert trader.info.query_order_by_oid(trader.address, tp_oid)["order"]["status"] == "reduceOnlyCanceled"
    assert trader.open_orders() == []


def test_take_profit_limit_fires_for_a_short(fresh_venue: Venue) -> None:
    trader = fresh_venue.trader("tp-short")
    (opened,) = _status(trader.exchange.market_open("ETH", False, 0.3))
    entry = dec(opened["filled"]["avgPx"])
    # TP of a short is a buy that fires when the price falls below the trigger.
    (tp,) = _status(
        trader.exchange.order("ETH", True, 0.3, 3200, _tp(3150, is_market=False), reduce_only=True)
    )
    tp_oid = tp["resting"]["oid"]
    (front,) = trader.info.frontend_open_orders(trader.address)
    assert front["orderType"] == "Take Profit Limit"
    assert front["triggerCondition"].startswith("Price below 3150")

    fresh_venue.set_price("ETH", "3100")
    assert trader.positions() == {}
    close = trader.info.user_fills(trader.address)[0]
    assert close["dir"] == "Close Short"
    assert close["oid"] == tp_oid
    assert dec(close["px"]) <= 3200  # a limit TP never pays more than its limit
    assert dec(close["closedPnl"]) == (entry - dec(close["px"])) * Decimal("0.3")


def test_reduce_only_trigger_without_position_never_opens_one(fresh_venue: Venue) -> None:
    """A reduce-only stop placed while flat that fires must not open a position (nor break the venue)."""
    trader = fresh_venue.trader("ro-flat")
    (sl,) = _status(trader.exchange.order("ETH", False, 0.2, 2900, _sl(3300), reduce_only=True))
    oid = sl["resting"]["oid"]
    price = fresh_venue.set_price("ETH", "3250")
    assert price["status"] == "ok"
    assert trader.positions() == {}
    assert trader.info.user_fills(trader.address) == []
    assert trader.open_orders() == []
    assert trader.info.query_order_by_oid(trader.address, oid)["order"]["status"] == "reduceOnlyCanceled"
    assert dec(trader.state()["marginSummary"]["accountValue"]) == 10000


def test_normal_tpsl_with_filled_entry(fresh_venue: Venue) -> None:
    trader = fresh_venue.trader("normal-tpsl-filled")
    _, ask = fresh_venue.book("ETH")
    orders = [
        {"coin": "ETH", "is_buy": True, "sz": 0.4, "limit_px": round(ask * 1.01), "order_type": GTC,
         "reduce_only": False},
        {"coin": "ETH", "is_buy": False, "sz": 0.4, "limit_px": 3900, "order_type": _tp(3800),
         "reduce_only": True},
        {"coin": "ETH", "is_buy": False, "sz": 0.4, "limit_px": 2900, "order_type": _sl(3200),
         "reduce_only": True},
    ]  # fmt: skip
    statuses = _status(trader.exchange.bulk_orders(orders, grouping="normalTpsl"))
    assert statuses[0]["filled"]["totalSz"] == "0.4"
    assert statuses[1:] == ["waitingForTrigger", "waitingForTrigger"]
    assert trader.positions()["ETH"]["szi"] == "0.4"
    triggers = trader.info.frontend_open_orders(trader.address)
    assert sorted(o["orderType"] for o in triggers) == ["Stop Market", "Take Profit Market"]

    fresh_venue.set_price("ETH", "3850")  # take profit
    assert trader.positions() == {}
    fill = trader.info.user_fills(trader.address)[0]
    assert fill["dir"] == "Close Long"
    assert fill["sz"] == "0.4"
    assert dec(fill["closedPnl"]) > 0
    assert trader.open_orders() == []  # the stop-loss sibling is cancelled with it


def test_normal_tpsl_children_wait_for_the_entry(fresh_venue: Venue) -> None:
    """Children of a resting entry are inactive: a price move through their trigger leaves them
    waiting; once the entry fills, they protect the filled size."""
    trader = fresh_venue.trader("normal-tpsl-resting")
    orders = [
        {"coin": "ETH", "is_buy": True, "sz": 0.2, "limit_px": 3400, "order_type": GTC, "reduce_only": False},
        {"coin": "ETH", "is_buy": False, "sz": 0.2, "limit_px": 3400, "order_type": _tp(3450),
         "reduce_only": True},
        {"coin": "ETH", "is_buy": False, "sz": 0.2, "limit_px": 3000, "order_type": _sl(3100),
         "reduce_only": True},
    ]  # fmt: skip
    statuses = _status(trader.exchange.bulk_orders(orders, grouping="normalTpsl"))
    parent_oid = statuses[0]["resting"]["oid"]
    assert statuses[1:] == ["waitingForFill", "waitingForFill"]
    front = trader.info.frontend_open_orders(trader.address)
    parent = next(o for o in front if o["oid"] == parent_oid)
    assert sorted(c["orderType"] for c in parent["children"]) == ["Stop Market", "Take Profit Market"]
    assert len(trader.open_orders()) == 3

    fresh_venue.set_price("ETH", "3500")  # mark above the TP trigger, entry not filled
    assert len(trader.open_orders()) == 3, "children of an unfilled entry must not trigger"
    assert trader.positions() == {}

    fresh_venue.set_price("ETH", "3380")  # the entry fills (the book moves through 3400)
    assert trader.positions()["ETH"]["szi"] == "0.2"
    assert trader.info.query_order_by_oid(trader.address, parent_oid)["order"]["status"] == "filled"
    assert len(trader.open_orders()) == 2

    fresh_venue.set_price("ETH", "3050")  # stop loss
    assert trader.positions() == {}
    assert trader.open_orders() == []
    assert trader.info.user_fills(trader.address)[0]["dir"] == "Close Long"


def test_cancelling_the_entry_cancels_its_children(fresh_venue: Venue) -> None:
    trader = fresh_venue.trader("normal-tpsl-cancel")
    orders = [
        {"coin": "ETH", "is_buy": True, "sz": 0.2, "limit_px": 3000, "order_type": GTC, "reduce_only": False},
        {"coin": "ETH", "is_buy": False, "sz": 0.2, "limit_px": 3900, "order_type": _tp(3800),
         "reduce_only": True},
    ]  # fmt: skip
    parent_oid = _status(trader.exchange.bulk_orders(orders, grouping="normalTpsl"))[0]["resting"]["oid"]
    assert _status(trader.exchange.cancel("ETH", parent_oid)) == ["success"]
    assert trader.open_orders() == []


def test_position_tpsl_follows_the_position(fresh_venue: Venue) -> None:
    trader = fresh_venue.trader("position-tpsl")
    _long_eth(trader, 0.5)
    orders = [
        {"coin": "ETH", "is_buy": False, "sz": 0.5, "limit_px": 3900, "order_type": _tp(3800),
         "reduce_only": True},
        {"coin": "ETH", "is_buy": False, "sz": 0.5, "limit_px": 2900, "order_type": _sl(3200),
         "reduce_only": True},
    ]  # fmt: skip
    statuses = _status(trader.exchange.bulk_orders(orders, grouping="positionTpsl"))
    assert all("resting" in s for s in statuses), statuses
    front = trader.info.frontend_open_orders(trader.address)
    assert len(front) == 2
    assert all(o["isPositionTpsl"] for o in front)

    _long_eth(trader, 0.3)  # the position grows to 0.8: a position TP/SL covers all of it
    assert trader.positions()["ETH"]["szi"] == "0.8"

    fresh_venue.set_price("ETH", "3150")
    assert trader.positions() == {}
    close = trader.info.user_fills(trader.address)[0]
    assert close["dir"] == "Close Long"
    assert close["sz"] == "0.8"
    assert trader.open_orders() == []  # the TP sibling went with it


def test_stop_entry_is_margin_checked_when_it_fires(fresh_venue: Venue) -> None:
    """A trigger that opens a position is margin-checked when it goes live, not only when placed."""
    poor = fresh_venue.trader("stop-entry-poor", usd="100")
    rich = fresh_venue.trader("stop-entry-rich", usd="1000")
    # a buy stop above the market: 1 ETH needs ~$180 of margin at 20x
    stop = _sl(3600)
    poor_oid = _status(poor.exchange.order("ETH", True, 1, 4000, stop))[0]["resting"]["oid"]
    rich_oid = _status(rich.exchange.order("ETH", True, 1, 4000, stop))[0]["resting"]["oid"]

    fresh_venue.set_price("ETH", "3650")
    assert poor.positions() == {}
    assert poor.info.user_fills(poor.address) == []
    assert poor.info.query_order_by_oid(poor.address, poor_oid)["order"]["status"] == "marginCanceled"
    assert dec(poor.state()["marginSummary"]["accountValue"]) == 100

    assert rich.positions()["ETH"]["szi"] == "1.0"
    assert rich.info.query_order_by_oid(rich.address, rich_oid)["order"]["status"] == "filled"
    assert rich.info.user_fills(rich.address)[0]["dir"] == "Open Long"


def test_reduce_only_trigger_after_a_flip_does_not_grow_the_new_position(fresh_venue: Venue) -> None:
    trader = fresh_venue.trader("sl-after-flip")
    _long_eth(trader, 0.5)
    (sl,) = _status(trader.exchange.order("ETH", False, 0.5, 2900, _sl(3300), reduce_only=True))
    trader.exchange.market_open("ETH", False, 1.0)  # long 0.5 -> short 0.5
    assert trader.positions()["ETH"]["szi"] == "-0.5"

    fresh_venue.set_price("ETH", "3250")  # the sell stop fires, but selling would increase the short
    assert trader.positions()["ETH"]["szi"] == "-0.5"
    status = trader.info.query_order_by_oid(trader.address, sl["resting"]["oid"])["order"]["status"]
    assert status == "reduceOnlyCanceled"


def test_two_brackets_are_independent(fresh_venue: Venue) -> None:
    """One-cancels-the-other works within a normalTpsl group, never across two groups."""
    trader = fresh_venue.trader("two-brackets")
    _, ask = fresh_venue.book("ETH")

    def bracket(sz: float, tp: int, sl: int) -> list[Any]:
        orders = [
            {"coin": "ETH", "is_buy": True, "sz": sz, "limit_px": round(ask * 1.01), "order_type": GTC,
             "reduce_only": False},
            {"coin": "ETH", "is_buy": False, "sz": sz, "limit_px": tp - 100, "order_type": _tp(tp),
             "reduce_only": True},
            {"coin": "ETH", "is_buy": False, "sz": sz, "limit_px": sl - 100, "order_type": _sl(sl),
             "reduce_only": True},
        ]  # fmt: skip
        statuses = _status(trader.exchange.bulk_orders(orders, grouping="normalTpsl"))
        assert statuses[1:] == ["waitingForTrigger", "waitingForTrigger"]
        return statuses

    bracket(0.2, 3800, 3200)
    bracket(0.3, 4000, 3000)
    assert trader.positions()["ETH"]["szi"] == "0.5"
    assert len(trader.open_orders()) == 4

    fresh_venue.set_price("ETH", "3850")  # the first bracket's take-profit
    assert trader.positions()["ETH"]["szi"] == "0.3"
    remaining = trader.info.frontend_open_orders(trader.address)
    assert sorted((o["orderType"], o["triggerPx"]) for o in remaining) == [
        ("Stop Market", "3000.0"),
        ("Take Profit Market", "4000.0"),
    ]

    fresh_venue.set_price("ETH", "2950")  # the second bracket's stop
    assert trader.positions() == {}
    assert trader.open_orders() == []
