"""Helpers shared by the store tests (and by the child process of the crash test)."""

from __future__ import annotations

import dataclasses
import secrets
from decimal import Decimal
from typing import Any

from hyperfollow.domain.model import Fill, Side


def make_fill(address: str, tid: int | None = None, **changes: Any) -> Fill:
    """A follower fill with exact-money fields; a random tid unless given (``tid=None`` in ``changes``
    is not possible: use ``dataclasses.replace(fill, tid=None)`` for a fill from before trade ids)."""
    fill = Fill(
        address=address,
        coin="BTC",
        side=Side.BUY,
        price=Decimal("65000.5"),
        size=Decimal("0.00123"),
        time_ms=1_700_000_000_123,
        start_position=Decimal("-0.5"),
        direction="Close Short",
        closed_pnl=Decimal("1.234567"),
        fee=Decimal("0.012345"),
        oid=123456789012,
        tid=secrets.randbelow(2**62) if tid is None else tid,
        hash="0x" + secrets.token_hex(32),
        crossed=True,
        cloid=None,
        builder_fee=Decimal("0.0001"),
    )
    return dataclasses.replace(fill, **changes)
