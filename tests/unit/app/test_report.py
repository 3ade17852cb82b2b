"""The copy report's numbers and the equity plot file."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from rich.console import Console

from hyperfollow.app.report import CopyReport, LeaderLine, percentile, plot_equity


def test_percentile_is_a_measured_value() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert [percentile(values, q) for q in (0, 50, 90, 100)] == [1.0, 3.0, 5.0, 5.0]
    assert percentile([], 50) is None


def test_report_shows_pnl_skips_and_latency() -> None:
    report = CopyReport(
        duration_s=60,
        follower_start=Decimal(10000),
        follower_end=Decimal("10123.45"),
        leaders=[LeaderLine("swing", copies=7, skips=2, realized_pnl=Decimal("80.5"), fees=Decimal("1.25"))],
        skips_by_reason={"below the $10 minimum": 2},
        latencies_ms=[3.0, 4.0, 5.0, 40.0],
        orders=7,
        fills=9,
    )
    console = Console(width=140, record=True)
    console.print(report.render())
    text = console.export_text()
    assert "+123.45 USDC (+1.23 %)" in text
    assert "swing" in text
    assert "below the $10 minimum" in text
    assert "40.0" in text  # p99 / max of four values


def test_equity_plot_is_a_png(tmp_path: Path) -> None:
    series = {
        "follower": [(0, Decimal(1000)), (60_000, Decimal(1010)), (120_000, Decimal(990))],
        "leader A": [(0, Decimal(1_000_000)), (60_000, Decimal(1_020_000))],
        "too short": [(0, Decimal(5))],
    }
    path = plot_equity(series, tmp_path / "out" / "equity.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5_000


def test_report_says_its_figures_are_for_this_run_at_the_top() -> None:
    report = CopyReport(
        duration_s=60, follower_start=Decimal(100), follower_end=Decimal(100), since_ms=1_767_225_600_000
    )
    console = Console(width=140, record=True)
    console.print(report.render())
    first = console.export_text().splitlines()[0]
    assert "scope" in first
    assert "this run only (since 2026-01-01 00:00:00 UTC)" in first
    assert "earlier runs in the store are not counted" in first
