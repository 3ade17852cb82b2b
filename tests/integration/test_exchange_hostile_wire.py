"""The embedded exchange against a hostile client: bodies of any shape get a 4xx in the venue's error
shape (never a 500, never an echo of raw input), bad WebSocket frames get an error frame on an open
connection, operator requests cannot freeze the server, WebSocket `post` spends the same rate-limit
budget as REST, and malformed addresses or a missing `user` are refused.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from support import NEXT_NONCE, Trader, Venue, serve_venue, signed_body, wallet_for
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from hyperfollow.exchange.embedded import MAX_ADVANCE_MS
from hyperfollow.exchange.faults import MAX_CLOCK_JUMP_MS
from hyperfollow.exchange.server import RATE_LIMITED, ServerLimits

ETH = 1  # asset id of ETH on the main dex
GTC = {"limit": {"tif": "Gtc"}}
DEEP = "[" * 1100 + "]" * 1100  # 2.2 KB, deeper than Python's recursion limit
SIM_POSTS = ["/sim/fund", "/sim/price", "/sim/advance", "/sim/vault", "/sim/faults"]
# The venue's two 422 texts: a body that is not JSON, and JSON that is not the request type.
VENUE_422 = (
    "Failed to parse the request body as JSON",
    "Failed to deserialize the JSON body into the target type",
)
MAX_ERROR_TEXT = 300  # an error text never grows with the input it complains about
# Every /info type whose venue request carries a `user`.
USER_TYPES = [
    "clearinghouseState", "spotClearinghouseState", "openOrders", "frontendOpenOrders", "userFills",
    "userFillsByTime", "userFunding", "userNonFundingLedgerUpdates", "orderStatus", "historicalOrders",
    "userRateLimit", "userFees", "portfolio", "userRole", "extraAgents", "subAccounts", "referral",
    "userVaultEquities", "userTwapSliceFills", "delegatorSummary", "delegations", "delegatorRewards",
    "delegatorHistory", "userToMultiSigSigners", "userDexAbstraction", "userAbstraction",
    "activeAssetData", "maxBuilderFee",
]  # fmt: skip
BAD_ADDRESSES = [
    "0x0x" + "a" * 38,  # a second prefix (int(..., 16) takes it)
    "0x+" + "a" * 39,  # a sign
    "0x" + "a" * 40 + "\n",  # a trailing newline
    "0x" + "a" * 39 + "\n",
    " 0x" + "a" * 39,
    "0x" + "\u0661" * 40,  # Arabic-Indic digits (str.isdigit, int() accept them)
    "0x" + "\uff41" * 40,  # fullwidth a
    "0x" + "a_" * 20,
    "0x" + "a" * 39,  # too short
    "0x" + "a" * 41,  # too long
    "0X" + "a" * 40,
    "a" * 42,
    "0x" + "g" * 40,
]


@pytest.fixture
def trader(venue: Venue, request: pytest.FixtureRequest) -> Trader:
    """A funded trader with a resting order, on the module's venue."""
    t = venue.trader(request.node.name)
    bid, _ = venue.book("ETH")
    result = t.exchange.order("ETH", True, 0.01, float(round(bid * 0.9)), GTC)
    assert "resting" in result["response"]["data"]["statuses"][0]
    return t


def ws_url(venue: Venue) -> str:
    return venue.url.replace("http://", "ws://") + "/ws"


@pytest.fixture
def ws(venue: Venue) -> Iterator[ClientConnection]:
    with connect(ws_url(venue), open_timeout=5, max_size=None) as conn:
        yield conn


def frames_until(ws: ClientConnection, predicate: Any, limit: int = 50) -> list[dict[str, Any]]:
    """Frames received up to and including the first one matching ``predicate``."""
    seen: list[dict[str, Any]] = []
    for _ in range(limit):
        frame = json.loads(ws.recv(timeout=5))
        seen.append(frame)
        if predicate(frame):
            return seen
    pytest.fail(f"no matching frame in {limit}: {seen[-3:]}")


