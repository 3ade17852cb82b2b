"""Taker and maker execution on the in-process venue (adapters/sim over a stepped embedded exchange)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import pytest

from hyperfollow.adapters.sim import SimVenue
from hyperfollow.copy.journal import EntryState, InMemoryJournal
from hyperfollow.copy.model import CopyIntent, ExecutionStyle, FollowSettings, MakerFallback
from hyperfollow.copy.sending import OrderJob, Sender
from hyperfollow.copy.state import EventHub, EventKind, Ledger
from hyperfollow.core.clock import LiveClock, SimClock
from hyperfollow.domain.errors import OutcomeUnknown
from hyperfollow.domain.ids import cloid_for
from hyperfollow.domain.model import L2Book, Level, OrderAck, OrderRequest, Side, Tif
from hyperfollow.domain.rules import Instrument
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.execution.router import (
    MakerExecutor,
    MakerParams,
    execute_taker,
    maker_price,
    remainder_to_send,
)

OURS = "0x" + "a1" * 20
THEIRS = "0x" + "b2" * 20
ETH = Instrument("ETH", 1, 4, 25)


class FakeClock(SimClock):
    """Simulated time (driven while the executor runs: ``run``) that counts the sleeps; ``after_sleep`` is
    awaited after each one."""

    def __init__(self) -> None:
        super().__init__(start_ms=1_767_225_600_000)
        self.sleeps = 0
        self.after_sleep: Callable[[], Awaitable[None]] | None = None

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        self.sleeps += 1
        if self.after_sleep is not None:
            await self.after_sleep()


@pytest.fixture
async def venues() -> AsyncIterator[tuple[SimVenue, SimVenue]]:
    ex = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=1_767_225_600_000)
    ex.set_price("ETH", Decimal(3000))
    ex.fund(OURS, "100000")
    ex.fund(THEIRS, "100000")
    ours, theirs = SimVenue(ex, OURS), SimVenue(ex, THEIRS)
    yield ours, theirs
    await ours.close()
    await theirs.close()


def _book(bid: str, ask: str) -> L2Book:
    return L2Book("ETH", 0, (Level(bid, "1", 1),), (Level(ask, "1", 1),))


@pytest.mark.parametrize(
    ("side", "offset", "expected"),
    [
        (Side.BUY, "0", "2999.9"),
        (Side.SELL, "0", "3000.1"),
        (Side.BUY, "10", "2996.9"),  # 2999.9 * 0.999 = 2996.9001 -> down
        (Side.SELL, "10", "3003.2"),  # 3000.1 * 1.001 = 3003.1001 -> up
    ],
)
def test_maker_price_rests_at_the_touch_moved_away_by_the_offset(
    side: Side, offset: str, expected: str
) -> None:
    assert maker_price(_book("2999.9", "3000.1"), side, Decimal(offset), ETH) == Decimal(expected)
    assert maker_price(L2Book("ETH", 0, (), ()), side, Decimal(offset), ETH) is None


def test_an_opening_remainder_under_ten_dollars_is_not_sent_a_closing_one_is() -> None:
    opening = OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(3000))
    assert remainder_to_send(opening, Decimal("0.098"), Decimal(3000)) == 0  # $6 left
    assert remainder_to_send(opening, Decimal("0.05"), Decimal(3000)) == Decimal("0.05")
    closing = OrderRequest("ETH", Side.SELL, Decimal("0.1"), Decimal(3000), reduce_only=True)
    assert remainder_to_send(closing, Decimal("0.098"), Decimal(3000)) == Decimal("0.002")


async def test_taker_fills_at_once_within_the_cap(venues: tuple[SimVenue, SimVenue]) -> None:
    ours, _ = venues
    result = await execute_taker(ours.gateway, OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(3030)))
    assert (result.filled, result.unfilled, result.style) == (Decimal("0.1"), 0, "taker")
    assert result.avg_price is not None
    assert result.avg_price <= 3030
    nothing = await execute_taker(ours.gateway, OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(2000)))
    assert (nothing.filled, nothing.unfilled) == (0, Decimal("0.1"))


async def test_maker_fills_when_someone_trades_against_it(venues: tuple[SimVenue, SimVenue]) -> None:
    ours, theirs = venues
    clock = FakeClock()
    executor = MakerExecutor(ours.gateway, ours.market, ours.account, clock=clock)
    order = OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(3030), cloid=cloid_for("maker", "fill"))

    async def hit() -> None:
        if clock.sleeps == 2:  # a seller sweeps the best bid (the market maker's queue there, then ours)
            touch = (await theirs.market.l2_book("ETH")).bids[0]
            await theirs.gateway.submit(OrderRequest("ETH", Side.SELL, touch.size, touch.price, Tif.IOC))

    clock.after_sleep = hit
    result = await clock.run(executor.execute(order, MakerParams(timeout_secs=5, poll_secs=0.5)))
    book = await ours.market.l2_book("ETH")
    assert result.style == "maker"
    assert result.filled == Decimal("0.1")
    assert result.unfilled == 0
    assert result.avg_price is not None
    assert book.best_ask is not None
    assert result.avg_price < book.best_ask  # a maker price, not the ask
    pos = (await ours.account.snapshot()).position("ETH")
    assert pos is not None
    assert pos.size == Decimal("0.1")


@pytest.mark.parametrize("fallback", [True, False], ids=["then-taker", "then-drop"])
async def test_maker_times_out_then_takes_or_drops_the_rest(
    venues: tuple[SimVenue, SimVenue], fallback: bool
) -> None:
    ours, _ = venues
    clock = FakeClock()
    executor = MakerExecutor(ours.gateway, ours.market, ours.account, clock=clock)
    cloid = cloid_for("maker", "timeout", fallback)
    order = OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(3030), cloid=cloid)
    result = await clock.run(
        executor.execute(order, MakerParams(timeout_secs=5, poll_secs=0.5, fallback_to_taker=fallback))
    )
    assert clock.monotonic() >= 5  # it waited the whole timeout
    state = await ours.gateway.order_status(cloid)
    assert state is not None
    assert state.status == "canceled"  # the maker order did not outlive its watchdog
    assert await ours.account.open_orders() == []
    if fallback:
        assert (result.style, result.filled, result.unfilled) == ("maker+taker", Decimal("0.1"), 0)
        taker = await ours.gateway.order_status(cloid_for(cloid, "taker"))
        assert taker is not None
        assert taker.status == "filled"
    else:
        assert (result.style, result.filled, result.unfilled) == ("maker", 0, Decimal("0.1"))


# ---------------------------------------------------------------------- a maker copy's two legs (the sender)

LEADER = "0x" + "1e" * 20
MAKER_COPY = FollowSettings(
    execution=ExecutionStyle.MAKER, maker_timeout_secs=Decimal(5), maker_fallback=MakerFallback.TAKER
)


class ServiceClock(LiveClock):
    """The copy service's clock: its epoch ms move only when the service sleeps; its monotonic time is the
    wall's (as in the demo, whose epoch time is the venue's accelerated clock)."""

    def __init__(self) -> None:
        super().__init__(wall_ms=lambda: self.ms)
        self.ms = 1_767_225_600_000
        self.sleeps = 0

    async def sleep(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)
        self.sleeps += 1


async def _maker_copy(
    venue: SimVenue, journal: InMemoryJournal, clock: ServiceClock
) -> tuple[Sender, OrderJob]:
    """A maker copy of 0.1 ETH bought for LEADER, journalled as the service journals it; and its sender."""
    cloid = cloid_for("leader-fill", LEADER, OURS, "open")
    intent = CopyIntent(
        follower=OURS, leader=LEADER, coin="ETH", side=Side.BUY, size=Decimal("0.1"), reduce_only=False,
        leg="open", limit_price=Decimal(3030), tif=Tif.ALO, leverage=5, is_cross=True, cloid=cloid,
        reason="leader opened", fill_key="tid:1",
    )  # fmt: skip
    assert await journal.begin([intent], now_ms=clock.now_ms()) == [intent]
    sender = Sender({OURS: venue}, journal, Ledger(), EventHub(), clock=clock)
    job = OrderJob(OURS, LEADER, intent.to_order(), intent.leg, intent.fill_key, intent.reason)
    return sender, job


async def test_a_maker_copy_journals_its_taker_fallback_before_sending_it(
    venues: tuple[SimVenue, SimVenue],
) -> None:
    ours, _ = venues
    journal, clock = InMemoryJournal(), ServiceClock()
    sender, job = await _maker_copy(ours, journal, clock)
    fallback = cloid_for(job.order.cloid or "", "taker")
    journalled_when_sent: list[EntryState | None] = []
    submit = ours.gateway.submit

    async def watched(order: OrderRequest) -> OrderAck:
        if order.cloid == fallback:
            journalled_when_sent.append(journal.state_of(fallback))
        return await submit(order)

    ours.gateway.submit = watched  # type: ignore[method-assign]
    event = await sender.execute(job, MAKER_COPY, origin_ms=None, received=None)
    assert (event.kind, event.filled) == (EventKind.FILLED, Decimal("0.1"))  # all of it by the fallback
    assert journalled_when_sent == [EntryState.INTENT]  # written before it went out
    assert journal.state_of(job.order.cloid or "") is EntryState.CANCELED  # the maker leg filled nothing
    assert journal.state_of(fallback) is EntryState.FILLED
    [pending] = [e.pending for c, e in journal.entries.items() if c == fallback]
    assert (pending.leader, pending.leg, pending.fill_key, pending.tif) == (LEADER, "open", "tid:1", Tif.IOC)
    # after a restart (nothing in memory), the fallback's fill is still the leader's copy, not a foreign one
    [fill] = await ours.account.fills_since(0)
    assert fill.cloid == fallback
    recorded = await journal.record_fill(fill, leader=None)
    assert recorded is not None
    assert recorded.leader == LEADER
    assert journal.held[(OURS, LEADER, "ETH")].size == Decimal("0.1")


async def test_an_unknown_outcome_of_the_fallback_is_resolved_by_looking_up_both_legs(
    venues: tuple[SimVenue, SimVenue],
) -> None:
    ours, _ = venues
    journal, clock = InMemoryJournal(), ServiceClock()
    sender, job = await _maker_copy(ours, journal, clock)
    fallback = cloid_for(job.order.cloid or "", "taker")
    submit = ours.gateway.submit

    async def answer_lost(order: OrderRequest) -> OrderAck:
        ack = await submit(order)
        if order.cloid == fallback:  # the venue filled it; its answer never came back
            raise OutcomeUnknown("no answer within the timeout")
        return ack

    ours.gateway.submit = answer_lost  # type: ignore[method-assign]
    event = await sender.execute(job, MAKER_COPY, origin_ms=None, received=None)
    assert (event.kind, event.filled) == (EventKind.FILLED, Decimal("0.1"))
    assert journal.state_of(fallback) is EntryState.FILLED
    assert journal.state_of(job.order.cloid or "") is EntryState.CANCELED
    assert await journal.unresolved() == []  # nothing left for the next start: both legs were found


async def test_the_maker_timeout_runs_on_the_service_clock_not_the_wall_clock(
    venues: tuple[SimVenue, SimVenue],
) -> None:
    ours, _ = venues
    journal, clock = InMemoryJournal(), ServiceClock()
    sender, job = await _maker_copy(ours, journal, clock)
    start_ms = clock.now_ms()
    event = await sender.execute(job, MAKER_COPY, origin_ms=None, received=None)
    assert event.filled == Decimal("0.1")
    # 5 s of the service's clock at the 0.25 s poll: about 20 polls (on the wall clock: thousands)
    assert 5_000 <= clock.now_ms() - start_ms <= 5_500
    assert clock.sleeps <= 22
