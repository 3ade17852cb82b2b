"""`hyperfollow account`: settings only, read-only, plain refusals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog
from support import Venue, wallet_for
from typer.testing import CliRunner

from hyperfollow.app.cli import app


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The command configures structlog for the process; later tests get the defaults back."""
    yield
    structlog.reset_defaults()


def test_account_shows_the_configured_account(venue: Venue, monkeypatch: pytest.MonkeyPatch) -> None:
    wallet = wallet_for("cli-account")
    venue.fund(wallet.address, "12345")
    monkeypatch.setenv("HYPERFOLLOW_VENUE__BASE_URL", venue.url)
    monkeypatch.setenv("HYPERFOLLOW_VENUE__ACCOUNT_ADDRESS", wallet.address)
    monkeypatch.setenv("HYPERFOLLOW_VENUE__AGENT_KEY", wallet.key.hex())
    result = CliRunner().invoke(app, ["account"])
    assert result.exit_code == 0, result.output
    assert "12345" in result.output
    assert wallet.address.lower() in result.output
    assert wallet.key.hex().removeprefix("0x") not in result.output  # the key is never printed


def test_mainnet_without_the_live_flag_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPERFOLLOW_VENUE__NETWORK", "mainnet")
    monkeypatch.setenv("HYPERFOLLOW_VENUE__ACCOUNT_ADDRESS", "0x" + "1" * 40)
    monkeypatch.setenv("HYPERFOLLOW_VENUE__AGENT_KEY", "0x" + "2" * 64)
    result = CliRunner().invoke(app, ["account"])
    assert result.exit_code == 2
    assert "HYPERFOLLOW_VENUE__LIVE=true" in result.output
    assert "2" * 64 not in result.output


def _env(monkeypatch: pytest.MonkeyPatch, url: str, account: str, key: str) -> None:
    monkeypatch.setenv("HYPERFOLLOW_VENUE__BASE_URL", url)
    monkeypatch.setenv("HYPERFOLLOW_VENUE__ACCOUNT_ADDRESS", account)
    monkeypatch.setenv("HYPERFOLLOW_VENUE__AGENT_KEY", key)


def test_a_key_the_account_never_approved_is_refused_with_what_to_do(
    venue: Venue, monkeypatch: pytest.MonkeyPatch
) -> None:
    master = venue.trader("cli-account-master")
    stranger = wallet_for("cli-account-never-approved")
    _env(monkeypatch, venue.url, master.address, stranger.key.hex())
    result = CliRunner().invoke(app, ["account"])
    assert result.exit_code == 2, result.output
    assert "approveAgent" in result.output
    assert "HYPERFOLLOW_VENUE__ACCOUNT_ADDRESS" in result.output
    assert stranger.address.lower() in result.output  # the address it signs as, never the key
    assert stranger.key.hex().removeprefix("0x") not in result.output
    assert "Traceback" not in result.output


def test_another_accounts_own_key_is_refused(venue: Venue, monkeypatch: pytest.MonkeyPatch) -> None:
    master = venue.trader("cli-account-master-2")
    other = venue.trader("cli-account-someone-else")  # a funded account of its own, not an agent
    _env(monkeypatch, venue.url, master.address, other.wallet.key.hex())
    result = CliRunner().invoke(app, ["account"])
    assert result.exit_code == 2, result.output
    assert "own key" in result.output


def test_an_approved_agent_may_sign(venue: Venue, monkeypatch: pytest.MonkeyPatch) -> None:
    master = venue.trader("cli-account-master-3", usd="777")
    _ok, agent_key = master.exchange.approve_agent("cli")
    _env(monkeypatch, venue.url, master.address, agent_key)
    result = CliRunner().invoke(app, ["account"])
    assert result.exit_code == 0, result.output
    assert "777" in result.output
    assert agent_key.removeprefix("0x") not in result.output