def next_frame(ws: ClientConnection, channel: str) -> dict[str, Any]:
    """The next frame of ``channel`` (market pushes in between are skipped); fails if the connection
    dies."""
    try:
        return frames_until(ws, lambda f: f["channel"] == channel)[-1]
    except ConnectionClosed as closed:
        pytest.fail(f"the connection died: {closed!r}")


def assert_still_serves(ws: ClientConnection) -> None:
    """A valid subscription after the bad frame is acknowledged and its snapshot arrives."""
    sub = {"type": "bbo", "coin": "BTC"}
    ws.send(json.dumps({"method": "subscribe", "subscription": sub}))
    ack = next_frame(ws, "subscriptionResponse")
    assert ack["data"] == {"method": "subscribe", "subscription": sub}
    assert next_frame(ws, "bbo")["data"]["coin"] == "BTC"
    ws.send(json.dumps({"method": "unsubscribe", "subscription": sub}))
    next_frame(ws, "subscriptionResponse")


def assert_clean_text(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text[:200]
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.text
    assert len(text) <= MAX_ERROR_TEXT
    assert text.isprintable(), repr(text)
    return text


# ------------------------------------------------------------------------------------------ 1. no 500


@pytest.mark.parametrize("path", ["/info", "/exchange"])
@pytest.mark.parametrize(
    "raw",
    [
        DEEP,
        '{"type":' + DEEP + "}",
        '{"action":' + '{"a":' * 1100 + "1" + "}" * 1101,
        '{"type":"\\ud800"}',
        '{"type":"clearinghouseState","user":"\\udfff"}',
        '{"action":{"type":"\\ud800"},"nonce":1}',
        '{"type":"l2Book","coin":"ETH","nSigFigs":NaN}',
        '{"type":"l2Book","coin":1e400}',
        '{"action":[1],"nonce":1}',
        '{"action":"order","nonce":1}',
        b'{"type":"\xff\xfe"}',
    ],
)
def test_bad_bodies_get_422_in_the_venue_shape(venue: Venue, path: str, raw: str | bytes) -> None:
    response = venue.session.post(venue.url + path, data=raw, timeout=10)
    text = assert_clean_text(response, 422)
    assert text.startswith(VENUE_422), text


@pytest.mark.parametrize("path", SIM_POSTS)
@pytest.mark.parametrize("raw", [DEEP, '{"user":' + DEEP + "}", '{"user":"\\ud800","usd":"1"}'])
def test_bad_operator_bodies_get_400(venue: Venue, path: str, raw: str) -> None:
    before = len(venue.server.exchange.engine.accounts)
    response = venue.session.post(venue.url + path, data=raw, timeout=10)
    assert_clean_text(response, 400)
    assert len(venue.server.exchange.engine.accounts) == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/info", {"type": "x" * 100_000}),
        ("/info", {"type": "meta", "dex": "\u202e" * 50_000}),
        ("/exchange", {"action": {"type": "x" * 100_000}, "nonce": 1}),
        ("/info", {"type": "\x00\x1b[31m\u2028"}),
    ],
)
def test_echoed_input_is_bounded_and_escaped(venue: Venue, path: str, body: Any) -> None:
    assert_clean_text(venue.post(path, body), 422)


def test_refused_bodies_change_nothing(venue: Venue, trader: Trader) -> None:
    before = trader.snapshot()
    for raw in (DEEP, '{"action":{"type":"\\ud800"},"nonce":1}', '{"action":[1],"nonce":1}'):
        assert venue.session.post(venue.url + "/exchange", data=raw, timeout=10).status_code == 422
    assert trader.snapshot() == before


# ------------------------------------------------------------------------------------------ 2. WS frames


