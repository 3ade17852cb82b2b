"""Helpers of the acceptance tests: an embedded exchange served on a free local port, deterministic
wallets, the operator API (``/sim``) and plain ``/info`` reads over HTTP, and the Hyperliquid adapter bound
to a wallet.

Nothing here uses the copy engine: what the tests compare the engine against is read from the venue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import eth_account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.adapters.hyperliquid.venue import HyperliquidVenue, connect
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.exchange.server import ExchangeServer, ServerLimits, running_in_thread

DEXES = ("", "xyz")  # the embedded exchange's perp dexes: the main one and one HIP-3 dex


def wallet(name: str) -> LocalAccount:
    """A deterministic wallet: its key is keccak of the name (test keys only)."""
    account: LocalAccount = eth_account.Account.from_key(keccak(text=f"hyperfollow-acceptance:{name}"))
    return account


def address(account: LocalAccount) -> str:
    return str(account.address).lower()


def key_hex(account: LocalAccount) -> str:
    return "0x" + bytes(account.key).hex()


def config(url: str, account: LocalAccount) -> HyperliquidConfig:
    """The adapter trading for ``account`` with its own key; the client's IP budget raised (these tests
    are one IP making far more requests a minute than a deployment would)."""
    return HyperliquidConfig(
        base_url=url,
        account_address=address(account),
        secret_key=key_hex(account),
        ip_weight_per_min=1_000_000,
        backoff_base_secs=0.01,
        backoff_cap_secs=0.05,
    )


@contextlib.contextmanager
def serve(exchange: EmbeddedExchange, tick_ms: int = 100) -> Iterator[tuple[str, ExchangeServer]]:
    """``exchange`` served on a free 127.0.0.1 port from a thread, without IP limits."""
    limits = ServerLimits(ip_weight_per_min=None, ws_max_users_per_ip=None)
    with running_in_thread(exchange, limits, tick_ms=tick_ms) as (url, server):
        yield url, server


@dataclass
class Operator:
    """The venue's operator API and plain reads, over HTTP (safe from any thread or loop)."""

    url: str
    session: aiohttp.ClientSession

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        async with self.session.post(self.url + path, json=body) as response:
            text = await response.text()
            assert response.status == 200, f"{path} {body}: {response.status} {text}"
            return await response.json(content_type=None)

    async def info(self, body: dict[str, Any]) -> Any:
        return await self.post("/info", body)

    async def fund(self, user: str, usd: str) -> None:
        await self.post("/sim/fund", {"user": user, "usd": usd})

    async def set_price(self, coin: str, px: Decimal) -> None:
        await self.post("/sim/price", {"coin": coin, "px": str(px)})

    async def advance(self, ms: int) -> int:
        return int((await self.post("/sim/advance", {"ms": ms}))["time"])

    async def equity(self, user: str) -> Decimal:
        """Account value over every perp dex (the USDC lives on the main dex; a HIP-3 dex holds its
        isolated margin), as the venue reports it."""
        total = Decimal(0)
        for dex in DEXES:
            state = await self.info({"type": "clearinghouseState", "user": user, "dex": dex})
            total += Decimal(state["marginSummary"]["accountValue"])
        return total

    async def positions(self, user: str) -> dict[str, Decimal]:
        """Non-zero positions by coin, over every perp dex."""
        out: dict[str, Decimal] = {}
        for dex in DEXES:
            state = await self.info({"type": "clearinghouseState", "user": user, "dex": dex})
            for item in state["assetPositions"]:
                size = Decimal(item["position"]["szi"])
                if size:
                    out[item["position"]["coin"]] = size
        return out

    async def book(self, coin: str) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """(bids, asks) as (price, size), best first."""
        levels = (await self.info({"type": "l2Book", "coin": coin}))["levels"]
        return tuple(  # type: ignore[return-value]
            [(Decimal(level["px"]), Decimal(level["sz"])) for level in side] for side in levels
        )

    async def fills(self, user: str) -> list[dict[str, Any]]:
        """The user's fills (wire), oldest first."""
        raw: list[dict[str, Any]] = await self.info({"type": "userFills", "user": user})
        return sorted(raw, key=lambda f: (f["time"], f["tid"]))

    async def sz_decimals(self, coin: str) -> int:
        meta = await self.info({"type": "meta"})
        return int(next(u["szDecimals"] for u in meta["universe"] if u["name"] == coin))


@contextlib.asynccontextmanager
async def operator(url: str) -> AsyncIterator[Operator]:
    async with aiohttp.ClientSession() as session:
        yield Operator(url, session)


@contextlib.asynccontextmanager
async def adapter(url: str, account: LocalAccount) -> AsyncIterator[HyperliquidVenue]:
    venue = await connect(config(url, account))
    try:
        yield venue
    finally:
        await venue.close()


async def wait_until(
    predicate: Callable[[], Any], what: str, timeout: float = 30.0, every: float = 0.005
) -> Any:
    """Poll ``predicate`` (sync or async) until it is truthy; fails with ``what`` after ``timeout`` s
    (a hang guard, not a speed assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)


@dataclass
class Child:
    """One incarnation of a child process under test: its process and its log (JSON lines on stderr, also
    kept in a file). ``n`` counts the incarnations."""

    proc: asyncio.subprocess.Process
    log_path: Path
    n: int = 0
    lines: list[dict[str, Any]] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]

    async def read(self) -> None:
        assert self.proc.stderr is not None
        with self.log_path.open("w") as out:
            async for raw in self.proc.stderr:
                text = raw.decode(errors="replace")
                out.write(text)
                with contextlib.suppress(ValueError):
                    self.lines.append(json.loads(text))

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        if self.reader is not None:
            await self.reader
