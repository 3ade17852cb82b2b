"""Fill streams: WebSocket push, REST polling and gap backfill merged into one de-duplicated stream.

``FillRouter`` keeps, per followed address, where its fills come from (``ws`` push or ``poll``, the
supervisor decides which) and everything needed to never lose a fill nor deliver one twice:

* a source-level ``FillDeduper`` (push, snapshot, poll, backfill all pass through it) and the recent
  fills it accepted;
* *coverage*: from which venue time on the stream knows every fill. A short ``userFills`` snapshot
  (< ``snapshot_limit`` fills) is the whole history; a full one covers from its oldest fill; a poll
  baseline covers from its start. A fill found older than the coverage (a snapshot after switching
  from poll to push brings old history) is remembered, not delivered;
* after the push connection drops: the newest fill time seen before the gap, and a backfill
  ``fetch_fills(address, gap_from - overlap)`` once the connection is back (paged, retried).

Each consumer (``fills(addresses, since_ms)``) has its own deduper and delivery rule:

* ``since_ms`` given: its own history fetch ``fetch_fills(address, since_ms)``; live fills that
  arrive meanwhile are held and merged with it, so the start is delivered in time and position order;
  later fills (snapshots included) only when ``time_ms >= since_ms``.
* ``since_ms`` None: only fills after the subscription. The fills the venue already had (the
  ``userFills`` snapshot, the first poll, or what the router already knew) are marked seen, not
  delivered. (Not a wall-clock cutoff: simulated venues run their own clocks.)

Order guarantee: per address, each batch is delivered oldest first and, within a millisecond, in
position order (``parse.in_position_order``: the ``startPosition`` chain, not the trade ids), and batches in
arrival order, so a consumer sees time order except for a fill the venue reports late (found by a
backfill or a poll after later ones were pushed): that one is delivered once, late, never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

import structlog

from hyperfollow.adapters.hyperliquid.dedupe import FillDeduper
from hyperfollow.adapters.hyperliquid.parse import in_position_order
from hyperfollow.domain.model import Fill, StreamEvent

log = structlog.get_logger(__name__)

FillFetcher = Callable[[str, int], Awaitable[list[Fill]]]
Mode = Literal["ws", "poll"]
T = TypeVar("T")


class Subscription(AsyncIterator[T], Generic[T]):
    """What every stream method returns: an async iterator fed by the supervisor.

    It is registered when created (so nothing that happens before the first ``__anext__`` is missed)
    and ends when the supervisor closes. ``aclose()`` (or leaving ``async with``) unsubscribes; a
    consumer that merely stops iterating (``break``) must close it, or the venue subscription stays.
    ``maxlen`` bounds the buffer for market data (a slow reader loses the oldest books, counted in
    ``dropped``); fills and orders are unbounded.
    """

    def __init__(self, on_close: Callable[[Subscription[T]], None] | None = None, maxlen: int | None = None):
        self._items: deque[T] = deque(maxlen=maxlen)
        self._maxlen = maxlen
        self._ready = asyncio.Event()
        self._ended = False
        self._on_close = on_close
        self.dropped = 0

    def push(self, item: T) -> None:
        if self._ended:
            return
        if self._maxlen is not None and len(self._items) == self._maxlen:
            self.dropped += 1
        self._items.append(item)
        self._ready.set()

    def end(self) -> None:
        """No more items: iteration stops once the buffer is drained."""
        self._ended = True
        self._ready.set()

    @property
    def ended(self) -> bool:
        return self._ended

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._ended:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def close(self) -> None:
        """Unsubscribe now (idempotent); the iterator ends."""
        callback, self._on_close = self._on_close, None
        self._items.clear()
        self.end()
        if callback is not None:
            callback(self)

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> Subscription[T]:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


class Source(StrEnum):
    SNAPSHOT = "snapshot"  # the userFills message sent on (re)subscribe
    PUSH = "push"
    BASELINE = "baseline"  # the first poll of an address
    POLL = "poll"
    BACKFILL = "backfill"  # after a reconnect
    HISTORY = "history"  # a consumer's own fetch from its since_ms


@dataclass
class FillCounters:
    duplicates_dropped: int = 0
    backfilled: int = 0
    polled: int = 0
    polls: int = 0
    fetch_failures: int = 0


@dataclass(eq=False)
class FillConsumer:
    """One ``fills()`` subscription."""

    addresses: tuple[str, ...]
    since_ms: int | None
    out: Subscription[Fill]
    dedupe: FillDeduper = field(default_factory=FillDeduper)
    pending_baseline: set[str] = field(default_factory=set)
    holding: dict[str, list[Fill]] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def deliver(self, fills: Iterable[Fill], counters: FillCounters) -> None:
        for f in fills:
            if self.since_ms is not None and f.time_ms < self.since_ms:
                continue
            if self.dedupe.accept(f):
                self.out.push(f)
            else:
                counters.duplicates_dropped += 1


@dataclass(eq=False)
class _Address:
    address: str
    seq: int
    snapshot_limit: int
    consumers: set[FillConsumer] = field(default_factory=set)
    mode: Mode | None = None
    primed: bool = False
    covered_from: int | None = None  # None once primed: the whole history is known
    last_time: int | None = None
    dedupe: FillDeduper = field(default_factory=FillDeduper)
    recent: deque[Fill] = field(default_factory=deque)
    gap_from: int | None = None
    gap_pending: bool = False
    backfill: asyncio.Task[None] | None = None
    next_poll: float = 0.0

    def __post_init__(self) -> None:
        self.recent = deque(maxlen=self.snapshot_limit)


class FillRouter:
    """Per-address fill sources and per-consumer delivery; see the module docstring."""

    def __init__(
        self,
        fetch_fills: FillFetcher,
        *,
        emit: Callable[[StreamEvent], None],
        now_ms: Callable[[], int],
        poll_interval_secs: float = 2.0,
        poll_max_per_min: float | None = 40.0,
        overlap_ms: int = 2_000,
        baseline_window_ms: int = 60_000,
        page_size: int = 2_000,
        max_pages: int = 10,
        snapshot_limit: int = 2_000,
        retry_secs: float = 0.5,
        retry_max_secs: float = 10.0,
    ) -> None:
        self._fetch = fetch_fills
        self._emit = emit
        self._now_ms = now_ms
        self._poll_interval = poll_interval_secs
        self._poll_gap = 0.0 if not poll_max_per_min else 60.0 / poll_max_per_min
        self._overlap = overlap_ms
        self._baseline_window = baseline_window_ms
        self._page_size = page_size
        self._max_pages = max_pages
        self._snapshot_limit = snapshot_limit
        self._retry = retry_secs
        self._retry_max = retry_max_secs
        self._addrs: dict[str, _Address] = {}
        self._seq = 0
        self._wake = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self.counters = FillCounters()

    # ------------------------------------------------------------------ consumers

    def open(self, addresses: Sequence[str], since_ms: int | None, out: Subscription[Fill]) -> FillConsumer:
        """Register a consumer (the supervisor then decides each new address's mode)."""
        unique = tuple(dict.fromkeys(a.lower() for a in addresses))
        consumer = FillConsumer(unique, since_ms, out)
        for address in unique:
            state = self._addrs.get(address)
            if state is None:
                self._seq += 1
                state = self._addrs[address] = _Address(address, self._seq, self._snapshot_limit)
            state.consumers.add(consumer)
            if since_ms is not None:
                consumer.holding[address] = []
                consumer.tasks.append(asyncio.create_task(self._history(consumer, state, since_ms)))
            elif state.primed:
                consumer.dedupe.accept_many(state.recent)  # known now = before the subscription
            else:
                consumer.pending_baseline.add(address)
        return consumer

    def close(self, consumer: FillConsumer) -> None:
        for task in consumer.tasks:
            task.cancel()
        for address in consumer.addresses:
            state = self._addrs.get(address)
            if state is None:
                continue
            state.consumers.discard(consumer)
            if not state.consumers:
                if state.backfill is not None:
                    state.backfill.cancel()
                del self._addrs[address]

    def addresses(self) -> list[str]:
        """Followed addresses, first asked first."""
        return [s.address for s in sorted(self._addrs.values(), key=lambda s: s.seq)]

    def mode(self, address: str) -> Mode | None:
        state = self._addrs.get(address)
        return None if state is None else state.mode

    def set_mode(self, address: str, mode: Mode) -> None:
        """Push or poll. Switching to poll polls at once from the last fill seen (covers the hand-over);
        switching to push relies on the ``userFills`` snapshot that the new subscription brings."""
        state = self._addrs[address]
        if state.mode == mode:
            return
        state.mode = mode
        if mode == "poll":
            state.next_poll = 0.0
            if self._poller is None:
                self._poller = asyncio.create_task(self._poll_loop(), name="fills-poller")
            self._wake.set()

    async def aclose(self) -> None:
        tasks = [t for t in [self._poller] if t is not None]
        tasks += [s.backfill for s in self._addrs.values() if s.backfill is not None]
        tasks += [t for s in self._addrs.values() for c in s.consumers for t in c.tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._poller = None

    # ------------------------------------------------------------------ push side

    def on_push(self, address: str, fills: list[Fill], snapshot: bool) -> None:
        state = self._addrs.get(address)
        if state is not None:  # else an unsubscribed address's message still in flight
            self._ingest(state, fills, Source.SNAPSHOT if snapshot else Source.PUSH)

    def on_disconnected(self) -> None:
        """The push connection dropped: remember where each pushed address's gap starts."""
        for state in self._addrs.values():
            if state.mode == "ws" and state.primed:
                ref = state.last_time if state.last_time is not None else 0
                state.gap_from = ref if state.gap_from is None else min(state.gap_from, ref)
                state.gap_pending = True

    def on_connected(self) -> None:
        """The push connection is back (subscriptions re-sent): backfill every gap."""
        for state in self._addrs.values():
            if state.gap_pending and (state.backfill is None or state.backfill.done()):
                state.backfill = asyncio.create_task(self._backfill(state))

    # ------------------------------------------------------------------ ingestion

    def _ingest(
        self, state: _Address, fills: list[Fill], source: Source, exclude: FillConsumer | None = None
    ) -> list[Fill]:
        """Run a batch through the address's deduper and hand it to its consumers; returns the fills
        new to the stream (the ones delivered)."""
        fills = in_position_order(fills)
        if not state.primed and source in (Source.SNAPSHOT, Source.BASELINE):
            state.primed = True
            if source is Source.SNAPSHOT and len(fills) >= self._snapshot_limit:
                state.covered_from = fills[0].time_ms + 1  # truncated: older fills may be missing
        new: list[Fill] = []
        accept = state.dedupe.accept
        for f in fills:
            if not accept(f):
                continue
            state.recent.append(f)
            if state.last_time is None or f.time_ms > state.last_time:
                state.last_time = f.time_ms
            if state.covered_from is None or f.time_ms >= state.covered_from:
                new.append(f)
        self.counters.duplicates_dropped += len(fills) - len(new)
        if source is Source.BACKFILL:
            self.counters.backfilled += len(new)
        elif source is Source.POLL:
            self.counters.polled += len(new)
        for consumer in list(state.consumers):
            if consumer is exclude:
                continue
            if state.address in consumer.pending_baseline and source not in (Source.PUSH, Source.POLL):
                consumer.dedupe.accept_many(fills)  # the history before this subscription
                if source in (Source.SNAPSHOT, Source.BASELINE):
                    consumer.pending_baseline.discard(state.address)
            elif state.address in consumer.holding:
                consumer.holding[state.address].extend(new)
            else:
                consumer.deliver(new, self.counters)
        return new

    async def _fetch_pages(self, address: str, start: int) -> list[Fill]:
        """Fills from ``start`` on, following pages (the venue answers at most ``page_size``)."""
        out: list[Fill] = []
        for _ in range(self._max_pages):
            batch = await self._fetch(address, start)
            out.extend(batch)
            if len(batch) < self._page_size:
                break
            newest = max(f.time_ms for f in batch)
            if newest <= start:
                break
            start = newest
        return out

    async def _retrying_fetch(self, address: str, start: int, what: str) -> list[Fill]:
        attempt = 0
        while True:
            try:
                return await self._fetch_pages(address, start)
            except Exception as exc:  # whatever the fetcher raises, the stream retries
                self.counters.fetch_failures += 1
                attempt += 1
                log.warning(f"stream.{what}_failed", address=address, attempt=attempt, error=repr(exc))
                if attempt == 3:
                    self._emit(
                        StreamEvent(
                            "gap", f"{what} of fills failing: {exc!r}"[:300], self._now_ms(), (address,)
                        )
                    )
                await asyncio.sleep(min(self._retry_max, self._retry * 2 ** (attempt - 1)))

    async def _history(self, consumer: FillConsumer, state: _Address, since_ms: int) -> None:
        fills = await self._retrying_fetch(state.address, since_ms, "history")
        held = consumer.holding.pop(state.address, [])
        self._ingest(state, fills, Source.HISTORY, exclude=consumer)
        consumer.deliver(in_position_order([*fills, *held]), self.counters)

    async def _backfill(self, state: _Address) -> None:
        while state.gap_pending and self._addrs.get(state.address) is state:
            state.gap_pending = False
            start = max(0, (state.gap_from or 0) - self._overlap)
            fills = await self._retrying_fetch(state.address, start, "backfill")
            new = self._ingest(state, fills, Source.BACKFILL)
            if not state.gap_pending:
                state.gap_from = None
            detail = f"fetched={len(fills)} new={len(new)} from_ms={start}"
            log.info("stream.backfilled", address=state.address, fetched=len(fills), new=len(new))
            self._emit(StreamEvent("backfilled", detail, self._now_ms(), (state.address,)))

    # ------------------------------------------------------------------ polling

    async def _poll_loop(self) -> None:
        """One task polls every polled address in turn: each every ``poll_interval_secs``, and no more
        than ``poll_max_per_min`` requests in all (venue quirk: userFillsByTime weighs 20+ of the IP's
        1,200/min, so ten addresses every 2 s would spend the whole budget)."""
        while True:
            polled = [s for s in self._addrs.values() if s.mode == "poll"]
            if not polled:
                self._wake.clear()
                await self._wake.wait()
                continue
            state = min(polled, key=lambda s: s.next_poll)
            delay = state.next_poll - time.monotonic()
            if delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            state.next_poll = time.monotonic() + self._poll_interval
            await self._poll_once(state)
            if self._poll_gap:
                await asyncio.sleep(self._poll_gap)

    async def _poll_once(self, state: _Address) -> None:
        if state.primed:
            ref = state.last_time if state.last_time is not None else (state.covered_from or 0)
            start, source = max(0, ref - self._overlap), Source.POLL
        else:
            start, source = max(0, self._now_ms() - self._baseline_window), Source.BASELINE
        self.counters.polls += 1
        try:
            fills = await self._fetch_pages(state.address, start)
        except Exception as exc:  # the next poll starts from the same point: nothing is lost
            self.counters.fetch_failures += 1
            log.warning("stream.poll_failed", address=state.address, error=repr(exc))
            return
        if self._addrs.get(state.address) is not state:
            return
        if source is Source.BASELINE and not state.primed:
            state.covered_from = start
        self._ingest(state, fills, source)
