"""The venue's REST weights (1,200 per minute per IP): one table for the exchange that enforces them and
the adapter that budgets for them.

Docs: /exchange costs 1 + floor(batch length / 40); /info costs 2 for the light types below, 60 for
userRole, 20 for the others, plus 1 per 20 items returned by the history types (per 60 for candles).
"""

from __future__ import annotations

LIGHT_INFO = frozenset(
    {"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState", "exchangeStatus"}
)
ITEM_HEAVY_INFO = frozenset(
    {"userFills", "userFillsByTime", "historicalOrders", "fundingHistory", "userFunding",
     "userNonFundingLedgerUpdates", "userTwapSliceFills", "recentTrades"}
)  # fmt: skip


def info_base_weight(kind: object) -> int:
    """Weight of an /info request of type ``kind``, known before sending."""
    if kind in LIGHT_INFO:
        return 2
    if kind == "userRole":
        return 60
    return 20


def info_item_weight(kind: object, n_items: int) -> int:
    """Weight the venue adds for the items an answer carries (known only afterwards)."""
    if kind in ITEM_HEAVY_INFO:
        return n_items // 20
    if kind == "candleSnapshot":
        return n_items // 60
    return 0


def info_weight(kind: object, n_items: int = 0) -> int:
    """Total weight of an /info request that returned ``n_items`` items."""
    return info_base_weight(kind) + info_item_weight(kind, n_items)


def exchange_weight(batch_len: int) -> int:
    """Weight of an /exchange request: 1 + floor(batch_len / 40)."""
    return 1 + batch_len // 40
