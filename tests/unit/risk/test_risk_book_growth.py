"""The position book's per-coin and per-account arrays grow past their first size (16): the real venue lists
hundreds of coins, and a process may run risk for many accounts."""

from __future__ import annotations

from decimal import Decimal

from hyperfollow.domain.model import Side
from hyperfollow.risk.scan import PositionBook


def test_marks_of_more_coins_than_the_first_capacity_are_all_kept() -> None:
    book = PositionBook()
    mids = {f"C{i}": Decimal(i + 1) for i in range(40)}
    book.set_marks(mids)
    assert {c: book.mark(c) for c in mids} == mids
    book.on_fill("0xa", "C39", side=Side.BUY, size=Decimal(2), price=Decimal(40), time_ms=1, leverage=3)
    book.set_marks({"C39": Decimal(44)})
    assert book.mark("C39") == Decimal(44)
    assert book.check(2) is not None


def test_equity_of_more_accounts_than_the_first_capacity_is_kept() -> None:
    book = PositionBook()
    for i in range(40):
        book.set_equity(f"0x{i:040x}", Decimal(1000 + i))
