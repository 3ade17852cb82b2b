"""``ports.OrderGateway`` on Hyperliquid: orders on the venue's grid, batched, and never sent twice blindly.

* **Grid.** Prices are rounded never worse than asked (buys down, sells up), sizes down to whole
  lots, trigger prices to the nearest valid price, all through ``domain.rules``; the wire carries the
  exact strings (``to_wire``), in the SDK's field order (``a b p s r t c``). A size that rounds to
  zero raises ``InvalidSize`` before anything is sent. Perps only (main dex and HIP-3 dexes).
* **Cloids.** Every order carries one: the caller's, else ``cloid_for(account, coin, side, size,
  price, tif, seq)`` with ``seq`` a per-gateway counter started from the wall clock in microseconds
  (so a restarted process never re-derives an earlier order's cloid).
* **Batching.** ``submit_batch``/``cancel_batch`` send one action each (a cancel batch mixing oids
  and cloids sends one ``cancel`` and one ``cancelByCloid``). Concurrent ``submit()`` calls made in
  the same event-loop iteration are coalesced into one ``order`` action: the first schedules a
  flush with ``loop.call_soon``, which runs right after the tasks that were ready in that iteration,
  so nothing waits longer than it would have anyway.
* **OutcomeUnknown.** When an order action's outcome is unknown (timeout, 5xx after sending), each
  order is looked up by cloid (``orderStatus`` of the account): found -> the ack it implies; not
  found -> resent once (same cloid, new nonce); unknown again -> ``OutcomeUnknown(cloids=...)``.
  A cancel with an unknown outcome succeeded if the order is no longer open; if it is, it is
  resent once (an order the venue never saw: ``OrderNotFound``). A grouped (TP/SL) batch of which
  only part is found is not resent in pieces. Modify, leverage, margin and schedule-cancel actions
  are not resolved here: their ``OutcomeUnknown`` reaches the caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

import structlog

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.hyperliquid.budget import AddressBudget
from hyperfollow.adapters.hyperliquid.client import VenueClient
from hyperfollow.adapters.hyperliquid.market import InstrumentDirectory
from hyperfollow.domain.errors import (
    DuplicateCloid,
    InsufficientMargin,
    InvalidPrice,
    InvalidSize,
    IocNotFilled,
    MinNotional,
    OrderNotFound,
    OutcomeUnknown,
    PostOnlyWouldCross,
    ReduceOnlyWouldIncrease,
    TransientError,
    VenueRejected,
)
from hyperfollow.domain.ids import cloid_for, is_cloid
from hyperfollow.domain.model import (
    AckStatus,
    CancelRequest,
    Grouping,
    OrderAck,
    OrderRequest,
    OrderState,
)
from hyperfollow.domain.rules import Instrument, Rounding, quantize_price, quantize_size, to_wire

log = structlog.get_logger(__name__)

Result = OrderAck | VenueRejected

# orderStatus statuses of orders the venue refused after accepting the action -> our error types
_REJECTED_STATUS: dict[str, type[VenueRejected]] = {
    "badAloPxRejected": PostOnlyWouldCross,
    "minTradeNtlRejected": MinNotional,
    "perpMarginRejected": InsufficientMargin,
    "insufficientSpotBalanceRejected": InsufficientMargin,
    "reduceOnlyRejected": ReduceOnlyWouldIncrease,
    "tickRejected": InvalidPrice,
    "badTriggerPxRejected": InvalidPrice,
    "iocCancelRejected": IocNotFilled,
    "marketOrderNoLiquidityRejected": IocNotFilled,
}


@dataclass(frozen=True, slots=True)
class PreparedOrder:
    """An order on the grid, ready for the wire."""

    coin: str
    cloid: str
    wire: dict[str, Any]


def ack_from_state(state: OrderState, cloid: str | None) -> Result:
    """The ack (or rejection) an ``orderStatus`` answer implies for an order whose answer we missed."""
    filled = state.orig_size - state.size
    if state.status == "filled":
        return OrderAck(AckStatus.FILLED, state.oid, cloid, filled_size=state.orig_size)
    if state.status.endswith("Rejected"):
        cls = _REJECTED_STATUS.get(state.status, VenueRejected)
        return cls(f"Order rejected by the venue: {state.status}", cloid=cloid)
    if state.status in ("open", "triggered"):
        return OrderAck(AckStatus.RESTING, state.oid, cloid, filled_size=filled)
    # canceled / marginCanceled / ...: the order was accepted, then ended after filling part or nothing
    if filled > 0:
        return OrderAck(AckStatus.FILLED, state.oid, cloid, filled_size=filled)
    return OrderAck(AckStatus.RESTING, state.oid, cloid)


def order_wire(inst: Instrument, order: OrderRequest, cloid: str) -> dict[str, Any]:
    """The venue's order wire for ``order`` on ``inst`` (exact strings, SDK key order)."""
    px = quantize_price(inst, order.price, Rounding.DOWN if order.is_buy else Rounding.UP)
    sz = quantize_size(inst, order.size, Rounding.DOWN)
    if sz <= 0:
        raise InvalidSize(
            f"Order has zero size after rounding {order.size} {order.coin} to {inst.sz_decimals} decimals.",
            cloid=cloid or None,
        )
    order_type: dict[str, Any]
    if order.trigger is None:
        order_type = {"limit": {"tif": order.tif.value}}
    else:
        trigger_px = quantize_price(inst, order.trigger.price, Rounding.NEAREST)
        order_type = {
            "trigger": {
                "isMarket": order.trigger.is_market,
                "triggerPx": to_wire(trigger_px),
                "tpsl": order.trigger.kind.value,
            }
        }
    return {
        "a": inst.asset,
        "b": order.is_buy,
        "p": to_wire(px),
        "s": to_wire(sz),
        "r": order.reduce_only,
        "t": order_type,
        "c": cloid,
    }


