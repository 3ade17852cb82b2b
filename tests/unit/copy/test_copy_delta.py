"""Delta sync: band, cooldown, $10 minimum, caps, reverse, flips, stale leader; hypothesis properties."""

from __future__ import annotations

from decimal import Decimal

import pytest
from copy_helpers import BTC, ETH, FOLLOWER, HYPE, INSTRUMENTS, LEADER, SOL, D, apply
from hypothesis import given
from hypothesis import strategies as st

from hyperfollow.copy.delta import (
    ALL_COINS,
    allocation_gap_pct,
    bound_targets,
    decide_delta,
    exposure_bound_usd,
    target_position,
)
from hyperfollow.copy.model import (
    CopyIntent,
    Decision,
    ExistingPositions,
    FollowSettings,
    SizingMode,
    Skip,
    SkipReason,
    intents,
    skips,
)
from hyperfollow.domain.model import AccountSnapshot, Position, Side
from hyperfollow.domain.rules import size_is_valid

NOW = 1_700_000_000_000
MARKS = {"BTC": D(100_000), "ETH": D(3000), "SOL": D(150), "HYPE": D(40), "xyz:TSLA": D(300)}


def pos(coin: str, size: str | Decimal, leverage: int = 5) -> Position:
    size = D(size) if isinstance(size, str) else size
    value = abs(size) * MARKS[coin]
    return Position(coin, size, MARKS[coin], D(0), leverage, True, value, value / leverage)


def snap(address: str, equity: str | int, *positions: Position, time_ms: int = NOW - 1000) -> AccountSnapshot:
    return AccountSnapshot(address, time_ms, D(equity), D(0), D(equity), tuple(positions))


def delta(
    leader_positions: list[Position],
    ours: list[Position],
    *,
    settings: FollowSettings | None = None,
    last: dict[str, int] | None = None,
    age_ms: int = 1000,
    leader_equity: str = "100000",
    follower_equity: str = "10000",
    **kw: object,
) -> Decision:
    return decide_delta(
        snap(LEADER, leader_equity, *leader_positions),
        snap(FOLLOWER, follower_equity, *ours),
        marks=MARKS,
        instruments=INSTRUMENTS,
        last_adjust_ms=last or {},
        now_ms=NOW,
        settings=settings or FollowSettings(),
        leader_snapshot_age_ms=age_ms,
        max_snapshot_age_ms=5000,
        **kw,  # type: ignore[arg-type]
    )


def one(decision: Decision) -> CopyIntent | Skip:
    assert len(decision) == 1, decision
    return decision[0]


# ratio 0.1: the leader's 10 ETH (30 % of its equity) is our 1 ETH (30 % of ours)


@pytest.mark.parametrize(
    ("ours", "side", "size", "reduce_only", "leg"),
    [
        ("0", Side.BUY, "1", False, "open"),
        ("0.5", Side.BUY, "0.5", False, "adjust"),
        ("1.5", Side.SELL, "0.5", True, "adjust"),
        ("-0.5", None, None, None, None),  # handled in the flip test
    ][:3],
)
def test_trades_the_allocation_difference(
    ours: str, side: Side, size: str, reduce_only: bool, leg: str
) -> None:
    mine = [pos("ETH", ours)] if D(ours) else []
    it = one(delta([pos("ETH", "10")], mine))
    assert isinstance(it, CopyIntent)
    assert (it.side, it.size, it.reduce_only, it.leg) == (side, D(size), reduce_only, leg)
    assert apply(D(ours), [it]) == D(1)
    assert it.leverage == 3  # the leader's 5x capped at 3x


@pytest.mark.parametrize(
    ("ours", "band", "in_band"),
    [("0.9", "5", True), ("0.84", "5", True), ("0.83", "5", False), ("1.16", "5", True), ("0.9", "2", False)],
)
def test_band(ours: str, band: str, in_band: bool) -> None:
    # gap = |1 - ours| x 3000 / 10000 x 100 %
    decision = delta([pos("ETH", "10")], [pos("ETH", ours)], settings=FollowSettings(delta_band_pct=D(band)))
    item = one(decision)
    if in_band:
        assert isinstance(item, Skip)
        assert item.reason is SkipReason.SKIP_IN_BAND
        assert Decimal(item.detail["gap_pct"]) <= D(band)
    else:
        assert isinstance(item, CopyIntent)


