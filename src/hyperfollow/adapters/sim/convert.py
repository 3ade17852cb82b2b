"""Domain orders -> the engine's ``OrderSpec`` (integer ticks and lots), with the gateway's rounding.

The rounding policy is the Hyperliquid gateway's, so both adapters put an order on the same grid
point: the limit price never worse than asked (buys rounded DOWN, sells UP, ``rules.quantize_price``),
the size DOWN to whole lots (``rules.quantize_size``). A size that rounds to zero lots is refused
here, before the venue sees it. The integer grid values come from the exact wire strings
(``rules.to_wire`` then ``rules.scaled_int``: what the server parses), so nothing is converted twice.

Engine answers are wrapped in the venue's ``/exchange`` envelope and read with
``adapters/hyperliquid/parse.py``: one error table for both adapters.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hyperfollow.domain.errors import InvalidPrice, InvalidSize, UnknownInstrument
from hyperfollow.domain.ids import cloid_for, is_cloid
from hyperfollow.domain.model import OrderRequest, Tif
from hyperfollow.domain.rules import Instrument, Rounding, quantize_price, quantize_size, scaled_int, to_wire
from hyperfollow.exchange.book import Trigger as EngineTrigger
from hyperfollow.exchange.engine import OrderSpec


def envelope(kind: str, statuses: list[Any] | None = None) -> dict[str, Any]:
    """The ``ok`` answer the wire layer would wrap around engine statuses (``actions.ExchangeApi.ok``)."""
    response: dict[str, Any] = {"type": kind}
    if statuses is not None:
        response["data"] = {"statuses": statuses}
    return {"status": "ok", "response": response}


def error_envelope(text: str) -> dict[str, Any]:
    return {"status": "err", "response": text}


def _ticks(inst: Instrument, px: Decimal) -> int:
    ticks = scaled_int(to_wire(px), inst.px_decimals)
    assert ticks is not None, f"{px} is not on the {inst.coin} price grid"  # quantize_price put it there
    return ticks


def _lots(inst: Instrument, sz: Decimal) -> int:
    lots = scaled_int(to_wire(sz), inst.sz_decimals)
    assert lots is not None, f"{sz} is not a whole number of {inst.coin} lots"
    return lots


def grid_price(inst: Instrument, order: OrderRequest) -> Decimal:
    """The limit price on the grid, never worse for the caller than asked."""
    if not order.price.is_finite() or order.price <= 0:
        raise InvalidPrice(f"Order has invalid price: {order.price}.", cloid=order.cloid)
    return quantize_price(inst, order.price, Rounding.DOWN if order.is_buy else Rounding.UP)


def grid_size(inst: Instrument, order: OrderRequest) -> Decimal:
    """The size in whole lots (rounded down); ``InvalidSize`` when nothing is left."""
    if not order.size.is_finite() or order.size <= 0:
        raise InvalidSize(f"Order has invalid size: {order.size}.", cloid=order.cloid)
    size = quantize_size(inst, order.size, Rounding.DOWN)
    if size == 0:
        raise InvalidSize(
            f"Order has zero size: {order.size} {inst.coin} rounds down to 0 lots of {inst.lot}.",
            cloid=order.cloid,
        )
    return size


def cloid_of(order: OrderRequest, account: str, inst: Instrument, px: Decimal, sz: Decimal, seq: int) -> str:
    """The caller's cloid (lower-cased, as the venue echoes it), else one derived from the order."""
    if order.cloid is not None:
        return checked_cloid(order.cloid)
    return cloid_for(account, inst.coin, order.side.value, to_wire(sz), to_wire(px), order.tif.value, seq)


def checked_cloid(cloid: str) -> str:
    lowered = cloid.lower()
    if not is_cloid(lowered):
        raise ValueError(f"a cloid is 0x followed by 32 hex digits, got {cloid!r}")
    return lowered


def to_spec(inst: Instrument, order: OrderRequest, *, account: str, seq: int | None) -> OrderSpec:
    """The engine's view of ``order`` (``inst`` is ``order.coin``'s instrument).

    Without a caller cloid one is derived from (account, order, ``seq``); with ``seq=None`` none is
    (a modify keeps the replaced order's cloid).
    """
    if inst.is_spot:
        raise UnknownInstrument(f"{inst.coin} is a spot pair; this venue port trades perps only.")
    px = grid_price(inst, order)
    sz = grid_size(inst, order)
    if order.cloid is not None or seq is not None:
        cloid: str | None = cloid_of(order, account, inst, px, sz, seq or 0)
    else:
        cloid = None
    trigger = None
    tif = order.tif
    if order.trigger is not None:
        trig = order.trigger
        if not trig.price.is_finite() or trig.price <= 0:
            raise InvalidPrice(f"Invalid TP/SL price: {trig.price}.", cloid=cloid)
        # No side is "better" for a trigger level: the nearest grid price.
        trigger_px = quantize_price(inst, trig.price, Rounding.NEAREST)
        trigger = EngineTrigger(
            trig.is_market, _ticks(inst, trigger_px), trig.kind.value, to_wire(trigger_px)
        )
        tif = Tif.GTC  # a trigger order carries no tif on the wire; the engine defaults it to Gtc
    return OrderSpec(
        asset=inst.asset,
        is_buy=order.is_buy,
        px=_ticks(inst, px),
        sz=_lots(inst, sz),
        reduce_only=order.reduce_only,
        tif=tif.value,
        cloid=cloid,
        trigger=trigger,
    )
