"""Closed trades (``metrics.Trade``) from a run's fills, per owner and coin: the one way every backtest
turns fills into round trips.

A trade opens with the fill that takes an owner's position in a coin away from flat and closes with the
fill that brings it back to flat. Fills on the position's side add to it, opposite fills reduce it; a fill
that goes through flat (a flip) closes the trade with the part that flattens and opens the next one with
the rest, its fee split pro rata between the two (the closing part rounded to 1e-18 USD, the opening part
the remainder: they add up to the fee exactly).

- ``size`` is the total size opened (equal to the total closed); ``entry_px`` and ``exit_px`` are the
  size-weighted averages of the opening and closing fills (Decimal division, 28 significant digits).
- ``pnl`` is exact: over a round trip from flat to flat, the price PnL is the cash flow, (closing notional
  - opening notional) for a long and the reverse for a short, whatever the order of adds and reductions.
- ``fees`` are the fills' fees; ``funding`` the ``FundingPaid`` events met while the trade was open, in
  the order the events are given (the replay's order: a payment at the same millisecond as a fill goes
  where the replay applied it).

Positions still open after the last event are not trades: they are in the equity curve (a replay that
wants them counted closes them first).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from hyperfollow.backtest.metrics import Trade
from hyperfollow.domain.model import Fill, Side

_ZERO = Decimal(0)
_FEE_STEP = Decimal("1e-18")  # a flip's fee split: fine enough to be exact, coarse enough to sum exactly


@dataclass(frozen=True, slots=True)
class FundingPaid:
    """Funding an owner's position in a coin paid at ``time_ms`` (received: negative)."""

    owner: str
    coin: str
    time_ms: int
    amount: Decimal


@dataclass(slots=True)
class _Open:
    side: Side
    open_ms: int
    size: Decimal  # open now (> 0)
    opened: Decimal = _ZERO
    opened_notional: Decimal = _ZERO
    closed: Decimal = _ZERO
    closed_notional: Decimal = _ZERO
    fees: Decimal = _ZERO
    funding: Decimal = _ZERO

    def add(self, price: Decimal, size: Decimal, fee: Decimal) -> None:
        self.size += size
        self.opened += size
        self.opened_notional += price * size
        self.fees += fee

    def reduce(self, price: Decimal, size: Decimal, fee: Decimal) -> None:
        self.size -= size
        self.closed += size
        self.closed_notional += price * size
        self.fees += fee

    def trade(self, owner: str, coin: str, close_ms: int) -> Trade:
        flow = self.closed_notional - self.opened_notional
        return Trade(
            coin=coin,
            side=self.side,
            open_ms=self.open_ms,
            close_ms=close_ms,
            entry_px=self.opened_notional / self.opened,
            exit_px=self.closed_notional / self.closed,
            size=self.opened,
            pnl=flow if self.side is Side.BUY else -flow,
            fees=self.fees,
            owner=owner,
            funding=self.funding,
        )


def round_trips(events: Iterable[tuple[str, Fill] | FundingPaid]) -> list[Trade]:
    """The closed trades of ``(owner, fill)`` and ``FundingPaid`` events given in the order they happened,
    in the order they closed."""
    book: dict[tuple[str, str], _Open] = {}
    trades: list[Trade] = []
    for event in events:
        if isinstance(event, FundingPaid):
            _fund(book, event)
            continue
        owner, fill = event
        key = (owner, fill.coin)
        pos = book.get(key)
        if fill.size <= 0:
            raise ValueError(f"a fill's size is positive: {fill.size}")
        if pos is None:
            book[key] = _opened(fill, fill.size, fill.fee)
        elif fill.side is pos.side:
            pos.add(fill.price, fill.size, fill.fee)
        elif fill.size < pos.size:
            pos.reduce(fill.price, fill.size, fill.fee)
        else:
            rest = fill.size - pos.size
            closing_fee = fill.fee if rest == 0 else (fill.fee * pos.size / fill.size).quantize(_FEE_STEP)
            pos.reduce(fill.price, pos.size, closing_fee)
            trades.append(pos.trade(owner, fill.coin, fill.time_ms))
            del book[key]
            if rest > 0:
                book[key] = _opened(fill, rest, fill.fee - closing_fee)
    return trades


def _opened(fill: Fill, size: Decimal, fee: Decimal) -> _Open:
    pos = _Open(side=fill.side, open_ms=fill.time_ms, size=_ZERO)
    pos.add(fill.price, size, fee)
    return pos


def _fund(book: dict[tuple[str, str], _Open], paid: FundingPaid) -> None:
    pos = book.get((paid.owner, paid.coin))
    if pos is None:
        if paid.amount != 0:
            raise ValueError(f"funding for {paid.owner} {paid.coin} at {paid.time_ms} with no position open")
        return
    pos.funding += paid.amount
