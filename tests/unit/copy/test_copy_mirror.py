"""Mirror decisions: direction honoured, flips, reverse, min notional, caps, drift guard, toggles, leverage,
prices on the grid; hypothesis properties over random fills."""

from __future__ import annotations

from decimal import Decimal

import pytest
from copy_helpers import BTC, ETH, FOLLOWER, HYPE, LEADER, PURR, SOL, TSLA, D, apply, fill

from hyperfollow.copy.fills import Action, coalesce, parse_direction
from hyperfollow.copy.guards import worst_price
from hyperfollow.copy.mirror import decide_mirror
from hyperfollow.copy.model import (
    CopyIntent,
    Decision,
    ExecutionStyle,
    FollowSettings,
    LeverageMode,
    MarginMode,
    Skip,
    SkipReason,
    intents,
    skips,
)
from hyperfollow.domain.ids import cloid_for, is_cloid
from hyperfollow.domain.model import Fill, OrderRequest, Side, Tif
from hyperfollow.domain.rules import Instrument, price_is_valid

# leader 10,000 / follower 1,000: ratio 0.1
EQUITY = {"leader_equity": D(10_000), "follower_equity": D(1_000)}


def decide(
    f: Fill,
    position: str | Decimal = "0",
    *,
    mark: str | None = None,
    inst: Instrument = ETH,
    settings: FollowSettings | None = None,
    **kwargs: object,
) -> Decision:
    args: dict[str, object] = dict(EQUITY)
    args.update(kwargs)
    return decide_mirror(
        f,
        follower_position=D(position) if isinstance(position, str) else position,
        mark=D(mark) if mark is not None else f.price,
        instrument=inst,
        settings=settings or FollowSettings(),
        follower=FOLLOWER,
        leader=LEADER,
        **args,  # type: ignore[arg-type]
    )


def only_intent(decision: Decision) -> CopyIntent:
    assert len(decision) == 1, decision
    item = decision[0]
    assert isinstance(item, CopyIntent), item
    return item


def only_skip(decision: Decision) -> Skip:
    assert len(decision) == 1, decision
    item = decision[0]
    assert isinstance(item, Skip), item
    return item


# --------------------------------------------------------------------------- direction


def test_open_long_from_flat_is_a_scaled_taker_buy() -> None:
    it = only_intent(decide(fill("ETH", "Open Long", "2", "0", "3000")))
    assert (it.side, it.size, it.reduce_only, it.leg, it.tif) == (Side.BUY, D("0.2"), False, "open", Tif.IOC)
    assert it.limit_price == D("3015")  # 3000 x 1.005, on the grid
    assert it.cloid == cloid_for(FOLLOWER, LEADER, "tid:1", "open")
    assert is_cloid(it.cloid)
    assert (it.follower, it.leader, it.coin, it.fill_key, it.mark) == (
        FOLLOWER,
        LEADER,
        "ETH",
        "tid:1",
        D(3000),
    )
    assert it.to_order() == OrderRequest("ETH", Side.BUY, D("0.2"), D("3015"), Tif.IOC, False, it.cloid)


@pytest.mark.parametrize(
    ("direction", "size", "start", "ours", "side", "expected", "after"),
    [
        ("Open Short", "2", "0", "0", Side.SELL, "0.2", "-0.2"),
        ("Open Long", "2", "3", "0.3", Side.BUY, "0.2", "0.5"),  # an add
        ("Open Short", "1", "-1", "-0.1", Side.SELL, "0.1", "-0.2"),
        ("Close Long", "1", "4", "0.4", Side.SELL, "0.1", "0.3"),  # a quarter of theirs, a quarter of ours
        ("Close Long", "4", "4", "0.4", Side.SELL, "0.4", "0"),  # flat: all of ours
        ("Close Short", "2", "-4", "-0.4", Side.BUY, "0.2", "-0.2"),
        ("Close Long", "1", "3", "0.0004", Side.SELL, "0.0001", "0.0003"),  # a third, rounded down
        ("Close Long", "3", "3", "0.0401", Side.SELL, "0.0401", "0"),  # flat: the odd lot too
    ],
)
def test_direction_is_honoured(
    direction: str, size: str, start: str, ours: str, side: Side, expected: str, after: str
) -> None:
    decision = decide(fill("ETH", direction, size, start, "3000"), ours)
    it = only_intent(decision)
    assert (it.side, it.size) == (side, D(expected))
    assert it.reduce_only is direction.startswith("Close")
    assert apply(D(ours), decision) == D(after)


