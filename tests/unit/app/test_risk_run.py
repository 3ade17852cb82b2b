"""Which exit policy a copied position gets: its dominant leader's, counting orders still in flight."""

from __future__ import annotations

from decimal import Decimal

from hyperfollow.app.risk_run import policy_by_leader
from hyperfollow.copy.state import Ledger
from hyperfollow.domain.model import Side
from hyperfollow.risk.exits import ExitPolicy

F, A, B = "0xf", "0xa", "0xb"
TIGHT, LOOSE, DEFAULT = (
    ExitPolicy(stop_loss_roe_pct=Decimal(5)),
    ExitPolicy(stop_loss_roe_pct=Decimal(30)),
    ExitPolicy(),
)


def test_the_leader_with_the_order_in_flight_or_the_largest_share_decides() -> None:
    ledger = Ledger()
    policy_for = policy_by_leader(ledger, {A: TIGHT, B: LOOSE}, DEFAULT)
    assert policy_for(F, "ETH") == DEFAULT  # nobody holds it: adopted or manual
    ledger.sent("c1", (F, B, "ETH"), Side.BUY)  # B's copy is on its way: its fill may arrive first
    assert policy_for(F, "ETH") == LOOSE
    ledger.acked("c1", Decimal("0.1"))
    ledger.sent("c2", (F, A, "ETH"), Side.BUY)
    ledger.acked("c2", Decimal("0.5"))
    assert policy_for(F, "ETH") == TIGHT  # A's 0.5 outweighs B's 0.1
    assert policy_for(F, "BTC") == DEFAULT
