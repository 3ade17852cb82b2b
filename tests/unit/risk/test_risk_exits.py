"""Exit policies: the issue's spec cases, one parametrized table per rule, and hypothesis properties (a
trailing stop never loosens, a tier never fires twice, closes never exceed the position, an untriggered
stop is always on the losing side of the mark)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from hyperfollow.domain.model import Side
from hyperfollow.risk.exits import (
    ExitAction,
    ExitPolicy,
    ExitReason,
    ExitState,
    TakeProfitTier,
    evaluate,
    hard_stop_price,
    native_stop_price,
    roe_pct,
    stop_moved_enough,
)

D = Decimal
HOUR = 3_600_000
PRICE_STOP_5 = ExitPolicy(stop_loss_roe_pct=None, stop_loss_price_pct=D(5))
TRAIL_8 = ExitPolicy(stop_loss_roe_pct=None, trailing_retrace_pct=D(8))


def run(
    policy: ExitPolicy,
    marks: list[str],
    *,
    size: str = "1",
    entry: str = "100",
    leverage: int = 1,
    now_ms: int = 0,
    state: ExitState | None = None,
) -> tuple[ExitState, list[ExitAction]]:
    """Evaluate a mark path; returns the last state and every action on the way."""
    state = state or ExitState(entry_time_ms=0)
    actions: list[ExitAction] = []
    for mark in marks:
        state, acts = evaluate(
            policy, state, size=D(size), entry_price=D(entry), mark=D(mark), leverage=leverage, now_ms=now_ms
        )
        actions += acts
    return state, actions


# --------------------------------------------------------------------------- the issue's spec cases


def test_long_entry_100_with_5pct_stop_is_95() -> None:
    assert hard_stop_price(PRICE_STOP_5, size=D(1), entry_price=D(100), leverage=1) == D(95)
    assert native_stop_price(PRICE_STOP_5, ExitState(0), size=D(1), entry_price=D(100), leverage=1) == D(95)
    _, acts = run(PRICE_STOP_5, ["95.01"])
    assert acts == []
    _, acts = run(PRICE_STOP_5, ["95"])
    assert [(a.reason, a.side, a.size, a.level) for a in acts] == [
        (ExitReason.STOP_LOSS, Side.SELL, D(1), D(95))
    ]


def test_short_entry_100_with_5pct_stop_is_105() -> None:
    assert hard_stop_price(PRICE_STOP_5, size=D(-2), entry_price=D(100), leverage=1) == D(105)
    _, acts = run(PRICE_STOP_5, ["104.99"], size="-2")
    assert acts == []
    _, acts = run(PRICE_STOP_5, ["105"], size="-2")
    assert [(a.reason, a.side, a.size, a.level) for a in acts] == [
        (ExitReason.STOP_LOSS, Side.BUY, D(2), D(105))
    ]


def test_trailing_8pct_after_high_115_is_105_8_and_not_lowered_at_112() -> None:
    state, acts = run(TRAIL_8, ["100", "108", "115"])
    assert acts == []
    assert state.watermark == D(115)
    assert state.stop_price == D("105.8")
    state, acts = run(TRAIL_8, ["112"], state=state)
    assert acts == []
    assert state.stop_price == D("105.8")
    assert native_stop_price(TRAIL_8, state, size=D(1), entry_price=D(100), leverage=1) == D("105.8")
    _, acts = run(TRAIL_8, ["105.8"], state=state)
    assert [(a.reason, a.level) for a in acts] == [(ExitReason.TRAILING_STOP, D("105.8"))]


@pytest.mark.parametrize(("hours", "fires"), [(71, False), (72, True), (73, True)])
def test_time_stop_72h(hours: int, fires: bool) -> None:
    policy = ExitPolicy(max_holding_ms=72 * HOUR)
    state = ExitState(entry_time_ms=1_000)
    _, acts = run(policy, ["100"], state=state, now_ms=1_000 + hours * HOUR)
    assert [a.reason for a in acts] == ([ExitReason.TIME_STOP] if fires else [])


def test_defaults_are_the_issue_defaults() -> None:
    p = ExitPolicy()
    assert p.stop_loss_roe_pct == D(15)
    assert p.stop_loss_price_pct is None
    assert p.take_profit_tiers == ()
    assert not p.trailing
    assert p.max_holding_ms is None
    assert p.break_even_after_tier is None
    # -15 % ROE at 5x is a 3 % price move: long 100 -> 97, short 100 -> 103
    assert hard_stop_price(p, size=D(1), entry_price=D(100), leverage=5) == D(97)
    assert hard_stop_price(p, size=D(-1), entry_price=D(100), leverage=5) == D(103)


# --------------------------------------------------------------------------- one table per rule


@pytest.mark.parametrize(
    ("size", "entry", "mark", "leverage", "expected"),
    [
        ("1", "100", "105", 1, "5"),
        ("1", "100", "95", 3, "-15"),
        ("-1", "100", "95", 2, "10"),
        ("-1", "100", "110", 10, "-100"),
    ],
)
def test_roe_is_price_move_times_leverage(
    size: str, entry: str, mark: str, leverage: int, expected: str
) -> None:
    assert roe_pct(size=D(size), entry_price=D(entry), mark=D(mark), leverage=leverage) == D(expected)


@pytest.mark.parametrize(
    ("policy", "size", "leverage", "stop"),
    [
        (ExitPolicy(stop_loss_roe_pct=D(15)), "1", 1, "85"),
        (ExitPolicy(stop_loss_roe_pct=D(15)), "1", 3, "95"),
        (ExitPolicy(stop_loss_roe_pct=D(15)), "-1", 3, "105"),
        (ExitPolicy(stop_loss_roe_pct=D(20), stop_loss_price_pct=D(2)), "1", 5, "98"),  # tighter: price
        (ExitPolicy(stop_loss_roe_pct=D(5), stop_loss_price_pct=D(2)), "-1", 5, "101"),  # tighter: ROE
        (ExitPolicy(stop_loss_roe_pct=D(150)), "1", 1, None),  # a -150 % ROE long stop is unreachable
        (ExitPolicy(stop_loss_roe_pct=None), "1", 1, None),
    ],
)
def test_hard_stop_price(policy: ExitPolicy, size: str, leverage: int, stop: str | None) -> None:
    got = hard_stop_price(policy, size=D(size), entry_price=D(100), leverage=leverage)
    assert got == (None if stop is None else D(stop))


TIERS = ExitPolicy(
    take_profit_tiers=(
        TakeProfitTier(D(20), D("0.3")),
        TakeProfitTier(D(40), D("0.5")),
        TakeProfitTier(D(60), D(1)),
    )
)


@pytest.mark.parametrize(
    ("marks", "sizes", "fired"),
    [
        (["119"], [], set()),
        (["120"], ["3"], {0}),  # +20 % ROE at 1x: 30 % of 10
        (["120", "125", "121"], ["3"], {0}),  # fires once
        (
            ["120", "140"],
            ["3", "5"],
            {0, 1},
        ),  # 50 % of the position then open (still 10 here: run() keeps it)
        (["145"], ["3", "3.5"], {0, 1}),  # two tiers at once: sequential on what remains
        (["170"], ["3", "3.5", "3.5"], {0, 1, 2}),  # the last tier closes the rest
        (["120", "100", "120"], ["3"], {0}),  # falling back and returning does not re-fire
    ],
)
def test_take_profit_tiers(marks: list[str], sizes: list[str], fired: set[int]) -> None:
    state, acts = run(TIERS, marks, size="10")
    assert [a.size for a in acts] == [D(s) for s in sizes]
    assert all(a.reason is ExitReason.TAKE_PROFIT and a.side is Side.SELL and a.reduce_only for a in acts)
    assert state.tiers_fired == frozenset(fired)
    assert sum((a.size for a in acts), D(0)) <= D(10)


def test_take_profit_short_uses_roe_with_leverage() -> None:
    policy = ExitPolicy(take_profit_tiers=(TakeProfitTier(D(20), D("0.5")),))
    _, acts = run(policy, ["96.1"], size="-4", leverage=5)  # +19.5 % ROE
    assert acts == []
    _, acts = run(policy, ["96"], size="-4", leverage=5)  # +20 % ROE
    assert [(a.side, a.size, a.fraction, a.level, a.tier) for a in acts] == [
        (Side.BUY, D(2), D("0.5"), D(96), 0)
    ]


@pytest.mark.parametrize(
    ("size", "marks", "watermark", "stop"),
    [
        ("1", ["105", "109.9"], None, None),  # not activated (10 %)
        ("1", ["110"], "110", "101.2"),
        ("1", ["110", "120", "111"], "120", "110.4"),
        ("-1", ["95", "90.1"], None, None),
        ("-1", ["90", "80", "85"], "80", "86.4"),
    ],
)
def test_trailing_activation_and_ratchet(
    size: str, marks: list[str], watermark: str | None, stop: str | None
) -> None:
    policy = ExitPolicy(stop_loss_roe_pct=None, trailing_activation_pct=D(10), trailing_retrace_pct=D(8))
    state, acts = run(policy, marks, size=size)
    assert acts == []
    assert state.watermark == (None if watermark is None else D(watermark))
    assert state.stop_price == (None if stop is None else D(stop))


def test_trailing_never_looser_than_hard_stop() -> None:
    policy = ExitPolicy(stop_loss_price_pct=D(2), stop_loss_roe_pct=None, trailing_retrace_pct=D(8))
    state, _ = run(policy, ["101"])  # trailing 92.92 is looser than the hard 98
    assert native_stop_price(policy, state, size=D(1), entry_price=D(100), leverage=1) == D(98)
    _, acts = run(policy, ["98"], state=state)
    assert [a.reason for a in acts] == [ExitReason.STOP_LOSS]


@pytest.mark.parametrize(("offset", "stop"), [("0", "100"), ("0.1", "100.1")])
def test_break_even_after_tier(offset: str, stop: str) -> None:
    policy = ExitPolicy(
        take_profit_tiers=(TakeProfitTier(D(10), D("0.5")),),
        break_even_after_tier=1,
        break_even_offset_pct=D(offset),
    )
    state, acts = run(policy, ["110"], size="2")
    assert [a.size for a in acts] == [D(1)]
    assert (state.stop_price, state.stop_reason) == (D(stop), ExitReason.BREAK_EVEN_STOP)
    _, acts = run(policy, [stop], size="1", state=state)
    assert [(a.reason, a.size, a.full) for a in acts] == [(ExitReason.BREAK_EVEN_STOP, D(1), True)]


@pytest.mark.parametrize(
    ("size", "mark", "fires"), [("1", "81.9", False), ("1", "81.8", True), ("-1", "109.5", True)]
)
def test_liquidation_buffer(size: str, mark: str, fires: bool) -> None:
    policy = ExitPolicy(stop_loss_roe_pct=None, liquidation_buffer_pct=D(10))
    liq = D(73.62) if size == "1" else D("120")
    state = ExitState(0)
    _, acts = evaluate(
        policy,
        state,
        size=D(size),
        entry_price=D(100),
        mark=D(mark),
        leverage=5,
        now_ms=0,
        liquidation_price=liq,
    )
    assert [a.reason for a in acts] == ([ExitReason.LIQUIDATION_RISK] if fires else [])


def test_stop_wins_over_time_and_take_profit() -> None:
    policy = ExitPolicy(stop_loss_price_pct=D(5), max_holding_ms=HOUR)
    _, acts = run(policy, ["90"], now_ms=2 * HOUR)
    assert [a.reason for a in acts] == [ExitReason.STOP_LOSS]


def test_flat_position_needs_nothing() -> None:
    assert run(ExitPolicy(), ["1"], size="0") == (ExitState(0), [])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stop_loss_roe_pct": D(0)}, "stop_loss_roe_pct"),
        ({"stop_loss_price_pct": D(100)}, "stop_loss_price_pct"),
        ({"trailing_retrace_pct": D(-1)}, "trailing_retrace_pct"),
        ({"max_holding_ms": 0}, "max_holding_ms"),
        ({"take_profit_tiers": (TakeProfitTier(D(20), D("0.5")), TakeProfitTier(D(20), D(1)))}, "increasing"),
        ({"break_even_after_tier": 1}, "break_even_after_tier"),
        ({"stop_loss_roe_pct": D("NaN")}, "finite"),
    ],
)
def test_policy_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExitPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("fraction", ["0", "1.5", "-0.1"])
def test_tier_fraction_validation(fraction: str) -> None:
    with pytest.raises(ValueError, match="close_fraction"):
        TakeProfitTier(D(10), D(fraction))


@pytest.mark.parametrize(
    ("old", "new", "step", "moves"),
    [
        (None, "95", "0.5", True),
        ("100", "100.4", "0.5", False),
        ("100", "100.5", "0.5", True),
        ("100", "99", "0.5", True),
        ("100", None, "0.5", False),
    ],
)
def test_stop_moved_enough(old: str | None, new: str | None, step: str, moves: bool) -> None:
    to = None if new is None else D(new)
    assert stop_moved_enough(None if old is None else D(old), to, D(step)) is moves


# --------------------------------------------------------------------------- properties

prices = st.integers(min_value=1, max_value=10**7).map(lambda i: D(i).scaleb(-3))
paths = st.lists(prices, min_size=1, max_size=40)
pcts = st.integers(min_value=1, max_value=9_000).map(lambda i: D(i).scaleb(-2))  # 0.01 .. 90 %


@st.composite
def policies(draw: st.DrawFn) -> ExitPolicy:
    triggers = sorted(set(draw(st.lists(st.integers(1, 500), max_size=4))))
    tiers = tuple(TakeProfitTier(D(t), D(draw(st.integers(1, 100))) / 100) for t in triggers)
    return ExitPolicy(
        stop_loss_roe_pct=draw(st.none() | pcts),
        stop_loss_price_pct=draw(st.none() | pcts),
        take_profit_tiers=tiers,
        trailing_activation_pct=draw(st.integers(0, 50).map(D)),
        trailing_retrace_pct=draw(st.none() | pcts),
        max_holding_ms=draw(st.none() | st.integers(1, 10 * HOUR)),
        break_even_after_tier=draw(st.none() | st.integers(1, len(tiers))) if tiers else None,
    )


sizes = st.integers(min_value=1, max_value=10**6).map(lambda i: D(i).scaleb(-2)) | st.integers(
    min_value=-(10**6), max_value=-1
).map(lambda i: D(i).scaleb(-2))
leverages = st.integers(min_value=1, max_value=50)


@hsettings(max_examples=300, deadline=None)
@given(policies(), paths, sizes, prices, leverages)
def test_trailing_stop_never_loosens(
    policy: ExitPolicy, path: list[Decimal], size: Decimal, entry: Decimal, leverage: int
) -> None:
    state = ExitState(0)
    long = size > 0
    for mark in path:
        new, _ = evaluate(policy, state, size=size, entry_price=entry, mark=mark, leverage=leverage, now_ms=0)
        if state.stop_price is not None:
            assert new.stop_price is not None
            assert (new.stop_price >= state.stop_price) if long else (new.stop_price <= state.stop_price)
        if state.watermark is not None:
            assert new.watermark is not None
            assert (new.watermark >= state.watermark) if long else (new.watermark <= state.watermark)
        state = new


@hsettings(max_examples=300, deadline=None)
@given(policies(), paths, sizes, prices, leverages)
def test_tier_never_fires_twice_and_closes_never_exceed_position(
    policy: ExitPolicy, path: list[Decimal], size: Decimal, entry: Decimal, leverage: int
) -> None:
    state = ExitState(0)
    seen: set[int] = set()
    remaining = abs(size)
    for mark in path:
        position = remaining if size > 0 else -remaining
        state, acts = evaluate(
            policy, state, size=position, entry_price=entry, mark=mark, leverage=leverage, now_ms=0
        )
        assert sum((a.size for a in acts), D(0)) <= remaining
        assert all(
            a.size > 0 and a.reduce_only and a.side is (Side.SELL if size > 0 else Side.BUY) for a in acts
        )
        for a in acts:
            if a.tier is not None:
                assert a.tier not in seen
                seen.add(a.tier)
        if any(a.full for a in acts):
            assert len(acts) == 1
            assert acts[0].size == remaining
            return
        remaining -= sum((a.size for a in acts), D(0))
        if remaining == 0:
            return


@hsettings(max_examples=300, deadline=None)
@given(policies(), paths, sizes, prices, leverages)
def test_untriggered_stop_is_on_the_losing_side_of_the_mark(
    policy: ExitPolicy, path: list[Decimal], size: Decimal, entry: Decimal, leverage: int
) -> None:
    state = ExitState(0)
    for mark in path:
        state, acts = evaluate(
            policy, state, size=size, entry_price=entry, mark=mark, leverage=leverage, now_ms=0
        )
        stop = native_stop_price(policy, state, size=size, entry_price=entry, leverage=leverage)
        stopped = any(
            a.reason in (ExitReason.STOP_LOSS, ExitReason.TRAILING_STOP, ExitReason.BREAK_EVEN_STOP)
            for a in acts
        )
        if stop is not None and not stopped:
            assert (stop < mark) if size > 0 else (stop > mark)
        if stopped:
            assert stop is not None
            assert (mark <= stop) if size > 0 else (mark >= stop)
