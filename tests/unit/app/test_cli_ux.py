"""The command line as a user meets it: --version, help that renders, a busy port, plain logs in a pipe."""

from __future__ import annotations

import io
import os
import socket
import sys
from collections.abc import Iterator
from importlib.metadata import version

import pytest
import structlog
from typer.testing import CliRunner

from hyperfollow.app.cli import app
from hyperfollow.app.logging import configure_logging


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("HYPERFOLLOW_"):
            monkeypatch.delenv(name)
    yield
    structlog.reset_defaults()


def _flat(text: str) -> str:
    """Help text without the panel borders and line breaks (the renderer wraps to the terminal)."""
    return " ".join(text.replace("│", " ").replace("╭", " ").replace("╰", " ").split())


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"hyperfollow {version('hyperfollow')}"


def test_copy_help_shows_the_venue_table_literally() -> None:
    result = CliRunner().invoke(app, ["copy", "--help"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "[venue]" in _flat(result.output)  # not eaten as markup


def test_help_shows_defaults() -> None:
    demo = _flat(CliRunner().invoke(app, ["demo", "--help"], terminal_width=120).output)
    assert "[default: 60.0]" in demo
    assert "[default: hyperfollow-demo]" in demo
    exchange = _flat(CliRunner().invoke(app, ["exchange", "--help"], terminal_width=120).output)
    assert "(setting default: 8931)" in exchange
    assert "(setting default: 127.0.0.1)" in exchange
    assert "no-no-limits" not in exchange


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_exchange_on_a_busy_port_says_so_in_one_line(busy_port: int) -> None:
    result = CliRunner().invoke(
        app, ["exchange", "--host", "127.0.0.1", "--port", str(busy_port), "--no-traders"], terminal_width=200
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    refusal = [line for line in lines if "already in use" in line]
    assert len(refusal) == 1, result.output
    assert f"127.0.0.1:{busy_port}" in refusal[0]
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_logs_are_plain_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)
    configure_logging("INFO")
    structlog.get_logger("t").info("copy.rejected", error="User or API Wallet does not exist.")
    text = captured.getvalue()
    assert "copy.rejected" in text
    assert "\x1b[" not in text  # no colour codes in a file or a pipe


def test_logs_keep_colours_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    captured = Tty()
    monkeypatch.setattr(sys, "stderr", captured)
    configure_logging("INFO")
    structlog.get_logger("t").info("copy.sent")
    assert "\x1b[" in captured.getvalue()
