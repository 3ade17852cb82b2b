"""The copy engine on the risk layer (SimVenue, stepped embedded exchange, in-memory journal): the pre-trade
gate and breakers per follower, the flip guard with its reconcile, leader health (liquidated -> close and
blacklist; drawdown -> pause), each as the copies a leader's trades produce; a provided trading state (the
risk service's) obeyed; leader statuses and the glue's own trading state kept across a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import pytest
import structlog.testing
from test_copy_service import F1, LEADER, START_MS, TENTH, D, World

from hyperfollow.adapters.sim import SimVenue
from hyperfollow.copy.model import SkipReason
from hyperfollow.copy.service import CopyService, ServiceConfig
from hyperfollow.copy.state import EventKind
from hyperfollow.core.clock import LiveClock
from hyperfollow.domain.errors import OutcomeUnknown
from hyperfollow.domain.model import AccountSnapshot, Fill, OrderRequest, Side, Tif
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.risk.gate import RiskLimits, TradingState
from hyperfollow.risk.leaders import LeaderHealthPolicy
from hyperfollow.risk.service import AccountStates


@pytest.fixture
async def world() -> AsyncIterator[World]:
    """The copy service tests' world (ETH at $3,000, leaders with $100k, F1 with $10k)."""
    ex = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=START_MS)
    ex.set_price("ETH", "3000")
    for address, usd in ((LEADER, "100000"), (F1, "10000")):
        ex.fund(address, usd)
    w = World(ex)
    yield w
    await w.close()


async def _copying(world: World, **config: object) -> CopyService:
    svc = world.service(F1, **config)
    await svc.follow(F1, LEADER, TENTH)
    await svc.start()
    return svc


def _skips(world: World, reason: SkipReason) -> list[dict[str, str]]:
    return [dict(s.detail) for s in world.journal.skips_of(F1) if s.reason is reason]


# ---------------------------------------------------------------------- pre-trade gate and breakers


async def test_the_gate_refuses_an_open_over_the_per_order_cap_and_lets_the_close_through(
    world: World,
) -> None:
    svc = await _copying(world, risk_limits=RiskLimits(max_order_notional_usd=D("500")))
    await world.trade(LEADER, Side.BUY, "1")  # ours 0.1 ETH ~ $300: under the cap
    await svc.settle()
    assert await world.position(F1) == D("0.1")
    await world.trade(LEADER, Side.BUY, "5")  # ours 0.5 ETH ~ $1,500: refused
    await svc.settle()
    assert await world.position(F1) == D("0.1")
    [detail] = _skips(world, SkipReason.SKIP_RISK_GATE)
    assert detail["gate"] == "ORDER_NOTIONAL"
    assert D(detail["limit_usd"]) == 500
    assert D("1400") < D(detail["notional_usd"]) < D("1600")
    [event] = world.kinds(EventKind.SKIPPED)
    assert "per-order cap" in event.reason
    await world.trade(LEADER, Side.SELL, "6")  # the leader leaves: our close is never blocked
    await svc.settle()
    assert await world.position(F1) == 0
    assert svc.risk.state(F1) is TradingState.ACTIVE


async def test_the_kill_switch_halts_opens_closes_pass_and_only_a_reset_lifts_it(world: World) -> None:
    svc = await _copying(world, risk_limits=RiskLimits())
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    svc.risk.set_kill_switch(F1, True)
    await world.trade(LEADER, Side.BUY, "1")  # an add: refused
    await svc.settle()
    assert await world.position(F1) == D("0.1")
    assert [d["gate"] for d in _skips(world, SkipReason.SKIP_RISK_GATE)] == ["KILL_SWITCH"]
    assert svc.risk.state(F1) is TradingState.HALTED
    await world.trade(LEADER, Side.SELL, "2")  # the close goes
    await svc.settle()
    assert await world.position(F1) == 0
    svc.risk.set_kill_switch(F1, False)
    await world.trade(LEADER, Side.BUY, "1")  # still HALTED: the halt is sticky
    await svc.settle()
    assert await world.position(F1) == 0
    assert await svc.risk.reset(F1) is TradingState.ACTIVE
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    assert await world.position(F1) == D("0.1")


