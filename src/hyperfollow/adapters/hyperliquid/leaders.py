"""``ports.LeaderFeed``: any public address's fills and positions (the leaders we copy).

REST reads here; the live fill stream (WS ``userFills`` for up to the venue's per-IP user limit,
polling for the rest, backfill after gaps, de-duplicated) is the stream supervisor's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from hyperfollow.adapters.hyperliquid.account import fetch_fills, fetch_snapshot
from hyperfollow.adapters.hyperliquid.client import InfoClient
from hyperfollow.adapters.hyperliquid.market import InstrumentDirectory, Streams
from hyperfollow.domain.model import AccountSnapshot, Fill


class HyperliquidLeaderFeed:
    """Public reads of any address."""

    def __init__(self, client: InfoClient, instruments: InstrumentDirectory, streams: Streams) -> None:
        self._client = client
        self._instruments = instruments
        self._streams = streams

    async def fills_since(self, address: str, start_ms: int) -> list[Fill]:
        """Fills of ``address`` from ``start_ms`` on, oldest first (paged past 2,000)."""
        return await fetch_fills(self._client, address, start_ms)

    async def snapshot(self, address: str) -> AccountSnapshot:
        """Positions and equity of ``address`` over every perp dex."""
        return await fetch_snapshot(self._client, self._instruments.dexs, address)

    def stream_fills(self, addresses: Sequence[str], since_ms: int | None = None) -> AsyncIterator[Fill]:
        """One ordered, de-duplicated stream of the addresses' fills."""
        return self._streams.fills([a.lower() for a in addresses], since_ms)
