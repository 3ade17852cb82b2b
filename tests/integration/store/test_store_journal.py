"""The order journal: intent before send, outcome after, states only move forward, one row per cloid."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hyperfollow.domain.ids import cloid_for
from hyperfollow.domain.model import Side, Tif
from hyperfollow.store import JournalEntry, JournalState, Store
from hyperfollow.store.journal import RANK
from hyperfollow.store.tables import JournalRow

S = JournalState


def _entry(follower: str, leader: str, leg: str = "open", key: str = "tid:77") -> JournalEntry:
    return JournalEntry(
        cloid=cloid_for(follower, leader, key, leg),
        follower=follower,
        leader=leader,
        coin="ETH",
        side=Side.BUY,
        size=Decimal("0.0123"),
        limit_price=Decimal("3012.5"),
        reduce_only=False,
        leg=leg,
        source_fill_key=key,
        created_ms=1_000,
        tif=Tif.IOC,
    )


async def test_intent_then_outcome(store: Store, new_address: Callable[[], str]) -> None:
    entry = _entry(new_address(), new_address())
    async with store.transaction() as tx:
        assert await tx.journal.write_intent(entry) is True
    async with store.transaction() as tx:
        got = await tx.journal.get(entry.cloid)
    assert got == dataclasses.replace(entry, updated_ms=1_000)
    assert got is not None
    assert got.state is S.INTENT

    async with store.transaction() as tx:
        assert await tx.journal.transition(entry.cloid, S.SENT, now_ms=1_001)
        assert await tx.journal.transition(entry.cloid, S.ACKED, now_ms=1_002, oid=42)
        assert await tx.journal.transition(
            entry.cloid, S.FILLED, now_ms=1_003, filled_size=Decimal("0.0123"), avg_price=Decimal("3012.4")
        )
    async with store.transaction() as tx:
        done = await tx.journal.get(entry.cloid)
    assert done is not None
    assert (done.state, done.oid, done.filled_size, done.avg_price) == (
        S.FILLED,
        42,
        Decimal("0.0123"),
        Decimal("3012.4"),
    )
    assert (done.created_ms, done.updated_ms) == (1_000, 1_003)


async def test_late_outcomes_never_move_a_state_back(store: Store, new_address: Callable[[], str]) -> None:
    entry = _entry(new_address(), new_address())
    async with store.transaction() as tx:
        await tx.journal.write_intent(entry)
        assert await tx.journal.transition(
            entry.cloid, S.FILLED, now_ms=2_000, oid=9, filled_size=Decimal("0.0123"), avg_price=Decimal(3000)
        )
    async with store.transaction() as tx:
        # the send's own bookkeeping arriving after the fill: all no-ops
        assert await tx.journal.transition(entry.cloid, S.SENT, now_ms=2_001) is False
        assert await tx.journal.transition(entry.cloid, S.ACKED, now_ms=2_002, oid=10) is False
        assert await tx.journal.transition(entry.cloid, S.CANCELED, now_ms=2_003, error="late") is False
        assert await tx.journal.transition(entry.cloid, S.FILLED, now_ms=2_004) is False
    async with store.transaction() as tx:
        got = await tx.journal.get(entry.cloid)
    assert got is not None
    assert (got.state, got.oid, got.error, got.updated_ms) == (S.FILLED, 9, None, 2_000)


TRANSITIONS = list(itertools.product(list(S), list(S)))


@pytest.mark.parametrize(("before", "after"), TRANSITIONS, ids=[f"{a}->{b}" for a, b in TRANSITIONS])
async def test_transition_applies_only_forward(
    store: Store, new_address: Callable[[], str], before: JournalState, after: JournalState
) -> None:
    entry = _entry(new_address(), new_address())
    async with store.transaction() as tx:
        await tx.journal.write_intent(entry)
        if before is not S.INTENT:
            assert await tx.journal.transition(entry.cloid, before, now_ms=1)
        applied = await tx.journal.transition(entry.cloid, after, now_ms=2)
        got = await tx.journal.get(entry.cloid)
    forward = RANK[after] > RANK[before] or (after is before and not before.terminal)
    assert applied is forward
    assert got is not None
    assert got.state is (after if forward else before)


async def test_a_cloid_is_journalled_once(store: Store, new_address: Callable[[], str]) -> None:
    entry = _entry(new_address(), new_address())
    async with store.transaction() as tx:
        assert await tx.journal.write_intent(entry) is True
        assert await tx.journal.transition(entry.cloid, S.SENT, now_ms=5)
    # the same decision again (a restart re-deriving the cloid): not new, and the row is untouched
    async with store.transaction() as tx:
        assert await tx.journal.write_intent(entry) is False
        got = await tx.journal.get(entry.cloid)
    assert got is not None
    assert got.state is S.SENT
    # and the database itself refuses a second row for the cloid
    with pytest.raises(sa.exc.IntegrityError):
        async with store.transaction() as tx:
            tx.session.add(
                JournalRow(
                    cloid=entry.cloid, follower=entry.follower, leader=None, coin="ETH", side="B",
                    size=Decimal(1), limit_price=Decimal(1), reduce_only=False, tif="Ioc", leg="open",
                    source_fill_key=None, state="INTENT", oid=None, filled_size=Decimal(0),
                    avg_price=None, error=None, created_ms=1, updated_ms=1,
                )
            )  # fmt: skip


async def test_unresolved_and_for_source(store: Store, new_address: Callable[[], str]) -> None:
    follower, leader = new_address(), new_address()
    close, open_ = _entry(follower, leader, "flip-close"), _entry(follower, leader, "flip-open")
    other = _entry(follower, leader, "open", key="tid:78")
    async with store.transaction() as tx:
        for e in (close, open_, other):
            await tx.journal.write_intent(e)
        await tx.journal.transition(close.cloid, S.FILLED, now_ms=3)
        await tx.journal.transition(open_.cloid, S.UNKNOWN, now_ms=3, error="timeout")
    async with store.transaction() as tx:
        unresolved = await tx.journal.unresolved(follower)
        legs = await tx.journal.for_source(follower, leader, "tid:77")
        recent = await tx.journal.recent(follower, limit=2)
    assert [(e.cloid, e.state) for e in unresolved] == [(open_.cloid, S.UNKNOWN), (other.cloid, S.INTENT)]
    assert [e.leg for e in legs] == ["flip-close", "flip-open"]
    assert [e.cloid for e in recent] == [other.cloid, open_.cloid]


async def test_a_rolled_back_intent_is_not_there(store: Store, new_address: Callable[[], str]) -> None:
    entry = _entry(new_address(), new_address())

    async def decide_then_fail() -> None:
        async with store.transaction() as tx:
            await tx.journal.write_intent(entry)
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError, match="crash before commit"):
        await decide_then_fail()
    async with store.transaction() as tx:
        assert await tx.journal.get(entry.cloid) is None
