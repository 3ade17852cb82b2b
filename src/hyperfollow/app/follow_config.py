"""`follow.toml`: which leaders a follower copies, and how. Read for `hyperfollow copy --config`.

```toml
[venue]                      # optional; HYPERFOLLOW_VENUE__* win over it (keys only in the environment)
network = "testnet"
account_address = "0xYourAccount"

[defaults]                   # FollowSettings for every follow below (each [[follow]] may override)
copy_ratio = 0.5
execution = "taker"
slippage_cap_pct = 0.3

[[follow]]
leader = "0x1111111111111111111111111111111111111111"
name = "swing whale"         # optional label for views and reports
budget_usd = 2000
exit = { stop_loss_roe_pct = 10, take_profit_tiers = [[20, 0.3]], trailing_retrace_pct = 8 }

[[follow]]
leader = "0x2222222222222222222222222222222222222222"
mode = "delta"
reverse = true
```

Numbers are read as ``Decimal`` straight from the file's text (``0.1`` stays exactly 0.1). Every error
names the file, the follow and the setting, and never shows a value shaped like a private key.
Every key, its default and unit: ``docs/follow-toml.md``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from hyperfollow.app.settings import redact, shown
from hyperfollow.copy.model import FollowSettings
from hyperfollow.risk.exits import ExitPolicy, TakeProfitTier

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_VENUE_KEYS = frozenset({"network", "base_url", "account_address", "vault_address"})
_SETTING_KEYS = frozenset(f.name for f in fields(FollowSettings))
_FOLLOW_KEYS = _SETTING_KEYS | {"leader", "name", "exit"}
_EXIT_KEYS = frozenset(
    {"stop_loss_roe_pct", "stop_loss_price_pct", "take_profit_tiers", "trailing_activation_pct",
     "trailing_retrace_pct", "max_holding_hours", "break_even_after_tier", "break_even_offset_pct",
     "liquidation_buffer_pct"}
)  # fmt: skip


class FollowConfigError(ValueError):
    """The file cannot be used as it is; the message says where and what (key-shaped values hidden)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


@dataclass(frozen=True, slots=True)
class FollowSpec:
    leader: str  # lower-case address
    settings: FollowSettings
    name: str | None = None
    exit_policy: ExitPolicy = field(default_factory=ExitPolicy)  # how the risk layer exits its positions

    @property
    def label(self) -> str:
        return self.name or f"{self.leader[:8]}..{self.leader[-4:]}"


@dataclass(frozen=True, slots=True)
class CopyConfig:
    follows: tuple[FollowSpec, ...]
    venue: dict[str, str]  # overrides of the venue settings section


def load_copy_config(path: str | Path) -> CopyConfig:
    """Read and check a follow file (see the module docstring)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh, parse_float=Decimal)
    except FileNotFoundError:
        raise FollowConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FollowConfigError(f"{path}: is a folder, not a follow file") from None
    except OSError as exc:
        raise FollowConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise FollowConfigError(
            f"{path}: not UTF-8 text (byte {exc.start} is not valid UTF-8): save the file as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise FollowConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_copy_config(doc, source=str(path))


def parse_copy_config(doc: dict[str, Any], source: str = "follow.toml") -> CopyConfig:
    """The checked configuration from an already-parsed TOML document."""
    unknown = set(doc) - {"venue", "defaults", "follow"}
    if unknown:
        raise FollowConfigError(
            f"{source}: unknown section(s) {sorted(unknown)}; use [venue], [defaults], [[follow]]"
        )
    venue = _venue(doc.get("venue", {}), source)
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise FollowConfigError(f"{source}: [defaults] must be a table")
    _check_keys(defaults, _SETTING_KEYS | {"exit"}, f"{source}: [defaults]")
    default_exit = defaults.get("exit", {})
    raw_follows = doc.get("follow", [])
    if not isinstance(raw_follows, list) or not raw_follows:
        raise FollowConfigError(f"{source}: no [[follow]] entries: name at least one leader to copy")
    follows: list[FollowSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_follows, start=1):
        where = f"{source}: [[follow]] #{i}"
        if not isinstance(raw, dict):
            raise FollowConfigError(f"{where} must be a table")
        _check_keys(raw, _FOLLOW_KEYS, where)
        leader = raw.get("leader")
        if not isinstance(leader, str) or not _ADDRESS.match(leader):
            raise FollowConfigError(
                f"{where}: leader must be a 0x address of 40 hex digits, got {shown(leader)}"
            )
        leader = leader.lower()
        if leader in seen:
            raise FollowConfigError(f"{where}: leader {leader} is followed twice")
        seen.add(leader)
        options = {
            **{k: v for k, v in defaults.items() if k != "exit"},
            **{k: v for k, v in raw.items() if k in _SETTING_KEYS},
        }
        try:
            settings = FollowSettings(**options)
        except (TypeError, ValueError) as exc:
            raise FollowConfigError(f"{where} (leader {leader}): {exc}") from None
        name = raw.get("name")
        if name is not None and not isinstance(name, str):
            raise FollowConfigError(f"{where}: name must be text")
        exit_policy = _exit_policy(
            {**default_exit, **raw.get("exit", {})}, f"{where} (leader {leader}): exit"
        )
        follows.append(FollowSpec(leader, settings, name, exit_policy))
    return CopyConfig(tuple(follows), venue)


def _exit_policy(raw: Any, where: str) -> ExitPolicy:
    """``exit = { stop_loss_roe_pct = 10, take_profit_tiers = [[20, 0.3], [40, 0.5]],
    trailing_retrace_pct = 8, trailing_activation_pct = 5, max_holding_hours = 72,
    break_even_after_tier = 1 }`` (every key optional; missing ones keep the risk layer's defaults)."""
    if not isinstance(raw, dict):
        raise FollowConfigError(f"{where} must be a table")
    _check_keys(raw, _EXIT_KEYS, where)
    options = {k: v for k, v in raw.items() if k not in ("take_profit_tiers", "max_holding_hours")}
    try:
        for key, value in list(options.items()):
            if key != "break_even_after_tier":
                options[key] = Decimal(str(value))
        tiers = tuple(
            TakeProfitTier(Decimal(str(t)), Decimal(str(f))) for t, f in raw.get("take_profit_tiers", ())
        )
        hours = raw.get("max_holding_hours")
        held = None if hours is None else int(Decimal(str(hours)) * 3_600_000)
        return ExitPolicy(**options, take_profit_tiers=tiers, max_holding_ms=held)
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise FollowConfigError(f"{where}: {exc}") from None


def _venue(raw: Any, source: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise FollowConfigError(f"{source}: [venue] must be a table")
    for key in raw:
        if "key" in key.lower() or "secret" in key.lower():
            raise FollowConfigError(
                f"{source}: [venue] {key}: keys never go in a file; set HYPERFOLLOW_VENUE__AGENT_KEY in the "
                "environment"
            )
    if "live" in raw:
        raise FollowConfigError(
            f"{source}: [venue] live: live trading is asked for on the command line (--live)"
        )
    _check_keys(raw, _VENUE_KEYS, f"{source}: [venue]")
    bad = {k: v for k, v in raw.items() if not isinstance(v, str)}
    if bad:
        raise FollowConfigError(f"{source}: [venue] values must be text: {sorted(bad)}")
    return dict(raw)


def _check_keys(table: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise FollowConfigError(
            f"{where}: unknown setting(s) {unknown}; allowed: {', '.join(sorted(allowed))}"
        )
