"""The open-order book kept from the order-update stream, refreshed by REST reads."""

from __future__ import annotations

from decimal import Decimal

from hyperfollow.domain.model import OrderState, Side
from hyperfollow.risk.orders import OpenOrderBook

A = "0x" + "ab" * 20


def order(oid: int, status: str = "open", trigger: str | None = None) -> OrderState:
    px = Decimal(3000)
    return OrderState(
        "ETH", Side.BUY, px, Decimal(1), Decimal(1), oid, 1_000 + oid, status,
        trigger_price=Decimal(trigger) if trigger else None,
    )  # fmt: skip


def test_updates_add_and_remove_orders() -> None:
    book = OpenOrderBook()
    book.apply(A, order(1))
    book.apply(A, order(2))
    book.apply(A, order(1, "filled"))
    assert [o.oid for o in book.orders(A)] == [2]
    assert not book.confirmed(A, 2)  # seen on the stream only


def test_updates_during_a_rest_read_are_applied_again_on_top_of_it() -> None:
    book = OpenOrderBook()
    book.apply(A, order(1))
    book.begin_read(A)
    book.apply(A, order(1, "canceled"))  # while the read was under way
    book.apply(A, order(3))
    book.load(A, [order(1), order(2, trigger="2900")])  # the read was taken before those updates
    assert [o.oid for o in book.orders(A)] == [2, 3]
    assert book.confirmed(A, 2)
    assert not book.confirmed(A, 3)


def test_a_stream_update_keeps_what_the_read_said_of_a_trigger_order() -> None:
    book = OpenOrderBook()
    book.begin_read(A)
    book.load(A, [order(5, trigger="2900")])
    book.apply(A, order(5))  # the stream's order object has no trigger fields
    [kept] = book.orders(A)
    assert kept.trigger_price == Decimal(2900)
