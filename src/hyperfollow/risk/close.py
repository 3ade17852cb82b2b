"""Exactly-once close of (account, coin): whoever triggers it (monitor, leader close, manual, circuit
breaker), and however many trigger it at once, the venue sees one reduce-only order.

How: the close runs under a ``CloseLock`` lease on ``close:<account>:<coin>``; under it the position is
read LIVE from the venue (never from our records, which may lag), so a second trigger that waited for the
first finds it flat and succeeds without an order. The order is one reduce-only IOC sized to the live
position (the exact size for a full close), priced at the slippage cap from the mid, with a cloid derived
from (account, coin, the position read, the fraction, the lease's fencing token): a retry after
``OutcomeUnknown`` re-derives the same cloid and is resolved by ``order_status(cloid)`` before anything is
resent, so it is never doubled. Right before sending, the lease is extended: a holder whose lease ran out
(and may have been taken over) learns it there and sends nothing.

When the outcome stays unknown the lease is left to expire instead of being released, so that nobody
closes again before the venue has had ``lease_ttl_ms`` to settle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

import structlog

from hyperfollow.domain.errors import (
    IocNotFilled,
    OutcomeUnknown,
    ReduceOnlyWouldIncrease,
    TransientError,
    VenueRejected,
)
from hyperfollow.domain.ids import cloid_for
from hyperfollow.domain.model import AckStatus, OrderRequest, OrderState, Position, Side, Tif
from hyperfollow.domain.rules import Instrument, Rounding, quantize_price, quantize_size, to_wire
from hyperfollow.ports.clock import Clock
from hyperfollow.ports.venue import AccountState, MarketData, OrderGateway
from hyperfollow.risk.locks import CloseLock, Lease, LockUnavailable

log = structlog.get_logger(__name__)

HUNDRED = Decimal(100)


class ClosePorts(Protocol):
    """The venue roles a close needs (any ``ports.Venue`` has them)."""

    @property
    def gateway(self) -> OrderGateway: ...

    @property
    def market(self) -> MarketData: ...

    @property
    def account(self) -> AccountState: ...


@dataclass(frozen=True, slots=True)
class Ports:
    """``ClosePorts`` put together from separate roles (wrapping one of them, in tests or decorators)."""

    gateway: OrderGateway
    market: MarketData
    account: AccountState


class CloseStatus(StrEnum):
    CLOSED = "closed"  # the reduce-only order filled the whole size asked
    ALREADY_FLAT = "already_flat"  # nothing to close (success: someone, or the native stop, did it)
    PARTIAL = "partial"  # part filled within the slippage cap, the IOC's rest was cancelled
    UNFILLED = "unfilled"  # nothing filled within the slippage cap
    BUSY = "busy"  # another holder kept the lock past our wait, or our lease was taken over
    FAILED = "failed"  # refused or not sent (venue rejection, transient error, lock service down)
    UNKNOWN = "unknown"  # sent, and the venue could not tell us what became of it


@dataclass(frozen=True, slots=True)
class CloseResult:
    """What a close did. ``ok`` means the position (or the fraction asked) is closed."""

    account: str
    coin: str
    reason: str
    status: CloseStatus
    position: Decimal = Decimal(0)  # the live signed size read under the lock (0 when flat or not read)
    requested: Decimal = Decimal(0)  # size of the reduce-only order
    filled: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    cloid: str | None = None
    token: int | None = None  # the lease's fencing token
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status in (CloseStatus.CLOSED, CloseStatus.ALREADY_FLAT)


@dataclass(frozen=True, slots=True)
class CloseSettings:
    slippage_cap_pct: Decimal = Decimal("0.5")  # worst accepted price: mid -/+ this
    lease_ttl_ms: int = 15_000  # a crashed holder blocks closes of its (account, coin) this long at most
    wait_ms: int = 20_000  # how long a trigger waits for another holder before answering BUSY
    resend_after_unknown: int = 1  # resends (same cloid) when the venue never saw the order
    resolve_pause_secs: float = 0.25  # after OutcomeUnknown, give the venue this long before asking


def close_price(inst: Instrument, mid: Decimal, side: Side, slippage_cap_pct: Decimal) -> Decimal:
    """The worst price a close accepts: ``mid`` +/- the cap, on the grid, rounded towards caution."""
    if side is Side.BUY:
        return quantize_price(inst, mid * (1 + slippage_cap_pct / HUNDRED), Rounding.DOWN)
    return quantize_price(inst, mid * (1 - slippage_cap_pct / HUNDRED), Rounding.UP)


def close_size(inst: Instrument, position: Decimal, fraction: Decimal) -> Decimal:
    """Size of a close of ``fraction`` of ``position``: the exact size for a full close; a part to the
    nearest lot, at least one lot and never more than the position."""
    size = abs(position)
    if fraction >= 1:
        return size
    part = quantize_size(inst, size * fraction, Rounding.NEAREST)
    return min(size, max(part, inst.lot))


def close_cloid(account: str, coin: str, position: Position, fraction: Decimal, token: int) -> str:
    """The close order's cloid: the same lease and the same position read give the same id."""
    return cloid_for(
        "risk-close", account, coin, to_wire(position.size), to_wire(position.entry_price),
        to_wire(fraction), token,
    )  # fmt: skip


