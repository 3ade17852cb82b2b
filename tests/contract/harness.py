"""Harnesses of the venue contract suite: one set of behaviour tests for every implementation.

``harness`` is parametrized over:

* ``sim`` -- ``adapters/sim`` over the exchange core in-process (no HTTP, no signatures);
* ``hyperliquid`` -- ``adapters/hyperliquid`` (the official SDK for signing and transport, our WS
  supervisor) talking to the embedded exchange over HTTP/WS on a free 127.0.0.1 port.

Both start from the same stepped exchange (seed 7, no simulated traders, ETH at $3,000 with the
market maker quoting around it) and the same two funded wallets: ``venue`` trades for "us",
``counterparty`` provides resting liquidity when a case needs a specific maker.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import eth_account
from eth_utils.crypto import keccak
from pydantic import SecretStr

from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.adapters.hyperliquid.venue import HyperliquidVenue, connect
from hyperfollow.adapters.sim.venue import SimVenue
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.exchange.server import ServerLimits, running_in_thread
from hyperfollow.ports import Venue

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
FUNDS_USD = "10000"
COUNTERPARTY_FUNDS_USD = "1000000"
ETH_PX = Decimal(3000)
BTC_PX = Decimal(60000)


@dataclass
class Harness:
    """One implementation under test, with the operator controls the cases need."""

    name: str
    venue: Venue
    counterparty: Venue
    exchange: EmbeddedExchange  # for assertions on the venue's own state, never for trading
    set_price: Callable[[str, Decimal], Awaitable[None]]
    advance: Callable[[int], Awaitable[None]]
    force_reconnect: Callable[[], Awaitable[None]]

    @property
    def address(self) -> str:
        return self.venue.account.address


def _key(name: str) -> str:
    return "0x" + keccak(text=f"contract:{name}").hex()


def _exchange() -> EmbeddedExchange:
    exchange = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=START_MS)
    exchange.set_price("ETH", ETH_PX)
    exchange.set_price("BTC", BTC_PX)
    return exchange


@contextlib.asynccontextmanager
async def _sim_harness() -> AsyncIterator[Harness]:
    exchange = _exchange()
    ours = eth_account.Account.from_key(_key("ours")).address.lower()
    theirs = eth_account.Account.from_key(_key("theirs")).address.lower()
    exchange.fund(ours, FUNDS_USD)
    exchange.fund(theirs, COUNTERPARTY_FUNDS_USD)
    venue, counterparty = SimVenue(exchange, ours), SimVenue(exchange, theirs)

    async def set_price(coin: str, px: Decimal) -> None:
        await venue.set_price(coin, px)

    async def advance(ms: int) -> None:
        await venue.step(ms)

    try:
        yield Harness("sim", venue, counterparty, exchange, set_price, advance, venue.force_reconnect)
    finally:
        await venue.close()
        await counterparty.close()


@contextlib.asynccontextmanager
async def _hyperliquid_harness() -> AsyncIterator[Harness]:
    exchange = _exchange()
    limits = ServerLimits(ip_weight_per_min=None, ws_max_users_per_ip=None)
    with running_in_thread(exchange, limits) as (url, server):
        async with aiohttp.ClientSession(base_url=url) as http:

            async def admin(path: str, body: dict[str, Any]) -> Any:
                """The operator API (/sim/...): runs on the server's loop and publishes to WS."""
                async with http.post(path, json=body) as response:
                    assert response.status == 200, await response.text()
                    return await response.json()

            keys = {"ours": _key("ours"), "theirs": _key("theirs")}
            wallets = {n: eth_account.Account.from_key(k) for n, k in keys.items()}
            await admin("/sim/fund", {"user": wallets["ours"].address, "usd": FUNDS_USD})
            await admin("/sim/fund", {"user": wallets["theirs"].address, "usd": COUNTERPARTY_FUNDS_USD})

            def config(name: str) -> HyperliquidConfig:
                return HyperliquidConfig(
                    base_url=url, account_address=wallets[name].address, secret_key=SecretStr(keys[name])
                )

            venue: HyperliquidVenue = await connect(config("ours"))
            counterparty: HyperliquidVenue = await connect(config("theirs"))

            async def set_price(coin: str, px: Decimal) -> None:
                await admin("/sim/price", {"coin": coin, "px": str(px)})

            async def advance(ms: int) -> None:
                await admin("/sim/advance", {"ms": ms})

            async def force_reconnect() -> None:
                server.drop_websockets(abrupt=True)  # the network dies under the adapter

            try:
                yield Harness(
                    "hyperliquid", venue, counterparty, exchange, set_price, advance, force_reconnect
                )
            finally:
                await venue.close()
                await counterparty.close()


HARNESSES = {"sim": _sim_harness, "hyperliquid": _hyperliquid_harness}
