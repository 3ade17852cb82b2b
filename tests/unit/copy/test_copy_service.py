"""CopyService on the in-process venue: a stepped embedded exchange without simulated traders (its market
maker quotes ETH around $3,000), leaders trading through their own SimVenue, followers copying them, and
the in-memory journal. ``settle()`` waits until every fill the venue pushed has been handled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal

import pytest

from hyperfollow.adapters.sim import SimVenue
from hyperfollow.copy.closing import CLOSE_ATTEMPTS
from hyperfollow.copy.journal import EntryState, Follow, InMemoryJournal
from hyperfollow.copy.lifecycle import against_net, is_settlement
from hyperfollow.copy.model import (
    CopyIntent,
    CopyMode,
    ExecutionStyle,
    ExistingPositions,
    FollowSettings,
    SizingMode,
    SkipReason,
    StopAction,
)
from hyperfollow.copy.service import CopyService, ServiceConfig
from hyperfollow.copy.state import CopyEvent, EventKind
from hyperfollow.core.clock import LiveClock
from hyperfollow.core.market import MIDS, MarketCache
from hyperfollow.domain.ids import cloid_for
from hyperfollow.domain.model import OrderRequest, Side, Tif
from hyperfollow.exchange.embedded import EmbeddedExchange

START_MS = 1_767_225_600_000
LEADER = "0x" + "1e" * 20
LEADER2 = "0x" + "2e" * 20
F1 = "0x" + "f1" * 20
F2 = "0x" + "f2" * 20
TENTH = FollowSettings(sizing=SizingMode.FIXED_MULTIPLIER, multiplier=Decimal("0.1"))


def D(x: str) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(x)


@pytest.fixture
def exchange() -> EmbeddedExchange:
    ex = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=START_MS)
    ex.set_price("ETH", "3000")
    for address, usd in ((LEADER, "100000"), (LEADER2, "100000"), (F1, "10000"), (F2, "20000")):
        ex.fund(address, usd)
    return ex


class World:
    """The exchange, the leaders' venues, and services built on one journal (a restart = a new service)."""

    def __init__(self, exchange: EmbeddedExchange) -> None:
        self.exchange = exchange
        self.journal = InMemoryJournal()
        self.leaders = {a: SimVenue(exchange, a) for a in (LEADER, LEADER2)}
        self.venues: list[SimVenue] = list(self.leaders.values())
        self.services: list[CopyService] = []
        self.events: list[CopyEvent] = []

    def service(self, *followers: str, **config: object) -> CopyService:
        venues = {f: SimVenue(self.exchange, f) for f in followers}
        self.venues += venues.values()
        svc = CopyService(
            venues,
            self.journal,
            config=ServiceConfig(delta_loop=False, **config),  # type: ignore[arg-type]
            clock=LiveClock(wall_ms=self.exchange.clock.now_ms),
        )
        svc.on_event(self.events.append)
        self.services.append(svc)
        return svc

    async def trade(self, leader: str, side: Side, size: str, *, reduce_only: bool = False) -> None:
        mid = (await self.leaders[leader].market.mids())["ETH"]
        px = (mid * D("1.05") if side is Side.BUY else mid * D("0.95")).quantize(D("1"))
        order = OrderRequest("ETH", side, D(size), px, Tif.IOC, reduce_only=reduce_only)
        await self.leaders[leader].gateway.submit(order)

    async def position(self, address: str, coin: str = "ETH") -> Decimal:
        snap = self.exchange.info({"type": "clearinghouseState", "user": address})
        for p in snap["assetPositions"]:
            if p["position"]["coin"] == coin:
                return D(p["position"]["szi"])
        return D("0")

    def kinds(self, kind: EventKind) -> list[CopyEvent]:
        return [e for e in self.events if e.kind is kind]

    async def close(self) -> None:
        for svc in self.services:
            await svc.close()
        for venue in self.venues:
            await venue.close()


@pytest.fixture
async def world(exchange: EmbeddedExchange) -> AsyncIterator[World]:
    w = World(exchange)
    yield w
    await w.close()


