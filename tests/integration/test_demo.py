"""`hyperfollow demo`, end to end and non-interactive (stdout is not a terminal here): the embedded exchange
with its simulated traders on a fast clock, a follower copying three of them through the real adapter,
then the report, the PNG and the store; nothing may keep running afterwards."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from hyperfollow.app import demo as demo_module
from hyperfollow.app.cli import app
from hyperfollow.app.demo import DemoOptions, DemoResult, pick_leaders, wait_threads

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_leaders_are_picked_by_style_and_skill() -> None:
    traders = [
        {"address": "0xA", "name": "swing-a", "style": "swing", "coins": ["BTC"], "skill": 0.1},
        {"address": "0xB", "name": "swing-b", "style": "swing", "coins": ["ETH"], "skill": 0.7},
        {"address": "0xC", "name": "scalp", "style": "scalper", "coins": ["SOL"], "skill": 0.5},
        {"address": "0xD", "name": "pos-hip3", "style": "position", "coins": ["xyz:TSLA"], "skill": 0.9},
        {"address": "0xE", "name": "pos", "style": "position", "coins": ["BTC"], "skill": 0.2},
        {"address": "0xF", "name": "degen", "style": "degen", "coins": ["HYPE"], "skill": 1.0},
    ]
    picks = pick_leaders(traders)
    assert [(p.name, p.settings.mode.value, p.settings.execution.value) for p in picks] == [
        ("swing-b", "mirror", "maker"),
        ("scalp", "mirror", "taker"),
        ("pos", "delta", "taker"),  # HIP-3 is left out: the demo's follow budgets are cross-margin
    ]
    assert picks[0].address == "0xb"


def test_the_demo_copies_reports_saves_its_plot_and_store_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {t.ident for t in threading.enumerate() if t.ident is not None}
    results: list[DemoResult] = []
    real_run = demo_module.run_demo

    async def recording_run(options: DemoOptions, console: Any) -> DemoResult:
        result = await real_run(options, console)
        results.append(result)
        return result

    monkeypatch.setattr(demo_module, "run_demo", recording_run)
    out = tmp_path / "demo-out"
    result = CliRunner().invoke(app, ["demo", "--duration", "8", "--speed", "60", "--out", str(out)])

    assert result.exit_code == 0, result.output
    [run] = results
    report = run.report
    # the report: per-leader lines, and at least one copy or skip behind them
    assert "per leader" in result.output
    assert "copies skipped" in result.output
    for pick in run.leaders:
        assert pick.label.split(" (")[0] in result.output
    assert sum(line.copies + line.skips for line in report.leaders) >= 1
    assert report.follower_start == 10_000
    assert "Latency is wall-clock" in result.output
    assert str(out.resolve()) in result.output.replace("\n", "")
    # the plot and the store
    assert run.plot == out / "equity.png"
    assert run.plot.read_bytes()[:8] == PNG_MAGIC
    with sqlite3.connect(out / "demo.db") as db:
        journal = db.execute("SELECT count(*) FROM order_journal WHERE follower = ?", (run.follower,))
        skips = db.execute("SELECT count(*) FROM skips WHERE follower = ?", (run.follower,))
        follows = db.execute("SELECT count(*) FROM follows WHERE follower = ?", (run.follower,))
        filled = db.execute(
            "SELECT count(*) FROM order_journal WHERE follower = ? AND state = 'FILLED'", (run.follower,)
        ).fetchone()[0]
        assert journal.fetchone()[0] + skips.fetchone()[0] >= 1
        assert follows.fetchone()[0] == len(run.leaders) == 3
    # the end: every copied position closed (the venue flat: our fills net out per coin, settlements
    # aside; every follow's ledger flat), and none of the final closes refused
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
    assert "Still open" not in output
    assert "Reduce only" not in output
    assert "[error" not in output
    with sqlite3.connect(out / "demo.db") as db:
        venue = db.execute(
            "SELECT coin, side, size FROM fills WHERE address = ? AND dir != 'Settlement'", (run.follower,)
        ).fetchall()
        held = db.execute("SELECT leader, coin, size FROM positions WHERE follower = ?", (run.follower,))
        ledgers = [(leader, coin) for leader, coin, size in held.fetchall() if Decimal(size) != 0]
        refused = db.execute(  # the end-of-run closes (their cause is "stop:<time>:<coin>")
            "SELECT count(*) FROM order_journal WHERE follower = ? AND source_fill_key GLOB 'stop:[0-9]*'"
            " AND state = 'REJECTED'",
            (run.follower,),
        ).fetchone()[0]
    net: dict[str, Decimal] = {}
    for coin, side, size in venue:
        net[coin] = net.get(coin, Decimal(0)) + (Decimal(size) if side == "B" else -Decimal(size))
    assert {c: n for c, n in net.items() if n} == {}
    assert ledgers == []
    assert refused == 0
    # the risk service ran beside the copies: every filled copy got its native stop
    placed = re.search(r"risk: (\d+) stops placed", result.output)
    assert placed is not None, result.output
    if filled:
        assert int(placed.group(1)) >= 1
    # nothing left running: no task on the run's loop, no thread (exchange, adapter pools, sqlite)
    assert run.leftover_tasks == []
    assert wait_threads(before) == []
