"""Behaviour every venue implementation must show, run on ``sim`` and ``hyperliquid`` alike.

ETH starts at $3,000 with the embedded market maker quoting both sides, so a buy at 3,100 crosses
and a buy at 2,900 rests. Sizes of 0.1 ETH are about $300: over the $10 minimum, within margin.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import TypeVar

import pytest
from harness import ETH_PX, Harness

from hyperfollow.domain import errors
from hyperfollow.domain.ids import cloid_for
from hyperfollow.domain.model import (
    AckStatus,
    CancelRequest,
    Fill,
    OrderAck,
    OrderRequest,
    Side,
    Tif,
    TpSl,
    Trigger,
)

T = TypeVar("T")
ETH = "ETH"
SIZE = Decimal("0.1")
CROSSING_BUY, CROSSING_SELL = Decimal(3100), Decimal(2900)
RESTING_BUY = Decimal(2900)


def buy(size: Decimal = SIZE, px: Decimal = RESTING_BUY, **kw: object) -> OrderRequest:
    return OrderRequest(ETH, Side.BUY, size, px, **kw)  # type: ignore[arg-type]


def sell(size: Decimal = SIZE, px: Decimal = CROSSING_SELL, **kw: object) -> OrderRequest:
    return OrderRequest(ETH, Side.SELL, size, px, **kw)  # type: ignore[arg-type]


async def eventually(check: Callable[[], T | None], what: str, timeout: float = 5.0) -> T:
    """Poll ``check`` until it returns something truthy (streams deliver asynchronously)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _collect(stream: AsyncIterator[T], into: list[T]) -> None:
    async for item in stream:
        into.append(item)


async def eth_size(h: Harness) -> Decimal:
    pos = (await h.venue.account.snapshot()).position(ETH)
    return pos.size if pos else Decimal(0)


# ---------------------------------------------------------------- orders


async def test_limit_rests_and_shows_in_open_orders(harness: Harness) -> None:
    cloid = cloid_for("contract", "rest")
    ack = await harness.venue.gateway.submit(buy(cloid=cloid))
    assert ack.status is AckStatus.RESTING
    assert ack.oid is not None
    assert ack.cloid == cloid
    opened = {o.oid: o for o in await harness.venue.account.open_orders()}
    assert opened[ack.oid].price == RESTING_BUY
    assert opened[ack.oid].size == SIZE
    assert opened[ack.oid].cloid == cloid


async def test_ioc_fills_with_average_price_or_is_cancelled(harness: Harness) -> None:
    ack = await harness.venue.gateway.submit(buy(px=CROSSING_BUY, tif=Tif.IOC))
    assert ack.status is AckStatus.FILLED
    assert ack.filled_size == SIZE
    assert ack.avg_price is not None
    assert ETH_ASK_RANGE[0] < ack.avg_price < ETH_ASK_RANGE[1]
    assert await eth_size(harness) == SIZE
    with pytest.raises(errors.IocNotFilled):
        await harness.venue.gateway.submit(buy(px=Decimal(2000), tif=Tif.IOC))
    assert await eth_size(harness) == SIZE


ETH_ASK_RANGE = (Decimal(3000), Decimal(3100))


async def test_post_only_that_would_cross_is_rejected(harness: Harness) -> None:
    with pytest.raises(errors.PostOnlyWouldCross):
        await harness.venue.gateway.submit(buy(px=CROSSING_BUY, tif=Tif.ALO))
    assert await harness.venue.account.open_orders() == []


async def test_reduce_only_that_would_increase_is_rejected(harness: Harness) -> None:
    with pytest.raises(errors.ReduceOnlyWouldIncrease):
        await harness.venue.gateway.submit(sell(reduce_only=True, tif=Tif.IOC))
    await harness.venue.gateway.submit(buy(px=CROSSING_BUY, tif=Tif.IOC))
    with pytest.raises(errors.ReduceOnlyWouldIncrease):  # long: a reduce-only buy would add
        await harness.venue.gateway.submit(buy(px=CROSSING_BUY, tif=Tif.IOC, reduce_only=True))


async def test_min_notional_applies_to_opens(harness: Harness) -> None:
    with pytest.raises(errors.MinNotional):
        await harness.venue.gateway.submit(buy(size=Decimal("0.003")))  # $8.70


