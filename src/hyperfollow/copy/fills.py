"""Reading a leader's fill: what it did (its ``dir``), its reverse, and one fill per order.

Hyperliquid labels every perp fill with ``dir``: "Open Long", "Close Long", "Open Short", "Close Short",
"Long > Short" (the fill closed a long and opened a short), "Short > Long"; spot fills say "Buy" / "Sell".
Some exports append a note such as " (Price Improved)"; it is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from typing import Any

from hyperfollow.domain.model import Fill, Side


class Action(StrEnum):
    OPEN = "open"  # opens or increases a position (an "add" when the leader already held that side)
    CLOSE = "close"  # reduces or closes a position
    FLIP = "flip"  # closes a position and opens the other side in the same fill
    SPOT = "spot"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Direction:
    """A parsed ``dir``: the action and the side of the position it starts from (+1 long, -1 short)."""

    action: Action
    sign: int  # position side the action is about: OPEN -> side opened; CLOSE/FLIP -> side closed

    @property
    def order_side(self) -> Side:
        """The side a fill with this direction must have: opening a long buys, closing one sells."""
        buys = self.sign > 0 if self.action is Action.OPEN else self.sign < 0
        return Side.of(buys)


_NOTE = re.compile(r"\s*\(.*\)\s*$")
_DIRS: dict[str, Direction] = {
    "open long": Direction(Action.OPEN, 1),
    "open short": Direction(Action.OPEN, -1),
    "close long": Direction(Action.CLOSE, 1),
    "close short": Direction(Action.CLOSE, -1),
    "long > short": Direction(Action.FLIP, 1),
    "short > long": Direction(Action.FLIP, -1),
    "buy": Direction(Action.SPOT, 1),
    "sell": Direction(Action.SPOT, -1),
}
_NAMES = {
    (Action.OPEN, 1): "Open Long",
    (Action.OPEN, -1): "Open Short",
    (Action.CLOSE, 1): "Close Long",
    (Action.CLOSE, -1): "Close Short",
    (Action.FLIP, 1): "Long > Short",
    (Action.FLIP, -1): "Short > Long",
    (Action.SPOT, 1): "Buy",
    (Action.SPOT, -1): "Sell",
}


def parse_direction(text: str) -> Direction:
    """The venue's ``dir`` text as a ``Direction`` (``Action.UNKNOWN`` when not recognised)."""
    key = " ".join(_NOTE.sub("", text).split()).lower()
    return _DIRS.get(key, Direction(Action.UNKNOWN, 0))


def direction_text(direction: Direction) -> str:
    """The venue's text for a direction ("" for UNKNOWN)."""
    return _NAMES.get((direction.action, direction.sign), "")


def reversed_fill(fill: Fill) -> Fill:
    """The fill as a leader doing the opposite would have had it: side, position and ``dir`` inverted.

    Reverse copying is copying this fill straight; ``reversed_fill(reversed_fill(f)) == f``.
    """
    parsed = parse_direction(fill.direction)
    text = direction_text(Direction(parsed.action, -parsed.sign)) or fill.direction
    return replace(fill, side=fill.side.opposite, start_position=-fill.start_position, direction=text)


def direction_of(start: Decimal, end: Decimal) -> str:
    """The perp ``dir`` of a trade that moved a position from ``start`` to ``end`` ("" when unchanged)."""
    if start == end:
        return ""
    if start > 0 > end:
        return "Long > Short"
    if start < 0 < end:
        return "Short > Long"
    if abs(end) > abs(start):
        return "Open Long" if end > 0 else "Open Short"
    return "Close Long" if start > 0 else "Close Short"


def position_order(fills: Iterable[Fill]) -> list[Fill]:
    """One order's fills (one coin, one side) in the order they moved the position: a buy's by rising
    ``startPosition``, a sell's by falling. The venue's trade ids are not in that order."""
    return sorted(
        fills, key=lambda f: (f.start_position if f.side is Side.BUY else -f.start_position, f.time_ms)
    )


def chain_segments(fills: Iterable[Fill]) -> list[list[Fill]]:
    """One order's fills in position order, cut where the ``startPosition`` chain breaks.

    In a whole chain each fill starts where the previous one left the position. A break means a fill is
    missing (not delivered yet) or another order traded in between; each piece is then a move of its own,
    from its head's start to its tail's end, and is merged on its own. Spot fills are one piece as given.
    """
    given = list(fills)
    if not given:
        return []
    if parse_direction(given[0].direction).action is Action.SPOT:
        return [given]
    segments: list[list[Fill]] = []
    for f in position_order(given):
        if segments and _end(segments[-1][-1]) == f.start_position:
            segments[-1].append(f)
        else:
            segments.append([f])
    return segments