async def _following(world: World, settings: FollowSettings, *followers: str) -> CopyService:
    svc = world.service(*(followers or (F1,)))
    for follower in followers or (F1,):
        await svc.follow(follower, LEADER, settings)
    await svc.start()
    return svc


# ---------------------------------------------------------------------- mirror


async def test_open_add_reduce_close_flip_are_mirrored_with_the_right_sizes(world: World) -> None:
    svc = await _following(world, TENTH)
    steps: list[tuple[Side, str, str]] = [
        (Side.BUY, "1", "0.1"),  # Open Long (a sweep of two levels: one order, one copy)
        (Side.BUY, "0.5", "0.15"),  # add
        (Side.SELL, "0.75", "0.075"),  # Close Long, half
        (Side.SELL, "0.75", "0"),  # Close Long, the rest
        (Side.SELL, "1", "-0.1"),  # Open Short
        (Side.BUY, "3", "0.2"),  # Short > Long: close ours, then open 0.2
    ]
    for side, size, ours in steps:
        await world.trade(LEADER, side, size)
        await svc.settle()
        assert await world.position(F1) == D(ours), (side, size)
    flip = [e for e in world.events if e.fill_key == world.events[-1].fill_key]
    assert [(e.leg, e.kind, e.size) for e in flip] == [
        ("close", EventKind.FILLED, D("0.1")),
        ("open", EventKind.FILLED, D("0.2")),
    ]
    assert world.kinds(EventKind.SKIPPED) == []
    # every copy journalled before it went out, and resolved
    assert all(
        world.journal.state_of(e.cloid or "") is EntryState.FILLED for e in world.kinds(EventKind.FILLED)
    )
    held = world.journal.held[(F1, LEADER, "ETH")]
    assert held.size == D("0.2")


async def test_a_sweep_of_many_levels_is_one_copy(world: World) -> None:
    svc = await _following(world, TENTH)
    await world.trade(LEADER, Side.BUY, "40")  # several levels of the maker's book: several leader fills
    leader_fills = await world.leaders[LEADER].account.fills_since(START_MS)
    assert len(leader_fills) > 2
    await svc.settle()
    [copy] = world.kinds(EventKind.FILLED)
    assert copy.size == D("4")
    assert copy.leg == "open"
    assert await world.position(F1) == D("4")


async def test_reverse_mode_takes_the_other_side(world: World) -> None:
    svc = await _following(world, replace(TENTH, reverse=True))
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    assert await world.position(F1) == D("-0.1")
    await world.trade(LEADER, Side.SELL, "1")  # the leader closes: so do we (buying back)
    await svc.settle()
    assert await world.position(F1) == D("0")


async def test_a_copy_under_ten_dollars_is_skipped_with_its_reason_and_numbers(world: World) -> None:
    svc = await _following(world, FollowSettings())  # equity ratio: 10k / 100k
    await world.trade(LEADER, Side.BUY, "0.02")  # $60 for the leader, $6 for us
    await svc.settle()
    [skip] = world.journal.skips_of(F1)
    assert skip.reason is SkipReason.SKIP_MIN_NOTIONAL
    assert D(skip.detail["value_usd"]) < 10
    [event] = world.kinds(EventKind.SKIPPED)
    assert event.skip_reason is SkipReason.SKIP_MIN_NOTIONAL
    assert "below the $10 minimum" in event.reason
    assert await world.position(F1) == 0
    # the cursor moved past the skipped fill with the skip (one transaction)
    cursor = world.journal.cursors[(F1, LEADER)]
    assert cursor.fill_ref == event.fill_key


async def test_equity_ratio_sizes_each_follower_by_its_own_equity(world: World) -> None:
    svc = await _following(world, FollowSettings(), F1, F2)
    await world.trade(LEADER, Side.BUY, "2")
    await svc.settle()
    assert await world.position(F1) == D("0.2")  # 10k / 100k, the leader's fee aside (floored to lots)
    assert await world.position(F2) == D("0.4")  # 20k / 100k
    assert all(e.latency_ms is not None and e.latency_ms >= 0 for e in world.kinds(EventKind.FILLED))