@pytest.mark.parametrize(
    ("since_secs", "cooling"),
    [(0, True), (30, True), (59.999, True), (60, False), (600, False)],
)
def test_cooldown_per_coin(since_secs: float, cooling: bool) -> None:
    last = {"ETH": NOW - int(since_secs * 1000), "SOL": NOW}
    item = one(delta([pos("ETH", "10")], [pos("ETH", "0.5")], last=last))
    if cooling:
        assert isinstance(item, Skip)
        assert item.reason is SkipReason.SKIP_COOLDOWN
        assert item.detail["cooldown_ms"] == "60000"
    else:
        assert isinstance(item, CopyIntent)


def test_a_leader_exit_is_followed_whatever_the_band_and_cooldown() -> None:
    # our 0.01 ETH is 0.3 % of equity (in band) and we adjusted a second ago
    it = one(delta([], [pos("ETH", "0.01")], last={"ETH": NOW - 1000}))
    assert isinstance(it, CopyIntent)
    assert (it.side, it.size, it.reduce_only, it.leg) == (Side.SELL, D("0.01"), True, "close")


def test_leader_on_the_other_side_closes_ours_then_opens() -> None:
    decision = delta([pos("ETH", "-10")], [pos("ETH", "0.5")])
    closing, opening = intents(decision)
    assert (closing.side, closing.size, closing.reduce_only) == (Side.SELL, D("0.5"), True)
    assert (opening.side, opening.size, opening.reduce_only, opening.leg) == (Side.SELL, D(1), False, "open")
    assert apply(D("0.5"), decision) == D(-1)


@pytest.mark.parametrize(
    ("leader", "ours", "after"), [("10", "0", "-1"), ("-10", "-0.5", "1"), ("10", "-1.5", "-1")]
)
def test_reverse(leader: str, ours: str, after: str) -> None:
    mine = [pos("ETH", ours)] if D(ours) else []
    decision = delta([pos("ETH", leader)], mine, settings=FollowSettings(reverse=True))
    assert not skips(decision)
    assert apply(D(ours), decision) == D(after)


def test_increases_below_ten_dollars_are_skipped_but_reductions_go() -> None:
    # follower equity $100, band 5 % = $5: a $8 gap is out of band but under the venue minimum
    up = one(delta([pos("SOL", "100")], [], follower_equity="100", leader_equity="187500"))
    assert isinstance(up, Skip)
    assert up.reason is SkipReason.SKIP_MIN_NOTIONAL
    down = one(
        delta([pos("SOL", "100")], [pos("SOL", "0.06")], follower_equity="100", leader_equity="1000000")
    )
    assert isinstance(down, CopyIntent)
    assert (down.reduce_only, down.size) == (True, D("0.05"))  # $9 held, $1.5 target: $7.5 reduce-only
    assert down.size * down.mark < 10


def test_stale_leader_trades_nothing() -> None:
    decision = delta([pos("ETH", "10")], [pos("ETH", "5")], age_ms=5001)
    item = one(decision)
    assert isinstance(item, Skip)
    assert (item.reason, item.coin) == (SkipReason.SKIP_STALE_LEADER, ALL_COINS)
    assert item.detail == {"age_ms": "5001", "max_age_ms": "5000"}


def test_no_equity_trades_nothing() -> None:
    item = one(delta([pos("ETH", "10")], [], follower_equity="0"))
    assert isinstance(item, Skip)
    assert item.reason is SkipReason.SKIP_NO_EQUITY


def test_unknown_coin_and_missing_mark() -> None:
    odd = Position("DOGE", D(100), D("0.1"), D(0), 3, True, D(10), D(3))
    decision = decide_delta(
        snap(LEADER, 100_000, odd, pos("ETH", "10")),
        snap(FOLLOWER, 10_000),
        marks={"DOGE": D("0.1")},
        instruments=INSTRUMENTS,
        last_adjust_ms={},
        now_ms=NOW,
        settings=FollowSettings(),
        leader_snapshot_age_ms=0,
        max_snapshot_age_ms=5000,
    )
    assert [(s.coin, s.reason) for s in skips(decision)] == [
        ("DOGE", SkipReason.SKIP_UNKNOWN_COIN),
        ("ETH", SkipReason.SKIP_NO_MARK),
    ]
    assert not intents(decision)