@pytest.mark.parametrize(
    ("direction", "size", "start", "ours", "close", "open_", "after"),
    [
        ("Long > Short", "5", "2", "0.2", "0.2", "0.3", "-0.3"),
        ("Short > Long", "3", "-1", "-0.1", "0.1", "0.2", "0.2"),
        ("Long > Short", "5", "2", "0.25", "0.25", "0.3", "-0.3"),  # ours out of step: still all of ours
    ],
)
def test_flip_closes_ours_then_opens_the_part_beyond(
    direction: str, size: str, start: str, ours: str, close: str, open_: str, after: str
) -> None:
    decision = decide(fill("ETH", direction, size, start, "3000"), ours)
    closing, opening = intents(decision)
    assert (closing.leg, closing.reduce_only, closing.size) == ("close", True, D(close))
    assert (opening.leg, opening.reduce_only, opening.size) == ("open", False, D(open_))
    assert closing.side is opening.side
    assert closing.cloid != opening.cloid
    assert apply(D(ours), decision) == D(after)


def test_flip_with_nothing_of_ours_still_opens_the_new_side() -> None:
    decision = decide(fill("ETH", "Long > Short", "5", "2", "3000"), "0")
    assert [s.reason for s in skips(decision)] == [SkipReason.SKIP_NO_POSITION]
    assert apply(D(0), decision) == D("-0.3")


def test_flip_of_a_preexisting_position_copies_the_fresh_side() -> None:
    decision = decide(fill("ETH", "Long > Short", "5", "2", "3000"), "0", preexisting=True)
    assert [s.reason for s in skips(decision)] == [SkipReason.SKIP_PREEXISTING]
    assert apply(D(0), decision) == D("-0.3")


def test_open_while_we_hold_the_other_side_realigns_first() -> None:
    decision = decide(fill("ETH", "Open Long", "2", "0", "3000"), "-0.5")
    closing, opening = intents(decision)
    assert (closing.side, closing.size, closing.reduce_only) == (Side.BUY, D("0.5"), True)
    assert (opening.side, opening.size, opening.reduce_only) == (Side.BUY, D("0.2"), False)
    assert apply(D("-0.5"), decision) == D("0.2")


def test_the_venue_note_after_a_direction_is_ignored() -> None:
    it = only_intent(decide(fill("ETH", "Open Long (Price Improved)", "2", "0", "3000", side=Side.BUY)))
    assert it.size == D("0.2")
    assert parse_direction("  close   short ").action is Action.CLOSE


@pytest.mark.parametrize(
    ("f", "inst", "reason"),
    [
        (fill("PURR/USDC", "Buy", "100", "0", "0.2"), PURR, SkipReason.SKIP_SPOT),
        (
            fill("ETH", "Spot Dust Conversion", "1", "0", "3000", side=Side.BUY),
            ETH,
            SkipReason.SKIP_UNKNOWN_DIR,
        ),
        (fill("ETH", "Open Long", "1", "0", "3000", side=Side.SELL), ETH, SkipReason.SKIP_BAD_FILL),
        (fill("ETH", "Open Long", "1", "-2", "3000"), ETH, SkipReason.SKIP_BAD_FILL),
        (fill("ETH", "Close Long", "1", "0", "3000"), ETH, SkipReason.SKIP_BAD_FILL),
        (fill("ETH", "Close Short", "1", "3", "3000"), ETH, SkipReason.SKIP_BAD_FILL),
    ],
)
def test_fills_that_are_not_copied(f: Fill, inst: Instrument, reason: SkipReason) -> None:
    s = only_skip(decide(f, "1", inst=inst))
    assert s.reason is reason
    assert s.detail["leader_dir"] == f.direction
    assert s.fill_key == "tid:1"


