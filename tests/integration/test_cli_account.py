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
