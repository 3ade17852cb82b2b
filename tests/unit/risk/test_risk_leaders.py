"""Leader health: liquidation seen from outside, drawdown pause with hysteresis, blacklist expiry."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hyperfollow.domain.model import AccountSnapshot, Fill, Position, Side
from hyperfollow.risk.leaders import (
    DAY_MS,
    LeaderEventKind,
    LeaderHealthPolicy,
    LeaderStatus,
    assess_leader,
    unexplained_exits,
)

L = "0x" + "1" * 40
NOW = 1_767_225_600_000
D = Decimal


def pos(coin: str, size: str) -> Position:
    return Position(coin, D(size), D(100), D(0), 5, True, abs(D(size)) * 100, abs(D(size)) * 20)


def snap(equity: str, *positions: Position) -> AccountSnapshot:
    return AccountSnapshot(L, NOW, D(equity), D(0), D(0), positions)


def fill(coin: str, side: Side, size: str, *, liquidated: str | None = None) -> Fill:
    return Fill(L, coin, side, D(100), D(size), NOW, D(0), "Close Long", D(0), D(0), 1, 7, "0x", True,
                liquidation=liquidated is not None, liquidated_user=liquidated)  # fmt: skip


def test_a_position_gone_without_fills_is_a_liquidation_and_explained_closes_are_not() -> None:
    prev = snap("1000", pos("ETH", "2"), pos("BTC", "-1"), pos("SOL", "10"))
    cur = snap("800", pos("SOL", "12"))  # ETH gone silently, BTC closed by a fill, SOL grew
    fills = [fill("BTC", Side.BUY, "1")]
    assert unexplained_exits(prev, cur, fills) == ["ETH"]
    only_eth = snap("1000", pos("ETH", "2"))
    assert unexplained_exits(only_eth, snap("1000", pos("ETH", "1")), [fill("ETH", Side.SELL, "1")]) == []
    assert unexplained_exits(prev, snap("1000", pos("ETH", "-1")), []) == [
        "ETH",
        "BTC",
        "SOL",
    ]  # a silent flip


def test_liquidation_blacklists_for_fourteen_days_then_lets_go() -> None:
    policy = LeaderHealthPolicy()
    status = LeaderStatus(L, peak_equity=D(1000))
    status, events = assess_leader(status, snap("1000", pos("ETH", "2")), snap("990"), [], policy, NOW)
    assert [(e.kind, e.coin) for e in events] == [(LeaderEventKind.LIQUIDATED, "ETH")]
    assert status.blacklisted_until_ms == NOW + 14 * DAY_MS
    assert not status.may_copy(NOW + 13 * DAY_MS)
    status, events = assess_leader(status, snap("990"), snap("990"), [], policy, NOW + 14 * DAY_MS)
    assert [e.kind for e in events] == [LeaderEventKind.BLACKLIST_ENDED]
    assert status.may_copy(NOW + 14 * DAY_MS)


def test_a_liquidation_fill_names_the_coin_even_without_snapshots() -> None:
    fills = [fill("SOL", Side.SELL, "3", liquidated=L)]
    status, events = assess_leader(LeaderStatus(L), None, snap("500"), fills, LeaderHealthPolicy(), NOW)
    assert [(e.kind, e.coin) for e in events] == [(LeaderEventKind.LIQUIDATED, "SOL")]
    assert status.blacklisted_until_ms is not None
    other = [fill("SOL", Side.SELL, "3", liquidated="0x" + "9" * 40)]  # someone else was liquidated
    _, events = assess_leader(LeaderStatus(L), None, snap("500"), other, LeaderHealthPolicy(), NOW)
    assert events == []


@pytest.mark.parametrize(
    ("path", "paused_after"),
    [
        (["1000", "1200", "850"], False),  # 29.2 % below the 1,200 peak: still copying
        (["1000", "1200", "830"], True),  # 30.8 %: paused
        (["1000", "1200", "830", "1000"], True),  # 16.7 %: not yet under half the limit
        (["1000", "1200", "830", "1100"], False),  # 8.3 %: resumed
    ],
)
def test_drawdown_pauses_with_hysteresis(path: list[str], paused_after: bool) -> None:
    status = LeaderStatus(L)
    for equity in path:
        status, _ = assess_leader(status, None, snap(equity), [], LeaderHealthPolicy(), NOW)
    assert status.paused is paused_after
    assert status.may_copy(NOW) is not paused_after
    assert status.peak_equity == max(D(e) for e in path)


def test_policy_is_checked() -> None:
    with pytest.raises(ValueError, match="max_drawdown_pct"):
        LeaderHealthPolicy(max_drawdown_pct=D(0))
