"""``MarketData`` in-process: the same ``/info`` requests and parsers as the Hyperliquid adapter, and
streams fed from the engine's outbox by the session's hub."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.sim.hub import book_of, mids_of
from hyperfollow.adapters.sim.session import SimSession
from hyperfollow.adapters.sim.streams import (
    BboSubscription,
    BookSubscription,
    MidsSubscription,
    TradeSubscription,
)
from hyperfollow.domain.errors import UnknownInstrument
from hyperfollow.domain.model import Bbo, Candle, L2Book, Trade
from hyperfollow.domain.rules import Instrument


class SimMarketData:
    """Public market data of the embedded exchange."""

    def __init__(self, session: SimSession) -> None:
        self._s = session

    async def instruments(self) -> list[Instrument]:
        """Every listed perp (main dex, then HIP-3 dexes)."""
        return list(self._s.instrument_table().values())

    async def instrument(self, coin: str) -> Instrument:
        return self._s.instrument(coin)

    async def mids(self) -> dict[str, Decimal]:
        return mids_of(self._s.exchange)

    async def l2_book(self, coin: str) -> L2Book:
        try:
            return book_of(self._s.exchange, coin)
        except KeyError:  # the venue answers null for an unknown coin
            raise UnknownInstrument(f"Invalid asset: {coin} (no book).") from None

    async def recent_trades(self, coin: str) -> list[Trade]:
        """The latest prints, oldest first (the venue answers newest first)."""
        return parse.recent_trades(self._s.info({"type": "recentTrades", "coin": coin}))

    async def candles(self, coin: str, interval: str, start_ms: int, end_ms: int) -> list[Candle]:
        raw = self._s.info(
            {
                "type": "candleSnapshot",
                "req": {"coin": coin, "interval": interval, "startTime": start_ms, "endTime": end_ms},
            }
        )
        return [parse.candle(c) for c in raw]

    # ------------------------------------------------------------------ streams

    def _checked(self, coins: Sequence[str]) -> list[str]:
        table = self._s.instrument_table()
        unknown = [c for c in coins if c not in table]
        if unknown:
            raise UnknownInstrument(f"Unknown perp(s): {', '.join(unknown)}.")
        return list(coins)

    def _book(self, coin: str) -> L2Book:
        return book_of(self._s.exchange, coin)

    def stream_books(self, coins: Sequence[str]) -> AsyncIterator[L2Book]:
        """A snapshot of each coin now, then the whole book whenever it changed."""
        sub = BookSubscription(self._checked(coins), self._book)
        self._s.subscribe(sub)
        return sub.feed

    def stream_trades(self, coins: Sequence[str]) -> AsyncIterator[Trade]:
        sub = TradeSubscription(self._checked(coins))
        self._s.subscribe(sub)
        return sub.feed

    def stream_bbo(self, coins: Sequence[str]) -> AsyncIterator[Bbo]:
        sub = BboSubscription(self._checked(coins), self._book)
        self._s.subscribe(sub)
        return sub.feed

    def stream_mids(self) -> AsyncIterator[dict[str, Decimal]]:
        sub = MidsSubscription(lambda: mids_of(self._s.exchange))
        self._s.subscribe(sub)
        return sub.feed
