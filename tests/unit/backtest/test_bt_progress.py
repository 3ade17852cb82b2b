"""The replay progress bar counts every event, hands the count to rich in batches, and stays silent off a
terminal or when disabled."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from hyperfollow.backtest.progress import ReplayProgress


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=100), out


def test_every_event_is_counted_and_batched_to_the_bar() -> None:
    console, out = terminal()
    with ReplayProgress(total=10_000, console=console, refresh_every=1000) as bar:
        assert bar.showing
        for _ in range(999):
            bar.advance()
        assert (bar.processed, bar.shown) == (999, 0)  # not handed over yet
        bar.advance()
        assert (bar.processed, bar.shown) == (1000, 1000)
        for _ in range(8_500):
            bar.advance()
        assert bar.shown == 9000
    assert (bar.processed, bar.shown) == (9_500, 9_500)  # the end shows the exact count
    assert "replay" in out.getvalue()


def test_update_sets_the_running_count_and_total() -> None:
    console, _ = terminal()
    with ReplayProgress(total=None, console=console, refresh_every=10) as bar:
        bar.update(25)
        assert (bar.processed, bar.shown, bar.total) == (25, 25, None)
        bar.update(40, total=100)
        assert (bar.processed, bar.total) == (40, 100)
        bar.advance(3)
    assert bar.shown == 43
    with pytest.raises(ValueError, match="do not go down"):
        bar.update(10)
    with pytest.raises(ValueError, match="do not go down"):
        bar.advance(-1)
    assert bar.processed == 43


def test_silent_off_a_terminal_but_still_counting() -> None:
    out = io.StringIO()
    with ReplayProgress(total=50, console=Console(file=out), refresh_every=7) as bar:
        for _ in range(50):
            bar.advance()
        assert not bar.showing
        assert bar.shown is None
    assert bar.processed == 50
    assert out.getvalue() == ""


def test_silent_when_disabled_on_a_terminal() -> None:
    console, out = terminal()
    with ReplayProgress(total=5, console=console, enabled=False) as bar:
        bar.advance(5)
    assert bar.processed == 5
    assert not bar.showing
    assert out.getvalue() == ""


def test_closes_on_error_and_close_is_idempotent() -> None:
    console, _ = terminal()
    bar = ReplayProgress(total=10, console=console, refresh_every=100)

    def run() -> None:
        with bar:
            bar.advance(4)
            raise RuntimeError("replay failed")

    with pytest.raises(RuntimeError):
        run()
    assert bar.shown == 4
    bar.close()
    assert bar.shown == 4


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="refresh_every"):
        ReplayProgress(total=1, refresh_every=0)
    with pytest.raises(ValueError, match="total"):
        ReplayProgress(total=-1)
