"""Round trips from fills: adds, reductions, flips, funding, owners kept apart; the PnL is the cash flow."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperfollow.backtest.roundtrips import FundingPaid, round_trips
from hyperfollow.domain.model import Fill, Side

D = Decimal


def fill(t: int, side: Side, size: str, px: str, fee: str = "0", coin: str = "BTC") -> Fill:
    return Fill(
        address="0xf", coin=coin, side=side, price=D(px), size=D(size), time_ms=t, start_position=D(0),
        direction="", closed_pnl=D(0), fee=D(fee), oid=t, tid=t, hash="0x", crossed=True,
    )  # fmt: skip


B, S = Side.BUY, Side.SELL


def test_hand_computed_round_trips() -> None:
    a, b = "copy:a", "copy:b"
    trades = round_trips(
        [
            (a, fill(1, B, "1", "100", "0.1")),
            (a, fill(2, B, "1", "110", "0.1")),
            (b, fill(3, B, "1", "100")),
            FundingPaid(a, "BTC", 3, D("0.5")),
            (a, fill(4, S, "0.5", "120", "0.05")),
            (a, fill(5, B, "0.5", "130", "0.05")),
            (a, fill(6, S, "3", "125", "0.3")),  # closes 2 (fee 0.2), opens a 1 short (fee 0.1)
            FundingPaid(a, "BTC", 7, D("-0.2")),
            (a, fill(8, B, "1", "120", "0.1")),
            (b, fill(9, S, "1", "90")),
        ]
    )
    assert [(t.owner, t.side, t.open_ms, t.close_ms) for t in trades] == [
        (a, B, 1, 6),
        (a, S, 6, 8),
        (b, B, 3, 9),
    ]
    long, short, other = trades
    # average cost: +7.5 on the 0.5 sold at 120 (avg 105), then +27.5 on 2 at 125 (avg 111.25)
    assert (long.size, long.pnl, long.fees, long.funding) == (D("2.5"), D(35), D("0.5"), D("0.5"))
    assert (long.entry_px, long.exit_px) == (D(110), D(124))
    assert long.net_pnl == D(34)
    assert (short.size, short.entry_px, short.exit_px, short.pnl) == (D(1), D(125), D(120), D(5))
    assert (short.fees, short.funding, short.net_pnl) == (D("0.2"), D("-0.2"), D(5))
    assert (other.pnl, other.coin) == (D(-10), "BTC")


def test_open_positions_are_not_trades() -> None:
    assert round_trips([("o", fill(1, B, "1", "100")), ("o", fill(2, S, "0.4", "101"))]) == []


def test_funding_without_a_position_is_refused() -> None:
    assert round_trips([FundingPaid("o", "BTC", 1, D(0))]) == []
    with pytest.raises(ValueError, match="no position open"):
        round_trips([FundingPaid("o", "BTC", 1, D("0.1"))])


def test_a_flip_splits_the_fee_exactly() -> None:
    trades = round_trips(
        [("o", fill(1, B, "3", "10")), ("o", fill(2, S, "10", "10", "1")), ("o", fill(3, B, "7", "10"))]
    )
    assert [t.fees for t in trades] == [D("0.3"), D("0.7")]
    assert sum(t.fees for t in trades) == D(1)


fills_strategy = st.lists(
    st.tuples(
        st.sampled_from(["o1", "o2"]),
        st.sampled_from(["BTC", "ETH"]),
        st.integers(-30, 30).filter(bool),
        st.integers(1, 100_000),
        st.integers(0, 500),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(raw=fills_strategy)
def test_round_trips_match_cash_flow_and_zero_crossings(raw: list[tuple[str, str, int, int, int]]) -> None:
    events: list[tuple[str, Fill]] = []
    position: dict[tuple[str, str], int] = {}
    crossings = 0
    for t, (owner, coin, tenths, cents, fee) in enumerate(raw):
        before = position.get((owner, coin), 0)
        after = before + tenths
        crossings += before != 0 and (after == 0 or (before > 0) != (after > 0))
        position[(owner, coin)] = after
        side = B if tenths > 0 else S
        events.append(
            (owner, fill(t, side, str(D(abs(tenths)) / 10), str(D(cents) / 100), str(D(fee) / 1000), coin))
        )
    for owner, coin in sorted(position):  # flatten everything at the end
        left = position[(owner, coin)]
        if left:
            crossings += 1
            events.append(
                (owner, fill(len(events), S if left > 0 else B, str(D(abs(left)) / 10), "500", "0", coin))
            )
    trades = round_trips(events)
    assert len(trades) == crossings
    cash = sum(((f.size * f.price) * (-1 if f.side is B else 1) for _, f in events), D(0))
    assert sum((t.pnl for t in trades), D(0)) == cash
    assert sum((t.fees for t in trades), D(0)) == sum((f.fee for _, f in events), D(0))
    assert all(t.size > 0 and t.close_ms >= t.open_ms for t in trades)
