"""The copy engine's orders in the process's ownership registry (``core.orders``), shared with the risk
service: on the in-process venue (a stepped embedded exchange without simulated traders, its market maker
quoting ETH around $3,000) and the in-memory journal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal

import pytest

from hyperfollow.adapters.sim import SimVenue
from hyperfollow.copy.journal import EntryState, Follow, InMemoryJournal
from hyperfollow.copy.model import CopyIntent, ExecutionStyle, FollowSettings, SizingMode
from hyperfollow.copy.service import CopyService, ServiceConfig
from hyperfollow.copy.state import EventKind, Ledger, copy_owner
from hyperfollow.core.clock import LiveClock
from hyperfollow.core.orders import OrderOwners, Owner
from hyperfollow.domain.ids import cloid_for
from hyperfollow.domain.model import OrderRequest, OrderState, Side, Tif
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.risk.service import RiskService, RiskSettings

START_MS = 1_767_225_600_000
LEADER = "0x" + "1e" * 20
F1 = "0x" + "f1" * 20
TENTH = FollowSettings(sizing=SizingMode.FIXED_MULTIPLIER, multiplier=Decimal("0.1"))
HOUR = 3600.0
QUIET_RISK = RiskSettings(  # nothing runs by itself: the test drives the sweep and the reconcile
    scan_interval_secs=HOUR, pending_check_secs=HOUR, breaker_interval_secs=HOUR,
    reconcile_interval_secs=HOUR, deadman=False,
)  # fmt: skip


class World:
    def __init__(self) -> None:
        self.exchange = ex = EmbeddedExchange(
            seed=7, stepped=True, simulated_traders=False, start_ms=START_MS
        )
        ex.set_price("ETH", "3000")
        ex.fund(LEADER, "100000")
        ex.fund(F1, "10000")
        self.journal = InMemoryJournal()
        self.leader = SimVenue(ex, LEADER)
        self.venues: list[SimVenue] = [self.leader]
        self.closing: list[CopyService | RiskService] = []

    def clock(self) -> LiveClock:
        return LiveClock(wall_ms=self.exchange.clock.now_ms)

    def follower(self) -> SimVenue:
        venue = SimVenue(self.exchange, F1)
        self.venues.append(venue)
        return venue

    def service(self, owners: OrderOwners, venue: SimVenue | None = None) -> CopyService:
        svc = CopyService(
            {F1: venue or self.follower()}, self.journal, leader_venue=self.leader,
            config=ServiceConfig(delta_loop=False), clock=self.clock(), owners=owners,
        )  # fmt: skip
        self.closing.append(svc)
        return svc

    async def risk(self, venue: SimVenue, owners: OrderOwners) -> RiskService:
        risk = RiskService({F1: venue}, clock=self.clock(), settings=QUIET_RISK, owners=owners)
        await risk.start()
        self.closing.append(risk)
        return risk

    async def leader_buys(self, size: str) -> None:
        await self.leader.gateway.submit(OrderRequest("ETH", Side.BUY, Decimal(size), Decimal(3150), Tif.IOC))

    async def close(self) -> None:
        for part in reversed(self.closing):
            await part.close()
        for venue in self.venues:
            await venue.close()


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = World()
    yield w
    await w.close()


async def spin(times: int = 20) -> None:
    for _ in range(times):
        await asyncio.sleep(0)


async def resting(venue: SimVenue) -> list[OrderState]:
    return [o for o in await venue.account.open_orders() if o.trigger_price is None]


def test_a_flight_is_claimed_for_its_leader_and_released_when_it_lands() -> None:
    owners = OrderOwners()
    ledger = Ledger(owners)
    maker, fallback, ioc = cloid_for("m"), cloid_for("m", "taker"), cloid_for("t")
    ledger.sent(maker, (F1, LEADER, "ETH"), Side.BUY, aliases=[fallback])
    ledger.sent(ioc, (F1, LEADER, "BTC"), Side.SELL)
    assert owners.owner_of(maker) == owners.owner_of(fallback) == Owner("copy", LEADER)
    assert owners.cloids("copy", LEADER) == {maker, fallback, ioc} == ledger.in_flight_cloids()
    ledger.settle(ioc)  # ended with nothing filled
    assert not owners.owns(ioc)
    ledger.acked(maker, Decimal(1))  # filled, its fills not received yet: still flying
    assert owners.owns(maker)
    assert owners.owns(fallback)
    ledger.settle(maker)  # not a no-fill: nothing changes
    assert owners.owns(maker)


async def test_a_copys_resting_maker_order_is_never_swept_by_risk_an_unowned_one_is(world: World) -> None:
    owners = OrderOwners()  # the process's registry: the copy engine and the risk service share it
    venue = world.follower()
    svc = world.service(owners, venue)
    await svc.follow(
        F1,
        LEADER,
        replace(
            TENTH,
            execution=ExecutionStyle.MAKER,
            maker_timeout_secs=Decimal(2),
            maker_offset_bps=Decimal(300),
        ),
    )
    await svc.start()
    risk = await world.risk(venue, owners)
    hold = asyncio.Event()

    class Held(LiveClock):  # the maker's watchdog waits until the test lets it go, then time jumps
        async def sleep(self, seconds: float) -> None:
            await hold.wait()
            world.exchange.clock.advance(max(1, int(seconds * 1000)))
            await asyncio.sleep(0)

    svc.sender.clock = Held(wall_ms=world.exchange.clock.now_ms)
    await world.leader_buys("1")
    for _ in range(50):  # the copy's post-only order reaches the venue and rests under its watchdog
        await spin()
        if await resting(venue):
            break
    [maker] = await resting(venue)
    assert maker.cloid is not None
    assert svc.owns(maker.cloid)
    assert risk.owner_of(maker) == copy_owner(LEADER)
    stranger = await venue.gateway.submit(OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(2500)))
    await world.leader.step(10_000)  # both older than the sweep's 5 s (3% under the bid: nothing fills)
    await spin()
    assert await risk.cancel_stale_orders() == [stranger.oid]
    await risk.reconcile_once()  # nor is the copy's an orphan
    assert [o.oid for o in await resting(venue)] == [maker.oid]

    hold.set()  # the watchdog times out: cancelled, the rest taken as a taker
    await svc.settle()
    assert await resting(venue) == []
    assert not svc.owns(maker.cloid)  # landed: released
    assert len(owners) == 0
    assert world.journal.state_of(maker.cloid) in (EntryState.CANCELED, EntryState.FILLED)


def _intent(cloid: str) -> CopyIntent:
    return CopyIntent(
        follower=F1, leader=LEADER, coin="ETH", side=Side.BUY, size=Decimal("0.1"), reduce_only=False,
        leg="open", limit_price=Decimal(2500), tif=Tif.ALO, leverage=3, is_cross=True, cloid=cloid,
        reason="test", fill_key="tid:999999",
    )  # fmt: skip


async def test_after_a_restart_the_registry_knows_the_journals_open_cloids(world: World) -> None:
    await world.journal.save_follow(Follow(F1, LEADER, TENTH), now_ms=START_MS)
    now = world.exchange.clock.now_ms()
    rested, old = _intent(cloid_for("test", "rested")), _intent(cloid_for("test", "old"))
    await world.journal.begin([rested, old], now_ms=now - 120_000)
    crashed = world.follower()  # the process that sent one of them died before recording anything
    await crashed.gateway.submit(rested.to_order())
    assert [o.cloid for o in await resting(crashed)] == [rested.cloid]

    owners = OrderOwners()
    venue = world.follower()
    seen: dict[str, Owner | None] = {}
    status = venue.gateway.order_status

    async def looked_up(ref: int | str) -> OrderState | None:  # whose the entry is while it is resolved
        if isinstance(ref, str):
            seen.setdefault(ref, owners.owner_of(ref))
        return await status(ref)

    venue.gateway.order_status = looked_up  # type: ignore[method-assign]
    svc = world.service(owners, venue)
    events = await svc.start()
    assert seen == {rested.cloid: copy_owner(LEADER), old.cloid: copy_owner(LEADER)}
    assert sorted(e.kind for e in events) == sorted([EventKind.RESOLVED, EventKind.ABANDONED])
    assert await resting(venue) == []  # the order without a watchdog was taken off
    assert len(owners) == 0  # both settled: nothing is the copy engine's any more