@pytest.mark.parametrize(
    "frame",
    [
        {"method": "subscribe", "subscription": {"type": "l2Book", "coin": ["ETH"]}},
        {"method": "subscribe", "subscription": {"type": "l2Book", "coin": {"c": "ETH"}}},
        {"method": "subscribe", "subscription": {"type": "trades", "coin": ["ETH"]}},
        {"method": "subscribe", "subscription": {"type": "candle", "coin": ["ETH"], "interval": "1m"}},
        {"method": "subscribe", "subscription": {"type": "activeAssetData", "user": "0x" + "a" * 40,
                                                 "coin": ["ETH"]}},
        {"method": "subscribe", "subscription": {"type": "allMids", "dex": {"d": ""}}},
        {"method": "subscribe", "subscription": {"type": "allMids", "dex": ["xyz"]}},
        {"method": "unsubscribe", "subscription": {"type": "l2Book", "coin": ["ETH"]}},
        {"method": "subscribe", "subscription": {"type": ["l2Book"]}},
        {"method": {"m": 1}},
        {"method": "post", "id": 1, "request": {"type": "info", "payload": {"type": ["meta"]}}},
        {"method": "post", "id": 1, "request": {"type": ["info"], "payload": {}}},
        {"method": "post", "id": 1, "request": {"type": "action", "payload": {"action": [1]}}},
        {"method": "post", "id": 1, "request": {"type": "info", "payload": {"type": "\ud800"}}},
        {"method": "subscribe", "subscription": {"type": "l2Book", "coin": "x" * 500_000}},
    ],
)  # fmt: skip
def test_bad_ws_frames_get_an_error_frame_and_the_connection_stays(
    ws: ClientConnection, frame: dict[str, Any]
) -> None:
    ws.send(json.dumps(frame))
    try:  # a post is answered on its channel, unless the frame itself is not readable
        reply = frames_until(ws, lambda f: f["channel"] in ("error", "post"))[-1]
    except ConnectionClosed as closed:
        pytest.fail(f"the connection died: {closed!r}")
    text = reply["data"] if reply["channel"] == "error" else reply["data"]["response"]["payload"]
    assert isinstance(text, str)
    assert len(text) <= MAX_ERROR_TEXT
    assert text.isprintable(), repr(text)
    assert_still_serves(ws)


@pytest.mark.parametrize(
    "raw",
    [
        DEEP,
        '{"method":"post","id":1,"request":' + DEEP + "}",
        '{"method":"post","id":1,"request":{"type":"info","payload":' + DEEP + "}}",
        '{"method":"subscribe","subscription":{"type":"l2Book","coin":' + DEEP + "}}",
        '{"method":"post","id":' + DEEP + "}",
        '{"method":"ping","x":1e400}',
        "not json \x00",
    ],
)
def test_unparsable_ws_frames_get_an_error_frame(ws: ClientConnection, raw: str) -> None:
    ws.send(raw)
    reply = next_frame(ws, "error")
    assert len(reply["data"]) <= MAX_ERROR_TEXT
    assert reply["data"].isprintable()
    assert_still_serves(ws)


def test_ws_post_answers_with_its_id_and_bad_ids_are_refused(ws: ClientConnection) -> None:
    request = {"type": "info", "payload": {"type": "exchangeStatus"}}
    ws.send(json.dumps({"method": "post", "id": 7, "request": request}))
    reply = next_frame(ws, "post")["data"]
    assert reply["id"] == 7
    assert reply["response"]["type"] == "info"
    ws.send(json.dumps({"method": "post", "id": "x" * 10_000, "request": request}))
    assert len(next_frame(ws, "error")["data"]) <= MAX_ERROR_TEXT
    assert_still_serves(ws)


# ------------------------------------------------------------------------------------------ 3. operator


def test_advance_beyond_the_maximum_is_refused(fresh_venue: Venue) -> None:
    venue = fresh_venue
    before = venue.now()
    for ms in (10**12, MAX_ADVANCE_MS + 1):
        response = venue.session.post(venue.url + "/sim/advance", json={"ms": ms}, timeout=10)
        assert response.status_code == 400
        assert f"{MAX_ADVANCE_MS:,}" in response.text
    assert venue.now() == before


