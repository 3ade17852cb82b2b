"""``OrderGateway`` on the engine in-process: the calls ``exchange/actions.py`` makes for each action,
minus the signature (the account is who we say it is), with the same answers.

Per action: (1) the order is put on the grid here, as the Hyperliquid gateway does before sending
(``convert``); (2) the account must exist and the address budget is charged (``SimSession.authorize``);
(3) the engine method runs; (4) its statuses are wrapped in the venue envelope and parsed by
``adapters/hyperliquid/parse.py``; (5) the engine's events are published to the streams (the
server flushes its WS hub at the same point).

``EngineGateway`` is that shape over any in-process account on an exchange engine; ``SimGateway`` (here) and
the paper adapter's gateway fill in its four hooks: get a coin's market ready, charge the address budget,
number a generated cloid, and finish an action (publish, persist).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Any, Protocol

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.sim.convert import checked_cloid, envelope, error_envelope, to_spec
from hyperfollow.adapters.sim.session import SimSession
from hyperfollow.domain.errors import VenueRejected, rejection_for
from hyperfollow.domain.model import CancelRequest, Grouping, OrderAck, OrderRequest, OrderState
from hyperfollow.domain.rules import Instrument
from hyperfollow.exchange import clearing
from hyperfollow.exchange.engine import Engine, OrderSpec

_PARENT_REJECTED = "Parent order was rejected."  # the engine's text for a normalTpsl child of a bad entry


class EngineSession(Protocol):
    """What a gateway needs of an in-process account: its engine, address, instruments and ``/info``."""

    @property
    def engine(self) -> Engine: ...
    @property
    def address(self) -> str: ...

    def instrument(self, coin: str) -> Instrument: ...
    def info(self, request: Mapping[str, Any]) -> Any: ...


class EngineGateway:
    """Orders, cancels, leverage and the dead man's switch of one account on an engine in-process."""

    def __init__(self, session: EngineSession) -> None:
        self._s = session

    # the hooks
    async def _ready(self, coins: Sequence[str]) -> None:
        """Before an action meets ``coins``' markets (nothing to do by default)."""

    def _authorize(self, kind: str, items: int) -> None:
        """Charge the action to the account (nothing by default)."""

    def _seq(self, index: int) -> int:
        """The number a generated cloid of the ``index``-th order of a batch derives from."""
        raise NotImplementedError

    async def _done(self) -> None:
        """After an action: hand the engine's events on."""
        raise NotImplementedError

    # ------------------------------------------------------------------ orders

    async def submit(self, order: OrderRequest) -> OrderAck:
        """Place one order; a rejection raises its ``VenueRejected`` subclass."""
        result = (await self.submit_batch([order]))[0]
        if isinstance(result, VenueRejected):
            raise result
        return result

    async def submit_batch(
        self, orders: Sequence[OrderRequest], grouping: Grouping = Grouping.NONE
    ) -> list[OrderAck | VenueRejected]:
        """One ``order`` action: items refused before sending keep their slot; the rest go together."""
        s = self._s
        await self._ready(list(dict.fromkeys(o.coin for o in orders)))
        results: list[OrderAck | VenueRejected | None] = [None] * len(orders)
        specs: list[tuple[int, OrderSpec]] = []
        for i, order in enumerate(orders):
            try:
                spec = to_spec(s.instrument(order.coin), order, account=s.address, seq=self._seq(i))
            except VenueRejected as exc:
                if grouping is Grouping.NORMAL_TPSL and i == 0:  # without its entry the bracket is void
                    return [exc, *[rejection_for(_PARENT_REJECTED, cloid=o.cloid) for o in orders[1:]]]
                results[i] = exc
                continue
            specs.append((i, spec))
        if specs:
            self._authorize("order", len(specs))
            statuses = self._place(grouping, [spec for _, spec in specs])
            acks = parse.order_statuses(envelope("order", statuses), [spec.cloid for _, spec in specs])
            for (i, _), ack in zip(specs, acks, strict=True):
                results[i] = ack
            await self._done()
        return [r for r in results if r is not None]

    def _place(self, grouping: Grouping, specs: list[OrderSpec]) -> list[Any]:
        # actions.ExchangeApi.order: the whole batch through place_batch (which links normalTpsl).
        return self._s.engine.place_batch(self._s.address, specs, grouping.value)

    async def modify(self, ref: int | str, order: OrderRequest) -> OrderAck:
        """Cancel-replace (``batchModify`` of one): the new order gets a new oid, and keeps the old
        order's cloid unless ``order.cloid`` names another."""
        s = self._s
        await self._ready([order.coin])
        spec = to_spec(s.instrument(order.coin), order, account=s.address, seq=None)
        key: int | str = checked_cloid(ref) if isinstance(ref, str) else ref
        self._authorize("batchModify", 1)
        status = s.engine.modify(s.address, key, spec)
        await self._done()
        result = parse.order_statuses(envelope("order", [status]), [spec.cloid])[0]
        if isinstance(result, VenueRejected):
            raise result
        return result

    # ------------------------------------------------------------------ cancels

    async def cancel(self, request: CancelRequest) -> None:
        """Cancel one order; ``OrderNotFound`` when it is no longer open."""
        error = (await self.cancel_batch([request]))[0]
        if error is not None:
            raise error

    async def cancel_batch(self, requests: Sequence[CancelRequest]) -> list[VenueRejected | None]:
        """By oid and by cloid in two actions (as on the wire: ``cancel`` and ``cancelByCloid``)."""
        s = self._s
        out: list[VenueRejected | None] = [None] * len(requests)
        for by_cloid in (False, True):
            picked = [(i, r) for i, r in enumerate(requests) if (r.cloid is not None) == by_cloid]
            if not picked:
                continue
            statuses: list[Any] = []
            slots: list[int] = []
            for i, request in picked:
                try:
                    asset = s.instrument(request.coin).asset
                except VenueRejected as exc:
                    out[i] = exc
                    continue
                slots.append(i)
                statuses.append((asset, request))
            if not statuses:
                continue
            self._authorize("cancelByCloid" if by_cloid else "cancel", len(statuses))
            answers = [self._cancel_one(asset, request) for asset, request in statuses]
            for i, error in zip(
                slots, parse.cancel_statuses(envelope("cancel", answers), len(answers)), strict=True
            ):
                out[i] = error
        await self._done()
        return out

    def _cancel_one(self, asset: int, request: CancelRequest) -> Any:
        s = self._s
        if request.cloid is not None:
            return s.engine.cancel_by_cloid(s.address, asset, checked_cloid(request.cloid))
        assert request.oid is not None
        return s.engine.cancel(s.address, asset, request.oid)

    # ------------------------------------------------------------------ account settings

    async def set_leverage(self, coin: str, leverage: int, *, cross: bool) -> None:
        s = self._s
        asset = s.instrument(coin).asset
        self._authorize("updateLeverage", 1)
        await self._default(clearing.update_leverage(s.engine, s.address, asset, cross, leverage))

    async def update_isolated_margin(self, coin: str, amount_usd: Decimal) -> None:
        """Add (> 0) or remove (< 0) margin; the amount is cut to whole micro-USD toward zero (the
        wire carries an integer ``ntli``), so never more is moved than asked."""
        s = self._s
        asset = s.instrument(coin).asset
        ntli = int((amount_usd * 1_000_000).to_integral_value(rounding=ROUND_DOWN))
        if ntli == 0:
            raise ValueError(f"margin change too small: {amount_usd} USD")
        self._authorize("updateIsolatedMargin", 1)
        await self._default(clearing.update_isolated_margin(s.engine, s.address, asset, ntli))

    async def schedule_cancel(self, at_ms: int | None) -> None:
        s = self._s
        self._authorize("scheduleCancel", 1)
        await self._default(clearing.schedule_cancel(s.engine, s.address, at_ms))

    async def _default(self, error: str | None) -> None:
        await self._done()
        parse.default_ok(error_envelope(error) if error else envelope("default"))

    # ------------------------------------------------------------------ queries

    async def order_status(self, ref: int | str) -> OrderState | None:
        """``orderStatus`` by oid or cloid; None when the venue never saw it."""
        s = self._s
        key: int | str = checked_cloid(ref) if isinstance(ref, str) else ref
        return parse.order_status(s.info({"type": "orderStatus", "user": s.address, "oid": key}))


class SimGateway(EngineGateway):
    """The gateway of an account of the in-process exchange: the address budget is charged as on the wire,
    and the engine's events go to the streams after every action."""

    def __init__(self, session: SimSession) -> None:
        super().__init__(session)
        self._sim = session

    def _authorize(self, kind: str, items: int) -> None:
        self._sim.authorize(kind, items)

    def _seq(self, index: int) -> int:
        return self._sim.next_seq()

    async def _done(self) -> None:
        self._sim.publish()