def test_a_fill_of_another_coin_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="instrument"):
        decide(fill("BTC", "Open Long", "1", "0"), inst=ETH)


# --------------------------------------------------------------------------- reverse


@pytest.mark.parametrize(
    ("direction", "size", "start", "ours", "after"),
    [
        ("Open Long", "2", "0", "0", "-0.2"),  # the leader's long is our short
        ("Open Short", "2", "0", "0", "0.2"),
        ("Close Long", "2", "4", "-0.4", "-0.2"),  # their long closing: our short closing
        ("Close Short", "4", "-4", "0.4", "0"),
        ("Long > Short", "5", "2", "-0.2", "0.3"),
    ],
)
def test_reverse_inverts_every_signal(direction: str, size: str, start: str, ours: str, after: str) -> None:
    decision = decide(
        fill("ETH", direction, size, start, "3000"), ours, settings=FollowSettings(reverse=True)
    )
    assert not skips(decision)
    assert apply(D(ours), decision) == D(after)
    for it in intents(decision):
        assert it.reduce_only is (it.leg == "close")


def test_reverse_close_when_we_hold_the_leaders_side_finds_nothing() -> None:
    decision = decide(
        fill("ETH", "Close Long", "2", "4", "3000"), "0.4", settings=FollowSettings(reverse=True)
    )
    assert only_skip(decision).reason is SkipReason.SKIP_NO_POSITION


# --------------------------------------------------------------------------- venue minimum, caps, budget


@pytest.mark.parametrize(
    ("inst", "size", "price", "ours", "reason"),
    [
        (ETH, "0.03", "3000", "0", SkipReason.SKIP_MIN_NOTIONAL),  # 0.003 x 3000 = $9
        (
            BTC,
            "0.001",
            "100000",
            "0",
            SkipReason.SKIP_MIN_NOTIONAL,
        ),  # 0.0001 x 100k = $10 at mark, less at a sell cap
        (HYPE, "0.04", "40", "0", SkipReason.SKIP_MIN_NOTIONAL),  # 0.004 -> 0 lots
        (SOL, "0.5", "150", "0", SkipReason.SKIP_MIN_NOTIONAL),  # 0.05 x 150 = $7.5
    ],
)
def test_opens_below_ten_dollars_are_skipped_with_the_numbers(
    inst: Instrument, size: str, price: str, ours: str, reason: SkipReason
) -> None:
    direction = "Open Short" if inst is BTC else "Open Long"
    s = only_skip(decide(fill(inst.coin, direction, size, "0", price), ours, inst=inst))
    assert s.reason is reason
    assert Decimal(s.detail["value_usd"]) < 10
    assert s.detail["minimum_usd"] == "10"
    assert "requested" in s.detail
    assert "mark" in s.detail


def test_a_buy_worth_ten_dollars_at_the_mark_goes() -> None:
    it = only_intent(decide(fill("BTC", "Open Long", "0.001", "0", "100000"), inst=BTC))
    assert it.size == D("0.0001")
    assert it.size * it.mark == 10


def test_closes_below_ten_dollars_still_go() -> None:
    it = only_intent(decide(fill("ETH", "Close Long", "1", "2", "3000"), "0.002"))
    assert (it.size, it.reduce_only) == (D("0.001"), True)
    assert it.size * it.mark < 10


