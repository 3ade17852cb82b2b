"""The fill models of a simulated account trading against a market it cannot move (pure, integers).

Prices are integer ticks and sizes integer lots of one instrument (``exchange/accounts.py`` units).

* **Taker**: an order that crosses walks the latest book levels, best first, at their sizes, up to its
  limit (``walk``). What it takes is gone from those levels until the next book snapshot replaces them,
  so two orders in a row do not both take the same size; the real book does not see us (no impact).
* **Maker**: a resting order fills only when a real print trades at its price or through it
  (``maker_fills``). At its own price it first waits for the size that was resting ahead of it when it
  arrived (its queue); a print through its price (a better price for the aggressor was ours) fills it
  with the print's size. Only prints at its price consume the queue: cancellations ahead of us are not
  credited (the book and the tape arrive on separate streams, so a level that shrank cannot be told
  apart from one that traded; counting both would fill us early). Conservative: fills come late, not early.
* Books crossing a resting order without a print do not fill it (the conservative choice: only trades
  prove there was a counterparty).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class Level:
    """One outside price level: ``px`` ticks, ``sz`` lots still there for us."""

    px: int
    sz: int


def crosses(is_buy: bool, limit_px: int, best: int | None) -> bool:
    """Would an order at ``limit_px`` meet the opposite side whose best price is ``best``?"""
    if best is None:
        return False
    return best <= limit_px if is_buy else best >= limit_px


def walk(levels: Sequence[Level], is_buy: bool, limit_px: int, size: int) -> list[tuple[int, int]]:
    """The fills ``(px, lots)`` a taker of ``size`` lots gets from ``levels`` (the opposite side, best
    first) without going beyond ``limit_px``. Changes nothing."""
    out: list[tuple[int, int]] = []
    left = size
    for level in levels:
        if left == 0 or not crosses(is_buy, limit_px, level.px):
            break
        qty = min(left, level.sz)
        if qty:
            out.append((level.px, qty))
            left -= qty
    return out


def consume(levels: list[Level], fills: Sequence[tuple[int, int]]) -> None:
    """Take ``fills`` (from ``walk`` over the same levels) out of ``levels``; empty levels are dropped."""
    taken = dict(fills)
    for level in levels:
        level.sz -= taken.get(level.px, 0)
    levels[:] = [lv for lv in levels if lv.sz > 0]


def level_size(levels: Sequence[Level], px: int) -> int:
    for level in levels:
        if level.px == px:
            return level.sz
    return 0


@dataclass(slots=True)
class Resting:
    """One of our resting orders as the maker model sees it."""

    oid: int
    is_buy: bool
    px: int
    sz: int  # lots left
    ahead: int  # lots queued ahead of it at its price


def reachable(order: Resting, taker_is_buy: bool, print_px: int) -> bool:
    """Is ``order`` on the side a print's aggressor hits, at the print's price or better for it?"""
    if order.is_buy == taker_is_buy:
        return False
    return order.px >= print_px if order.is_buy else order.px <= print_px


def maker_fills(
    orders: Sequence[Resting], taker_is_buy: bool, print_px: int, print_sz: int
) -> tuple[list[tuple[int, int]], dict[int, int]]:
    """The fills ``(oid, lots)`` one print gives our resting orders, and every reached order's queue
    after it (oid -> lots ahead). Orders are served in price-time priority (best price, then oid);
    the print's size is shared out once: what the queue ahead or an earlier order took is gone."""
    chosen = sorted(
        (o for o in orders if reachable(o, taker_is_buy, print_px)),
        key=lambda o: (-o.px if o.is_buy else o.px, o.oid),
    )
    fills: list[tuple[int, int]] = []
    queues: dict[int, int] = {}
    left = print_sz
    for order in chosen:
        ahead = order.ahead
        if order.px == print_px:  # at the print's price: the queue ahead trades first
            eaten = min(ahead, left)
            ahead -= eaten
            left -= eaten
        else:  # traded through: the print would have met us before its own price
            ahead = 0
        queues[order.oid] = ahead
        qty = min(order.sz, left)
        if qty:
            fills.append((order.oid, qty))
            left -= qty
    return fills, queues