def test_clock_jump_beyond_the_maximum_is_refused(fresh_venue: Venue) -> None:
    venue = fresh_venue
    before = venue.now()
    year = 365 * 86_400_000
    response = venue.session.post(
        venue.url + "/sim/faults", json={"type": "clockJump", "ms": year}, timeout=10
    )
    assert response.status_code == 400
    assert f"{MAX_CLOCK_JUMP_MS:,}" in response.text
    assert venue.now() == before


def _health_while(venue: Venue, work: Any) -> list[tuple[float, int]]:
    """Run ``work()`` in a thread and poll `GET /health` until it ends; returns (latency, venue time)
    of every health answer received while the work was still running."""
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)
        finally:
            done.set()

    session = requests.Session()
    answers: list[tuple[float, int]] = []
    thread = threading.Thread(target=run)
    thread.start()
    try:
        while not done.is_set():
            start = time.monotonic()
            response = session.get(venue.url + "/health", timeout=30)
            latency = time.monotonic() - start
            if not done.is_set():
                answers.append((latency, int(response.json()["time"])))
            time.sleep(0.01)
    finally:
        thread.join(60)
        session.close()
    assert not errors, errors
    return answers


def test_health_answers_during_a_long_advance(fresh_venue: Venue) -> None:
    venue = fresh_venue
    start = venue.now()
    ms = 1_800_000  # half an hour: 1,800 market steps, seconds of work
    answers = _health_while(
        venue,
        lambda: venue.session.post(
            venue.url + "/sim/advance", json={"ms": ms}, timeout=120
        ).raise_for_status(),
    )
    assert venue.now() == start + ms
    midway = [t for _, t in answers if start < t < start + ms]
    assert len(midway) >= 3, answers  # seen while the clock was on its way: the loop was not blocked
    assert max(latency for latency, _ in answers) < 2.0


def test_health_answers_while_the_market_catches_up_a_clock_jump(fresh_venue: Venue) -> None:
    venue = fresh_venue
    venue.sim("/sim/faults", {"type": "clockJump", "ms": MAX_CLOCK_JUMP_MS})
    start = venue.now()
    answers = _health_while(venue, lambda: venue.advance(1_000))  # the step must cover a day of prices
    assert venue.now() == start + 1_000
    assert len(answers) >= 5, answers
    assert max(latency for latency, _ in answers) < 2.0