async def test_leverage_is_set_before_the_first_open_at_the_capped_value(world: World) -> None:
    svc = await _following(world, TENTH)  # CAP at 3x; the leader trades at the venue's 20x
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    state = world.exchange.info({"type": "clearinghouseState", "user": F1})
    [position] = state["assetPositions"]
    assert position["position"]["leverage"] == {"type": "cross", "value": 3}


async def test_stop_with_close_closes_ours_and_stops_copying(world: World) -> None:
    svc = await _following(world, TENTH)
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    events = await svc.stop_follow(F1, LEADER, StopAction.CLOSE)
    assert [(e.kind, e.leg, e.size) for e in events] == [(EventKind.FILLED, "close", D("0.1"))]
    assert await world.position(F1) == 0
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    assert await world.position(F1) == 0
    assert await world.journal.follows() == []


async def test_stop_with_keep_leaves_our_position(world: World) -> None:
    svc = await _following(world, TENTH)
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    assert await svc.stop_follow(F1, LEADER, StopAction.KEEP) == []
    assert await world.position(F1) == D("0.1")


async def test_events_are_delivered_to_async_subscribers(world: World) -> None:
    svc = await _following(world, TENTH)
    stream = svc.events()
    await world.trade(LEADER, Side.BUY, "1")
    await world.trade(LEADER, Side.BUY, "0.01")  # our 0.001 ETH: skipped
    await svc.settle()
    first, second = await anext(stream), await anext(stream)
    assert (first.kind, first.side, first.filled, first.leg) == (EventKind.FILLED, Side.BUY, D("0.1"), "open")
    assert first.latency_ms == 0  # the stepped clock stands still: leader fill and our ack in the same ms
    assert first.process_ms is not None
    assert (second.kind, second.skip_reason) == (EventKind.SKIPPED, SkipReason.SKIP_MIN_NOTIONAL)
    await svc.close()
    assert [e async for e in stream] == []  # the stream ends with the service


async def test_maker_style_rests_post_only_then_takes_the_rest_after_the_timeout(world: World) -> None:
    settings = replace(TENTH, execution=ExecutionStyle.MAKER, maker_timeout_secs=D("0.01"))
    svc = await _following(world, settings)

    class Stepping(LiveClock):  # the maker timeout runs on the service's (stepped) clock
        async def sleep(self, seconds: float) -> None:
            world.exchange.clock.advance(max(1, int(seconds * 1000)))
            await asyncio.sleep(0)

    svc.sender.clock = Stepping(wall_ms=world.exchange.clock.now_ms)
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    [event] = world.kinds(EventKind.FILLED)
    assert event.filled == D("0.1")
    assert await world.position(F1) == D("0.1")
    # the taker fallback has its own cloid, and its fill is still attributed to the leader
    [fill] = await svc.venues[F1].account.fills_since(START_MS)
    assert fill.cloid == cloid_for(event.cloid or "", "taker")
    assert world.journal.fills[(F1, fill.ref)][1] == LEADER
    assert world.journal.held[(F1, LEADER, "ETH")].size == D("0.1")


async def test_a_follow_started_again_does_not_copy_what_happened_while_it_was_stopped(world: World) -> None:
    svc = await _following(world, TENTH)
    await svc.stop_follow(F1, LEADER, StopAction.KEEP)
    await world.leaders[LEADER].step(1_000)
    await world.trade(LEADER, Side.BUY, "1")  # while stopped
    await world.leaders[LEADER].step(1_000)
    await svc.follow(F1, LEADER, TENTH)
    await svc.settle()
    assert await world.position(F1) == 0
    await world.trade(LEADER, Side.BUY, "1")  # an add of a position we never copied: preexisting
    await world.trade(LEADER, Side.SELL, "2")  # the leader goes flat
    await world.trade(LEADER, Side.BUY, "1")  # a fresh open: copied
    await svc.settle()
    assert await world.position(F1) == D("0.1")
    assert [s.reason for s in world.journal.skips_of(F1)] == [SkipReason.SKIP_PREEXISTING] * 2


async def test_a_new_follow_with_join_opens_our_share_of_the_leaders_position(world: World) -> None:
    await world.trade(LEADER, Side.SELL, "2")  # before the follow
    svc = await _following(world, replace(TENTH, existing_positions=ExistingPositions.JOIN))
    await svc.settle()
    assert await world.position(F1) == D("-0.2")
    [event] = world.kinds(EventKind.FILLED)
    assert event.fill_key.startswith("join:ETH:")