def _end(fill: Fill) -> Decimal:
    return fill.start_position + fill.signed_size


def coalesce(fills: Iterable[Fill]) -> list[Fill]:
    """Merge consecutive fills of one order (same coin, oid and side) into one fill per order.

    A leader's order that sweeps the book arrives as many fills, each possibly under the $10 minimum once
    scaled down; copying the order as a whole keeps the follower's copy whole. The fills are put in position
    order first (``chain_segments``; a broken chain gives one merged fill per piece). The merged fill keeps
    the head's ids (so its cloid is stable whatever order the fills came in), its ``start_position``, the
    summed size, the size-weighted price, summed fees and PnL, the latest time, and the ``dir`` of the whole
    move (a sweep may close a long, then flip). Spot fills are merged the same way and keep "Buy"/"Sell".
    """
    out: list[Fill] = []
    group: list[Fill] = []
    for f in fills:
        if group and (f.coin != group[0].coin or f.oid != group[0].oid or f.side is not group[0].side):
            out.extend(merge(piece) for piece in chain_segments(group))
            group = []
        group.append(f)
    if group:
        out.extend(merge(piece) for piece in chain_segments(group))
    return out


def merge(piece: Sequence[Fill]) -> Fill:
    """Fills of one order, in position order and chained (``chain_segments``), as one fill."""
    first = piece[0]
    if len(piece) == 1:
        return first
    size = sum((f.size for f in piece), Decimal(0))
    price = sum((f.price * f.size for f in piece), Decimal(0)) / size if size else first.price
    direction = first.direction
    if parse_direction(first.direction).action is not Action.SPOT:
        end = first.start_position + (size if first.side is Side.BUY else -size)
        direction = direction_of(first.start_position, end) or first.direction
    return replace(
        first,
        size=size,
        price=price,
        direction=direction,
        **_totals(piece),
    )


def _totals(fills: Sequence[Fill]) -> dict[str, Any]:
    """What the fills of one move add up to: latest time, summed PnL and fees, any crossed or liquidation."""
    return {
        "time_ms": max(f.time_ms for f in fills),
        "closed_pnl": sum((f.closed_pnl for f in fills), Decimal(0)),
        "fee": sum((f.fee for f in fills), Decimal(0)),
        "builder_fee": sum((f.builder_fee for f in fills), Decimal(0)),
        "crossed": any(f.crossed for f in fills),
        "liquidation": any(f.liquidation for f in fills),
    }


@dataclass(frozen=True, slots=True)
class Net:
    """A run of one coin's fills seen as one move of the leader's position (``net_fills``)."""

    start: Decimal  # the leader's position before the first fill
    end: Decimal  # ... and after the last: where it is now
    through_zero: bool  # it was flat, or flipped, on the way
    breaks: int  # places where the startPosition chain broke (fills missing)
    fill: Fill | None  # the one order that makes the move (None: back where it started)


def net_fills(fills: Sequence[Fill], *, from_flat: bool = False) -> Net:
    """One coin's fills, in position order, netted into the one order that takes the position from before
    the first fill to after the last (catch-up: what the leader did while we were not looking).

    ``from_flat``: the move is counted from flat when the position went through zero on the way (a
    position that predated the follow and was closed: what is held now is new). The order keeps the first
    fill's ids, the latest time, summed fees and PnL, and the size-weighted price of the fills on its own
    side (what the drift guard compares the mark with); its ``dir`` is that of the whole move.
    """
    if not fills:
        raise ValueError("nothing to net")
    first, last = fills[0], fills[-1]
    start, end = first.start_position, _end(last)
    through_zero = any(f.start_position == 0 or _end(f) == 0 or f.start_position * _end(f) < 0 for f in fills)
    breaks = sum(1 for a, b in pairwise(fills) if _end(a) != b.start_position)
    begin = Decimal(0) if from_flat and through_zero else start
    if end == begin:
        return Net(start, end, through_zero, breaks, None)
    side = Side.of(end > begin)
    priced = [f for f in fills if f.side is side] or list(fills)
    weight = sum((f.size for f in priced), Decimal(0))
    price = sum((f.price * f.size for f in priced), Decimal(0)) / weight if weight else last.price
    if parse_direction(first.direction).action is Action.SPOT:
        direction = direction_text(Direction(Action.SPOT, 1 if side is Side.BUY else -1))
    else:
        direction = direction_of(begin, end)
    fill = replace(
        first,
        side=side,
        size=abs(end - begin),
        price=price,
        start_position=begin,
        direction=direction,
        **_totals(fills),
    )
    return Net(start, end, through_zero, breaks, fill)