async def test_a_daily_loss_halts_the_follower(world: World) -> None:
    svc = await _copying(world, risk_limits=RiskLimits(max_daily_loss_usd=D("0.01")))
    await world.trade(LEADER, Side.BUY, "1")  # our copy pays a fee: the day's PnL goes below zero
    await svc.settle()
    assert await world.position(F1) == D("0.1")
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    assert await world.position(F1) == D("0.1")
    [detail] = _skips(world, SkipReason.SKIP_RISK_GATE)
    assert detail["gate"] == "DAILY_LOSS"
    assert D(detail["loss_usd"]) > D("0.01")
    assert svc.risk.state(F1) is TradingState.HALTED
    await world.trade(LEADER, Side.SELL, "2")
    await svc.settle()
    assert await world.position(F1) == 0


# ---------------------------------------------------------------------- flip guard


async def test_the_flip_guard_blocks_after_a_trade_behind_our_back_then_the_next_copy_proceeds(
    world: World,
) -> None:
    svc = await _copying(world)
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    # somebody trades the follower's account directly: the venue holds 0.6, our record 0.1
    manual = OrderRequest("ETH", Side.BUY, D("0.5"), D("3200"), Tif.IOC)
    await svc.venues[F1].gateway.submit(manual)
    await svc.settle()
    assert await world.position(F1) == D("0.6")
    await world.trade(LEADER, Side.BUY, "1")  # blocked, and the follower is reconciled
    await svc.settle()
    assert await world.position(F1) == D("0.6")
    [detail] = _skips(world, SkipReason.SKIP_FLIP_GUARD)
    assert (D(detail["record_size"]), D(detail["venue_size"])) == (D("0.1"), D("0.6"))
    assert svc.risk.foreign(F1) == {"ETH": D("0.5")}
    await world.trade(LEADER, Side.BUY, "1")  # the records agree again: copied
    await svc.settle()
    assert await world.position(F1) == D("0.7")
    await world.trade(LEADER, Side.SELL, "3")  # the leader leaves: ours closes, the manual 0.5 stays
    await svc.settle()
    assert await world.position(F1) == D("0.5")
    assert len(_skips(world, SkipReason.SKIP_FLIP_GUARD)) == 1


# ---------------------------------------------------------------------- leader health


class HidingFeed:
    """The leader feed, except fills that arrive while ``blind``: the stream drops them, and ``fills_since``
    too unless ``backfill_sees`` (a stream that lagged, not a missing fill)."""

    def __init__(self, inner: SimVenue) -> None:
        self._inner = inner.leaders
        self.blind = False
        self.backfill_sees = False
        self.hidden: set[str] = set()

    async def fills_since(self, address: str, start_ms: int) -> list[Fill]:
        fills = await self._inner.fills_since(address, start_ms)
        return fills if self.backfill_sees else [f for f in fills if f.ref not in self.hidden]

    async def snapshot(self, address: str) -> AccountSnapshot:
        return await self._inner.snapshot(address)

    def stream_fills(self, addresses: Sequence[str], since_ms: int | None = None) -> AsyncIterator[Fill]:
        return self._filter(self._inner.stream_fills(addresses, since_ms))

    async def _filter(self, stream: AsyncIterator[Fill]) -> AsyncIterator[Fill]:
        async for fill in stream:
            if self.blind or fill.ref in self.hidden:
                self.hidden.add(fill.ref)
                continue
            yield fill


class LeaderView:
    """The service's view of the market and of leaders (``CopyService(leader_venue=...)``)."""

    def __init__(self, venue: SimVenue) -> None:
        self.market = venue.market
        self.leaders = HidingFeed(venue)


async def _watched(world: World, policy: LeaderHealthPolicy | None = None) -> tuple[CopyService, HidingFeed]:
    venue = SimVenue(world.exchange, F1)
    world.venues.append(venue)
    view = LeaderView(venue)
    config = ServiceConfig(delta_loop=False, leader_health=policy or LeaderHealthPolicy())
    svc = CopyService({F1: venue}, world.journal, leader_venue=view, config=config,  # type: ignore[arg-type]
                      clock=LiveClock(wall_ms=world.exchange.clock.now_ms))  # fmt: skip
    svc.on_event(world.events.append)
    world.services.append(svc)
    await svc.follow(F1, LEADER, TENTH)
    await svc.start()
    return svc, view.leaders


async def _unseen_close(world: World, svc: CopyService, feed: HidingFeed) -> None:
    feed.blind = True
    await world.trade(LEADER, Side.SELL, "1")  # the leader's position goes, and we never see the fill
    await svc.settle()
    for _ in range(5):
        await asyncio.sleep(0)
    feed.blind = False