def test_reductions_first_and_the_budget_they_free_serves_increases() -> None:
    # budget $5000: we hold $4500 of SOL that the leader halved and no ETH where the leader holds 10
    settings = FollowSettings(budget_usd=D(5000))
    decision = delta([pos("ETH", "10"), pos("SOL", "150")], [pos("SOL", "30")], settings=settings)
    first, second = intents(decision)
    assert (first.coin, first.reduce_only, first.size) == ("SOL", True, D(15))  # frees $2250
    assert (second.coin, second.reduce_only) == ("ETH", False)
    assert second.size == D("0.9166")  # $2750 of budget left, rounded down to lots


def test_budget_accumulates_across_coins() -> None:
    settings = FollowSettings(budget_usd=D(4000))
    decision = delta([pos("ETH", "10"), pos("SOL", "100")], [], settings=settings)
    eth, sol = intents(decision)
    assert eth.size == D(1)  # $3000
    assert sol.size == D("6.66")  # the $1000 left
    assert eth.notional_usd + sol.notional_usd <= 4000


def test_position_cap() -> None:
    it = one(delta([pos("ETH", "10")], [], settings=FollowSettings(max_position_usd=D(1500))))
    assert isinstance(it, CopyIntent)
    assert it.size == D("0.5")


@pytest.mark.parametrize(
    ("settings", "leader", "ours", "reason"),
    [
        (FollowSettings(opens_only=True), "10", "1.5", SkipReason.SKIP_OPENS_ONLY),
        (FollowSettings(follow_reduces=False), "10", "1.5", SkipReason.SKIP_REDUCES_OFF),
        (FollowSettings(follow_adds=False), "10", "0.5", SkipReason.SKIP_ADDS_OFF),
        (FollowSettings(opens_only=True), "-10", "0.5", SkipReason.SKIP_OPENS_ONLY),
    ],
)
def test_toggles(settings: FollowSettings, leader: str, ours: str, reason: SkipReason) -> None:
    item = one(delta([pos("ETH", leader)], [pos("ETH", ours)], settings=settings))
    assert isinstance(item, Skip)
    assert item.reason is reason


def test_fixed_multiplier_and_notional_targets() -> None:
    mult = FollowSettings(sizing=SizingMode.FIXED_MULTIPLIER, multiplier=D("0.05"))
    assert target_position(D(-10), mark=D(3000), settings=mult, ratio=D(1)) == D("-0.5")
    notional = FollowSettings(sizing=SizingMode.FIXED_NOTIONAL, notional_usd=D(600))
    assert target_position(D(10), mark=D(3000), settings=notional, ratio=D(1)) == D("0.2")
    assert allocation_gap_pct(D("0.5"), D(1), D(3000), D(10_000)) == D(15)


def test_per_leader_positions_override_the_account() -> None:
    # the account holds 2 ETH, but only 1 is this leader's: in band
    item = one(delta([pos("ETH", "10")], [pos("ETH", "2")], follower_positions={"ETH": D(1)}))
    assert isinstance(item, Skip)
    assert item.reason is SkipReason.SKIP_IN_BAND


def test_same_snapshot_same_cloids_new_snapshot_new_cloids() -> None:
    a = intents(delta([pos("ETH", "10"), pos("BTC", "1")], []))
    b = intents(delta([pos("ETH", "10"), pos("BTC", "1")], []))
    assert [i.cloid for i in a] == [i.cloid for i in b]
    assert len({i.cloid for i in a}) == 2
    later = decide_delta(
        snap(LEADER, 100_000, pos("ETH", "10"), pos("BTC", "1"), time_ms=NOW),
        snap(FOLLOWER, 10_000),
        marks=MARKS,
        instruments=INSTRUMENTS,
        last_adjust_ms={},
        now_ms=NOW,
        settings=FollowSettings(),
        leader_snapshot_age_ms=0,
        max_snapshot_age_ms=5000,
    )
    assert not {i.cloid for i in a} & {i.cloid for i in intents(later)}


