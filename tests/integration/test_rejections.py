"""Bad input gets the venue's answer and changes nothing: balance, open orders, positions, fills.

Business rejections are HTTP 200 envelopes (`status: err` for the whole action, or `status: ok` with a
per-order `error`); bodies that do not deserialize are HTTP 422 with a plain-text body, which the SDK
raises as `ClientError`. The trader under test already holds a position and a resting order, so the
"nothing changed" checks have something to compare.
"""

from __future__ import annotations

import copy
import time
from decimal import Decimal
from typing import Any

import pytest
from hyperliquid.utils.error import ClientError
from hyperliquid.utils.signing import order_request_to_order_wire, order_wires_to_order_action
from support import Trader, Venue, dec, signed_body, wallet_for

ETH = 1
GTC = {"limit": {"tif": "Gtc"}}
ALO = {"limit": {"tif": "Alo"}}


@pytest.fixture
def busy(trader: Trader) -> Trader:
    """The module's trader, long 0.1 ETH with a resting SOL bid."""
    assert "filled" in trader.exchange.market_open("ETH", True, 0.1)["response"]["data"]["statuses"][0]
    bid = trader.info.l2_snapshot("SOL")["levels"][0][0]["px"]
    px = round(float(bid) * 0.9)
    assert "resting" in trader.exchange.order("SOL", True, 1, px, GTC)["response"]["data"]["statuses"][0]
    return trader


def _order_action(trader: Trader, coin: str, is_buy: bool, sz: float, px: float, order_type: dict[str, Any],
                  reduce_only: bool = False) -> dict[str, Any]:  # fmt: skip
    request = {"coin": coin, "is_buy": is_buy, "sz": sz, "limit_px": px, "order_type": order_type,
               "reduce_only": reduce_only}  # fmt: skip
    wire = order_request_to_order_wire(request, trader.info.name_to_asset(coin))
    return order_wires_to_order_action([wire])  # type: ignore[no-any-return]


def _post_exchange(venue: Venue, body: object) -> tuple[int, str, dict[str, Any] | None]:
    response = venue.post("/exchange", body)
    parsed = response.json() if response.headers["Content-Type"].startswith("application/json") else None
    return response.status_code, response.text, parsed


def _single_error(result: dict[str, Any]) -> str:
    assert result["status"] == "ok", result
    (status,) = result["response"]["data"]["statuses"]
    assert set(status) == {"error"}, status
    return status["error"]  # type: ignore[no-any-return]


# ------------------------------------------------------------------ authentication


def test_tampered_body_is_refused(venue: Venue, busy: Trader) -> None:
    before = busy.snapshot()
    px = round(venue.mid("ETH") * 0.9)
    body = signed_body(busy.wallet, _order_action(busy, "ETH", True, 0.01, px, GTC))
    tampered = copy.deepcopy(body)
    tampered["action"]["orders"][0]["s"] = "0.02"  # signed for 0.01

    status, _, result = _post_exchange(venue, tampered)
    assert status == 200
    assert result is not None
    assert result["status"] == "err"
    assert result["response"].startswith("User or API Wallet 0x")
    assert result["response"].endswith(" does not exist.")
    assert busy.user not in result["response"]
    assert busy.snapshot() == before

    # the tampered copy did not burn the signer's nonce: the genuine body still goes through
    status, _, result = _post_exchange(venue, body)
    assert result is not None
    assert "resting" in result["response"]["data"]["statuses"][0]


def test_unusable_signature_is_a_422(venue: Venue, busy: Trader) -> None:
    before = busy.snapshot()
    body = signed_body(busy.wallet, _order_action(busy, "ETH", True, 0.01, 3000, GTC))
    body["signature"]["r"] = "0xnothex"
    status, text, result = _post_exchange(venue, body)
    assert status == 422
    assert result is None
    assert text.startswith("Failed to deserialize the JSON body")
    assert busy.snapshot() == before


