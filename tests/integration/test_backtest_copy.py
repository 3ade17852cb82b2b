"""``hyperfollow backtest copy`` on real leaders: slot ``acc9`` of the copier audit (909 verbatim mainnet
fills, 10 coins, 9 of them not listed by the embedded exchange, 5 on the HIP-3 ``xyz`` dex) and the
copyscalper's UI export (8,347 fills, every coin unlisted, positions reconstructed by the loader).

The follower is checked against what can be computed without the engine, at every step where the engine has
seen every leader fill delivered so far:

* every leader order traded after the follow started got a copy or a skip with a reason;
* we never hold a coin against the leader, nor hold a coin the leader is flat in (beyond dust);
* our size is never more than the leader's scaled by the largest equity ratio seen so far, plus a lot for
  each of the leader's partial closes since it was flat (ours are rounded down to lots);
* the run ends flat, so the change of equity is exactly the sum of the round trips' net PnL (price PnL, fees,
  funding: nothing is lost or made up between the venue's books and the trades).

Then: the same run twice writes a byte-identical summary.json, and report.html opens offline.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
import pytest_asyncio
from typer.testing import CliRunner

from hyperfollow.app.backtest_copy import CopyBacktest
from hyperfollow.app.cli import app
from hyperfollow.backtest.data.fills import FillHistory, load_fills
from hyperfollow.backtest.metrics import BacktestResult
from hyperfollow.backtest.report import write_report
from hyperfollow.copy.model import FollowSettings
from hyperfollow.copy.state import EventKind
from hyperfollow.risk.exits import ExitPolicy
from shared_data import shared, shared_data, vendored

AUDIT = vendored("real/copytrader_audit_202607/exchange_leader_fills.json.gz")
LEADER = "0x" + "a9" * 20
EQUITY = Decimal(10_000)


@dataclass
class Observed:
    """What the checks read at each step where no leader fill was waiting for delivery."""

    steps: int = 0
    ratio_max: Decimal = Decimal(0)
    breaches: list[str] = field(default_factory=list)
    leader_last: dict[str, Decimal] = field(default_factory=dict)
    reductions: dict[str, int] = field(default_factory=dict)  # leader's partial closes since it was flat


def observe(obs: Observed) -> object:
    def check(run: CopyBacktest) -> None:
        engine = run.exchange.engine
        ours = engine.accounts[run.follower].total_value(engine.marks)
        theirs = engine.accounts[run.leader].total_value(engine.marks)
        obs.ratio_max = max(obs.ratio_max, Decimal(ours) / Decimal(theirs))  # what a copy is sized with
        if run.feed.held():
            return  # a leader fill is still on its way to the engine (latency): we may lag
        obs.steps += 1
        for coin in run.rules:
            lot = engine.universe.by_coin[coin].lot
            us, them = run.position(run.follower, coin), run.position(run.leader, coin)
            t = run.exchange.clock.now_ms()
            last = obs.leader_last.get(coin, Decimal(0))
            if them == 0 or them * last < 0:
                obs.reductions[coin] = 0
            elif abs(them) < abs(last):
                obs.reductions[coin] = obs.reductions.get(coin, 0) + 1
            obs.leader_last[coin] = them
            # a partial close of ours is rounded down to lots: up to one lot kept per leader reduction
            slack = lot * (1 + obs.reductions.get(coin, 0))
            if us * them < 0:
                obs.breaches.append(f"{t} {coin}: ours {us} against the leader's {them}")
            if them == 0 and abs(us) > lot:
                obs.breaches.append(f"{t} {coin}: ours {us} with the leader flat")
            if abs(us) > abs(them) * obs.ratio_max + slack:
                obs.breaches.append(f"{t} {coin}: ours {us} beyond {them} x {obs.ratio_max:.6f}")

    return check


@dataclass
class Run:
    history: FillHistory
    backtest: CopyBacktest
    result: BacktestResult
    observed: Observed
    leader_refs: list[str]


async def _run(history: FillHistory, **options: object) -> Run:
    bt = CopyBacktest(
        history, FollowSettings(), ExitPolicy(), prices=None, latency_ms=300, equity_usd=EQUITY,
        leader_equity_usd=None, meta=None, meta_source=None, progress=None, title=None, risk_store_url=None,
    )  # fmt: skip
    for key, value in options.items():
        setattr(bt, key, value)
    obs = Observed()
    bt.observers.append(observe(obs))  # type: ignore[arg-type]
    result = await bt.run()
    follow_start = bt.orders[0].time_ms - 60_000 + 1_000  # LEAD_MS before the first fill, then 1 s of set-up
    refs = [f.ref for f in await bt.leader_venue.account.fills_since(follow_start)]
    return Run(history, bt, result, obs, refs)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def acc9() -> AsyncIterator[Run]:
    yield await _run(load_fills(AUDIT, address=LEADER, slot="acc9"))


def _check_follower(run: Run) -> None:
    bt = run.backtest
    keys = {e.fill_key for e in bt.copy_events}
    missing = [r for r in run.leader_refs if r not in keys]
    assert not missing, f"{len(missing)} leader orders with neither a copy nor a skip: {missing[:3]}"
    for e in bt.copy_events:
        if e.kind is EventKind.SKIPPED:
            assert e.skip_reason is not None, e
            assert e.skip_reason.code.startswith("SKIP_"), e
            assert e.detail.get("leader_dir"), e
    assert run.observed.steps > 100
    assert not run.observed.breaches, run.observed.breaches[:5]


def test_acc9_every_leader_order_is_copied_or_skipped_and_we_follow_its_positions(acc9: Run) -> None:
    _check_follower(acc9)
    bt = acc9.backtest
    assert len(acc9.leader_refs) == bt.tally.leader_traded > 300  # the starting positions are not orders
    filled = [e for e in bt.copy_events if e.kind is EventKind.FILLED]
    assert len(filled) > 250, "the leader is mostly copied, not mostly skipped"
    assert {r.source for r in bt.rules.values()} == {"listed", "inferred"}
    assert bt.rules["BCH"].source == "listed"
    assert bt.rules["xyz:CXMT"].hip3


def test_acc9_ends_flat_and_the_equity_change_is_the_trades_net_pnl(acc9: Run) -> None:
    bt, result = acc9.backtest, acc9.result
    assert result.meta["open_at_end"] == "flat"
    assert all(bt.position(bt.follower, c) == 0 for c in bt.rules)
    change = result.equity[-1][1] - result.equity[0][1]
    assert change == sum((t.net_pnl for t in result.trades), Decimal(0))
    assert result.equity[0][1] == EQUITY
    fills = [e for e in bt.events if not hasattr(e, "amount")]
    assert len(fills) == len(bt.exchange.engine.accounts[bt.follower].fills)  # every fill of ours, once
    assert result.leader_return_pct is not None
    assert result.leader_return_pct > 0


def _summary(result: BacktestResult, folder: Path) -> bytes:
    files = write_report(folder, result)
    return files.summary.read_bytes()


async def test_acc9_runs_twice_to_a_byte_identical_summary(acc9: Run, tmp_path: Path) -> None:
    again = await _run(acc9.history)
    first, second = _summary(acc9.result, tmp_path / "a"), _summary(again.result, tmp_path / "b")
    assert first == second
    assert b'"leader_return_pct"' in first
    assert b'"skips_by_reason"' in first


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.images = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.images += tag == "img"
        self.refs += [v or "" for k, v in attrs if k in ("src", "href", "action")]


def test_acc9_report_opens_offline(acc9: Run, tmp_path: Path) -> None:
    files = write_report(tmp_path, acc9.result)
    html = files.html.read_text()
    parser = _Refs()
    parser.feed(html)
    parser.close()
    assert parser.images >= 2
    assert all(r.startswith(("data:", "#")) for r in parser.refs), parser.refs
    assert "http://" not in html
    assert "https://" not in html
    for model in ("latency", "queue", "fees", "slippage", "funding"):
        assert model in acc9.result.models


@shared_data
async def test_copyscalper_export_runs_to_a_sane_report(tmp_path: Path) -> None:
    full = load_fills(shared("real/leader_copyscalper_202511/trade_history.csv.gz"), address=LEADER)
    day = full.fills[0].time_ms + 86_400_000
    history = replace(full, fills=tuple(f for f in full.fills if f.time_ms < day))  # the first day
    run = await _run(history)
    _check_follower(run)
    result = run.result
    assert {r.source for r in run.backtest.rules.values()} == {"inferred"}
    assert len(result.trades) > 5
    assert result.equity[-1][1] > 0
    assert result.leader_return_pct is not None
    summary = write_report(tmp_path, result).summary.read_text()
    for key in ("total_return_pct", "max_drawdown_pct", "trades", "fees_usd", "skips_by_reason",
                "leader_return_pct", "sharpe", "win_rate"):  # fmt: skip
        assert f'"{key}"' in summary


# ---------------------------------------------------------------------- the command line


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "follow.toml"
    path.write_text(
        f'[[follow]]\nleader = "{LEADER}"\nname = "acc9"\n[follow.exit]\nstop_loss_roe_pct = 50\n'
    )
    return path


def test_cli_writes_the_report_and_prints_the_summary(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["backtest", "copy", "--leader-fills", str(AUDIT), "--slot", "acc9", "--config",
            str(_config(tmp_path)), "--out", str(out), "--latency-ms", "1000"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "leader +" in result.output
    assert "trades" in result.output
    assert {p.name for p in out.iterdir()} >= {"summary.json", "trades.csv", "equity.csv", "equity.png",
                                                 "report.html"}  # fmt: skip
    assert "fixed 1000 ms" in (out / "summary.json").read_text()


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (lambda d: AUDIT, ["--slot", "acc99"], "no slot 'acc99'"),
        (lambda d: AUDIT, [], "several slots"),
        (lambda d: d / "missing.json", [], "missing.json"),
        (
            lambda d: (
                (d / "junk.json.gz").write_bytes(gzip.compress(b'[{"coin": 1}]')) and d / "junk.json.gz"
            ),
            [],
            "junk.json.gz",
        ),
    ],
)
def test_cli_refuses_a_bad_file_or_slot_and_writes_nothing(tmp_path: Path, make, extra, message) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    args = ["backtest", "copy", "--leader-fills", str(make(tmp_path)), "--config", str(_config(tmp_path)),
            "--out", str(out), *extra]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output.replace("\n", "")
    assert not out.exists()