@pytest.mark.parametrize(
    ("settings", "used", "ours", "size", "reason"),
    [
        (FollowSettings(max_order_usd=D(300)), "0", "0", "0.1", None),
        (FollowSettings(max_position_usd=D(1000)), "0", "0.3", "0.0333", None),
        (FollowSettings(max_position_usd=D(1000)), "0", "0.33", None, SkipReason.SKIP_MIN_NOTIONAL),
        (FollowSettings(max_position_usd=D(1000)), "0", "0.34", None, SkipReason.SKIP_CAP),
        (FollowSettings(budget_usd=D(2000)), "1900", "0", "0.0333", None),
        (FollowSettings(budget_usd=D(2000)), "2000", "0", None, SkipReason.SKIP_BUDGET),
        (FollowSettings(budget_usd=D(2000)), "1995", "0", None, SkipReason.SKIP_MIN_NOTIONAL),
    ],
)
def test_caps_and_budget_shrink_or_skip_opens(
    settings: FollowSettings, used: str, ours: str, size: str | None, reason: SkipReason | None
) -> None:
    decision = decide(
        fill("ETH", "Open Long", "2", "1", "3000"), ours, settings=settings, budget_used_usd=D(used)
    )
    if reason is None:
        assert only_intent(decision).size == D(size or "0")
    else:
        s = only_skip(decision)
        assert s.reason is reason
        assert "limited_by" in s.detail


def test_a_flip_frees_the_budget_of_what_it_closes() -> None:
    settings = FollowSettings(budget_usd=D(1000))
    decision = decide(
        fill("ETH", "Long > Short", "5", "2", "3000"), "0.2", settings=settings, budget_used_usd=D(600)
    )
    closing, opening = intents(decision)
    assert closing.size == D("0.2")
    assert opening.size == D("0.3")  # $900 fits the $1000 budget once our $600 long is gone


def test_caps_never_limit_closes() -> None:
    settings = FollowSettings(max_order_usd=D(20), budget_usd=D(20))
    it = only_intent(decide(fill("ETH", "Close Long", "4", "4", "3000"), "0.4", settings=settings))
    assert it.size == D("0.4")


def test_no_equity_skips_opens_in_equity_ratio_mode() -> None:
    s = only_skip(
        decide(fill("ETH", "Open Long", "2", "0", "3000"), leader_equity=D(0), follower_equity=D(10))
    )
    assert s.reason is SkipReason.SKIP_NO_EQUITY


# --------------------------------------------------------------------------- drift guard


@pytest.mark.parametrize(
    ("direction", "mark", "skipped"),
    [
        ("Open Long", "3030", False),  # +1.0 %: at the guard, allowed
        ("Open Long", "3031", True),  # +1.03 % against a buy
        ("Open Long", "2900", False),  # down: in our favour
        ("Open Short", "2969", True),  # down against a sell
        ("Open Short", "3100", False),
        ("Close Long", "3500", False),  # exits ignore the guard
    ],
)
def test_drift_guard_on_opens(direction: str, mark: str, skipped: bool) -> None:
    start, ours = ("4", "0.4") if direction == "Close Long" else ("0", "0")
    decision = decide(fill("ETH", direction, "2", start, "3000"), ours, mark=mark)
    if skipped:
        s = only_skip(decision)
        assert s.reason is SkipReason.SKIP_DRIFT
        assert Decimal(s.detail["drift_pct"]) > 1
    else:
        only_intent(decision)


def test_drift_guard_in_reverse_is_about_our_side() -> None:
    rev = FollowSettings(reverse=True)
    # the leader buys at 3000; we sell: a mark 2 % higher is in our favour, 2 % lower is not
    assert isinstance(
        decide(fill("ETH", "Open Long", "2", "0", "3000"), mark="3060", settings=rev)[0], CopyIntent
    )
    assert only_skip(
        decide(fill("ETH", "Open Long", "2", "0", "3000"), mark="2940", settings=rev)
    ).reason is (SkipReason.SKIP_DRIFT)


