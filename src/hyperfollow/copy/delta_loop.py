"""Delta sync's shell: on a schedule, for each follow in delta mode, fresh snapshots of the leader and
the follower, ``decide_delta`` with the per-coin times of our last adjustments, then the service's
journal-and-execute path.

The schedule runs on the service's clock (the venue's, accelerated in the demo): the loop wakes every
``delta_tick_secs`` of real time and syncs each follow whose ``delta_interval_secs`` have passed on
that clock. Skips for "within the band" are the normal state of a synced follow and are not logged as
skipped copies (they would fill the skip log every round); every other skip is.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog

from hyperfollow.copy.delta import decide_delta
from hyperfollow.copy.journal import Follow
from hyperfollow.copy.model import CopyMode, Decision, Skip, SkipReason, intents
from hyperfollow.copy.state import CopyEvent, EventKind
from hyperfollow.domain.errors import UnknownInstrument
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
            await self._svc.sleep(self._svc.config.delta_tick_secs)
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
            quiet = [d for d in decision if isinstance(d, Skip) and d.reason is SkipReason.SKIP_IN_BAND]
            if quiet:
                log.debug("copy.in_band", follower=follow.follower, leader=follow.leader,
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
                if intent.coin not in refused:
                    adjusted[intent.coin] = now
            return events

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
        )