async def test_prices_and_sizes_are_put_on_the_grid_never_worse_than_asked(harness: Harness) -> None:
    cloid = cloid_for("contract", "grid")
    ack = await harness.venue.gateway.submit(buy(size=Decimal("0.12345"), px=Decimal("2900.55"), cloid=cloid))
    state = await harness.venue.gateway.order_status(cloid)
    assert state is not None
    assert state.oid == ack.oid
    assert (state.price, state.size) == (Decimal("2900.5"), Decimal("0.1234"))
    with pytest.raises(errors.InvalidSize):
        await harness.venue.gateway.submit(buy(size=Decimal("0.00001")))


async def test_cancel_of_a_filled_order_is_order_not_found(harness: Harness) -> None:
    ack = await harness.venue.gateway.submit(buy(px=CROSSING_BUY, tif=Tif.IOC))
    assert ack.oid is not None
    with pytest.raises(errors.OrderNotFound):
        await harness.venue.gateway.cancel(CancelRequest(ETH, oid=ack.oid))


async def test_order_status_by_cloid_follows_the_order(harness: Harness) -> None:
    cloid = cloid_for("contract", "status")
    assert await harness.venue.gateway.order_status(cloid) is None
    ack = await harness.venue.gateway.submit(buy(cloid=cloid))
    state = await harness.venue.gateway.order_status(cloid)
    assert state is not None
    assert (state.status, state.oid) == ("open", ack.oid)
    await harness.venue.gateway.cancel(CancelRequest(ETH, cloid=cloid))
    state = await harness.venue.gateway.order_status(cloid)
    assert state is not None
    assert state.status == "canceled"
    assert await harness.venue.gateway.order_status(ack.oid or 0) == state


async def test_a_batch_keeps_its_good_orders_around_a_bad_one(harness: Harness) -> None:
    results = await harness.venue.gateway.submit_batch(
        [buy(px=Decimal(2800)), buy(size=Decimal("0.001")), buy(px=Decimal(2810))]
    )
    assert isinstance(results[0], OrderAck)
    assert isinstance(results[1], errors.MinNotional)
    assert isinstance(results[2], OrderAck)
    assert len(await harness.venue.account.open_orders()) == 2
    cancels = await harness.venue.gateway.cancel_batch(
        [CancelRequest(ETH, oid=r.oid) for r in (results[0], results[2]) if isinstance(r, OrderAck)]
    )
    assert cancels == [None, None]
    assert await harness.venue.account.open_orders() == []


async def test_stop_loss_trigger_closes_the_position_when_the_mark_crosses(harness: Harness) -> None:
    await harness.venue.gateway.submit(buy(px=CROSSING_BUY, tif=Tif.IOC))
    stop = sell(
        px=Decimal(2500),
        reduce_only=True,
        trigger=Trigger(Decimal(2850), TpSl.STOP_LOSS, is_market=True),
        cloid=cloid_for("contract", "stop"),
    )
    ack = await harness.venue.gateway.submit(stop)
    assert ack.status is AckStatus.RESTING
    await harness.set_price(ETH, Decimal(2900))  # above the stop: nothing happens
    assert await eth_size(harness) == SIZE
    await harness.set_price(ETH, Decimal(2800))
    assert await eth_size(harness) == 0
    state = await harness.venue.gateway.order_status(stop.cloid or "")
    assert state is not None
    assert not state.is_open


async def test_leverage_change_shows_in_the_position(harness: Harness) -> None:
    await harness.venue.gateway.set_leverage(ETH, 5, cross=False)
    await harness.venue.gateway.submit(buy(px=CROSSING_BUY, tif=Tif.IOC))
    pos = (await harness.venue.account.snapshot()).position(ETH)
    assert pos is not None
    assert (pos.leverage, pos.is_cross) == (5, False)
    with pytest.raises(errors.LeverageRejected):
        await harness.venue.gateway.set_leverage(ETH, 500, cross=True)


async def test_positions_after_a_flip(harness: Harness) -> None:
    await harness.venue.gateway.submit(buy(px=CROSSING_BUY, tif=Tif.IOC))
    await harness.venue.gateway.submit(sell(size=Decimal("0.3"), tif=Tif.IOC))
    assert await eth_size(harness) == Decimal("-0.2")
    fills = await harness.venue.account.fills_since(0)
    assert fills[0].direction == "Open Long"
    assert "Long > Short" in {f.direction for f in fills}
    assert sum((f.signed_size for f in fills), Decimal(0)) == Decimal("-0.2")