def test_reused_nonce_is_refused(venue: Venue, busy: Trader) -> None:
    px = round(venue.mid("ETH") * 0.9)
    body = signed_body(busy.wallet, _order_action(busy, "ETH", True, 0.01, px, GTC))
    _, _, first = _post_exchange(venue, body)
    assert first is not None
    assert "resting" in first["response"]["data"]["statuses"][0]
    before = busy.snapshot()

    _, _, again = _post_exchange(venue, body)
    assert again == {"status": "err", "response": f"Invalid nonce: duplicate nonce {body['nonce']}"}
    # a different action under the same nonce is refused just the same
    other = signed_body(busy.wallet, _order_action(busy, "ETH", True, 0.02, px, GTC), nonce=body["nonce"])
    _, _, result = _post_exchange(venue, other)
    assert result == again
    assert busy.snapshot() == before


def test_stale_nonce_is_refused(venue: Venue, busy: Trader) -> None:
    before = busy.snapshot()
    three_days_ago = int(time.time() * 1000) - 3 * 86_400_000
    body = signed_body(busy.wallet, _order_action(busy, "ETH", True, 0.01, 3000, GTC), nonce=three_days_ago)
    _, _, result = _post_exchange(venue, body)
    assert result is not None
    assert result["status"] == "err"
    assert result["response"].startswith(f"Invalid nonce: nonce too low {three_days_ago}")
    assert busy.snapshot() == before


def test_expired_action_is_refused(venue: Venue, busy: Trader) -> None:
    before = busy.snapshot()
    busy.exchange.set_expires_after(int(time.time() * 1000) - 1_000)
    try:
        result = busy.exchange.order("ETH", True, 0.01, 3000, GTC)
    finally:
        busy.exchange.set_expires_after(None)
    assert result["status"] == "err"
    assert result["response"].startswith("Action expired")
    assert busy.snapshot() == before


def test_unknown_user_is_refused(venue: Venue) -> None:
    ghost = venue.trader("never-funded", usd=None)
    result = ghost.exchange.order("ETH", True, 0.01, 3000, GTC)
    assert result == {"status": "err", "response": f"User or API Wallet {ghost.user} does not exist."}
    transfer = ghost.exchange.usd_transfer(1.0, wallet_for("anyone").address)
    assert transfer == {
        "status": "err",
        "response": f"Must deposit before performing actions. User: {ghost.user}",
    }
    assert ghost.exchange.update_leverage(5, "ETH") == result
    state = ghost.state()
    assert state["assetPositions"] == []
    assert dec(state["marginSummary"]["accountValue"]) == 0
    assert ghost.open_orders() == []
    assert ghost.info.user_role(ghost.address) == {"role": "missing"}


# ------------------------------------------------------------------ malformed requests (HTTP 422)


def test_malformed_json_is_a_plain_text_422(venue: Venue, busy: Trader) -> None:
    before = busy.snapshot()
    for path in ("/exchange", "/info"):
        response = venue.session.post(venue.url + path, data=b'{"action": {"type": "order",',
                                      headers={"Content-Type": "application/json"}, timeout=10)  # fmt: skip
        assert response.status_code == 422
        assert response.headers["Content-Type"].startswith("text/plain")
        assert response.text == "Failed to parse the request body as JSON"
    assert busy.snapshot() == before

    with pytest.raises(ClientError) as info_error:
        busy.info.post("/info", {"type": "noSuchRequest"})
    assert info_error.value.status_code == 422
    assert info_error.value.error_message.startswith(
        "Failed to deserialize the JSON body into the target type"
    )


def test_wrong_field_type_is_a_422_and_burns_no_nonce(venue: Venue, busy: Trader) -> None:
    before = busy.snapshot()
    # through the SDK: a string leverage is signed as is and refused at deserialization
    with pytest.raises(ClientError) as error:
        busy.exchange.update_leverage("5", "ETH")
    assert error.value.status_code == 422
    assert "leverage" in error.value.error_message

    action = _order_action(busy, "ETH", True, 0.01, round(venue.mid("ETH") * 0.9), GTC)
    bad = copy.deepcopy(action)
    bad["orders"][0]["a"] = "1"
    body = signed_body(busy.wallet, bad)
    status, text, _ = _post_exchange(venue, body)
    assert status == 422
    assert text.startswith("Failed to deserialize the JSON body into the target type")
    bad_size = copy.deepcopy(action)
    bad_size["orders"][0]["s"] = 0.01
    status, _, _ = _post_exchange(venue, signed_body(busy.wallet, bad_size))
    assert status == 422
    assert busy.snapshot() == before

    # the refused body's nonce was never recorded: a good action may still use it
    good = signed_body(busy.wallet, action, nonce=body["nonce"])
    _, _, result = _post_exchange(venue, good)
    assert result is not None
    assert "resting" in result["response"]["data"]["statuses"][0]


