"""A backtest's output folder: ``summary.json``, ``trades.csv``, ``equity.csv``, ``equity.png`` and a
self-contained ``report.html``.

``summary.json`` is byte-identical for identical input: keys sorted, two-space indent, money written as the
exact ``Decimal`` (one spelling: no exponent, no trailing zeros), every other non-integer figure with six
decimals. JSON has no infinity: an infinite ``profit_factor`` or ``sortino`` (wins and no loss) is written
``null`` and named in ``notes``; any other ``null`` means the figure is undefined for the run (see
``metrics``: no trades, flat equity, nothing posted...).

``report.html`` opens offline: inline CSS, charts as base64 PNGs, no script, no external reference. It
shows equity and drawdown, the follower next to the leader (copy runs with the leader's curve), trades on
the price of each coin given a price series, the distribution of trade returns, every figure of the
summary, the breakdowns, the skipped signals, the models used (latency, queue, fees, slippage, funding as
the run states them) and what ran.
"""

from __future__ import annotations

import base64
import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from html import escape
from pathlib import Path

import msgspec
import numpy as np

from hyperfollow.backtest import plots
from hyperfollow.backtest.metrics import (
    BacktestResult,
    Metrics,
    Trade,
    compute_metrics,
    drawdown_pct,
    equity_arrays,
)

REQUIRED_MODELS = ("latency", "queue", "fees", "slippage", "funding")
MAX_PRICE_CHARTS = 8  # coins charted with their trades (most traded first)
INFINITE = {
    "profit_factor": "infinite (winning trades and no losing one): written as null",
    "sortino": "infinite (a positive mean return and no losing period): written as null",
}

# JSON-ready data; a number is a ``msgspec.Raw`` holding its fixed spelling (written as is, never re-spelt)
Json = None | bool | int | str | msgspec.Raw | list["Json"] | dict[str, "Json"]
_ENCODER = msgspec.json.Encoder(order="sorted")
_SIX = Decimal("0.000001")


def plain(value: Decimal) -> str:
    """One spelling per amount: no exponent, no trailing zeros, -0 is 0."""
    return "0" if value == 0 else format(value.normalize(), "f")


def number(text: str) -> msgspec.Raw:
    return msgspec.Raw(text.encode("ascii"))


def text_of(value: msgspec.Raw) -> str:
    return bytes(value).decode("ascii")


def fixed(value: float) -> str:
    """A ratio or percentage with six decimals (``-0.000000`` is ``0.000000``)."""
    text = format(value, ".6f")
    return text[1:] if text == "-0.000000" else text


def _json(value: object, path: str, notes: dict[str, str]) -> Json:
    """``value`` as JSON-ready data with the fixed number spellings; infinities become None plus a note."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return number(plain(value))
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            leaf = path.rsplit(".", 1)[-1]
            notes[path] = INFINITE.get(leaf, "not a finite number: written as null")
            return None
        return number(fixed(value))
    if isinstance(value, Mapping):
        return {str(k): _json(v, f"{path}.{k}" if path else str(k), notes) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v, f"{path}[{i}]", notes) for i, v in enumerate(value)]
    raise TypeError(f"no JSON spelling for {type(value).__name__} at {path}")


@dataclass(frozen=True, slots=True)
class Summary:
    """``summary.json`` as data (``data``, with ``notes`` inside it too) and the notes on its nulls."""

    data: dict[str, Json]
    notes: dict[str, str]

    def to_json(self) -> bytes:
        """The file's bytes: sorted keys, two-space indent, a final newline."""
        return msgspec.json.format(_ENCODER.encode(self.data), indent=2) + b"\n"


def summary(metrics: Metrics, result: BacktestResult) -> Summary:
    """Every figure of ``metrics``, the models, what ran (``title``, ``meta``) and ``notes``."""
    notes: dict[str, str] = {}
    data = {key: _json(value, key, notes) for key, value in asdict(metrics).items()}
    data["title"] = result.title
    data["models"] = {k: str(v) for k, v in result.models.items()}
    data["meta"] = {k: str(v) for k, v in result.meta.items()}
    notes = dict(sorted(notes.items()))
    data["notes"] = dict(notes)
    return Summary(data=data, notes=notes)


def summary_json(metrics: Metrics, result: BacktestResult) -> bytes:
    """The bytes of ``summary.json`` for ``metrics`` of ``result``."""
    return summary(metrics, result).to_json()


