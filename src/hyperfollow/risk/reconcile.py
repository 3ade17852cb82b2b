"""Reconciliation decisions (pure): our records against the venue's positions and open orders.

The venue is the truth. Run at start-up, after an ``OutcomeUnknown``, after a stream gap and every N
seconds; the shell fetches, calls these, acts and logs each action.

* **Flip guard** (before any submit): our record and the live position must agree in sign and within
  ``RESIDUAL_LOTS`` lots; otherwise the submit is blocked and the coin reconciled first.
* **Flat sweep**: our record is non-zero but the venue is flat -> the record is closed. A residual under
  ``RESIDUAL_LOTS`` (1.5) lots counts as flat: rounding dust of proportional closes, not a position.
* **Auto-discovery**: a venue position we have no record of is adopted (with the default exit policy).
* **Fix**: both sides hold something but disagree -> the record takes the venue's size.
* **Orphans**: an open order we did not place (its cloid is not in our journal), or a reduce-only order on
  a coin that is flat, is cancelled.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from hyperfollow.domain.model import OrderState
from hyperfollow.domain.rules import Instrument

RESIDUAL_LOTS = Decimal("1.5")


class ActionKind(StrEnum):
    CLOSE_RECORD = "close_record"  # flat sweep
    ADOPT = "adopt"  # auto-discovery
    FIX_RECORD = "fix_record"  # record disagrees with the venue: take the venue's size
    CANCEL_ORPHAN = "cancel_orphan"


@dataclass(frozen=True, slots=True)
class ReconcileAction:
    kind: ActionKind
    coin: str
    record_size: Decimal = Decimal(0)
    venue_size: Decimal = Decimal(0)
    oid: int | None = None
    reason: str = ""


def is_flat(size: Decimal, inst: Instrument) -> bool:
    """Under ``RESIDUAL_LOTS`` lots counts as flat."""
    return abs(size) < RESIDUAL_LOTS * inst.lot


def flip_guard(record: Decimal, live: Decimal, inst: Instrument) -> bool:
    """True when a submit based on ``record`` may go: same sign (or both flat) and within the residual."""
    if is_flat(record, inst) and is_flat(live, inst):
        return True
    if record * live < 0:
        return False
    return abs(record - live) < RESIDUAL_LOTS * inst.lot


def reconcile(
    records: Mapping[str, Decimal],
    live: Mapping[str, Decimal],
    orders: Sequence[OrderState],
    our_cloids: Collection[str],
    instruments: Mapping[str, Instrument],
) -> list[ReconcileAction]:
    """What to do so our records and the venue agree, coin by coin (sorted), then orders."""
    actions: list[ReconcileAction] = []
    for coin in sorted(set(records) | set(live)):
        inst = instruments.get(coin)
        if inst is None:
            continue  # not a perp we trade (spot, a delisted coin): the shell logs it
        ours, theirs = records.get(coin, Decimal(0)), live.get(coin, Decimal(0))
        ours_flat, theirs_flat = is_flat(ours, inst), is_flat(theirs, inst)
        if theirs_flat:
            if ours != 0:  # a position, or dust of one: the venue holds nothing
                actions.append(
                    ReconcileAction(ActionKind.CLOSE_RECORD, coin, ours, theirs, reason="venue flat")
                )
        elif ours_flat:
            actions.append(
                ReconcileAction(ActionKind.ADOPT, coin, ours, theirs, reason="unknown venue position")
            )
        elif not flip_guard(ours, theirs, inst):
            why = "opposite sides" if ours * theirs < 0 else "sizes differ"
            actions.append(ReconcileAction(ActionKind.FIX_RECORD, coin, ours, theirs, reason=why))
    for order in orders:
        position = live.get(order.coin, Decimal(0))
        inst = instruments.get(order.coin)
        if order.cloid is None or order.cloid not in our_cloids:
            actions.append(
                ReconcileAction(ActionKind.CANCEL_ORPHAN, order.coin, oid=order.oid, reason="not ours")
            )
        elif order.reduce_only and inst is not None and is_flat(position, inst):
            actions.append(
                ReconcileAction(
                    ActionKind.CANCEL_ORPHAN, order.coin, oid=order.oid, reason="reduce-only on flat"
                )
            )
    return actions
