"""The event bus: typed routing, immutable events, bounded queues with an overflow policy each."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from hyperfollow.core.bus import Backpressure, Bus, Event, Overflow, SubscriptionClosed


class Mid(Event, frozen=True, kw_only=True):
    coin: str
    px: int


class Trade(Event, frozen=True, kw_only=True):
    coin: str
    px: int
    sz: int


class BigTrade(Trade, frozen=True, kw_only=True):
    pass


def mid(k: int) -> Mid:
    return Mid(ts_event=1_000 + k, ts_init=1_500 + k, coin="BTC", px=60_000 + k)


async def spin(times: int = 20) -> None:
    """Let every ready task run (no wall-clock waiting)."""
    for _ in range(times):
        await asyncio.sleep(0)


def test_events_are_immutable_and_carry_both_times() -> None:
    event = mid(1)
    with pytest.raises(AttributeError):
        event.px = 1  # type: ignore[misc]
    assert (event.ts_event, event.ts_init) == (1_001, 1_501)
    with pytest.raises(TypeError):
        Mid(coin="BTC", px=1)  # type: ignore[call-arg]
    assert msgspec.json.decode(msgspec.json.encode(event), type=Mid) == event


def test_handlers_get_their_type_and_subclasses_only() -> None:
    bus = Bus()
    seen: dict[str, list[Event]] = {"all": [], "mid": [], "trade": [], "big": []}
    bus.on(Event, seen["all"].append)
    bus.on(Mid, seen["mid"].append)
    bus.on(Trade, seen["trade"].append)
    bus.on(BigTrade, seen["big"].append)
    m = mid(0)
    t = Trade(ts_event=1, ts_init=2, coin="ETH", px=3, sz=4)
    b = BigTrade(ts_event=5, ts_init=6, coin="ETH", px=7, sz=8)
    for event in (m, t, b):
        bus.publish_nowait(event)
    assert seen == {"all": [m, t, b], "mid": [m], "trade": [t, b], "big": [b]}


def test_unsubscribing_a_handler_stops_delivery() -> None:
    bus = Bus()
    got: list[Event] = []
    off = bus.on(Mid, got.append)
    bus.publish_nowait(mid(0))
    off()
    bus.publish_nowait(mid(1))
    assert got == [mid(0)]


async def test_a_reader_that_never_reads_neither_stalls_publish_nor_costs_the_trader_an_event() -> None:
    bus = Bus()
    web = bus.subscribe(Event, maxsize=4, overflow=Overflow.DROP_OLDEST, name="web")
    trader = bus.subscribe(Mid, maxsize=8, overflow=Overflow.BLOCK, name="trader")
    received: list[Mid] = []

    async def trade() -> None:
        async for event in trader:
            received.append(event)

    reader = asyncio.create_task(trade())
    total = 1_000
    published = [mid(k) for k in range(total)]

    async def produce() -> None:
        for event in published:
            await bus.publish(event)

    await asyncio.wait_for(produce(), timeout=30)  # a hang guard, not a timing assert
    await spin()
    bus.close()
    await asyncio.wait_for(reader, timeout=30)

    assert received == published  # every event, in publish order
    assert web.dropped == total - 4
    assert [web.get_nowait() for _ in range(4)] == published[-4:]  # it keeps the newest
    with pytest.raises(SubscriptionClosed):
        web.get_nowait()


async def test_block_means_backpressure_until_the_reader_makes_room() -> None:
    bus = Bus()
    trader = bus.subscribe(Mid, maxsize=2, overflow=Overflow.BLOCK)
    await bus.publish(mid(0))
    await bus.publish(mid(1))
    third = asyncio.create_task(bus.publish(mid(2)))
    await spin()
    assert not third.done()  # waits: the queue is full
    assert trader.qsize() == 2
    assert await trader.get() == mid(0)
    await spin()
    assert third.done()
    assert [await trader.get(), await trader.get()] == [mid(1), mid(2)]


def test_publish_nowait_refuses_and_delivers_nothing_when_a_blocking_queue_is_full() -> None:
    bus = Bus()
    handled: list[Event] = []
    bus.on(Mid, handled.append)
    web = bus.subscribe(Mid, maxsize=10, overflow=Overflow.DROP_OLDEST)
    trader = bus.subscribe(Mid, maxsize=1, overflow=Overflow.BLOCK)
    bus.publish_nowait(mid(0))
    before = (list(handled), web.qsize(), trader.qsize(), web.dropped)
    with pytest.raises(Backpressure):
        bus.publish_nowait(mid(1))
    assert (list(handled), web.qsize(), trader.qsize(), web.dropped) == before
    assert trader.get_nowait() == mid(0)
    bus.publish_nowait(mid(1))
    assert trader.get_nowait() == mid(1)


async def test_a_reader_leaving_releases_a_publisher_waiting_on_its_full_queue() -> None:
    bus = Bus()
    slow = bus.subscribe(Mid, maxsize=1, overflow=Overflow.BLOCK)
    other = bus.subscribe(Mid, maxsize=10, overflow=Overflow.BLOCK)
    await bus.publish(mid(0))
    waiting = [asyncio.create_task(bus.publish(mid(k))) for k in (1, 2, 3)]
    await spin()
    assert not any(task.done() for task in waiting)
    slow.close()
    await asyncio.wait_for(asyncio.gather(*waiting), timeout=30)
    assert slow.qsize() == 0
    with pytest.raises(SubscriptionClosed):
        await slow.get()
    assert [other.get_nowait() for _ in range(4)] == [mid(0), mid(1), mid(2), mid(3)]
    bus.publish_nowait(mid(4))  # the one that left is no longer routed to
    assert slow.qsize() == 0
    assert bus.subscriptions() == [other]


async def test_closing_the_bus_wakes_a_waiting_reader_after_it_drains() -> None:
    bus = Bus()
    sub = bus.subscribe(Mid, maxsize=4, overflow=Overflow.BLOCK)
    got: list[Mid] = []

    async def read() -> None:
        async for event in sub:
            got.append(event)

    reader = asyncio.create_task(read())
    await spin()
    bus.publish_nowait(mid(0))
    bus.publish_nowait(mid(1))
    bus.close()
    await asyncio.wait_for(reader, timeout=30)
    assert got == [mid(0), mid(1)]
    with pytest.raises(RuntimeError):
        bus.subscribe(Mid, maxsize=1, overflow=Overflow.BLOCK)


def test_a_queue_needs_room_for_one_event() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Bus().subscribe(Mid, maxsize=0, overflow=Overflow.DROP_OLDEST)
