"""CopyService on the database store (``StoreCopyJournal``), on SQLite (a file in tmp) and PostgreSQL.

The venue is the in-process one (a stepped embedded exchange without simulated traders); what is under
test is the persistence: a mirror scenario read back from the tables, and a restart on a freshly opened
store (as a new process would) that resolves, resends and backfills without doing anything twice.

The databases come from this folder's conftest (``migrated_url``: SQLite in tmp, and a fresh PostgreSQL
database per module, dropped afterwards; an unreachable server fails the tests).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from hyperfollow.adapters.sim import SimVenue
from hyperfollow.copy.lifecycle import is_settlement
from hyperfollow.copy.model import CopyIntent, FollowSettings, SizingMode, StopAction
from hyperfollow.copy.service import CopyService, ServiceConfig
from hyperfollow.copy.state import CopyEvent, EventKind
from hyperfollow.core.clock import LiveClock
from hyperfollow.domain.ids import cloid_for
from hyperfollow.domain.model import OrderRequest, Side, Tif
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.store import JournalState, Store
from hyperfollow.store.copy_journal import StoreCopyJournal

START_MS = 1_767_225_600_000
TENTH = FollowSettings(sizing=SizingMode.FIXED_MULTIPLIER, multiplier=Decimal("0.1"))


def D(x: str) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(x)


# ---------------------------------------------------------------------- the venue and the service


def _address() -> str:
    return "0x" + secrets.token_hex(20)


class World:
    def __init__(self, url: str) -> None:
        self.url = url
        self.exchange = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=START_MS)
        self.exchange.set_price("ETH", "3000")
        self.leader, self.follower = _address(), _address()
        self.exchange.fund(self.leader, "100000")
        self.exchange.fund(self.follower, "10000")
        self.leader_venue = SimVenue(self.exchange, self.leader)
        self.opened: list[Store | SimVenue | CopyService] = [self.leader_venue]
        self.events: list[CopyEvent] = []

    def service(self) -> tuple[CopyService, Store]:
        """A new service on a newly opened store: what a restarted process has."""
        store = Store.open(self.url)
        venue = SimVenue(self.exchange, self.follower)
        svc = CopyService(
            {self.follower: venue},
            StoreCopyJournal(store),
            config=ServiceConfig(delta_loop=False),
            clock=LiveClock(wall_ms=self.exchange.clock.now_ms),
        )
        svc.on_event(self.events.append)
        self.opened += [store, venue, svc]
        return svc, store

    async def trade(self, side: Side, size: str) -> None:
        mid = (await self.leader_venue.market.mids())["ETH"]
        px = (mid * D("1.05") if side is Side.BUY else mid * D("0.95")).quantize(D("1"))
        await self.leader_venue.gateway.submit(OrderRequest("ETH", side, D(size), px, Tif.IOC))

    async def position(self) -> Decimal:
        state = self.exchange.info({"type": "clearinghouseState", "user": self.follower})
        sizes = [D(p["position"]["szi"]) for p in state["assetPositions"] if p["position"]["coin"] == "ETH"]
        return sizes[0] if sizes else D("0")

    async def close(self) -> None:
        for item in reversed(self.opened):
            await item.close()


@pytest.fixture
async def world(migrated_url: str) -> AsyncIterator[World]:
    w = World(migrated_url)
    yield w
    await w.close()


async def test_a_mirror_scenario_is_recorded_in_the_store(world: World) -> None:
    svc, store = world.service()
    await svc.follow(world.follower, world.leader, TENTH)
    await svc.start()
    await world.trade(Side.BUY, "40")  # a sweep: one copy of 4 ETH
    await world.trade(Side.SELL, "20")  # half closed
    await world.trade(Side.BUY, "0.02")  # our 0.002 ETH (~$6) is under $10: skipped
    await svc.settle()
    assert await world.position() == D("2")
    async with store.transaction() as tx:
        [position] = await tx.positions.for_follower(world.follower)
        fills = await tx.fills.for_address(world.follower)
        journal = await tx.journal.recent(world.follower)
        skips = await tx.skips.for_follower(world.follower)
        cursor = await tx.cursors.get(world.follower, world.leader)
    assert (position.leader, position.size) == (world.leader, D("2"))
    assert D("5990") < position.entry_notional < D("6015")  # 2 ETH left at ~$3,000
    assert {f.leader for f in fills} == {world.leader}
    assert sum(f.fill.size for f in fills) == D("6")  # 4 bought, 2 sold
    assert [(e.leg, e.state) for e in reversed(journal)] == [
        ("open", JournalState.FILLED),
        ("close", JournalState.FILLED),
    ]
    assert [(s.reason, s.detail["minimum_usd"]) for s in skips] == [("SKIP_MIN_NOTIONAL", "10")]
    assert cursor is not None
    # the cursor names every fill handled in its millisecond, the last handled (the skipped one) last
    assert cursor.last_fill_key.split()[-1] == skips[0].source_fill_key


def _intent(world: World, name: str, size: str) -> CopyIntent:
    return CopyIntent(
        follower=world.follower, leader=world.leader, coin="ETH", side=Side.BUY, size=D(size),
        reduce_only=False, leg="open", limit_price=D("3015"), tif=Tif.IOC, leverage=3, is_cross=True,
        cloid=cloid_for(world.follower, name), reason="test", fill_key=f"tid:{name}",
    )  # fmt: skip


async def test_a_restart_resolves_resends_and_backfills_without_doing_anything_twice(world: World) -> None:
    svc, store = world.service()
    await svc.follow(world.follower, world.leader, TENTH)
    await svc.start()
    await world.trade(Side.BUY, "1")
    await svc.settle()
    assert await world.position() == D("0.1")
    # the process dies: one intent journalled but never sent, one sent but nothing recorded of it
    never_sent, sent = _intent(world, "never-sent", "0.2"), _intent(world, "sent", "0.3")
    journal = StoreCopyJournal(store)
    now = world.exchange.clock.now_ms()
    assert await journal.begin([never_sent, sent], now_ms=now) == [never_sent, sent]
    await svc.close()
    crashed = SimVenue(world.exchange, world.follower)
    world.opened.append(crashed)
    await crashed.gateway.submit(sent.to_order())
    await world.leader_venue.step(1_000)
    await world.trade(Side.BUY, "1")  # while we are down

    again, store2 = world.service()
    events = await again.start()
    assert sorted((e.kind, e.cloid) for e in events) == sorted(
        [(EventKind.RESENT, never_sent.cloid), (EventKind.RESOLVED, sent.cloid)]
    )
    await again.settle()
    assert await world.position() == D("0.1") + D("0.2") + D("0.3") + D("0.1")
    async with store2.transaction() as tx:
        assert await tx.journal.unresolved() == []
        for intent in (never_sent, sent):
            entry = await tx.journal.get(intent.cloid)
            assert entry is not None
            assert entry.state is JournalState.FILLED
            assert len(await tx.fills.for_cloid(intent.cloid)) >= 1
        [position] = await tx.positions.for_follower(world.follower)
        entries = await tx.journal.recent(world.follower)
    assert position.size == D("0.7")  # every fill attributed once
    assert len(entries) == 4  # the copies of two leader fills and the two test intents; none twice
    venue_fills = await world.leader_venue.leaders.fills_since(world.follower, START_MS)
    assert len({f.cloid for f in venue_fills}) == 4


async def test_settled_opposite_shares_are_recorded_and_a_restart_loads_them_flat(world: World) -> None:
    leader2 = _address()
    world.exchange.fund(leader2, "100000")
    second = SimVenue(world.exchange, leader2)
    world.opened.append(second)
    svc, store = world.service()
    await svc.follow(world.follower, world.leader, TENTH)
    await svc.follow(world.follower, leader2, TENTH)
    await svc.start()
    await world.trade(Side.BUY, "1")  # +0.1 for the first leader's follow
    mid = (await second.market.mids())["ETH"]
    await second.gateway.submit(
        OrderRequest("ETH", Side.SELL, D("1"), (mid * D("0.95")).quantize(D("1")), Tif.IOC)
    )
    await svc.settle()
    assert await world.position() == 0  # -0.1 for the second: the account is flat
    events = await svc.stop_follow(world.follower, world.leader, StopAction.CLOSE)
    assert [e.kind for e in events] == [EventKind.SETTLED, EventKind.SETTLED]
    async with store.transaction() as tx:
        positions = await tx.positions.for_follower(world.follower)
        fills = await tx.fills.for_address(world.follower)
    assert {(p.leader, p.size) for p in positions} == {(world.leader, D(0)), (leader2, D(0))}
    settled = [f for f in fills if is_settlement(f.fill)]
    assert {(f.leader, f.fill.side, f.fill.size) for f in settled} == {
        (world.leader, Side.SELL, D("0.1")),
        (leader2, Side.BUY, D("0.1")),
    }
    await svc.close()
    again, _ = world.service()
    await again.start()
    assert again.ledger.positions_of(world.follower, world.leader) == {}
    assert again.ledger.positions_of(world.follower, leader2) == {}
