"""The copy service's mids: kept from the venue's ``allMids`` stream so a copy never waits for a request.

A coin's mid is served from the stream while it is younger than ``max_age_secs``; a coin the stream has not
shown (another dex) or a stale one costs one REST read of every dex. Times are on the clock's monotonic time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from decimal import Decimal

from hyperfollow.copy.mirror_loop import Pump, Received
from hyperfollow.ports.clock import Clock
from hyperfollow.ports.venue import MarketData


class MidsCache:
    """The last mid per coin and when it was seen."""

    def __init__(self, market: MarketData, *, clock: Clock, max_age_secs: float, retry_secs: float) -> None:
        self._market = market
        self._clock = clock
        self._max_age = max_age_secs
        self._retry = retry_secs
        self._mids: dict[str, Decimal] = {}
        self._seen: dict[str, float] = {}
        self._pump: Pump[dict[str, Decimal]] | None = None

    def get(self, coin: str) -> Decimal | None:
        """The last mid seen for ``coin`` (streamed or read), without a request."""
        return self._mids.get(coin)

    def last_seen_ms(self, now_ms: int) -> int | None:
        """When the newest mid arrived, on the caller's clock ``now_ms``."""
        if not self._seen:
            return None
        return now_ms - int((self._clock.monotonic() - max(self._seen.values())) * 1000)

    async def marks(self, coins: Iterable[str] | None = None) -> dict[str, Decimal]:
        """Mids: without a request when every coin asked for is fresh; else one REST read."""
        if coins is not None:
            oldest = self._clock.monotonic() - self._max_age
            if all(self._seen.get(c, -1.0) >= oldest for c in coins):
                return self._mids
        self.put(await self._market.mids())
        return dict(self._mids)

    def put(self, mids: Mapping[str, Decimal]) -> None:
        now = self._clock.monotonic()
        self._mids = {**self._mids, **mids}  # a stream of one dex keeps the others' last values
        for coin in mids:
            self._seen[coin] = now

    def start(self) -> None:
        """Follow the venue's mids stream (re-opened if it fails)."""

        async def open_stream() -> AsyncIterator[dict[str, Decimal]]:
            return self._market.stream_mids()

        async def handle(batch: list[Received[dict[str, Decimal]]]) -> None:
            for mids, _ in batch:
                self.put(mids)

        self._pump = Pump("copy.mids", open_stream, handle, clock=self._clock, retry_secs=self._retry)
        self._pump.start()

    async def stop(self) -> None:
        if self._pump is not None:
            await self._pump.stop()
            self._pump = None