# ---------------------------------------------------------------------- two leaders


async def test_two_leaders_have_separate_budgets_and_their_own_pnl(world: World) -> None:
    svc = world.service(F1)
    await svc.follow(F1, LEADER, TENTH)
    await svc.follow(F1, LEADER2, replace(TENTH, budget_usd=D("200")))
    await svc.start()
    await world.trade(LEADER, Side.BUY, "1")
    await world.trade(LEADER2, Side.BUY, "1")
    await svc.settle()
    first = world.journal.held[(F1, LEADER, "ETH")]
    second = world.journal.held[(F1, LEADER2, "ETH")]
    assert first.size == D("0.1")  # LEADER's copies do not use LEADER2's budget ...
    assert D("0.06") <= second.size < D("0.067")  # ... whose $200 caps its copy (at the mark, in lots)
    assert await world.position(F1) == first.size + second.size
    # every fill of ours is attributed to the leader whose copy it was
    attributed = {leader for (address, _), (_, leader) in world.journal.fills.items() if address == F1}
    assert attributed == {LEADER, LEADER2}
    await world.leaders[LEADER].set_price("ETH", "3300")
    pnl = svc.leader_pnl(F1, await world.leaders[LEADER].market.mids())
    assert D("25") < pnl[LEADER] < D("30")  # 0.1 ETH x ~$300, less fees
    assert D("15") < pnl[LEADER2] < D("20")  # ~0.066 ETH x ~$300
    # a close of one leader reduces only that leader's part
    await world.trade(LEADER2, Side.SELL, "1")
    await svc.settle()
    assert world.journal.held[(F1, LEADER2, "ETH")].size == 0
    assert world.journal.held[(F1, LEADER, "ETH")].size == D("0.1")
    assert await world.position(F1) == D("0.1")


async def _opposite(world: World, long: str, short: str) -> CopyService:
    """F1 copies LEADER (who buys ``long``) and LEADER2 (who sells ``short``) on one account, with CLOSE."""
    svc = world.service(F1)
    settings = replace(TENTH, stop_action=StopAction.CLOSE)
    await svc.follow(F1, LEADER, settings)
    await svc.follow(F1, LEADER2, settings)
    await svc.start()
    await world.trade(LEADER, Side.BUY, long)
    await world.trade(LEADER2, Side.SELL, short)
    await svc.settle()
    return svc


async def test_closing_one_of_two_opposite_follows_on_a_flat_account_sends_nothing_and_settles_both(
    world: World,
) -> None:
    svc = await _opposite(world, "1", "1")
    assert svc.ledger.positions_of(F1, LEADER) == {"ETH": D("0.1")}
    assert svc.ledger.positions_of(F1, LEADER2) == {"ETH": D("-0.1")}
    assert await world.position(F1) == 0  # the venue is net flat
    orders_before = len(world.journal.entries)
    events = await svc.stop_follow(F1, LEADER)
    await svc.settle()
    assert [(e.kind, e.leader, e.side, e.size) for e in events] == [
        (EventKind.SETTLED, LEADER, Side.SELL, D("0.1")),
        (EventKind.SETTLED, LEADER2, Side.BUY, D("0.1")),
    ]
    assert len(world.journal.entries) == orders_before  # no order journalled, none sent
    assert world.kinds(EventKind.REJECTED) == []
    assert svc.ledger.positions_of(F1, LEADER) == {}
    assert svc.ledger.positions_of(F1, LEADER2) == {}
    assert await world.position(F1) == 0
    # recorded: each share settled at the mark as a book fill of the journal, PnL realized
    assert world.journal.held[(F1, LEADER, "ETH")].size == 0
    assert world.journal.held[(F1, LEADER2, "ETH")].size == 0
    settled = [f for f, _ in world.journal.fills.values() if is_settlement(f)]
    assert {(f.side, f.size) for f in settled} == {(Side.BUY, D("0.1")), (Side.SELL, D("0.1"))}
    assert await svc.stop_all() == []  # nothing left to close: LEADER2's share is settled too
    assert await world.position(F1) == 0


