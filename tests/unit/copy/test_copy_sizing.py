"""Sizing: equity ratio, the three modes, copy ratio, caps and budget, lots rounded down, proportional closes;
and the settings' validation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from copy_helpers import BTC, ETH, HYPE, SOL, D
from hypothesis import given
from hypothesis import strategies as st

from hyperfollow.copy.model import CopyMode, FollowSettings, LeverageMode, SizingMode, SkipReason
from hyperfollow.copy.sizing import Limit, cap_size, close_size, equity_ratio, requested_size, target_size
from hyperfollow.domain.rules import Instrument, size_is_valid


@pytest.mark.parametrize(
    ("follower", "leader", "ratio"),
    [
        ("1000", "10000", "0.1"),
        ("50000", "10000", "5"),
        ("0", "10000", "0"),
        ("1000", "0", "0"),
        ("1", "-5", "0"),
    ],
)
def test_equity_ratio(follower: str, leader: str, ratio: str) -> None:
    assert equity_ratio(D(follower), D(leader)) == D(ratio)


@pytest.mark.parametrize(
    ("settings", "leader_size", "price", "ratio", "expected"),
    [
        (FollowSettings(), "2", "100", "0.1", "0.2"),
        (FollowSettings(copy_ratio=D("0.5")), "2", "100", "0.1", "0.1"),
        (FollowSettings(sizing=SizingMode.FIXED_MULTIPLIER, multiplier=D(3)), "2", "100", "0.1", "6"),
        (
            FollowSettings(sizing=SizingMode.FIXED_MULTIPLIER, multiplier=D(3), copy_ratio=D(2)),
            "2",
            "1",
            "9",
            "12",
        ),
        (FollowSettings(sizing=SizingMode.FIXED_NOTIONAL, notional_usd=D(50)), "2", "100", "0.1", "0.5"),
        (
            FollowSettings(sizing=SizingMode.FIXED_NOTIONAL, notional_usd=D(50), copy_ratio=D(2)),
            "99",
            "100",
            "1",
            "1",
        ),
    ],
)
def test_requested_size_per_mode(
    settings: FollowSettings, leader_size: str, price: str, ratio: str, expected: str
) -> None:
    assert requested_size(D(leader_size), price=D(price), settings=settings, ratio=D(ratio)) == D(expected)


@pytest.mark.parametrize(
    ("inst", "requested", "price", "settings", "position_usd", "used_usd", "size", "limit"),
    [
        # no caps: lots rounded down (BTC 5 decimals, ETH 4, SOL 2, HYPE 2)
        (BTC, "0.123456789", "100000", FollowSettings(), "0", "0", "0.12345", None),
        (ETH, "1.99999", "3000", FollowSettings(), "0", "0", "1.9999", None),
        (SOL, "3.456", "150", FollowSettings(), "0", "0", "3.45", None),
        (HYPE, "0.009", "40", FollowSettings(), "0", "0", "0", None),
        # order cap: $1000 at 3000 -> 0.3333...
        (ETH, "1", "3000", FollowSettings(max_order_usd=D(1000)), "0", "0", "0.3333", Limit.ORDER_CAP),
        # position cap: $5000 with $4000 held -> $1000 left
        (SOL, "100", "100", FollowSettings(max_position_usd=D(5000)), "4000", "0", "10", Limit.POSITION_CAP),
        # budget: $2000 with $1990 used -> $10 left
        (HYPE, "10", "40", FollowSettings(budget_usd=D(2000)), "0", "1990", "0.25", Limit.BUDGET),
        # the tightest cap binds
        (
            ETH,
            "10",
            "1000",
            FollowSettings(max_order_usd=D(5000), max_position_usd=D(3000), budget_usd=D(4000)),
            "0",
            "0",
            "3",
            Limit.POSITION_CAP,
        ),
        # a full budget leaves nothing
        (BTC, "1", "100000", FollowSettings(budget_usd=D(1000)), "0", "1500", "0", Limit.BUDGET),
        # a cap that is not reached does not show
        (ETH, "0.1", "3000", FollowSettings(max_order_usd=D(1000)), "0", "0", "0.1", None),
    ],
)
def test_caps_and_lots(
    inst: Instrument,
    requested: str,
    price: str,
    settings: FollowSettings,
    position_usd: str,
    used_usd: str,
    size: str,
    limit: Limit | None,
) -> None:
    sized = cap_size(
        D(requested),
        price=D(price),
        instrument=inst,
        settings=settings,
        position_usd=D(position_usd),
        budget_used_usd=D(used_usd),
    )
    assert sized.size == D(size)
    assert sized.limited_by is limit
    assert sized.requested == D(requested)
    assert sized.size <= sized.requested


def test_target_size_combines_mode_and_caps() -> None:
    settings = FollowSettings(copy_ratio=D("0.5"), max_order_usd=D(200))
    sized = target_size(D(10), price=D(40), instrument=HYPE, settings=settings, ratio=D("0.2"))
    assert sized.requested == D(1)  # 10 x 0.2 x 0.5
    assert sized.size == D(1)  # $40 is under the $200 cap
    sized = target_size(D(100), price=D(40), instrument=HYPE, settings=settings, ratio=D("0.2"))
    assert (sized.size, sized.limited_by, sized.room_usd) == (D(5), Limit.ORDER_CAP, D(200))


@pytest.mark.parametrize(
    ("inst", "ours", "closed", "start", "expected"),
    [
        (ETH, "1", "5", "5", "1"),  # the leader went flat: all of ours
        (ETH, "1", "6", "5", "1"),  # more than they had (a bad fill): still only ours
        (ETH, "1", "2.5", "5", "0.5"),  # half
        (ETH, "0.0003", "1", "3", "0.0001"),  # a third, rounded down
        (BTC, "0.00001", "1", "2", "0"),  # half a lot rounds to nothing
        (SOL, "-4", "1", "-4", "1"),  # signs do not matter
        (HYPE, "0", "1", "2", "0"),  # we hold nothing
        (SOL, "3.33", "1", "3", "1.11"),
    ],
)
def test_close_size(inst: Instrument, ours: str, closed: str, start: str, expected: str) -> None:
    assert close_size(D(ours), D(closed), D(start), inst) == D(expected)


sizes = st.decimals(min_value=Decimal("0.00001"), max_value=Decimal(10_000), places=5, allow_nan=False)


@given(
    ours=sizes,
    closed=sizes,
    start=sizes,
    inst=st.sampled_from([BTC, ETH, SOL, HYPE]),
)
def test_a_close_is_never_more_than_ours_and_on_the_grid(
    ours: Decimal, closed: Decimal, start: Decimal, inst: Instrument
) -> None:
    ours = ours.quantize(inst.lot)
    size = close_size(ours, closed, start, inst)
    assert 0 <= size <= abs(ours)
    assert size == 0 or size_is_valid(inst, size)
    if closed >= start:
        assert size == abs(ours)


@given(
    leader=sizes,
    ratio=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(100), places=4),
    price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100_000), places=2),
    cap=st.none() | st.decimals(min_value=Decimal(1), max_value=Decimal(100_000), places=2),
    used=st.decimals(min_value=Decimal(0), max_value=Decimal(100_000), places=2),
    inst=st.sampled_from([BTC, ETH, SOL, HYPE]),
)
def test_opening_sizes_are_lots_never_above_request_or_caps(
    leader: Decimal, ratio: Decimal, price: Decimal, cap: Decimal | None, used: Decimal, inst: Instrument
) -> None:
    settings = FollowSettings(max_order_usd=cap, budget_usd=cap)
    sized = target_size(
        leader, price=price, instrument=inst, settings=settings, ratio=ratio, budget_used_usd=used
    )
    assert sized.size == 0 or size_is_valid(inst, sized.size)
    assert sized.size <= sized.requested
    assert sized.requested - sized.size < inst.lot or sized.shrunk
    if cap is not None:
        assert sized.size * price <= cap
        assert sized.size * price <= max(Decimal(0), cap - used)


# --------------------------------------------------------------------------- settings


def test_settings_defaults_match_the_issue() -> None:
    s = FollowSettings()
    assert s.mode is CopyMode.MIRROR
    assert s.sizing is SizingMode.EQUITY_RATIO
    assert (s.leverage_mode, s.leverage) == (LeverageMode.CAP, 3)
    assert (s.copy_ratio, s.drift_guard_pct, s.slippage_cap_pct) == (D(1), D(1), D("0.5"))
    assert (s.maker_timeout_secs, s.delta_band_pct, s.delta_cooldown_secs) == (D(5), D(5), D(60))
    assert s.follow_adds
    assert s.follow_reduces
    assert not s.opens_only
    assert not s.reverse


def test_settings_coerce_toml_numbers_and_enum_text() -> None:
    s = FollowSettings(
        copy_ratio=0.1,  # type: ignore[arg-type]
        budget_usd="2500",  # type: ignore[arg-type]
        sizing="fixed_multiplier",  # type: ignore[arg-type]
        mode="delta",  # type: ignore[arg-type]
    )
    assert s.copy_ratio == D("0.1")
    assert isinstance(s.copy_ratio, Decimal)
    assert s.budget_usd == D(2500)
    assert s.sizing is SizingMode.FIXED_MULTIPLIER
    assert s.mode is CopyMode.DELTA


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"copy_ratio": D(0)}, "copy_ratio"),
        ({"multiplier": D(-1)}, "multiplier"),
        ({"sizing": SizingMode.FIXED_NOTIONAL}, "notional_usd"),
        ({"budget_usd": D(0)}, "budget_usd"),
        ({"max_order_usd": D(-5)}, "max_order_usd"),
        ({"drift_guard_pct": D(-1)}, "drift_guard_pct"),
        ({"slippage_cap_pct": D(100)}, "slippage_cap_pct"),
        ({"slippage_cap_pct": D(0)}, "slippage_cap_pct"),
        ({"leverage": 0}, "leverage"),
        ({"leverage": 2.5}, "leverage"),
        ({"delta_band_pct": D(0)}, "delta_band_pct"),
        ({"maker_timeout_secs": D(0)}, "maker_timeout_secs"),
        ({"delta_cooldown_secs": D(-1)}, "delta_cooldown_secs"),
        ({"copy_ratio": "lots"}, "copy_ratio"),
        ({"copy_ratio": D("NaN")}, "copy_ratio"),
        ({"sizing": "martingale"}, "sizing"),
        ({"maker_fallback": "retry"}, "maker_fallback"),
    ],
)
def test_bad_settings_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        FollowSettings(**kwargs)  # type: ignore[arg-type]


def test_skip_reasons_read_as_text_and_keep_a_stable_code() -> None:
    assert SkipReason.SKIP_MIN_NOTIONAL.code == "SKIP_MIN_NOTIONAL"
    assert all(" " in r.value for r in SkipReason)  # words, not codes


def test_settings_given_as_text_are_checked_as_their_enum() -> None:
    from hyperfollow.copy.model import FollowSettings

    with pytest.raises(ValueError, match="notional_usd is required"):
        FollowSettings(sizing="fixed_notional")  # type: ignore[arg-type]
