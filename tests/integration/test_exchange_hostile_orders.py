"""Orders the venue refuses or treats specially, through the official SDK and hand-signed bodies.

* a refused modify (batchModify or modify) changes nothing: the original order keeps resting as it was;
* every order the venue saw stays known to ``orderStatus`` (rejected ones, and beyond the 2,000 that
  ``historicalOrders`` returns);
* an order type is exactly one of ``limit`` or ``trigger``;
* an operator's price shock keeps a two-sided book, and absurd prices are refused.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hyperliquid.utils.signing import order_request_to_order_wire
from hyperliquid.utils.types import Cloid
from support import Trader, Venue, dec, signed_body

GTC = {"limit": {"tif": "Gtc"}}
ALO = {"limit": {"tif": "Alo"}}
IOC = {"limit": {"tif": "Ioc"}}
CLOID = Cloid.from_int(0xBEEF)


def _statuses(result: dict[str, Any]) -> list[Any]:
    assert result["status"] == "ok", result
    return result["response"]["data"]["statuses"]  # type: ignore[no-any-return]


def _wire(trader: Trader, coin: str, is_buy: bool, sz: float, px: float, order_type: dict[str, Any],
          reduce_only: bool = False, cloid: Cloid | None = None) -> dict[str, Any]:  # fmt: skip
    request: dict[str, Any] = {"coin": coin, "is_buy": is_buy, "sz": sz, "limit_px": px,
                               "order_type": order_type, "reduce_only": reduce_only}  # fmt: skip
    if cloid is not None:
        request["cloid"] = cloid
    return order_request_to_order_wire(request, trader.info.name_to_asset(coin))  # type: ignore[no-any-return]


def _post(venue: Venue, trader: Trader, action: dict[str, Any]) -> tuple[int, str, Any]:
    response = venue.post("/exchange", signed_body(trader.wallet, action))
    is_json = response.headers["Content-Type"].startswith("application/json")
    return response.status_code, response.text, response.json() if is_json else None


# ------------------------------------------------------------------ a refused modify changes nothing


# name -> (replacement order, words the venue's error starts with), for a resting bid of 0.01 ETH at px
Replacement = Callable[[float, float, float], tuple[str, bool, float, float, dict[str, Any], bool]]
REFUSED_MODIFIES: dict[str, tuple[Replacement, str]] = {
    "below $10": (lambda px, bid, ask: ("ETH", True, 0.001, px, GTC, False),
                  "Order must have minimum value of $10."),
    "insufficient margin": (lambda px, bid, ask: ("ETH", True, 100.0, px, GTC, False),
                            "Insufficient margin to place order."),
    "price band": (lambda px, bid, ask: ("ETH", True, 0.5, round(bid * 0.15), GTC, False),
                   "Order price cannot be more than 80% away from the reference price"),
    "post-only would cross": (lambda px, bid, ask: ("ETH", True, 0.01, round(ask * 1.01), ALO, False),
                              "Post only order would have immediately matched"),
    "reduce-only would increase": (lambda px, bid, ask: ("ETH", True, 0.01, px, GTC, True),
                                   "Reduce only order would increase position."),
    "ioc that cannot trade": (lambda px, bid, ask: ("ETH", True, 0.01, px, IOC, False),
                              "Order could not immediately match against any resting orders."),
    "off the tick": (lambda px, bid, ask: ("ETH", True, 0.01, px + 0.15, GTC, False),
                     "Price must be divisible by tick size."),
    "halted asset": (lambda px, bid, ask: ("ATOM", True, 2.0, 10.0, GTC, False), "Trading is halted."),
}  # fmt: skip


@pytest.mark.parametrize("kind", ["batchModify", "modify"])
@pytest.mark.parametrize("case", list(REFUSED_MODIFIES))
def test_a_refused_modify_leaves_the_original_resting(
    venue: Venue, trader: Trader, case: str, kind: str
) -> None:
    bid, ask = venue.book("ETH")
    px = round(bid * 0.9)
    (resting,) = _statuses(trader.exchange.order("ETH", True, 0.01, px, GTC, cloid=CLOID))
    oid = resting["resting"]["oid"]
    before = trader.snapshot()
    status_before = trader.info.query_order_by_oid(trader.address, oid)

    make, error = REFUSED_MODIFIES[case]
    coin, is_buy, sz, new_px, order_type, reduce_only = make(px, bid, ask)
    wire = _wire(trader, coin, is_buy, sz, new_px, order_type, reduce_only, CLOID)
    if kind == "batchModify":
        _, _, result = _post(
            venue, trader, {"type": "batchModify", "modifies": [{"oid": oid, "order": wire}]}
        )
        (status,) = _statuses(result)
        text = status["error"]
    else:
        _, _, result = _post(venue, trader, {"type": "modify", "oid": oid, "order": wire})
        assert result["status"] == "err", result
        text = result["response"]
    assert text.startswith(error), text

    assert trader.snapshot() == before  # balances, positions, fills, open orders (oid, px, sz, cloid)
    (order,) = before["orders"]
    assert (order["oid"], dec(order["limitPx"]), order["sz"], order["cloid"]) == (
        oid,
        px,
        "0.01",
        CLOID.to_raw(),
    )
    assert trader.info.query_order_by_oid(trader.address, oid) == status_before
    assert trader.info.query_order_by_cloid(trader.address, CLOID)["order"]["order"]["oid"] == oid


def test_a_modify_that_crosses_trades_then_rests_the_rest(fresh_venue: Venue) -> None:
    venue = fresh_venue  # it takes the best ask
    trader = venue.trader("crossing modify", usd="2000000")  # the best ask is ~$0.5M deep
    bid, _ = venue.book("ETH")
    (resting,) = _statuses(trader.exchange.order("ETH", True, 0.01, round(bid * 0.9), GTC, cloid=CLOID))
    oid = resting["resting"]["oid"]
    ask0 = venue.info_request({"type": "l2Book", "coin": "ETH"})["levels"][1][0]
    size = float(dec(ask0["sz"]) + dec("0.5"))

    (status,) = _statuses(
        trader.exchange.modify_order(oid, "ETH", True, size, float(ask0["px"]), GTC, cloid=CLOID)
    )
    new_oid = status["resting"]["oid"]
    assert trader.positions()["ETH"]["szi"] == ask0["sz"]  # the whole best ask, at its price
    (order,) = trader.open_orders()
    assert (order["oid"], order["sz"], order["limitPx"]) == (new_oid, "0.5", ask0["px"])
    assert trader.info.query_order_by_oid(trader.address, oid)["order"]["status"] == "canceled"


def test_a_modify_may_use_the_margin_its_original_holds(venue: Venue, trader: Trader) -> None:
    """$10,000 at 20x: a 50 ETH bid at $3,000 reserves $7,500; modifying it to 60 ETH needs $9,000,
    more than is free beside it, but not once it is gone."""
    (resting,) = _statuses(trader.exchange.order("ETH", True, 50, 3000, GTC))
    (status,) = _statuses(trader.exchange.modify_order(resting["resting"]["oid"], "ETH", True, 60, 3000, GTC))
    assert "resting" in status, status
    (order,) = trader.open_orders()
    assert order["sz"] == "60.0"


# ------------------------------------------------------------------ orderStatus knows every order

# name -> (order as (sz, px, type, reduce-only) of a bid given the book, the status orderStatus then reports)
Rejected = Callable[[float, float], tuple[float, float, dict[str, Any], bool]]
REJECTED_ORDERS: dict[str, tuple[Rejected, str]] = {
    "post-only would cross": (lambda bid, ask: (0.01, round(ask * 1.01), ALO, False), "badAloPxRejected"),
    "ioc that cannot trade": (lambda bid, ask: (0.01, round(bid * 0.9), IOC, False), "iocCancelRejected"),
    "below $10": (lambda bid, ask: (0.001, round(bid * 0.9), GTC, False), "minTradeNtlRejected"),
    "insufficient margin": (lambda bid, ask: (100.0, round(bid * 0.9), GTC, False), "perpMarginRejected"),
    "reduce-only would increase": (
        lambda bid, ask: (0.01, round(bid * 0.9), GTC, True),
        "reduceOnlyRejected",
    ),
    "off the tick": (lambda bid, ask: (0.01, round(bid * 0.9) + 0.15, GTC, False), "tickRejected"),
    "price band": (lambda bid, ask: (0.5, round(bid * 0.15), GTC, False), "oracleRejected"),
}


@pytest.mark.parametrize("case", list(REJECTED_ORDERS))
def test_a_rejected_order_is_known_to_order_status(venue: Venue, trader: Trader, case: str) -> None:
    bid, ask = venue.book("ETH")
    make, wanted = REJECTED_ORDERS[case]
    sz, px, order_type, reduce_only = make(bid, ask)
    before = trader.snapshot()
    (status,) = _statuses(trader.exchange.order("ETH", True, sz, px, order_type, reduce_only, cloid=CLOID))
    assert set(status) == {"error"}, status
    assert trader.snapshot() == before

    by_cloid = trader.info.query_order_by_cloid(trader.address, CLOID)
    assert by_cloid["status"] == "order", by_cloid
    assert by_cloid["order"]["status"] == wanted
    order = by_cloid["order"]["order"]
    assert (order["coin"], order["side"], order["cloid"]) == ("ETH", "B", CLOID.to_raw())
    assert dec(order["limitPx"]) == dec(str(px))
    assert dec(order["sz"]) == dec(order["origSz"]) == dec(str(sz))  # the venue shows what was asked
    assert trader.info.query_order_by_oid(trader.address, order["oid"]) == by_cloid
    (history,) = trader.info.historical_orders(trader.address)
    assert history == by_cloid["order"]


def test_a_spot_sell_without_the_tokens_is_known_to_order_status(venue: Venue, trader: Trader) -> None:
    px = float(f"{venue.mid('PURR/USDC'):.5g}")
    (status,) = _statuses(trader.exchange.order("PURR/USDC", False, 200, px, GTC, cloid=CLOID))
    assert status == {"error": "Insufficient spot balance asset=10000"}
    by_cloid = trader.info.query_order_by_cloid(trader.address, CLOID)
    assert by_cloid["order"]["status"] == "insufficientSpotBalanceRejected"


def test_order_status_remembers_orders_beyond_the_latest_2000(venue: Venue, trader: Trader) -> None:
    bid, _ = venue.book("ETH")
    px = round(bid * 0.9)
    first = Cloid.from_int(1)
    for batch in range(5):  # 2,500 orders, each refused (an Ioc that cannot trade)
        wires = [_wire(trader, "ETH", True, 0.01, px, IOC, cloid=Cloid.from_int(batch * 500 + i + 1))
                 for i in range(500)]  # fmt: skip
        _, _, result = _post(venue, trader, {"type": "order", "orders": wires, "grouping": "na"})
        assert all("error" in s for s in _statuses(result))

    history = trader.info.historical_orders(trader.address)
    assert len(history) == 2000  # the venue's cap on historicalOrders stays
    assert first.to_raw() not in {h["order"]["cloid"] for h in history}
    by_cloid = trader.info.query_order_by_cloid(trader.address, first)
    assert by_cloid["status"] == "order", by_cloid
    assert by_cloid["order"]["status"] == "iocCancelRejected"
    oid = by_cloid["order"]["order"]["oid"]
    assert trader.info.query_order_by_oid(trader.address, oid) == by_cloid
    # and only to its owner
    other = venue.trader("someone else")
    assert other.info.query_order_by_oid(other.address, oid) == {"status": "unknownOid"}
    assert other.info.query_order_by_cloid(other.address, first) == {"status": "unknownOid"}


# ------------------------------------------------------------------ the order wire is exact


def _limit_and_trigger(wire: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(wire)
    out["t"] = {"limit": {"tif": "Gtc"}, "trigger": {"isMarket": False, "triggerPx": wire["p"], "tpsl": "tp"}}
    return out


LOOSE_WIRES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "limit and trigger": _limit_and_trigger,
    "limit and an empty trigger": lambda w: {**w, "t": {"limit": {"tif": "Gtc"}, "trigger": {}}},
    "no order type": lambda w: {**w, "t": {}},
    "an unknown order type": lambda w: {**w, "t": {"market": {}}},
    "an unknown tif": lambda w: {**w, "t": {"limit": {"tif": "Day"}}},
    "a tif that is not a string": lambda w: {**w, "t": {"limit": {"tif": 1}}},
    "limit is not an object": lambda w: {**w, "t": {"limit": "Gtc"}},
}


@pytest.mark.parametrize("action_kind", ["order", "batchModify"])
@pytest.mark.parametrize("case", list(LOOSE_WIRES))
def test_an_order_type_is_exactly_limit_or_trigger(
    venue: Venue, trader: Trader, case: str, action_kind: str
) -> None:
    bid, _ = venue.book("ETH")
    (resting,) = _statuses(trader.exchange.order("ETH", True, 0.01, round(bid * 0.9), GTC))
    before = trader.snapshot()
    wire = LOOSE_WIRES[case](_wire(trader, "ETH", True, 0.01, round(bid * 0.85), GTC))
    if action_kind == "order":
        action: dict[str, Any] = {"type": "order", "orders": [wire], "grouping": "na"}
    else:
        action = {"type": "batchModify", "modifies": [{"oid": resting["resting"]["oid"], "order": wire}]}
    status, text, _ = _post(venue, trader, action)
    assert status == 422, text
    assert text.startswith("Failed to deserialize the JSON body into the target type"), text
    assert trader.snapshot() == before


# ------------------------------------------------------------------ operator price shocks


@pytest.mark.parametrize("px", ["100", "35000"])
def test_a_price_shock_beyond_the_band_keeps_a_book(make_venue: Callable[..., Venue], px: str) -> None:
    venue = make_venue()
    venue.set_price("ETH", px)
    bid, ask = venue.book("ETH")
    assert bid < float(px) < ask
    assert ask / bid < 1.01
    mid = venue.mid("ETH")
    assert abs(mid / float(px) - 1) < 0.01
    trader = venue.trader("after the shock")
    (status,) = _statuses(trader.exchange.market_open("ETH", True, round(100 / mid, 4)))
    assert "filled" in status, status


@pytest.mark.parametrize("px", ["1e-30", "0.001", "1e30", "1000000001", "0", "-5", "3000.123"])
def test_an_absurd_operator_price_is_refused(make_venue: Callable[..., Venue], px: str) -> None:
    venue = make_venue()
    book = venue.book("ETH")
    response = venue.post("/sim/price", {"coin": "ETH", "px": px})
    assert response.status_code == 400, response.text
    assert "px" in response.text
    if px not in ("0", "-5"):
        assert "0.01" in response.text  # the bounds are named
        assert "1000000000" in response.text
    assert venue.book("ETH") == book
