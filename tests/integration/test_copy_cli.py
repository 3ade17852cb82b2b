"""`hyperfollow copy --config follow.toml`: refusals before anything connects, and a short real run
against the embedded exchange (a leader trading through the official SDK, the follower copying it through
the adapter, the store on SQLite)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from support import Trader, Venue, wait_for
from typer.testing import CliRunner

from hyperfollow.app.cli import app

KEY = "0x" + "2" * 64
ACCOUNT = "0x" + "1" * 40
LEADER = "0x" + "3" * 40


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No HYPERFOLLOW_* setting of the machine leaks in; the store is a file of this test."""
    import os

    for name in list(os.environ):
        if name.startswith("HYPERFOLLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HYPERFOLLOW_STORE__URL", f"sqlite+aiosqlite:///{tmp_path / 'copy.db'}")


def _follow_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("env_live", [None, "true"])
def test_mainnet_without_the_live_flag_is_refused_before_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env_live: str | None
) -> None:
    monkeypatch.setenv("HYPERFOLLOW_VENUE__AGENT_KEY", KEY)
    if env_live is not None:  # the setting is not enough for `copy`: only the flag on the command line
        monkeypatch.setenv("HYPERFOLLOW_VENUE__LIVE", env_live)
    config = _follow_file(
        tmp_path / "follow.toml",
        f'[venue]\nnetwork = "mainnet"\naccount_address = "{ACCOUNT}"\n\n[[follow]]\nleader = "{LEADER}"\n',
    )
    result = CliRunner().invoke(app, ["copy", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "--live" in result.output
    assert "2" * 64 not in result.output
    assert not (tmp_path / "copy.db").exists()  # refused before the store (or the venue) was touched


def test_a_bad_follow_file_gets_the_loaders_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPERFOLLOW_VENUE__AGENT_KEY", KEY)
    monkeypatch.setenv("HYPERFOLLOW_VENUE__ACCOUNT_ADDRESS", ACCOUNT)
    config = _follow_file(tmp_path / "follow.toml", f'[[follow]]\nleader = "{LEADER}"\ncopy_ration = 0.5\n')
    result = CliRunner().invoke(app, ["copy", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "[[follow]] #1" in result.output
    assert "copy_ration" in result.output


def test_a_missing_follow_file_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["copy", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2, result.output
    assert "no such file" in result.output


def _trade_until(leader: Trader, done: Callable[[], bool], stop: threading.Event) -> None:
    """The leader opens and closes 0.1 ETH until the follower has copied something (or ``stop``)."""
    buy = True
    while not stop.is_set() and not done():
        if buy:
            leader.exchange.market_open("ETH", True, 0.1)
        else:
            leader.exchange.market_close("ETH")
        buy = not buy
        stop.wait(0.3)


def test_copy_runs_against_the_embedded_exchange_and_copies_a_fill(
    make_venue: Callable[..., Venue], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venue = make_venue(stepped=False)  # real-time clock: the service's clock is the wall clock
    leader = venue.trader("copy-cli-leader", usd="100000")
    follower = venue.trader("copy-cli-follower", usd="10000")
    monkeypatch.setenv("HYPERFOLLOW_VENUE__BASE_URL", venue.url)
    monkeypatch.setenv("HYPERFOLLOW_VENUE__ACCOUNT_ADDRESS", follower.address)
    monkeypatch.setenv("HYPERFOLLOW_VENUE__AGENT_KEY", follower.wallet.key.hex())
    config = _follow_file(
        tmp_path / "follow.toml",
        f'[defaults]\nsizing = "fixed_multiplier"\nmultiplier = 1\n\n'
        f'[[follow]]\nleader = "{leader.address}"\nname = "sdk leader"\n',
    )

    def follower_filled() -> bool:
        return bool(follower.info.user_fills(follower.address))

    stop = threading.Event()
    trading = threading.Thread(target=_trade_until, args=(leader, follower_filled, stop), daemon=True)
    trading.start()
    try:
        result = CliRunner().invoke(app, ["copy", "--config", str(config), "--duration", "4"])
    finally:
        stop.set()
        trading.join(10)

    assert result.exit_code == 0, result.output
    fills = wait_for(lambda: follower.info.user_fills(follower.address), what="the follower's fills")
    assert {f["coin"] for f in fills} == {"ETH"}
    assert all(f["cloid"] for f in fills)  # our copies carry our cloids
    assert "sdk leader" in result.output
    assert "per leader" in result.output
    assert follower.wallet.key.hex().removeprefix("0x") not in result.output
    with sqlite3.connect(tmp_path / "copy.db") as db:
        states = [r[0] for r in db.execute("SELECT state FROM order_journal")]
        recorded = db.execute("SELECT count(*) FROM fills WHERE leader = ?", (leader.user,)).fetchone()[0]
    assert "FILLED" in states
    assert recorded >= 1


def test_a_key_the_account_never_approved_is_refused_before_anything_is_sent(
    make_venue: Callable[..., Venue], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support import wallet_for

    venue = make_venue(stepped=False)
    leader = venue.trader("copy-cli-unapproved-leader", usd="100000")
    follower = venue.trader("copy-cli-unapproved-follower", usd="10000")
    stranger = wallet_for("copy-cli-never-approved")
    monkeypatch.setenv("HYPERFOLLOW_VENUE__BASE_URL", venue.url)
    monkeypatch.setenv("HYPERFOLLOW_VENUE__ACCOUNT_ADDRESS", follower.address)
    monkeypatch.setenv("HYPERFOLLOW_VENUE__AGENT_KEY", stranger.key.hex())
    leader.exchange.market_open("ETH", True, 0.1)  # the leader holds a position the copy would join
    config = _follow_file(
        tmp_path / "follow.toml",
        f'[defaults]\nexisting_positions = "join"\n\n[[follow]]\nleader = "{leader.address}"\n',
    )
    before = follower.snapshot()
    result = CliRunner().invoke(app, ["copy", "--config", str(config), "--duration", "2"])
    assert result.exit_code == 2, result.output
    assert "approveAgent" in result.output
    assert stranger.key.hex().removeprefix("0x") not in result.output
    assert "Traceback" not in result.output
    assert follower.snapshot() == before  # balances, positions, open orders: untouched
    assert follower.info.user_fills(follower.address) == []
    assert not (tmp_path / "copy.db").exists()  # refused before the store was opened