def utc_times(ms: Sequence[int]) -> list[str]:
    """Venue milliseconds as ISO 8601 UTC times to the millisecond (``2024-11-30T20:53:20.000Z``)."""
    stamps = np.asarray(ms, dtype=np.int64).astype("datetime64[ms]")
    return [str(s) for s in np.datetime_as_string(stamps, unit="ms", timezone="UTC")]


def utc(ms: int) -> str:
    return utc_times([ms])[0]


TRADE_COLUMNS = (
    "owner",
    "coin",
    "direction",
    "open_ms",
    "close_ms",
    "open_utc",
    "close_utc",
    "duration_secs",
    "size",
    "entry_px",
    "exit_px",
    "pnl",
    "fees",
    "funding",
    "net_pnl",
    "return_pct",
)


def trades_csv(trades: Iterable[Trade]) -> str:
    """One row per trade, in the run's order; amounts exact, ``return_pct`` to six decimals."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TRADE_COLUMNS)
    for t in trades:
        writer.writerow(
            (
                t.owner,
                t.coin,
                t.direction,
                t.open_ms,
                t.close_ms,
                utc(t.open_ms),
                utc(t.close_ms),
                plain(Decimal(t.duration_ms) / 1000),
                plain(t.size),
                plain(t.entry_px),
                plain(t.exit_px),
                plain(t.pnl),
                plain(t.fees),
                plain(t.funding),
                plain(t.net_pnl),
                plain(t.return_pct.quantize(_SIX)),
            )
        )
    return buf.getvalue()


def equity_csv(result: BacktestResult) -> str:
    """One row per equity point: time, equity (exact) and drawdown from the running peak (%)."""
    _, values = equity_arrays(result.equity)
    dd = drawdown_pct(values)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("ts_ms", "time_utc", "equity_usd", "drawdown_pct"))
    times = utc_times([ts for ts, _ in result.equity])
    for (ts, equity), when, down in zip(result.equity, times, dd.tolist(), strict=True):
        writer.writerow((ts, when, plain(equity), fixed(down)))
    return buf.getvalue()


@dataclass(frozen=True, slots=True)
class Charts:
    """The report's PNGs: (caption, bytes) each."""

    equity: bytes
    leader: bytes | None
    prices: tuple[tuple[str, bytes], ...]
    prices_left_out: int
    returns: bytes | None


def draw_charts(result: BacktestResult) -> Charts:
    by_coin: dict[str, list[Trade]] = {}
    for t in result.trades:
        by_coin.setdefault(t.coin, []).append(t)
    charted = sorted(result.prices, key=lambda c: (-len(by_coin.get(c, ())), c))
    return Charts(
        equity=plots.equity_drawdown_png(result.equity, f"{result.title}: equity"),
        leader=plots.versus_leader_png(result.equity, result.leader_equity) if result.leader_equity else None,
        prices=tuple(
            (coin, plots.trades_on_price_png(coin, result.prices[coin], by_coin.get(coin, [])))
            for coin in charted[:MAX_PRICE_CHARTS]
        ),
        prices_left_out=max(0, len(charted) - MAX_PRICE_CHARTS),
        returns=plots.returns_png([float(t.return_pct) for t in result.trades]) if result.trades else None,
    )


# --- HTML -------------------------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
 background:#f6f7f9;color:#1d2330}