async def test_closing_all_follows_closes_the_net_once_and_settles_every_ledger(world: World) -> None:
    svc = await _opposite(world, "2", "1")
    assert await world.position(F1) == D("0.1")  # +0.2 for LEADER, -0.1 for LEADER2
    events = await svc.stop_all()
    await svc.settle()
    orders = [e for e in events if e.kind is not EventKind.SETTLED]
    assert [(e.kind, e.leader, e.side, e.filled) for e in orders] == [
        (EventKind.FILLED, LEADER, Side.SELL, D("0.1"))
    ]
    assert world.kinds(EventKind.REJECTED) == []
    assert await world.position(F1) == 0
    assert svc.ledger.positions_of(F1, LEADER) == {}
    assert svc.ledger.positions_of(F1, LEADER2) == {}
    assert await world.journal.follows() == []
    again = world.service(F1)  # a restart loads the settled ledgers: nothing held
    await again.start()
    assert again.ledger.positions_of(F1, LEADER) == {}
    assert again.ledger.positions_of(F1, LEADER2) == {}


async def test_a_close_the_venue_does_not_fill_is_tried_again_and_never_settled_away(world: World) -> None:
    svc = await _following(world, TENTH)
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    held = await world.position(F1)
    assert held > 0
    await svc.follow(F1, LEADER, replace(TENTH, slippage_cap_pct=D("0.0001")))  # closes limited at the mark
    events = await svc.stop_all(StopAction.CLOSE)
    assert [e.kind for e in events] == [EventKind.UNFILLED] * CLOSE_ATTEMPTS
    assert len({e.cloid for e in events}) == CLOSE_ATTEMPTS
    assert await world.position(F1) == held  # nothing closed at the venue ...
    assert svc.ledger.positions_of(F1, LEADER) == {"ETH": held}  # ... and nothing settled in the ledger


# ---------------------------------------------------------------------- delta sync


async def test_delta_sync_converges_within_the_band_and_respects_the_cooldown(world: World) -> None:
    settings = FollowSettings(mode=CopyMode.DELTA, delta_band_pct=D("5"), delta_cooldown_secs=D("60"))
    svc = await _following(world, settings)
    await world.trade(LEADER, Side.BUY, "10")  # ~30% of the leader's equity
    await svc.settle()
    assert await world.position(F1) == 0  # delta mode does not mirror fills
    events = await svc.delta_round()
    assert [e.kind for e in events] == [EventKind.FILLED]

    async def gap_pct() -> Decimal:
        mark = (await world.leaders[LEADER].market.mids())["ETH"]
        leader = await world.leaders[LEADER].account.snapshot()
        ours = await svc.venues[F1].account.snapshot()
        theirs = await world.position(LEADER) * mark / leader.equity
        return abs(await world.position(F1) * mark / ours.equity - theirs) * 100

    assert await gap_pct() <= 5
    await world.trade(LEADER, Side.BUY, "10")  # now ~60%: we are 30% off
    events = await svc.delta_round()
    assert [(e.kind, e.skip_reason) for e in events] == [(EventKind.SKIPPED, SkipReason.SKIP_COOLDOWN)]
    await world.leaders[LEADER].step(61_000)
    events = await svc.delta_round()
    assert [e.kind for e in events] == [EventKind.FILLED]
    assert await gap_pct() <= 5
    assert await svc.delta_round() == []  # in the band: nothing to do, and nothing logged as a skip
    await world.trade(LEADER, Side.SELL, "20", reduce_only=True)  # the leader leaves: we follow at once
    events = await svc.delta_round()
    assert [(e.kind, e.leg) for e in events] == [(EventKind.FILLED, "close")]
    assert await world.position(F1) == 0


