"""Settings that could cost money or leak a key: mainnet by host, key-shaped values never echoed, the
environment over the follow file, and a follow file that is not UTF-8."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig, is_mainnet_url
from hyperfollow.app.cli import app
from hyperfollow.app.follow_config import FollowConfigError, load_copy_config
from hyperfollow.app.settings import SettingsError, load_settings
from hyperfollow.app.venue import VenueConfigError, adapter_config

KEY_HEX = "9f" * 32
ACCOUNT = "0x" + "ab" * 20
LEADER = "0x" + "3" * 40
MAINNET_SPELLINGS = [
    "https://api.hyperliquid.xyz",
    "https://API.hyperliquid.xyz",
    "https://api.HYPERLIQUID.xyz/",
    "https://api.hyperliquid.xyz:443",
    "https://api.hyperliquid.xyz.",
    "https://api.hyperliquid.xyz./",
    "https://user:pw@api.hyperliquid.xyz",
    "https://api.hyperliquid.xyz/info",
    "http://api.hyperliquid.xyz:80",
    "https://hyperliquid.xyz",
    "https://api-ui.hyperliquid.xyz",
]
NOT_MAINNET = [
    "https://api.hyperliquid-testnet.xyz",
    "http://127.0.0.1:8931",
    "https://api.hyperliquid.xyz.example.com",
    "https://example.com/api.hyperliquid.xyz",
    "https://api.hyperliquid.xyz@example.com",
    "https://nothyperliquid.xyz",
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("HYPERFOLLOW_"):
            monkeypatch.delenv(name)
    yield
    structlog.reset_defaults()


def _venue_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(f"HYPERFOLLOW_VENUE__{name}", value)


@pytest.mark.parametrize("url", MAINNET_SPELLINGS)
def test_every_spelling_of_the_mainnet_host_needs_live(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    assert is_mainnet_url(url)
    _venue_env(monkeypatch, BASE_URL=url, ACCOUNT_ADDRESS=ACCOUNT, AGENT_KEY="0x" + KEY_HEX)
    with pytest.raises(VenueConfigError, match="mainnet"):
        adapter_config(load_settings())
    monkeypatch.setenv("HYPERFOLLOW_VENUE__LIVE", "true")
    config = adapter_config(load_settings())
    assert config.is_mainnet  # and with the flag the SDK-compatible signature is the mainnet one


@pytest.mark.parametrize("url", MAINNET_SPELLINGS)
def test_copy_refuses_every_spelling_of_mainnet_without_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    _venue_env(monkeypatch, AGENT_KEY="0x" + KEY_HEX)
    monkeypatch.setenv("HYPERFOLLOW_STORE__URL", f"sqlite+aiosqlite:///{tmp_path / 'copy.db'}")
    config = tmp_path / "follow.toml"
    config.write_text(
        f'[venue]\nbase_url = "{url}"\naccount_address = "{ACCOUNT}"\n\n[[follow]]\nleader = "{LEADER}"\n'
    )
    result = CliRunner().invoke(app, ["copy", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "--live" in result.output
    assert not (tmp_path / "copy.db").exists()


@pytest.mark.parametrize("url", NOT_MAINNET)
def test_other_hosts_are_not_mainnet(url: str) -> None:
    assert not is_mainnet_url(url)
    config = HyperliquidConfig(base_url=url, account_address=ACCOUNT, secret_key="0x" + KEY_HEX)  # type: ignore[arg-type]
    assert not config.is_mainnet


@pytest.mark.parametrize("key", [KEY_HEX, "0x" + KEY_HEX, KEY_HEX[:-2], KEY_HEX.upper()])
@pytest.mark.parametrize(
    "variable",
    [
        "VENUE__ACCOUNT_ADDRESS",
        "VENUE__VAULT_ADDRESS",
        "VENUE__BASE_URL",
        "VENUE__NETWORK",
        "VENUE__LIVE",
        "EXCHANGE__PORT",
        "EXCHANGE__SPEED",
        "LOGGING__LEVEL",
    ],
)
def test_a_key_in_any_setting_is_never_echoed(
    monkeypatch: pytest.MonkeyPatch, variable: str, key: str
) -> None:
    monkeypatch.setenv(f"HYPERFOLLOW_{variable}", key)
    with pytest.raises(SettingsError) as info:
        load_settings()
    text = str(info.value)
    assert f"HYPERFOLLOW_{variable}" in text  # says where
    assert KEY_HEX[:40].lower() not in text.lower()
    result = CliRunner().invoke(app, ["account"])
    assert result.exit_code == 2
    assert f"HYPERFOLLOW_{variable}" in result.output
    assert KEY_HEX[:40].lower() not in result.output.lower()


@pytest.mark.parametrize(
    "text",
    [
        f'[[follow]]\nleader = "0x{KEY_HEX}"\n',
        f'[[follow]]\nleader = "{KEY_HEX}"\n',
        f'[[follow]]\nleader = "{LEADER}"\nmode = "0x{KEY_HEX}"\n',
        f'[[follow]]\nleader = "{LEADER}"\nexecution = "{KEY_HEX}"\n',
        f'[[follow]]\nleader = "{LEADER}"\ncopy_ratio = "{KEY_HEX}"\n',
        f'[defaults]\nsizing = "{KEY_HEX}"\n[[follow]]\nleader = "{LEADER}"\n',
    ],
)
def test_a_key_in_the_follow_file_is_never_echoed(tmp_path: Path, text: str) -> None:
    path = tmp_path / "follow.toml"
    path.write_text(text)
    with pytest.raises(FollowConfigError) as info:
        load_copy_config(path)
    assert "[[follow]] #1" in str(info.value) or "[defaults]" in str(info.value)
    assert KEY_HEX[:40] not in str(info.value)


@pytest.mark.parametrize("key", ["account_address", "vault_address", "base_url"])
def test_a_key_in_the_files_venue_table_is_never_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    _venue_env(monkeypatch, AGENT_KEY="0x" + "42" * 32)
    if key != "account_address":
        _venue_env(monkeypatch, ACCOUNT_ADDRESS=ACCOUNT)
    path = tmp_path / "follow.toml"
    path.write_text(f'[venue]\n{key} = "0x{KEY_HEX}"\n\n[[follow]]\nleader = "{LEADER}"\n')
    result = CliRunner().invoke(app, ["copy", "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert f"[venue] {key}" in result.output  # names the file's key
    assert KEY_HEX[:40] not in result.output


def test_a_follow_file_that_is_not_utf8_gets_a_sentence(tmp_path: Path) -> None:
    path = tmp_path / "follow.toml"
    path.write_bytes(b'[[follow]]\nleader = "caf\xe9"\n')  # Latin-1, as an old editor saves it
    with pytest.raises(FollowConfigError, match="UTF-8"):
        load_copy_config(path)
    result = CliRunner().invoke(app, ["copy", "--config", str(path)])
    assert result.exit_code == 2
    assert "UTF-8" in result.output
    assert "Traceback" not in result.output


def test_the_environment_wins_over_the_files_venue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the file points at a local port; the environment says mainnet. The environment wins, so the run is
    # refused for want of --live before anything connects (the file winning would try 127.0.0.1:9).
    _venue_env(monkeypatch, BASE_URL="https://api.hyperliquid.xyz", AGENT_KEY="0x" + "42" * 32)
    monkeypatch.setenv("HYPERFOLLOW_STORE__URL", f"sqlite+aiosqlite:///{tmp_path / 'copy.db'}")
    path = tmp_path / "follow.toml"
    path.write_text(
        f'[venue]\nbase_url = "http://127.0.0.1:9"\naccount_address = "{ACCOUNT}"\n\n'
        f'[[follow]]\nleader = "{LEADER}"\n'
    )
    result = CliRunner().invoke(app, ["copy", "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert "--live" in result.output


def test_a_bad_value_names_where_it_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _venue_env(monkeypatch, AGENT_KEY="0x" + "42" * 32)
    path = tmp_path / "follow.toml"
    path.write_text(f'[venue]\naccount_address = "0x12"\n\n[[follow]]\nleader = "{LEADER}"\n')
    result = CliRunner().invoke(app, ["copy", "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}: [venue] account_address" in result.output.replace("\n", "")
    _venue_env(monkeypatch, ACCOUNT_ADDRESS="0x12")
    path.write_text(f'[[follow]]\nleader = "{LEADER}"\n')
    result = CliRunner().invoke(app, ["copy", "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert "HYPERFOLLOW_VENUE__ACCOUNT_ADDRESS" in result.output
