"""follow.toml: exact numbers, defaults under each follow, and errors that say where."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from hyperfollow.app.follow_config import FollowConfigError, load_copy_config
from hyperfollow.copy.model import CopyMode, ExecutionStyle, SizingMode

A = "0x" + "1" * 40
B = "0x" + "2" * 40

GOOD = f"""
[venue]
network = "testnet"
account_address = "0x{"a" * 40}"

[defaults]
copy_ratio = 0.1
execution = "maker"
slippage_cap_pct = 0.3

[[follow]]
leader = "{A.upper().replace("0X", "0x")}"
name = "swing"
budget_usd = 2000

[[follow]]
leader = "{B}"
mode = "delta"
reverse = true
copy_ratio = 0.25
sizing = "fixed_notional"
notional_usd = 50
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "follow.toml"
    path.write_text(text)
    return path


def test_a_good_file_gives_exact_settings(tmp_path: Path) -> None:
    config = load_copy_config(write(tmp_path, GOOD))
    assert config.venue == {"network": "testnet", "account_address": "0x" + "a" * 40}
    first, second = config.follows
    assert (first.leader, first.label) == (A, "swing")
    assert first.settings.copy_ratio == Decimal("0.1")  # exactly, not 0.1000000000000000055...
    assert first.settings.budget_usd == Decimal(2000)
    assert first.settings.execution is ExecutionStyle.MAKER
    assert first.settings.slippage_cap_pct == Decimal("0.3")
    assert (second.settings.mode, second.settings.reverse) == (CopyMode.DELTA, True)
    assert second.settings.copy_ratio == Decimal("0.25")  # the follow's own value wins over the default
    assert second.settings.sizing is SizingMode.FIXED_NOTIONAL
    assert second.label.startswith("0x222222")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no \\[\\[follow\\]\\] entries"),
        (f'[[follow]]\nleader = "{A}"\ncopy_ratio = -1', r"#1 \(leader 0x1+\): copy_ratio must be > 0"),
        (f'[[follow]]\nleader = "{A}"\ncopy_raito = 1', r"unknown setting\(s\) \['copy_raito'\]"),
        ('[[follow]]\nleader = "0x123"', "leader must be a 0x address"),
        (f'[[follow]]\nleader = "{A}"\n[[follow]]\nleader = "{A}"', "followed twice"),
        (f'[venue]\nagent_key = "0xdead"\n[[follow]]\nleader = "{A}"', "HYPERFOLLOW_VENUE__AGENT_KEY"),
        (f'[venue]\nlive = true\n[[follow]]\nleader = "{A}"', "--live"),
        (f'[[follow]]\nleader = "{A}"\nexecution = "yolo"', "execution must be one of taker, maker"),
        (f'[[follow]]\nleader = "{A}"\nsizing = "fixed_notional"', "notional_usd is required"),
        ("[follow\n", "not valid TOML"),
    ],
)
def test_bad_files_say_where_and_what(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(FollowConfigError, match=message) as info:
        load_copy_config(write(tmp_path, text))
    assert str(tmp_path / "follow.toml") in str(info.value)
    assert "0xdead" not in str(info.value)  # a key written in the file is never echoed


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FollowConfigError, match="no such file"):
        load_copy_config(tmp_path / "nope.toml")


def test_exit_policies_per_follow_with_defaults(tmp_path: Path) -> None:
    from hyperfollow.risk.exits import ExitPolicy, TakeProfitTier

    text = f"""
[defaults]
exit = {{ stop_loss_roe_pct = 12 }}

[[follow]]
leader = "{A}"
exit = {{ take_profit_tiers = [[20, 0.3], [40, 0.5]], trailing_retrace_pct = 8, max_holding_hours = 72 }}

[[follow]]
leader = "{B}"
"""
    first, second = load_copy_config(write(tmp_path, text)).follows
    assert first.exit_policy == ExitPolicy(
        stop_loss_roe_pct=Decimal(12),
        take_profit_tiers=(
            TakeProfitTier(Decimal(20), Decimal("0.3")),
            TakeProfitTier(Decimal(40), Decimal("0.5")),
        ),
        trailing_retrace_pct=Decimal(8),
        max_holding_ms=72 * 3_600_000,
    )
    assert second.exit_policy == ExitPolicy(stop_loss_roe_pct=Decimal(12))
    bad = f'[[follow]]\nleader = "{A}"\nexit = {{ take_profit_tiers = [[40, 0.3], [20, 0.3]] }}'
    with pytest.raises(FollowConfigError, match="exit: take-profit triggers must be strictly increasing"):
        load_copy_config(write(tmp_path, bad))
    with pytest.raises(FollowConfigError, match=r"unknown setting\(s\) \['stop'\]"):
        load_copy_config(write(tmp_path, f'[[follow]]\nleader = "{A}"\nexit = {{ stop = 1 }}'))