async def test_schedule_cancel_cancels_open_orders_when_it_fires(harness: Harness) -> None:
    await harness.venue.gateway.submit(buy())
    await harness.venue.gateway.schedule_cancel(harness.exchange.clock.now_ms() + 6_000)
    await harness.advance(3_000)
    assert len(await harness.venue.account.open_orders()) == 1
    await harness.advance(5_000)
    assert await harness.venue.account.open_orders() == []


# ---------------------------------------------------------------- fills, streams, leaders


async def test_fills_arrive_once_after_a_forced_reconnect(harness: Harness) -> None:
    got: list[Fill] = []
    task = asyncio.create_task(_collect(harness.venue.account.stream_fills(), got))
    try:
        await asyncio.sleep(0.2)  # let the subscription settle
        await harness.venue.gateway.submit(buy(px=CROSSING_BUY, tif=Tif.IOC))
        await eventually(lambda: len(got) >= 1, "the first fill")
        await harness.force_reconnect()
        await harness.venue.gateway.submit(buy(px=CROSSING_BUY, tif=Tif.IOC))  # during the gap
        await harness.venue.gateway.submit(sell(size=Decimal("0.2"), tif=Tif.IOC))
        venue_fills = await harness.venue.account.fills_since(0)
        await eventually(lambda: len(got) >= len(venue_fills), "the fills made during the gap", timeout=10)
        await asyncio.sleep(0.5)  # a duplicate would arrive now
    finally:
        task.cancel()
    assert sorted(f.key for f in got) == sorted(f.key for f in venue_fills)
    assert len({f.key for f in got}) == len(got)


async def test_leader_feed_sees_any_public_address(harness: Harness) -> None:
    leader = harness.counterparty.account.address
    await harness.counterparty.gateway.submit(buy(px=CROSSING_BUY, tif=Tif.IOC))
    fills = await harness.venue.leaders.fills_since(leader, 0)
    assert [(f.address, f.direction, f.size) for f in fills] == [(leader.lower(), "Open Long", SIZE)]
    snap = await harness.venue.leaders.snapshot(leader)
    pos = snap.position(ETH)
    assert pos is not None
    assert pos.size == SIZE


async def test_book_and_mids(harness: Harness) -> None:
    book = await harness.venue.market.l2_book(ETH)
    assert book.best_bid is not None
    assert book.best_ask is not None
    assert book.best_bid < ETH_PX < book.best_ask
    mids = await harness.venue.market.mids()
    assert abs(mids[ETH] - ETH_PX) < 5
    coins = {i.coin for i in await harness.venue.market.instruments()}
    assert {"BTC", "ETH", "xyz:TSLA"} <= coins
    assert not any("/" in c for c in coins)  # spot is not part of perps logic


async def test_hip3_position_is_isolated_and_equity_counts_once(harness: Harness) -> None:
    coin = "xyz:TSLA"
    inst = await harness.venue.market.instrument(coin)
    assert inst.asset >= 110_000  # 100000 + 10000 * dex index + index
    assert inst.only_isolated
    before = (await harness.venue.account.snapshot()).equity
    book = await harness.venue.market.l2_book(coin)
    assert book.mid is not None
    size = (Decimal(200) / book.mid).quantize(inst.lot)
    ack = await harness.venue.gateway.submit(
        OrderRequest(coin, Side.BUY, size, book.mid * Decimal("1.05"), Tif.IOC)
    )
    assert ack.status is AckStatus.FILLED
    snap = await harness.venue.account.snapshot()
    pos = snap.position(coin)
    assert pos is not None
    assert (pos.size, pos.is_cross) == (size, False)
    assert abs(snap.equity - before) < 5  # spread and fees only: the dex's margin is not counted twice


async def test_an_order_refused_before_sending_keeps_its_slot_in_a_batch(harness: Harness) -> None:
    results = await harness.venue.gateway.submit_batch([buy(size=Decimal("0.00001")), buy(px=Decimal(2800))])
    assert isinstance(results[0], errors.InvalidSize)
    assert isinstance(results[1], OrderAck)
    assert [o.oid for o in await harness.venue.account.open_orders()] == [results[1].oid]