async def test_delta_sync_does_not_buy_into_what_the_leader_held_before_the_follow(world: World) -> None:
    await world.trade(LEADER, Side.BUY, "10")  # before the follow: ~30% of the leader's equity
    svc = await _following(world, FollowSettings(mode=CopyMode.DELTA))
    await svc.settle()
    events = await svc.delta_round()
    assert [(e.kind, e.skip_reason) for e in events] == [(EventKind.SKIPPED, SkipReason.SKIP_PREEXISTING)]
    assert await svc.delta_round() == []  # said once, not at every round
    assert await world.position(F1) == 0
    await world.trade(LEADER, Side.SELL, "10", reduce_only=True)  # the leader leaves ...
    await world.trade(LEADER, Side.BUY, "10")  # ... and opens afresh: that one is ours to follow
    events = await svc.delta_round()
    assert [(e.kind, e.leg) for e in events] == [(EventKind.FILLED, "open")]
    assert D("0.9") < await world.position(F1) < D("1.1")


async def test_delta_sync_with_join_joins_the_leaders_book_at_its_first_round(world: World) -> None:
    await world.trade(LEADER, Side.BUY, "10")
    settings = FollowSettings(mode=CopyMode.DELTA, existing_positions=ExistingPositions.JOIN)
    svc = await _following(world, settings)
    await svc.settle()
    assert await world.position(F1) == 0  # no mirror-style join at the start: the delta round does it
    events = await svc.delta_round()
    assert [(e.kind, e.leg) for e in events] == [(EventKind.FILLED, "open")]
    assert D("0.9") < await world.position(F1) < D("1.1")
    assert await svc.delta_round() == []  # joined: in the band from now on


# ---------------------------------------------------------------------- restarts


def _follow() -> Follow:
    return Follow(F1, LEADER, TENTH)


def _intent(cloid: str, size: str = "0.1") -> CopyIntent:
    return CopyIntent(
        follower=F1, leader=LEADER, coin="ETH", side=Side.BUY, size=D(size), reduce_only=False, leg="open",
        limit_price=D("3015"), tif=Tif.IOC, leverage=3, is_cross=True, cloid=cloid, reason="test",
        fill_key="tid:999999",
    )  # fmt: skip


async def test_restart_sends_an_intent_the_venue_never_received_once(world: World) -> None:
    await world.journal.save_follow(_follow(), now_ms=START_MS)
    intent = _intent(cloid_for("test", "never-sent"))
    assert await world.journal.begin([intent], now_ms=world.exchange.clock.now_ms()) == [intent]
    svc = world.service(F1)
    events = await svc.start()
    assert [(e.kind, e.cloid, e.filled) for e in events] == [(EventKind.RESENT, intent.cloid, D("0.1"))]
    await svc.settle()
    assert world.journal.state_of(intent.cloid) is EntryState.FILLED
    assert world.journal.held[(F1, LEADER, "ETH")].size == D("0.1")
    await svc.close()
    again = world.service(F1)  # a second restart: nothing left to resolve, nothing sent
    assert await again.start() == []
    await again.settle()
    assert await world.position(F1) == D("0.1")
    ours = await again.venues[F1].account.fills_since(START_MS)
    assert {f.cloid for f in ours} == {intent.cloid}


async def test_restart_records_an_order_the_venue_has_and_does_not_resend_it(world: World) -> None:
    await world.journal.save_follow(_follow(), now_ms=START_MS)
    intent = _intent(cloid_for("test", "sent-not-recorded"))
    await world.journal.begin([intent], now_ms=world.exchange.clock.now_ms())
    crashed = SimVenue(world.exchange, F1)  # the process that sent it died before recording anything
    world.venues.append(crashed)
    await crashed.gateway.submit(intent.to_order())
    svc = world.service(F1)
    events = await svc.start()
    assert [(e.kind, e.filled) for e in events] == [(EventKind.RESOLVED, D("0.1"))]
    await svc.settle()
    assert world.journal.state_of(intent.cloid) is EntryState.FILLED
    assert await world.position(F1) == D("0.1")  # not twice
    assert world.journal.held[(F1, LEADER, "ETH")].size == D("0.1")  # its fills recorded and attributed


async def test_restart_abandons_an_old_opening_intent_the_venue_never_received(world: World) -> None:
    await world.journal.save_follow(_follow(), now_ms=START_MS)
    intent = _intent(cloid_for("test", "old"))
    now = world.exchange.clock.now_ms()
    await world.journal.begin([intent], now_ms=now - 120_000)
    svc = world.service(F1, resend_max_age_ms=60_000)
    [event] = await svc.start()
    assert event.kind is EventKind.ABANDONED
    assert world.journal.state_of(intent.cloid) is EntryState.CANCELED
    assert await world.position(F1) == 0


