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

from hyperfollow.copy import startup
from hyperfollow.copy.fills import chain_segments, merge, net_fills
from hyperfollow.copy.journal import Cursor, Follow, advance_cursor
from hyperfollow.copy.mirror import decide_mirror
from hyperfollow.copy.model import CopyMode, Decision, Skip, SkipReason, numbers
from hyperfollow.copy.sending import backoff_secs
from hyperfollow.domain.errors import UnknownInstrument
from hyperfollow.domain.model import Fill
from hyperfollow.ports.clock import Clock

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
        clock: Clock,
        retry_secs: float = 1.0,
    ) -> None:
        self.name = name
        self._open = open_stream
        self._handle = handle
        self._clock = clock
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
                    self._queue.put_nowait((item, self._clock.monotonic()))
                log.info("copy.stream_ended", stream=self.name)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("copy.stream_failed", stream=self.name, retry_secs=self._retry_secs)
            finally:
                if stream is not None:
                    await _close(stream)
            await self._clock.sleep(self._retry_secs)

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
    """The leader stream of one ``CopyService`` and the per-follow handling of its fills.

    Each follow works through its fills in its own task, one order at a time: a failure (a venue read, the
    journal, anything) is logged and the same order is tried again after a capped backoff, and the follow's
    later fills wait behind it, so the cursor never passes a fill that was not decided and nothing is copied
    out of order. Other follows go on meanwhile.
    """

    def __init__(self, service: CopyService) -> None:
        self._svc = service
        self._pump: Pump[Fill] | None = None
        self._leaders: tuple[str, ...] = ()
        self._backlog: dict[tuple[str, str], list[Received[Fill]]] = {}
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._live_from: int | None = None  # when the stream was (re)opened: older fills were missed

    @property
    def pump(self) -> Pump[Fill] | None:
        return self._pump

    @property
    def busy(self) -> bool:
        """Fills are queued or being handled (retries included)."""
        return bool(self._workers) or (self._pump is not None and self._pump.busy)

    async def join(self) -> None:
        """Wait until every fill delivered so far is handled."""
        if self._pump is not None:
            await self._pump.join()
        while self._workers:
            await asyncio.gather(*self._workers.values(), return_exceptions=True)

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
            clock=self._svc.clock,
            retry_secs=self._svc.config.stream_retry_secs,
        )
        self._pump.start()

    async def stop(self) -> None:
        """Stop the stream and every follow's task; what was not decided is delivered again at the next
        start (the cursors did not pass it)."""
        if self._pump is not None:
            await self._pump.stop()
            self._pump = None
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._workers.clear()
        self._backlog.clear()
        self._leaders = ()

    async def _open(self) -> AsyncIterator[Fill]:
        # From the oldest cursor (or follow start) of any mirror follow: the stream backfills from there,
        # and each follow drops what it already handled.
        starts = []
        for follow in self.mirror_follows():
            cursor = self._svc.cursor_of(follow)
            starts.append(cursor.time_ms if cursor is not None else follow.created_ms)
        since = min(starts) if starts else None
        self._live_from = self._svc.now_ms()
        log.info(
            "copy.leader_stream", leaders=list(self._leaders), since_ms=since, live_from_ms=self._live_from
        )
        return self._svc.leader_feed.stream_fills(list(self._leaders), since_ms=since)

    async def _handle(self, batch: list[Received[Fill]]) -> None:
        """Hand the batch to each mirror follow of its leaders (their own tasks)."""
        self._svc.risk.saw_leader_fills([fill for fill, _ in batch])  # leader health: fills seen
        by_leader: dict[str, list[Received[Fill]]] = {}
        for fill, received in batch:
            by_leader.setdefault(fill.address.lower(), []).append((fill, received))
        for follow in self.mirror_follows():
            items = by_leader.get(follow.leader)
            if not items:
                continue
            self._backlog.setdefault(follow.key, []).extend(items)
            if follow.key not in self._workers:
                self._workers[follow.key] = asyncio.create_task(
                    self._work(follow.key), name=f"copy.mirror.{follow.follower}.{follow.leader}"
                )

    async def _work(self, key: tuple[str, str]) -> None:
        try:
            while self._backlog.get(key):
                items = self._backlog.pop(key)
                follow = self._svc.follow_of(*key)
                if follow is None or follow.settings.mode is not CopyMode.MIRROR:
                    continue  # stopped, or switched to delta: its fills are not ours to copy any more
                await self._follow_fills(follow, items)
        except asyncio.CancelledError:
            raise
        except Exception:  # _follow_fills retries every failure itself: this is a bug, and is logged as one
            log.exception("copy.follow_failed", follower=key[0], leader=key[1])
        finally:
            self._workers.pop(key, None)

    async def _follow_fills(self, follow: Follow, items: list[Received[Fill]]) -> None:
        received: dict[str, float] = {}
        fills: list[Fill] = []
        for f, r in items:
            if f.ref not in received:  # a fill delivered twice (a stream re-opened): once
                received[f.ref] = r
                fills.append(f)
        live_from = self._live_from
        missed = [f for f in fills if live_from is not None and f.time_ms < live_from]
        if missed:  # older than the stream: the leader traded them while we were not looking
            await self._until_handled(follow, missed, self._catch_up)
        for group in order_groups([f for f in fills if live_from is None or f.time_ms >= live_from]):
            arrived = received[group[0].ref]

            async def mirror(current: Follow, fresh: list[Fill], arrived: float = arrived) -> None:
                await self._mirror_order(current, fresh, arrived)

            await self._until_handled(follow, group, mirror)

    async def _until_handled(
        self, follow: Follow, fills: list[Fill], handle: Callable[[Follow, list[Fill]], Awaitable[None]]
    ) -> None:
        """``handle`` the fills not handled yet, under the follow's lock; on failure, again after a capped
        backoff, until it is done (or the follow stopped)."""
        svc = self._svc
        attempt = 0
        while True:
            try:
                async with svc.lock(follow):
                    current = svc.follow_of(*follow.key)
                    if current is None or current.settings.mode is not CopyMode.MIRROR:
                        return
                    fresh = [f for f in fills if await self._is_new(current, f)]
                    if fresh:
                        if attempt:
                            await self._resolve_left(current, fresh)
                        await handle(current, fresh)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                attempt += 1
                delay = backoff_secs(attempt, svc.config.retry_secs, svc.config.retry_max_secs)
                log.warning("copy.fill_retry", follower=follow.follower, leader=follow.leader,
                            coin=fills[0].coin, fill=fills[0].ref, attempt=attempt, retry_secs=delay,
                            error=repr(exc), exc_info=attempt == 1)  # fmt: skip
                await svc.clock.sleep(delay)

    async def _resolve_left(self, follow: Follow, fills: list[Fill]) -> None:
        """Before deciding an order again: its intents a failed attempt journalled but did not see through
        are resolved by cloid (found: recorded; never received: sent), as a restart would."""
        refs = {f.ref for f in fills}
        for entry in await self._svc.journal.unresolved():
            if (entry.follower, entry.leader) == follow.key and entry.fill_key in refs:
                await startup.resolve(self._svc, entry)

    async def _catch_up(self, follow: Follow, fills: list[Fill]) -> None:
        """Missed fills, netted per coin into the one order that reaches the leader's position now
        (``fills.net_fills``): a round trip while we were down costs nothing, and a net move is one order.
        Every coin's decision is journalled in one transaction with the cursor past all of them, so a crash
        can neither lose a coin nor net it twice. The drift guard holds back an open whose price moved away
        from the leader's; the events say catch-up and carry no latency."""
        svc = self._svc
        by_coin: dict[str, list[Fill]] = {}
        for f in fills:
            by_coin.setdefault(f.coin, []).append(f)
        marks = await svc.marks(set(by_coin))
        decision: Decision = []
        left_flat: list[str] = []
        for coin, coin_fills in by_coin.items():
            ordered = [
                f for group in order_groups(coin_fills) for piece in chain_segments(group) for f in piece
            ]
            net = net_fills(ordered, from_flat=coin in svc.preexisting(follow))
            log.info("copy.catch_up", follower=follow.follower, leader=follow.leader, coin=coin,
                     fills=len(ordered), orders=len(order_groups(coin_fills)), start=str(net.start),
                     end=str(net.end), chain_breaks=net.breaks,
                     net=None if net.fill is None else str(net.fill.signed_size))  # fmt: skip
            if net.through_zero or net.end == 0:
                left_flat.append(coin)
            if net.fill is not None:
                decision += await self._decide(follow, net.fill, marks)
        cursor = advance_cursor(svc.cursor_of(follow), fills)
        await svc.act(follow, decision, origin_ms=None, received=None, cursor=cursor, retry_sends=True,
                      catch_up=True)  # fmt: skip
        for coin in left_flat:  # the leader's position in it is new since: it does not predate the follow
            svc.preexisting(follow).discard(coin)

    async def _mirror_order(self, follow: Follow, fills: list[Fill], received: float) -> None:
        """One order's new fills: merged per unbroken piece of the chain, each decided and acted on."""
        pieces = chain_segments(fills)
        if len(pieces) > 1:
            log.warning("copy.fill_chain_broken", follower=follow.follower, leader=follow.leader,
                        coin=fills[0].coin, oid=fills[0].oid, fills=len(fills), pieces=len(pieces),
                        starts=[str(p[0].start_position) for p in pieces])  # fmt: skip
        marks = await self._svc.marks({f.coin for f in fills})
        for i, piece in enumerate(pieces):
            # the cursor moves with the last piece only: it never passes a piece not yet decided
            cursor = advance_cursor(self._svc.cursor_of(follow), fills) if i == len(pieces) - 1 else None
            await self._mirror_one(follow, merge(piece), cursor, received, marks)

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
        await svc.act(
            follow, decision, origin_ms=fill.time_ms, received=received, cursor=cursor, retry_sends=True
        )

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
