"""``SimVenue``: the venue ports in-process over an ``EmbeddedExchange`` (unit tests, backtests).

No HTTP and no signatures, but the same behaviour as the Hyperliquid adapter talking to the same
exchange over the wire: the same grid rounding, the same ``/info`` requests and JSON parsers, the
same error table, the same address budget, and streams fed by the engine's own events.

Several ``SimVenue`` objects (one per account: ours, a counterparty, ...) may share one exchange;
they share one ``SimHub``, which owns ``engine.outbox`` (so the exchange must not also be served by
``ExchangeServer``). Streams see what happened after the venue's actions and after ``step`` /
``set_price``; whoever moves the exchange some other way (``exchange.step()``) should call
``publish()`` afterwards.

The "connection" can be broken on purpose: ``force_reconnect()`` drops it at once and brings it back
at the event loop's next turn (when the caller next awaits something that actually waits, such as
the next item of a stream), so actions taken right after the call happen in the gap and their fills
are lost from the push, then backfilled from the account's history and de-duplicated, as the
Hyperliquid adapter does after its socket dies. ``disconnect()`` / ``reconnect()`` do it by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

from hyperfollow.adapters.sim.account import SimAccountState, SimLeaderFeed
from hyperfollow.adapters.sim.gateway import SimGateway
from hyperfollow.adapters.sim.market import SimMarketData
from hyperfollow.adapters.sim.session import SimSession
from hyperfollow.domain.model import StreamEvent
from hyperfollow.domain.rules import to_wire
from hyperfollow.exchange.embedded import EmbeddedExchange


class SimVenue:
    """One account on an in-process exchange, implementing ``ports.Venue``."""

    def __init__(self, exchange: EmbeddedExchange, account: str) -> None:
        self._session = SimSession(exchange, account)
        self._gateway = SimGateway(self._session)
        self._market = SimMarketData(self._session)
        self._account = SimAccountState(self._session)
        self._leaders = SimLeaderFeed(self._session)
        self._pending_reconnect: asyncio.Handle | None = None

    # ------------------------------------------------------------------ the four roles

    @property
    def gateway(self) -> SimGateway:
        return self._gateway

    @property
    def market(self) -> SimMarketData:
        return self._market

    @property
    def account(self) -> SimAccountState:
        return self._account

    @property
    def leaders(self) -> SimLeaderFeed:
        return self._leaders

    @property
    def exchange(self) -> EmbeddedExchange:
        return self._session.exchange

    @property
    def connected(self) -> bool:
        return self._session.connected

    def events(self) -> AsyncIterator[StreamEvent]:
        """``disconnected`` / ``connected`` / ``backfilled`` around a (forced) reconnect, from now on."""
        return self._session.events()

    async def close(self) -> None:
        """End every stream of this venue and leave the hub (the exchange itself keeps running)."""
        if self._pending_reconnect is not None:
            self._pending_reconnect.cancel()
            self._pending_reconnect = None
        self._session.close()

    # ------------------------------------------------------------------ driving the market

    async def step(self, ms: int) -> int:
        """Advance the stepped clock by ``ms`` (the market moves each second) and publish what happened;
        returns the new time."""
        now = self._session.exchange.advance(ms)
        self._session.publish()
        return now

    async def set_price(self, coin: str, px: Decimal | str) -> None:
        """Move ``coin``'s reference price (book and mark follow; TP/SL triggers the mark crosses fire)
        and publish the effects."""
        self._session.exchange.set_price(coin, to_wire(Decimal(px)) if isinstance(px, Decimal) else px)
        self._session.publish()

    def publish(self) -> None:
        """Deliver engine events produced by someone else driving the exchange directly."""
        self._session.publish()

    # ------------------------------------------------------------------ the connection

    async def force_reconnect(self) -> None:
        """Drop the stream now; it comes back at the loop's next turn (see the module docstring)."""
        self._session.disconnect()
        if self._pending_reconnect is None:
            self._pending_reconnect = asyncio.get_running_loop().call_soon(self._reconnect_soon)

    def _reconnect_soon(self) -> None:
        self._pending_reconnect = None
        self._session.reconnect()

    async def disconnect(self) -> None:
        """Drop the stream until ``reconnect``: pushes in between are lost."""
        self._session.disconnect()

    async def reconnect(self) -> None:
        """Bring the stream back: books/mids re-snapshotted, fills backfilled and de-duplicated."""
        if self._pending_reconnect is not None:
            self._pending_reconnect.cancel()
            self._pending_reconnect = None
        self._session.reconnect()
