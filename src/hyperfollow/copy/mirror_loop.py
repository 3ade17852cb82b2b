"""Mirror mode's shell: one leader fill stream for every followed leader, each fill decided for every
active mirror follow of its leader (``decide_mirror``), then journalled and executed by the service.

Fills are read into a queue by one task and handled in batches by another, so the fills that arrive
together (one leader order sweeping several levels) are merged per order with ``fills.coalesce`` and
copied as one order instead of several small ones that would each fall under the $10 minimum.

A fill is handled once per follow. The follow's cursor (``journal.Cursor``: the millisecond of the last
leader fills it handled, and the ``Fill.ref`` of each fill handled in it) is advanced in the same
transaction that journals the fill's intents and skips; a fill behind the cursor is not decided again.
Trade ids are not in position order within a millisecond, so the cursor names fills rather than comparing
ids: a fill of the cursor's millisecond that it does not name is new.

An order's fills are merged in position order (``fills.chain_segments``); a broken ``startPosition`` chain
is logged and each piece decided on its own, the cursor moving with the last.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

import structlog

from hyperfollow.copy.fills import chain_segments, merge
from hyperfollow.copy.journal import Cursor, Follow, advance_cursor
from hyperfollow.copy.mirror import decide_mirror
from hyperfollow.copy.model import CopyMode, Decision, Skip, SkipReason, numbers
from hyperfollow.domain.errors import UnknownInstrument
from hyperfollow.domain.model import Fill

if TYPE_CHECKING:
    from decimal import Decimal

    from hyperfollow.copy.service import CopyService

log = structlog.get_logger(__name__)

T = TypeVar("T")
Received = tuple[T, float]  # an item and when it arrived (monotonic seconds)


class Pump(Generic[T]):
    """A stream read into a queue by one task and handled in batches by another.

    The stream is re-opened (``open_stream`` is called again) after it fails; it ends for good when it
    finishes normally (its venue closed). ``busy`` says whether anything is queued or being handled.
    """

    def __init__(
        self,
        name: str,
        open_stream: Callable[[], Awaitable[AsyncIterator[T]]],
        handle: Callable[[list[Received[T]]], Awaitable[None]],
        *,
        monotonic: Callable[[], float],
        retry_secs: float = 1.0,
    ) -> None:
        self.name = name
        self._open = open_stream
        self._handle = handle
        self._monotonic = monotonic
        self._retry_secs = retry_secs
        self._queue: asyncio.Queue[Received[T]] = asyncio.Queue()
        self._working = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._read(), name=f"{self.name}.read"),
            asyncio.create_task(self._work(), name=f"{self.name}.work"),
        ]

    @property
    def busy(self) -> bool:
        return self._working or not self._queue.empty()

    async def join(self) -> None:
        await self._queue.join()

    async def stop(self) -> None:
        """Cancel both tasks (the stream is closed by the reader on its way out)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _read(self) -> None:
        while True:
            stream: AsyncIterator[T] | None = None
            try:
                stream = await self._open()
                async for item in stream:
                    self._queue.put_nowait((item, self._monotonic()))
                log.info("copy.stream_ended", stream=self.name)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("copy.stream_failed", stream=self.name, retry_secs=self._retry_secs)
            finally:
                if stream is not None:
                    await _close(stream)
            await asyncio.sleep(self._retry_secs)

    async def _work(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._working = True
            try:
                await self._handle(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Nothing of the batch past the failure was journalled, so its cursors did not move:
                # a restart backfills and decides those fills again.
                log.exception("copy.batch_failed", stream=self.name, items=len(batch))
            finally:
                self._working = False
                for _ in batch:
                    self._queue.task_done()


async def _close(stream: AsyncIterator[T]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


def order_groups(fills: Sequence[Fill]) -> list[list[Fill]]:
    """Consecutive fills of one order (coin, oid, side), as ``coalesce`` merges them."""
    groups: list[list[Fill]] = []
    for f in fills:
        head = groups[-1][0] if groups else None
        if head is not None and (f.coin, f.oid, f.side) == (head.coin, head.oid, head.side):
            groups[-1].append(f)
        else:
            groups.append([f])
    return groups


class MirrorLoop:
    """The leader stream of one ``CopyService`` and the per-follow handling of its fills."""

    def __init__(self, service: CopyService) -> None:
        self._svc = service
        self._pump: Pump[Fill] | None = None
        self._leaders: tuple[str, ...] = ()

    @property
    def pump(self) -> Pump[Fill] | None:
        return self._pump

    def mirror_follows(self) -> list[Follow]:
        return [f for f in self._svc.active_follows() if f.settings.mode is CopyMode.MIRROR]

    async def restart(self) -> None:
        """(Re)open the leader stream when the set of mirrored leaders changed."""
        leaders = tuple(sorted({f.leader for f in self.mirror_follows()}))
        if leaders == self._leaders and self._pump is not None:
            return
        if self._pump is not None:
            await self._pump.stop()
            self._pump = None
        self._leaders = leaders
        if not leaders:
            return
        self._pump = Pump(
            "copy.leaders",
            self._open,
            self._handle,
            monotonic=self._svc.monotonic,
            retry_secs=self._svc.config.stream_retry_secs,
        )
        self._pump.start()

    async def stop(self) -> None:
        if self._pump is not None:
            await self._pump.stop()
            self._pump = None
        self._leaders = ()

    async def _open(self) -> AsyncIterator[Fill]:
        # From the oldest cursor (or follow start) of any mirror follow: the stream backfills from there,
        # and each follow drops what it already handled.
        starts = []
        for follow in self.mirror_follows():
            cursor = self._svc.cursor_of(follow)
            starts.append(cursor.time_ms if cursor is not None else follow.created_ms)
        since = min(starts) if starts else None
        log.info("copy.leader_stream", leaders=list(self._leaders), since_ms=since)
        return self._svc.leader_feed.stream_fills(list(self._leaders), since_ms=since)

    async def _handle(self, batch: list[Received[Fill]]) -> None:
        self._svc.risk.saw_leader_fills([fill for fill, _ in batch])  # leader health: fills seen
        by_leader: dict[str, list[Received[Fill]]] = {}
        for fill, received in batch:
            by_leader.setdefault(fill.address.lower(), []).append((fill, received))
        marks = await self._svc.marks({fill.coin for fill, _ in batch})
        jobs = [
            self._follow_fills(follow, items, marks)
            for leader, items in by_leader.items()
            for follow in self.mirror_follows()
            if follow.leader == leader
        ]
        for result in await asyncio.gather(*jobs, return_exceptions=True):
            if isinstance(result, BaseException):  # that follow's cursor did not move: a restart retries it
                log.error("copy.follow_failed", error=repr(result), exc_info=result)

    async def _follow_fills(
        self, follow: Follow, items: list[Received[Fill]], marks: dict[str, Decimal]
    ) -> None:
        async with self._svc.lock(follow):
            if not self._svc.is_active(follow):
                return
            fresh = [(f, r) for f, r in items if await self._is_new(follow, f)]
            received = {id(f): r for f, r in fresh}
            for group in order_groups([f for f, _ in fresh]):
                pieces = chain_segments(group)
                if len(pieces) > 1:
                    log.warning("copy.fill_chain_broken", follower=follow.follower, leader=follow.leader,
                                coin=group[0].coin, oid=group[0].oid, fills=len(group), pieces=len(pieces),
                                starts=[str(p[0].start_position) for p in pieces])  # fmt: skip
                for i, piece in enumerate(pieces):
                    # the cursor moves with the last piece only: it never passes a piece not yet decided
                    cursor = (
                        advance_cursor(self._svc.cursor_of(follow), group) if i == len(pieces) - 1 else None
                    )
                    await self._mirror_one(follow, merge(piece), cursor, received[id(group[0])], marks)

    async def _is_new(self, follow: Follow, fill: Fill) -> bool:
        if fill.time_ms < follow.created_ms:
            return False  # before the follow began: its positions are the join's business
        cursor = self._svc.cursor_of(follow)
        if cursor is None or fill.time_ms > cursor.time_ms:
            return True
        if cursor.passed(fill):
            return False
        if fill.time_ms < cursor.time_ms:
            return False  # late, and older than what was handled since (the cursor never moves back)
        # in the cursor's millisecond and not named by it: new, unless the journal knows it (a cursor
        # written before cursors named every fill of their millisecond)
        return not await self._svc.journal.handled(follow.follower, follow.leader, fill.ref)

    async def _mirror_one(
        self, follow: Follow, fill: Fill, cursor: Cursor | None, received: float, marks: dict[str, Decimal]
    ) -> None:
        svc = self._svc
        decision = await self._decide(follow, fill, marks)
        start = fill.start_position
        end = start + fill.signed_size
        if start == 0 or end == 0 or end * start < 0:
            # the leader's position is new (opened from flat, e.g. while we were down and now backfilled) or
            # gone: either way it does not predate the follow any more
            svc.preexisting(follow).discard(fill.coin)
        await svc.act(follow, decision, origin_ms=fill.time_ms, received=received, cursor=cursor)

    async def _decide(self, follow: Follow, fill: Fill, marks: dict[str, Decimal]) -> Decision:
        svc, settings = self._svc, follow.settings
        base = numbers(leader_dir=fill.direction, leader_size=fill.size, leader_price=fill.price)
        try:
            instrument = await svc.market.instrument(fill.coin)
        except UnknownInstrument:
            reason = SkipReason.SKIP_SPOT if "/" in fill.coin or fill.coin.startswith("@") else None
            why = reason or SkipReason.SKIP_UNKNOWN_COIN
            return [Skip(follow.follower, follow.leader, fill.coin, why, base, fill.ref)]
        mark = marks.get(fill.coin)
        if mark is None or mark <= 0:
            return [Skip(follow.follower, follow.leader, fill.coin, SkipReason.SKIP_NO_MARK, base, fill.ref)]
        leader = await svc.leader_snapshot(follow.leader)
        theirs = leader.position(fill.coin)
        follower_equity = await svc.follower_equity(follow.follower)
        return decide_mirror(
            fill,
            leader_equity=leader.equity,
            follower_equity=follower_equity,
            follower_position=svc.ledger.position(follow.follower, follow.leader, fill.coin),
            mark=mark,
            instrument=instrument,
            settings=settings,
            follower=follow.follower,
            leader=follow.leader,
            budget_used_usd=svc.ledger.budget_used(follow.follower, follow.leader, marks),
            preexisting=fill.coin in svc.preexisting(follow),
            leader_leverage=theirs.leverage if theirs is not None else None,
        )
