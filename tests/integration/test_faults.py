"""Fault switches of the embedded exchange (`/sim/faults`, `server.faults`): the failures a venue
client must survive, produced on demand and seen through `requests`, the official SDK and `websockets`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import structlog
from hyperliquid.exchange import Exchange
from hyperliquid.utils.error import ClientError, ServerError
from hyperliquid.utils.types import Cloid
from support import Trader, Venue, signed_body, wait_for
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from websockets.sync.client import ClientConnection, connect

from hyperfollow.exchange.clock import SimClock
from hyperfollow.exchange.server import RATE_LIMITED

GTC = {"limit": {"tif": "Gtc"}}
ETH = 1  # asset id of ETH on the main dex
PING = '{"method":"ping"}'
PONG = {"channel": "pong"}


# ------------------------------------------------------------------------------------------ helpers


def add_faults(venue: Venue, faults: Any) -> dict[str, Any]:
    return venue.sim("/sim/faults", faults)  # a list is fine too


def listed(venue: Venue) -> list[dict[str, Any]]:
    response = venue.session.get(venue.url + "/sim/faults", timeout=10)
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def far_bid(venue: Venue) -> float:
    """A buy price well under the book: the order rests."""
    bid, _ = venue.book("ETH")
    return float(round(bid * 0.9))


def order_action(venue: Venue, cloid: Cloid) -> dict[str, Any]:
    """The wire action of a resting 0.01 ETH buy with ``cloid`` (as the SDK would build it)."""
    return {
        "type": "order",
        "orders": [{"a": ETH, "b": True, "p": str(int(far_bid(venue))), "s": "0.01", "r": False,
                    "t": GTC, "c": cloid.to_raw()}],
        "grouping": "na",
    }  # fmt: skip


def order_exists(trader: Trader, cloid: Cloid) -> bool:
    status = trader.info.query_order_by_cloid(trader.address, cloid)
    return bool(status["status"] == "order" and status["order"]["status"] == "open")


def ws_url(venue: Venue) -> str:
    return venue.url.replace("http://", "ws://") + "/ws"


def frames_until(ws: ClientConnection, predicate: Any, limit: int = 50) -> list[dict[str, Any]]:
    """Frames received up to and including the first one matching ``predicate``."""
    seen: list[dict[str, Any]] = []
    for _ in range(limit):
        frame = json.loads(ws.recv(timeout=5))
        seen.append(frame)
        if predicate(frame):
            return seen
    pytest.fail(f"no matching frame in {limit}: {seen[-3:]}")


def end_of(ws: ClientConnection, limit: int = 50) -> ConnectionClosed:
    """Read until the connection ends; returns how it ended."""
    for _ in range(limit):
        try:
            ws.recv(timeout=5)
        except ConnectionClosed as closed:
            return closed
    pytest.fail("the connection did not end")


@pytest.fixture
def ws(fresh_venue: Venue) -> Iterator[ClientConnection]:
    """A raw WebSocket on the fresh venue, subscribed to the ETH book (snapshot consumed)."""
    with connect(ws_url(fresh_venue), open_timeout=5) as conn:
        conn.send(json.dumps({"method": "subscribe", "subscription": {"type": "l2Book", "coin": "ETH"}}))
        frames_until(conn, lambda f: f["channel"] == "l2Book")
        yield conn


# ------------------------------------------------------------------------------------------ HTTP status


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_http_status_on_exchange_then_normal_service(fresh_venue: Venue, status: int) -> None:
    venue = fresh_venue
    trader = venue.trader("fault-status")
    before = trader.snapshot()
    add_faults(venue, {"type": "httpStatus", "path": "/exchange", "status": status, "count": 2})
    px = far_bid(venue)
    for remaining in (1, 0):
        with pytest.raises(ClientError if status == 429 else ServerError) as error:
            trader.exchange.order("ETH", True, 0.01, px, GTC)
        assert error.value.status_code == status
        assert [f.get("remaining") for f in listed(venue)] == ([remaining] if remaining else [])
    assert trader.snapshot() == before  # refused unseen: no order, no nonce spent, nothing
    result = trader.exchange.order("ETH", True, 0.01, px, GTC)
    assert "resting" in result["response"]["data"]["statuses"][0]
    assert len(trader.open_orders()) == 1


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_http_status_on_info_then_normal_service(fresh_venue: Venue, status: int) -> None:
    venue = fresh_venue
    trader = venue.trader("fault-status-info")
    venue.server.faults.add({"type": "httpStatus", "path": "/info", "status": status, "count": 3})
    for _ in range(3):
        with pytest.raises(ClientError if status == 429 else ServerError) as error:
            trader.info.all_mids()
        assert error.value.status_code == status
    assert "ETH" in trader.info.all_mids()
    assert venue.server.faults.active() == []


def test_429_fault_looks_like_the_rate_limiter(fresh_venue: Venue) -> None:
    venue = fresh_venue
    trader = venue.trader("fault-429")
    venue.server.faults.add(
        [
            {"type": "httpStatus", "path": "/info", "status": 429, "count": 1},
            {"type": "httpStatus", "path": "/info", "status": 429, "count": 1, "body": "null"},
        ]
    )
    response = venue.post("/info", {"type": "allMids"})
    assert response.status_code == 429
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text == RATE_LIMITED
    # the real venue's body is `null`: the SDK's special case for it gives the same ClientError shape
    with pytest.raises(ClientError) as error:
        trader.info.all_mids()
    assert (error.value.status_code, error.value.error_code, error.value.error_message) == (429, None, "null")


def test_faults_apply_after_path_normalisation(fresh_venue: Venue) -> None:
    venue = fresh_venue
    venue.server.faults.add({"type": "httpStatus", "path": "/info", "status": 503, "count": 1})
    response = venue.session.post(venue.url + "//info", json={"type": "allMids"}, timeout=10)
    assert response.status_code == 503
    assert venue.server.faults.active() == []


def test_count_omitted_lasts_until_cleared(fresh_venue: Venue) -> None:
    venue = fresh_venue
    (fault,) = venue.server.faults.add({"type": "httpStatus", "path": "/info", "status": 502})
    assert fault["remaining"] is None
    for _ in range(5):
        assert venue.post("/info", {"type": "allMids"}).status_code == 502
    assert venue.post("/exchange", {}).status_code != 502  # only its own path
    assert venue.server.faults.clear() == 1
    assert venue.post("/info", {"type": "allMids"}).status_code == 200


# ------------------------------------------------------------------------------------------ malformed


@pytest.mark.parametrize("apply", [False, True])
def test_malformed_exchange_answer(fresh_venue: Venue, apply: bool) -> None:
    venue = fresh_venue
    trader = venue.trader("fault-malformed")
    cloid = Cloid.from_int(0xBAD0 + apply)
    add_faults(venue, {"type": "malformed", "path": "/exchange", "count": 1, "apply": apply})
    response = venue.post("/exchange", signed_body(trader.wallet, order_action(venue, cloid)))
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    assert order_exists(trader, cloid) is apply
    assert len(trader.open_orders()) == int(apply)


def test_malformed_through_the_sdk(fresh_venue: Venue) -> None:
    venue = fresh_venue
    trader = venue.trader("fault-malformed-sdk")
    venue.server.faults.add(
        [
            {"type": "malformed", "path": "/info", "count": 1},
            {"type": "malformed", "path": "/exchange", "count": 1, "apply": True},
        ]
    )
    # the SDK does not raise: it returns {"error": "Could not parse JSON: <body>"}
    assert set(trader.info.all_mids()) == {"error"}
    result = trader.exchange.order("ETH", True, 0.01, far_bid(venue), GTC)
    assert result["error"].startswith("Could not parse JSON")
    assert len(trader.open_orders()) == 1  # ... and yet the order is there


# ------------------------------------------------------------------------------------------ hang


@pytest.mark.parametrize("apply", [False, True])
def test_hang_times_the_client_out_and_the_venue_keeps_serving(fresh_venue: Venue, apply: bool) -> None:
    venue = fresh_venue
    trader = venue.trader("fault-hang")
    impatient = Exchange(trader.wallet, venue.url, timeout=0.5)
    cloid = Cloid.from_int(0x4A46 + apply)
    # 30 s: still hanging when the test looks; the server's shutdown ends it at teardown
    venue.server.faults.add({"type": "hang", "path": "/exchange", "count": 1, "apply": apply, "seconds": 30})
    with pytest.raises(requests.exceptions.Timeout):
        impatient.order("ETH", True, 0.01, far_bid(venue), GTC, cloid=cloid)
    wait_for(lambda: venue.server.hanging == 1, what="the hung request")
    # other requests are served meanwhile, and they can tell whether the action happened
    assert "ETH" in trader.info.all_mids()
    assert order_exists(trader, cloid) is apply
    retry = trader.exchange.order("ETH", True, 0.01, far_bid(venue), GTC, cloid=Cloid.from_int(0x4A50))
    assert "resting" in retry["response"]["data"]["statuses"][0]
    assert venue.server.hanging == 1


def test_hang_ends_with_the_connection_closed_without_response(fresh_venue: Venue) -> None:
    venue = fresh_venue
    venue.server.faults.add({"type": "hang", "path": "/info", "count": 1, "seconds": 1})
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(venue.url + "/info", json={"type": "allMids"}, timeout=10)
    assert venue.server.hanging == 0
    assert "ETH" in venue.info_request({"type": "allMids"})


# ------------------------------------------------------------------------------------------ WebSocket


@pytest.mark.parametrize("abrupt", [False, True])
def test_drop_ws_ends_subscribed_connections(fresh_venue: Venue, ws: ClientConnection, abrupt: bool) -> None:
    venue = fresh_venue
    if abrupt:
        (applied,) = add_faults(venue, {"type": "dropWs", "abrupt": True})["applied"]
        assert applied == {"type": "dropWs", "abrupt": True, "dropped": 1}
    else:
        assert venue.server.drop_websockets(abrupt=False) == 1
    closed = end_of(ws)
    if abrupt:  # the TCP connection just went away: no close frame
        assert isinstance(closed, ConnectionClosedError)
        assert closed.rcvd is None
    else:
        assert isinstance(closed, ConnectionClosedOK)
        assert closed.rcvd is not None
        assert closed.rcvd.code == 1001
    wait_for(lambda: not venue.server.hub.subs, what="the server to forget the subscription")
    with connect(ws_url(venue), open_timeout=5) as again:  # a new connection works
        again.send(json.dumps({"method": "subscribe", "subscription": {"type": "l2Book", "coin": "ETH"}}))
        frames = frames_until(again, lambda f: f["channel"] == "l2Book")
        assert frames[0]["channel"] == "subscriptionResponse"


def test_ws_silence_drops_frames_until_cleared(fresh_venue: Venue, ws: ClientConnection) -> None:
    venue = fresh_venue
    bid, _ = venue.book("ETH")
    add_faults(venue, {"type": "wsSilence", "seconds": 60})
    assert [f["type"] for f in listed(venue)] == ["wsSilence"]
    # during the silence: a JSON ping, a subscription and a book move all get no frame
    ws.send(PING)
    ws.send(json.dumps({"method": "subscribe", "subscription": {"type": "trades", "coin": "ETH"}}))
    wait_for(lambda: ("trades", "ETH") in venue.server.hub.subs, what="the subscription (served, silently)")
    venue.set_price("ETH", str(round(bid * 1.02)))
    silenced_book = venue.info_request({"type": "l2Book", "coin": "ETH"})["levels"]
    protocol_pong = ws.ping()
    assert not protocol_pong.wait(0.3)  # no pong of either kind either
    assert venue.session.delete(venue.url + "/sim/faults", timeout=10).json()["cleared"] == 1
    # frames again; the first one is the pong of a new ping: what was pushed meanwhile is lost
    ws.send(PING)
    assert frames_until(ws, lambda f: f == PONG) == [PONG]
    assert ws.ping().wait(5)
    venue.set_price("ETH", str(round(bid * 0.98)))
    (book,) = frames_until(ws, lambda f: f["channel"] == "l2Book")
    assert book["data"]["levels"] != silenced_book


def test_ws_silence_ends_by_itself(fresh_venue: Venue, ws: ClientConnection) -> None:
    venue = fresh_venue
    venue.server.faults.add({"type": "wsSilence", "seconds": 0.5})
    assert venue.server.faults.ws_silenced()
    wait_for(lambda: not venue.server.faults.ws_silenced(), what="the end of the silence")
    assert listed(venue) == []
    ws.send(PING)
    assert frames_until(ws, lambda f: f == PONG) == [PONG]


# ------------------------------------------------------------------------------------------ clock


def test_clock_jump_moves_venue_time(fresh_venue: Venue) -> None:
    venue = fresh_venue
    trader = venue.trader("fault-clock")
    before = trader.state()["time"]
    (applied,) = add_faults(venue, {"type": "clockJump", "ms": 3_600_000})["applied"]
    assert applied == {"type": "clockJump", "ms": 3_600_000, "time": before + 3_600_000}
    assert trader.state()["time"] == before + 3_600_000  # the clock is stepped: nothing else moved it
    trader.exchange.market_open("ETH", True, 0.01)
    (fill,) = trader.info.user_fills(trader.address)
    assert fill["time"] == before + 3_600_000
    venue.server.faults.add({"type": "clockJump", "ms": 1})
    assert venue.now() == before + 3_600_001


@pytest.mark.parametrize("stepped", [True, False])
def test_sim_clock_jump_in_both_modes(stepped: bool) -> None:
    clock = SimClock(start_ms=1_000_000, stepped=stepped)
    before = clock.now_ms()
    after = clock.jump(86_400_000)
    assert after >= before + 86_400_000
    assert clock.now_ms() >= after
    with pytest.raises(ValueError, match="positive"):
        clock.jump(-1)


# ------------------------------------------------------------------------------------------ the API


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "JSON"),
        ({"type": "nope"}, "unknown fault type"),
        ({"type": "httpStatus", "path": "/info", "status": 404}, "status must be"),
        ({"type": "httpStatus", "path": "/foo", "status": 500}, "path"),
        ({"type": "httpStatus", "path": "/info", "status": 500, "cnt": 2}, "does not take cnt"),
        ({"type": "hang", "path": "/info", "count": 0}, "count"),
        ({"type": "hang", "path": "/info", "seconds": -1}, "seconds"),
        ({"type": "malformed", "path": "/info", "apply": "yes"}, "apply"),
        ({"type": "wsSilence"}, "seconds"),
        ({"type": "clockJump", "ms": -5}, "positive"),
        ({"type": "dropWs", "abrupt": 1}, "abrupt"),
        ([], "non-empty"),
        ([{"type": "clear"}, {"type": "hang"}], "fault #1"),
    ],
)
def test_bad_faults_are_refused_with_400(fresh_venue: Venue, body: Any, reason: str) -> None:
    venue = fresh_venue
    venue.server.faults.add({"type": "httpStatus", "path": "/info", "status": 500, "count": 1})
    if isinstance(body, str):
        response = venue.session.post(venue.url + "/sim/faults", data=body, timeout=10)
    else:
        response = venue.post("/sim/faults", body)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    assert reason in response.text
    assert len(listed(venue)) == 1  # all or nothing: not even the valid "clear" ran


def test_list_and_clear(fresh_venue: Venue) -> None:
    venue = fresh_venue
    result = add_faults(
        venue,
        [
            {"type": "httpStatus", "path": "/info", "status": 500, "count": 2},
            {"type": "malformed", "path": "/exchange", "count": 1, "apply": True},
            {"type": "hang", "path": "/exchange", "seconds": 5},
        ],
    )
    assert result["active"] == listed(venue)
    assert [(f["type"], f["path"], f["remaining"]) for f in listed(venue)] == [
        ("httpStatus", "/info", 2),
        ("malformed", "/exchange", 1),
        ("hang", "/exchange", None),
    ]
    assert listed(venue)[2] == {
        "id": 3, "type": "hang", "path": "/exchange", "remaining": None, "apply": False, "seconds": 5.0,
    }  # fmt: skip
    assert venue.post("/info", {"type": "allMids"}).status_code == 500
    assert listed(venue)[0]["remaining"] == 1
    response = venue.session.delete(venue.url + "/sim/faults", timeout=10)
    assert response.json() == {"status": "ok", "cleared": 3}
    assert listed(venue) == []
    assert venue.post("/info", {"type": "allMids"}).status_code == 200


def test_every_applied_fault_is_logged(fresh_venue: Venue) -> None:
    venue = fresh_venue
    venue.server.faults.add({"type": "httpStatus", "path": "/info", "status": 503, "count": 2})
    with structlog.testing.capture_logs() as logs:
        venue.post("/info", {"type": "allMids"})
        venue.post("/info", {"type": "allMids"})
        venue.server.faults.add({"type": "clockJump", "ms": 5})
    applied = [e for e in logs if e["event"] == "fault.applied"]
    assert [(e["type"], e["path"], e["remaining"]) for e in applied] == [
        ("httpStatus", "/info", 1),
        ("httpStatus", "/info", 0),
        ("clockJump", None, None),
    ]
