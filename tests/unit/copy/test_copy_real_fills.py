"""Real leader fills (five mainnet accounts, 2,576 fills) through decide_mirror.

The follower's running position, built by applying every intent, must equal an independent lot-by-lot
model of a scaled mirror (opens: the scaled size rounded down, skipped under $10; closes: the same fraction
of ours, rounded down, all of it when the leader went flat; flips: flat, then the part beyond), and stay
within a few lots of ``ratio x`` the leader's ``startPosition`` series. Copy trading itself never sees
the adapter: the parser is used here only to read the fixture.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from decimal import Decimal
from functools import cache
from typing import Any

import pytest
from copy_helpers import apply

from hyperfollow.adapters.hyperliquid.parse import fill as parse_fill
from hyperfollow.copy.fills import Action, coalesce, parse_direction
from hyperfollow.copy.guards import worst_price
from hyperfollow.copy.mirror import decide_mirror
from hyperfollow.copy.model import FollowSettings, Skip, SkipReason
from hyperfollow.domain.model import Fill, Side
from hyperfollow.domain.rules import Instrument, Rounding, quantize_price, quantize_size, size_is_valid
from shared_data import vendored

AUDIT = vendored("real/copytrader_audit_202607/exchange_leader_fills.json.gz")
LEADER_EQUITY = Decimal(100_000)
SLOTS = ["acc2", "acc3", "acc4", "acc6", "acc9"]


@cache
def _queries() -> dict[str, list[dict[str, Any]]]:
    with gzip.open(AUDIT) as fh:
        data = json.load(fh)
    return {q["slot"]: q["fills"] for q in data["queries"]}


def _decimals(text: str) -> int:
    return len(text.partition(".")[2].rstrip("0"))


def leader_fills(slot: str) -> tuple[list[Fill], dict[str, Instrument]]:
    """The slot's fills in venue order (the file is oldest first, a sweep in startPosition order), and
    instruments whose size decimals are the finest the fills use (HIP-3 ``xyz:`` coins isolated only)."""
    raws = _queries()[slot]
    fills = [parse_fill(f"0x{slot}", raw) for raw in raws]
    sz_dec: dict[str, int] = defaultdict(int)
    for raw in raws:
        sz_dec[raw["coin"]] = max(sz_dec[raw["coin"]], _decimals(raw["sz"]), _decimals(raw["startPosition"]))
    instruments = {
        coin: Instrument(
            coin,
            i,
            dec,
            10,
            only_isolated=coin.startswith("xyz:"),
            dex=coin.partition(":")[0] if ":" in coin else "",
        )
        for i, (coin, dec) in enumerate(sorted(sz_dec.items()))
    }
    return fills, instruments


class Model:
    """The independent scaled mirror: our expected position per coin, lot by lot."""

    def __init__(self, ratio: Decimal, settings: FollowSettings) -> None:
        self.ratio, self.settings = ratio, settings
        self.expected: dict[str, Decimal] = defaultdict(Decimal)

    def _open(self, inst: Instrument, side: Side, size: Decimal, mark: Decimal) -> Decimal:
        """Signed lots we open on ``side`` for a leader size: scaled, rounded down, zero under $10 at the
        lower of the mark and our worst price (what the venue and the book will see)."""
        ours = quantize_size(inst, size * self.ratio, Rounding.DOWN)
        px = min(mark, worst_price(inst, mark, side, self.settings.slippage_cap_pct))
        return (ours if ours * px >= 10 else Decimal(0)) * (1 if side is Side.BUY else -1)

    def step(self, f: Fill, inst: Instrument, mark: Decimal, preexisting: bool) -> None:
        """Apply one leader fill to our expected position (signed, in the follower's own direction)."""
        e, start = self.expected[f.coin], f.start_position
        end = start + f.signed_size
        side = f.side.opposite if self.settings.reverse else f.side
        if start == 0 or (abs(end) > abs(start) and (start > 0) == (end > 0)):  # open or add
            if not (preexisting and start != 0):
                self.expected[f.coin] = e + self._open(inst, side, f.size, mark)
        elif end == 0:  # the leader is flat
            self.expected[f.coin] = Decimal(0)
        elif (start > 0) == (end > 0):  # a reduce: the same fraction of ours
            cut = quantize_size(inst, abs(e) * f.size / abs(start), Rounding.DOWN)
            self.expected[f.coin] = e - cut if e > 0 else e + cut
        else:  # a flip: flat, then the part beyond
            self.expected[f.coin] = self._open(inst, side, abs(end), mark)


def run_slot(slot: str, ratio: Decimal, settings: FollowSettings) -> dict[str, Any]:
    fills, instruments = leader_fills(slot)
    orders = coalesce(fills)
    model = Model(ratio, settings)
    ours: dict[str, Decimal] = defaultdict(Decimal)
    leader: dict[str, Decimal] = {}
    preexisting: dict[str, bool] = {}
    reasons: Counter[SkipReason] = Counter()
    worst_gap_lots = 0
    n_intents = 0
    for f in orders:
        inst = instruments[f.coin]
        mark = quantize_price(inst, f.price, Rounding.NEAREST)
        if f.coin not in leader:
            leader[f.coin] = f.start_position
            preexisting[f.coin] = f.start_position != 0
        assert leader[f.coin] == f.start_position  # the series is continuous: nothing missing
        decision = decide_mirror(
            f,
            leader_equity=LEADER_EQUITY,
            follower_equity=LEADER_EQUITY * ratio,
            follower_position=ours[f.coin],
            mark=mark,
            instrument=inst,
            settings=settings,
            follower="0xfollower",
            leader=f.address,
            preexisting=preexisting[f.coin],
        )
        for item in decision:
            if isinstance(item, Skip):
                reasons[item.reason] += 1
            else:
                n_intents += 1
                assert size_is_valid(inst, item.size)
                assert item.is_cross is not f.coin.startswith("xyz:")
                if item.reduce_only:
                    assert item.size <= abs(ours[f.coin])
        ours[f.coin] = apply(ours[f.coin], decision)
        model.step(f, inst, mark, preexisting[f.coin])
        leader[f.coin] = f.start_position + f.signed_size
        if leader[f.coin] == 0:
            preexisting[f.coin] = False
        sign = -1 if settings.reverse else 1
        assert ours[f.coin] == model.expected[f.coin], (slot, f)
        if leader[f.coin] == 0:
            assert ours[f.coin] == 0  # the leader is flat: so are we
        if not preexisting[f.coin]:
            gap = abs(ours[f.coin] - sign * ratio * leader[f.coin]) / inst.lot
            worst_gap_lots = max(worst_gap_lots, int(gap))
            if ours[f.coin] != 0:
                assert (ours[f.coin] > 0) == (sign * leader[f.coin] > 0)  # same side as the mirror
    return {
        "orders": len(orders),
        "fills": len(fills),
        "intents": n_intents,
        "reasons": reasons,
        "ours": dict(ours),
        "leader": leader,
        "worst_gap_lots": worst_gap_lots,
        "instruments": instruments,
    }


@pytest.mark.parametrize("slot", SLOTS)
@pytest.mark.parametrize("ratio", [Decimal(1), Decimal("0.37"), Decimal("0.05")])
def test_the_follower_is_the_independent_scaled_mirror(slot: str, ratio: Decimal) -> None:
    # run_slot checks after every leader order: ours == the model, flat when the leader is flat, same side
    out = run_slot(slot, ratio, FollowSettings())
    if slot in ("acc3", "acc4"):  # positions opened before the window: ignored, nothing copied
        assert out["intents"] == 0
        assert set(out["reasons"]) == {SkipReason.SKIP_PREEXISTING}
    else:
        assert out["intents"] > 0.85 * out["orders"]


@pytest.mark.parametrize("slot", ["acc2", "acc6"])
@pytest.mark.parametrize("ratio", [Decimal(1), Decimal("0.37"), Decimal("0.05")])
def test_without_skips_the_mirror_stays_within_lots_of_the_leader(slot: str, ratio: Decimal) -> None:
    out = run_slot(slot, ratio, FollowSettings())
    assert SkipReason.SKIP_MIN_NOTIONAL not in out["reasons"]
    assert out["worst_gap_lots"] <= 2  # only lot rounding between us and ratio x the leader
    if ratio == 1:
        assert out["worst_gap_lots"] == 0
        assert {c: s for c, s in out["ours"].items() if s} == {c: s for c, s in out["leader"].items() if s}


def test_tiny_leader_orders_are_skipped_with_the_reason() -> None:
    out = run_slot("acc9", Decimal(1), FollowSettings())
    # two partial fills (0.09 and 0.1 xyz:SHAZ at ~61) of the leader's resting orders are under $10
    assert out["reasons"][SkipReason.SKIP_MIN_NOTIONAL] == 2


@pytest.mark.parametrize("slot", ["acc2", "acc6", "acc9"])
def test_reverse_is_the_negated_mirror(slot: str) -> None:
    straight = run_slot(slot, Decimal("0.5"), FollowSettings())
    reverse = run_slot(slot, Decimal("0.5"), FollowSettings(reverse=True))
    assert {c: -s for c, s in straight["ours"].items()} == reverse["ours"]


def test_the_real_sweeps_coalesce_into_orders_and_directions_parse() -> None:
    total, merged = 0, 0
    for slot in SLOTS:
        fills, _ = leader_fills(slot)
        total += len(fills)
        merged += len(coalesce(fills))
        assert all(parse_direction(f.direction).action is not Action.UNKNOWN for f in fills)
    assert total == 2576
    assert merged < total / 2  # most leader orders sweep several levels


def test_preexisting_positions_are_ignored_until_the_leader_is_flat() -> None:
    out = run_slot("acc4", Decimal(1), FollowSettings())
    assert out["intents"] == 0
    assert out["reasons"] == Counter({SkipReason.SKIP_PREEXISTING: out["orders"]})
    assert run_slot("acc9", Decimal(1), FollowSettings())["reasons"][SkipReason.SKIP_PREEXISTING] == 1
