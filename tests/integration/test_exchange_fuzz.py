"""A generated hostile client against the embedded exchange served in a thread: random JSON and bytes,
and near-valid requests (every /info type, every signed action the trader can send, every WebSocket
subscription, with fields dropped, retyped, made huge, unicode or deeply nested).

For every request: no 5xx; a 4xx is plain text, printable and bounded; a refused request leaves the
funded trader's balances, open orders and positions as they were; the WebSocket answers every frame
(a ping after each frame gets its pong) and never drops the connection. `/health` is fine afterwards.

Bounded and reproducible: a fixed number of examples per target, derandomized, no example database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import NEXT_NONCE, Trader, Venue, serve_venue, signed_body
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

GTC = {"limit": {"tif": "Gtc"}}
ETH = 1
MAX_ERROR_TEXT = 300


def fuzz_settings(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# ------------------------------------------------------------------------------------------ strategies

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)
SPECIAL: list[Any] = [
    2**63, 2**64, 2**64 + 1, -(2**63) - 1, -1, 10**30, 10**400, 1e308, -0.0, 0.1,
    "", "0", "-1", "1e9", "0x", "0x" + "f" * 40, "0x" + "F" * 40, "0x0x" + "a" * 38,
    "\u0661\u0662\u0663", "1" * 5000, "\u202e", "\x00", "0." + "0" * 50 + "1", "ETH\n",
    "3000.5", "1e-9", "NaN", "Infinity", "\ud800", "a\udfffb", "BTC", "@1", "xyz:TSLA",
    "PURR/USDC", "Gtc", "Ioc", "Alo", "tp", "sl", [], {}, [[[[[[[[]]]]]]]],
]  # fmt: skip
HOSTILE = st.one_of(
    SCALARS,
    JSON,
    st.sampled_from(SPECIAL),
    st.integers(1, 80).map(lambda n: json.loads("[" * n + "]" * n)),
    st.text(min_size=200, max_size=3000),
)


@st.composite
def mutated(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """``value`` with some fields dropped, replaced by hostile values or extra keys added, recursively."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            choice = draw(st.sampled_from(["keep", "keep", "mutate", "mutate", "drop", "hostile"]))
            if choice == "drop":
                continue
            if choice == "hostile":
                out[key] = draw(HOSTILE)
            elif choice == "mutate" and depth < 4:
                out[key] = draw(mutated(item, depth + 1))
            else:
                out[key] = item
        if draw(st.integers(0, 5)) == 0:
            out[draw(st.text(max_size=10))] = draw(HOSTILE)
        return out
    if isinstance(value, list):
        if depth >= 4:  # a hostile value may nest thousands of levels: mutate only near the top
            return value
        items = [draw(mutated(item, depth + 1)) for item in value]
        if depth <= 1 and draw(st.integers(0, 4)) == 0:  # repeated near the top only: bodies stay bounded
            items = items * draw(st.integers(0, 30))
        return items
    return value if draw(st.integers(0, 2)) else draw(HOSTILE)


RAW = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.integers(1, 3000).map(lambda n: ("[" * n + "]" * n).encode()),
    st.integers(1, 3000).map(lambda n: ('{"a":' * n + "1" + "}" * n).encode()),
    st.sampled_from(
        [
            b"NaN",
            b"1e999",
            b'"\\ud800"',
            b'{"type":"meta"',
            b"\xef\xbb\xbf{}",
            b'{"type":"meta"}{}',
            b"[" * 100_000,
        ]
    ),
)


def dumps(value: Any) -> bytes:
    """The bytes a client would send (NaN and lone surrogates included: json.dumps escapes them)."""
    return json.dumps(value).encode()


# ------------------------------------------------------------------------------------------ the venue


@pytest.fixture(scope="module")
def fuzz_venue() -> Iterator[Venue]:
    with serve_venue() as venue:
        yield venue


@pytest.fixture(scope="module")
def victim(fuzz_venue: Venue) -> Trader:
    """A funded trader with a position and a resting order: what a refused request must not touch."""
    trader = fuzz_venue.trader("fuzz-victim", usd="100000")
    trader.exchange.market_open("ETH", True, 0.5)
    ensure_resting(fuzz_venue, trader)
    assert trader.positions()["ETH"]["szi"] == "0.5"
    return trader