async def test_a_restart_backfills_leader_fills_missed_while_down_and_copies_nothing_twice(
    world: World,
) -> None:
    svc = await _following(world, TENTH)
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    await svc.close()
    await world.leaders[LEADER].step(1_000)
    await world.trade(LEADER, Side.BUY, "1")  # while we are down
    await world.trade(LEADER, Side.SELL, "0.5")
    again = world.service(F1)
    await again.start()
    await again.settle()
    assert await world.position(F1) == D("0.15")
    opens = [e for e in world.kinds(EventKind.FILLED) if e.leg == "open"]
    assert len(opens) == 2
    assert len({e.cloid for e in opens}) == 2


# ---------------------------------------------------------------------- hot-path inputs


async def test_streamed_mids_serve_the_hot_path_and_stale_coins_are_read_again(world: World) -> None:
    svc = await _following(world, TENTH)
    calls: list[int] = []
    market = svc.market
    real_mids = market.mids

    async def counting_mids() -> dict[str, Decimal]:
        calls.append(1)
        return await real_mids()

    market.mids = counting_mids  # type: ignore[method-assign]
    await asyncio.sleep(0.05)  # the mids stream delivers its first snapshot
    fresh = await svc.marks({"ETH"})
    assert fresh["ETH"] > 0
    assert calls == []  # the allMids stream had it: no request
    await svc.marks({"xyz:TSLA"} if "xyz:TSLA" not in fresh else {"NOPE"})
    assert calls == [1]  # a coin the stream has not shown: one REST read


async def test_the_copy_engine_shares_the_process_market_cache_one_mids_stream(world: World) -> None:
    leader_market = world.leaders[LEADER].market
    opened: list[object] = []
    real_stream = leader_market.stream_mids

    def counting_stream() -> object:
        stream = real_stream()
        opened.append(stream)
        return stream

    leader_market.stream_mids = counting_stream  # type: ignore[assignment,method-assign]
    cache = MarketCache(leader_market, clock=LiveClock(wall_ms=world.exchange.clock.now_ms))
    other = cache.subscribe_mids()  # another strategy of the process, subscribed first
    follower = SimVenue(world.exchange, F1)
    world.venues.append(follower)
    svc = CopyService(
        {F1: follower}, world.journal, leader_venue=world.leaders[LEADER],
        config=ServiceConfig(delta_loop=False), clock=LiveClock(wall_ms=world.exchange.clock.now_ms),
        market_cache=cache,
    )  # fmt: skip
    world.services.append(svc)
    await svc.follow(F1, LEADER, TENTH)
    await svc.start()
    assert svc.cache is cache
    assert cache.subscribers(MIDS) == 2
    assert len(opened) == 1  # one venue stream for both
    await asyncio.sleep(0.01)
    assert svc.mid("ETH") == cache.mid("ETH")
    assert svc.mid("ETH") is not None
    await svc.close()
    assert cache.subscribers(MIDS) == 1  # the other strategy keeps its stream
    assert not getattr(opened[0], "closed")  # noqa: B009
    await other.aclose()
    assert getattr(opened[0], "closed")  # noqa: B009


async def test_our_own_fills_never_make_a_copy_wait_for_the_follower_snapshot(world: World) -> None:
    svc = await _following(world, TENTH)
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    first = await svc.follower_snapshot(F1)
    reads: list[int] = []
    account = svc.venues[F1].account
    real_snapshot = account.snapshot

    async def slow_snapshot() -> object:
        reads.append(1)
        await asyncio.sleep(0.05)
        return await real_snapshot()

    account.snapshot = slow_snapshot  # type: ignore[method-assign]
    await world.trade(LEADER, Side.BUY, "1")  # our copy fills: the snapshot is now stale
    await svc.settle()
    started = asyncio.get_running_loop().time()
    served = await svc.follower_snapshot(F1)
    assert asyncio.get_running_loop().time() - started < 0.02  # served at once, refreshed behind
    assert served.equity > 0
    await asyncio.sleep(0.1)
    assert reads  # the background refresh ran
    assert (await svc.follower_snapshot(F1)) is not first