def test_advances_run_one_after_another(fresh_venue: Venue) -> None:
    venue = fresh_venue
    start = venue.now()
    threads = [threading.Thread(target=venue.advance, args=(30_000,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert venue.now() == start + 90_000


# ------------------------------------------------------------------------------------------ 4. WS post limit


def _ws_info(ws: ClientConnection, n: int, kind: str = "allMids") -> dict[str, Any]:
    ws.send(json.dumps({"method": "post", "id": n, "request": {"type": "info", "payload": {"type": kind}}}))
    reply: dict[str, Any] = next_frame(ws, "post")["data"]
    assert reply["id"] == n
    return reply["response"]  # type: ignore[no-any-return]


def test_ws_post_info_spends_the_ip_budget() -> None:
    with serve_venue(limits=ServerLimits(ip_weight_per_min=50)) as venue, connect(ws_url(venue)) as ws:
        for n in range(25):  # allMids weighs 2: 25 of them are the whole budget
            assert _ws_info(ws, n)["type"] == "info"
        refused = _ws_info(ws, 25)
        assert refused == {"type": "error", "payload": RATE_LIMITED}
        # REST sees the same budget spent
        assert venue.post("/info", {"type": "allMids"}).status_code == 429
        ws.send('{"method":"ping"}')
        assert next_frame(ws, "pong") == {"channel": "pong"}


def test_ws_post_refused_while_rest_answers_429() -> None:
    with serve_venue(limits=ServerLimits(ip_weight_per_min=100)) as venue:
        bid, _ = venue.book("ETH")  # 2
        trader = venue.trader("ws-post-limit")  # the SDK clients' startup: 80
        while venue.post("/info", {"type": "allMids"}).status_code == 200:
            pass  # spend the rest
        before = venue.server.exchange.info({"type": "frontendOpenOrders", "user": trader.user})
        action = {"type": "order", "orders": [{"a": ETH, "b": True, "p": str(round(bid * 0.9)), "s": "0.01",
                                               "r": False, "t": GTC}], "grouping": "na"}  # fmt: skip
        with connect(ws_url(venue)) as ws:
            assert _ws_info(ws, 1) == {"type": "error", "payload": RATE_LIMITED}
            body = signed_body(trader.wallet, action)
            ws.send(json.dumps({"method": "post", "id": 2, "request": {"type": "action", "payload": body}}))
            reply = next_frame(ws, "post")["data"]
            assert reply == {"id": 2, "response": {"type": "error", "payload": RATE_LIMITED}}
            ws.send('{"method":"ping"}')
            assert next_frame(ws, "pong") == {"channel": "pong"}
        after = venue.server.exchange.info({"type": "frontendOpenOrders", "user": trader.user})
        assert after == before == []


def test_ws_post_action_spends_the_address_budget() -> None:
    with serve_venue(address_budget=2) as venue, connect(ws_url(venue)) as ws:
        wallet = wallet_for("ws-post-address-budget")
        venue.fund(wallet.address, "1000")
        replies = []
        for n in range(3):
            body = signed_body(wallet, {"type": "noop"}, nonce=NEXT_NONCE())
            ws.send(json.dumps({"method": "post", "id": n, "request": {"type": "action", "payload": body}}))
            replies.append(next_frame(ws, "post")["data"]["response"])
        assert [r["payload"]["status"] for r in replies] == ["ok", "ok", "err"]
        assert replies[2]["payload"]["response"].startswith("Too many cumulative requests")


# ------------------------------------------------------------------------------------------ 5. addresses


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_malformed_addresses_are_refused_by_info(venue: Venue, address: str) -> None:
    for kind in ("clearinghouseState", "openOrders", "userFills", "userRole"):
        response = venue.post("/info", {"type": kind, "user": address})
        text = assert_clean_text(response, 422)
        assert text.startswith("Failed to deserialize the JSON body into the target type")


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_malformed_addresses_are_refused_by_fund_and_vault(venue: Venue, address: str) -> None:
    accounts = venue.server.exchange.engine.accounts
    before = set(accounts)
    assert_clean_text(venue.post("/sim/fund", {"user": address, "usd": "10"}), 400)
    assert_clean_text(venue.post("/sim/vault", {"leader": address, "usd": "10"}), 400)
    assert set(accounts) == before


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_malformed_addresses_are_refused_by_ws_user_subscriptions(ws: ClientConnection, address: str) -> None:
    ws.send(json.dumps({"method": "subscribe", "subscription": {"type": "userFills", "user": address}}))
    assert next_frame(ws, "error")["data"].startswith("Invalid subscription")
    assert_still_serves(ws)


def test_uppercase_hex_is_an_address(venue: Venue, trader: Trader) -> None:
    upper = "0x" + trader.user[2:].upper()
    state = venue.info_request({"type": "clearinghouseState", "user": upper})
    assert state["marginSummary"]["accountValue"] != "0.0"
    venue.fund(upper, "1")  # the same account, not a new one
    assert upper not in venue.server.exchange.engine.accounts


@pytest.mark.parametrize("kind", USER_TYPES)
def test_user_types_refuse_a_missing_or_bad_user(venue: Venue, kind: str) -> None:
    extra = {"coin": "ETH", "oid": 1, "startTime": 0, "builder": "0x" + "b" * 40}
    for body in ({"type": kind, **extra}, {"type": kind, "user": None, **extra},
                 {"type": kind, "user": 12, **extra}, {"type": kind, "user": "0x12", **extra}):  # fmt: skip
        text = assert_clean_text(venue.post("/info", body), 422)
        assert text.startswith("Failed to deserialize the JSON body into the target type")
    ok = venue.post("/info", {"type": kind, "user": "0x" + "c" * 40, **extra})
    assert ok.status_code == 200, ok.text
