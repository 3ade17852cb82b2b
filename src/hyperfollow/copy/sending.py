"""Sending a copy: leverage first, then the order (taker IOC, or maker post-only with its watchdog), then
its outcome in the journal, the ledger's flight, a log line and a ``CopyEvent``.

Outcomes: everything filled -> FILLED; part or nothing (the IOC's rest cancelled by the venue, a maker rest
dropped) -> CANCELED with the filled size; refused (``VenueRejected``) -> REJECTED, never sent again;
``OutcomeUnknown`` -> the order is looked up by cloid, and stays UNKNOWN for the next start-up to resolve
if the venue does not know it yet. A ``TransientError`` after the adapter's own retries means nothing reached
the venue: with ``until_answered`` (a copy of a leader fill) the same order, same cloid, is sent again with a
capped backoff until the venue answers (a maker order only once the venue is seen to hold neither it nor its
taker fallback); without, it is REJECTED.

A maker copy is two orders: the post-only leg (its intent's cloid) and, after the timeout, the taker
fallback (``fallback_cloid``). The fallback is journalled as an entry of its own (same follower, leader, leg
and cause) *before* it is sent, so its fills are attributed to the leader after a restart and a start-up
resolves it by its own cloid. Each leg's entry records what that order did; the event reports the copy as a
whole. After ``OutcomeUnknown`` both legs are looked up.

Setting the leverage is idempotent, so an ``OutcomeUnknown`` there is answered by asking again.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import cast

import structlog

from hyperfollow.copy.journal import CopyJournal, EntryState, OrderOutcome
from hyperfollow.copy.model import CopyIntent, FollowSettings, Leg, MakerFallback
from hyperfollow.copy.state import CopyEvent, EventHub, EventKind, Ledger
from hyperfollow.domain.errors import OrderNotFound, OutcomeUnknown, TransientError, VenueRejected
from hyperfollow.domain.model import CancelRequest, OrderRequest, OrderState, Tif
from hyperfollow.execution.router import (
    ExecutionResult,
    MakerExecutor,
    MakerParams,
    execute_taker,
    fallback_cloid,
)
from hyperfollow.ports.clock import Clock
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
        clock: Clock,
        retry_secs: float = 0.5,
        retry_max_secs: float = 30.0,
    ) -> None:
        self.venues = venues
        self.journal = journal
        self.ledger = ledger
        self.hub = hub
        self.clock = clock
        self.now_ms = clock.now_ms
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
                    await self.clock.sleep(backoff_secs(attempt, self.retry_secs, self.retry_max_secs))
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
        aliases = [fallback_cloid(cloid)] if maker else []
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
        outcome: OrderOutcome  # the copy as a whole (both legs of a maker copy): the event's
        legs: list[OrderOutcome]  # what each order did: the journal's, one per cloid
        fallback: list[OrderRequest] = []  # the maker copy's taker fallback, once journalled

        async def journal_fallback(taker: OrderRequest) -> bool:
            new = await self.journal.begin([fallback_intent(job, taker)], now_ms=self.now_ms())
            fallback.extend([taker] if new else [])
            return bool(new)

        attempt = 0
        while True:
            try:
                if maker:
                    assert settings is not None
                    await self.journal.mark_sent(cloid, now_ms=self.now_ms())  # it may rest for seconds
                    result = await self._maker(job.follower).execute(
                        order, _maker_params(settings, order), before_fallback=journal_fallback
                    )
                else:
                    result = await execute_taker(venue.gateway, replace(order, tif=Tif.IOC))
                state = EntryState.FILLED if result.filled >= order.size else EntryState.CANCELED
                outcome = OrderOutcome(
                    cloid, state, result.filled, result.avg_price, error=result.reason or None
                )
                legs = _leg_outcomes(cloid, order.size, result)
                self.ledger.acked(cloid, result.filled)
            except OutcomeUnknown as exc:
                outcome, legs = await self._after_unknown(job, exc, fallback[0] if fallback else None)
            except TransientError as exc:
                if until_answered and not fallback and (not maker or await self._unknown_to_venue(job)):
                    # nothing reached the venue: the same order again, after a pause
                    attempt += 1
                    delay = backoff_secs(attempt, self.retry_secs, self.retry_max_secs)
                    log.warning("copy.send_retry", follower=job.follower, leader=job.leader,
                                coin=order.coin, cloid=cloid, leg=job.leg, attempt=attempt, retry_secs=delay,
                                error=str(exc))  # fmt: skip
                    await self.clock.sleep(delay)
                    continue
                if until_answered and maker and not fallback:  # the maker order is at the venue: resolve it
                    outcome, legs = await self._after_unknown(job, OutcomeUnknown(str(exc)), None)
                else:
                    outcome, legs = await self._after_refusal(job, exc, fallback[0] if fallback else None)
            except VenueRejected as exc:
                outcome, legs = await self._after_refusal(job, exc, fallback[0] if fallback else None)
            break
        answered = self.clock.monotonic()  # the venue's answer is in: latency ends here, bookkeeping follows
        if outcome.filled_size == 0 or outcome.state is EntryState.REJECTED:
            self.ledger.settle(cloid)
        for leg in legs:
            await self.journal.record_outcome(leg, now_ms=self.now_ms())
        return self.report(job, outcome, origin_ms, received, kind, answered=answered, catch_up=catch_up)

    async def _unknown_to_venue(self, job: OrderJob) -> bool:
        """True when the venue holds neither the order nor its taker fallback (sending again is safe)."""
        cloid = job.order.cloid
        assert cloid is not None
        gateway = self.venues[job.follower].gateway
        try:
            for name in (cloid, fallback_cloid(cloid)):
                if await gateway.order_status(name) is not None:
                    return False
        except (VenueRejected, TransientError, OutcomeUnknown):
            return False
        return True

    async def _after_unknown(
        self, job: OrderJob, exc: OutcomeUnknown, fallback: OrderRequest | None
    ) -> tuple[OrderOutcome, list[OrderOutcome]]:
        """The send's outcome is unknown: ask the venue once by cloid for each leg (the order, and a maker
        copy's taker fallback when it was journalled); what it does not know yet stays UNKNOWN for the next
        start to resolve. A maker order found resting has lost its watchdog: it is cancelled first."""
        cloid = job.order.cloid
        assert cloid is not None
        log.warning("copy.unknown", follower=job.follower, cloid=cloid, error=exc.text)
        cloids = [cloid] + ([fallback.cloid] if fallback is not None and fallback.cloid else [])
        legs = [await self._look_up(job, c, cancel_open=job.order.tif is Tif.ALO) for c in cloids]
        found = [leg for leg in legs if leg is not None]
        filled = sum((leg.filled_size or Decimal(0) for leg in found), Decimal(0))
        if filled:
            self.ledger.acked(cloid, filled)
        unknown = [OrderOutcome(c, EntryState.UNKNOWN, error=exc.text) for c in cloids]
        out = [leg or u for leg, u in zip(legs, unknown, strict=True)]
        if len(found) < len(legs):
            if self.on_unknown is not None:
                self.on_unknown(job.follower)
            return OrderOutcome(cloid, EntryState.UNKNOWN, filled, error=exc.text), out
        if len(found) == 1:
            return found[0], out
        state = EntryState.FILLED if filled >= job.order.size else EntryState.CANCELED
        return OrderOutcome(cloid, state, filled, error=None if filled else exc.text), out

    async def _after_refusal(
        self, job: OrderJob, exc: VenueRejected | TransientError, fallback: OrderRequest | None
    ) -> tuple[OrderOutcome, list[OrderOutcome]]:
        """Refused (nothing reached the venue). When it was a maker copy's taker fallback, the maker order
        before it did go out: what it filled is read back by cloid (else the next start resolves it)."""
        cloid = job.order.cloid
        assert cloid is not None
        refused = OrderOutcome(cloid, EntryState.REJECTED, error=str(exc))
        if fallback is None or fallback.cloid is None:
            return refused, [refused]
        rejected = OrderOutcome(fallback.cloid, EntryState.REJECTED, error=str(exc))
        maker = await self._look_up(job, cloid, cancel_open=True)
        if maker is None:
            return OrderOutcome(cloid, EntryState.UNKNOWN, error=str(exc)), [rejected]
        filled = maker.filled_size or Decimal(0)
        if filled:
            self.ledger.acked(cloid, filled)
        whole = OrderOutcome(cloid, EntryState.CANCELED, filled, maker.avg_price, error=str(exc))
        return (whole if filled else refused), [maker, rejected]

    async def _look_up(self, job: OrderJob, cloid: str, *, cancel_open: bool) -> OrderOutcome | None:
        """The order ``cloid`` as the venue has it (None: not known yet, or the lookup failed)."""
        gateway = self.venues[job.follower].gateway
        with contextlib.suppress(VenueRejected, TransientError, OutcomeUnknown):
            state = await gateway.order_status(cloid)
            if state is not None and state.is_open and cancel_open:
                with contextlib.suppress(OrderNotFound):
                    await gateway.cancel(CancelRequest(job.order.coin, cloid=cloid))
                state = await gateway.order_status(cloid) or state
            if state is not None:
                return outcome_of(cloid, state)
        return None

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
        end = answered if answered is not None else self.clock.monotonic()
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
            # the maker timeout runs on the service's clock, like every other timeout of the service
            self._makers[follower] = MakerExecutor(v.gateway, v.market, v.account, clock=self.clock)
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


def fallback_intent(job: OrderJob, taker: OrderRequest) -> CopyIntent:
    """The journal entry of a maker copy's taker fallback: the same copy (follower, leader, leg, cause), its
    own cloid, the rest's size at the slippage cap, IOC."""
    assert taker.cloid is not None
    # leverage was set for the maker leg (the journal does not keep it)
    return CopyIntent(
        follower=job.follower, leader=job.leader, coin=taker.coin, side=taker.side, size=taker.size,
        reduce_only=taker.reduce_only, leg=cast(Leg, job.leg), limit_price=taker.price, tif=Tif.IOC,
        leverage=0, is_cross=True, cloid=taker.cloid, reason=f"{job.reason} (maker fallback)",
        fill_key=job.fill_key,
    )  # fmt: skip


def _leg_outcomes(cloid: str, size: Decimal, result: ExecutionResult) -> list[OrderOutcome]:
    """The journal outcome of each order an execution sent: the first (maker or taker) and the fallback."""
    filled, avg = result.first_leg
    fb = result.fallback
    first_state = EntryState.FILLED if filled >= size else EntryState.CANCELED
    first_error = (result.reason or None) if fb is None else None
    legs = [OrderOutcome(cloid, first_state, filled, avg, error=first_error)]
    if fb is not None:
        fb_cloid = fallback_cloid(cloid)
        fb_state = EntryState.FILLED if fb.filled >= fb.requested else EntryState.CANCELED
        legs.append(OrderOutcome(fb_cloid, fb_state, fb.filled, fb.avg_price, error=fb.reason or None))
    return legs


def _maker_params(settings: FollowSettings, order: OrderRequest) -> MakerParams:
    return MakerParams(
        offset_bps=settings.maker_offset_bps,
        timeout_secs=float(settings.maker_timeout_secs),
        fallback_to_taker=settings.maker_fallback is MakerFallback.TAKER,
        taker_limit=order.price,
    )
