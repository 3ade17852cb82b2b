"""The venue's public side only: market data and leader feeds, without an account or a key.

``connect_public`` builds the same readers as ``connect`` (``HyperliquidMarketData``,
``HyperliquidLeaderFeed``, the stream supervisor) over a ``HyperliquidInfoClient``, which has no signing
key and no method that posts to ``/exchange``. Whoever holds a ``PublicVenue`` can read the venue and
follow any address, and can send it nothing: paper trading is built on this, so that a paper run cannot
place an order on the real venue by any path, however it is wired.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import structlog

from hyperfollow.adapters.hyperliquid.account import fetch_fills
from hyperfollow.adapters.hyperliquid.budget import WeightLimiter
from hyperfollow.adapters.hyperliquid.client import HyperliquidInfoClient
from hyperfollow.adapters.hyperliquid.config import EndpointConfig
from hyperfollow.adapters.hyperliquid.leaders import HyperliquidLeaderFeed
from hyperfollow.adapters.hyperliquid.market import HyperliquidMarketData, InstrumentDirectory
from hyperfollow.adapters.hyperliquid.stream import StreamSupervisor
from hyperfollow.domain.model import Fill, StreamEvent

log = structlog.get_logger(__name__)


class PublicVenue:
    """Market data and leader feeds of one venue over a read-only client."""

    def __init__(
        self,
        client: HyperliquidInfoClient,
        instruments: InstrumentDirectory,
        *,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self.client = client
        self.instruments = instruments
        endpoint = client.endpoint
        self.supervisor = StreamSupervisor(
            endpoint.ws_url, fetch_fills=self._fetch_fills, max_ws_users=endpoint.max_ws_users, now_ms=now_ms
        )
        self.market = HyperliquidMarketData(client, instruments, self.supervisor)
        self.leaders = HyperliquidLeaderFeed(client, instruments, self.supervisor)

    async def _fetch_fills(self, address: str, start_ms: int) -> list[Fill]:
        return await fetch_fills(self.client, address, start_ms)

    def events(self) -> AsyncIterator[StreamEvent]:
        """Connection and staleness events of the stream supervisor."""
        return self.supervisor.events()

    async def close(self) -> None:
        await self.supervisor.close()
        await self.client.close()


async def connect_public(
    endpoint: EndpointConfig,
    *,
    limiter: WeightLimiter | None = None,
    now_ms: Callable[[], int] | None = None,
) -> PublicVenue:
    """Read the listings and start the stream supervisor (it opens a socket at the first subscription).
    ``now_ms``: the venue's clock when it runs its own (a sped-up embedded exchange)."""
    client = HyperliquidInfoClient(endpoint, limiter=limiter)
    try:
        instruments = InstrumentDirectory(client)
        await instruments.load()
        venue = PublicVenue(client, instruments, now_ms=now_ms)
        await venue.supervisor.start()
    except BaseException:
        await client.close()
        raise
    log.info("venue.public_connected", base_url=endpoint.base_url, perps=len(instruments.all()))
    return venue
