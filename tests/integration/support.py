"""Helpers of the integration suite: a running venue, SDK-bound wallets, signed bodies, waiting.

The SDK signs every action with ``nonce = wall-clock ms``; ``NEXT_NONCE`` is a strictly increasing
ms counter that conftest substitutes for it (and that ``signed_body`` uses) so nonces never collide.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import eth_account
import pytest
import requests
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.signing import sign_l1_action

from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.exchange.server import ExchangeServer, ServerLimits, running_in_thread

HTTP_TIMEOUT = 10


# ------------------------------------------------------------------------------------------ nonces


class _MonotonicMs:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def __call__(self) -> int:
        with self._lock:
            self._last = max(int(time.time() * 1000), self._last + 1)
            return self._last


NEXT_NONCE = _MonotonicMs()


# ------------------------------------------------------------------------------------------ helpers


def wallet_for(name: str) -> LocalAccount:
    """A deterministic wallet: the key is keccak of the name."""
    wallet: LocalAccount = eth_account.Account.from_key(keccak(text=f"hyperfollow-integration:{name}"))
    return wallet


def dec(text: str) -> Decimal:
    return Decimal(text)


def signed_body(
    wallet: LocalAccount,
    action: dict[str, Any],
    *,
    nonce: int | None = None,
    vault: str | None = None,
    expires_after: int | None = None,
) -> dict[str, Any]:
    """The exact body the SDK would post for an L1 action (signed for testnet, as any local URL is)."""
    nonce = NEXT_NONCE() if nonce is None else nonce
    signature = sign_l1_action(wallet, action, vault, nonce, expires_after, False)
    return {
        "action": action,
        "nonce": nonce,
        "signature": signature,
        "vaultAddress": vault,
        "expiresAfter": expires_after,
    }


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy; returns its value or fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Trader:
    """A funded wallet with an SDK ``Info`` and ``Exchange`` bound to one venue."""

    name: str
    wallet: LocalAccount
    info: Info
    exchange: Exchange

    @property
    def address(self) -> str:
        return str(self.wallet.address)

    @property
    def user(self) -> str:
        """The address as the venue echoes it (lowercase)."""
        return self.address.lower()

    def state(self, dex: str = "") -> dict[str, Any]:
        return self.info.user_state(self.address, dex)  # type: ignore[no-any-return]

    def positions(self, dex: str = "") -> dict[str, dict[str, Any]]:
        return {p["position"]["coin"]: p["position"] for p in self.state(dex)["assetPositions"]}

    def open_orders(self, dex: str = "") -> list[dict[str, Any]]:
        return self.info.open_orders(self.address, dex)  # type: ignore[no-any-return]

    def snapshot(self, dex: str = "") -> dict[str, Any]:
        """Everything a refused request must leave unchanged (minus the server's clock)."""
        state = self.state(dex)
        state.pop("time")
        return {
            "state": state,
            "orders": self.info.frontend_open_orders(self.address, dex),
            "fills": self.info.user_fills(self.address),
        }


@dataclass
class Venue:
    """A running embedded exchange: its URL, the operator API, and wallet factories."""

    url: str
    server: ExchangeServer
    perp_dexs: list[str] | None = None
    infos: list[Info] = field(default_factory=list)  # WebSocket clients, disconnected by serve_venue
    session: requests.Session = field(default_factory=requests.Session)

    # -------------------------------------------------------------- operator API

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(self.url + path, json=body, timeout=HTTP_TIMEOUT)

    def sim(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.post(path, body)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def fund(self, address: str, usd: str) -> None:
        self.sim("/sim/fund", {"user": address, "usd": usd})

    def set_price(self, coin: str, px: str) -> dict[str, Any]:
        return self.sim("/sim/price", {"coin": coin, "px": px})

    def advance(self, ms: int) -> int:
        return int(self.sim("/sim/advance", {"ms": ms})["time"])

    def create_vault(self, leader: str, usd: str) -> str:
        return str(self.sim("/sim/vault", {"leader": leader, "usd": usd})["vault"])

    def now(self) -> int:
        response = self.session.get(self.url + "/health", timeout=HTTP_TIMEOUT)
        return int(response.json()["time"])

    def info_request(self, body: Any) -> Any:
        response = self.post("/info", body)
        assert response.status_code == 200, response.text
        return response.json()

    def mid(self, coin: str) -> float:
        dex = coin.split(":")[0] if ":" in coin else ""
        return float(self.info_request({"type": "allMids", "dex": dex})[coin])

    def book(self, coin: str) -> tuple[float, float]:
        """(best bid, best ask)."""
        levels = self.info_request({"type": "l2Book", "coin": coin})["levels"]
        return float(levels[0][0]["px"]), float(levels[1][0]["px"])

    # -------------------------------------------------------------- SDK clients

    def trader(self, name: str, usd: str | None = "10000", wallet: LocalAccount | None = None) -> Trader:
        """A wallet (``wallet_for(name)`` unless given) funded with ``usd`` (None: unfunded), with SDK
        clients bound to this venue."""
        wallet = wallet or wallet_for(name)
        if usd is not None:
            self.fund(wallet.address, usd)
        info = Info(self.url, skip_ws=True, perp_dexs=self.perp_dexs)
        exchange = Exchange(wallet, self.url, perp_dexs=self.perp_dexs)
        return Trader(name, wallet, info, exchange)

    def ws_info(self) -> Info:
        """An ``Info`` with a live WebSocket; disconnected when the venue fixture ends."""
        info = Info(self.url, skip_ws=False, perp_dexs=self.perp_dexs)
        self.infos.append(info)
        return info


@contextlib.contextmanager
def serve_venue(
    limits: ServerLimits | None = None, perp_dexs: list[str] | None = None, **kwargs: Any
) -> Iterator[Venue]:
    """Start an exchange (stepped, no simulated traders unless overridden) on a free local port.

    The venue's IP limits are off unless ``limits`` says otherwise: the suite itself makes far more
    than 1,200 weight of requests a minute from 127.0.0.1 (each SDK ``Exchange`` costs 80 to build).
    """
    options: dict[str, Any] = {"seed": 7, "stepped": True, "simulated_traders": False}
    options.update(kwargs)
    exchange = EmbeddedExchange(**options)
    limits = limits or ServerLimits(ip_weight_per_min=None, ws_max_users_per_ip=None)
    with contextlib.ExitStack() as stack:
        # Unwound last to first: the server stops first and closes every WebSocket itself, then the
        # SDK clients disconnect. (Disconnecting an idle SDK socket first races in websocket-client:
        # its reader thread can sit in a 10 s select on a closed fd and hold up interpreter exit.)
        infos: list[Info] = []
        session = requests.Session()
        stack.callback(_close_clients, infos, session)
        url, server = stack.enter_context(running_in_thread(exchange, limits))
        yield Venue(url, server, perp_dexs, infos, session)


def _close_clients(infos: list[Info], session: requests.Session) -> None:
    for info in infos:
        info.disconnect_websocket()
    session.close()


class Inbox:
    """Collects the messages an SDK WebSocket callback receives (called on the SDK's thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []

    def __call__(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._messages.append(message)

    @property
    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._messages)

    def wait(
        self, predicate: Callable[[dict[str, Any]], Any] = bool, timeout: float = 5.0, what: str = "a message"
    ) -> dict[str, Any]:
        """The first message (in arrival order) matching ``predicate``; fails the test on timeout."""
        return wait_for(  # type: ignore[no-any-return]
            lambda: next((m for m in self.messages if predicate(m)), None), timeout, what
        )