def test_hip3_positions_are_isolated() -> None:
    it = one(delta([pos("xyz:TSLA", "100")], []))
    assert isinstance(it, CopyIntent)
    assert (it.is_cross, it.size) == (False, D(10))


# --------------------------------------------------------------------------- properties

COINS = [BTC, ETH, SOL, HYPE]
lots = st.integers(min_value=-(10**6), max_value=10**6)


@given(
    theirs=st.lists(lots, min_size=4, max_size=4),
    ours=st.lists(lots, min_size=4, max_size=4),
    leader_equity=st.integers(1, 10**7),
    follower_equity=st.integers(1, 10**6),
    reverse=st.booleans(),
    band=st.integers(1, 20),
    age=st.integers(0, 10_000),
)
def test_delta_properties(
    theirs: list[int],
    ours: list[int],
    leader_equity: int,
    follower_equity: int,
    reverse: bool,
    band: int,
    age: int,
) -> None:
    leader = [pos(i.coin, n * i.lot) for i, n in zip(COINS, theirs, strict=True) if n]
    mine = {i.coin: n * i.lot for i, n in zip(COINS, ours, strict=True) if n}
    decision = delta(
        leader,
        [pos(c, s) for c, s in mine.items()],
        settings=FollowSettings(reverse=reverse, delta_band_pct=D(band)),
        leader_equity=str(leader_equity),
        follower_equity=str(follower_equity),
        age_ms=age,
    )
    if age > 5000:
        assert not intents(decision)
    for it in intents(decision):
        assert size_is_valid(INSTRUMENTS[it.coin], it.size)
        held = mine.get(it.coin, D(0))
        if it.reduce_only:
            assert held != 0
            assert it.size <= abs(held)
            assert it.side is Side.of(held < 0)
        else:
            assert it.size * min(it.mark, it.limit_price) >= 10
        mine[it.coin] = held + (it.size if it.side is Side.BUY else -it.size)


# --------------------------------------------------------------------------- exposure bound


def _notional(decision: Decision) -> Decimal:
    return sum((i.size * MARKS[i.coin] for i in intents(decision) if not i.reduce_only), D(0))


def test_targets_without_a_budget_are_bounded_by_the_share_of_equity_and_the_leverage_cap() -> None:
    # the leader runs 4.5x: $300k of ETH and $150k of SOL on $100k. Our share at copy_ratio 0.5 of $20k is
    # $10k; at the default 3x cap the follow may hold $30k, not the $45k the leader's leverage asks for
    settings = FollowSettings(copy_ratio=D("0.5"))
    decision = delta([pos("ETH", "100"), pos("SOL", "1000")], [], settings=settings, follower_equity="20000")
    eth, sol = intents(decision)
    assert (eth.coin, eth.size) == ("ETH", D("6.6666"))  # 10 ETH x 2/3, down to lots
    assert (sol.coin, sol.size) == ("SOL", D("66.66"))  # 100 SOL x 2/3: the leader's mix kept
    assert D(29_990) < _notional(decision) <= D(30_000)
    assert "exposure bound" in eth.reason


def test_the_follows_leverage_setting_is_its_cap_and_the_numbers_are_in_the_skips() -> None:
    settings = FollowSettings(copy_ratio=D("0.5"), leverage=1)
    # ours already at the bounded target in ETH: in band, with the bound's numbers
    decision = delta(
        [pos("ETH", "100"), pos("SOL", "1000")],
        [pos("ETH", "2.2222")],
        settings=settings,
        follower_equity="20000",
    )
    in_band = [s for s in skips(decision) if s.reason is SkipReason.SKIP_IN_BAND]
    assert [s.coin for s in in_band] == ["ETH"]
    detail = in_band[0].detail
    assert (D(detail["bound_usd"]), D(detail["exposure_usd"])) == (10_000, 45_000)
    assert D(detail["scale"]) * 45_000 == pytest.approx(D(10_000))
    [sol] = intents(decision)
    assert sol.size == D("22.22")  # $3333 more: ETH's $6667 plus this make the $10k bound


def test_holdings_above_the_bound_are_reduced_to_it() -> None:
    settings = FollowSettings(copy_ratio=D("0.5"))
    decision = delta(
        [pos("ETH", "100"), pos("SOL", "1000")],
        [pos("ETH", "10"), pos("SOL", "100")],  # the unbounded $45k
        settings=settings,
        follower_equity="20000",
    )
    assert [(i.coin, i.reduce_only, i.size) for i in intents(decision)] == [
        ("ETH", True, D("3.3333")),
        ("SOL", True, D("33.33")),
    ]