def test_wrong_field_type_outside_orders_burns_no_nonce(venue: Venue, busy: Trader) -> None:
    before = busy.snapshot()
    leverage = {"type": "updateLeverage", "asset": ETH, "isCross": True, "leverage": "5"}
    body = signed_body(busy.wallet, leverage)
    status, text, _ = _post_exchange(venue, body)
    assert status == 422
    assert "leverage" in text
    good = signed_body(busy.wallet, {**leverage, "leverage": 5}, nonce=body["nonce"])
    assert _post_exchange(venue, good)[2] == {"status": "ok", "response": {"type": "default"}}
    assert busy.positions()["ETH"]["leverage"] == {"type": "cross", "value": 5}
    assert (
        _post_exchange(venue, signed_body(busy.wallet, {"type": "scheduleCancel", "time": "soon"}))[0] == 422
    )
    assert busy.snapshot()["orders"] == before["orders"]


def test_cancel_batch_with_a_malformed_item_cancels_nothing(venue: Venue, busy: Trader) -> None:
    before = busy.snapshot()
    (order,) = busy.open_orders()
    cancels = {"type": "cancel", "cancels": [{"a": 5, "o": order["oid"]}, {"a": "5", "o": order["oid"]}]}
    status, text, _ = _post_exchange(venue, signed_body(busy.wallet, cancels))
    assert status == 422
    assert text.startswith("Failed to deserialize the JSON body into the target type")
    assert busy.snapshot() == before  # the well-formed first cancel was not applied either


def test_info_wrong_field_types_are_422(venue: Venue, busy: Trader) -> None:
    for body in (
        {"type": "clearinghouseState", "user": 12},
        {"type": "clearinghouseState", "user": "0x1234"},
        {"type": "l2Book"},
        {"type": "orderStatus", "user": busy.address, "oid": None},
        {"type": "userFillsByTime", "user": busy.address, "startTime": "0"},
        {"type": "userNonFundingLedgerUpdates", "user": busy.address, "startTime": 0, "endTime": "later"},
        {"type": "userFunding", "user": busy.address, "startTime": 0, "endTime": "later"},
        {"type": "fundingHistory", "coin": "ETH", "startTime": 0, "endTime": "later"},
    ):
        response = venue.post("/info", body)
        assert response.status_code == 422, (body, response.text)
        assert response.text.startswith("Failed to deserialize the JSON body into the target type"), body
    ledger = busy.info.user_non_funding_ledger_updates(busy.address, 0)
    assert [item["delta"]["type"] for item in ledger] == ["deposit"]


# ------------------------------------------------------------------ per-order rejections


def test_unknown_asset(venue: Venue, busy: Trader) -> None:
    before = busy.snapshot()
    with pytest.raises(KeyError):  # the SDK itself does not know the coin
        busy.exchange.order("NOPE", True, 1, 1, GTC)
    action = _order_action(busy, "ETH", True, 0.01, 3000, GTC)
    action["orders"][0]["a"] = 9_999
    _, _, result = _post_exchange(venue, signed_body(busy.wallet, action))
    assert result is not None
    assert _single_error(result) == "Invalid asset."
    assert busy.info.l2_snapshot("ETH")["coin"] == "ETH"
    assert venue.info_request({"type": "l2Book", "coin": "NOPE"}) is None
    assert busy.snapshot() == before


