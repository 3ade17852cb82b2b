"""Reconciliation: flip guard, flat sweep with the 1.5-lot residual, adoption, fixes, orphan orders."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyperfollow.domain.model import OrderState, Side
from hyperfollow.domain.rules import Instrument
from hyperfollow.risk.reconcile import ActionKind, flip_guard, is_flat, reconcile

ETH = Instrument("ETH", 1, 4, 25)  # lot 0.0001
SOL = Instrument("SOL", 5, 2, 20)  # lot 0.01
INSTS = {"ETH": ETH, "SOL": SOL}
D = Decimal


def order(coin: str, cloid: str | None, *, reduce_only: bool = False, oid: int = 7) -> OrderState:
    return OrderState(coin, Side.SELL, D(3000), D("0.1"), D("0.1"), oid, 0, "open", cloid, reduce_only)


@pytest.mark.parametrize(
    ("record", "live", "ok"),
    [
        ("0.5", "0.5", True),
        ("0.5", "0.50014", True),  # 1.4 lots apart: rounding dust
        ("0.5", "0.5002", False),  # 2 lots apart
        ("0.5", "-0.5", False),  # a flip we did not make
        ("0", "0.00001", True),  # both flat
        ("0", "0.3", False),
    ],
)
def test_flip_guard(record: str, live: str, ok: bool) -> None:
    assert flip_guard(D(record), D(live), ETH) is ok


def test_reconcile_sweeps_adopts_fixes_and_cancels_orphans() -> None:
    records = {"ETH": D("0.5"), "SOL": D("0.01"), "BTC": D(1)}  # BTC: not a perp we know here
    live = {"ETH": D("-0.2"), "XRP": D(5)}
    actions = reconcile(records, live, [], set(), INSTS)
    assert [(a.kind, a.coin) for a in actions] == [
        (ActionKind.FIX_RECORD, "ETH"),  # opposite sides: the venue's -0.2 wins
        (ActionKind.CLOSE_RECORD, "SOL"),  # 1 lot of dust, venue flat
    ]
    assert actions[0].reason == "opposite sides"
    adopted = reconcile({}, {"SOL": D("3")}, [], set(), INSTS)
    assert [(a.kind, a.venue_size) for a in adopted] == [(ActionKind.ADOPT, D(3))]
    orders = [
        order("ETH", None, oid=1),
        order("ETH", "0xours", oid=2),
        order("SOL", "0xours", reduce_only=True, oid=3),
    ]
    cancels = reconcile({"ETH": D("0.1")}, {"ETH": D("0.1")}, orders, {"0xours"}, INSTS)
    assert [(a.kind, a.oid, a.reason) for a in cancels] == [
        (ActionKind.CANCEL_ORPHAN, 1, "not ours"),
        (ActionKind.CANCEL_ORPHAN, 3, "reduce-only on flat"),
    ]


sizes = st.decimals(min_value=-5, max_value=5, places=4)


@given(sizes, sizes)
def test_after_acting_on_the_actions_records_agree_with_the_venue(record: Decimal, live: Decimal) -> None:
    actions = reconcile({"ETH": record}, {"ETH": live}, [], set(), INSTS)
    fixed = record
    for action in actions:
        fixed = D(0) if action.kind is ActionKind.CLOSE_RECORD else action.venue_size
    assert flip_guard(fixed, live, ETH)
    assert len(actions) <= 1
    if is_flat(live, ETH) and record == 0:
        assert actions == []
