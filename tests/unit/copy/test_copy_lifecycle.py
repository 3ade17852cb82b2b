"""Joining a leader's existing positions (ignore / join within a price guard) and stopping (keep / close)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from copy_helpers import ETH, FOLLOWER, INSTRUMENTS, LEADER, TSLA, D, apply
from hypothesis import given
from hypothesis import strategies as st

from hyperfollow.copy.lifecycle import Settlement, decide_join, decide_stop, plan_close
from hyperfollow.copy.model import (
    CopyIntent,
    Decision,
    ExistingPositions,
    FollowSettings,
    Skip,
    SkipReason,
    StopAction,
    intents,
    skips,
)
from hyperfollow.domain.model import Position, Side
from hyperfollow.domain.rules import Instrument

JOIN = FollowSettings(existing_positions=ExistingPositions.JOIN)


def leader_pos(size: str, entry: str = "3000", coin: str = "ETH", leverage: int = 10) -> Position:
    return Position(coin, D(size), D(entry), D(0), leverage, True, abs(D(size)) * D(entry), D(0))


def join(
    p: Position,
    mark: str,
    ours: str = "0",
    settings: FollowSettings = JOIN,
    inst: Instrument = ETH,
) -> Decision:
    return decide_join(
        p,
        leader_equity=D(100_000),
        follower_equity=D(10_000),
        follower_position=D(ours),
        mark=D(mark),
        instrument=inst,
        settings=settings,
        follower=FOLLOWER,
        leader=LEADER,
    )


def test_ignore_is_the_default() -> None:
    (s,) = join(leader_pos("10"), "3000", settings=FollowSettings())
    assert isinstance(s, Skip)
    assert s.reason is SkipReason.SKIP_PREEXISTING


@pytest.mark.parametrize(
    ("size", "mark", "ours", "after", "skipped"),
    [
        ("10", "3000", "0", "1", None),
        ("10", "3030", "0", "1", None),  # +1 %: at the guard
        ("10", "3031", "0", "0", SkipReason.SKIP_JOIN_GUARD),  # a long joined 1.03 % higher
        ("10", "2500", "0", "1", None),  # cheaper than the leader: fine
        ("-10", "2969", "0", "0", SkipReason.SKIP_JOIN_GUARD),  # a short joined 1.03 % lower
        ("-10", "3000", "0.5", "-1", None),  # we held the other side: leave it first
        ("0.02", "3000", "0", "0", SkipReason.SKIP_MIN_NOTIONAL),  # 0.002 ETH = $6
    ],
)
def test_join_within_the_price_guard(
    size: str, mark: str, ours: str, after: str, skipped: SkipReason | None
) -> None:
    decision = join(leader_pos(size), mark, ours)
    assert apply(D(ours), decision) == D(after)
    assert [s.reason for s in skips(decision)] == ([skipped] if skipped else [])
    for it in intents(decision):
        assert it.reduce_only is (it.leg == "close")
        assert it.leverage == 3  # the leader's 10x capped


def test_joining_twice_does_nothing_and_cloids_are_stable() -> None:
    assert join(leader_pos("10"), "3000", "1") == []
    a, b = join(leader_pos("10"), "3000"), join(leader_pos("10"), "3000")
    assert a == b
    assert a != join(leader_pos("12"), "3000")


def test_join_in_reverse_takes_the_other_side() -> None:
    settings = FollowSettings(existing_positions=ExistingPositions.JOIN, reverse=True)
    decision = join(leader_pos("10"), "2970", settings=settings)  # a sell 1 % under their entry: at the guard
    (it,) = decision
    assert isinstance(it, CopyIntent)
    assert (it.side, it.size) == (Side.SELL, D(1))


def test_join_hip3_is_isolated() -> None:
    (it,) = join(leader_pos("100", "300", "xyz:TSLA"), "300", inst=TSLA)
    assert isinstance(it, CopyIntent)
    assert (it.is_cross, it.size) == (False, D(10))


def test_stop_keep_does_nothing() -> None:
    assert decide_stop(
        {"ETH": D(1)}, marks={"ETH": D(3000)}, instruments=INSTRUMENTS, settings=FollowSettings(),
        follower=FOLLOWER, leader=LEADER, stop_ref="t1",
    ) == []  # fmt: skip


def test_stop_close_closes_each_position_reduce_only() -> None:
    settings = FollowSettings(stop_action=StopAction.CLOSE)
    positions = {"ETH": D("0.5"), "SOL": D("-3"), "HYPE": D(0), "DOGE": D(10), "xyz:TSLA": D(2)}
    decision = decide_stop(
        positions,
        marks={"ETH": D(3000), "SOL": D(150), "DOGE": D("0.1")},
        instruments=INSTRUMENTS,
        settings=settings,
        follower=FOLLOWER,
        leader=LEADER,
        stop_ref="t1",
    )
    closes = intents(decision)
    assert [(c.coin, c.side, c.size, c.reduce_only) for c in closes] == [
        ("ETH", Side.SELL, D("0.5"), True),
        ("SOL", Side.BUY, D(3), True),
    ]
    assert [(s.coin, s.reason) for s in skips(decision)] == [
        ("DOGE", SkipReason.SKIP_UNKNOWN_COIN),
        ("xyz:TSLA", SkipReason.SKIP_NO_MARK),
    ]
    assert len({c.cloid for c in closes}) == 2
    again = decide_stop(
        positions, marks={"ETH": D(3000), "SOL": D(150)}, instruments=INSTRUMENTS, settings=settings,
        follower=FOLLOWER, leader=LEADER, stop_ref="t1",
    )  # fmt: skip
    assert [c.cloid for c in intents(again)] == [c.cloid for c in closes]


# --------------------------------------------------------------------------- closing shares of a net position

A, B, C = "0xaaaa", "0xbbbb", "0xcccc"
CLOSE = FollowSettings(stop_action=StopAction.CLOSE)


def close_plan(
    shares: dict[str, str], venue: str, closing: list[str], coin: str = "ETH"
) -> tuple[list[CopyIntent], list[Settlement]]:
    plan = plan_close(
        {coin: {k: D(v) for k, v in shares.items()}},
        closing=closing,
        venue_positions={coin: D(venue)},
        marks={coin: D(3000)},
        instruments=INSTRUMENTS,
        settings=dict.fromkeys(closing, CLOSE),
        follower=FOLLOWER,
        stop_ref="t1",
    )
    return [i for d in plan.closes.values() for i in intents(d)], plan.settlements


def after(shares: dict[str, str], closes: list[CopyIntent], settled: list[Settlement]) -> dict[str, Decimal]:
    out = {k: D(v) for k, v in shares.items()}
    for c in closes:
        out[c.leader] += c.size if c.side is Side.BUY else -c.size
    for s in settled:
        out[s.leader] += s.change
    return out


def test_closing_one_of_two_opposite_shares_on_a_flat_account_sends_nothing_and_settles_both() -> None:
    closes, settled = close_plan({A: "1", B: "-1"}, "0", [A])
    assert closes == []
    assert [(s.leader, s.change, s.counterparty, s.price) for s in settled] == [
        (A, D(-1), B, D(3000)),
        (B, D(1), A, D(3000)),
    ]
    assert after({A: "1", B: "-1"}, closes, settled) == {A: 0, B: 0}


def test_closing_a_share_on_the_nets_side_closes_at_most_the_net() -> None:
    closes, settled = close_plan({A: "2", B: "-1"}, "1", [A])
    assert [(c.leader, c.side, c.size, c.reduce_only) for c in closes] == [(A, Side.SELL, D(1), True)]
    assert [(s.leader, s.change) for s in settled] == [(A, D(-1)), (B, D(1))]
    assert after({A: "2", B: "-1"}, closes, settled) == {A: 0, B: 0}


def test_a_share_beside_another_on_the_same_side_is_closed_alone() -> None:
    closes, settled = close_plan({A: "1", B: "1"}, "2", [A])
    assert [(c.leader, c.side, c.size) for c in closes] == [(A, Side.SELL, D(1))]
    assert settled == []


def test_a_share_against_a_bigger_opposite_one_is_settled_and_the_other_keeps_the_venues() -> None:
    closes, settled = close_plan({A: "1", B: "-2"}, "-1", [A])
    assert closes == []
    assert after({A: "1", B: "-2"}, closes, settled) == {A: 0, B: D(-1)}  # what the venue holds


def test_closing_everything_closes_the_net_once_and_settles_every_ledger() -> None:
    shares = {A: "2", B: "-1", C: "1"}
    closes, settled = close_plan(shares, "2", [A, B, C])
    assert [(c.leader, c.side, c.size, c.reduce_only) for c in closes] == [(A, Side.SELL, D(2), True)]
    assert after(shares, closes, settled) == {A: 0, B: 0, C: 0}
    assert {(s.leader, s.counterparty) for s in settled} == {(B, C), (C, B)}


def test_only_what_the_venue_holds_is_sent_and_the_rest_is_settled_alone() -> None:
    closes, settled = close_plan({A: "1"}, "0", [A])  # closed at the venue by someone else
    assert closes == []
    assert [(s.leader, s.change, s.counterparty) for s in settled] == [(A, D(-1), None)]
    foreign, none = close_plan({A: "1"}, "3", [A])  # two more held by hand: not ours to close
    assert [(c.side, c.size) for c in foreign] == [(Side.SELL, D(1))]
    assert none == []


def test_a_coin_without_a_mark_is_skipped_and_nothing_settled() -> None:
    plan = plan_close(
        {"SOL": {A: D(3)}}, closing=[A], venue_positions={"SOL": D(3)}, marks={}, instruments=INSTRUMENTS,
        settings={A: CLOSE}, follower=FOLLOWER, stop_ref="t1",
    )  # fmt: skip
    assert [s.reason for s in skips(plan.closes[A])] == [SkipReason.SKIP_NO_MARK]
    assert plan.settlements == []


shares_st = st.dictionaries(st.sampled_from([A, B, C]), st.integers(-50, 50), min_size=1)


@given(shares=shares_st, foreign=st.integers(-5, 5), closing=st.sets(st.sampled_from([A, B, C]), min_size=1))
def test_close_plan_properties(shares: dict[str, int], foreign: int, closing: set[str]) -> None:
    held = {k: str(D(v) / 10) for k, v in shares.items()}
    venue = sum((D(v) for v in held.values()), D(0)) + D(foreign) / 10
    closes, settled = close_plan(held, str(venue), sorted(closing))
    end = after(held, closes, settled)
    position = venue
    for c in closes:  # reduce-only: each order only brings the venue position towards zero
        signed = c.size if c.side is Side.BUY else -c.size
        assert c.reduce_only
        assert abs(position + signed) < abs(position)
        assert position * (position + signed) >= 0  # never through zero
        position += signed
    if closing >= set(held) and foreign == 0:  # closing every share of a consistent record: venue flat
        assert position == 0
    for leader in closing:
        assert end.get(leader, D(0)) == 0
    for leader in set(held) - closing:  # the others only move towards zero
        assert abs(end[leader]) <= abs(D(held[leader]))
        assert end[leader] == 0 or (end[leader] > 0) == (D(held[leader]) > 0)
    for s in settled:  # settlements pair up, or say the venue holds none of it
        if s.counterparty is not None:
            assert any(o.leader == s.counterparty and o.change == -s.change for o in settled)
