"""Venue settings -> adapter configuration, and the refusals that say which setting is missing."""

from __future__ import annotations

import os

import pytest

from hyperfollow.adapters.hyperliquid.config import MAINNET_API_URL, TESTNET_API_URL
from hyperfollow.app.settings import Settings, SettingsError, load_settings
from hyperfollow.app.venue import VenueConfigError, adapter_config

KEY = "0x" + "42" * 32
ACCOUNT = "0x" + "AB" * 20


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name in list(os.environ):
        if name.startswith("HYPERFOLLOW_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(f"HYPERFOLLOW_{name}", value)
    return Settings()


def test_embedded_by_default_from_the_exchange_section(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(
        monkeypatch,
        VENUE__ACCOUNT_ADDRESS=ACCOUNT,
        VENUE__AGENT_KEY=KEY,
        EXCHANGE__PORT="9123",
        EXCHANGE__HOST="0.0.0.0",
    )
    config = adapter_config(s)
    assert config.base_url == "http://127.0.0.1:9123"
    assert config.account_address == ACCOUNT.lower()
    assert config.secret_key.get_secret_value() == KEY
    assert KEY[2:] not in repr(s.venue)


def test_testnet_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(monkeypatch, VENUE__NETWORK="testnet", VENUE__ACCOUNT_ADDRESS=ACCOUNT, VENUE__AGENT_KEY=KEY)
    assert adapter_config(s).base_url == TESTNET_API_URL
    s = settings(
        monkeypatch,
        VENUE__BASE_URL="http://10.0.0.5:8931/",
        VENUE__ACCOUNT_ADDRESS=ACCOUNT,
        VENUE__AGENT_KEY=KEY,
    )
    assert adapter_config(s).base_url == "http://10.0.0.5:8931"


def test_mainnet_needs_live(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(monkeypatch, VENUE__NETWORK="mainnet", VENUE__ACCOUNT_ADDRESS=ACCOUNT, VENUE__AGENT_KEY=KEY)
    with pytest.raises(VenueConfigError, match="HYPERFOLLOW_VENUE__LIVE=true"):
        adapter_config(s)
    s = settings(
        monkeypatch, VENUE__BASE_URL=MAINNET_API_URL, VENUE__ACCOUNT_ADDRESS=ACCOUNT, VENUE__AGENT_KEY=KEY
    )
    with pytest.raises(VenueConfigError, match="mainnet"):
        adapter_config(s)
    s = settings(
        monkeypatch,
        VENUE__NETWORK="mainnet",
        VENUE__LIVE="true",
        VENUE__ACCOUNT_ADDRESS=ACCOUNT,
        VENUE__AGENT_KEY=KEY,
    )
    config = adapter_config(s)
    assert config.is_mainnet


def test_missing_account_or_key_is_said_in_words(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(VenueConfigError, match="HYPERFOLLOW_VENUE__ACCOUNT_ADDRESS"):
        adapter_config(settings(monkeypatch, VENUE__AGENT_KEY=KEY))
    with pytest.raises(VenueConfigError, match="HYPERFOLLOW_VENUE__AGENT_KEY"):
        adapter_config(settings(monkeypatch, VENUE__ACCOUNT_ADDRESS=ACCOUNT))


def test_malformed_values_never_echo_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    bad_key = "0x" + "7q" * 32
    settings(monkeypatch)  # a clean environment
    monkeypatch.setenv("HYPERFOLLOW_VENUE__ACCOUNT_ADDRESS", "0x1234")
    monkeypatch.setenv("HYPERFOLLOW_VENUE__AGENT_KEY", bad_key)
    with pytest.raises(SettingsError) as info:
        load_settings()
    text = str(info.value)
    assert "HYPERFOLLOW_VENUE__ACCOUNT_ADDRESS" in text
    assert "HYPERFOLLOW_VENUE__AGENT_KEY" in text
    assert "7q7q" not in text
