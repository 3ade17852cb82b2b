"""Taker and maker execution over the venue ports.

* **Taker**: one IOC at the caller's worst accepted price (its slippage cap). Whatever does not fill at
  once is cancelled by the venue.
* **Maker**: a post-only (ALO) order at the touch, moved away from the spread by a protective offset,
  then watched. Unfilled after ``timeout_secs`` it is cancelled, and the rest is either dropped or sent
  as a taker IOC at the slippage cap, by setting. A post-only that would cross (the book moved) is re-priced
  once on a fresh book before falling back.

The pure parts (``maker_price``, ``remainder_to_send``) are separate from the async shell. Every order keeps
a deterministic cloid: the maker leg uses the caller's, the taker fallback ``fallback_cloid(cloid)``, so a
restart re-derives the same ids and a journal can recognise them. The caller journals the fallback before it
goes out (``before_fallback``): an order the venue may hold is always one the journal knows.

The watchdog runs on the ``Clock`` it is given: it polls with the clock's ``sleep`` and measures its timeout
on the clock's time (``now_ms``, the caller's: the venue's in an accelerated demo), so that a maker order's
timeout and every other timeout of the caller run on one clock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from decimal import Decimal

import structlog

from hyperfollow.domain.errors import IocNotFilled, OrderNotFound, PostOnlyWouldCross
from hyperfollow.domain.ids import cloid_for
from hyperfollow.domain.model import AckStatus, CancelRequest, L2Book, OrderRequest, Side, Tif
from hyperfollow.domain.rules import MIN_ORDER_VALUE, Instrument, Rounding, quantize_price
from hyperfollow.ports.clock import Clock
from hyperfollow.ports.venue import AccountState, MarketData, OrderGateway

log = structlog.get_logger(__name__)

BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class MakerParams:
    """How a maker order is placed and watched."""

    offset_bps: Decimal = Decimal(0)  # away from the spread: a buy rests this far below the best bid
    timeout_secs: float = 5.0
    poll_secs: float = 0.25
    fallback_to_taker: bool = True  # else the unfilled rest is dropped
    taker_limit: Decimal | None = None  # worst price of the taker fallback (the slippage cap)


def fallback_cloid(cloid: str) -> str:
    """The cloid of the taker fallback of the maker order ``cloid``."""
    return cloid_for(cloid, "taker")


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """What an execution did: how much filled, at what average, and what was left undone. A maker execution
    that fell back to a taker order carries that leg's own result in ``fallback`` (totals include it)."""

    requested: Decimal
    filled: Decimal
    avg_price: Decimal | None
    style: str  # "taker", "maker", "maker+taker"
    unfilled: Decimal  # not filled and no longer working (dropped, or the IOC found no one)
    reason: str = ""
    fallback: ExecutionResult | None = None
    first_avg_price: Decimal | None = None  # the first leg's own average, when there was a fallback

    @property
    def first_leg(self) -> tuple[Decimal, Decimal | None]:
        """(filled, average price) of the first leg: the maker order, or the only order."""
        if self.fallback is None:
            return self.filled, self.avg_price
        return self.filled - self.fallback.filled, self.first_avg_price

    @property
    def complete(self) -> bool:
        return self.unfilled == 0


# ---------------------------------------------------------------- pure parts


def maker_price(book: L2Book, side: Side, offset_bps: Decimal, inst: Instrument) -> Decimal | None:
    """Post-only price: the same-side touch moved ``offset_bps`` away from the spread, on the grid
    (buys rounded down, sells up, so the offset never shrinks). None when that side of the book is empty."""
    touch = book.best_bid if side is Side.BUY else book.best_ask
    if touch is None:
        return None
    factor = (1 - offset_bps / BPS) if side is Side.BUY else (1 + offset_bps / BPS)
    rounding = Rounding.DOWN if side is Side.BUY else Rounding.UP
    return quantize_price(inst, touch * factor, rounding)


def remainder_to_send(order: OrderRequest, filled: Decimal, reference_px: Decimal) -> Decimal:
    """What is left to do after ``filled``; an opening remainder under the venue's minimum is not sendable."""
    rest = order.size - filled
    if rest <= 0:
        return Decimal(0)
    if not order.reduce_only and rest * reference_px < MIN_ORDER_VALUE:
        return Decimal(0)
    return rest


# ---------------------------------------------------------------- async shell


async def execute_taker(gateway: OrderGateway, order: OrderRequest) -> ExecutionResult:
    """One IOC at ``order.price`` (the worst accepted)."""
    ioc = replace(order, tif=Tif.IOC)
    try:
        ack = await gateway.submit(ioc)
    except IocNotFilled as exc:
        return ExecutionResult(order.size, Decimal(0), None, "taker", order.size, exc.text)
    filled = ack.filled_size if ack.status is AckStatus.FILLED else Decimal(0)
    return ExecutionResult(order.size, filled, ack.avg_price, "taker", order.size - filled)


