"""`hyperfollow backtest`: what a follow would have done over a recorded period.

``hyperfollow backtest copy --leader-fills FILE [--slot acc9] --config follow.toml --out DIR`` re-trades a
leader's recorded fills on the embedded exchange and runs the real copy engine and risk layer against them
with the follow's settings and exit policy (``app.backtest_copy``); the report goes to ``DIR`` (summary.json,
trades.csv, equity.csv, equity.png, report.html).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import structlog
import typer
from rich.console import Console
from rich.markup import escape

from hyperfollow.app.backtest_copy import DEFAULT_LATENCY_MS, BacktestError, run_copy_backtest
from hyperfollow.app.follow_config import FollowConfigError, FollowSpec, load_copy_config
from hyperfollow.backtest.copy_inputs import meta_path_for, price_files, price_points, read_meta
from hyperfollow.backtest.data.fills import FillHistory, load_fills
from hyperfollow.backtest.progress import ReplayProgress
from hyperfollow.backtest.report import write_report
from hyperfollow.recordings.source import RecordingError

backtest_app = typer.Typer(
    help="Backtests: what a follow would have done over a recorded period.",
    no_args_is_help=True,
    context_settings={"show_default": True},
)
console = Console()


def _refuse(message: str) -> typer.Exit:
    console.print(f"[red]{escape(message)}[/red]", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _usd(text: str | None, option: str) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise typer.BadParameter(f"not a number: {text!r}", param_hint=option) from None
    if not value.is_finite() or value <= 0:
        raise typer.BadParameter("must be a positive amount of USD", param_hint=option)
    return value


def _pick_follow(config_path: Path, leader: str | None) -> FollowSpec:
    follows = load_copy_config(config_path).follows
    if leader is not None:
        chosen = [f for f in follows if f.leader == leader.lower()]
        if not chosen:
            names = ", ".join(f.leader for f in follows)
            raise FollowConfigError(f"{config_path}: no [[follow]] of leader {leader} (leaders: {names})")
        return chosen[0]
    if len(follows) > 1:
        names = ", ".join(f.leader for f in follows)
        raise FollowConfigError(f"{config_path}: {len(follows)} follows ({names}): choose one with --leader")
    return follows[0]


@backtest_app.command("copy")
def copy_command(
    leader_fills: Annotated[
        Path, typer.Option("--leader-fills", help="userFills JSON, the copier-audit envelope or the UI's CSV")
    ],
    config: Annotated[Path, typer.Option("--config", help="follow.toml: the follow's settings and exits")],
    out: Annotated[Path, typer.Option("--out", help="the report folder")],
    slot: Annotated[str | None, typer.Option(help="the slot of an audit envelope, e.g. acc9")] = None,
    leader: Annotated[str | None, typer.Option(help="which \\[\\[follow]] of the file (by leader)")] = None,
    prices: Annotated[
        Path | None, typer.Option(help="candles, trades or books (a file or a folder) for prices in between")
    ] = None,
    latency_ms: Annotated[int, typer.Option(help="venue ms from a leader fill to our copy", min=0)] = (
        DEFAULT_LATENCY_MS
    ),
    equity: Annotated[str, typer.Option(help="the follower's starting equity, USD")] = "10000",
    leader_equity: Annotated[
        str | None, typer.Option(help="the leader's equity, USD (default: its peak gross notional)")
    ] = None,
    meta: Annotated[
        Path | None, typer.Option(help="recorded meta of the coins (default: <leader-fills>.meta.json)")
    ] = None,
) -> None:
    """Copy a leader's recorded fills with a follow's settings: the real copy engine and risk layer on the
    embedded exchange, our result next to the leader's own."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # errors only: a bar runs
    equity_usd = _usd(equity, "--equity")
    assert equity_usd is not None
    leader_usd = _usd(leader_equity, "--leader-equity")
    try:
        spec = _pick_follow(config, leader)
        history: FillHistory = load_fills(leader_fills, address=spec.leader, slot=slot)
        meta_file = meta or meta_path_for(leader_fills)
        rules = read_meta(meta_file) if meta_file is not None else None
        points = price_points(price_files(prices)) if prices is not None else None
    except (FollowConfigError, RecordingError) as exc:
        raise _refuse(str(exc)) from None
    except FileNotFoundError as exc:
        raise _refuse(f"{exc.filename}: no such file") from None
    console.print(
        f"copying {len(history.fills):,} fills of {spec.label} ({history.source}) with {config}, "
        f"latency {latency_ms} ms"
    )
    try:
        with ReplayProgress(None, description="backtest copy", console=console) as bar:
            result = run_copy_backtest(
                history, spec, prices=points, latency_ms=latency_ms, equity_usd=equity_usd,
                leader_equity_usd=leader_usd, meta=rules, meta_source=str(meta_file) if meta_file else None,
                progress=bar,
            )  # fmt: skip
    except BacktestError as exc:
        raise _refuse(str(exc)) from None
    files = write_report(out, result)
    m = files.metrics
    ours = "n/a" if m.total_return_pct is None else f"{m.total_return_pct:+.2f} %"
    theirs = "n/a" if m.leader_return_pct is None else f"{m.leader_return_pct:+.2f} %"
    console.print(f"return {ours} (leader {theirs}), max drawdown {m.max_drawdown_pct:.2f} %")
    console.print(
        f"{m.trades} trades, fees {m.fees_usd:.2f} USD, {m.skips} skips "
        + (f"({', '.join(f'{k} {v}' for k, v in m.skips_by_reason.items())})" if m.skips else "")
    )
    console.print(f"report: {files.html}")
