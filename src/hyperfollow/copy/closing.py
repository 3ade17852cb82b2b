"""Stopping follows: KEEP ends them; CLOSE closes their shares of the account's net positions together
(``lifecycle.plan_close``), then ends them.

Per follower, every follow of the account is locked (in key order) while its shares are planned and
settled, since a settlement moves the opposite share of another follow too. Then, in this order:

1. the follows are no longer active (no copy starts for them);
2. the settlements are recorded: each as a book fill (``lifecycle.settlement_fill``) through the journal,
   which moves the leader's share and realizes its PnL at the mark; an event (SETTLED) each. They go first
   so the closes' own fills, which come later, stay after them in the follower's fill history;
3. the reduce-only closes are journalled and sent (``CopyService.act``), at most the net per coin;
4. the follows are ended in the journal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog

from hyperfollow.copy.journal import Follow
from hyperfollow.copy.lifecycle import Settlement, plan_close, settlement_fill
from hyperfollow.copy.model import StopAction
from hyperfollow.copy.state import CopyEvent, EventKind
from hyperfollow.domain.model import Side

if TYPE_CHECKING:
    from hyperfollow.copy.service import CopyService

log = structlog.get_logger(__name__)

CLOSE_ATTEMPTS = 3
_SHORT = (EventKind.PARTIAL, EventKind.UNFILLED)  # a close that left part of the share open


async def stop_follows(
    svc: CopyService, follows: Sequence[Follow], action: StopAction | None = None
) -> list[CopyEvent]:
    """Stop ``follows``, each with ``action`` or else its own ``stop_action`` (see the module docstring)."""
    by_follower: dict[str, list[Follow]] = {}
    for follow in follows:
        by_follower.setdefault(follow.follower, []).append(follow)
    events: list[CopyEvent] = []
    for follower, mine in sorted(by_follower.items()):
        events += await _stop(svc, follower, mine, action)
    return events


async def _stop(
    svc: CopyService, follower: str, follows: list[Follow], action: StopAction | None
) -> list[CopyEvent]:
    now = svc.now_ms()
    account = {f.key: f for f in svc.active_follows() if f.follower == follower}
    account |= {f.key: f for f in follows}
    async with contextlib.AsyncExitStack() as stack:
        for _, follow in sorted(account.items()):
            await stack.enter_async_context(svc.lock(follow))
        stopping = [f for f in follows if svc.is_active(f)]
        for follow in stopping:
            svc.deactivate(follow)
        actions = {f.leader: action or f.settings.stop_action for f in stopping}
        closing = {f.leader: f for f in stopping if actions[f.leader] is StopAction.CLOSE}
        events = await _close(svc, follower, closing, now) if closing else []
        for follow in stopping:
            await svc.journal.end_follow(follow.follower, follow.leader, actions[follow.leader], now_ms=now)
            log.info("copy.stop", follower=follow.follower, leader=follow.leader,
                     action=actions[follow.leader].value)  # fmt: skip
    return events


async def _close(svc: CopyService, follower: str, closing: dict[str, Follow], now: int) -> list[CopyEvent]:
    """Close the shares of the ``closing`` follows (by leader) of ``follower``'s account; a close the venue
    filled only in part (an IOC that found too little within the slippage cap) is planned again from the
    venue's position, up to ``CLOSE_ATTEMPTS`` times."""
    events: list[CopyEvent] = []
    for attempt in range(CLOSE_ATTEMPTS):
        done = await _close_once(svc, follower, closing, f"{now}" if attempt == 0 else f"{now}:{attempt}")
        events += done
        if not any(e.kind in _SHORT for e in done):
            break
    return events


async def _close_once(
    svc: CopyService, follower: str, closing: dict[str, Follow], stop_ref: str
) -> list[CopyEvent]:
    ledger = svc.ledger
    now = svc.now_ms()
    coins = sorted({c for leader in closing for c in ledger.positions_of(follower, leader)})
    if not coins:
        return []
    positions = {
        coin: {
            leader: ledger.position(follower, leader, coin) for leader in ledger.leaders_for(follower, coin)
        }
        for coin in coins
    }
    snapshot = await svc.follower_snapshot(follower, fresh=True)
    plan = plan_close(
        positions,
        closing=list(closing),
        venue_positions={p.coin: p.size for p in snapshot.positions},
        marks=await svc.marks(),
        instruments=await svc.instruments(set(coins)),
        settings={leader: follow.settings for leader, follow in closing.items()},
        follower=follower,
        stop_ref=stop_ref,
    )
    events = [await _settle(svc, s, i, now) for i, s in enumerate(plan.settlements)]
    for leader, decision in sorted(plan.closes.items()):
        events += await svc.act(closing[leader], decision, origin_ms=None, received=None, cursor=None)
    return events


async def _settle(svc: CopyService, settlement: Settlement, index: int, now: int) -> CopyEvent:
    """Record one settlement (once: a retry of the same stop finds it recorded) and report it."""
    s = settlement
    start = svc.ledger.held(s.follower, s.leader, s.coin).size
    fill = settlement_fill(s, start=start, index=index, now_ms=now)
    recorded = await svc.journal.record_fill(fill, leader=s.leader)
    if recorded is not None:
        svc.ledger.on_fill(fill, recorded)
    why = (
        f"settled against {s.counterparty}'s opposite share: the venue holds neither"
        if s.counterparty is not None
        else "settled at the mark: the venue no longer holds it"
    )
    log.info("copy.settled", follower=s.follower, leader=s.leader, coin=s.coin, change=str(s.change),
             price=str(s.price), counterparty=s.counterparty, ref=s.ref)  # fmt: skip
    event = CopyEvent(
        EventKind.SETTLED, s.follower, s.leader, s.coin, now, side=Side.of(s.change > 0), size=abs(s.change),
        filled=Decimal(0), avg_price=s.price, leg="settle", fill_key=s.ref, reason=why,
    )  # fmt: skip
    svc.hub.emit(event)
    return event