def test_an_increase_gets_only_the_room_left_under_the_bound() -> None:
    # ETH is cooling down at $30k (over its bounded target): SOL may not add on top of it
    settings = FollowSettings(copy_ratio=D("0.5"))
    decision = delta(
        [pos("ETH", "100"), pos("SOL", "1000")],
        [pos("ETH", "10")],
        settings=settings,
        follower_equity="20000",
        last={"ETH": NOW - 1000},
    )
    cooling, capped = skips(decision)
    assert (cooling.coin, cooling.reason) == ("ETH", SkipReason.SKIP_COOLDOWN)
    assert (capped.coin, capped.reason) == ("SOL", SkipReason.SKIP_CAP)
    assert (capped.detail["limited_by"], capped.detail["room_usd"]) == ("exposure_bound_usd", "0")
    assert not intents(decision)


def test_within_the_bound_nothing_is_scaled() -> None:
    it = one(delta([pos("ETH", "10")], [], settings=FollowSettings(copy_ratio=D("0.5"))))
    assert isinstance(it, CopyIntent)
    assert it.size == D("0.5")
    assert "bound" not in it.reason


def test_bound_targets_scales_every_coin_by_one_factor() -> None:
    bounded = bound_targets({"ETH": D(10), "SOL": D(-100)}, MARKS, D(9000))
    assert bounded.exposure_usd == D(45_000)
    assert bounded.scale == D("0.2")
    assert bounded.targets == {"ETH": D(2), "SOL": D(-20)}
    same = bound_targets({"ETH": D(1)}, MARKS, D(9000))
    assert (same.scale, same.targets, same.binding) == (D(1), {"ETH": D(1)}, False)
    assert exposure_bound_usd(D(20_000), FollowSettings(copy_ratio=D("0.5"))) == D(30_000)


# --------------------------------------------------------------------------- positions from before the follow


def entered(coin: str, size: str, entry: str) -> Position:
    value = abs(D(size)) * D(entry)
    return Position(coin, D(size), D(entry), D(0), 5, True, value, value / 5)


def test_a_leader_position_from_before_the_follow_is_not_bought_into_by_default() -> None:
    item = one(delta([pos("ETH", "10")], [], preexisting={"ETH": 1}))
    assert isinstance(item, Skip)
    assert item.reason is SkipReason.SKIP_PREEXISTING


def test_join_buys_into_it_within_the_price_guard_only() -> None:
    join = FollowSettings(existing_positions=ExistingPositions.JOIN)
    it = one(delta([pos("ETH", "10")], [], settings=join, preexisting={"ETH": 1}))
    assert isinstance(it, CopyIntent)
    assert (it.side, it.size, it.leg) == (Side.BUY, D(1), "open")
    # the leader bought at 2900: the mark (3000) is 3.4 % worse for a buy than their entry
    far = one(delta([entered("ETH", "10", "2900")], [], settings=join, preexisting={"ETH": 1}))
    assert isinstance(far, Skip)
    assert far.reason is SkipReason.SKIP_JOIN_GUARD
    assert D(far.detail["drift_pct"]) > D(far.detail["guard_pct"])


def test_a_preexisting_position_turned_to_the_other_side_is_fresh() -> None:
    it = one(delta([pos("ETH", "-10")], [], preexisting={"ETH": 1}))
    assert isinstance(it, CopyIntent)
    assert (it.side, it.size) == (Side.SELL, D(1))


def test_preexisting_positions_stay_out_of_the_exposure_bound() -> None:
    # SOL predates the follow and is ignored: ETH alone is within the $30k bound, unscaled
    settings = FollowSettings(copy_ratio=D("0.5"))
    decision = delta(
        [pos("ETH", "50"), pos("SOL", "1000")],
        [],
        settings=settings,
        follower_equity="20000",
        preexisting={"SOL": 1},
    )
    [eth] = intents(decision)
    assert eth.size == D(5)
    assert [s.reason for s in skips(decision)] == [SkipReason.SKIP_PREEXISTING]
