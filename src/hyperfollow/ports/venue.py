"""The venue ports. Strategies, copy trading and risk depend on these Protocols only, never on an SDK.

Two implementations keep each other honest through one contract suite (``tests/contract``):
``adapters/hyperliquid`` (the official SDK over HTTP/WS, against the real venue or the embedded
exchange) and ``adapters/sim`` (the exchange core in-process).

Conventions:

* domain types in and out (``hyperfollow.domain.model``), ``Decimal`` money, venue epoch ms;
* failures raise the three families of ``hyperfollow.domain.errors``: ``VenueRejected`` (and its
  subclasses), ``TransientError`` (after the adapter's own retries ran out), ``OutcomeUnknown``;
* a batch returns one entry per item, in order: the result, or the ``VenueRejected`` for that item
  (a whole-batch failure raises);
* streams are async iterators that run until cancelled; they survive reconnects on their own, and
  a fill stream delivers each fill once (push, poll and backfill merged and de-duplicated).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Protocol

from hyperfollow.domain.errors import VenueRejected
from hyperfollow.domain.model import (
    AccountSnapshot,
    Bbo,
    CancelRequest,
    Candle,
    Fill,
    Grouping,
    L2Book,
    OrderAck,
    OrderRequest,
    OrderState,
    Position,
    RateLimitStatus,
    StreamEvent,
    Trade,
)
from hyperfollow.domain.rules import Instrument


class OrderGateway(Protocol):
    """Places and manages orders for one trading account."""

    async def submit(self, order: OrderRequest) -> OrderAck: ...

    async def submit_batch(
        self, orders: Sequence[OrderRequest], grouping: Grouping = Grouping.NONE
    ) -> list[OrderAck | VenueRejected]: ...

    async def cancel(self, request: CancelRequest) -> None:
        """Cancel one order; ``OrderNotFound`` when it is no longer open (filled or cancelled)."""
        ...

    async def cancel_batch(self, requests: Sequence[CancelRequest]) -> list[VenueRejected | None]: ...

    async def modify(self, ref: int | str, order: OrderRequest) -> OrderAck:
        """Replace the order with venue id (int) or cloid (str) ``ref`` by ``order``."""
        ...

    async def set_leverage(self, coin: str, leverage: int, *, cross: bool) -> None: ...

    async def update_isolated_margin(self, coin: str, amount_usd: Decimal) -> None:
        """Add (> 0) or remove (< 0) margin of an isolated position."""
        ...

    async def schedule_cancel(self, at_ms: int | None) -> None:
        """Dead man's switch: cancel all open orders at ``at_ms`` unless renewed; None clears it."""
        ...

    async def order_status(self, ref: int | str) -> OrderState | None:
        """The order with venue id (int) or cloid (str) ``ref``; None when the venue never saw it."""
        ...


class MarketData(Protocol):
    """Public market data: snapshots on request, and supervised live streams."""

    async def instruments(self) -> list[Instrument]:
        """Every perp the venue lists (main dex and HIP-3 dexes); spot is not part of perps logic."""
        ...

    async def instrument(self, coin: str) -> Instrument:
        """One perp by name (``"ETH"``, ``"xyz:TSLA"``); ``UnknownInstrument`` when not listed."""
        ...

    async def mids(self) -> dict[str, Decimal]: ...

    async def l2_book(self, coin: str) -> L2Book: ...

    async def recent_trades(self, coin: str) -> list[Trade]: ...

    async def candles(self, coin: str, interval: str, start_ms: int, end_ms: int) -> list[Candle]: ...

    def stream_books(self, coins: Sequence[str]) -> AsyncIterator[L2Book]: ...

    def stream_trades(self, coins: Sequence[str]) -> AsyncIterator[Trade]: ...

    def stream_bbo(self, coins: Sequence[str]) -> AsyncIterator[Bbo]: ...

    def stream_mids(self) -> AsyncIterator[dict[str, Decimal]]: ...


class AccountState(Protocol):
    """The trading account's own state (queried by the account address, never the signer's)."""

    @property
    def address(self) -> str: ...

    async def snapshot(self) -> AccountSnapshot: ...

    async def positions(self) -> list[Position]: ...

    async def open_orders(self) -> list[OrderState]: ...

    async def equity(self) -> Decimal: ...

    async def fills_since(self, start_ms: int) -> list[Fill]:
        """Fills from ``start_ms`` on, oldest first."""
        ...

    async def rate_limit(self) -> RateLimitStatus: ...

    def stream_fills(self, since_ms: int | None = None) -> AsyncIterator[Fill]:
        """Each fill of the account once, oldest first; with ``since_ms`` earlier ones are backfilled.
        Without it, fills from when the venue has the subscription on (a fill executed before the
        subscription reaches the venue counts as history): pass ``since_ms`` when that instant matters."""
        ...

    def stream_orders(self) -> AsyncIterator[OrderState]: ...


class LeaderFeed(Protocol):
    """Any public address's fills and positions (the leaders we copy)."""

    async def fills_since(self, address: str, start_ms: int) -> list[Fill]: ...

    async def snapshot(self, address: str) -> AccountSnapshot: ...

    def stream_fills(self, addresses: Sequence[str], since_ms: int | None = None) -> AsyncIterator[Fill]:
        """One ordered, de-duplicated stream of the addresses' fills (WS push for up to the venue's
        per-IP user limit, polling for the rest, backfill after any gap)."""
        ...


class Venue(Protocol):
    """One venue connection for one trading account: the four roles plus supervisor events."""

    @property
    def gateway(self) -> OrderGateway: ...

    @property
    def market(self) -> MarketData: ...

    @property
    def account(self) -> AccountState: ...

    @property
    def leaders(self) -> LeaderFeed: ...

    def events(self) -> AsyncIterator[StreamEvent]:
        """Connection and staleness events (risk listens for ``stale``)."""
        ...

    async def close(self) -> None: ...
