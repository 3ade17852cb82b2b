"""What the risk service needs from the store, in the shapes its constructor takes:

    persist = RiskPersistence(store, clock=clock.now_ms)  # clock: the ports.clock.Clock
    svc = RiskService(venues, clock=clock, restore=await persist.restore(accounts),
                      on_state_change=persist.on_state_change,
                      on_holdings_change=persist.save_holdings)

* ``restore``: the holdings recorded before a restart (the service reconciles them at start: a record the
  venue no longer holds is swept, and ``save_holdings`` then drops it from the store);
* ``on_state_change``: every trading state change appended to ``risk_events``;
* ``save_holdings``: an account's whole set of holdings after a fill, a scan or a reconciliation (one short
  transaction; no venue I/O inside it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import structlog

from hyperfollow.risk.breakers import StateChange
from hyperfollow.risk.gate import TradingState
from hyperfollow.risk.scan import Holding
from hyperfollow.store.unit import Store

log = structlog.get_logger(__name__)


class RiskPersistence:
    """The risk service's records in ``store``; ``clock`` (epoch ms) stamps the holdings' ``updated_ms``."""

    def __init__(self, store: Store, *, clock: Callable[[], int]) -> None:
        self.store = store
        self._clock = clock

    async def restore(self, accounts: Iterable[str] | None = None) -> list[Holding]:
        """The recorded holdings (of ``accounts``; every account's when ``None``)."""
        async with self.store.transaction() as tx:
            if accounts is None:
                return await tx.holdings.all()
            out: list[Holding] = []
            for account in accounts:
                out += await tx.holdings.all(account)
            return out

    async def save_holdings(self, account: str, holdings: list[Holding]) -> None:
        """Make ``holdings`` the account's recorded set (coins not in it are removed)."""
        async with self.store.transaction() as tx:
            await tx.holdings.replace_account(account, holdings, now_ms=self._clock())

    async def on_state_change(self, account: str, change: StateChange) -> None:
        """Append one trading state change to the account's events."""
        async with self.store.transaction() as tx:
            await tx.risk_events.record(account, change)

    async def latest_state(self, account: str) -> TradingState | None:
        """The account's last recorded trading state (``None``: no change ever recorded)."""
        async with self.store.transaction() as tx:
            return await tx.risk_events.latest_state(account)
