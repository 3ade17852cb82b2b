"""`POST /exchange` and `POST /info` round trips over loopback, signature verification included.

An ``EmbeddedExchange(stepped=True, simulated_traders=False, address_budget=None)`` is served by
``running_in_thread`` on a free 127.0.0.1 port with ``ServerLimits(ip_weight_per_min=None)``; a wallet
is funded through ``POST /sim/fund``. The client is a keep-alive ``requests.Session`` in the same
process (the server thread and the client share one interpreter, as in the integration tests).

Each repetition sends ``PAIRS`` order + cancel pairs: a signed Gtc BTC bid 10 % under the mid (it rests),
then a signed ``cancel`` of the oid the venue answered. Every body has a fresh nonce and is signed and
JSON-encoded with the fast signer *before* its timer starts (orders are all pre-signed; a cancel is
signed from the order's answer between two timed requests), so the figures are HTTP + JSON + signer
recovery + nonce check + engine. Each answer is checked (``resting`` / ``success``).

Figures: p50 and p99 of the per-request wall time, median over ``REPEATS`` repetitions; the same for
``{"type": "l2Book", "coin": "BTC"}`` on ``/info``; for scale, the same order + cancel pairs through a
bare ``http.client`` connection, and ``EmbeddedExchange.exchange()`` called in-process (no HTTP).
"""

from __future__ import annotations

import gc
import hashlib
import http.client
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlparse

import requests
import structlog

from bench._stats import median, percentile
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.exchange.server import ServerLimits, running_in_thread
from hyperfollow.signing import address_of, sign_l1_action

PAIRS = 1000  # order + cancel pairs per repetition: 2,000 /exchange requests
INFO_REQUESTS = 2000
RAW_PAIRS = 500
WARMUP = 100
REPEATS = 3
PRIVATE_KEY = hashlib.sha256(b"hyperfollow bench wallet").digest()
HEADERS = {"Content-Type": "application/json"}

GOALS = {"/exchange order+cancel p50 (requests.Session)": ("<", 2.0)}

Post = Callable[[str, bytes], Any]  # (path, body) -> parsed JSON answer


class Signer:
    """Builds signed ``/exchange`` bodies with strictly increasing nonces."""

    def __init__(self, private_key: bytes, px: str, sz: str) -> None:
        self.key = private_key
        self.px, self.sz = px, sz
        self.nonce = int(time.time() * 1000)

    def take_nonces(self, n: int) -> int:
        """Reserve ``n`` consecutive nonces; returns the first."""
        first = self.nonce + 1
        self.nonce += n
        return first

    def _body(self, action: dict[str, Any], nonce: int) -> bytes:
        signature = sign_l1_action(self.key, action, None, nonce, None, False)
        envelope = {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None,
                    "expiresAfter": None}  # fmt: skip
        return json.dumps(envelope, separators=(",", ":")).encode()

    def order(self, nonce: int) -> bytes:
        wire = {"a": 0, "b": True, "p": self.px, "s": self.sz, "r": False, "t": {"limit": {"tif": "Gtc"}}}
        return self._body({"type": "order", "orders": [wire], "grouping": "na"}, nonce)

    def cancel(self, oid: int, nonce: int) -> bytes:
        return self._body({"type": "cancel", "cancels": [{"a": 0, "o": oid}]}, nonce)


def _resting_oid(answer: Any) -> int:
    try:
        status = answer["response"]["data"]["statuses"][0]
        return int(status["resting"]["oid"])
    except (KeyError, TypeError, IndexError) as exc:
        raise RuntimeError(f"order did not rest: {answer}") from exc


def _check_cancel(answer: Any) -> None:
    try:
        ok = answer["response"]["data"]["statuses"] == ["success"]
    except (KeyError, TypeError) as exc:
        raise RuntimeError(f"cancel failed: {answer}") from exc
    if not ok:
        raise RuntimeError(f"cancel failed: {answer}")


def order_cancel_pairs(post: Post, signer: Signer, pairs: int) -> tuple[list[float], list[float]]:
    """Time ``pairs`` order + cancel round trips; returns (order ms, cancel ms) per request."""
    first = signer.take_nonces(2 * pairs)  # order i: first + 2i, its cancel: first + 2i + 1
    orders = [signer.order(first + 2 * i) for i in range(pairs)]  # pre-signed
    order_ms: list[float] = []
    cancel_ms: list[float] = []
    clock = time.perf_counter_ns
    for i, body in enumerate(orders):
        t0 = clock()
        answer = post("/exchange", body)
        order_ms.append((clock() - t0) / 1e6)
        cancel = signer.cancel(_resting_oid(answer), first + 2 * i + 1)  # signed outside the timed part
        t0 = clock()
        answer = post("/exchange", cancel)
        cancel_ms.append((clock() - t0) / 1e6)
        _check_cancel(answer)
    return order_ms, cancel_ms


