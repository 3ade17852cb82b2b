"""Start-up reconciliation: what the journal says may be at the venue, checked by cloid before trading.

For each unresolved entry, ``orderStatus`` by cloid:

* **found**: the venue received it. Its outcome (filled size, final state) is recorded; an order still
  resting (a maker order whose watchdog died with the process) is cancelled first. It is never sent again.
  A maker order's taker fallback is an entry of its own (journalled before it was sent), resolved by its
  own cloid like any other. When the process died before the fallback was journalled (the maker order was
  resting, or just cancelled by its watchdog), the watchdog's last step is done now: the unfilled rest goes
  out as the taker fallback (journalled first, same cloid as it would have had) if the follow's settings say
  so and the age rule below allows it. The legs of one decision are resolved in the order they are sent
  (``recovery_order``): a flip's close, maker leg then fallback, before its open.
* **not found**: the venue never received it (the crash came between the journal and the send). A
  reduce-only order is sent now, same cloid, whatever its age: it can only bring us back towards the
  leader, and abandoning it would leave us holding what the leader closed. An opening order is sent if it
  was decided less than ``resend_max_age_ms`` ago, and otherwise abandoned (CANCELED with the reason): the
  leader's position may have moved on since, and the backfill of its later fills follows at once.

A lookup that fails (``TransientError``) leaves the entry for the next start.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog

from hyperfollow.copy.journal import EntryState, OrderOutcome, PendingEntry
from hyperfollow.copy.model import MakerFallback
from hyperfollow.copy.sending import OrderJob, fallback_intent, outcome_of
from hyperfollow.copy.state import CopyEvent, EventKind
from hyperfollow.domain.errors import OrderNotFound, OutcomeUnknown, TransientError
from hyperfollow.domain.model import CancelRequest, Tif
from hyperfollow.execution.router import fallback_cloid, remainder_to_send

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


_LEG_RANK = {"close": 0, "adjust": 1, "open": 2}


def recovery_order(entries: list[PendingEntry]) -> list[PendingEntry]:
    """``entries`` (journal order) in the order to resolve them: decisions in journal order, and the legs of
    one decision (same follower, leader and cause) as they are sent - the close of a flip before its open, a
    maker order before its taker fallback (journalled later than the flip's open, but sent before it)."""
    first: dict[tuple[str, str | None, str], int] = {}
    keys = []
    for i, e in enumerate(entries):
        group = first.setdefault((e.follower, e.leader, e.fill_key), i) if e.fill_key else i
        keys.append((group, _LEG_RANK.get(e.leg, 1), e.tif is not Tif.ALO, i))
    return [entries[k[-1]] for k in sorted(keys)]


async def recover(svc: CopyService) -> list[CopyEvent]:
    """Resolve every unresolved journal entry (see the module docstring); the events of what was done."""
    events: list[CopyEvent] = []
    for entry in recovery_order(await svc.journal.unresolved()):
        if entry.follower not in svc.venues:
            log.warning("copy.unresolved_without_venue", follower=entry.follower, cloid=entry.cloid)
            continue
        try:
            events += await resolve(svc, entry)
        except (TransientError, OutcomeUnknown) as exc:  # leave it for the next start
            log.warning("copy.resolve_failed", cloid=entry.cloid, error=str(exc))
            continue
    return events


async def resolve(svc: CopyService, entry: PendingEntry) -> list[CopyEvent]:
    """Resolve one entry by its cloid; the events of what was done."""
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
            return [
                await svc.sender.execute(job, settings, origin_ms=None, received=None, kind=EventKind.RESENT)
            ]
        limit = svc.config.resend_max_age_ms
        why = f"abandoned at start-up: never received, decided {age} ms ago (limit {limit} ms)"
        outcome = OrderOutcome(entry.cloid, EntryState.CANCELED, Decimal(0), error=why)
        await svc.journal.record_outcome(outcome, now_ms=svc.now_ms())
        log.info("copy.abandoned", follower=entry.follower, cloid=entry.cloid, age_ms=age)
        return [svc.sender.report(job, outcome, None, None, EventKind.ABANDONED)]
    if state.is_open:  # resting with no watchdog any more (it died with the process): take it off
        with contextlib.suppress(OrderNotFound):
            await gateway.cancel(CancelRequest(entry.coin, cloid=entry.cloid))
        state = await gateway.order_status(entry.cloid) or state
    outcome = outcome_of(entry.cloid, state)
    await svc.journal.record_outcome(outcome, now_ms=svc.now_ms())
    log.info("copy.resolved", follower=entry.follower, cloid=entry.cloid, state=outcome.state.value,
             filled=str(outcome.filled_size))  # fmt: skip
    events = [svc.sender.report(job, outcome, None, None, EventKind.RESOLVED)]
    if entry.tif is Tif.ALO:
        resumed = await _resume_fallback(svc, entry, job, outcome.filled_size or Decimal(0))
        events += [resumed] if resumed is not None else []
    return events


async def _resume_fallback(
    svc: CopyService, entry: PendingEntry, job: OrderJob, filled: Decimal
) -> CopyEvent | None:
    """A maker entry found at the venue: send its unfilled rest as the taker fallback, unless the follow
    drops the rest, the rest is not sendable, it is too old for an opening order, or the fallback was
    journalled already (then it is an entry of its own, resolved by its cloid)."""
    follow = svc.follow_of(entry.follower, entry.leader or "")
    if follow is None or follow.settings.maker_fallback is not MakerFallback.TAKER:
        return None
    order = entry.to_order()
    rest = remainder_to_send(order, filled, order.price)
    age = svc.now_ms() - entry.created_ms
    if rest == 0 or not (entry.reduce_only or age <= svc.config.resend_max_age_ms):
        return None
    taker = replace(order, size=rest, tif=Tif.IOC, cloid=fallback_cloid(entry.cloid))
    if not await svc.journal.begin([fallback_intent(job, taker)], now_ms=svc.now_ms()):
        return None
    log.info("copy.fallback_resumed", follower=entry.follower, cloid=taker.cloid, maker=entry.cloid,
             rest=str(rest), age_ms=age)  # fmt: skip
    fallback_job = replace(job, order=taker, reason="start-up: the maker order's taker fallback")
    return await svc.sender.execute(
        fallback_job, follow.settings, origin_ms=None, received=None, kind=EventKind.RESENT
    )
