"""Each account's open orders, kept from the order-update stream instead of polled.

``frontendOpenOrders`` weighs 20 per dex: polling it every two seconds on two dexes spends the whole per-IP
budget of 1,200 a minute. Instead the book applies every ``orderUpdates`` item (an order open: kept, by oid;
any other status: gone) and is replaced by a REST read only rarely (the risk service's reconciliation, and
after a stream gap). An update that arrives while a REST read is under way is applied again on top of what
the read returned, so the read never rolls the book back.

The stream's order objects carry no trigger fields (venue quirk: ``orderUpdates`` has no ``triggerPx`` /
``isTrigger``), so an order first seen on the stream is *unconfirmed*: whether it is a trigger order is only
known once a REST read showed it. A stream update of a confirmed order keeps what the read said of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from hyperfollow.domain.model import OrderState


@dataclass(slots=True)
class _Account:
    orders: dict[int, OrderState] = field(default_factory=dict)
    confirmed: set[int] = field(default_factory=set)  # oids a REST read showed (trigger fields known)
    reads: int = 0  # REST reads under way
    during_read: list[OrderState] = field(default_factory=list)  # updates since the oldest read began
    loaded: bool = False  # a REST read has filled the book at least once


class OpenOrderBook:
    """Open orders per (lower-case) account; see the module docstring."""

    def __init__(self) -> None:
        self._accounts: dict[str, _Account] = {}

    def _of(self, account: str) -> _Account:
        return self._accounts.setdefault(account.lower(), _Account())

    def apply(self, account: str, update: OrderState) -> None:
        """One ``orderUpdates`` item."""
        book = self._of(account)
        if book.reads:
            book.during_read.append(update)
        self._apply(book, update)

    @staticmethod
    def _apply(book: _Account, update: OrderState) -> None:
        if not update.is_open:
            book.orders.pop(update.oid, None)
            book.confirmed.discard(update.oid)
            return
        known = book.orders.get(update.oid)
        if known is not None and update.oid in book.confirmed:  # the stream does not say what the read did
            update = replace(update, trigger_price=known.trigger_price, reduce_only=known.reduce_only)
        book.orders[update.oid] = update

    def begin_read(self, account: str) -> None:
        """A REST read of the account's open orders starts (pair with ``load`` or ``abort_read``)."""
        book = self._of(account)
        if not book.reads:
            book.during_read = []
        book.reads += 1

    def abort_read(self, account: str) -> None:
        """The read failed: the book stays as the stream made it."""
        book = self._of(account)
        book.reads = max(0, book.reads - 1)

    def load(self, account: str, orders: Iterable[OrderState]) -> None:
        """The REST read's answer replaces the book; updates that came in meanwhile are applied again."""
        book = self._of(account)
        book.reads = max(0, book.reads - 1)
        book.orders = {o.oid: o for o in orders}
        book.confirmed = set(book.orders)
        book.loaded = True
        for update in book.during_read:
            self._apply(book, update)
        if not book.reads:
            book.during_read = []

    def remove(self, account: str, oid: int) -> None:
        """We cancelled it (the stream will say so too)."""
        book = self._of(account)
        book.orders.pop(oid, None)
        book.confirmed.discard(oid)

    def orders(self, account: str) -> list[OrderState]:
        """The account's open orders, oldest first."""
        return sorted(self._of(account).orders.values(), key=lambda o: (o.timestamp_ms, o.oid))

    def confirmed(self, account: str, oid: int) -> bool:
        """A REST read showed this order (its trigger fields are known)."""
        return oid in self._of(account).confirmed

    def loaded(self, account: str) -> bool:
        return self._of(account).loaded
