"""Start-up reconciliation: what the journal says may be at the venue, checked by cloid before trading.

For each unresolved entry, ``orderStatus`` by cloid:

* **found**: the venue received it. Its outcome (filled size, final state) is recorded; an order still
  resting (a maker order whose watchdog died with the process) is cancelled first. It is never sent again.
  A maker order's taker fallback is an entry of its own (journalled before it was sent), resolved by its
  own cloid like any other.
* **not found**: the venue never received it (the crash came between the journal and the send). A
  reduce-only order is sent now, same cloid, whatever its age: it can only bring us back towards the
  leader, and abandoning it would leave us holding what the leader closed. An opening order is sent if it
  was decided less than ``resend_max_age_ms`` ago, and otherwise abandoned (CANCELED with the reason): the
  leader's position may have moved on since, and the backfill of its later fills follows at once.

A lookup that fails (``TransientError``) leaves the entry for the next start.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog

from hyperfollow.copy.journal import EntryState, OrderOutcome, PendingEntry
from hyperfollow.copy.sending import OrderJob, outcome_of
from hyperfollow.copy.state import CopyEvent, EventKind
from hyperfollow.domain.errors import OrderNotFound, OutcomeUnknown, TransientError
from hyperfollow.domain.model import CancelRequest

if TYPE_CHECKING:
    from hyperfollow.copy.service import CopyService

log = structlog.get_logger(__name__)


async def fills_from(svc: CopyService, follower: str) -> int:
    """Where the follower's fill catch-up starts: its last recorded fill, or the oldest unresolved
    order, or its oldest follow, or now."""
    starts = [e.created_ms for e in await svc.journal.unresolved() if e.follower == follower]
    last = await svc.journal.last_fill_ms(follower)
    if last is not None:
        starts.append(last)
    if not starts:
        starts = [f.created_ms for f in svc.active_follows() if f.follower == follower]
    return min(starts) if starts else svc.now_ms()


async def recover(svc: CopyService) -> list[CopyEvent]:
    """Resolve every unresolved journal entry (see the module docstring); the events of what was done."""
    events: list[CopyEvent] = []
    for entry in await svc.journal.unresolved():
        if entry.follower not in svc.venues:
            log.warning("copy.unresolved_without_venue", follower=entry.follower, cloid=entry.cloid)
            continue
        try:
            event = await resolve(svc, entry)
        except (TransientError, OutcomeUnknown) as exc:  # leave it for the next start
            log.warning("copy.resolve_failed", cloid=entry.cloid, error=str(exc))
            continue
        events.append(event)
    return events


async def resolve(svc: CopyService, entry: PendingEntry) -> CopyEvent:
    """Resolve one entry by its cloid."""
    gateway = svc.venues[entry.follower].gateway
    leader = entry.leader or ""
    follow = svc.follow_of(entry.follower, leader)
    job = OrderJob(entry.follower, leader, entry.to_order(), entry.leg, entry.fill_key or "", "start-up")
    state = await gateway.order_status(entry.cloid)
    if state is None:
        age = svc.now_ms() - entry.created_ms
        if entry.reduce_only or age <= svc.config.resend_max_age_ms:
            # Never received (the crash came before the send): send it now, same cloid.
            log.info("copy.resent", follower=entry.follower, cloid=entry.cloid, age_ms=age, leg=entry.leg)
            settings = follow.settings if follow is not None else None
            return await svc.sender.execute(
                job, settings, origin_ms=None, received=None, kind=EventKind.RESENT
            )
        limit = svc.config.resend_max_age_ms
        why = f"abandoned at start-up: never received, decided {age} ms ago (limit {limit} ms)"
        outcome = OrderOutcome(entry.cloid, EntryState.CANCELED, Decimal(0), error=why)
        await svc.journal.record_outcome(outcome, now_ms=svc.now_ms())
        log.info("copy.abandoned", follower=entry.follower, cloid=entry.cloid, age_ms=age)
        return svc.sender.report(job, outcome, None, None, EventKind.ABANDONED)
    if state.is_open:  # resting with no watchdog any more (it died with the process): take it off
        with contextlib.suppress(OrderNotFound):
            await gateway.cancel(CancelRequest(entry.coin, cloid=entry.cloid))
        state = await gateway.order_status(entry.cloid) or state
    outcome = outcome_of(entry.cloid, state)
    await svc.journal.record_outcome(outcome, now_ms=svc.now_ms())
    log.info("copy.resolved", follower=entry.follower, cloid=entry.cloid, state=outcome.state.value,
             filled=str(outcome.filled_size))  # fmt: skip
    return svc.sender.report(job, outcome, None, None, EventKind.RESOLVED)