async def test_a_leader_position_gone_without_fills_closes_ours_and_blacklists_the_leader(
    world: World,
) -> None:
    svc, feed = await _watched(world)
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    await svc.leader_snapshot(LEADER, fresh=True)  # the leader's snapshot with the position
    assert await world.position(F1) == D("0.1")
    await _unseen_close(world, svc, feed)
    assert feed.hidden
    assert await world.position(F1) == D("0.1")  # nothing copied: we did not see it
    await svc.leader_snapshot(LEADER, fresh=True)  # the next snapshot: the position vanished
    await svc.settle()
    assert await world.position(F1) == 0
    [close] = [e for e in world.kinds(EventKind.FILLED) if e.leg == "close"]
    assert close.reason == "leader_liquidated"
    status = svc.risk.leader_status(LEADER)
    assert status.blacklisted_until_ms is not None
    assert status.blacklisted_until_ms >= world.exchange.clock.now_ms() + 13 * 86_400_000
    await world.trade(LEADER, Side.BUY, "1")  # a new open of the blacklisted leader: skipped
    await svc.settle()
    assert await world.position(F1) == 0
    assert len(_skips(world, SkipReason.SKIP_LEADER_BLACKLISTED)) == 1


async def test_a_close_the_stream_has_not_delivered_yet_is_not_a_liquidation(world: World) -> None:
    svc, feed = await _watched(world)
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    await svc.leader_snapshot(LEADER, fresh=True)
    feed.backfill_sees = True  # the backfill finds the close: the stream was only late
    await _unseen_close(world, svc, feed)
    await svc.leader_snapshot(LEADER, fresh=True)
    await svc.settle()
    assert svc.risk.leader_status(LEADER).blacklisted_until_ms is None
    assert await world.position(F1) == D("0.1")  # no liquidation close


async def test_a_paused_leaders_opens_are_skipped_and_its_closes_copied(world: World) -> None:
    svc, _ = await _watched(world, LeaderHealthPolicy(max_drawdown_pct=D("0.5")))
    await world.trade(LEADER, Side.BUY, "10")
    await svc.settle()
    assert await world.position(F1) == D("1")
    await world.leaders[LEADER].set_price("ETH", "2900")  # the leader loses ~$1,000 of $100,000: 1 %
    await world.leaders[LEADER].step(3_000)  # past the snapshot's TTL: the next copy reads it again
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    assert svc.risk.leader_status(LEADER).paused
    assert await world.position(F1) == D("1")
    assert len(_skips(world, SkipReason.SKIP_LEADER_PAUSED)) == 1
    await world.trade(LEADER, Side.SELL, "11")  # the leader closes: so do we
    await svc.settle()
    assert await world.position(F1) == 0


async def test_without_limits_the_gate_is_off(world: World) -> None:
    svc = await _copying(world)
    assert svc.config.risk_limits is None
    await world.trade(LEADER, Side.BUY, "200")  # ours 20 ETH ~ $60,000: over every default limit
    await svc.settle()
    assert _skips(world, SkipReason.SKIP_RISK_GATE) == []
    assert replace(svc.config, risk_limits=RiskLimits()).risk_limits is not None
    assert START_MS > 0


async def test_an_outcome_that_stays_unknown_schedules_a_reconcile_of_the_follower(world: World) -> None:
    svc = await _copying(world)
    gateway = svc.venues[F1].gateway
    reads: list[int] = []
    account = svc.venues[F1].account
    real_snapshot = account.snapshot

    async def lost(order: OrderRequest) -> object:
        raise OutcomeUnknown("timed out", cloids=(order.cloid or "",))

    async def not_found(ref: int | str) -> None:
        return None

    async def counted() -> AccountSnapshot:
        reads.append(1)
        return await real_snapshot()

    gateway.submit = lost  # type: ignore[method-assign,assignment]
    gateway.order_status = not_found  # type: ignore[method-assign]
    account.snapshot = counted  # type: ignore[method-assign]
    with structlog.testing.capture_logs() as logs:
        await world.trade(LEADER, Side.BUY, "1")
        await svc.settle()
    assert [e.kind for e in world.kinds(EventKind.UNKNOWN)] == [EventKind.UNKNOWN]
    [entry] = [e for e in logs if e["event"] == "copy.reconcile_after_unknown"]
    assert entry["follower"] == F1
    assert reads  # the follower's account was read again


# ---------------------------------------------------------------------- what outlives a restart


