"""Sending a copy: leverage first, then the order (taker IOC, or maker post-only with its watchdog), then
its outcome in the journal, the ledger's flight, a log line and a ``CopyEvent``.

Outcomes: everything filled -> FILLED; part or nothing (the IOC's rest cancelled by the venue, a maker rest
dropped) -> CANCELED with the filled size; refused (``VenueRejected``) -> REJECTED, never sent again;
``OutcomeUnknown`` -> the order is looked up once by cloid, and stays UNKNOWN for the next start-up to resolve
if the venue does not know it yet. A ``TransientError`` after the adapter's own retries means nothing reached
the venue: with ``until_answered`` (a copy of a leader fill) the same order, same cloid, is sent again with a
capped backoff until the venue answers (a maker order only once the venue is seen to hold neither it nor its
taker fallback); without, it is REJECTED.

Setting the leverage is idempotent, so an ``OutcomeUnknown`` there is answered by asking again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

import structlog

from hyperfollow.copy.journal import CopyJournal, EntryState, OrderOutcome
from hyperfollow.copy.model import CopyIntent, FollowSettings, MakerFallback
from hyperfollow.copy.state import CopyEvent, EventHub, EventKind, Ledger
from hyperfollow.domain.errors import OutcomeUnknown, TransientError, VenueRejected
from hyperfollow.domain.ids import cloid_for
from hyperfollow.domain.model import OrderRequest, OrderState, Tif
from hyperfollow.execution.router import ExecutionResult, MakerExecutor, MakerParams, execute_taker
from hyperfollow.ports.venue import Venue

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class OrderJob:
    """One order to execute and what it is for (an intent now, or a journal entry at start-up)."""

    follower: str
    leader: str
    order: OrderRequest
    leg: str
    fill_key: str
    reason: str


class Sender:
    """Executes orders for the followers' venues and reports what became of them."""

    def __init__(
        self,
        venues: Mapping[str, Venue],
        journal: CopyJournal,
        ledger: Ledger,
        hub: EventHub,
        *,
        clock: Callable[[], int],
        monotonic: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        retry_secs: float = 0.5,
        retry_max_secs: float = 30.0,
    ) -> None:
        self.venues = venues
        self.journal = journal
        self.ledger = ledger
        self.hub = hub
        self.now_ms = clock
        self.monotonic = monotonic
        self.sleep = sleep
        self.retry_secs = retry_secs
        self.retry_max_secs = retry_max_secs
        self._leverage: dict[tuple[str, str], tuple[int, bool]] = {}
        self._makers: dict[str, MakerExecutor] = {}
        self._order_times: dict[str, deque[int]] = {}  # follower -> send times (ms), the last minute's
        self._sending: dict[tuple[str, str], int] = {}  # (follower, coin) -> orders awaiting an answer
        # called with the follower when an order's outcome stays unknown (the service reconciles it)
        self.on_unknown: Callable[[str], None] | None = None

    def order_times(self, follower: str, now_ms: int) -> tuple[int, ...]:
        """When the follower's orders went out in the last minute (the gate's order rate)."""
        times = self._order_times.get(follower)
        if times is None:
            return ()
        while times and times[0] <= now_ms - 60_000:
            times.popleft()
        return tuple(times)

    def sending(self, follower: str, coin: str) -> bool:
        """An order for (follower, coin) is out and not answered yet: the venue may hold its fill while the
        ledger does not."""
        return self._sending.get((follower, coin), 0) > 0

    async def ensure_leverage(self, venue: Venue, intent: CopyIntent) -> None:
        key = (intent.follower, intent.coin)
        wanted = (intent.leverage, intent.is_cross)
        if self._leverage.get(key) == wanted:
            return
        for attempt in range(1, LEVERAGE_ATTEMPTS + 1):
            try:
                await venue.gateway.set_leverage(intent.coin, intent.leverage, cross=intent.is_cross)
            except OutcomeUnknown as exc:  # set or not: setting it again is harmless, so ask again
                log.warning("copy.leverage_unknown", follower=intent.follower, coin=intent.coin,
                            attempt=attempt, error=str(exc))  # fmt: skip
                if attempt < LEVERAGE_ATTEMPTS:
                    await self.sleep(backoff_secs(attempt, self.retry_secs, self.retry_max_secs))
                continue
            except (VenueRejected, TransientError) as exc:
                # e.g. switching cross/isolated with a position open: the order goes, at the venue's setting
                log.warning(
                    "copy.leverage_failed", follower=intent.follower, coin=intent.coin, error=str(exc)
                )
                return
            self._leverage[key] = wanted
            log.info("copy.leverage", follower=intent.follower, coin=intent.coin, leverage=intent.leverage,
                     cross=intent.is_cross)  # fmt: skip
            return
        # still unknown: not remembered (the next open asks again); this order goes at the venue's setting
        log.warning(
            "copy.leverage_failed", follower=intent.follower, coin=intent.coin, error="outcome unknown"
        )

    async def execute(
        self,
        job: OrderJob,
        settings: FollowSettings | None,
        *,
        origin_ms: int | None,
        received: float | None,
        kind: EventKind | None = None,
        until_answered: bool = False,
        catch_up: bool = False,
    ) -> CopyEvent:
        """Send the job's order and report its outcome (see the module docstring for ``until_answered``;
        ``catch_up`` labels the event)."""
        order, cloid = job.order, job.order.cloid
        assert cloid is not None
        maker = order.tif is Tif.ALO and settings is not None
        aliases = [cloid_for(cloid, "taker")] if maker else []
        self.ledger.sent(cloid, (job.follower, job.leader, order.coin), order.side, aliases=aliases)
        self._order_times.setdefault(job.follower, deque()).append(self.now_ms())
        busy = (job.follower, order.coin)
        self._sending[busy] = self._sending.get(busy, 0) + 1
        try:
            return await self._execute(
                job,
                settings,
                origin_ms=origin_ms,
                received=received,
                kind=kind,
                until_answered=until_answered,
                catch_up=catch_up,
            )
        finally:
            self._sending[busy] -= 1

    async def _execute(
        self,
        job: OrderJob,
        settings: FollowSettings | None,
        *,
        origin_ms: int | None,
        received: float | None,
        kind: EventKind | None,
        until_answered: bool,
        catch_up: bool,
    ) -> CopyEvent:
        order, cloid = job.order, job.order.cloid
        assert cloid is not None
        venue = self.venues[job.follower]
        maker = order.tif is Tif.ALO and settings is not None
        outcome: OrderOutcome
        result: ExecutionResult | None = None
        attempt = 0
        while True:
            try:
                if maker:
                    assert settings is not None
                    await self.journal.mark_sent(cloid, now_ms=self.now_ms())  # it may rest for seconds
                    result = await self._maker(job.follower).execute(order, _maker_params(settings, order))
                else:
                    result = await execute_taker(venue.gateway, replace(order, tif=Tif.IOC))
                state = EntryState.FILLED if result.filled >= order.size else EntryState.CANCELED
                outcome = OrderOutcome(
                    cloid, state, result.filled, result.avg_price, error=result.reason or None
                )
                self.ledger.acked(cloid, result.filled)
            except OutcomeUnknown as exc:
                outcome = await self._after_unknown(job, exc)
            except VenueRejected as exc:
                outcome = OrderOutcome(cloid, EntryState.REJECTED, error=str(exc))
            except TransientError as exc:
                if not until_answered:
                    outcome = OrderOutcome(cloid, EntryState.REJECTED, error=str(exc))
                elif maker and not await self._unknown_to_venue(job):
                    outcome = await self._after_unknown(job, OutcomeUnknown(str(exc)))
                else:  # nothing reached the venue: the same order again, after a pause
                    attempt += 1
                    delay = backoff_secs(attempt, self.retry_secs, self.retry_max_secs)
                    log.warning("copy.send_retry", follower=job.follower, leader=job.leader,
                                coin=order.coin, cloid=cloid, leg=job.leg, attempt=attempt, retry_secs=delay,
                                error=str(exc))  # fmt: skip
                    await self.sleep(delay)
                    continue
            break
        answered = self.monotonic()  # the venue's answer is in: latency ends here, bookkeeping follows
        if outcome.filled_size == 0 or outcome.state is EntryState.REJECTED:
            self.ledger.settle(cloid)
        await self.journal.record_outcome(outcome, now_ms=self.now_ms())
        return self.report(job, outcome, origin_ms, received, kind, answered=answered, catch_up=catch_up)

    async def _unknown_to_venue(self, job: OrderJob) -> bool:
        """True when the venue holds neither the order nor its taker fallback (sending again is safe)."""
        cloid = job.order.cloid
        assert cloid is not None
        gateway = self.venues[job.follower].gateway
        try:
            for name in (cloid, cloid_for(cloid, "taker")):
                if await gateway.order_status(name) is not None:
                    return False
        except (VenueRejected, TransientError, OutcomeUnknown):
            return False
        return True

    async def _after_unknown(self, job: OrderJob, exc: OutcomeUnknown) -> OrderOutcome:
        """The send's outcome is unknown: ask the venue once by cloid; else leave it for the next start."""
        cloid = job.order.cloid
        assert cloid is not None
        log.warning("copy.unknown", follower=job.follower, cloid=cloid, error=exc.text)
        with contextlib.suppress(VenueRejected, TransientError, OutcomeUnknown):
            state = await self.venues[job.follower].gateway.order_status(cloid)
            if state is not None:
                outcome = outcome_of(cloid, state)
                if outcome.filled_size:
                    self.ledger.acked(cloid, outcome.filled_size)
                return outcome
        if self.on_unknown is not None:
            self.on_unknown(job.follower)
        return OrderOutcome(cloid, EntryState.UNKNOWN, error=exc.text)

    def report(
        self,
        job: OrderJob,
        outcome: OrderOutcome,
        origin_ms: int | None,
        received: float | None,
        kind: EventKind | None,
        *,
        answered: float | None = None,
        catch_up: bool = False,
    ) -> CopyEvent:
        now = self.now_ms()
        filled = outcome.filled_size or Decimal(0)
        if kind is None:
            kind = {
                EntryState.REJECTED: EventKind.REJECTED,
                EntryState.UNKNOWN: EventKind.UNKNOWN,
            }.get(outcome.state) or (
                EventKind.FILLED
                if filled >= job.order.size
                else EventKind.PARTIAL
                if filled > 0
                else EventKind.UNFILLED
            )
        latency = now - origin_ms if origin_ms is not None else None
        end = answered if answered is not None else self.monotonic()
        process = (end - received) * 1000 if received is not None else None
        event = CopyEvent(
            kind, job.follower, job.leader, job.order.coin, now, cloid=job.order.cloid,
            side=job.order.side, size=job.order.size, filled=filled, avg_price=outcome.avg_price, leg=job.leg,
            fill_key=job.fill_key, reason=outcome.error or job.reason, latency_ms=latency, process_ms=process,
            catch_up=catch_up,
        )  # fmt: skip
        name = "copy.rejected" if kind is EventKind.REJECTED else "copy.sent"
        emit = log.warning if kind is EventKind.REJECTED else log.info  # a refusal needs a human to see it
        emit(name, kind=kind.value, follower=job.follower, leader=job.leader, coin=job.order.coin,
             cloid=job.order.cloid, side=job.order.side.value, size=str(job.order.size),
             filled=str(filled), latency_ms=latency, process_ms=process, error=outcome.error,
             catch_up=catch_up)  # fmt: skip
        if filled > 0:
            log.info("copy.filled", follower=job.follower, leader=job.leader, coin=job.order.coin,
                     cloid=job.order.cloid, filled=str(filled), avg_price=str(outcome.avg_price))  # fmt: skip
        self.hub.emit(event)
        return event

    def _maker(self, follower: str) -> MakerExecutor:
        if follower not in self._makers:
            v = self.venues[follower]
            self._makers[follower] = MakerExecutor(v.gateway, v.market, v.account, sleep=self.sleep)
        return self._makers[follower]


LEVERAGE_ATTEMPTS = 3  # an unknown leverage outcome is asked again this many times in all


def backoff_secs(attempt: int, base: float, cap: float) -> float:
    """The pause before retry number ``attempt`` (1, 2, ...): ``base`` doubling each time, at most ``cap``."""
    return float(min(cap, base * 2 ** min(attempt - 1, 30)))


def outcome_of(cloid: str, state: OrderState) -> OrderOutcome:
    """A journal outcome from the venue's ``orderStatus``."""
    filled = state.orig_size if state.status == "filled" else state.orig_size - state.size
    if state.status == "filled":
        status = EntryState.FILLED
    elif state.is_open:
        status = EntryState.ACKED
    elif state.status.lower().endswith("rejected"):
        status = EntryState.REJECTED
    else:
        status = EntryState.CANCELED
    return OrderOutcome(cloid, status, filled, oid=state.oid, error=None if filled else state.status)


def _maker_params(settings: FollowSettings, order: OrderRequest) -> MakerParams:
    return MakerParams(
        offset_bps=settings.maker_offset_bps,
        timeout_secs=float(settings.maker_timeout_secs),
        fallback_to_taker=settings.maker_fallback is MakerFallback.TAKER,
        taker_limit=order.price,
    )