def info_requests(post: Post, n: int) -> list[float]:
    body = json.dumps({"type": "l2Book", "coin": "BTC"}).encode()
    out: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        answer = post("/info", body)
        out.append((clock() - t0) / 1e6)
        if not (isinstance(answer, dict) and answer.get("coin") == "BTC" and answer["levels"][0]):
            raise RuntimeError(f"l2Book failed: {answer}")
    return out


def session_post(base: str) -> tuple[Post, requests.Session]:
    session = requests.Session()
    session.trust_env = False  # loopback: no proxy from the environment

    def post(path: str, body: bytes) -> Any:
        response = session.post(base + path, data=body, headers=HEADERS, timeout=10)
        response.raise_for_status()
        return response.json()

    return post, session


def raw_post(base: str) -> tuple[Post, http.client.HTTPConnection]:
    url = urlparse(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)

    def post(path: str, body: bytes) -> Any:
        conn.request("POST", path, body, HEADERS)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}: {data[:200]!r}")
        return json.loads(data)

    return post, conn


def bid_price(exchange: EmbeddedExchange) -> str:
    """A whole-dollar BTC bid 10 % under the mid: valid on the grid, rests, passes the price band."""
    mid = Decimal(exchange.info({"type": "allMids"})["BTC"])
    return str(int(mid * Decimal("0.9")))


def new_exchange() -> EmbeddedExchange:
    return EmbeddedExchange(stepped=True, simulated_traders=False, address_budget=None)


def in_process(pairs: int) -> list[float]:
    """``EmbeddedExchange.exchange()`` on parsed bodies, no HTTP: order and cancel, ms per request."""
    exchange = new_exchange()
    exchange.fund(address_of(PRIVATE_KEY), "1000000")
    signer = Signer(PRIVATE_KEY, bid_price(exchange), "0.001")

    def post(_path: str, body: bytes) -> Any:
        return exchange.exchange(json.loads(body))

    order_cancel_pairs(post, signer, WARMUP)
    orders, cancels = order_cancel_pairs(post, signer, pairs)
    return orders + cancels


def run() -> list[tuple[str, float, str]]:
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # no info logs in the table
    try:
        return _measure()
    finally:
        structlog.configure(**saved)


def _measure() -> list[tuple[str, float, str]]:
    exchange = new_exchange()
    address = address_of(PRIVATE_KEY)
    signer = Signer(PRIVATE_KEY, bid_price(exchange), "0.001")
    ex_p50: list[float] = []
    ex_p99: list[float] = []
    order_p50: list[float] = []
    cancel_p50: list[float] = []
    info_p50: list[float] = []
    info_p99: list[float] = []
    raw_p50: list[float] = []
    limits = ServerLimits(ip_weight_per_min=None, ws_max_users_per_ip=None)
    with running_in_thread(exchange, limits) as (base, _):
        post, session = session_post(base)
        funded = post("/sim/fund", json.dumps({"user": address, "usd": "1000000"}).encode())
        if funded.get("status") != "ok":
            raise RuntimeError(f"/sim/fund failed: {funded}")
        try:
            order_cancel_pairs(post, signer, WARMUP)
            info_requests(post, WARMUP)
            for _ in range(REPEATS):
                gc.collect()  # start every repetition from the same collector state
                orders, cancels = order_cancel_pairs(post, signer, PAIRS)
                both = orders + cancels
                ex_p50.append(percentile(both, 50))
                ex_p99.append(percentile(both, 99))
                order_p50.append(percentile(orders, 50))
                cancel_p50.append(percentile(cancels, 50))
                info = info_requests(post, INFO_REQUESTS)
                info_p50.append(percentile(info, 50))
                info_p99.append(percentile(info, 99))
        finally:
            session.close()
        raw, conn = raw_post(base)
        try:
            order_cancel_pairs(raw, signer, WARMUP)
            for _ in range(REPEATS):
                orders, cancels = order_cancel_pairs(raw, signer, RAW_PAIRS)
                raw_p50.append(percentile(orders + cancels, 50))
        finally:
            conn.close()
    local_p50 = [percentile(in_process(PAIRS), 50) for _ in range(REPEATS)]
    n = 2 * PAIRS
    return [
        ("/exchange order+cancel p50 (requests.Session)", median(ex_p50), f"ms ({n} req)"),
        ("/exchange order+cancel p99 (requests.Session)", median(ex_p99), f"ms ({n} req)"),
        ("/exchange order p50", median(order_p50), "ms"),
        ("/exchange cancel p50", median(cancel_p50), "ms"),
        ("/exchange order+cancel p50 (http.client)", median(raw_p50), f"ms ({2 * RAW_PAIRS} req)"),
        ("exchange() in-process, no HTTP, p50", median(local_p50), f"ms ({n} req)"),
        ("/info l2Book p50 (requests.Session)", median(info_p50), f"ms ({INFO_REQUESTS} req)"),
        ("/info l2Book p99 (requests.Session)", median(info_p99), f"ms ({INFO_REQUESTS} req)"),
    ]


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:48s} {value:10.3f} {unit}")
