"""The real venue's limits: the per-IP REST weight budget (HTTP 429) and at most 10 distinct users in
WebSocket user subscriptions per IP. Both can be switched off (`ServerLimits(... = None)`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websocket
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError
from support import Inbox, Venue, wait_for, wallet_for

from hyperfollow.exchange.server import ServerLimits

USERS = [wallet_for(f"ws-limit-user-{i}").address for i in range(12)]


def test_ip_weight_budget_answers_429(make_venue: Callable[..., Venue]) -> None:
    venue = make_venue(limits=ServerLimits(ip_weight_per_min=50))
    info = Info(venue.url, skip_ws=True)  # spotMeta + meta: 20 + 20
    for _ in range(5):  # allMids weighs 2: 40 + 5 * 2 = 50, the whole budget
        assert "ETH" in info.all_mids()
    with pytest.raises(ClientError) as error:
        info.all_mids()
    assert error.value.status_code == 429
    assert error.value.error_message.startswith("Too many requests")

    exchange_response = venue.post("/exchange", {"action": {"type": "noop"}, "nonce": 1})
    assert exchange_response.status_code == 429
    assert exchange_response.headers["Content-Type"].startswith("text/plain")
    # the operator API is not the venue's: it is never limited
    venue.fund(USERS[0], "10")
    assert venue.session.get(venue.url + "/health", timeout=10).status_code == 200


def test_default_budget_is_1200_a_minute(make_venue: Callable[..., Venue]) -> None:
    venue = make_venue(limits=ServerLimits())
    info = Info(venue.url, skip_ws=True, meta={"universe": []}, spot_meta={"universe": [], "tokens": []})
    for _ in range(20):  # userRole weighs 60: 20 of them are the whole 1,200
        assert info.user_role(USERS[0]) == {"role": "missing"}
    with pytest.raises(ClientError) as error:
        info.user_role(USERS[0])
    assert error.value.status_code == 429


def test_ip_weight_budget_can_be_switched_off(make_venue: Callable[..., Venue]) -> None:
    venue = make_venue(limits=ServerLimits(ip_weight_per_min=None))
    info = Info(venue.url, skip_ws=True, meta={"universe": []}, spot_meta={"universe": [], "tokens": []})
    for _ in range(25):  # 1,500 weight
        assert info.user_role(USERS[0]) == {"role": "missing"}


@pytest.fixture
def raw_ws(make_venue: Callable[..., Venue]) -> Iterator[Callable[[Venue], websocket.WebSocket]]:
    sockets: list[websocket.WebSocket] = []

    def connect(venue: Venue) -> websocket.WebSocket:
        ws = websocket.create_connection("ws" + venue.url[len("http") :] + "/ws", timeout=5)
        sockets.append(ws)
        return ws

    yield connect
    for ws in sockets:
        ws.close()


def _subscribe(ws: websocket.WebSocket, user: str) -> dict[str, Any]:
    """Subscribe to a user's fills; returns the first frame that is not the subscription ack."""
    ws.send(json.dumps({"method": "subscribe", "subscription": {"type": "userFills", "user": user}}))
    while True:
        frame = json.loads(ws.recv())
        if frame["channel"] != "subscriptionResponse":
            return frame  # type: ignore[no-any-return]


def test_ws_user_limit_through_the_sdk(make_venue: Callable[..., Venue]) -> None:
    venue = make_venue(limits=ServerLimits(ws_max_users_per_ip=10))
    info = venue.ws_info()
    inboxes = [Inbox() for _ in USERS[:11]]
    for user, inbox in zip(USERS[:11], inboxes, strict=True):
        info.subscribe({"type": "userFills", "user": user}, inbox)
    for user, inbox in zip(USERS[:10], inboxes[:10], strict=True):
        snapshot = inbox.wait(what=f"userFills snapshot of {user}")
        assert snapshot["data"]["isSnapshot"] is True
    # the 11th user's subscription was refused: its callback never hears anything, even after a fill
    eleventh = venue.trader("ws-limit-eleventh", wallet=wallet_for("ws-limit-user-10"))
    eleventh.exchange.market_open("ETH", True, 0.01)
    venue.advance(1_000)
    assert inboxes[10].messages == []


def test_ws_user_limit_counts_per_ip(
    make_venue: Callable[..., Venue], raw_ws: Callable[[Venue], websocket.WebSocket]
) -> None:
    venue = make_venue(limits=ServerLimits(ws_max_users_per_ip=10))
    first, second = raw_ws(venue), raw_ws(venue)
    for user in USERS[:6]:
        assert _subscribe(first, user)["data"]["isSnapshot"] is True
    for user in USERS[6:10]:
        assert _subscribe(second, user)["data"]["isSnapshot"] is True
    refused = _subscribe(second, USERS[10])
    assert refused == {"channel": "error", "data": "Cannot track more than 10 total users."}
    # a user already tracked from this IP is no new user
    assert _subscribe(second, USERS[0])["data"]["user"] == USERS[0].lower()
    # unsubscribing one user everywhere frees a slot
    first.send(json.dumps({"method": "unsubscribe", "subscription": {"type": "userFills", "user": USERS[1]}}))
    assert json.loads(first.recv())["channel"] == "subscriptionResponse"
    assert _subscribe(first, USERS[10])["data"]["isSnapshot"] is True


def test_ws_user_limit_can_be_switched_off(make_venue: Callable[..., Venue]) -> None:
    venue = make_venue(limits=ServerLimits(ws_max_users_per_ip=None))
    info = venue.ws_info()
    inboxes = [Inbox() for _ in USERS]
    for user, inbox in zip(USERS, inboxes, strict=True):
        info.subscribe({"type": "userFills", "user": user}, inbox)
    wait_for(lambda: all(inbox.messages for inbox in inboxes), what="12 userFills snapshots")
    assert all(inbox.messages[0]["data"]["isSnapshot"] is True for inbox in inboxes)
