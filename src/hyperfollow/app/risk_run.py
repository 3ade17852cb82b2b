"""The risk service beside the copy engine: every copied position gets its exits and its exchange-side stop.

Wiring only: the pieces are ``risk.service.RiskService`` (scan, stops, stale orders, breakers, reconciliation)
and ``store.risk_persist.RiskPersistence`` (holdings and state changes in the same database as the copy
journal). The copy engine's in-flight orders are "known" to the risk service, so reconciliation never cancels
them as orphans.

The dead man's switch is off here: the venue's ``scheduleCancel`` cancels *every* open order of the account,
trigger orders included, so a process that dies would lose its native stops one window later - the opposite of
what they are for. (It is the right tool for accounts that rest entries without native stops.)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from hyperfollow.ports.venue import Venue
from hyperfollow.risk.service import RiskService, RiskSettings
from hyperfollow.store import Store
from hyperfollow.store.risk_persist import RiskPersistence


async def start_risk(
    venues: Mapping[str, Venue],
    store: Store,
    *,
    clock: Callable[[], int],
    known_cloids: Callable[[], Collection[str]],
    settings: RiskSettings | None = None,
) -> RiskService:
    """Restore the accounts' holdings and trading states from ``store``, start the risk service, return it
    (close it after). A HALTED account stays halted across restarts: only a manual reset ends a halt."""
    persist = RiskPersistence(store, clock=clock)
    restore = await persist.restore(list(venues))
    states = {a: state for a in venues if (state := await persist.latest_state(a)) is not None}
    risk = RiskService(
        venues,
        clock=clock,
        settings=settings or RiskSettings(deadman=False),
        known_cloids=known_cloids,
        restore=restore,
        on_state_change=persist.on_state_change,
        on_holdings_change=persist.save_holdings,
        restore_states=states,
    )
    await risk.start()
    return risk