async def test_a_leaders_close_copied_beside_an_opposite_follow_moves_the_net_to_the_other_share(
    world: World,
) -> None:
    """LEADER long and LEADER2 short on one account: the venue is net flat. LEADER closes: our copy of
    that close must leave the account short LEADER2's share (a reduce-only order would be refused)."""
    svc = await _opposite(world, "1", "1")
    assert await world.position(F1) == 0
    await world.trade(LEADER, Side.SELL, "1", reduce_only=True)
    await svc.settle()
    assert world.kinds(EventKind.REJECTED) == []
    assert svc.ledger.positions_of(F1, LEADER) == {}
    assert svc.ledger.positions_of(F1, LEADER2) == {"ETH": D("-0.1")}
    assert await world.position(F1) == D("-0.1")  # LEADER2's share, as its leader still holds
    await world.trade(LEADER2, Side.BUY, "1", reduce_only=True)  # and the other close is a plain close
    await svc.settle()
    assert world.kinds(EventKind.REJECTED) == []
    assert await world.position(F1) == 0
    assert svc.ledger.positions_of(F1, LEADER2) == {}


@pytest.mark.parametrize(
    ("net", "closes_long", "reduce_only"),
    [
        ("0.3", True, True),  # the net holds our whole share on our side: reduce-only
        ("0.1", True, True),  # exactly: still reduce-only
        ("0.05", True, False),  # an opposite share nets part of ours away: plain order
        ("0", True, False),  # net flat beside an opposite share
        ("-0.2", False, True),  # a short share closed by a buy, covered by the net
        ("0.2", False, False),  # a short share while the net is long
    ],
)
def test_a_close_is_reduce_only_only_where_the_net_covers_it(
    net: str, closes_long: bool, reduce_only: bool
) -> None:
    close = replace(
        _intent("0x" + "c" * 32), side=Side.SELL if closes_long else Side.BUY, reduce_only=True, leg="close"
    )
    [out] = against_net([close], lambda _coin: D(net))
    assert (out.reduce_only, out.size, out.side, out.cloid) == (
        reduce_only,
        close.size,
        close.side,
        close.cloid,
    )


def test_against_net_follows_the_net_through_a_decision() -> None:
    """A flip's close is covered by the net; the open after it never becomes reduce-only."""
    close = replace(_intent("0x" + "c" * 32), side=Side.SELL, reduce_only=True, leg="close")
    opens = replace(_intent("0x" + "d" * 32), side=Side.SELL, leg="open")
    second = replace(_intent("0x" + "e" * 32), side=Side.SELL, reduce_only=True, leg="close")
    out = against_net([close, opens, second], lambda _coin: D("0.1"))
    assert [i.reduce_only for i in out] == [True, False, False]  # after the first two the net is -0.1


async def test_a_stop_that_closes_our_copy_closes_it_in_the_ledger_too(world: World) -> None:
    """A fill that is not a copy (the risk layer's native stop, a manual close) and shrinks the venue position
    takes the shares with it: the leader's later close has nothing to close, and sends nothing the venue
    would refuse."""
    svc = world.service(F1)
    await svc.follow(F1, LEADER, TENTH)
    await svc.start()
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    assert svc.ledger.positions_of(F1, LEADER) == {"ETH": D("0.1")}
    mid = (await svc.venues[F1].market.mids())["ETH"]
    stop = OrderRequest(
        "ETH", Side.SELL, D("0.1"), (mid * D("0.95")).quantize(D("1")), Tif.IOC, reduce_only=True
    )
    await svc.venues[F1].gateway.submit(stop)  # not a copy: no cloid of ours
    await svc.settle()
    assert await world.position(F1) == 0
    assert svc.ledger.positions_of(F1, LEADER) == {}
    await world.trade(LEADER, Side.SELL, "1", reduce_only=True)
    await svc.settle()
    assert world.kinds(EventKind.REJECTED) == []
    assert await world.position(F1) == 0
