"""Dead man's switch: keep the venue's ``scheduleCancel`` pushed into the future while we are healthy.

If the process dies, hangs, or stops being healthy (stale data, a lost stream), the renewals stop and the
venue cancels every open order of the account at the scheduled time by itself: resting entries cannot fill
while nobody watches them. Exchange-side stop orders are orders too and would be cancelled with them, so the
stop keeper re-places them when we come back (reconciliation at start-up does).

The venue wants the time at least 5 s ahead and counts the triggers per day (10 on Hyperliquid): the window
(default 60 s) and the renewal period (default 20 s) keep two renewals of slack. On a clean shutdown the
switch is cleared, so a planned stop does not spend one of the day's triggers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from hyperfollow.domain.errors import TransientError, VenueRejected
from hyperfollow.ports.clock import Clock
from hyperfollow.ports.venue import OrderGateway

log = structlog.get_logger(__name__)

MIN_AHEAD_MS = 5_000


class DeadMansSwitch:
    """Renews ``scheduleCancel`` every ``renew_every_ms`` to ``now + window_ms`` while ``healthy()``."""

    def __init__(
        self,
        gateway: OrderGateway,
        *,
        clock: Clock,
        healthy: Callable[[], bool] = lambda: True,
        window_ms: int = 60_000,
        renew_every_ms: int = 20_000,
    ) -> None:
        if window_ms < MIN_AHEAD_MS + renew_every_ms:
            raise ValueError("the window must exceed the renewal period by the venue's 5 s minimum")
        self._gateway = gateway
        self._clock = clock
        self._healthy = healthy
        self.window_ms = window_ms
        self.renew_every_ms = renew_every_ms
        self._task: asyncio.Task[None] | None = None
        self.scheduled_ms: int | None = None

    async def renew(self) -> bool:
        """One renewal; False (and nothing sent) when unhealthy, so the switch runs out."""
        if not self._healthy():
            log.warning("risk.deadman_not_renewed", scheduled_ms=self.scheduled_ms)
            return False
        at = self._clock.now_ms() + self.window_ms
        try:
            await self._gateway.schedule_cancel(at)
        except (VenueRejected, TransientError) as exc:
            log.warning("risk.deadman_renew_failed", error=str(exc), scheduled_ms=self.scheduled_ms)
            return False
        self.scheduled_ms = at
        return True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="risk.deadman")

    async def _run(self) -> None:
        while True:
            await self.renew()
            await self._clock.sleep(self.renew_every_ms / 1000)

    async def stop(self, *, clear: bool = True) -> None:
        """Stop renewing; ``clear`` removes the scheduled cancel (a planned shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if clear and self.scheduled_ms is not None:
            with contextlib.suppress(VenueRejected, TransientError):
                await self._gateway.schedule_cancel(None)
            log.info("risk.deadman_cleared")
            self.scheduled_ms = None
