"""``ports.Venue`` on Hyperliquid: one connection for one trading account, and ``connect``.

``connect`` loads the perp listings (main dex + HIP-3 dexes) and the address action budget
(``userRateLimit``) before returning, so configuration mistakes (wrong URL, unknown account) show at
once, and starts the stream supervisor. Starting it opens no socket: the supervisor opens its
connections at the first subscription, so a process that only places orders or reads REST never
opens one. Every ``stream_*`` method registers its subscription when called.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import structlog

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.hyperliquid.account import HyperliquidAccount, fetch_fills
from hyperfollow.adapters.hyperliquid.budget import AddressBudget
from hyperfollow.adapters.hyperliquid.client import HyperliquidClient
from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.adapters.hyperliquid.gateway import HyperliquidGateway
from hyperfollow.adapters.hyperliquid.leaders import HyperliquidLeaderFeed
from hyperfollow.adapters.hyperliquid.market import HyperliquidMarketData, InstrumentDirectory
from hyperfollow.adapters.hyperliquid.stream import StreamSupervisor
from hyperfollow.domain.model import Fill, RateLimitStatus, StreamEvent
from hyperfollow.ports.venue import Venue

log = structlog.get_logger(__name__)


class HyperliquidVenue:
    """The four roles over one client, plus the supervisor's connection events."""

    def __init__(
        self,
        client: HyperliquidClient,
        instruments: InstrumentDirectory,
        budget: AddressBudget,
        supervisor: StreamSupervisor | None = None,
    ) -> None:
        self.client = client
        self.instruments = instruments
        self.budget = budget
        config = client.config
        self.supervisor = supervisor or StreamSupervisor(
            config.ws_url, fetch_fills=self._fetch_fills, max_ws_users=config.max_ws_users
        )
        self._gateway = HyperliquidGateway(client, instruments, budget=budget)
        self._market = HyperliquidMarketData(client, instruments, self.supervisor)
        self._account = HyperliquidAccount(client, instruments, self.supervisor, budget=budget)
        self._leaders = HyperliquidLeaderFeed(client, instruments, self.supervisor)

    @property
    def gateway(self) -> HyperliquidGateway:
        return self._gateway

    @property
    def market(self) -> HyperliquidMarketData:
        return self._market

    @property
    def account(self) -> HyperliquidAccount:
        return self._account

    @property
    def leaders(self) -> HyperliquidLeaderFeed:
        return self._leaders

    async def _fetch_fills(self, address: str, start_ms: int) -> list[Fill]:
        return await fetch_fills(self.client, address, start_ms)

    def events(self) -> AsyncIterator[StreamEvent]:
        """Connection and staleness events of the stream supervisor (risk listens for ``stale``)."""
        return self.supervisor.events()

    async def close(self) -> None:
        """Stop the streams, let coalesced orders finish, close the HTTP client."""
        await self.supervisor.close()
        await self._gateway.close()
        await self.client.close()


async def connect(config: HyperliquidConfig, *, client: HyperliquidClient | None = None) -> HyperliquidVenue:
    """Open a venue connection: listings and the action budget are read before this returns."""
    client = client or HyperliquidClient(config)

    async def fetch_rate_limit() -> RateLimitStatus:
        return parse.rate_limit(await client.info({"type": "userRateLimit", "user": config.query_address}))

    try:
        instruments = InstrumentDirectory(client)
        await instruments.load()
        budget = AddressBudget(fetch_rate_limit)
        status = await budget.refresh()
        venue = HyperliquidVenue(client, instruments, budget)
        await venue.supervisor.start()
    except BaseException:
        await client.close()
        raise
    log.info(
        "venue.connected", base_url=config.base_url, account=config.query_address,
        signer=client.signer_address, perps=len(instruments.all()), actions_used=status.used,
        actions_cap=status.cap,
    )  # fmt: skip
    return venue


if TYPE_CHECKING:  # mypy proves the adapter implements the ports

    def _implements_ports(venue: HyperliquidVenue) -> Venue:
        return venue