class MakerExecutor:
    """Maker execution with a watchdog, for one account."""

    def __init__(
        self,
        gateway: OrderGateway,
        market: MarketData,
        account: AccountState,
        *,
        clock: Clock,
    ) -> None:
        """``clock`` paces the watchdog and times it out (see the module docstring)."""
        self._gateway = gateway
        self._market = market
        self._account = account
        self._clock = clock

    async def execute(
        self,
        order: OrderRequest,
        params: MakerParams,
        *,
        before_fallback: Callable[[OrderRequest], Awaitable[bool]] | None = None,
    ) -> ExecutionResult:
        """Rest ``order`` post-only near the touch; cancel after the timeout; then drop or take the rest.
        ``before_fallback`` is awaited with the taker order before it is sent: the caller journals it there,
        and False (already journalled: it may be out already) or an exception means it is not sent."""
        if order.cloid is None:
            raise ValueError("maker execution needs a cloid (the watchdog follows the order by it)")
        inst = await self._market.instrument(order.coin)
        placed = await self._place_post_only(order, inst, params.offset_bps)
        filled, avg = Decimal(0), None
        if placed is not None:
            filled = await self._watch(order, params)
            avg = placed if filled else None  # a resting post-only order fills at its own price
        rest = remainder_to_send(order, filled, order.price)
        if rest == 0:
            return ExecutionResult(order.size, filled, avg, "maker", order.size - filled)
        if not params.fallback_to_taker:
            log.info(
                "execution.maker_dropped",
                coin=order.coin,
                cloid=order.cloid,
                filled=str(filled),
                rest=str(rest),
            )
            return ExecutionResult(
                order.size, filled, avg, "maker", order.size - filled, "timeout: rest dropped"
            )
        limit = params.taker_limit if params.taker_limit is not None else order.price
        taker = replace(order, size=rest, price=limit, tif=Tif.IOC, cloid=fallback_cloid(order.cloid))
        if before_fallback is not None and not await before_fallback(taker):
            log.warning("execution.fallback_not_sent", coin=order.coin, cloid=taker.cloid)
            return ExecutionResult(
                order.size, filled, avg, "maker", order.size - filled, "fallback already journalled"
            )
        log.info(
            "execution.maker_fallback", coin=order.coin, cloid=order.cloid, filled=str(filled), rest=str(rest)
        )
        result = await execute_taker(self._gateway, taker)
        total = filled + result.filled
        return ExecutionResult(
            order.size, total, _blend(filled, avg, result.filled, result.avg_price), "maker+taker",
            order.size - total, result.reason, fallback=result, first_avg_price=avg,
        )  # fmt: skip

    async def _place_post_only(
        self, order: OrderRequest, inst: Instrument, offset_bps: Decimal
    ) -> Decimal | None:
        """Rest the ALO order near the touch (re-priced once on a fresh book if it would cross); its price,
        or None when no maker order rests."""
        for _ in range(2):
            book = await self._market.l2_book(order.coin)
            px = maker_price(book, order.side, offset_bps, inst)
            if px is None:
                return None
            px = min(px, order.price) if order.side is Side.BUY else max(px, order.price)  # never worse
            try:
                await self._gateway.submit(replace(order, price=px, tif=Tif.ALO))
                return px
            except PostOnlyWouldCross:
                log.info("execution.maker_repriced", coin=order.coin, cloid=order.cloid, px=str(px))
        return None

    async def _watch(self, order: OrderRequest, params: MakerParams) -> Decimal:
        """Poll the order until it is done or the timeout, cancel what is left; the size that filled."""
        assert order.cloid is not None
        deadline = self._clock.now_ms() / 1000 + params.timeout_secs
        state = await self._gateway.order_status(order.cloid)
        while state is not None and state.is_open and self._clock.now_ms() / 1000 < deadline:
            await self._clock.sleep(params.poll_secs)
            state = await self._gateway.order_status(order.cloid)
        if state is not None and state.is_open:
            with contextlib.suppress(OrderNotFound):  # it filled between the last look and the cancel
                await self._gateway.cancel(CancelRequest(order.coin, cloid=order.cloid))
            state = await self._gateway.order_status(order.cloid)
        if state is None:
            return Decimal(0)
        if state.status == "filled":
            return state.orig_size
        return state.orig_size - state.size


def _blend(a: Decimal, pa: Decimal | None, b: Decimal, pb: Decimal | None) -> Decimal | None:
    total = a + b
    if total == 0:
        return None
    return ((pa or 0) * a + (pb or 0) * b) / total
