"""A leader fed by hand: ``CopyService`` copying fills a test writes (any trade ids, any order), with the
followers trading on an in-process exchange (``SimVenue``, ETH quoted around $3,000).

``HandFeed`` is the ``LeaderFeed``: its history is every fill ``push``ed so far, a stream opened with
``since_ms`` delivers the history from there and then what is pushed, and the leader's snapshot holds the
positions its fills ended at. ``HandWorld`` builds services on one journal (a restart is a new service).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

from hyperfollow.adapters.sim import SimVenue
from hyperfollow.adapters.sim.market import SimMarketData
from hyperfollow.copy.journal import InMemoryJournal
from hyperfollow.copy.service import CopyService, ServiceConfig
from hyperfollow.copy.state import CopyEvent, EventKind
from hyperfollow.core.clock import LiveClock
from hyperfollow.domain.model import AccountSnapshot, Fill, Position, Side
from hyperfollow.exchange.embedded import EmbeddedExchange

START_MS = 1_767_225_600_000
LEADER = "0x" + "1e" * 20
F1 = "0x" + "f1" * 20


def D(x: str | int) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(str(x))


def leader_fill(
    tid: int, time_ms: int, side: Side, size: str, start: str, *, oid: int = 1, price: str = "3000"
) -> Fill:
    """A leader ETH fill; its ``dir`` follows from the position it moved."""
    begin = D(start)
    end = begin + (D(size) if side is Side.BUY else -D(size))
    return Fill(
        address=LEADER, coin="ETH", side=side, price=D(price), size=D(size), time_ms=time_ms,
        start_position=begin, direction=_dir(begin, end), closed_pnl=D(0), fee=D(0), oid=oid, tid=tid,
        hash=f"0x{oid:x}", crossed=True,
    )  # fmt: skip


def _dir(start: Decimal, end: Decimal) -> str:
    if start > 0 > end:
        return "Long > Short"
    if start < 0 < end:
        return "Short > Long"
    if abs(end) > abs(start):
        return "Open Long" if end > 0 else "Open Short"
    return "Close Long" if start > 0 else "Close Short"


class HandFeed:
    """``LeaderFeed`` over fills pushed by the test."""

    def __init__(self) -> None:
        self.history: list[Fill] = []
        self._queues: list[asyncio.Queue[Fill]] = []
        self.streams_opened: list[int | None] = []

    def push(self, *fills: Fill) -> None:
        """The leader traded: history, and every open stream."""
        self.history.extend(fills)
        for queue in self._queues:
            for f in fills:
                queue.put_nowait(f)

    def add_history(self, *fills: Fill) -> None:
        """Fills that happened while nobody listened (delivered only by a stream opened later)."""
        self.history.extend(fills)

    async def fills_since(self, address: str, start_ms: int) -> list[Fill]:
        return [f for f in self.history if f.address == address and f.time_ms >= start_ms]

    async def snapshot(self, address: str) -> AccountSnapshot:
        ends: dict[str, Decimal] = {}
        for f in self.history:
            ends[f.coin] = f.start_position + f.signed_size
        positions = tuple(
            Position(coin, size, D(3000), D(0), 20, True, abs(size) * 3000, D(0))
            for coin, size in ends.items()
            if size
        )
        return AccountSnapshot(address, START_MS, D(100_000), D(0), D(100_000), positions)

    def stream_fills(self, addresses: Sequence[str], since_ms: int | None = None) -> AsyncIterator[Fill]:
        queue: asyncio.Queue[Fill] = asyncio.Queue()
        if since_ms is not None:
            for f in self.history:
                if f.time_ms >= since_ms:
                    queue.put_nowait(f)
        self._queues.append(queue)
        self.streams_opened.append(since_ms)

        async def stream() -> AsyncIterator[Fill]:
            try:
                while True:
                    yield await queue.get()
            finally:
                self._queues.remove(queue)

        return stream()


class HandLeaderVenue:
    """What ``CopyService`` reads of the leader's venue: the hand feed and the exchange's market."""

    def __init__(self, feed: HandFeed, market: SimMarketData) -> None:
        self.leaders = feed
        self.market = market


class HandWorld:
    """The exchange, the hand-fed leader, and services built on one journal."""

    def __init__(self) -> None:
        self.exchange = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=START_MS)
        self.exchange.set_price("ETH", "3000")
        self.exchange.fund(F1, "10000")
        self.feed = HandFeed()
        self._market_venue = SimVenue(self.exchange, "0x" + "99" * 20)
        self.venues: list[SimVenue] = [self._market_venue]
        self.journal = InMemoryJournal()
        self.services: list[CopyService] = []
        self.events: list[CopyEvent] = []

    def now(self) -> int:
        return self.exchange.clock.now_ms()

    async def step(self, ms: int) -> int:
        """Move the exchange's clock (the services' clock) on by ``ms`` at once (nothing trades here but
        the market maker, whose quotes stay where ``set_price`` put them)."""
        now = self.exchange.clock.advance(ms)
        self.exchange.step()
        self._market_venue.publish()
        return now

    def service(self, **config: object) -> CopyService:
        venue = SimVenue(self.exchange, F1)
        self.venues.append(venue)
        leader = HandLeaderVenue(self.feed, self._market_venue.market)
        svc = CopyService(
            {F1: venue},
            self.journal,
            leader_venue=leader,  # type: ignore[arg-type]
            config=ServiceConfig(delta_loop=False, live_marks=False, **config),  # type: ignore[arg-type]
            clock=LiveClock(wall_ms=self.exchange.clock.now_ms),
        )
        svc.on_event(self.events.append)
        self.services.append(svc)
        return svc

    async def position(self, address: str = F1, coin: str = "ETH") -> Decimal:
        snap = self.exchange.info({"type": "clearinghouseState", "user": address})
        for p in snap["assetPositions"]:
            if p["position"]["coin"] == coin:
                return D(p["position"]["szi"])
        return D(0)

    def orders(self) -> list[CopyEvent]:
        """Every order event (sent, resent or resolved)."""
        skipped = (EventKind.SKIPPED,)
        return [e for e in self.events if e.kind not in skipped]

    async def close(self) -> None:
        for svc in self.services:
            await svc.close()
        for venue in self.venues:
            await venue.close()