async def test_a_blacklisted_leader_stays_blacklisted_after_a_restart_on_the_same_journal(
    world: World,
) -> None:
    svc, feed = await _watched(world)
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    await svc.leader_snapshot(LEADER, fresh=True)
    await _unseen_close(world, svc, feed)
    await svc.leader_snapshot(LEADER, fresh=True)  # liquidated: ours closed, the leader blacklisted
    await svc.settle()
    until = svc.risk.leader_status(LEADER).blacklisted_until_ms
    assert until is not None
    assert world.journal.leader_table[LEADER].blacklisted_until_ms == until  # saved at once
    await svc.close()

    again = world.service(F1)  # the process restarts on the same journal
    await again.start()
    assert again.risk.leader_status(LEADER).blacklisted_until_ms == until
    await world.trade(LEADER, Side.BUY, "1")  # a new open of the blacklisted leader: still skipped
    await again.settle()
    assert await world.position(F1) == 0
    [skip] = _skips(world, SkipReason.SKIP_LEADER_BLACKLISTED)
    assert D(skip["blacklisted_until_ms"]) == until


async def test_a_new_peak_alone_is_saved_at_most_once_a_minute(world: World) -> None:
    svc, _ = await _watched(world)
    await svc.leader_snapshot(LEADER, fresh=True)
    first = world.journal.leader_table[LEADER]
    assert (first.peak_equity, first.paused, first.blacklisted_until_ms) == (D("100000"), False, None)
    world.exchange.fund(LEADER, "1000")  # a higher peak, seconds later: kept in memory only
    await world.leaders[LEADER].step(3_000)
    await svc.leader_snapshot(LEADER, fresh=True)
    assert svc.risk.leader_status(LEADER).peak_equity == D("101000")
    assert world.journal.leader_table[LEADER] == first
    await world.leaders[LEADER].step(60_000)  # a minute on: the peak is saved
    await svc.leader_snapshot(LEADER, fresh=True)
    assert world.journal.leader_table[LEADER].peak_equity == D("101000")


# ---------------------------------------------------------------------- one trading state per account


@pytest.mark.parametrize("limits", [None, RiskLimits()], ids=["state-only", "with-limits"])
async def test_a_provided_halted_state_refuses_opens_and_lets_closes_through(
    world: World, limits: RiskLimits | None
) -> None:
    states = AccountStates({F1: TradingState.ACTIVE})  # what RiskService.state is
    svc = await _copying(world, risk_limits=limits, trading_state=states)
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    assert await world.position(F1) == D("0.1")
    states[F1] = TradingState.HALTED  # the risk service's breakers halted the account
    assert svc.risk.state(F1.upper().replace("0X", "0x")) is TradingState.HALTED
    await world.trade(LEADER, Side.BUY, "1")  # an add: refused
    await svc.settle()
    assert await world.position(F1) == D("0.1")
    [detail] = _skips(world, SkipReason.SKIP_RISK_GATE)
    assert detail["gate"] == "HALTED"
    await world.trade(LEADER, Side.SELL, "2")  # the close goes
    await svc.settle()
    assert await world.position(F1) == 0
    svc.risk.set_kill_switch(F1, True)  # no breakers of its own: the state stays the provider's
    assert await svc.risk.reset(F1) is TradingState.HALTED
    assert world.journal.state_changes == []
    states[F1] = TradingState.ACTIVE
    svc.risk.set_kill_switch(F1, False)
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    assert await world.position(F1) == D("0.1")


async def test_standalone_state_changes_are_recorded_and_halted_is_restored_after_a_restart(
    world: World,
) -> None:
    svc = await _copying(world, risk_limits=RiskLimits())
    await world.trade(LEADER, Side.BUY, "1")
    await svc.settle()
    svc.risk.set_kill_switch(F1, True)
    await world.trade(LEADER, Side.BUY, "1")  # halts
    await svc.settle()
    [(account, change)] = world.journal.state_changes
    assert (account, change.from_state, change.to_state) == (F1, TradingState.ACTIVE, TradingState.HALTED)
    assert change.reason.name == "KILL_SWITCH"
    await svc.close()

    again = world.service(F1, risk_limits=RiskLimits())  # the switch is not on in the new process
    await again.start()
    assert again.risk.state(F1) is TradingState.HALTED  # but the halt is sticky across the restart
    await world.trade(LEADER, Side.BUY, "1")
    await again.settle()
    assert await world.position(F1) == D("0.1")
    assert [d["gate"] for d in _skips(world, SkipReason.SKIP_RISK_GATE)] == ["KILL_SWITCH", "HALTED"]
    assert await again.risk.reset(F1) is TradingState.ACTIVE
    assert await world.journal.latest_state(F1) is TradingState.ACTIVE
    await world.trade(LEADER, Side.BUY, "1")
    await again.settle()
    assert await world.position(F1) == D("0.2")
