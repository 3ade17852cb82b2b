"""``AccountState`` and ``LeaderFeed`` in-process: ``/info`` queries parsed by the Hyperliquid parsers,
and fill/order streams from the engine's outbox (fills de-duplicated and backfilled after a gap)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.sim.session import SimSession
from hyperfollow.adapters.sim.streams import FillSubscription, OrderSubscription
from hyperfollow.domain.model import AccountSnapshot, Fill, OrderState, Position, RateLimitStatus


def _fill_stream(session: SimSession, users: Sequence[str], since_ms: int | None) -> FillSubscription:
    sub = FillSubscription(users, session.fills_since, session.now_ms(), since_ms)
    session.subscribe(sub)
    return sub


class SimAccountState:
    """The trading account's own state."""

    def __init__(self, session: SimSession) -> None:
        self._s = session

    @property
    def address(self) -> str:
        return self._s.address

    async def snapshot(self) -> AccountSnapshot:
        return self._s.snapshot(self._s.address)

    async def positions(self) -> list[Position]:
        return list(self._s.snapshot(self._s.address).positions)

    async def open_orders(self) -> list[OrderState]:
        """``frontendOpenOrders`` of every perp dex (triggers included), oldest first."""
        s = self._s
        out: list[OrderState] = []
        for dex in s.dexes():
            raw = s.info({"type": "frontendOpenOrders", "user": s.address, "dex": dex})
            out.extend(parse.order_state(o) for o in raw)
        return sorted(out, key=lambda o: (o.timestamp_ms, o.oid))

    async def equity(self) -> Decimal:
        return self._s.snapshot(self._s.address).equity

    async def fills_since(self, start_ms: int) -> list[Fill]:
        return self._s.fills_since([self._s.address], start_ms)

    async def rate_limit(self) -> RateLimitStatus:
        return parse.rate_limit(self._s.info({"type": "userRateLimit", "user": self._s.address}))

    def stream_fills(self, since_ms: int | None = None) -> AsyncIterator[Fill]:
        """Each fill once, oldest first; with ``since_ms`` the history from then is delivered first."""
        return _fill_stream(self._s, [self._s.address], since_ms).feed

    def stream_orders(self) -> AsyncIterator[OrderState]:
        sub = OrderSubscription(self._s.address)
        self._s.subscribe(sub)
        return sub.feed


class SimLeaderFeed:
    """Any address's fills and positions (no per-IP user limit in-process: every address is pushed)."""

    def __init__(self, session: SimSession) -> None:
        self._s = session

    async def fills_since(self, address: str, start_ms: int) -> list[Fill]:
        return self._s.fills_since([address.lower()], start_ms)

    async def snapshot(self, address: str) -> AccountSnapshot:
        return self._s.snapshot(address.lower())

    def stream_fills(self, addresses: Sequence[str], since_ms: int | None = None) -> AsyncIterator[Fill]:
        return _fill_stream(self._s, addresses, since_ms).feed