def test_drift_guard_on_the_open_leg_of_a_flip_keeps_the_close() -> None:
    decision = decide(fill("ETH", "Long > Short", "5", "2", "3000"), "0.2", mark="2900")
    assert [type(d) for d in decision] == [CopyIntent, Skip]
    assert skips(decision)[0].reason is SkipReason.SKIP_DRIFT
    assert apply(D("0.2"), decision) == 0


# --------------------------------------------------------------------------- toggles


@pytest.mark.parametrize(
    ("settings", "direction", "size", "start", "ours", "reason"),
    [
        (FollowSettings(follow_adds=False), "Open Long", "1", "2", "0.2", SkipReason.SKIP_ADDS_OFF),
        (FollowSettings(follow_reduces=False), "Close Long", "1", "2", "0.2", SkipReason.SKIP_REDUCES_OFF),
        (FollowSettings(opens_only=True), "Close Long", "2", "2", "0.2", SkipReason.SKIP_OPENS_ONLY),
        (FollowSettings(opens_only=True), "Open Long", "1", "0", "-0.2", SkipReason.SKIP_OPENS_ONLY),
        (FollowSettings(), "Open Long", "1", "2", "0", SkipReason.SKIP_PREEXISTING),
        (FollowSettings(), "Close Long", "1", "2", "0", SkipReason.SKIP_PREEXISTING),
    ],
)
def test_toggles_skip(
    settings: FollowSettings, direction: str, size: str, start: str, ours: str, reason: SkipReason
) -> None:
    pre = reason is SkipReason.SKIP_PREEXISTING
    s = only_skip(
        decide(fill("ETH", direction, size, start, "3000"), ours, settings=settings, preexisting=pre)
    )
    assert s.reason is reason


@pytest.mark.parametrize(
    ("settings", "direction", "size", "start", "ours", "after"),
    [
        (FollowSettings(follow_adds=False), "Open Long", "2", "0", "0", "0.2"),  # a first open is not an add
        (
            FollowSettings(follow_reduces=False),
            "Close Long",
            "2",
            "2",
            "0.2",
            "0",
        ),  # a full close is not a reduce
        (FollowSettings(opens_only=True), "Open Long", "1", "2", "0.2", "0.3"),  # adds are opens
    ],
)
def test_toggles_let_through(
    settings: FollowSettings, direction: str, size: str, start: str, ours: str, after: str
) -> None:
    decision = decide(fill("ETH", direction, size, start, "3000"), ours, settings=settings)
    assert not skips(decision)
    assert apply(D(ours), decision) == D(after)


def test_an_open_from_flat_is_never_preexisting() -> None:
    decision = decide(fill("ETH", "Open Long", "2", "0", "3000"), "0", preexisting=True)
    assert apply(D(0), decision) == D("0.2")


def test_opens_only_flip_while_we_hold_the_old_side_does_not_net() -> None:
    decision = decide(
        fill("ETH", "Long > Short", "5", "2", "3000"), "0.2", settings=FollowSettings(opens_only=True)
    )
    assert [s.reason for s in skips(decision)] == [SkipReason.SKIP_OPENS_ONLY]
    assert not intents(decision)


# ---------------------------------------------------------------------- leverage, margin, execution style


@pytest.mark.parametrize(
    ("mode", "lev", "leader_lev", "inst", "expected"),
    [
        (LeverageMode.CAP, 3, 10, ETH, 3),
        (LeverageMode.CAP, 3, 2, ETH, 2),
        (LeverageMode.CAP, 3, None, ETH, 3),
        (LeverageMode.FOLLOW, 3, 20, ETH, 20),
        (LeverageMode.FOLLOW, 3, 50, ETH, 25),  # ETH allows 25x
        (LeverageMode.FOLLOW, 7, None, ETH, 7),
        (LeverageMode.FIXED, 5, 20, ETH, 5),
        (LeverageMode.FIXED, 15, None, HYPE, 10),  # HYPE allows 10x
    ],
)
def test_leverage_follows_is_fixed_or_capped(
    mode: LeverageMode, lev: int, leader_lev: int | None, inst: Instrument, expected: int
) -> None:
    settings = FollowSettings(leverage_mode=mode, leverage=lev)
    f = fill(inst.coin, "Open Long", "20", "0", "3000")
    assert (
        only_intent(decide(f, inst=inst, settings=settings, leader_leverage=leader_lev)).leverage == expected
    )


