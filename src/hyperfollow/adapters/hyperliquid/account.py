"""``ports.AccountState`` over /info, plus the fill and snapshot readers shared with ``leaders``.

Every query uses the account address (the vault/sub-account when trading for one), never the
signer's: an agent's own address has no state on the venue.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

import structlog

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.hyperliquid.budget import AddressBudget
from hyperfollow.adapters.hyperliquid.client import VenueClient
from hyperfollow.adapters.hyperliquid.market import InstrumentDirectory, Streams
from hyperfollow.domain.model import AccountSnapshot, Fill, OrderState, Position, RateLimitStatus

log = structlog.get_logger(__name__)

FILLS_PAGE = 2000  # userFillsByTime answers at most this many fills per request


async def fetch_fills(
    client: VenueClient, address: str, start_ms: int, end_ms: int | None = None
) -> list[Fill]:
    """Every fill of ``address`` from ``start_ms`` on, oldest first, paging past the 2,000-fill limit.

    Each next page starts at the last page's latest time (not after it: fills of that millisecond may
    straddle the pages) and repeats are dropped by fill key. If one millisecond alone holds a whole
    page the cursor has to step past it, and fills beyond the page in that millisecond are lost:
    logged. (The venue keeps only the 10,000 most recent fills retrievable at all.)
    """
    address = address.lower()
    seen: dict[tuple[object, ...], Fill] = {}
    start = start_ms
    while True:
        raw: list[Any] = (
            await client.info(
                {
                    "type": "userFillsByTime",
                    "user": address,
                    "startTime": start,
                    "endTime": end_ms,
                    "aggregateByTime": False,
                }
            )
            or []
        )
        page = parse.fills(address, raw)
        new = [f for f in page if f.key not in seen]
        for f in new:
            seen[f.key] = f
        if len(raw) < FILLS_PAGE or not new:
            break
        last = page[-1].time_ms
        if last <= start:
            log.warning("venue.fills_page_one_ms", address=address, time_ms=last, page=len(raw))
            last = start + 1
        start = last
    return parse.in_position_order(seen.values())


async def fetch_snapshot(client: VenueClient, dexs: Sequence[str], address: str) -> AccountSnapshot:
    """``clearinghouseState`` of the main dex merged with each HIP-3 dex's (each has its own)."""
    address = address.lower()
    raws = await asyncio.gather(
        *(client.info({"type": "clearinghouseState", "user": address, "dex": d}) for d in dexs)
    )
    return parse.merge_snapshots([parse.account_snapshot(address, raw or {}) for raw in raws])


async def fetch_open_orders(client: VenueClient, dexs: Sequence[str], address: str) -> list[OrderState]:
    """``frontendOpenOrders`` of every dex (triggers and cloids included), oldest first."""
    address = address.lower()
    raws = await asyncio.gather(
        *(client.info({"type": "frontendOpenOrders", "user": address, "dex": d}) for d in dexs)
    )
    by_oid: dict[int, OrderState] = {}
    for raw in raws:
        for item in raw or []:
            state = parse.order_state(item)
            by_oid[state.oid] = state
    return sorted(by_oid.values(), key=lambda o: (o.timestamp_ms, o.oid))


class HyperliquidAccount:
    """``ports.AccountState`` of the configured account."""

    def __init__(
        self,
        client: VenueClient,
        instruments: InstrumentDirectory,
        streams: Streams,
        *,
        budget: AddressBudget | None = None,
    ) -> None:
        self._client = client
        self._instruments = instruments
        self._streams = streams
        self._budget = budget
        self._address = client.config.query_address

    @property
    def address(self) -> str:
        return self._address

    async def snapshot(self) -> AccountSnapshot:
        return await fetch_snapshot(self._client, self._instruments.dexs, self._address)

    async def positions(self) -> list[Position]:
        return list((await self.snapshot()).positions)

    async def open_orders(self) -> list[OrderState]:
        return await fetch_open_orders(self._client, self._instruments.dexs, self._address)

    async def equity(self) -> Decimal:
        return (await self.snapshot()).equity

    async def fills_since(self, start_ms: int) -> list[Fill]:
        """Fills from ``start_ms`` on, oldest first."""
        return await fetch_fills(self._client, self._address, start_ms)

    async def rate_limit(self) -> RateLimitStatus:
        """``userRateLimit`` (also refreshes the local action budget)."""
        status = parse.rate_limit(await self._client.info({"type": "userRateLimit", "user": self._address}))
        if self._budget is not None:
            self._budget.update(status)
        return status

    def stream_fills(self, since_ms: int | None = None) -> AsyncIterator[Fill]:
        """Each fill of the account once, oldest first; with ``since_ms`` earlier ones are backfilled."""
        return self._streams.fills([self._address], since_ms)

    def stream_orders(self) -> AsyncIterator[OrderState]:
        """The account's order updates (live; a ``gap`` event follows each reconnect)."""
        return self._streams.orders(self._address)