def far_bid(venue: Venue) -> int:
    engine = venue.server.exchange.engine
    bid = venue.server.call(lambda: engine.books[ETH].best_bid())
    assert bid is not None
    return int(bid * 8 // 10 // 10 ** engine.insts[ETH].px_decimals)


def ensure_resting(venue: Venue, trader: Trader) -> int:
    """The oid of one of the trader's resting orders (placing one if a fuzzed cancel took them all)."""
    orders = trader.open_orders()
    if orders:
        return int(orders[0]["oid"])
    result = trader.exchange.order("ETH", True, 0.01, far_bid(venue), GTC)
    return int(result["response"]["data"]["statuses"][0]["resting"]["oid"])


def state_of(venue: Venue, user: str) -> dict[str, Any]:
    """Balances, open orders and positions of ``user``, read on the server's loop."""
    exchange = venue.server.exchange

    def read() -> dict[str, Any]:
        perp = exchange.info({"type": "clearinghouseState", "user": user})
        xyz = exchange.info({"type": "clearinghouseState", "user": user, "dex": "xyz"})
        perp.pop("time")
        xyz.pop("time")
        return {
            "perp": perp,
            "xyz": xyz,
            "spot": exchange.info({"type": "spotClearinghouseState", "user": user}),
            "orders": exchange.info({"type": "frontendOpenOrders", "user": user}),
            "xyzOrders": exchange.info({"type": "frontendOpenOrders", "user": user, "dex": "xyz"}),
        }

    return venue.server.call(read)


def check_http(response: requests.Response) -> Any:
    """No 5xx; a 4xx is a bounded printable text; a 200 is JSON (returned)."""
    assert response.status_code < 500, response.text[:300]
    if response.status_code != 200:
        assert response.status_code in (400, 413, 422), response.status_code
        assert response.headers["Content-Type"].startswith("text/plain")
        assert len(response.text) <= MAX_ERROR_TEXT
        assert response.text.isprintable(), repr(response.text)
        return None
    return response.json()


def refused(result: Any) -> bool:
    """A /exchange answer that did nothing: 4xx, a whole-action error, or every order/cancel refused."""
    if result is None or result.get("status") != "ok":
        return True
    data = result.get("response", {}).get("data")
    statuses = data.get("statuses") if isinstance(data, dict) else None
    return isinstance(statuses, list) and all(isinstance(s, dict) and "error" in s for s in statuses)


# ------------------------------------------------------------------------------------------ /info


def info_templates(venue: Venue, user: str, oid: int) -> list[dict[str, Any]]:
    """A valid request of every /info type the venue serves (extra keys are ignored by the venue)."""
    fields = {"user": user, "coin": "ETH", "dex": "", "oid": oid, "startTime": 0, "endTime": None,
              "builder": user, "aggregateByTime": False, "nSigFigs": None,
              "req": {"coin": "ETH", "interval": "1m", "startTime": 0, "endTime": 2**41}}  # fmt: skip
    return [{"type": kind, **fields} for kind in sorted(venue.server.exchange.info_api.handlers)]


@fuzz_settings(300)
@given(raw=RAW)
def test_fuzz_info_random_bytes(fuzz_venue: Venue, victim: Trader, raw: bytes) -> None:
    before = state_of(fuzz_venue, victim.user)
    check_http(fuzz_venue.session.post(fuzz_venue.url + "/info", data=raw, timeout=10))
    assert state_of(fuzz_venue, victim.user) == before


@fuzz_settings(300)
@given(data=st.data())
def test_fuzz_info_near_valid(fuzz_venue: Venue, victim: Trader, data: st.DataObject) -> None:
    templates = info_templates(fuzz_venue, victim.user, ensure_resting(fuzz_venue, victim))
    body = data.draw(st.sampled_from(templates).flatmap(mutated) | JSON)
    before = state_of(fuzz_venue, victim.user)
    check_http(fuzz_venue.session.post(fuzz_venue.url + "/info", data=dumps(body), timeout=10))
    assert state_of(fuzz_venue, victim.user) == before


# ------------------------------------------------------------------------------------------ /exchange


def action_templates(venue: Venue, oid: int) -> list[dict[str, Any]]:
    px = str(far_bid(venue))
    order = {"a": ETH, "b": True, "p": px, "s": "0.01", "r": False, "t": GTC}
    trigger = {"a": ETH, "b": False, "p": "100", "s": "0.01", "r": True,
               "t": {"trigger": {"isMarket": True, "triggerPx": "150", "tpsl": "sl"}}}  # fmt: skip
    cloid = "0x" + "ab" * 16
    now = venue.now()
    return [
        {"type": "order", "orders": [order], "grouping": "na"},
        {"type": "order", "orders": [{**order, "c": cloid}, trigger], "grouping": "normalTpsl"},
        {"type": "order", "orders": [{**order, "t": {"limit": {"tif": "Ioc"}}, "p": str(int(px) * 3)}],
         "grouping": "na"},
        {"type": "cancel", "cancels": [{"a": ETH, "o": oid}]},
        {"type": "cancelByCloid", "cancels": [{"asset": ETH, "cloid": cloid}]},
        {"type": "batchModify", "modifies": [{"oid": oid, "order": order}]},
        {"type": "modify", "oid": oid, "order": order},
        {"type": "scheduleCancel", "time": now + 60_000},
        {"type": "updateLeverage", "asset": ETH, "isCross": True, "leverage": 5},
        {"type": "updateIsolatedMargin", "asset": ETH, "isBuy": True, "ntli": 1_000_000},
        {"type": "noop"},
        {"type": "usdSend", "destination": "0x" + "d" * 40, "amount": "1", "time": now,
         "signatureChainId": "0x66eee", "hyperliquidChain": "Testnet"},
        {"type": "usdClassTransfer", "amount": "1", "toPerp": False, "nonce": now,
         "signatureChainId": "0x66eee", "hyperliquidChain": "Testnet"},
        {"type": "withdraw3", "destination": "0x" + "d" * 40, "amount": "1", "time": now,
         "signatureChainId": "0x66eee", "hyperliquidChain": "Testnet"},
        {"type": "subAccountTransfer", "subAccountUser": "0x" + "e" * 40, "isDeposit": True,
         "usd": 1_000_000},
        {"type": "vaultTransfer", "vaultAddress": "0x" + "e" * 40, "isDeposit": True, "usd": 1_000_000},
        {"type": "createSubAccount", "name": "fuzz"},
        {"type": "approveAgent", "agentAddress": "0x" + "a" * 40, "agentName": "fuzz", "nonce": now,
         "signatureChainId": "0x66eee", "hyperliquidChain": "Testnet"},
    ]  # fmt: skip


@fuzz_settings(200)
@given(raw=RAW | JSON.map(dumps))
def test_fuzz_exchange_random(fuzz_venue: Venue, victim: Trader, raw: bytes) -> None:
    before = state_of(fuzz_venue, victim.user)
    check_http(fuzz_venue.session.post(fuzz_venue.url + "/exchange", data=raw, timeout=10))
    assert state_of(fuzz_venue, victim.user) == before


@fuzz_settings(300)
@given(data=st.data())
def test_fuzz_exchange_signed_near_valid(fuzz_venue: Venue, victim: Trader, data: st.DataObject) -> None:
    """Actions signed by the trader itself, so they reach the account: refused ones change nothing."""
    action = data.draw(
        st.sampled_from(action_templates(fuzz_venue, ensure_resting(fuzz_venue, victim))).flatmap(mutated)
    )
    try:
        body = signed_body(victim.wallet, action)
    except Exception:  # not msgpack-able (ints beyond 64 bits, ...): send it with a made-up signature
        body = {"action": action, "nonce": NEXT_NONCE(), "signature": {"r": "0x1", "s": "0x1", "v": 27},
                "vaultAddress": None, "expiresAfter": None}  # fmt: skip
    if data.draw(st.integers(0, 4)) == 0:  # a damaged envelope
        body = data.draw(mutated(body))
    before = state_of(fuzz_venue, victim.user)
    result = check_http(fuzz_venue.session.post(fuzz_venue.url + "/exchange", data=dumps(body), timeout=10))
    if refused(result):
        assert state_of(fuzz_venue, victim.user) == before, (action, result)


# ------------------------------------------------------------------------------------------ WebSocket


def sub_templates(user: str) -> list[dict[str, Any]]:
    subs: list[dict[str, Any]] = [
        {"type": "allMids", "dex": ""}, {"type": "l2Book", "coin": "ETH", "nSigFigs": None},
        {"type": "trades", "coin": "ETH"}, {"type": "bbo", "coin": "ETH"},
        {"type": "candle", "coin": "ETH", "interval": "1m"}, {"type": "activeAssetCtx", "coin": "ETH"},
        {"type": "activeAssetData", "user": user, "coin": "ETH"},
    ]  # fmt: skip
    for kind in ("userFills", "orderUpdates", "userEvents", "userFundings", "userNonFundingLedgerUpdates",
                 "webData2", "notification"):  # fmt: skip
        subs.append({"type": kind, "user": user})
    return subs


def frame_strategy(venue: Venue, user: str) -> st.SearchStrategy[str | bytes]:
    subs = sub_templates(user)
    infos = info_templates(venue, user, 1)
    frames = st.one_of(
        st.sampled_from(subs).map(lambda s: {"method": "subscribe", "subscription": s}),
        st.sampled_from(subs).map(lambda s: {"method": "unsubscribe", "subscription": s}),
        st.sampled_from(infos).map(
            lambda p: {"method": "post", "id": 1, "request": {"type": "info", "payload": p}}
        ),
        st.just(
            {
                "method": "post",
                "id": 2,
                "request": {
                    "type": "action",
                    "payload": {
                        "action": {"type": "noop"},
                        "nonce": 1,
                        "signature": {"r": "0x1", "s": "0x1", "v": 27},
                    },
                },
            }
        ),
        st.just({"method": "ping"}),
    ).flatmap(mutated)
    return st.one_of(
        frames.map(json.dumps),
        JSON.map(json.dumps),
        st.text(max_size=200),
        st.binary(max_size=100),
        st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
    )


@pytest.fixture(scope="module")
def fuzz_ws(fuzz_venue: Venue) -> Iterator[ClientConnection]:
    with connect(fuzz_venue.url.replace("http://", "ws://") + "/ws", open_timeout=5, max_size=None) as ws:
        yield ws


def until_pong(ws: ClientConnection) -> list[dict[str, Any]]:
    """Frames up to the pong answering our ping; fails if the connection ends meanwhile."""
    ws.send('{"method":"ping"}')
    seen: list[dict[str, Any]] = []
    try:
        while True:
            frame = json.loads(ws.recv(timeout=5))
            if frame == {"channel": "pong"}:
                return seen
            seen.append(frame)
    except ConnectionClosed as closed:
        pytest.fail(f"the venue dropped the WebSocket: {closed!r} (close frame: {closed.rcvd})")


@fuzz_settings(300)
@given(data=st.data())
def test_fuzz_ws_frames(
    fuzz_venue: Venue, victim: Trader, fuzz_ws: ClientConnection, data: st.DataObject
) -> None:
    frame = data.draw(frame_strategy(fuzz_venue, victim.user))
    before = state_of(fuzz_venue, victim.user)
    fuzz_ws.send(frame)
    for reply in until_pong(fuzz_ws):
        if reply["channel"] == "error":
            assert isinstance(reply["data"], str)
            assert len(reply["data"]) <= MAX_ERROR_TEXT
            assert reply["data"].isprintable(), repr(reply["data"])
            assert not reply["data"].startswith("Internal error"), frame
        elif reply["channel"] == "post" and reply["data"]["response"]["type"] == "error":
            assert len(reply["data"]["response"]["payload"]) <= MAX_ERROR_TEXT
    assert state_of(fuzz_venue, victim.user) == before


def test_health_after_the_fuzz(fuzz_venue: Venue, victim: Trader) -> None:
    """Runs after the fuzz targets (file order): the venue still serves and still trades."""
    health = fuzz_venue.session.get(fuzz_venue.url + "/health", timeout=10)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    result = victim.exchange.order("ETH", True, 0.01, far_bid(fuzz_venue), GTC)
    assert "resting" in result["response"]["data"]["statuses"][0]
