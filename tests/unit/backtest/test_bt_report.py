"""The report folder: a byte-identical summary, exact CSVs, PNGs, and an HTML page that is offline,
well-formed and shows every figure and every model."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import warnings
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from hyperfollow.backtest.metrics import (
    HOUR_MS,
    BacktestResult,
    EquityPoint,
    PassiveOrders,
    PricePoint,
    Trade,
    compute_metrics,
)
from hyperfollow.backtest.report import plain, summary, write_report
from hyperfollow.domain.model import Side

D = Decimal
MIN = 60_000
T0 = 1_733_000_000_000  # 2024-11-30
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODELS = {
    "latency": "fixed: market data 150 ms, orders 80 ms each way",
    "queue": "price-time: fills after the recorded volume ahead at the price has traded",
    "fees": "venue schedule, tier 0: taker 0.045%, maker 0.015%",
    "slippage": "walk the recorded L2 book",
    "funding": "hourly, from the recorded rate",
}


def price_walk(rng: np.random.Generator, start: float, minutes: int) -> list[PricePoint]:
    steps = rng.normal(0, 0.0015, minutes).cumsum()
    return [(T0 + i * MIN, D(f"{start * math.exp(s):.2f}")) for i, s in enumerate(steps)]


def sample_result(seed: int = 7, minutes: int = 3 * 24 * 60) -> BacktestResult:
    """Two coins' prices, random round trips on them, and the equity those trades make."""
    rng = np.random.default_rng(seed)
    prices = {"BTC": price_walk(rng, 97_000.0, minutes), "ETH": price_walk(rng, 3_600.0, minutes)}
    trades: list[Trade] = []
    for coin, size in (("BTC", D("0.01")), ("ETH", D("0.3"))):
        series = prices[coin]
        for _ in range(25):
            i = int(rng.integers(0, minutes - 200))
            j = i + int(rng.integers(5, 200))
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            entry, exit_ = series[i][1], series[j][1]
            pnl = (exit_ - entry) * size * (1 if side is Side.BUY else -1)
            fees = ((entry + exit_) * size * D("0.00045")).quantize(D("0.000001"))
            owner = "copy:0xaaa" if rng.random() < 0.6 else "copy:0xbbb"
            trades.append(Trade(coin, side, series[i][0], series[j][0], entry, exit_, size, pnl, fees, owner))
    trades.sort(key=lambda t: (t.close_ms, t.coin))
    equity: list[EquityPoint] = []
    cash = D(10_000)
    k = 0
    for i in range(0, minutes, 5):
        now = T0 + i * MIN
        while k < len(trades) and trades[k].close_ms <= now:
            cash += trades[k].net_pnl
            k += 1
        equity.append((now, cash))
    walk = np.cumsum(rng.normal(0, 900, len(equity))).round()
    leader = [(t, D(1_000_000) + D(int(w))) for (t, _), w in zip(equity, walk, strict=True)]
    return BacktestResult(
        equity=equity,
        trades=trades,
        skips_by_reason={"SKIP_MIN_NOTIONAL": 4, "SKIP_SLIPPAGE": 2},
        models=MODELS,
        prices=prices,
        passive=PassiveOrders(posted=40, filled=27, posted_usd=D(40_000), filled_usd=D("25310.5")),
        leader_return_pct=D("3.25"),
        leader_equity=leader,
        title="copy 0xaaa and 0xbbb",
        meta={"mode": "backtest", "rules": "recorded meta"},
    )


