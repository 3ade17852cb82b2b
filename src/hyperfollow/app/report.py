"""The copy report: per-leader PnL, copies taken and skipped by reason, latency percentiles, the venue's REST
budget (weight per minute, HTTP 429s, retries, give-ups), the risk layer's health, and a PNG of follower vs
leader equity. Pure formatting over what the run recorded (no venue, no database here).

Every figure is for the run the report ends (from ``since_ms``), never the store's whole history: a store
reused across runs keeps earlier fills and PnL, which the report leaves out. Its first line says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from rich.console import Group
from rich.table import Table

from hyperfollow.adapters.hyperliquid.budget import WeightStats

EquitySeries = Sequence[tuple[int, Decimal]]  # (venue time ms, equity)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100): a value that was measured; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * q // 100)))
    return ordered[int(rank) - 1]


def risk_text(problems: Mapping[str, str]) -> str:
    """The risk layer's health for a view: ``ok``, or what fails."""
    if not problems:
        return "ok"
    return "UNHEALTHY: " + "; ".join(f"{name}: {what}" for name, what in sorted(problems.items()))


@dataclass
class LeaderLine:
    """One leader's row of the report."""

    label: str
    copies: int = 0
    skips: int = 0
    catch_ups: int = 0  # copies that caught up on fills missed while down (counted in ``copies`` too)
    realized_pnl: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    leader_return_pct: Decimal | None = None


@dataclass
class CopyReport:
    """Everything the end-of-run report shows."""

    duration_s: float
    follower_start: Decimal
    follower_end: Decimal
    leaders: list[LeaderLine] = field(default_factory=list)
    skips_by_reason: Mapping[str, int] = field(default_factory=dict)
    latencies_ms: Sequence[float] = ()  # leader fill time -> our order acknowledged (catch-up left out)
    orders: int = 0
    fills: int = 0
    catch_ups: int = 0  # orders that caught up on leader fills missed while down
    since_ms: int | None = None  # the run's start (venue time): every figure counts from here

    @property
    def scope(self) -> str:
        """What the figures cover: this run, not the store's whole history."""
        since = ""
        if self.since_ms is not None:
            start = datetime.fromtimestamp(self.since_ms / 1000, UTC)
            since = f" (since {start:%Y-%m-%d %H:%M:%S} UTC)"
        return f"this run only{since}; earlier runs in the store are not counted"

    venue: WeightStats | None = None  # the REST client's counters at the end of the run
    weight_per_minute: Sequence[int] = ()  # REST weight spent in each wall minute of the run
    risk_health: Mapping[str, str] | None = None  # what the risk layer said was wrong at the end (None: off)

    def venue_text(self) -> str | None:
        """The REST budget line: weight per minute, 429s, retries, give-ups."""
        if self.venue is None:
            return None
        per_min = list(self.weight_per_minute) or [self.venue.weight_last_minute]
        return (
            f"weight/min max {max(per_min)}, mean {sum(per_min) / len(per_min):.0f} of "
            f"{self.venue.budget_per_minute:,} "
            f"({' '.join(str(w) for w in per_min)}); HTTP 429s {self.venue.rate_limited}, "
            f"retries {self.venue.retries}, give-ups {self.venue.give_ups}"
        )

    def render(self) -> Group:
        """Rich renderables for the terminal."""
        pnl = self.follower_end - self.follower_start
        pct = pnl / self.follower_start * 100 if self.follower_start else Decimal(0)
        summary = Table.grid(padding=(0, 2))
        summary.add_row("scope", self.scope)
        summary.add_row("run", f"{self.duration_s:.0f} s wall")
        summary.add_row("follower equity", f"{self.follower_start:,.2f} -> {self.follower_end:,.2f} USDC")
        summary.add_row("follower PnL", f"{pnl:+,.2f} USDC ({pct:+.2f} %)")
        summary.add_row("orders / fills", f"{self.orders} / {self.fills}")
        if self.catch_ups:
            summary.add_row(
                "catch-up orders", f"{self.catch_ups} (fills missed while down, netted; no latency)"
            )
        venue = self.venue_text()
        if venue is not None:
            summary.add_row("venue REST budget", venue)
        if self.risk_health is not None:
            summary.add_row("risk", risk_text(self.risk_health))
        leaders = Table(
            "leader",
            "copies",
            "catch-up",
            "skips",
            "realized PnL",
            "fees",
            "leader return",
            title="per leader",
        )
        for line in self.leaders:
            ret = "-" if line.leader_return_pct is None else f"{line.leader_return_pct:+.2f} %"
            leaders.add_row(
                line.label,
                str(line.copies),
                str(line.catch_ups),
                str(line.skips),
                f"{line.realized_pnl:+,.2f}",
                f"{line.fees:,.2f}",
                ret,
            )
        skips = Table("reason", "count", title="copies skipped")
        for reason, n in sorted(self.skips_by_reason.items(), key=lambda kv: -kv[1]):
            skips.add_row(reason, str(n))
        latency = Table(
            "p50", "p90", "p99", "max", "n", title="leader fill -> our order acked (ms, live copies)"
        )
        qs = [percentile(self.latencies_ms, q) for q in (50, 90, 99, 100)]
        latency.add_row(*["-" if v is None else f"{v:.1f}" for v in qs], str(len(self.latencies_ms)))
        return Group(summary, leaders, skips, latency)


def plot_equity(series: Mapping[str, EquitySeries], path: Path, title: str = "follower vs leaders") -> Path:
    """Save a PNG of each account's equity, normalised to 100 at its first point (so a $1k follower and a
    $1m leader share one axis)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    try:
        for name, points in series.items():
            if len(points) < 2 or points[0][1] <= 0:
                continue
            t0, base = points[0][0], points[0][1]
            minutes = [(t - t0) / 60_000 for t, _ in points]
            values = [float(v / base * 100) for _, v in points]
            ax.plot(minutes, values, label=name, linewidth=2.2 if name.startswith("follower") else 1.2)
        ax.axhline(100, color="grey", linewidth=0.6, linestyle=":")
        ax.set_xlabel("simulated minutes")
        ax.set_ylabel("equity (start = 100)")
        ax.set_title(title)
        ax.legend(loc="best", fontsize="small")
        ax.grid(alpha=0.3)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
