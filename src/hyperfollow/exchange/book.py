"""Orders and a price-time priority order book in integer ticks.

Prices are integers on the instrument's finest grid (``px * 10**px_decimals``), sizes integer lots
(``sz * 10**sz_decimals``). A price level is an insertion-ordered dict oid -> Order: FIFO within the
level, O(1) removal. Level prices are kept in sorted lists (tens of levels: bisect beats a tree).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(slots=True)
class Trigger:
    """A TP/SL trigger: fires when the mark price crosses ``px`` (ticks)."""

    is_market: bool
    px: int
    tpsl: str  # "tp" | "sl"
    wire_px: str  # the triggerPx string as sent, for display


@dataclass(slots=True, eq=False)
class Order:
    """A live or finished order. ``sz`` is what remains; ``orig_sz`` what was asked."""

    oid: int
    user: str
    asset: int
    is_buy: bool
    px: int
    sz: int
    orig_sz: int
    tif: str  # "Gtc" | "Ioc" | "Alo" | "FrontendMarket" | "LiquidationMarket"
    reduce_only: bool
    cloid: str | None
    timestamp: int
    trigger: Trigger | None = None
    status: str = "open"
    status_ts: int = 0
    margin: int = 0  # micro-USD reserved while resting (orders that increase a position)
    group: str = "na"  # "na" | "normalTpsl" | "positionTpsl"
    parent: Order | None = None  # normalTpsl: the entry order of a TP/SL child
    children: list[Order] | None = None
    triggered: bool = False
    filled_sz: int = 0
    filled_ntl: int = 0  # sum of px * sz over fills (ticks * lots)

    @property
    def is_position_tpsl(self) -> bool:
        return self.group == "positionTpsl"


class OrderBook:
    """One coin's resting limit orders (trigger orders live in the engine until they fire)."""

    __slots__ = ("ask_px", "asks", "bid_px", "bids")

    def __init__(self) -> None:
        self.bids: dict[int, dict[int, Order]] = {}
        self.asks: dict[int, dict[int, Order]] = {}
        self.bid_px: list[int] = []  # ascending; best bid is the last
        self.ask_px: list[int] = []  # ascending; best ask is the first

    def best_bid(self) -> int | None:
        return self.bid_px[-1] if self.bid_px else None

    def best_ask(self) -> int | None:
        return self.ask_px[0] if self.ask_px else None

    def add(self, order: Order) -> None:
        levels, prices = (self.bids, self.bid_px) if order.is_buy else (self.asks, self.ask_px)
        level = levels.get(order.px)
        if level is None:
            level = levels[order.px] = {}
            insort(prices, order.px)
        level[order.oid] = order

    def remove(self, order: Order) -> None:
        levels, prices = (self.bids, self.bid_px) if order.is_buy else (self.asks, self.ask_px)
        level = levels.get(order.px)
        if level is None or level.pop(order.oid, None) is None:
            return
        if not level:
            del levels[order.px]
            del prices[bisect_left(prices, order.px)]

    def crosses(self, is_buy: bool, px: int) -> bool:
        """Would a new order at ``px`` trade immediately?"""
        if is_buy:
            return bool(self.ask_px) and self.ask_px[0] <= px
        return bool(self.bid_px) and self.bid_px[-1] >= px

    def makers(self, is_buy: bool, limit_px: int) -> Iterator[Order]:
        """Resting orders a taker on side ``is_buy`` at ``limit_px`` may trade with, best first.

        The caller removes or shrinks each order it consumes before asking for the next.
        """
        levels, prices = (self.asks, self.ask_px) if is_buy else (self.bids, self.bid_px)
        while prices:
            px = prices[0] if is_buy else prices[-1]
            if (px > limit_px) if is_buy else (px < limit_px):
                return
            yield next(iter(levels[px].values()))

    def depth(self, is_buy: bool, n_levels: int) -> list[tuple[int, int, int]]:
        """Aggregated levels (px, total size, order count), best first."""
        levels, prices = (self.bids, self.bid_px) if is_buy else (self.asks, self.ask_px)
        chosen = prices[::-1][:n_levels] if is_buy else prices[:n_levels]
        out = []
        for px in chosen:
            level = levels[px]
            out.append((px, sum(o.sz for o in level.values()), len(level)))
        return out

    def __len__(self) -> int:
        return sum(len(v) for v in self.bids.values()) + sum(len(v) for v in self.asks.values())