class PageCheck(HTMLParser):
    """Collects every src/href and checks the tags nest (void elements aside)."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "source", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.refs: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.refs += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "action", "data")]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BacktestResult]:
    out = tmp_path_factory.mktemp("report")
    result = sample_result()
    write_report(out, result)
    return out, result


def test_the_folder_has_every_file(written: tuple[Path, BacktestResult]) -> None:
    out, _ = written
    assert sorted(p.name for p in out.iterdir()) == [
        "equity.csv",
        "equity.png",
        "report.html",
        "summary.json",
        "trades.csv",
    ]
    assert (out / "equity.png").read_bytes().startswith(PNG_MAGIC)


def test_summary_is_byte_identical_for_identical_input(tmp_path: Path) -> None:
    write_report(tmp_path / "a", sample_result())
    write_report(tmp_path / "b", sample_result())  # built again: equal, not the same objects
    for name in ("summary.json", "trades.csv", "equity.csv", "equity.png", "report.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    write_report(tmp_path / "c", sample_result(seed=8))
    assert (tmp_path / "c" / "summary.json").read_bytes() != (tmp_path / "a" / "summary.json").read_bytes()


def test_summary_keys_are_sorted_and_numbers_fixed(written: tuple[Path, BacktestResult]) -> None:
    out, result = written
    raw = (out / "summary.json").read_text()
    data = json.loads(raw, parse_float=Decimal)
    m = compute_metrics(result)
    for key in (
        "total_return_pct", "max_drawdown_pct", "sharpe", "sortino", "win_rate", "profit_factor",
        "avg_trade_secs", "trades", "fees_usd", "turnover_usd", "exposure_pct", "skips_by_reason",
        "leader_return_pct", "passive_fill_ratio", "by_coin", "by_owner", "models",
    ):  # fmt: skip
        assert key in data, key
    assert list(data) == sorted(data)
    assert list(data["by_coin"]["BTC"]) == sorted(data["by_coin"]["BTC"])
    assert data["fees_usd"] == m.fees_usd  # money exact
    assert f'"fees_usd": {plain(m.fees_usd)},' in raw
    assert m.sharpe is not None
    assert f'"sharpe": {m.sharpe:.6f},' in raw  # six decimals, always
    assert data["trades"] == 50
    assert data["skips_by_reason"] == {"SKIP_MIN_NOTIONAL": 4, "SKIP_SLIPPAGE": 2}
    assert data["passive_fill_ratio"] == D("0.675000")
    assert data["leader_return_pct"] == D("3.250000")
    assert data["models"] == MODELS
    assert data["notes"] == {}
    assert re.search(r"[0-9][eE][-+]?[0-9]", raw) is None  # no exponent spelling


def test_infinite_profit_factor_is_null_with_a_note() -> None:
    win = Trade("BTC", Side.BUY, 0, MIN, D(100), D(110), D(1), D(10), D(0), "copy:a")
    curve = [(k * HOUR_MS, D(100) * D("1.01") ** k) for k in range(5)]  # +1% an hour: a stdev of 0
    s = summary(compute_metrics(BacktestResult(equity=curve, trades=[win])), BacktestResult(equity=curve))
    data = json.loads(s.to_json())
    assert data["profit_factor"] is None
    assert data["by_coin"]["BTC"]["profit_factor"] is None
    assert data["sortino"] is None  # rising every hour: no losing period
    infinite = {"profit_factor", "by_coin.BTC.profit_factor", "by_owner.copy:a.profit_factor", "sortino"}
    assert set(data["notes"]) == infinite
    assert "infinite" in data["notes"]["profit_factor"]
    # undefined (no stdev of returns, no trades) is null without a note
    assert data["sharpe"] is None
    assert "sharpe" not in data["notes"]


def test_trades_csv_is_exact(written: tuple[Path, BacktestResult]) -> None:
    out, result = written
    rows = list(csv.DictReader(io.StringIO((out / "trades.csv").read_text())))
    assert len(rows) == len(result.trades)
    for row, t in zip(rows, result.trades, strict=True):
        assert (row["coin"], row["owner"], row["direction"]) == (t.coin, t.owner, t.direction)
        assert D(row["entry_px"]) == t.entry_px
        assert D(row["exit_px"]) == t.exit_px
        assert D(row["net_pnl"]) == t.net_pnl
        assert D(row["fees"]) == t.fees
        assert int(row["close_ms"]) == t.close_ms
        assert D(row["duration_secs"]) * 1000 == t.duration_ms


def test_equity_csv_is_exact(written: tuple[Path, BacktestResult]) -> None:
    out, result = written
    rows = list(csv.DictReader(io.StringIO((out / "equity.csv").read_text())))
    assert [(int(r["ts_ms"]), D(r["equity_usd"])) for r in rows] == list(result.equity)
    worst = max(float(r["drawdown_pct"]) for r in rows)
    assert worst == pytest.approx(compute_metrics(result).max_drawdown_pct, abs=1e-6)
    assert rows[0]["time_utc"] == "2024-11-30T20:53:20.000Z"


def test_html_is_offline_and_well_formed(written: tuple[Path, BacktestResult]) -> None:
    out, _ = written
    page = (out / "report.html").read_text()
    check = PageCheck()
    check.feed(page)
    check.close()
    assert check.errors == []
    assert check.stack == []
    assert check.refs, "the charts are images"
    assert all(ref.startswith("data:image/png;base64,") for ref in check.refs), check.refs
    assert "http" not in page
    assert "script" not in check.tags
    assert "link" not in check.tags
    assert "url(" not in page
    # equity, leader, one per coin with prices, returns
    assert check.tags.count("img") == 5


def test_html_shows_every_figure_and_model(written: tuple[Path, BacktestResult]) -> None:
    out, result = written
    page = (out / "report.html").read_text()
    text = "".join(_text(page))
    data = json.loads((out / "summary.json").read_text(), parse_float=str, parse_int=str)
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict | list) and k != "title"}
    assert len(scalars) > 25
    for key, value in scalars.items():
        expected = "n/a" if value is None else value
        assert f'<td><code>{key}</code></td><td class="n">{expected}' in page, key
    for name, text_of_model in MODELS.items():
        assert f"<td>{name}</td><td>{text_of_model}</td>" in page
    for coin in ("BTC", "ETH"):
        assert f"<td>{coin}</td>" in page
    for owner in ("copy:0xaaa", "copy:0xbbb"):
        assert f"<td>{owner}</td>" in page
    assert "SKIP_MIN_NOTIONAL" in text
    assert result.title in text
    assert "recorded meta" in text


def test_html_says_when_a_model_is_not_stated(tmp_path: Path) -> None:
    curve = [(T0, D(1000)), (T0 + HOUR_MS, D(1001))]
    files = write_report(tmp_path, BacktestResult(equity=curve, models={"latency": "none"}))
    page = files.html.read_text()
    for name in ("queue", "fees", "slippage", "funding"):
        assert f'<td>{name}</td><td><span class="missing">not stated by the run</span>' in page
    assert "no trades" in page
    assert "no price series given" in page
    assert page.count("<img ") == 1  # equity only


def test_odd_inputs_still_make_a_report(tmp_path: Path) -> None:
    """A coin with prices and no trades, one with an empty price series, a trade with no prices, one
    flat return, one equity point."""
    t = Trade("ETH", Side.SELL, T0, T0 + MIN, D(10), D(10), D(1), D(0), D(0), "o")
    result = BacktestResult(equity=[(T0, D(1000))], trades=[t], prices={"BTC": [(T0, D(1))], "SOL": []})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no matplotlib complaint either
        files = write_report(tmp_path, result)
    page = files.html.read_text()
    assert page.count("<img ") == 4  # equity, BTC, SOL, returns
    assert json.loads(files.summary.read_text())["trades"] == 1


def test_html_escapes_what_the_run_names(tmp_path: Path) -> None:
    curve = [(T0, D(1000))]
    result = BacktestResult(equity=curve, title="<b>x</b>", meta={"leader": '"><img src=x>'})
    page = write_report(tmp_path, result).html.read_text()
    assert "<b>x</b>" not in page
    assert "<img src=x>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page


def _text(page: str) -> list[str]:
    check = PageCheck()
    check.feed(page)
    return check.text
