"""The stop keeper: one exchange-side trigger stop per open position, so a dead process still has a stop.

For each (account, coin) the keeper holds at most ONE reduce-only market trigger order (``TpSl.STOP_LOSS``)
at the position's native stop (``exits.native_stop_price``), sized to the live position:

* the level goes on the price grid rounded **towards safety** (a long's sell stop up, a short's buy stop
  down), so the venue's stop is never looser than ours;
* it moves only on a material step (``exits.stop_moved_enough``) or when the size (or side) changed: each
  move costs address actions. A move is a ``modify`` (one action; the venue keeps the order's place in
  nothing that matters for a trigger) with a fresh cloid; if the old order is gone (the trigger fired, the
  dead man's switch cancelled it) a new one is placed;
* it is cancelled when the position is flat; new stops and cancels of one account go in one batch each;
* cloids are deterministic, ``cloid_for(account, coin, "stop", epoch)`` with the epoch counting the
  placements of that (account, coin): after a restart :meth:`StopKeeper.adopt` recognises its own orders
  among the open ones by recomputing them (a bounded search of epochs);
* each stop kept is claimed in the order-ownership registry (``core.orders``) as ``Owner("risk", "stop")``
  and released when the keeper lets it go, so no sweep takes it for someone else's;
* actions are counted in a sliding minute: trailing moves beyond ``max_moves_per_min`` are skipped (logged
  ``risk.stop_move_skipped``) to keep the address budget for closes. Placing, resizing and cancelling a
  stop are protection and always go.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import structlog

from hyperfollow.core.orders import OrderOwners, Owner
from hyperfollow.domain.errors import OrderNotFound, TransientError, VenueRejected
from hyperfollow.domain.ids import cloid_for
from hyperfollow.domain.model import CancelRequest, OrderAck, OrderRequest, OrderState, Side, TpSl, Trigger
from hyperfollow.domain.rules import Instrument, Rounding, quantize_price
from hyperfollow.ports.clock import Clock
from hyperfollow.ports.venue import MarketData, OrderGateway
from hyperfollow.risk.exits import stop_moved_enough

log = structlog.get_logger(__name__)

HUNDRED = Decimal(100)
MINUTE_MS = 60_000
ADOPT_EPOCHS = 4096  # how many placements of one (account, coin) a restart still recognises
STOP_OWNER = Owner("risk", "stop")


def stop_cloid(account: str, coin: str, epoch: int) -> str:
    """The cloid of the ``epoch``-th stop placed for (account, coin)."""
    return cloid_for(account.lower(), coin, "stop", epoch)


def stop_trigger_price(inst: Instrument, level: Decimal, *, long: bool) -> Decimal:
    """``level`` on the grid, towards safety: a long's stop up (fires earlier), a short's down."""
    return quantize_price(inst, level, Rounding.UP if long else Rounding.DOWN)


def stop_limit_price(inst: Instrument, trigger: Decimal, *, long: bool, slippage_pct: Decimal) -> Decimal:
    """The worst price the triggered market order accepts (a sell below the trigger, a buy above)."""
    if long:
        return quantize_price(inst, trigger * (1 - slippage_pct / HUNDRED), Rounding.DOWN)
    return quantize_price(inst, trigger * (1 + slippage_pct / HUNDRED), Rounding.UP)


@dataclass(frozen=True, slots=True)
class StopTarget:
    """What the stop of (account, coin) should be: ``size`` signed (0 = flat), ``level`` unquantized."""

    account: str
    coin: str
    size: Decimal
    level: Decimal | None


@dataclass(slots=True)
class StopOrder:
    """A stop we keep on the venue."""

    coin: str
    cloid: str
    epoch: int
    trigger: Decimal
    size: Decimal  # signed like the position it protects
    oid: int | None = None


@dataclass(slots=True)
class SyncReport:
    """What one :meth:`StopKeeper.sync` did (cloids)."""

    placed: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # moves left out to save the address budget
    failed: list[str] = field(default_factory=list)


class StopKeeper:
    """Keeps the native stops of several accounts (``gateways`` by lower-case address)."""

    def __init__(
        self,
        gateways: Mapping[str, OrderGateway],
        market: MarketData,
        *,
        clock: Clock,
        min_step_pct: Decimal = Decimal("0.5"),
        slippage_pct: Decimal = Decimal(10),
        max_moves_per_min: int = 20,
        owners: OrderOwners | None = None,
    ) -> None:
        self._gateways = {a.lower(): g for a, g in gateways.items()}
        self.owners = owners if owners is not None else OrderOwners()
        self._market = market
        self._clock = clock
        self.min_step_pct = min_step_pct
        self.slippage_pct = slippage_pct
        self.max_moves_per_min = max_moves_per_min
        self._stops: dict[tuple[str, str], StopOrder] = {}
        self._epochs: dict[tuple[str, str], int] = {}
        self._actions: dict[str, deque[int]] = {}
        self.actions_sent = 0  # every order action the keeper spent (places, moves, cancels)

    # ------------------------------------------------------------------ reading

    def stop(self, account: str, coin: str) -> StopOrder | None:
        """The stop we keep for (account, coin), or ``None``."""
        return self._stops.get((account.lower(), coin))

    def cloids(self, account: str) -> set[str]:
        """The cloids of ``account``'s live stops (ours: reconciliation must not cancel them)."""
        account = account.lower()
        return {s.cloid for (a, _), s in self._stops.items() if a == account}

    def is_stop(self, account: str, order: OrderState) -> bool:
        """Whether ``order`` is one of our stops (kept now)."""
        kept = self._stops.get((account.lower(), order.coin))
        return kept is not None and order.cloid is not None and order.cloid.lower() == kept.cloid

    def actions_last_minute(self, account: str) -> int:
        q = self._actions.get(account.lower())
        if q is None:
            return 0
        cutoff = self._clock.now_ms() - MINUTE_MS
        while q and q[0] <= cutoff:
            q.popleft()
        return len(q)

    # ------------------------------------------------------------------ restart

    def adopt(self, account: str, orders: Iterable[OrderState]) -> list[OrderState]:
        """Recognise our stops among ``account``'s open orders after a restart (their cloids are recomputed
        for the epochs ``0..ADOPT_EPOCHS``); returns the ones adopted. A second stop for a coin that already
        has one is not adopted (reconciliation then cancels it as an orphan)."""
        account = account.lower()
        adopted: list[OrderState] = []
        for order in orders:
            if order.trigger_price is None or not order.reduce_only or order.cloid is None:
                continue
            key = (account, order.coin)
            if key in self._stops:
                continue
            epoch = self._epoch_of(account, order.coin, order.cloid.lower())
            if epoch is None:
                continue
            protects = order.size if order.side is Side.SELL else -order.size  # a sell stop guards a long
            self._keep(key, StopOrder(order.coin, order.cloid.lower(), epoch, order.trigger_price,
                                      protects, order.oid))  # fmt: skip
            self._epochs[key] = max(self._epochs.get(key, 0), epoch + 1)
            adopted.append(order)
            log.info("risk.stop_adopted", account=account, coin=order.coin, cloid=order.cloid, epoch=epoch)
        return adopted

    @staticmethod
    def _epoch_of(account: str, coin: str, cloid: str) -> int | None:
        for epoch in range(ADOPT_EPOCHS):
            if stop_cloid(account, coin, epoch) == cloid:
                return epoch
        return None

    def forget(self, account: str, coin: str) -> None:
        """Drop our record of a stop the venue no longer holds (it fired, or was cancelled for us)."""
        self._drop((account.lower(), coin))

    def _keep(self, key: tuple[str, str], stop: StopOrder) -> None:
        """``stop`` is the one kept for ``key`` (claimed; the one it replaces released)."""
        old = self._stops.get(key)
        self.owners.claim(stop.cloid, STOP_OWNER)
        self._stops[key] = stop
        if old is not None and old.cloid != stop.cloid:
            self.owners.release(old.cloid, STOP_OWNER)

    def _drop(self, key: tuple[str, str]) -> None:
        old = self._stops.pop(key, None)
        if old is not None:
            self.owners.release(old.cloid, STOP_OWNER)

    # ------------------------------------------------------------------ syncing

    async def sync(self, targets: Sequence[StopTarget]) -> SyncReport:
        """Bring the venue's stops to ``targets``: place, move (modify), cancel. Batches per account."""
        report = SyncReport()
        places: dict[str, list[tuple[StopOrder, OrderRequest]]] = {}
        cancels: dict[str, list[StopOrder]] = {}
        for target in targets:
            account = target.account.lower()
            key = (account, target.coin)
            kept = self._stops.get(key)
            if target.size == 0 or target.level is None:
                if kept is not None:
                    cancels.setdefault(account, []).append(kept)
                continue
            inst = await self._market.instrument(target.coin)
            long = target.size > 0
            trigger = stop_trigger_price(inst, target.level, long=long)
            if kept is None:
                new = self._next(account, target.coin, trigger, target.size)
                places.setdefault(account, []).append((new, self._request(inst, new)))
                continue
            resized = kept.size != target.size
            if not resized and (
                trigger == kept.trigger or not stop_moved_enough(kept.trigger, trigger, self.min_step_pct)
            ):
                continue
            if not resized and self.actions_last_minute(account) >= self.max_moves_per_min:
                log.info("risk.stop_move_skipped", account=account, coin=target.coin, old=str(kept.trigger),
                         new=str(trigger), reason="address budget")  # fmt: skip
                report.skipped.append(kept.cloid)
                continue
            await self._move(account, inst, kept, trigger, target.size, report)
        for account, items in places.items():
            await self._place(account, items, report)
        for account, stops in cancels.items():
            await self._cancel(account, stops, report)
        return report

    def _next(self, account: str, coin: str, trigger: Decimal, size: Decimal) -> StopOrder:
        key = (account, coin)
        epoch = self._epochs.get(key, 0)
        self._epochs[key] = epoch + 1
        return StopOrder(coin, stop_cloid(account, coin, epoch), epoch, trigger, size)

    def _request(self, inst: Instrument, stop: StopOrder) -> OrderRequest:
        long = stop.size > 0
        return OrderRequest(
            stop.coin, Side.SELL if long else Side.BUY, abs(stop.size),
            stop_limit_price(inst, stop.trigger, long=long, slippage_pct=self.slippage_pct),
            reduce_only=True, cloid=stop.cloid, trigger=Trigger(stop.trigger, TpSl.STOP_LOSS, is_market=True),
        )  # fmt: skip

    def _count(self, account: str, n: int) -> None:
        now = self._clock.now_ms()
        q = self._actions.setdefault(account, deque())
        q.extend([now] * n)
        self.actions_sent += n

    async def _place(
        self, account: str, items: list[tuple[StopOrder, OrderRequest]], report: SyncReport
    ) -> None:
        self._count(account, len(items))
        try:
            results: list[OrderAck | VenueRejected] = await self._gateways[account].submit_batch(
                [request for _, request in items]
            )
        except (VenueRejected, TransientError) as exc:
            log.warning("risk.stop_place_failed", account=account, error=str(exc))
            report.failed.extend(stop.cloid for stop, _ in items)
            return
        for (stop, _), result in zip(items, results, strict=True):
            if isinstance(result, VenueRejected):
                log.warning("risk.stop_place_failed", account=account, coin=stop.coin, error=str(result))
                report.failed.append(stop.cloid)
                continue
            stop.oid = result.oid
            self._keep((account, stop.coin), stop)
            report.placed.append(stop.cloid)
            log.info("risk.stop_placed", account=account, coin=stop.coin, trigger=str(stop.trigger),
                     size=str(stop.size), cloid=stop.cloid)  # fmt: skip

    async def _move(
        self, account: str, inst: Instrument, kept: StopOrder, trigger: Decimal, size: Decimal,
        report: SyncReport,
    ) -> None:  # fmt: skip
        new = self._next(account, kept.coin, trigger, size)
        self._count(account, 1)
        try:
            ack = await self._gateways[account].modify(kept.cloid, self._request(inst, new))
        except VenueRejected as exc:
            # The old stop is gone (fired, or cancelled by the dead man's switch): place it afresh.
            log.info("risk.stop_move_replaced", account=account, coin=kept.coin, error=str(exc))
            self._drop((account, kept.coin))
            await self._place(account, [(new, self._request(inst, new))], report)
            return
        except TransientError as exc:
            log.warning("risk.stop_move_failed", account=account, coin=kept.coin, error=str(exc))
            report.failed.append(kept.cloid)
            return
        new.oid = ack.oid
        self._keep((account, kept.coin), new)
        report.moved.append(new.cloid)
        log.info("risk.stop_moved", account=account, coin=kept.coin, old=str(kept.trigger), new=str(trigger),
                 size=str(size), cloid=new.cloid)  # fmt: skip

    async def _cancel(self, account: str, stops: list[StopOrder], report: SyncReport) -> None:
        self._count(account, len(stops))
        try:
            errors = await self._gateways[account].cancel_batch(
                [CancelRequest(s.coin, cloid=s.cloid) for s in stops]
            )
        except (VenueRejected, TransientError) as exc:
            log.warning("risk.stop_cancel_failed", account=account, error=str(exc))
            report.failed.extend(s.cloid for s in stops)
            return
        for stop, error in zip(stops, errors, strict=True):
            if error is not None and not isinstance(error, OrderNotFound):
                log.warning("risk.stop_cancel_failed", account=account, coin=stop.coin, error=str(error))
                report.failed.append(stop.cloid)
                continue
            self._drop((account, stop.coin))  # cancelled, or already gone: either way not there
            report.cancelled.append(stop.cloid)
            log.info("risk.stop_cancelled", account=account, coin=stop.coin, cloid=stop.cloid)