def _normal_cloid(cloid: str) -> str:
    lowered = cloid.lower()
    if not is_cloid(lowered):
        raise ValueError(f"a cloid is 0x + 32 hex digits, got {cloid!r}")
    return lowered


class HyperliquidGateway:
    """Places and manages orders for the configured account (see the module docstring)."""

    def __init__(
        self,
        client: VenueClient,
        instruments: InstrumentDirectory,
        *,
        budget: AddressBudget | None = None,
        seq_start: int | None = None,
    ) -> None:
        self._client = client
        self._instruments = instruments
        self._budget = budget
        self._account = client.config.query_address
        self._seq = time.time_ns() // 1000 if seq_start is None else seq_start
        self._pending: list[tuple[PreparedOrder, asyncio.Future[Result]]] = []
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ preparing

    async def prepare(self, order: OrderRequest) -> PreparedOrder:
        """Put ``order`` on the grid and give it its cloid (raises before anything is sent)."""
        inst = await self._instruments.get(order.coin)
        if order.cloid is not None:
            cloid = _normal_cloid(order.cloid)
            return PreparedOrder(order.coin, cloid, order_wire(inst, order, cloid))
        wire = order_wire(inst, order, "")  # on the grid once; the cloid derives from its exact strings
        wire["c"] = cloid_for(
            self._account, order.coin, order.side.value, wire["s"], wire["p"], order.tif.value, self._seq
        )
        self._seq += 1
        return PreparedOrder(order.coin, wire["c"], wire)

    async def _reserve(self, n: int, *, cancel: bool = False) -> None:
        if self._budget is not None:
            await self._budget.reserve(n, cancel=cancel)

    # ------------------------------------------------------------------ orders

    async def submit(self, order: OrderRequest) -> OrderAck:
        """Place one order (coalesced with other submits of this loop iteration); raises its rejection."""
        prepared = await self.prepare(order)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append((prepared, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        result = await future
        if isinstance(result, VenueRejected):
            raise result
        return result

    def _flush(self) -> None:
        batch, self._pending, self._flush_scheduled = self._pending, [], False
        if not batch:
            return
        if len(batch) > 1:
            log.debug("venue.submits_coalesced", n=len(batch))
        task = asyncio.get_running_loop().create_task(self._send_coalesced(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_coalesced(self, batch: list[tuple[PreparedOrder, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._place([p for p, _ in batch], Grouping.NONE)
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def submit_batch(
        self, orders: Sequence[OrderRequest], grouping: Grouping = Grouping.NONE
    ) -> list[Result]:
        """Place ``orders`` in one action; one ack or rejection per order, in order. An order refused
        before sending (off-grid size, unknown coin) keeps its slot with its error and the others go;
        in a TP/SL group a refused entry voids the whole group."""
        if not orders:
            return []
        out: list[Result | None] = [None] * len(orders)
        prepared: list[tuple[int, PreparedOrder]] = []
        for i, order in enumerate(orders):
            try:
                prepared.append((i, await self.prepare(order)))
            except VenueRejected as exc:
                if grouping is not Grouping.NONE:
                    raise
                out[i] = exc
        if prepared:
            results = await self._place([p for _, p in prepared], grouping)
            for (i, _), result in zip(prepared, results, strict=True):
                out[i] = result
        return [r for r in out if r is not None]

    def _order_action(self, prepared: Sequence[PreparedOrder], grouping: Grouping) -> dict[str, Any]:
        return {"type": "order", "orders": [p.wire for p in prepared], "grouping": grouping.value}

    async def _send_orders(self, prepared: Sequence[PreparedOrder], grouping: Grouping) -> list[Result]:
        await self._reserve(len(prepared))
        response = await self._client.action(self._order_action(prepared, grouping), len(prepared))
        try:
            return parse.order_statuses(response, [p.cloid for p in prepared])
        except parse.UnexpectedResponse as exc:  # accepted, but we cannot read what happened
            raise OutcomeUnknown(str(exc), cloids=tuple(p.cloid for p in prepared)) from exc

    async def _place(self, prepared: Sequence[PreparedOrder], grouping: Grouping) -> list[Result]:
        try:
            return await self._send_orders(prepared, grouping)
        except OutcomeUnknown as exc:
            return await self._resolve_orders(prepared, grouping, exc)

    async def _resolve_orders(
        self, prepared: Sequence[PreparedOrder], grouping: Grouping, first: OutcomeUnknown
    ) -> list[Result]:
        states = await self._lookup_refs([p.cloid for p in prepared])
        results: dict[int, Result] = {
            i: ack_from_state(s, p.cloid) for i, (p, s) in enumerate(zip(prepared, states, strict=True)) if s
        }
        missing = [i for i in range(len(prepared)) if i not in results]
        log.warning(
            "venue.outcome_unknown_resolving", action="order", found=len(results), missing=len(missing),
            error=first.text,
        )  # fmt: skip
        if missing and results and grouping is not Grouping.NONE:
            # Part of a TP/SL group is on the venue: resending the rest alone would break the group.
            raise OutcomeUnknown(first.text, cloids=tuple(prepared[i].cloid for i in missing))
        if missing:
            resend = [prepared[i] for i in missing]
            log.warning("venue.resend", action="order", cloids=[p.cloid for p in resend])
            try:
                again = await self._send_orders(resend, grouping)
            except OutcomeUnknown as exc:
                raise OutcomeUnknown(exc.text, cloids=tuple(p.cloid for p in resend)) from exc
            for i, result in zip(missing, again, strict=True):
                if isinstance(result, DuplicateCloid):  # the first send landed after our lookup after all
                    state = await self.order_status(prepared[i].cloid)
                    results[i] = ack_from_state(state, prepared[i].cloid) if state else result
                else:
                    results[i] = result
        return [results[i] for i in range(len(prepared))]

    # ------------------------------------------------------------------ modify

    async def modify(self, ref: int | str, order: OrderRequest) -> OrderAck:
        """Replace order ``ref`` (oid or cloid); the new order keeps the old cloid unless one is given."""
        (result,) = await self.modify_batch([(ref, order)])
        if isinstance(result, VenueRejected):
            raise result
        return result

    async def modify_batch(self, items: Sequence[tuple[int | str, OrderRequest]]) -> list[Result]:
        """``batchModify``: one action, one ack or rejection per item. (The single ``modify`` action
        answers a bare ``default`` without the new oid, so even one modify goes as a batch of one.)"""
        modifies: list[dict[str, Any]] = []
        cloids: list[str | None] = []
        for ref, order in items:
            inst = await self._instruments.get(order.coin)
            cloid = (
                _normal_cloid(order.cloid) if order.cloid else (ref.lower() if isinstance(ref, str) else None)
            )
            wire = order_wire(inst, order, cloid or "")
            if order.cloid is None:
                del wire["c"]  # the venue carries the replaced order's cloid over
            modifies.append({"oid": _normal_cloid(ref) if isinstance(ref, str) else ref, "order": wire})
            cloids.append(cloid)
        await self._reserve(len(modifies))
        response = await self._client.action({"type": "batchModify", "modifies": modifies}, len(modifies))
        return parse.order_statuses(response, cloids)

    # ------------------------------------------------------------------ cancels

    async def cancel(self, request: CancelRequest) -> None:
        """Cancel one order; ``OrderNotFound`` when it is no longer open."""
        (error,) = await self.cancel_batch([request])
        if error is not None:
            raise error

    async def cancel_batch(self, requests: Sequence[CancelRequest]) -> list[VenueRejected | None]:
        """One action per kind (by oid, by cloid); None for each cancelled order, else its rejection."""
        out: list[VenueRejected | None] = [None] * len(requests)
        by_oid = [i for i, r in enumerate(requests) if r.oid is not None]
        by_cloid = [i for i, r in enumerate(requests) if r.oid is None]
        for indexes in (by_oid, by_cloid):
            if indexes:
                results = await self._cancel([requests[i] for i in indexes])
                for i, result in zip(indexes, results, strict=True):
                    out[i] = result
        return out

    async def _cancel_action(self, requests: Sequence[CancelRequest]) -> dict[str, Any]:
        if requests[0].oid is not None:
            cancels: list[dict[str, Any]] = [
                {"a": (await self._instruments.get(r.coin)).asset, "o": r.oid} for r in requests
            ]
            return {"type": "cancel", "cancels": cancels}
        cancels = [
            {"asset": (await self._instruments.get(r.coin)).asset, "cloid": _normal_cloid(str(r.cloid))}
            for r in requests
        ]
        return {"type": "cancelByCloid", "cancels": cancels}

    async def _send_cancels(self, requests: Sequence[CancelRequest]) -> list[VenueRejected | None]:
        action = await self._cancel_action(requests)
        await self._reserve(len(requests), cancel=True)
        response = await self._client.action(action, len(requests))
        try:
            return parse.cancel_statuses(response, len(requests))
        except parse.UnexpectedResponse as exc:
            raise OutcomeUnknown(str(exc)) from exc

    async def _cancel(self, requests: Sequence[CancelRequest]) -> list[VenueRejected | None]:
        try:
            return await self._send_cancels(requests)
        except OutcomeUnknown as first:
            return await self._resolve_cancels(requests, first)

    async def _resolve_cancels(
        self, requests: Sequence[CancelRequest], first: OutcomeUnknown
    ) -> list[VenueRejected | None]:
        refs: list[int | str] = [r.oid if r.oid is not None else str(r.cloid) for r in requests]
        states = await self._lookup_refs(refs)
        results: dict[int, VenueRejected | None] = {}
        for i, state in enumerate(states):
            if state is None:
                results[i] = OrderNotFound("Order was never placed, already canceled, or filled.")
            elif not state.is_open:
                results[i] = None  # gone: the cancel (ours or an earlier event) took effect
        still_open = [i for i in range(len(requests)) if i not in results]
        log.warning(
            "venue.outcome_unknown_resolving", action="cancel", still_open=len(still_open), error=first.text
        )
        if still_open:
            log.warning("venue.resend", action="cancel", refs=[refs[i] for i in still_open])
            try:
                again = await self._send_cancels([requests[i] for i in still_open])
            except OutcomeUnknown as exc:
                cloids = tuple(str(r.cloid) for r in (requests[i] for i in still_open) if r.cloid)
                raise OutcomeUnknown(exc.text, cloids=cloids) from exc
            for i, result in zip(still_open, again, strict=True):
                results[i] = result
        return [results[i] for i in range(len(requests))]

    async def _lookup_refs(self, refs: Sequence[int | str]) -> list[OrderState | None]:
        try:
            return list(await asyncio.gather(*(self.order_status(r) for r in refs)))
        except TransientError as exc:  # cannot tell: the caller must reconcile later
            cloids = tuple(r for r in refs if isinstance(r, str))
            raise OutcomeUnknown(f"order lookup failed: {exc.text}", cloids=cloids) from exc

    # ------------------------------------------------------------------ account settings

    async def set_leverage(self, coin: str, leverage: int, *, cross: bool) -> None:
        """``updateLeverage``: cross, or isolated when ``cross`` is False."""
        inst = await self._instruments.get(coin)
        await self._reserve(1)
        action = {"type": "updateLeverage", "asset": inst.asset, "isCross": cross, "leverage": int(leverage)}
        parse.default_ok(await self._client.action(action, 1))

    async def update_isolated_margin(self, coin: str, amount_usd: Decimal) -> None:
        """``updateIsolatedMargin``: ntli = USD * 1e6 (signed; towards zero to whole micro-dollars).

        The SDK always sends ``isBuy: true``; we send the side of the position (one-way mode makes
        it informational, but it is what the field means), true when there is no position.
        """
        inst = await self._instruments.get(coin)
        ntli = int((amount_usd * 1_000_000).to_integral_value(rounding=ROUND_DOWN))
        if ntli == 0:
            raise ValueError(f"margin change too small: {amount_usd} USD")
        state = await self._client.info(
            {"type": "clearinghouseState", "user": self._account, "dex": inst.dex}
        )
        position = parse.account_snapshot(self._account, state or {}).position(coin)
        is_buy = position is None or position.size > 0
        await self._reserve(1)
        action = {"type": "updateIsolatedMargin", "asset": inst.asset, "isBuy": is_buy, "ntli": ntli}
        parse.default_ok(await self._client.action(action, 1))

    async def schedule_cancel(self, at_ms: int | None) -> None:
        """Dead man's switch (``scheduleCancel``); None clears it (the ``time`` key is then omitted)."""
        action: dict[str, Any] = {"type": "scheduleCancel"}
        if at_ms is not None:
            action["time"] = int(at_ms)
        await self._reserve(1)
        parse.default_ok(await self._client.action(action, 1))

    async def order_status(self, ref: int | str) -> OrderState | None:
        """``orderStatus`` of the account by oid (int) or cloid (str); None when the venue never saw it."""
        key: int | str = _normal_cloid(ref) if isinstance(ref, str) else ref
        raw = await self._client.info({"type": "orderStatus", "user": self._account, "oid": key})
        return parse.order_status(raw or {})

    async def close(self) -> None:
        """Wait for coalesced submits already on their way."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
