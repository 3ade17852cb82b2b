"""Joining a leader's existing positions (ignore / join within a price guard) and stopping (keep / close)."""

from __future__ import annotations

import pytest
from copy_helpers import ETH, FOLLOWER, INSTRUMENTS, LEADER, TSLA, D, apply

from hyperfollow.copy.lifecycle import decide_join, decide_stop
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
