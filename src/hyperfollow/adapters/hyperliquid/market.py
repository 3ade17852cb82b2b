"""Public market data over REST (plus the streams, delegated to the stream supervisor) and the
directory of tradable perps that the gateway prices and sizes orders with."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any, Protocol

import structlog

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.hyperliquid.client import InfoClient
from hyperfollow.domain.errors import UnknownInstrument
from hyperfollow.domain.model import Bbo, Candle, Fill, L2Book, OrderState, StreamEvent, Trade
from hyperfollow.domain.rules import Instrument, instruments_from_meta

log = structlog.get_logger(__name__)


class Streams(Protocol):
    """What the readers need of ``stream.StreamSupervisor`` (its API is fixed; this keeps the REST side
    free of the WebSocket machinery, and lets tests substitute it)."""

    def books(self, coins: Sequence[str]) -> AsyncIterator[L2Book]: ...

    def trades(self, coins: Sequence[str]) -> AsyncIterator[Trade]: ...

    def bbo(self, coins: Sequence[str]) -> AsyncIterator[Bbo]: ...

    def mids(self) -> AsyncIterator[dict[str, Decimal]]: ...

    def fills(self, addresses: Sequence[str], since_ms: int | None = None) -> AsyncIterator[Fill]: ...

    def orders(self, address: str) -> AsyncIterator[OrderState]: ...

    def events(self) -> AsyncIterator[StreamEvent]: ...


def dex_of(coin: str) -> str:
    """``"xyz:TSLA"`` -> ``"xyz"``; main-dex coins -> ``""``."""
    return coin.split(":", 1)[0] if ":" in coin else ""


class InstrumentDirectory:
    """Every listed perp (main dex and HIP-3 dexes), loaded from ``perpDexs`` + ``meta`` per dex.

    Spot is deliberately absent: a spot coin ("PURR/USDC", "@107") is an ``UnknownInstrument`` here.
    An unknown coin triggers one reload (a new listing), at most every ``reload_secs``.
    """

    def __init__(self, client: InfoClient, *, reload_secs: float = 60.0) -> None:
        self._client = client
        self._by_coin: dict[str, Instrument] = {}
        self._dexs: list[str] = [""]
        self._loaded_at: float | None = None
        self._reload_secs = reload_secs
        self._lock = asyncio.Lock()

    @property
    def dexs(self) -> list[str]:
        """Perp dex names, the main dex ("") first."""
        return list(self._dexs)

    async def load(self) -> list[Instrument]:
        """(Re)read the listings from the venue."""
        async with self._lock:
            dexs_raw = await self._client.info({"type": "perpDexs"})
            # element 0 is null (the main dex); dex i (1-based) gets asset ids 100000 + 10000 * i + index
            names = [""] + [str(d["name"]) for d in (dexs_raw or [None])[1:] if d]
            metas = await asyncio.gather(*(self._client.info({"type": "meta", "dex": n}) for n in names))
            by_coin: dict[str, Instrument] = {}
            for dex_index, meta in enumerate(metas):
                for inst in instruments_from_meta(meta, dex_index):
                    if not inst.is_delisted:
                        by_coin[inst.coin] = inst
            self._by_coin, self._dexs = by_coin, names
            self._loaded_at = asyncio.get_running_loop().time()
            log.info("venue.instruments_loaded", perps=len(by_coin), dexs=names)
            return list(by_coin.values())

    def all(self) -> list[Instrument]:
        return list(self._by_coin.values())

    def cached(self, coin: str) -> Instrument | None:
        return self._by_coin.get(coin)

    async def get(self, coin: str) -> Instrument:
        """The perp named ``coin``; ``UnknownInstrument`` when not listed (spot included)."""
        inst = self._by_coin.get(coin)  # fast path: no suspension, so batched submits stay together
        if inst is not None:
            return inst
        now = asyncio.get_running_loop().time()
        is_spot = "/" in coin or coin.startswith("@")
        if not is_spot and (self._loaded_at is None or now - self._loaded_at >= self._reload_secs):
            await self.load()
            inst = self._by_coin.get(coin)
            if inst is not None:
                return inst
        what = "spot is not traded by this adapter" if is_spot else "not a listed perp"
        raise UnknownInstrument(f"Invalid asset: {coin} ({what}).")


class HyperliquidMarketData:
    """``ports.MarketData`` over /info; streams come from the shared stream supervisor."""

    def __init__(self, client: InfoClient, instruments: InstrumentDirectory, streams: Streams) -> None:
        self._client = client
        self._instruments = instruments
        self._streams = streams

    async def instruments(self) -> list[Instrument]:
        if not self._instruments.all():
            await self._instruments.load()
        return self._instruments.all()

    async def instrument(self, coin: str) -> Instrument:
        return await self._instruments.get(coin)

    async def mids(self) -> dict[str, Decimal]:
        """Mids of every perp of every dex (``allMids`` per dex; spot mids of the main answer dropped)."""
        dexs = self._instruments.dexs
        answers = await asyncio.gather(*(self._client.info({"type": "allMids", "dex": d}) for d in dexs))
        out: dict[str, Decimal] = {}
        for answer in answers:
            for coin, px in parse.mids(answer or {}).items():
                if "/" not in coin and not coin.startswith("@"):
                    out[coin] = px
        return out

    async def l2_book(self, coin: str) -> L2Book:
        raw = await self._client.info({"type": "l2Book", "coin": coin})
        if raw is None:  # the venue answers null for an unknown coin
            raise UnknownInstrument(f"Invalid asset: {coin} (no book).")
        return parse.l2_book(raw)

    async def recent_trades(self, coin: str) -> list[Trade]:
        """The venue's latest prints of ``coin``, oldest first."""
        raw: list[Any] = await self._client.info({"type": "recentTrades", "coin": coin}) or []
        return parse.recent_trades(raw)

    async def candles(self, coin: str, interval: str, start_ms: int, end_ms: int) -> list[Candle]:
        req = {"coin": coin, "interval": interval, "startTime": start_ms, "endTime": end_ms}
        raw: list[Any] = await self._client.info({"type": "candleSnapshot", "req": req}) or []
        return [parse.candle(c) for c in raw]

    # ------------------------------------------------------------------ streams (supervisor)
    # Returned as they are (not wrapped in a generator) so that each subscription is registered
    # when the method is called: nothing between the call and the first ``__anext__`` is missed.

    def stream_books(self, coins: Sequence[str]) -> AsyncIterator[L2Book]:
        return self._streams.books(list(coins))

    def stream_trades(self, coins: Sequence[str]) -> AsyncIterator[Trade]:
        return self._streams.trades(list(coins))

    def stream_bbo(self, coins: Sequence[str]) -> AsyncIterator[Bbo]:
        return self._streams.bbo(list(coins))

    def stream_mids(self) -> AsyncIterator[dict[str, Decimal]]:
        return self._streams.mids()