def test_price_off_the_tick(venue: Venue, busy: Trader) -> None:
    before = busy.snapshot()
    for px in (3000.12, 3000.123, 3000.5001):  # 6 s.f.; 3 decimals; both (ETH allows 2 decimals, 5 s.f.)
        error = _single_error(busy.exchange.order("ETH", True, 0.01, px, GTC))
        assert error == f"Price must be divisible by tick size. asset={ETH}"
    stop = {"trigger": {"triggerPx": 3000.123, "isMarket": True, "tpsl": "sl"}}
    error = _single_error(busy.exchange.order("ETH", False, 0.1, 3000, stop, reduce_only=True))
    assert error == f"Invalid TP/SL price. asset={ETH}"
    assert busy.snapshot() == before
    # an integer price is always valid, whatever its number of significant figures (BTC at 123456)
    result = busy.exchange.order("BTC", False, 0.0001, 123_456, ALO)
    oid = result["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert busy.exchange.cancel("BTC", oid)["response"]["data"]["statuses"] == ["success"]


def test_size_off_the_lot(venue: Venue, busy: Trader) -> None:
    before = busy.snapshot()
    error = _single_error(busy.exchange.order("ETH", True, 0.00001, 3000, GTC))  # ETH szDecimals 4
    assert error == f"Order has invalid size. asset={ETH}"
    error = _single_error(busy.exchange.order("SOL", True, 1.001, 150, GTC))  # SOL szDecimals 2
    assert error == "Order has invalid size. asset=5"
    assert busy.snapshot() == before


def test_below_ten_dollars(venue: Venue, busy: Trader) -> None:
    before = busy.snapshot()
    error = _single_error(busy.exchange.order("ETH", True, 0.002, 3000, GTC))  # $6
    assert error == f"Order must have minimum value of $10. asset={ETH}"
    error = _single_error(busy.exchange.market_open("ETH", True, 0.002))
    assert error == f"Order must have minimum value of $10. asset={ETH}"
    assert busy.snapshot() == before


def test_post_only_that_would_cross(venue: Venue, busy: Trader) -> None:
    bid, ask = venue.book("ETH")
    before = busy.snapshot()
    error = _single_error(busy.exchange.order("ETH", True, 0.01, ask, ALO))
    assert error == f"Post only order would have immediately matched, bbo was {bid}@{ask}. asset={ETH}"
    error = _single_error(busy.exchange.order("ETH", False, 0.01, bid, ALO))
    assert error.startswith("Post only order would have immediately matched")
    assert busy.snapshot() == before
    # one tick away it rests
    result = busy.exchange.order("ETH", True, 0.01, round(bid - 1), ALO)
    assert "resting" in result["response"]["data"]["statuses"][0]


def test_reduce_only_that_would_increase(venue: Venue, busy: Trader) -> None:
    before = busy.snapshot()
    _, ask = venue.book("ETH")
    error = _single_error(busy.exchange.order("ETH", True, 0.05, round(ask * 1.01), GTC, reduce_only=True))
    assert error == f"Reduce only order would increase position. asset={ETH}"  # busy is long ETH
    error = _single_error(busy.exchange.order("SOL", False, 1, 100, GTC, reduce_only=True))
    assert error == "Reduce only order would increase position. asset=5"  # flat on SOL
    assert busy.snapshot() == before


def test_insufficient_margin(venue: Venue) -> None:
    poor = venue.trader("poor-trader", usd="100")
    before = poor.snapshot()
    # 1 ETH at 20x needs ~$175 of margin
    error = _single_error(poor.exchange.market_open("ETH", True, 1))
    assert error == f"Insufficient margin to place order. asset={ETH}"
    error = _single_error(poor.exchange.order("ETH", True, 1, round(venue.mid("ETH") * 0.9), GTC))
    assert error == f"Insufficient margin to place order. asset={ETH}"
    assert poor.snapshot() == before
    assert dec(poor.state()["withdrawable"]) == Decimal(100)
    # what fits, fills
    assert "filled" in poor.exchange.market_open("ETH", True, 0.3)["response"]["data"]["statuses"][0]


def test_bad_order_in_a_batch_does_not_block_the_others(venue: Venue, busy: Trader) -> None:
    px = round(venue.mid("ETH") * 0.9)
    orders = [
        {
            "coin": "ETH",
            "is_buy": True,
            "sz": 0.01,
            "limit_px": 3000.123,
            "order_type": GTC,
            "reduce_only": False,
        },
        {"coin": "ETH", "is_buy": True, "sz": 0.01, "limit_px": px, "order_type": GTC, "reduce_only": False},
    ]
    statuses = busy.exchange.bulk_orders(orders)["response"]["data"]["statuses"]
    assert statuses[0] == {"error": f"Price must be divisible by tick size. asset={ETH}"}
    oid = statuses[1]["resting"]["oid"]
    assert oid in {o["oid"] for o in busy.open_orders()}
    assert len(busy.open_orders()) == 2  # the SOL bid and this one
