"""``OrderGateway`` of the simulated account: the engine calls ``exchange/actions.py`` makes for each
action, with the same grid rounding and the same answers as the other adapters (``adapters/sim/convert``
puts the order on the grid, ``adapters/hyperliquid/parse`` reads the engine's statuses, so rejections
carry the venue's texts and map to the same error types). Nothing here can reach the real venue: the
gateway holds the paper session and a ``market_ready`` hook (make sure the outside book of a coin is
known before an order meets it), nothing else.

Every action persists the account before it returns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence

from hyperfollow.adapters.paper.account import PaperSession
from hyperfollow.adapters.sim.gateway import EngineGateway
from hyperfollow.domain.errors import VenueRejected

MarketReady = Callable[[str], Awaitable[None]]


class PaperGateway(EngineGateway):
    """Orders, cancels, leverage and the dead man's switch of the simulated account (``EngineGateway``):
    a coin's outside book is known before an order meets it, and the account is saved after every action."""

    def __init__(self, session: PaperSession, market_ready: MarketReady) -> None:
        super().__init__(session)
        self._paper = session
        self._market_ready = market_ready

    async def _ready(self, coins: Sequence[str]) -> None:
        for coin in coins:
            with contextlib.suppress(VenueRejected):  # an unknown coin: refused item by item
                await self._market_ready(coin)

    def _seq(self, index: int) -> int:
        # the engine's oid counter is saved with the account, so a resumed account never derives a cloid
        # it used before
        return self._paper.engine.next_oid + index + 1

    async def _done(self) -> None:
        self._paper.publish()
        await self._paper.persist(force=True)
