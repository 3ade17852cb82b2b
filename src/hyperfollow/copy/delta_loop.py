"""Delta sync's shell: on a schedule, for each follow in delta mode, fresh snapshots of the leader and
the follower, ``decide_delta`` with the per-coin times of our last adjustments, then the service's
journal-and-execute path.

The schedule runs on the service's clock (the venue's, accelerated in the demo): the loop wakes every
``delta_tick_secs`` of real time and syncs each follow whose ``delta_interval_secs`` have passed on
that clock. Skips for "within the band" are the normal state of a synced follow and are not logged as
skipped copies (they would fill the skip log every round); nor is a leader position that predates the
follow after its first skip (not joined, or beyond the join guard); every other skip is.

The leader positions that predate the follow are the service's (``CopyService.preexisting``, the set mirror
mode uses), with the side each had when this loop first saw it. A coin leaves the set when we open our
share of it (joined), and when the leader renews its position there (``lifecycle.renews_position``: flat,
closed or turned, seen in its fills since the last check, so a close and re-open between two rounds counts).
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog

from hyperfollow.copy.delta import decide_delta
from hyperfollow.copy.journal import Cursor, Follow
from hyperfollow.copy.lifecycle import renews_position
from hyperfollow.copy.model import CopyMode, Decision, Skip, SkipReason, intents
from hyperfollow.copy.state import CopyEvent, EventKind
from hyperfollow.domain.errors import UnknownInstrument
from hyperfollow.domain.model import AccountSnapshot
from hyperfollow.domain.rules import Instrument

if TYPE_CHECKING:
    from hyperfollow.copy.service import CopyService

log = structlog.get_logger(__name__)


class DeltaLoop:
    """Per-follow delta rounds and the task that schedules them."""

    def __init__(self, service: CopyService) -> None:
        self._svc = service
        self._last_round_ms: dict[tuple[str, str], int] = {}
        # (follower, leader) -> coin -> when we last traded it (cooldown); in memory only, see the report
        self.last_adjust_ms: dict[tuple[str, str], dict[str, int]] = {}
        self._pre_sides: dict[tuple[str, str], dict[str, int]] = {}  # coin -> the leader's side then
        self._told: dict[tuple[str, str], set[tuple[str, SkipReason]]] = {}  # preexisting skips logged
        self._pre_checked: dict[tuple[str, str], Cursor] = {}  # the last leader fill read for them
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="copy.delta")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._svc.clock.sleep(self._svc.config.delta_tick_secs)
            now = self._svc.now_ms()
            due = [
                f
                for f in self.delta_follows()
                if now - self._last_round_ms.get(f.key, -(10**15))
                >= int(f.settings.delta_interval_secs * 1000)
            ]
            for follow in due:
                try:
                    await self.sync(follow)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("copy.delta_failed", follower=follow.follower, leader=follow.leader)

    def delta_follows(self) -> list[Follow]:
        return [f for f in self._svc.active_follows() if f.settings.mode is CopyMode.DELTA]

    async def round(self) -> list[CopyEvent]:
        """One round for every delta follow, now (the schedule calls ``sync`` per follow when due)."""
        events: list[CopyEvent] = []
        for follow in self.delta_follows():
            events.extend(await self.sync(follow))
        return events

    async def sync(self, follow: Follow) -> list[CopyEvent]:
        """One delta round for one follow."""
        svc = self._svc
        async with svc.lock(follow):
            if not svc.is_active(follow):
                return []
            now = svc.now_ms()
            self._last_round_ms[follow.key] = now
            decision = await self._decide(follow, now)
            quiet = [d for d in decision if isinstance(d, Skip) and self._quiet(follow, d)]
            if quiet:
                log.debug("copy.delta_quiet", follower=follow.follower, leader=follow.leader,
                          coins=[s.coin for s in quiet])  # fmt: skip
            decision = [d for d in decision if d not in quiet]
            events = await svc.act(follow, decision, origin_ms=None, received=None, cursor=None)
            adjusted = self.last_adjust_ms.setdefault(follow.key, {})
            # a coin whose every order the venue refused was not adjusted: no cooldown (the next round
            # tries again and reports the rejection again, never a "coin adjusted too recently" skip)
            refused = {e.coin for e in events if e.kind is EventKind.REJECTED} - {
                e.coin for e in events if e.kind is not EventKind.REJECTED
            }
            for intent in intents(decision):
                if intent.coin in refused:
                    continue
                adjusted[intent.coin] = now
                if not intent.reduce_only:  # our share of it is open: its changes are ours to follow
                    self._forget_preexisting(follow, intent.coin)
            return events

    def _quiet(self, follow: Follow, skip: Skip) -> bool:
        """In band, or a preexisting position's skip already logged once."""
        if skip.reason is SkipReason.SKIP_IN_BAND:
            return True
        if skip.reason not in (SkipReason.SKIP_PREEXISTING, SkipReason.SKIP_JOIN_GUARD):
            return False
        told = self._told.setdefault(follow.key, set())
        if (skip.coin, skip.reason) in told:
            return True
        told.add((skip.coin, skip.reason))
        return False

    def _forget_preexisting(self, follow: Follow, coin: str) -> None:
        self._svc.preexisting(follow).discard(coin)
        self._pre_sides.get(follow.key, {}).pop(coin, None)
        self._told[follow.key] = {t for t in self._told.get(follow.key, set()) if t[0] != coin}

    async def _preexisting(self, follow: Follow, leader: AccountSnapshot) -> dict[str, int]:
        """The follow's preexisting coins with the leader's side in each, updated from ``leader`` and from
        the leader's fills since the last check (when they cannot be read, the set stays as it was)."""
        coins = self._svc.preexisting(follow)
        if coins:
            # from the follow's start cursor (after the leader's last fill before it), then from the last read
            seen = self._pre_checked.get(follow.key) or self._svc.cursor_of(follow)
            seen = seen or Cursor(follow.created_ms, "")
            try:
                fills = await self._svc.leader_feed.fills_since(follow.leader, seen.time_ms)
            except Exception as exc:  # keep them preexisting: the safe side, and the next round reads again
                log.warning("copy.delta_leader_fills_failed", leader=follow.leader, error=str(exc))
            else:
                fresh = [f for f in fills if not seen.passed(f)]
                if fresh:
                    self._pre_checked[follow.key] = seen.after(fresh)
                for coin in sorted({f.coin for f in fresh if f.coin in coins and renews_position(f)}):
                    self._forget_preexisting(follow, coin)
        sides = self._pre_sides.setdefault(follow.key, {})
        held = {p.coin: (1 if p.size > 0 else -1) for p in leader.positions if p.size != 0}
        for coin in sorted(coins):
            sides.setdefault(coin, held.get(coin, 0))
            if held.get(coin) != sides[coin]:  # the leader left the coin or turned: what comes is fresh
                self._forget_preexisting(follow, coin)
        return {c: sides[c] for c in sorted(coins)}

    async def _decide(self, follow: Follow, now: int) -> Decision:
        svc = self._svc
        leader = await svc.leader_feed.snapshot(follow.leader)
        follower = await svc.follower_snapshot(follow.follower, fresh=True)
        marks = await svc.marks()
        ours = svc.ledger.positions_of(follow.follower, follow.leader)
        coins = {p.coin for p in leader.positions} | set(ours)
        instruments: dict[str, Instrument] = {}
        for coin in sorted(coins):
            with contextlib.suppress(UnknownInstrument):  # decide_delta skips it as SKIP_UNKNOWN_COIN
                instruments[coin] = await svc.market.instrument(coin)
        return decide_delta(
            leader,
            follower,
            marks=marks,
            instruments=instruments,
            last_adjust_ms=self.last_adjust_ms.get(follow.key, {}),
            now_ms=now,
            settings=follow.settings,
            leader_snapshot_age_ms=max(0, now - leader.time_ms),
            max_snapshot_age_ms=svc.config.max_leader_snapshot_age_ms,
            follower=follow.follower,
            leader=follow.leader,
            follower_positions=ours,
            budget_used_usd=svc.ledger.budget_used(follow.follower, follow.leader, marks)
            if ours
            else Decimal(0),
            preexisting=await self._preexisting(follow, leader),
        )
