"""``OrderGateway`` of the simulated account: the engine calls ``exchange/actions.py`` makes for each
action, with the same grid rounding and the same answers as the other adapters (``adapters/sim/convert``
puts the order on the grid, ``adapters/hyperliquid/parse`` reads the engine's statuses, so rejections
carry the venue's texts and map to the same error types). Nothing here can reach the real venue: the
gateway holds the paper session and a ``market_ready`` hook (make sure the outside book of a coin is
known before an order meets it), nothing else.

Every action persists the account before it returns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Any

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.paper.account import PaperSession
from hyperfollow.adapters.sim.convert import checked_cloid, envelope, error_envelope, to_spec
from hyperfollow.domain.errors import VenueRejected, rejection_for
from hyperfollow.domain.model import CancelRequest, Grouping, OrderAck, OrderRequest, OrderState
from hyperfollow.exchange import clearing
from hyperfollow.exchange.engine import OrderSpec

_PARENT_REJECTED = "Parent order was rejected."
MarketReady = Callable[[str], Awaitable[None]]


class PaperGateway:
    """Orders, cancels, leverage and the dead man's switch of the simulated account."""

    def __init__(self, session: PaperSession, market_ready: MarketReady) -> None:
        self._s = session
        self._ready = market_ready

    async def _done(self) -> None:
        self._s.publish()
        await self._s.persist(force=True)

    # ------------------------------------------------------------------ orders

    async def submit(self, order: OrderRequest) -> OrderAck:
        result = (await self.submit_batch([order]))[0]
        if isinstance(result, VenueRejected):
            raise result
        return result

    async def submit_batch(
        self, orders: Sequence[OrderRequest], grouping: Grouping = Grouping.NONE
    ) -> list[OrderAck | VenueRejected]:
        """One ``order`` action: items refused before the engine keep their slot; the rest go together."""
        s = self._s
        for coin in dict.fromkeys(o.coin for o in orders):
            with contextlib.suppress(VenueRejected):  # an unknown coin: refused item by item below
                await self._ready(coin)
        results: list[OrderAck | VenueRejected | None] = [None] * len(orders)
        specs: list[tuple[int, OrderSpec]] = []
        for i, order in enumerate(orders):
            try:
                # a cloid derived for an order without one: the engine's oid counter is saved with the
                # account, so a resumed account never derives one it used before
                spec = to_spec(
                    s.instrument(order.coin), order, account=s.address, seq=s.engine.next_oid + i + 1
                )
            except VenueRejected as exc:
                if grouping is Grouping.NORMAL_TPSL and i == 0:
                    return [exc, *[rejection_for(_PARENT_REJECTED, cloid=o.cloid) for o in orders[1:]]]
                results[i] = exc
                continue
            specs.append((i, spec))
        if specs:
            statuses = s.engine.place_batch(s.address, [spec for _, spec in specs], grouping.value)
            acks = parse.order_statuses(envelope("order", statuses), [spec.cloid for _, spec in specs])
            for (i, _), ack in zip(specs, acks, strict=True):
                results[i] = ack
            await self._done()
        return [r for r in results if r is not None]

    async def modify(self, ref: int | str, order: OrderRequest) -> OrderAck:
        """Cancel-replace: a new oid, the old order's cloid unless ``order.cloid`` names another."""
        s = self._s
        await self._ready(order.coin)
        spec = to_spec(s.instrument(order.coin), order, account=s.address, seq=None)
        key: int | str = checked_cloid(ref) if isinstance(ref, str) else ref
        status = s.engine.modify(s.address, key, spec)
        await self._done()
        result = parse.order_statuses(envelope("order", [status]), [spec.cloid])[0]
        if isinstance(result, VenueRejected):
            raise result
        return result

    # ------------------------------------------------------------------ cancels

    async def cancel(self, request: CancelRequest) -> None:
        error = (await self.cancel_batch([request]))[0]
        if error is not None:
            raise error

    async def cancel_batch(self, requests: Sequence[CancelRequest]) -> list[VenueRejected | None]:
        s = self._s
        out: list[VenueRejected | None] = [None] * len(requests)
        answers: list[Any] = []
        slots: list[int] = []
        for i, request in enumerate(requests):
            try:
                asset = s.instrument(request.coin).asset
            except VenueRejected as exc:
                out[i] = exc
                continue
            slots.append(i)
            if request.cloid is not None:
                answers.append(s.engine.cancel_by_cloid(s.address, asset, checked_cloid(request.cloid)))
            else:
                assert request.oid is not None
                answers.append(s.engine.cancel(s.address, asset, request.oid))
        if answers:
            errors = parse.cancel_statuses(envelope("cancel", answers), len(answers))
            for i, error in zip(slots, errors, strict=True):
                out[i] = error
            await self._done()
        return out

    # ------------------------------------------------------------------ account settings

    async def set_leverage(self, coin: str, leverage: int, *, cross: bool) -> None:
        s = self._s
        await self._default(clearing.update_leverage(s.engine, s.address, s.instrument(coin).asset, cross,
                                                     leverage))  # fmt: skip

    async def update_isolated_margin(self, coin: str, amount_usd: Decimal) -> None:
        """Add (> 0) or remove (< 0) margin, cut to whole micro-USD toward zero (the wire's ``ntli``)."""
        s = self._s
        asset = s.instrument(coin).asset
        ntli = int((amount_usd * 1_000_000).to_integral_value(rounding=ROUND_DOWN))
        if ntli == 0:
            raise ValueError(f"margin change too small: {amount_usd} USD")
        await self._default(clearing.update_isolated_margin(s.engine, s.address, asset, ntli))

    async def schedule_cancel(self, at_ms: int | None) -> None:
        s = self._s
        await self._default(clearing.schedule_cancel(s.engine, s.address, at_ms))

    async def _default(self, error: str | None) -> None:
        await self._done()
        parse.default_ok(error_envelope(error) if error else envelope("default"))

    # ------------------------------------------------------------------ queries

    async def order_status(self, ref: int | str) -> OrderState | None:
        s = self._s
        key: int | str = checked_cloid(ref) if isinstance(ref, str) else ref
        return parse.order_status(s.info({"type": "orderStatus", "user": s.address, "oid": key}))
