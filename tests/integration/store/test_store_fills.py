"""Fills are recorded once, whatever path brings them and however the callers race."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Callable
from decimal import Decimal

from store_support import make_fill

from hyperfollow.domain.model import Side
from hyperfollow.store import JournalEntry, Store
from hyperfollow.store.fills import FillRepository


async def test_record_fill_is_idempotent_and_round_trips(
    store: Store, new_address: Callable[[], str]
) -> None:
    fill = make_fill(new_address(), liquidation=True, liquidated_user="0x" + "ab" * 20)
    async with store.transaction() as tx:
        assert await tx.fills.record_fill(fill) is True
        assert await tx.fills.record_fill(fill) is False
    async with store.transaction() as tx:
        assert await tx.fills.record_fill(fill) is False
        got = await tx.fills.get(fill)
        listed = await tx.fills.for_address(fill.address)
        last = await tx.fills.last_time_ms(fill.address)
    assert got is not None
    assert got.fill == fill
    assert (got.fill.price, got.fill.fee, got.fill.closed_pnl) == (fill.price, fill.fee, fill.closed_pnl)
    assert [r.fill for r in listed] == [fill]
    assert last == fill.time_ms


async def test_fills_without_trade_id_are_keyed_by_their_content(
    store: Store, new_address: Callable[[], str]
) -> None:
    old = dataclasses.replace(make_fill(new_address()), tid=None)
    same = dataclasses.replace(old, price=Decimal("65000.50"))  # the same number spelled differently
    other = dataclasses.replace(old, size=Decimal("0.002"))  # another fill of the same order's sweep
    assert old.ref == same.ref != other.ref
    async with store.transaction() as tx:
        assert await tx.fills.record_fill(old) is True
        assert await tx.fills.record_fill(same) is False
        assert await tx.fills.record_fill(other) is True
        assert len(await tx.fills.for_address(old.address)) == 2


async def test_fills_are_attributed_to_the_leader_of_their_cloid(
    store: Store, new_address: Callable[[], str]
) -> None:
    follower, leader, other_leader = new_address(), new_address(), new_address()
    cloid = "0x" + secrets.token_hex(16)
    intent = JournalEntry(
        cloid=cloid, follower=follower, leader=leader, coin="BTC", side=Side.BUY, size=Decimal("0.00123"),
        limit_price=Decimal(66000), reduce_only=True, leg="close", source_fill_key="tid:5", created_ms=1,
    )  # fmt: skip
    copied = make_fill(follower, cloid=cloid)
    manual = make_fill(follower)
    unknown_cloid = make_fill(follower, cloid="0x" + secrets.token_hex(16))
    told = make_fill(follower, cloid=cloid)
    async with store.transaction() as tx:
        await tx.journal.write_intent(intent)
        for f in (copied, manual, unknown_cloid):
            assert await tx.fills.record_fill(f)
        assert await tx.fills.record_fill(told, leader=other_leader)
    async with store.transaction() as tx:
        leaders = {r.fill.tid: r.leader for r in await tx.fills.for_address(follower)}
        by_leader = await tx.fills.for_address(follower, leader=leader)
        of_order = await tx.fills.for_cloid(cloid)
    assert leaders == {copied.tid: leader, manual.tid: None, unknown_cloid.tid: None, told.tid: other_leader}
    assert [r.fill for r in by_leader] == [copied]
    assert {r.fill.tid for r in of_order} == {copied.tid, told.tid}


async def test_two_sessions_racing_record_one_row(store: Store, new_address: Callable[[], str]) -> None:
    fill = make_fill(new_address())
    async with store.sessions() as first, store.sessions() as second:
        await first.begin()
        first_new = await FillRepository(first).record_fill(fill)  # holds the insert's lock until commit

        async def record_second() -> bool:
            async with second.begin():
                return await FillRepository(second).record_fill(fill)

        racer = asyncio.create_task(record_second())
        await asyncio.sleep(0.05)  # give the racer time to reach the lock (the outcome must not depend on it)
        assert not racer.done(), "the second insert must wait for the first transaction"
        await first.commit()
        second_new = await racer
    assert (first_new, second_new) == (True, False)
    async with store.transaction() as tx:
        assert len(await tx.fills.for_address(fill.address)) == 1


async def test_many_concurrent_duplicates_make_one_new(store: Store, new_address: Callable[[], str]) -> None:
    fill = make_fill(new_address())

    async def record() -> bool:
        async with store.transaction() as tx:
            return await tx.fills.record_fill(fill)

    results = await asyncio.gather(*(record() for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]
    async with store.transaction() as tx:
        assert len(await tx.fills.for_address(fill.address)) == 1
