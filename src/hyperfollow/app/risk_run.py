"""The risk service beside the copy engine: every copied position gets its exits and its exchange-side stop.

Wiring only: the pieces are ``risk.service.RiskService`` (scan, stops, stale orders, breakers, reconciliation)
and ``store.risk_persist.RiskPersistence`` (holdings and state changes in the same database as the copy
journal). Orders are owned through one registry for the process (``owners``, ``core.orders``: the copy
engine's ``CopyService.owners``): the risk service never sweeps an owned order as stale nor cancels it as an
orphan, and claims its own stops there.

The dead man's switch is off here: the venue's ``scheduleCancel`` cancels *every* open order of the account,
trigger orders included, so a process that dies would lose its native stops one window later - the opposite of
what they are for. (It is the right tool for accounts that rest entries without native stops.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from hyperfollow.copy.state import Ledger
from hyperfollow.core.orders import OrderOwners
from hyperfollow.ports.clock import Clock
from hyperfollow.ports.venue import Venue
from hyperfollow.risk.exits import ExitPolicy
from hyperfollow.risk.service import RiskEvent, RiskService, RiskSettings
from hyperfollow.store import Store
from hyperfollow.store.risk_persist import RiskPersistence


async def start_risk(
    venues: Mapping[str, Venue],
    store: Store | None,
    *,
    clock: Clock,
    owners: OrderOwners,
    settings: RiskSettings | None = None,
    policy_for: Callable[[str, str], ExitPolicy] | None = None,
    listeners: Sequence[Callable[[RiskEvent], None]] = (),
) -> RiskService:
    """Restore the accounts' holdings and trading states from ``store``, start the risk service, return it
    (close it after). A HALTED account stays halted across restarts: only a manual reset ends a halt.
    ``listeners`` hear every risk event from the start (the stops placed for positions already open too).
    ``store=None``: nothing is restored or recorded (a backtest, which never restarts)."""
    persist = RiskPersistence(store, clock=clock.now_ms) if store is not None else None
    restore = await persist.restore(list(venues)) if persist is not None else []
    states = {}
    if persist is not None:
        states = {a: state for a in venues if (state := await persist.latest_state(a)) is not None}
    risk = RiskService(
        venues,
        clock=clock,
        settings=settings or RiskSettings(deadman=False),
        owners=owners,
        restore=restore,
        on_state_change=persist.on_state_change if persist is not None else None,
        on_holdings_change=persist.save_holdings if persist is not None else None,
        restore_states=states,
        policy_for=policy_for,
    )
    risk.listeners.extend(listeners)
    await risk.start()
    return risk


def policy_by_leader(
    ledger: Ledger, policies: Mapping[str, ExitPolicy], default: ExitPolicy
) -> Callable[[str, str], ExitPolicy]:
    """The exit policy of a follower's position in a coin: the policy of the follow (leader) that holds the
    largest share of it in the copy ledger, counting an order still in flight (the risk service may see the
    fill before the copy engine has its answer); ``default`` for a position no follow holds (adopted or
    manual)."""

    def policy_for(account: str, coin: str) -> ExitPolicy:
        leaders = sorted(ledger.leaders_for(account, coin) & set(policies))
        if not leaders:
            return default
        leader = max(leaders, key=lambda lead: abs(ledger.position(account, lead, coin)))
        return policies[leader]

    return policy_for
