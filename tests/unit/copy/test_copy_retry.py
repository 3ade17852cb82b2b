"""A leader fill is handled or retried until it is: a failure while deciding or sending never drops it, the
cursor never passes it, and a restart picks it up again. A refusal by the venue is an outcome (recorded as a
rejection), not a failure to retry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal

import pytest
from hand_feed import F1, LEADER, HandWorld, leader_fill

from hyperfollow.copy.journal import Cursor, EntryState, InMemoryJournal
from hyperfollow.copy.model import CopyIntent, FollowSettings, SizingMode, Skip
from hyperfollow.copy.service import CopyService
from hyperfollow.copy.state import EventKind
from hyperfollow.domain.errors import OutcomeUnknown, TransientError, VenueRejected
from hyperfollow.domain.model import AccountSnapshot, OrderAck, OrderRequest, Side

TENTH = FollowSettings(sizing=SizingMode.FIXED_MULTIPLIER, multiplier=Decimal("0.1"))
FAST = {"retry_secs": 0.001, "retry_max_secs": 0.005}


def D(x: str | int) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(str(x))


@pytest.fixture
async def hand() -> AsyncIterator[HandWorld]:
    world = HandWorld()
    yield world
    await world.close()


async def _copying(hand: HandWorld) -> CopyService:
    svc = hand.service(**FAST)
    await svc.follow(F1, LEADER, TENTH)
    await svc.start()
    return svc


async def _until(check: Callable[[], bool], what: str, secs: float = 5.0) -> None:
    for _ in range(int(secs / 0.005)):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def _failing_submit(
    svc: CopyService, error: Exception, times: int, *, reduce_only: bool = True
) -> list[OrderRequest]:
    """The follower's gateway raises ``error`` on the first ``times`` matching orders; every matching
    submit is listed."""
    gateway = svc.venues[F1].gateway
    real = gateway.submit
    calls: list[OrderRequest] = []

    async def submit(order: OrderRequest) -> OrderAck:
        if order.reduce_only == reduce_only:
            calls.append(order)
            if len(calls) <= times:
                raise error
        return await real(order)

    gateway.submit = submit  # type: ignore[method-assign]
    return calls


async def test_a_close_failing_transiently_is_sent_again_until_the_follower_is_flat(hand: HandWorld) -> None:
    svc = await _copying(hand)
    t = hand.now() + 10
    hand.feed.push(leader_fill(1, t, Side.BUY, "1", "0", oid=1))
    await svc.settle()
    assert await hand.position() == D("0.1")
    calls = _failing_submit(svc, TransientError("502 bad gateway"), times=3)
    hand.feed.push(leader_fill(2, t + 1, Side.SELL, "1", "1", oid=2))  # the leader is flat
    await svc.settle()
    assert await hand.position() == 0
    assert len(calls) == 4
    assert len({c.cloid for c in calls}) == 1  # the same order, the same cloid
    assert hand.journal.state_of(calls[0].cloid or "") is EntryState.FILLED
    assert [e.kind for e in hand.events if e.cloid == calls[0].cloid] == [EventKind.FILLED]


async def test_a_rejected_close_is_recorded_as_a_rejection_and_not_sent_again(hand: HandWorld) -> None:
    svc = await _copying(hand)
    t = hand.now() + 10
    hand.feed.push(leader_fill(1, t, Side.BUY, "1", "0", oid=1))
    await svc.settle()
    calls = _failing_submit(svc, VenueRejected("Reduce only order would increase position."), times=1)
    hand.feed.push(leader_fill(2, t + 1, Side.SELL, "1", "1", oid=2))
    await svc.settle()
    [call] = calls
    assert hand.journal.state_of(call.cloid or "") is EntryState.REJECTED
    assert [e.kind for e in hand.events if e.cloid == call.cloid] == [EventKind.REJECTED]
    assert hand.journal.cursors[(F1, LEADER)].passed(hand.feed.history[-1])  # handled: the fill is done
    hand.feed.push(leader_fill(3, t + 2, Side.BUY, "1", "0", oid=3))  # the loop goes on
    await svc.settle()
    assert await hand.position() == D("0.2")


async def test_outcome_unknown_from_set_leverage_is_resolved_and_the_copy_goes_out(hand: HandWorld) -> None:
    svc = await _copying(hand)
    gateway = svc.venues[F1].gateway
    real = gateway.set_leverage
    calls: list[int] = []

    async def set_leverage(coin: str, leverage: int, *, cross: bool = True) -> None:
        calls.append(leverage)
        if len(calls) == 1:
            raise OutcomeUnknown("timed out after sending")
        await real(coin, leverage, cross=cross)

    gateway.set_leverage = set_leverage  # type: ignore[method-assign]
    t = hand.now() + 10
    hand.feed.push(leader_fill(1, t, Side.BUY, "1", "0", oid=1))
    await svc.settle()
    assert await hand.position() == D("0.1")
    state = hand.exchange.info({"type": "clearinghouseState", "user": F1})
    assert state["assetPositions"][0]["position"]["leverage"] == {"type": "cross", "value": 3}
    assert calls == [3, 3]  # asked again (setting a leverage twice is harmless)
    hand.feed.push(leader_fill(2, t + 1, Side.BUY, "1", "1", oid=2))  # the loop is alive
    await svc.settle()
    assert await hand.position() == D("0.2")


async def test_a_fill_that_fails_to_decide_is_retried_until_it_is_copied(hand: HandWorld) -> None:
    svc = await _copying(hand)
    account = svc.venues[F1].account
    real = account.snapshot
    failures: list[int] = []

    async def snapshot() -> AccountSnapshot:
        if len(failures) < 3:
            failures.append(1)
            raise TransientError("429 too many requests")
        return await real()

    account.snapshot = snapshot  # type: ignore[method-assign]
    svc._followers.drop(F1)  # the next decision reads the follower's equity
    t = hand.now() + 10
    hand.feed.push(leader_fill(1, t, Side.BUY, "1", "0", oid=1))
    await svc.settle()
    assert len(failures) == 3
    assert await hand.position() == D("0.1")


class FlakyJournal(InMemoryJournal):
    """The in-memory journal, failing to journal any decision about the fill named ``failing``."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: str | None = None
        self.failures = 0

    async def begin(
        self,
        intents: Sequence[CopyIntent],
        *,
        skips: Sequence[Skip] = (),
        cursor: tuple[str, str, Cursor] | None = None,
        now_ms: int,
    ) -> list[CopyIntent]:
        if self.failing is not None and any(i.fill_key == self.failing for i in intents):
            self.failures += 1
            raise OSError("database is locked")
        return await super().begin(intents, skips=skips, cursor=cursor, now_ms=now_ms)


async def test_the_cursor_never_passes_a_fill_that_failed_and_a_restart_retries_it(hand: HandWorld) -> None:
    journal = hand.journal = FlakyJournal()
    svc = await _copying(hand)
    t = hand.now() + 10
    first = leader_fill(1, t, Side.BUY, "1", "0", oid=1)
    journal.failing = first.ref
    hand.feed.push(first)
    await _until(lambda: journal.failures >= 2, "the first fill to be retried")
    hand.feed.push(leader_fill(2, t + 1, Side.BUY, "1", "1", oid=2))  # an add, while the open still fails
    await _until(lambda: journal.failures >= 4, "more retries")
    assert await hand.position() == 0  # nothing copied out of order
    assert not journal.cursors[(F1, LEADER)].passed(first)
    await svc.close()  # stopped (or killed) while the fill still fails
    journal.failing = None
    await hand.step(1_000)
    again = hand.service(**FAST)
    await again.start()
    await again.settle()
    assert await hand.position() == D("0.2")  # the open and the add
    assert journal.cursors[(F1, LEADER)].passed(hand.feed.history[-1])