class ExactlyOnceCloser:
    """Closes positions of the accounts in ``venues`` (by lower-case address) under ``lock``; ``clock`` paces
    the pause before an unknown outcome is looked up."""

    def __init__(
        self,
        venues: Mapping[str, ClosePorts],
        lock: CloseLock,
        settings: CloseSettings | None = None,
        *,
        clock: Clock,
    ) -> None:
        self._venues = {a.lower(): v for a, v in venues.items()}
        self._lock = lock
        self._settings = settings or CloseSettings()
        self._clock = clock

    async def close(
        self, account: str, coin: str, reason: str, fraction: Decimal = Decimal(1)
    ) -> CloseResult:
        """Close ``fraction`` (0 < f <= 1) of the live position; one reduce-only order at most."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        account = account.lower()
        ports = self._venues[account]
        s = self._settings
        base = CloseResult(account, coin, reason, CloseStatus.BUSY)
        try:
            lease = await self._lock.acquire(f"close:{account}:{coin}", s.lease_ttl_ms, wait_ms=s.wait_ms)
        except LockUnavailable as exc:
            return _logged(_with(base, status=CloseStatus.FAILED, error=str(exc)))
        if lease is None:
            return _logged(_with(base, error="another close holds the lock"))
        result = _with(base, status=CloseStatus.UNKNOWN, token=lease.token)
        sending = _Sending()
        try:
            result = await self._close_under(ports, lease, result, fraction, sending)
        except (VenueRejected, TransientError) as exc:  # reading the position or the instrument failed
            result = _with(result, status=CloseStatus.FAILED, error=str(exc))
        except OutcomeUnknown as exc:  # a read that timed out: nothing was sent
            result = _with(result, status=CloseStatus.FAILED, error=exc.text)
        finally:
            # An order that may be in flight keeps the lease until it expires (also when this task is
            # cancelled mid-send); everything else releases at once.
            if not (sending.started and result.status is CloseStatus.UNKNOWN):
                await self._release(lease)
        return _logged(result)

    async def _release(self, lease: Lease) -> None:
        try:
            if not await self._lock.release(lease):
                log.warning("risk.close_lease_lost", key=lease.key, token=lease.token)
        except LockUnavailable as exc:  # it expires on its own
            log.warning("risk.close_release_failed", key=lease.key, token=lease.token, error=str(exc))

    async def _close_under(
        self, ports: ClosePorts, lease: Lease, result: CloseResult, fraction: Decimal, sending: _Sending
    ) -> CloseResult:
        position = await _live_position(ports.account, result.coin)
        if position is None:
            return _with(result, status=CloseStatus.ALREADY_FLAT)
        inst = await ports.market.instrument(result.coin)
        side = Side.SELL if position.is_long else Side.BUY
        size = close_size(inst, position.size, fraction)
        mid = (await ports.market.mids()).get(result.coin) or position.position_value / abs(position.size)
        order = OrderRequest(
            result.coin, side, size, close_price(inst, mid, side, self._settings.slippage_cap_pct), Tif.IOC,
            reduce_only=True, cloid=close_cloid(result.account, result.coin, position, fraction, lease.token),
        )  # fmt: skip
        result = _with(result, position=position.size, requested=size, cloid=order.cloid)
        # The fencing check: a lease that ran out may already be someone else's; then they close, not us.
        try:
            still_ours = await self._lock.extend(lease, self._settings.lease_ttl_ms)
        except LockUnavailable as exc:
            return _with(result, status=CloseStatus.FAILED, error=str(exc))
        if not still_ours:
            return _with(result, status=CloseStatus.BUSY, error="lease lost before sending")
        sending.started = True
        return await self._send(ports, order, result)

    async def _send(self, ports: ClosePorts, order: OrderRequest, result: CloseResult) -> CloseResult:
        assert order.cloid is not None
        for attempt in range(self._settings.resend_after_unknown + 1):
            try:
                ack = await ports.gateway.submit(order)
            except OutcomeUnknown as exc:
                log.warning("risk.close_unknown", account=result.account, coin=order.coin, cloid=order.cloid,
                            attempt=attempt, error=exc.text)  # fmt: skip
                resolved = await self._resolve(ports, order, result)
                if resolved is not None:
                    return resolved
                result = _with(result, status=CloseStatus.UNKNOWN, error=exc.text)
                continue  # the venue never saw it and the position is unchanged: same cloid again
            except IocNotFilled as exc:
                return _with(result, status=CloseStatus.UNFILLED, error=exc.text)
            except ReduceOnlyWouldIncrease as exc:
                # Flat since we read it (the native stop, a liquidation, a close outside hyperfollow).
                if await _live_position(ports.account, order.coin) is None:
                    return _with(result, status=CloseStatus.ALREADY_FLAT)
                return _with(result, status=CloseStatus.FAILED, error=exc.text)
            except (VenueRejected, TransientError) as exc:
                return _with(result, status=CloseStatus.FAILED, error=str(exc))
            filled = ack.filled_size if ack.status is AckStatus.FILLED else Decimal(0)
            return _filled(result, filled, ack.avg_price)
        return result

    async def _resolve(
        self, ports: ClosePorts, order: OrderRequest, result: CloseResult
    ) -> CloseResult | None:
        """After ``OutcomeUnknown``: the order by its cloid; if the venue never saw it, the position must be
        unchanged to resend (None). A changed position means something closed it: report, do not resend."""
        assert order.cloid is not None
        await self._clock.sleep(self._settings.resolve_pause_secs)
        try:
            state = await ports.gateway.order_status(order.cloid)
            if state is not None:
                return _filled(result, _filled_size(state), None)
            now = await _live_position(ports.account, order.coin)
        except (VenueRejected, TransientError, OutcomeUnknown) as exc:
            return _with(result, status=CloseStatus.UNKNOWN, error=f"unresolved: {exc}")
        if now is None:
            return _with(result, status=CloseStatus.ALREADY_FLAT)
        if now.size != result.position:
            return _with(result, status=CloseStatus.UNKNOWN, error=f"position moved to {now.size} meanwhile")
        return None


@dataclass(slots=True)
class _Sending:
    started: bool = False  # the order went (or may have gone) to the venue


async def _live_position(account: AccountState, coin: str) -> Position | None:
    """The venue's position in ``coin``; None when flat."""
    for position in await account.positions():
        if position.coin == coin and position.size != 0:
            return position
    return None


def _filled_size(state: OrderState) -> Decimal:
    if state.status == "filled":
        return state.orig_size
    return state.orig_size - state.size


def _filled(result: CloseResult, filled: Decimal, avg_price: Decimal | None) -> CloseResult:
    status = (
        CloseStatus.CLOSED
        if filled >= result.requested
        else CloseStatus.PARTIAL
        if filled > 0
        else CloseStatus.UNFILLED
    )
    return _with(result, status=status, filled=filled, avg_price=avg_price, error="")


def _with(result: CloseResult, **changes: Any) -> CloseResult:
    return replace(result, **changes)


def _logged(result: CloseResult) -> CloseResult:
    event = log.info if result.ok else log.warning
    event(
        "risk.close", account=result.account, coin=result.coin, reason=result.reason,
        status=result.status.value, position=str(result.position), requested=str(result.requested),
        filled=str(result.filled), avg_price=None if result.avg_price is None else str(result.avg_price),
        cloid=result.cloid, token=result.token, error=result.error or None,
    )  # fmt: skip
    return result