main{max-width:1120px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #dde1e7;padding-bottom:4px}
.sub{color:#5b6475;margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:10px 12px}
.card .k{color:#5b6475;font-size:12px}.card .v{font-size:20px;font-weight:600}
.pos{color:#1a7f43}.neg{color:#c0392b}
img{max-width:100%;height:auto;background:#fff;border:1px solid #dde1e7;border-radius:6px;
 display:block;margin:8px 0}
table{border-collapse:collapse;background:#fff;border:1px solid #dde1e7;margin:6px 0;width:100%}
th,td{padding:4px 10px;border-bottom:1px solid #eef0f3;text-align:left;vertical-align:top}
th{background:#f0f2f5;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:12px;color:#5b6475}.missing{color:#c0392b;font-weight:600}.note{color:#5b6475;font-size:13px}
"""

LABELS = {  # the figures table's rows, in this order (any other scalar of the summary follows)
    "total_return_pct": "total return (%)",
    "max_drawdown_pct": "max drawdown (%)",
    "sharpe": "Sharpe (annualised)",
    "sortino": "Sortino (annualised)",
    "sample_period_ms": "return sampling period (ms)",
    "periods_per_year": "periods per year",
    "start_equity_usd": "start equity (USD)",
    "end_equity_usd": "end equity (USD)",
    "net_pnl_usd": "net PnL of the trades (USD)",
    "pnl_usd": "price PnL (USD)",
    "fees_usd": "fees paid (USD)",
    "funding_usd": "funding paid (USD)",
    "turnover_usd": "turnover (USD)",
    "trades": "trades",
    "wins": "winning trades",
    "losses": "losing trades",
    "win_rate": "win rate (fraction)",
    "profit_factor": "profit factor",
    "avg_trade_secs": "average trade (s)",
    "exposure_pct": "time in the market (%)",
    "passive_posted": "passive orders posted",
    "passive_filled": "passive orders filled",
    "passive_fill_ratio": "passive fill ratio (orders)",
    "passive_fill_ratio_usd": "passive fill ratio (notional)",
    "skips": "signals skipped",
    "leader_return_pct": "leader's return (%)",
    "start_ms": "start",
    "end_ms": "end",
}
GROUP_COLUMNS = (
    "trades",
    "wins",
    "losses",
    "win_rate",
    "profit_factor",
    "avg_trade_secs",
    "net_pnl_usd",
    "fees_usd",
    "turnover_usd",
)


def cell(value: Json, path: str, notes: Mapping[str, str]) -> str:
    """A summary value as table text: its JSON spelling; null as ∞ when a note says it is infinite, else
    n/a (undefined for the run)."""
    if value is None:
        return "∞" if path in notes else "n/a"
    if isinstance(value, msgspec.Raw):
        return text_of(value)
    return escape(str(value))


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric_from: int = 1) -> str:
    """A table of already escaped cells; columns from ``numeric_from`` on are right-aligned numbers."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{c}</td>' if i >= numeric_from else f"<td>{c}</td>" for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _cards(m: Metrics, notes: Mapping[str, str]) -> str:
    def card(label: str, value: str, tone: str = "") -> str:
        return (
            f'<div class="card"><div class="k">{escape(label)}</div>'
            f'<div class="v{tone}">{escape(value)}</div></div>'
        )

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v:+,.2f}%"

    def ratio(v: float | None, key: str) -> str:
        return ("∞" if key in notes else "n/a") if v is None or math.isinf(v) else f"{v:,.2f}"

    def tone(v: float | Decimal | None) -> str:
        return "" if v is None or v == 0 else " pos" if v > 0 else " neg"

    cards = [
        card("total return", pct(m.total_return_pct), tone(m.total_return_pct)),
        card("max drawdown", f"{m.max_drawdown_pct:,.2f}%"),
        card("Sharpe", ratio(m.sharpe, "sharpe")),
        card("net PnL (USD)", f"{m.net_pnl_usd:+,.2f}", tone(m.net_pnl_usd)),
        card("trades", str(m.trades)),
        card("win rate", "n/a" if m.win_rate is None else f"{m.win_rate:.1%}"),
        card("profit factor", ratio(m.profit_factor, "profit_factor")),
        card("fees (USD)", f"{m.fees_usd:,.2f}"),
    ]
    if m.leader_return_pct is not None:
        cards.append(card("leader's return", pct(m.leader_return_pct), tone(m.leader_return_pct)))
    return f'<section class="cards">{"".join(cards)}</section>'


def _figures_table(s: Summary) -> str:
    """Every scalar figure of the summary: a label, the JSON key, the JSON value."""
    rows = []
    order = {key: i for i, key in enumerate(LABELS)}
    for key, value in sorted(s.data.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])):
        if isinstance(value, dict | list) or key == "title":
            continue
        shown = cell(value, key, s.notes)
        if key in ("start_ms", "end_ms") and isinstance(value, int):
            shown = f"{value} ({utc(value)})"
        rows.append((escape(LABELS.get(key, key.replace("_", " "))), f"<code>{escape(key)}</code>", shown))
    return _table(("figure", "key", "value"), rows, numeric_from=2)


def _groups(title: str, key: str, s: Summary) -> str:
    groups = s.data[key]
    if not isinstance(groups, dict) or not groups:
        return f"<h2>{escape(title)}</h2><p class='note'>no trades</p>"
    rows = []
    for name, stats in groups.items():
        if not isinstance(stats, dict):
            raise TypeError(f"{key}.{name} is not a group of figures")
        rows.append([escape(name)] + [cell(stats[c], f"{key}.{name}.{c}", s.notes) for c in GROUP_COLUMNS])
    return f"<h2>{escape(title)}</h2>" + _table((title.split()[-1], *GROUP_COLUMNS), rows)


def _models(models: Mapping[str, str]) -> str:
    rows = []
    for name in (*REQUIRED_MODELS, *sorted(set(models) - set(REQUIRED_MODELS))):
        text = models.get(name)
        shown = escape(text) if text else '<span class="missing">not stated by the run</span>'
        rows.append((escape(name), shown))
    return "<h2>Models used</h2>" + _table(("model", "as the run states it"), rows, numeric_from=99)


def _charts(charts: Charts) -> list[str]:
    parts = ["<h2>Equity and drawdown</h2>", _img(charts.equity, "equity and drawdown")]
    if charts.leader is not None:
        parts += ["<h2>Follower vs leader</h2>", _img(charts.leader, "follower vs leader")]
    parts.append("<h2>Trades on the price</h2>")
    if charts.prices:
        parts += [_img(png, f"{coin} price and trades") for coin, png in charts.prices]
        if charts.prices_left_out:
            parts.append(f"<p class='note'>{charts.prices_left_out} more coins not charted.</p>")
    else:
        parts.append("<p class='note'>no price series given with the run</p>")
    parts.append("<h2>Distribution of trade returns</h2>")
    parts.append(_img(charts.returns, "trade returns") if charts.returns else "<p class='note'>no trades</p>")
    return parts


def render_html(result: BacktestResult, metrics: Metrics, s: Summary, charts: Charts) -> str:
    """The whole report page (no external reference: CSS inline, images as data URIs, no script)."""
    m = metrics
    hours = (m.end_ms - m.start_ms) / 3_600_000
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(result.title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{escape(result.title)}</h1>",
        f'<p class="sub">{utc(m.start_ms)} to {utc(m.end_ms)}, {hours:,.2f} hours</p>',
        _cards(m, s.notes),
        *_charts(charts),
        "<h2>Figures</h2>",
        _figures_table(s),
    ]
    if s.notes:
        items = "<br>".join(f"<code>{escape(k)}</code>: {escape(v)}" for k, v in s.notes.items())
        parts.append(f"<p class='note'>{items}</p>")
    parts.append(
        "<p class='note'>Sharpe and Sortino: simple returns of the equity resampled every "
        f"{m.sample_period_ms:,} ms (the last equity at or before each step), annualised by the square root "
        f"of {m.periods_per_year:,.2f} periods a year, risk-free rate 0. n/a: undefined for this run (no "
        "trades, flat equity, nothing posted).</p>"
    )
    parts += [
        _groups("By coin", "by_coin", s),
        _groups("By owner", "by_owner", s),
        "<h2>Skipped signals</h2>",
    ]
    skips = sorted(m.skips_by_reason.items())
    rows = [(escape(k), str(v)) for k, v in skips]
    parts.append(_table(("reason", "count"), rows) if rows else "<p class='note'>none</p>")
    parts.append(_models(result.models))
    if result.meta:
        rows = [(escape(k), escape(v)) for k, v in sorted(result.meta.items())]
        parts += ["<h2>Run</h2>", _table(("what", "value"), rows, numeric_from=99)]
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """Where ``write_report`` put each file, and the figures it wrote."""

    summary: Path
    trades: Path
    equity_csv: Path
    equity_png: Path
    html: Path
    metrics: Metrics


def write_report(out_dir: Path, result: BacktestResult) -> ReportFiles:
    """Write the run's five files into ``out_dir`` (created if missing; files overwritten)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = compute_metrics(result)
    data = summary(metrics, result)
    charts = draw_charts(result)
    files = ReportFiles(
        summary=out_dir / "summary.json",
        trades=out_dir / "trades.csv",
        equity_csv=out_dir / "equity.csv",
        equity_png=out_dir / "equity.png",
        html=out_dir / "report.html",
        metrics=metrics,
    )
    files.summary.write_bytes(data.to_json())
    files.trades.write_text(trades_csv(result.trades), encoding="utf-8")
    files.equity_csv.write_text(equity_csv(result), encoding="utf-8")
    files.equity_png.write_bytes(charts.equity)
    files.html.write_text(render_html(result, metrics, data, charts), encoding="utf-8")
    return files
