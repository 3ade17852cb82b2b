"""SimVenue: the venue ports in-process over a stepped embedded exchange (seed 7, no simulated traders,
the market maker quoting ETH around $3,000). ``ours`` trades with $10,000; ``theirs`` is a second
account on the same exchange that provides specific resting liquidity."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import TypeVar

import pytest

from hyperfollow.adapters.sim import SimHub, SimVenue
from hyperfollow.adapters.sim.feed import Feed
from hyperfollow.domain.errors import (
    AuthRejected,
    InvalidSize,
    IocNotFilled,
    LeverageRejected,
    MinNotional,
    OrderNotFound,
    PostOnlyWouldCross,
    ReduceOnlyWouldIncrease,
    UnknownInstrument,
    VenueRejected,
)
from hyperfollow.domain.model import (
    AckStatus,
    CancelRequest,
    Fill,
    Grouping,
    OrderAck,
    OrderRequest,
    Side,
    Tif,
    TpSl,
    Trigger,
)
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.ports import Venue

START_MS = 1_767_225_600_000
OURS = "0x" + "a1" * 20
THEIRS = "0x" + "b2" * 20
T = TypeVar("T")


@pytest.fixture
def exchange() -> EmbeddedExchange:
    ex = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=START_MS)
    ex.set_price("ETH", "3000")
    ex.fund(OURS, "10000")
    ex.fund(THEIRS, "1000000")
    return ex


@pytest.fixture
async def ours(exchange: EmbeddedExchange) -> AsyncIterator[SimVenue]:
    venue = SimVenue(exchange, OURS)
    yield venue
    await venue.close()


@pytest.fixture
async def theirs(exchange: EmbeddedExchange) -> AsyncIterator[SimVenue]:
    venue = SimVenue(exchange, THEIRS)
    yield venue
    await venue.close()


def buy(size: str, px: str, tif: Tif = Tif.GTC, **kw: object) -> OrderRequest:
    return OrderRequest("ETH", Side.BUY, Decimal(size), Decimal(px), tif, **kw)  # type: ignore[arg-type]


def sell(size: str, px: str, tif: Tif = Tif.GTC, **kw: object) -> OrderRequest:
    return OrderRequest("ETH", Side.SELL, Decimal(size), Decimal(px), tif, **kw)  # type: ignore[arg-type]


def drain(stream: AsyncIterator[T]) -> list[T]:
    """What a stream has queued right now, without waiting (SimVenue streams are ``Feed`` objects)."""
    assert isinstance(stream, Feed)
    return stream.drain()


def test_sim_venue_implements_the_venue_port(ours: SimVenue) -> None:
    venue: Venue = ours  # mypy checks the structural match
    assert venue.account.address == OURS


def test_venues_on_one_exchange_share_one_hub_that_owns_the_outbox(
    exchange: EmbeddedExchange, ours: SimVenue, theirs: SimVenue
) -> None:
    assert SimHub.for_exchange(exchange) is SimHub.for_exchange(ours.exchange)
    assert exchange.engine.outbox == []


# ---------------------------------------------------------------------- orders


async def test_limit_rests_then_cancel_by_oid(ours: SimVenue) -> None:
    ack = await ours.gateway.submit(buy("0.1", "2900"))
    assert ack.status is AckStatus.RESTING
    assert ack.oid is not None
    assert ack.cloid is not None
    [order] = await ours.account.open_orders()
    assert (order.oid, order.price, order.size, order.cloid) == (
        ack.oid,
        Decimal("2900"),
        Decimal("0.1"),
        ack.cloid,
    )
    await ours.gateway.cancel(CancelRequest("ETH", oid=ack.oid))
    assert await ours.account.open_orders() == []
    state = await ours.gateway.order_status(ack.oid)
    assert state is not None
    assert state.status == "canceled"


async def test_ioc_sweeps_two_levels_at_their_volume_weighted_price(
    exchange: EmbeddedExchange, ours: SimVenue
) -> None:
    book = await ours.market.l2_book("ETH")
    first, second = book.asks[0], book.asks[1]
    size = first.size + Decimal("0.5")
    exchange.fund(OURS, str(int(size * second.price / 10)))  # a real best level is ~$0.3M
    ack = await ours.gateway.submit(buy(str(size), str(second.price), Tif.IOC))
    assert ack.status is AckStatus.FILLED
    assert ack.filled_size == size
    vwap = (first.price * first.size + second.price * Decimal("0.5")) / size
    assert ack.avg_price == vwap.quantize(Decimal("0.0001"))  # ETH: 2 price decimals, avgPx shows 4
    position = (await ours.account.snapshot()).position("ETH")
    assert position is not None
    assert position.size == size


async def test_ioc_without_a_match_is_rejected_as_not_filled(ours: SimVenue) -> None:
    with pytest.raises(IocNotFilled):
        await ours.gateway.submit(buy("0.1", "2900", Tif.IOC))


async def test_alo_that_would_cross_is_rejected(ours: SimVenue) -> None:
    with pytest.raises(PostOnlyWouldCross, match="bbo was"):
        await ours.gateway.submit(buy("0.1", "3100", Tif.ALO))
    assert await ours.account.open_orders() == []


async def test_reduce_only_that_would_increase_is_rejected(ours: SimVenue) -> None:
    with pytest.raises(ReduceOnlyWouldIncrease):
        await ours.gateway.submit(sell("0.1", "2900", Tif.IOC, reduce_only=True))


async def test_order_below_ten_dollars_is_rejected(ours: SimVenue) -> None:
    with pytest.raises(MinNotional):
        await ours.gateway.submit(buy("0.003", "2900"))  # $8.70


async def test_cancel_of_a_filled_order_is_order_not_found(ours: SimVenue) -> None:
    ack = await ours.gateway.submit(buy("0.1", "3100", Tif.IOC))
    assert ack.status is AckStatus.FILLED
    assert ack.oid is not None
    with pytest.raises(OrderNotFound):
        await ours.gateway.cancel(CancelRequest("ETH", oid=ack.oid))
    with pytest.raises(OrderNotFound):
        await ours.gateway.cancel(CancelRequest("ETH", cloid=ack.cloid))


async def test_rounding_buys_down_sells_up_sizes_down_to_exact_grid_values(ours: SimVenue) -> None:
    b = await ours.gateway.submit(buy("0.12349", "2950.04"))  # 5 significant figures: 2950.0
    s = await ours.gateway.submit(sell("0.12349", "3050.01"))
    states = {o.oid: o for o in await ours.account.open_orders()}
    assert b.oid is not None
    assert s.oid is not None
    assert states[b.oid].price == Decimal("2950")
    assert states[b.oid].size == Decimal("0.1234")
    assert states[s.oid].price == Decimal("3050.1")
    assert states[s.oid].size == Decimal("0.1234")
    assert str(states[s.oid].price) == "3050.1"


async def test_size_rounding_to_zero_is_refused_before_the_engine(ours: SimVenue) -> None:
    used = (await ours.account.rate_limit()).used
    with pytest.raises(InvalidSize):
        await ours.gateway.submit(buy("0.00009", "3000"))  # ETH lots are 0.0001
    assert (await ours.account.rate_limit()).used == used  # nothing reached the venue


async def test_spot_and_unknown_coins_are_unknown_instruments(ours: SimVenue) -> None:
    for coin in ("PURR/USDC", "NOPE"):
        with pytest.raises(UnknownInstrument):
            await ours.gateway.submit(OrderRequest(coin, Side.BUY, Decimal(100), Decimal("1")))
    with pytest.raises(UnknownInstrument):
        await ours.market.l2_book("NOPE")


async def test_every_order_gets_a_cloid_and_order_status_finds_it(ours: SimVenue) -> None:
    mine = "0x" + "0123456789ABCDEF" * 2
    ack = await ours.gateway.submit(buy("0.1", "2900", cloid=mine))
    assert ack.cloid == mine.lower()
    state = await ours.gateway.order_status(mine)
    assert state is not None
    assert state.oid == ack.oid
    assert state.status == "open"
    auto = await ours.gateway.submit(buy("0.1", "2901"))
    assert auto.cloid is not None
    assert auto.cloid != ack.cloid
    await ours.gateway.cancel(CancelRequest("ETH", cloid=mine))
    state = await ours.gateway.order_status(mine)
    assert state is not None
    assert state.status == "canceled"
    assert await ours.gateway.order_status("0x" + "f" * 32) is None


async def test_batch_with_one_bad_item_keeps_the_others(ours: SimVenue) -> None:
    results = await ours.gateway.submit_batch([buy("0.1", "2900"), buy("0.001", "2900"), buy("0.1", "2899")])
    assert [type(r) for r in results] == [OrderAck, MinNotional, OrderAck]
    assert len(await ours.account.open_orders()) == 2


async def test_normal_tpsl_bracket_waits_for_its_entry(ours: SimVenue) -> None:
    entry = buy("0.1", "2900")
    tp = sell("0.1", "3200", reduce_only=True, trigger=Trigger(Decimal("3200"), TpSl.TAKE_PROFIT))
    sl = sell("0.1", "2700", reduce_only=True, trigger=Trigger(Decimal("2800"), TpSl.STOP_LOSS))
    results = await ours.gateway.submit_batch([entry, tp, sl], Grouping.NORMAL_TPSL)
    assert [r.status for r in results if isinstance(r, OrderAck)] == [
        AckStatus.RESTING,
        AckStatus.WAITING,
        AckStatus.WAITING,
    ]


async def test_modify_replaces_the_order_and_keeps_its_cloid(ours: SimVenue) -> None:
    ack = await ours.gateway.submit(buy("0.1", "2900"))
    assert ack.cloid is not None
    new = await ours.gateway.modify(ack.cloid, buy("0.2", "2905.55"))
    assert new.oid != ack.oid
    assert new.cloid == ack.cloid
    [order] = await ours.account.open_orders()
    assert (order.price, order.size) == (Decimal("2905.5"), Decimal("0.2"))
    with pytest.raises(VenueRejected):
        await ours.gateway.modify(ack.oid or 0, buy("0.2", "2900"))  # the replaced order is gone


async def test_unknown_account_cannot_act(exchange: EmbeddedExchange) -> None:
    stranger = SimVenue(exchange, "0x" + "c3" * 20)
    with pytest.raises(AuthRejected):
        await stranger.gateway.submit(buy("0.1", "2900"))
    await stranger.close()


# ---------------------------------------------------------------------- positions and settings


async def test_flip_long_to_short(ours: SimVenue) -> None:
    await ours.gateway.submit(buy("0.1", "3100", Tif.IOC))
    ack = await ours.gateway.submit(sell("0.3", "2900", Tif.IOC))
    assert ack.filled_size == Decimal("0.3")
    [position] = await ours.account.positions()
    assert (position.coin, position.size) == ("ETH", Decimal("-0.2"))
    fills = await ours.account.fills_since(START_MS)
    assert [(f.direction, f.start_position) for f in fills] == [
        ("Open Long", Decimal(0)),
        ("Long > Short", Decimal("0.1")),
    ]


async def test_leverage_change_is_visible_in_the_snapshot(ours: SimVenue) -> None:
    await ours.gateway.set_leverage("ETH", 5, cross=False)
    await ours.gateway.submit(buy("1", "3100", Tif.IOC))
    position = (await ours.account.snapshot()).position("ETH")
    assert position is not None
    assert (position.leverage, position.is_cross) == (5, False)
    with pytest.raises(LeverageRejected):
        await ours.gateway.set_leverage("ETH", 100, cross=False)
    margin = position.margin_used
    await ours.gateway.update_isolated_margin("ETH", Decimal("100"))
    after = (await ours.account.snapshot()).position("ETH")
    assert after is not None
    assert after.margin_used == margin + 100


async def test_stop_loss_fires_when_the_mark_crosses(ours: SimVenue) -> None:
    fills = ours.account.stream_fills()
    await ours.gateway.submit(buy("0.1", "3100", Tif.IOC))
    stop = sell("0.1", "2500", reduce_only=True, trigger=Trigger(Decimal("2900"), TpSl.STOP_LOSS))
    ack = await ours.gateway.submit(stop)
    assert ack.status is AckStatus.RESTING
    await ours.set_price("ETH", Decimal("2950"))  # above the trigger: nothing
    assert (await ours.account.snapshot()).position("ETH") is not None
    await ours.set_price("ETH", Decimal("2850"))
    assert await ours.account.positions() == []
    opened, closed = await anext(fills), await anext(fills)
    assert (opened.direction, closed.direction) == ("Open Long", "Close Long")
    assert closed.cloid == ack.cloid
    assert closed.price < Decimal("2900")
    state = await ours.gateway.order_status(ack.oid or 0)
    assert state is not None
    assert state.status == "filled"


async def test_schedule_cancel_fires_at_its_time(ours: SimVenue) -> None:
    orders = ours.account.stream_orders()
    await ours.gateway.submit(buy("0.1", "2900"))
    with pytest.raises(VenueRejected, match="too early"):
        await ours.gateway.schedule_cancel(START_MS + 1_000)
    await ours.gateway.schedule_cancel(START_MS + 10_000)
    await ours.step(5_000)
    assert len(await ours.account.open_orders()) == 1
    await ours.step(6_000)
    assert await ours.account.open_orders() == []
    assert [o.status for o in drain(orders)] == ["open", "scheduledCancel"]


# ---------------------------------------------------------------------- streams


async def test_fills_reach_both_sides_and_leaders(ours: SimVenue, theirs: SimVenue) -> None:
    our_fills = ours.account.stream_fills()
    leader_fills = ours.leaders.stream_fills([THEIRS])
    trades = ours.market.stream_trades(["ETH"])
    await theirs.gateway.submit(sell("0.5", "3000.0"))  # inside the makers' spread (2999.9 / 3000.1)
    ack = await ours.gateway.submit(buy("0.2", "3000.0", Tif.IOC))
    assert ack.avg_price == Decimal("3000.0")
    [mine] = drain(our_fills)
    [leader] = drain(leader_fills)
    [trade] = drain(trades)
    assert (mine.side, leader.side, leader.address) == (Side.BUY, Side.SELL, THEIRS)
    assert mine.tid == leader.tid == trade.tid
    assert not leader.crossed
    assert mine.crossed
    assert (trade.buyer, trade.seller) == (OURS, THEIRS)
    snapshot = await ours.leaders.snapshot(THEIRS)
    leader_position = snapshot.position("ETH")
    assert leader_position is not None
    assert leader_position.size == Decimal("-0.2")


async def test_book_bbo_and_mids_streams_snapshot_then_follow_changes(ours: SimVenue) -> None:
    books = ours.market.stream_books(["ETH"])
    bbos = ours.market.stream_bbo(["ETH"])
    mids = ours.market.stream_mids()
    [first_book] = drain(books)
    [first_bbo] = drain(bbos)
    [first_mids] = drain(mids)
    assert first_bbo.bid is not None
    assert first_bbo.bid.price == first_book.best_bid
    assert first_mids["ETH"] == first_book.mid
    assert "PURR/USDC" not in first_mids
    await ours.gateway.submit(buy("0.1", "3000.0"))  # a new best bid, inside the makers' spread
    [book] = drain(books)
    [bbo] = drain(bbos)
    assert book.best_bid == Decimal("3000.0")
    assert bbo.bid is not None
    assert bbo.bid.price == Decimal("3000.0")
    assert drain(mids)[-1]["ETH"] == book.mid
    await ours.gateway.submit(buy("0.1", "2000"))  # deep in the book: bbo unchanged, book pushed
    assert len(drain(books)) == 1
    assert drain(bbos) == []


async def test_fills_arrive_exactly_once_across_a_reconnect_with_fills_in_the_gap(ours: SimVenue) -> None:
    events = ours.events()
    fills = ours.account.stream_fills()
    await ours.gateway.submit(buy("0.1", "3100", Tif.IOC))
    before = drain(fills)
    assert len(before) == 1
    await ours.disconnect()
    await ours.gateway.submit(buy("0.2", "3100", Tif.IOC))  # in the gap: the push is lost
    assert drain(fills) == []
    await ours.reconnect()
    gap = drain(fills)
    assert [f.size for f in gap] == [Decimal("0.2")]  # backfilled once; the earlier one not again
    await ours.gateway.submit(buy("0.3", "3100", Tif.IOC))
    after = drain(fills)
    assert [f.size for f in after] == [Decimal("0.3")]
    all_fills = before + gap + after
    assert len({f.tid for f in all_fills}) == 3
    assert all_fills == await ours.account.fills_since(START_MS)
    assert [e.kind for e in drain(events)] == ["disconnected", "connected", "backfilled"]


async def test_force_reconnect_comes_back_on_its_own_and_backfills(ours: SimVenue) -> None:
    events = ours.events()
    fills = ours.account.stream_fills()
    await ours.gateway.submit(buy("0.1", "3100", Tif.IOC))
    first = await anext(fills)
    await ours.force_reconnect()
    down = ours.connected
    assert not down
    await ours.gateway.submit(sell("0.1", "2900", Tif.IOC))  # before the loop turns: in the gap
    second = await anext(fills)  # waits; the reconnect runs, and the backfill delivers it
    assert ours.connected
    assert second.direction == "Close Long"
    assert second.tid != first.tid
    assert drain(fills) == []
    assert [e.kind for e in drain(events)] == ["disconnected", "connected", "backfilled"]


async def test_stream_with_since_backfills_history_first(ours: SimVenue) -> None:
    await ours.gateway.submit(buy("0.1", "3100", Tif.IOC))
    await ours.step(2_000)
    await ours.gateway.submit(sell("0.1", "2900", Tif.IOC))
    history = await ours.account.fills_since(START_MS)
    assert len(history) == 2
    late: list[Fill] = drain(ours.account.stream_fills(since_ms=START_MS + 1_000))
    assert late == history[1:]
    assert drain(ours.account.stream_fills()) == []  # without since: only new fills


async def test_close_ends_the_streams(exchange: EmbeddedExchange) -> None:
    venue = SimVenue(exchange, OURS)
    fills = venue.account.stream_fills()
    await venue.close()
    with pytest.raises(StopAsyncIteration):
        await anext(fills)
