"""``docs/follow-toml.md`` documents every key the follow file accepts, with its default, so the page
cannot drift from the settings models (``VenueSettings``, ``FollowSettings``, ``ExitPolicy``)."""

from __future__ import annotations

import re
from dataclasses import MISSING, fields
from decimal import Decimal
from enum import Enum
from pathlib import Path

from hyperfollow.app import follow_config
from hyperfollow.app.settings import VenueSettings
from hyperfollow.copy.model import FollowSettings
from hyperfollow.risk.exits import ExitPolicy

DOC = Path(__file__).resolve().parents[3] / "docs" / "follow-toml.md"
ROW = re.compile(r"^\| `([a-z_]+)` \| ([^|]+?) \|", re.MULTILINE)
# the file's name of a model field, where they differ (hours in the file, ms in the policy)
FILE_NAME = {"max_holding_ms": "max_holding_hours"}


def _rendered(value: object) -> str:
    """How the page writes a default."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return f'"{value.value}"'
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple | list):
        return "[]" if not value else str(list(value))
    if isinstance(value, Decimal | int):
        return str(value)
    raise AssertionError(f"no rendering for {value!r}")


def _documented() -> dict[str, str]:
    rows = ROW.findall(DOC.read_text())
    keys = [k for k, _ in rows]
    assert len(keys) == len(set(keys)), "a key is documented twice"
    return {k: v.strip() for k, v in rows}


def _model_defaults() -> dict[str, object]:
    out: dict[str, object] = {}
    for name in follow_config._VENUE_KEYS:
        out[name] = VenueSettings.model_fields[name].default
    for model in (FollowSettings, ExitPolicy):
        for f in fields(model):
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            out[FILE_NAME.get(f.name, f.name)] = default
    return out


def test_every_key_is_documented_with_its_default() -> None:
    documented = _documented()
    for key, default in _model_defaults().items():
        assert key in documented, f"{key} is missing from {DOC.name}"
        assert documented[key] == _rendered(default), f"{key}: the page says {documented[key]!r}"


def test_the_page_documents_only_keys_the_file_accepts() -> None:
    accepted = follow_config._VENUE_KEYS | follow_config._FOLLOW_KEYS | follow_config._EXIT_KEYS | {"exit"}
    assert set(_documented()) == set(accepted)


def test_the_loader_accepts_exactly_the_models_keys() -> None:
    # a field added to a model without the loader knowing it (or the reverse) fails here too
    assert set(VenueSettings.model_fields) >= follow_config._VENUE_KEYS
    assert {f.name for f in fields(FollowSettings)} == follow_config._SETTING_KEYS
    assert {FILE_NAME.get(f.name, f.name) for f in fields(ExitPolicy)} == follow_config._EXIT_KEYS