@pytest.mark.parametrize(
    ("margin", "inst", "cross"),
    [(MarginMode.CROSS, ETH, True), (MarginMode.ISOLATED, ETH, False), (MarginMode.CROSS, TSLA, False)],
)
def test_margin_mode_and_hip3_isolated_only(margin: MarginMode, inst: Instrument, cross: bool) -> None:
    f = fill(inst.coin, "Open Long", "2", "0", "300")
    assert only_intent(decide(f, inst=inst, settings=FollowSettings(margin_mode=margin))).is_cross is cross


def test_maker_style_posts_only_with_the_cap_as_its_bound() -> None:
    it = only_intent(
        decide(
            fill("ETH", "Open Long", "2", "0", "3000"),
            settings=FollowSettings(execution=ExecutionStyle.MAKER),
        )
    )
    assert (it.tif, it.limit_price) == (Tif.ALO, D("3015"))


@pytest.mark.parametrize(
    ("inst", "mark", "side", "cap", "expected"),
    [
        (ETH, "3000", Side.BUY, "0.5", "3015"),
        (ETH, "3001.7", Side.BUY, "0.5", "3016.7"),  # 3016.7085 down
        (ETH, "3001.7", Side.SELL, "0.5", "2986.7"),  # 2986.6915 up
        (BTC, "97123", Side.BUY, "0.5", "97608"),  # 97608.615: integer grid at 5 sig figs, down
        (BTC, "97123", Side.SELL, "0.5", "96638"),  # 96637.385 up
        (HYPE, "40.123", Side.BUY, "1", "40.524"),  # 40.52423 down
        (Instrument("kBONK", 9, 0, 10), "0.012345", Side.SELL, "0.5", "0.012284"),  # 0.01228327.. up
    ],
)
def test_worst_price_is_on_the_grid_and_never_beyond_the_cap(
    inst: Instrument, mark: str, side: Side, cap: str, expected: str
) -> None:
    px = worst_price(inst, D(mark), side, D(cap))
    assert px == D(expected)
    assert price_is_valid(inst, px)
    bound = D(mark) * (1 + D(cap) / 100 if side is Side.BUY else 1 - D(cap) / 100)
    assert (px <= bound) if side is Side.BUY else (px >= bound)


def test_a_fill_without_a_trade_id_keys_its_cloid_on_hash_and_more() -> None:
    a = only_intent(decide(fill("ETH", "Open Long", "2", "0", "3000", tid=None)))
    b = only_intent(decide(fill("ETH", "Open Long", "2", "0", "3000", tid=None, oid=8)))
    assert a.cloid != b.cloid
    assert a.fill_key.startswith("h:0xabc:")


# --------------------------------------------------------------------------- coalescing fills of one order


def test_coalesce_merges_a_sweep_and_recomputes_the_direction() -> None:
    sweep = [
        fill("ETH", "Close Long", "1", "3", "3000", tid=11),
        fill("ETH", "Close Long", "2", "2", "2999", tid=12),
        fill("ETH", "Open Short", "1", "0", "2998", tid=13),
        fill("ETH", "Open Short", "1", "-1", "2998", tid=14, oid=99),  # another order
    ]
    first, second = coalesce(sweep)
    assert (first.tid, first.size, first.start_position, first.direction) == (11, D(4), D(3), "Long > Short")
    assert first.price == (D(3000) + D(2999) * 2 + D(2998)) / 4
    assert second == sweep[3]
