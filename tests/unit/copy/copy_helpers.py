"""Shared builders for the copy-trading unit tests: real szDecimals, fills, and a position ledger."""

from __future__ import annotations

from decimal import Decimal

from hyperfollow.copy.model import CopyIntent, Decision
from hyperfollow.domain.model import Fill, Side
from hyperfollow.domain.rules import Instrument

BTC = Instrument("BTC", 0, 5, 40)
ETH = Instrument("ETH", 1, 4, 25)
SOL = Instrument("SOL", 5, 2, 20)
HYPE = Instrument("HYPE", 159, 2, 10)
TSLA = Instrument("xyz:TSLA", 110_000, 3, 10, only_isolated=True, dex="xyz")
PURR = Instrument("PURR/USDC", 10_000, 0, is_spot=True)
INSTRUMENTS = {i.coin: i for i in (BTC, ETH, SOL, HYPE, TSLA)}

FOLLOWER = "0xf0110we5"
LEADER = "0x1eade5"


def D(x: str | int) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(str(x))


def fill(
    coin: str,
    direction: str,
    size: str,
    start: str,
    price: str = "100",
    *,
    tid: int | None = 1,
    side: Side | None = None,
    hash_: str = "0xabc",
    oid: int = 7,
) -> Fill:
    """A leader fill; the side follows from ``direction`` unless given."""
    if side is None:
        buys = direction in ("Open Long", "Close Short", "Short > Long", "Buy")
        side = Side.of(buys)
    return Fill(
        address=LEADER,
        coin=coin,
        side=side,
        price=D(price),
        size=D(size),
        time_ms=1_700_000_000_000,
        start_position=D(start),
        direction=direction,
        closed_pnl=D(0),
        fee=D(0),
        oid=oid,
        tid=tid,
        hash=hash_,
        crossed=True,
    )


def apply(position: Decimal, decision: Decision) -> Decimal:
    """Our position after every intent of ``decision`` filled completely."""
    for item in decision:
        if isinstance(item, CopyIntent):
            position += item.size if item.side is Side.BUY else -item.size
    return position
