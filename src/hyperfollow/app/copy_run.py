"""Running a ``CopyService`` for one follower with a live terminal view and a report at the end.

``CopyRun`` is shared by ``hyperfollow copy --config follow.toml`` (``run_copy``, against testnet, mainnet or
an embedded exchange) and ``hyperfollow demo`` (``app.demo``). While the service runs it:

* collects the service's events (copies, skips, latency) in memory (``RunStats``);
* reads the follower's account every ``read_secs`` (wall) for the view, and the follower's and the
  leaders' equity every ``sample_ms`` of the service's clock (the venue's; a simulated minute in the demo)
  for the report and the plot;
* shows a rich ``Live`` view refreshed twice a second on a terminal, or one status line every
  ``line_secs`` when stdout is not a terminal (CI, a pipe): a live view would fill a log with redraws. Both
  show the REST budget (weight in the last minute, HTTP 429s, retries, give-ups: the adapter's
  ``WeightLimiter.stats``) and the risk layer's health; the report shows the weight of every minute.

Latency: the service's ``latency_ms`` is the leader fill's venue time to our order's ack on the service's
clock. On an accelerated clock that is ``speed`` times the wall time, so the report divides it by
``speed`` (wall milliseconds) and says so; ``process_ms`` (fill received in this process -> acked) is shown
beside it. Only taker copies of leader fills count: a maker order rests up to its timeout by design, and
delta rounds are not caused by a fill.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

import structlog
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hyperfollow.adapters.hyperliquid.account import check_signer
from hyperfollow.adapters.hyperliquid.budget import WeightLimiter, WeightStats
from hyperfollow.adapters.hyperliquid.client import HyperliquidClient
from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.adapters.hyperliquid.venue import HyperliquidVenue, connect
from hyperfollow.app.follow_config import CopyConfig
from hyperfollow.app.report import CopyReport, EquitySeries, LeaderLine, percentile, risk_text
from hyperfollow.app.risk_run import policy_by_leader, start_risk
from hyperfollow.copy.lifecycle import is_settlement
from hyperfollow.copy.model import CopyMode, ExecutionStyle, FollowSettings, StopAction
from hyperfollow.copy.service import CopyService, ServiceConfig
from hyperfollow.copy.state import CopyEvent, EventKind
from hyperfollow.core.clock import LiveClock
from hyperfollow.domain.model import AccountSnapshot
from hyperfollow.ports.venue import Venue
from hyperfollow.risk.exits import ExitPolicy
from hyperfollow.risk.gate import TradingState
from hyperfollow.risk.service import RiskService
from hyperfollow.store.copy_journal import StoreCopyJournal
from hyperfollow.store.unit import Store

log = structlog.get_logger(__name__)

ZERO = Decimal(0)
_TRADED = (EventKind.FILLED, EventKind.PARTIAL, EventKind.RESENT, EventKind.RESOLVED)
_ORDERS = (*_TRADED, EventKind.UNFILLED, EventKind.REJECTED, EventKind.UNKNOWN)


# ---------------------------------------------------------------------------------------------- stats


@dataclass
class RunStats:
    """What the service reported during the run (one follower)."""

    labels: Mapping[str, str]  # leader address -> label
    speed: float = 1.0  # service-clock ms per wall ms (the demo's accelerated clock)
    takers: frozenset[str] = frozenset()  # leaders copied with the taker style (latency counted)
    copies: deque[CopyEvent] = field(default_factory=lambda: deque(maxlen=8))
    skipped: deque[CopyEvent] = field(default_factory=lambda: deque(maxlen=6))
    kinds: Counter[EventKind] = field(default_factory=Counter)
    copies_by_leader: Counter[str] = field(default_factory=Counter)
    skips_by_leader: Counter[str] = field(default_factory=Counter)
    skips_by_reason: Counter[str] = field(default_factory=Counter)
    rejections_by_leader: Counter[str] = field(default_factory=Counter)  # orders the venue refused
    rejections_by_reason: Counter[str] = field(default_factory=Counter)  # the venue's own words
    catch_ups_by_leader: Counter[str] = field(default_factory=Counter)  # orders catching up after a restart
    latencies_ms: list[float] = field(default_factory=list)  # wall ms, leader fill -> acked
    process_ms: list[float] = field(default_factory=list)  # wall ms, fill received here -> acked

    def label(self, leader: str) -> str:
        return self.labels.get(leader, f"{leader[:8]}..")

    def on_event(self, event: CopyEvent) -> None:
        """The service's event callback."""
        self.kinds[event.kind] += 1
        if event.kind is EventKind.SKIPPED:
            self.skipped.append(event)
            self.skips_by_leader[event.leader] += 1
            reason = event.skip_reason.value if event.skip_reason is not None else event.reason
            self.skips_by_reason[reason] += 1
            return
        if event.kind not in _ORDERS:
            return
        self.copies.append(event)
        if event.kind is EventKind.REJECTED:
            self.rejections_by_leader[event.leader] += 1
            self.rejections_by_reason[event.reason or "no reason given"] += 1
        if event.kind in _TRADED:
            self.copies_by_leader[event.leader] += 1
        if event.catch_up:  # fills missed while down: netted, and no latency to speak of
            self.catch_ups_by_leader[event.leader] += 1
            return
        if event.leader in self.takers and event.kind in (EventKind.FILLED, EventKind.PARTIAL):
            if event.latency_ms is not None:
                self.latencies_ms.append(event.latency_ms / self.speed)
            if event.process_ms is not None:
                self.process_ms.append(event.process_ms)

    def rejections_note(self) -> str | None:
        """The orders the venue refused, by its text (printed under the report; they are not skips)."""
        if not self.rejections_by_reason:
            return None
        total = sum(self.rejections_by_reason.values())
        reasons = "; ".join(f"{n} x {text}" for text, n in self.rejections_by_reason.most_common())
        return f"Rejected by the venue: {total} order(s): {reasons}"

    @property
    def orders(self) -> int:
        return sum(self.kinds[k] for k in _ORDERS)

    def latency_text(self) -> str:
        p50, p99 = percentile(self.latencies_ms, 50), percentile(self.latencies_ms, 99)
        if p50 is None or p99 is None:
            return "latency -"
        return f"latency p50 {p50:.1f} ms / p99 {p99:.1f} ms"


# ---------------------------------------------------------------------------------------------- view


def _money(value: Decimal, signed: bool = False) -> str:
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def _coloured(value: Decimal) -> Text:
    return Text(_money(value, signed=True), style="green" if value >= 0 else "red")


def _side(event: CopyEvent) -> str:
    if event.side is None:
        return "-"
    return "buy" if event.side.is_buy else "sell"


def health_text(venue: WeightStats | None, risk: Mapping[str, str] | None) -> str:
    """The REST budget and the risk layer's health, for the view and the status line."""
    parts = [f"venue {venue.text()}"] if venue is not None else []
    if risk is not None:
        parts.append(f"risk {risk_text(risk)}")
    return " | ".join(parts)


def live_view(
    stats: RunStats,
    snapshot: AccountSnapshot | None,
    start_equity: Decimal,
    title: str,
    *,
    venue: WeightStats | None = None,
    risk: Mapping[str, str] | None = None,
) -> RenderableType:
    """The live view: equity, positions, the last copies and skips, counts and latency, the REST budget and
    the risk layer's health."""
    head = Table.grid(padding=(0, 3))
    equity = snapshot.equity if snapshot is not None else start_equity
    head.add_row(
        Text(title, style="bold"),
        Text.assemble("equity ", (_money(equity), "bold"), " (", _coloured(equity - start_equity), ")"),
        f"orders {stats.orders}  copied {sum(stats.copies_by_leader.values())}  "
        f"rejected {sum(stats.rejections_by_leader.values())}  skipped {sum(stats.skips_by_leader.values())}",
        stats.latency_text(),
    )
    positions = Table("coin", "size", "entry", "uPnL", "leverage", title="positions", min_width=50)
    for p in snapshot.positions if snapshot is not None else ():
        positions.add_row(
            p.coin, str(p.size), str(p.entry_price), _coloured(p.unrealized_pnl), f"{p.leverage}x"
        )
    copies = Table("leader", "coin", "side", "size", "price", "result", "latency", title="last copies")
    for e in reversed(stats.copies):
        latency = "-" if e.latency_ms is None else f"{e.latency_ms / stats.speed:.1f} ms"
        copies.add_row(
            stats.label(e.leader), e.coin, _side(e), str(e.filled or e.size or "-"),
            str(e.avg_price or "-"), f"{e.kind.value} (catch-up)" if e.catch_up else e.kind.value, latency,
        )  # fmt: skip
    skips = Table("leader", "coin", "reason", title="last skips")
    for e in reversed(stats.skipped):
        skips.add_row(stats.label(e.leader), e.coin, e.skip_reason.value if e.skip_reason else e.reason)
    health = health_text(venue, risk)
    if not health:
        return Group(head, positions, copies, skips)
    style = "bold red" if (risk or (venue and (venue.rate_limited or venue.give_ups))) else "dim"
    return Group(head, Text(health, style=style), positions, copies, skips)


def status_line(
    stats: RunStats,
    snapshot: AccountSnapshot | None,
    start: Decimal,
    elapsed: float,
    *,
    venue: WeightStats | None = None,
    risk: Mapping[str, str] | None = None,
) -> str:
    """One line for a log (stdout not a terminal)."""
    health = health_text(venue, risk)
    equity = snapshot.equity if snapshot is not None else start
    held = ", ".join(f"{p.coin} {p.size}" for p in snapshot.positions) if snapshot is not None else ""
    return (
        f"[{elapsed:5.0f}s] equity {_money(equity)} ({_money(equity - start, signed=True)}) | "
        f"positions {held or '-'} | orders {stats.orders}, copied {sum(stats.copies_by_leader.values())}, "
        f"rejected {sum(stats.rejections_by_leader.values())}, "
        f"skipped {sum(stats.skips_by_leader.values())} | {stats.latency_text()}"
        + (f" | {health}" if health else "")
    )


# ---------------------------------------------------------------------------------------------- the run


def stop_on_ctrl_c(stop: asyncio.Event) -> Callable[[], None]:
    """Ctrl-C sets ``stop`` (the run ends and reports); a second Ctrl-C interrupts as usual. Returns the
    function that restores the default handling."""
    loop = asyncio.get_running_loop()

    def first() -> None:
        stop.set()
        restore()

    def restore() -> None:
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(signal.SIGINT)

    try:
        loop.add_signal_handler(signal.SIGINT, first)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
        return lambda: None
    return restore


class CopyRun:
    """One follower's ``CopyService`` run: the live view, the equity samples and the report."""

    def __init__(
        self,
        service: CopyService,
        venue: Venue,
        store: Store,
        follower: str,
        stats: RunStats,
        console: Console,
        *,
        rest_stats: Callable[[], WeightStats] | None = None,
        title: str = "hyperfollow copy",
        clock: Callable[[], int] | None = None,
        sample_ms: int = 60_000,
        read_secs: float = 5.0,
        refresh_secs: float = 0.5,
        line_secs: float = 5.0,
        interactive: bool | None = None,
    ) -> None:
        self.service = service
        self.venue = venue
        self.rest_stats = rest_stats  # the REST client's counters (None: a venue without one)
        self.store = store
        self.follower = follower.lower()
        self.stats = stats
        self.console = console
        self.title = title
        self.clock = clock or service.now_ms
        self.sample_ms = sample_ms
        self.read_secs = read_secs  # account reads cost REST weight: 2 per read
        self.refresh_secs = refresh_secs
        self.line_secs = line_secs
        self.interactive = console.is_terminal if interactive is None else interactive
        self.series: dict[str, list[tuple[int, Decimal]]] = {}
        self.snapshot: AccountSnapshot | None = None
        self.start_equity = ZERO
        self.started = 0.0
        self.unrealized: dict[str, Decimal] = {}
        self.realized_before: dict[str, Decimal] = {}  # per leader, from earlier runs in the store
        self.risk: RiskService | None = None  # set once the risk service beside the copy engine runs
        self.weight_per_minute: list[int] = []  # REST weight of each wall minute of the run
        service.on_event(stats.on_event)

    @property
    def venue_stats(self) -> WeightStats | None:
        return self.rest_stats() if self.rest_stats is not None else None

    def _weight_total(self) -> int:
        stats = self.venue_stats
        return stats.weight_total if stats is not None else 0

    def risk_health(self) -> dict[str, str] | None:
        return self.risk.health() if self.risk is not None else None

    @property
    def leaders(self) -> list[str]:
        return list(self.stats.labels)

    async def sample(self) -> None:
        """One point of every equity series (follower and leaders) at the service's time."""
        now = self.clock()
        self.snapshot = await self.venue.account.snapshot()
        self.series.setdefault("follower", []).append((now, self.snapshot.equity))
        for leader in self.leaders:
            snap = await self.venue.leaders.snapshot(leader)
            self.series.setdefault(self.stats.label(leader), []).append((now, snap.equity))

    async def begin(self) -> None:
        """The starting point (equities before any copy): call before the service starts."""
        self.started = time.monotonic()
        await self.sample()
        self.start_equity = self.snapshot.equity if self.snapshot is not None else ZERO
        before: dict[str, Decimal] = {}
        for held in await self.service.journal.positions(self.follower):
            before[held.leader] = before.get(held.leader, ZERO) + held.realized_pnl
        self.realized_before = before

    async def run(self, stop: asyncio.Event, duration_s: float | None) -> None:
        """Show the view until ``stop`` is set or ``duration_s`` wall seconds have passed (from now)."""
        if not self.series:
            await self.begin()
        self.started = time.monotonic()
        deadline = None if duration_s is None else self.started + duration_s
        next_sample = self.clock() + self.sample_ms
        next_line = self.started + self.line_secs
        next_read = self.started + min(self.read_secs, self.refresh_secs)
        next_minute, minute_start = self.started + 60, self._weight_total()
        live = Live(console=self.console, refresh_per_second=2, transient=False) if self.interactive else None
        with live if live is not None else contextlib.nullcontext():
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_minute:
                    total = self._weight_total()
                    self.weight_per_minute.append(total - minute_start)
                    next_minute, minute_start = next_minute + 60, total
                if deadline is not None and now >= deadline:
                    break
                try:
                    if self.clock() >= next_sample:
                        next_sample += self.sample_ms
                        next_read = now + self.read_secs
                        await self.sample()
                    elif now >= next_read:
                        next_read = now + self.read_secs
                        self.snapshot = await self.venue.account.snapshot()
                except Exception as exc:  # a failed read only makes the view a little older
                    log.warning("copy_run.read_failed", error=repr(exc))
                venue, risk = self.venue_stats, self.risk_health()
                if live is not None:
                    live.update(
                        live_view(
                            self.stats, self.snapshot, self.start_equity, self.title, venue=venue, risk=risk
                        )
                    )
                elif now >= next_line:
                    next_line += self.line_secs
                    line = status_line(self.stats, self.snapshot, self.start_equity, now - self.started,
                                       venue=venue, risk=risk)  # fmt: skip
                    self.console.print(line, highlight=False)
                wait = self.refresh_secs if deadline is None else min(self.refresh_secs, deadline - now)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, wait))

    async def close_copies(self) -> None:
        """Stop every follow with CLOSE, all together: the account's net position is closed once per coin
        (reduce-only) and every follow's ledger settled; then wait for the fills."""
        try:
            await self.service.stop_all(StopAction.CLOSE)
        except Exception as exc:
            log.warning("copy_run.close_failed", error=repr(exc))
        await self.service.settle()

    async def report(self) -> CopyReport:
        """The end-of-run report (reads the follower's account, the leaders' and the store's fills)."""
        with contextlib.suppress(Exception):
            await self.service.settle()
        try:
            await self.sample()
        except Exception as exc:
            log.warning("copy_run.read_failed", error=repr(exc))
        marks: Mapping[str, Decimal] = {}
        with contextlib.suppress(Exception):
            marks = await self.service.marks()
        fees: dict[str, Decimal] = {}
        fills = 0
        async with self.store.transaction() as tx:
            for recorded in await tx.fills.for_address(self.follower):
                if recorded.fill.time_ms < self._first_sample_ms() or is_settlement(recorded.fill):
                    continue  # before this run, or a settlement between ledgers (not a venue fill)
                fills += 1
                if recorded.leader is not None:
                    fees[recorded.leader] = fees.get(recorded.leader, ZERO) + recorded.fill.fee
        realized = {leader: -pnl for leader, pnl in self.realized_before.items()}  # this run's only
        unrealized: dict[str, Decimal] = {}
        for p in self.service.ledger.all_positions(self.follower):
            realized[p.leader] = realized.get(p.leader, ZERO) + p.realized_pnl
            mark = marks.get(p.coin)
            if mark is not None:
                unrealized[p.leader] = unrealized.get(p.leader, ZERO) + p.unrealized(mark)
        self.unrealized = unrealized
        lines = []
        for leader in self.leaders:
            label = self.stats.label(leader)
            lines.append(
                LeaderLine(
                    label,
                    copies=self.stats.copies_by_leader[leader],
                    skips=self.stats.skips_by_leader[leader],
                    catch_ups=self.stats.catch_ups_by_leader[leader],
                    realized_pnl=realized.get(leader, ZERO),
                    fees=fees.get(leader, ZERO),
                    leader_return_pct=_return_pct(self.series.get(label, [])),
                )
            )
        end = self.snapshot.equity if self.snapshot is not None else self.start_equity
        return CopyReport(
            duration_s=time.monotonic() - self.started,
            follower_start=self.start_equity,
            follower_end=end,
            leaders=lines,
            skips_by_reason=dict(self.stats.skips_by_reason),
            latencies_ms=list(self.stats.latencies_ms),
            orders=self.stats.orders,
            fills=fills,
            since_ms=self._first_sample_ms() or None,
            catch_ups=sum(self.stats.catch_ups_by_leader.values()),
            venue=self.venue_stats,
            weight_per_minute=list(self.weight_per_minute),
            risk_health=self.risk_health(),
        )

    def _first_sample_ms(self) -> int:
        points = self.series.get("follower")
        return points[0][0] if points else 0

    def latency_note(self) -> str:
        """What the latency figures are (printed under the report)."""
        scaled = (
            f"; the venue clock ran {self.stats.speed:g}x, so its figures are divided by {self.stats.speed:g}"
            if self.stats.speed != 1
            else ""
        )
        inner = percentile(self.stats.process_ms, 50), percentile(self.stats.process_ms, 99)
        handled = (
            f" In this process (fill received -> acked): p50 {inner[0]:.1f} ms, p99 {inner[1]:.1f} ms."
            if inner[0] is not None and inner[1] is not None
            else ""
        )
        return (
            f"Latency is wall-clock: the leader's fill time at the venue to our order's ack{scaled}; taker "
            f"copies only (maker copies rest by design).{handled}"
        )

    def unrealized_note(self) -> str | None:
        """Open copies' PnL at the marks per leader (the report's PnL column is realized only)."""
        open_pnl = {k: v for k, v in self.unrealized.items() if v}
        if not open_pnl:
            return None
        parts = ", ".join(f"{self.stats.label(k)} {_money(v, signed=True)}" for k, v in open_pnl.items())
        return f"Still open, unrealized at the marks: {parts} USDC."

    def print_report(self, report: CopyReport) -> None:
        self.console.print(report.render())
        self.console.print(self.latency_note(), highlight=False)
        rejected = self.stats.rejections_note()
        if rejected:
            self.console.print(Text(rejected, style="red"))
        note = self.unrealized_note()
        if note:
            self.console.print(note, highlight=False)


def _taker(settings: FollowSettings) -> bool:
    """Copies of this follow are taker orders sent for a leader fill (their latency is measured)."""
    return settings.mode is CopyMode.MIRROR and settings.execution is ExecutionStyle.TAKER


def _return_pct(points: EquitySeries) -> Decimal | None:
    if len(points) < 2 or points[0][1] <= 0:
        return None
    return ((points[-1][1] / points[0][1] - 1) * 100).quantize(Decimal("0.01"))


# ---------------------------------------------------------------------------------------------- copy


async def open_follower(config: HyperliquidConfig, limiter: WeightLimiter | None = None) -> HyperliquidVenue:
    """A venue connection for one follower; ``limiter`` is the process's per-IP weight budget (every
    follower's client must share one, or a fan-out earns 429s instead of being paced)."""
    limiter = limiter or WeightLimiter(config.ip_weight_per_min)
    return await connect(config, client=HyperliquidClient(config, limiter=limiter))


async def run_copy(
    config: CopyConfig,
    venue_config: HyperliquidConfig,
    store_url: str,
    console: Console,
    *,
    duration_s: float | None = None,
    interactive: bool | None = None,
) -> CopyReport:
    """``hyperfollow copy``: copy ``config``'s leaders for the configured account until Ctrl-C or
    ``duration_s``, then report. Follows of this account in the store that the file no longer names are
    stopped (their positions kept). A signing key that may not trade for the account raises
    ``SignerNotAuthorized`` before the store is opened or anything is sent."""
    venue: HyperliquidVenue | None = None
    store: Store | None = None
    try:
        venue = await open_follower(venue_config)
        # before the store or any order: a key the account never approved would be refused order by order
        await check_signer(venue.client, venue.client.signer_address, int(time.time() * 1000))
        store = await Store.open_migrated(store_url)
        client = venue.client
        return await copy_follows(
            config, venue, venue_config.query_address, store, console, where=venue_config.base_url,
            duration_s=duration_s, interactive=interactive, rest_stats=lambda: client.limiter.stats,
        )  # fmt: skip
    finally:
        if venue is not None:
            await venue.close()
        if store is not None:
            await store.close()


async def copy_follows(
    config: CopyConfig,
    venue: Venue,
    follower: str,
    store: Store,
    console: Console,
    *,
    where: str,
    duration_s: float | None = None,
    interactive: bool | None = None,
    rest_stats: Callable[[], WeightStats] | None = None,
    clock: Callable[[], int] | None = None,
    service_config: ServiceConfig | None = None,
    title: str = "hyperfollow copy",
) -> CopyReport:
    """Run ``config``'s follows for ``follower`` on ``venue`` (whatever it is: live or paper) with the risk
    service beside them, the live view, and the report at the end. The caller opens and closes the venue and
    the store."""
    stop = asyncio.Event()
    restore = stop_on_ctrl_c(stop)
    follower = follower.lower()
    service: CopyService | None = None
    risk: RiskService | None = None
    try:
        journal = StoreCopyJournal(store)
        # one trading state per account: the risk service's (started below; ACTIVE until then)
        shared = replace(
            service_config or ServiceConfig(),
            trading_state=lambda a: risk.state(a) if risk is not None else TradingState.ACTIVE,
        )
        venues: dict[str, Venue] = {follower: venue}
        # the venue's epoch time when it runs its own clock (a sped-up embedded exchange); sleeps stay real
        service = CopyService(venues, journal, config=shared, clock=LiveClock(wall_ms=clock))
        wanted = {spec.leader for spec in config.follows}
        for old in await journal.follows():
            if old.follower == follower and old.leader not in wanted:
                await journal.end_follow(follower, old.leader, StopAction.KEEP, now_ms=service.now_ms())
                console.print(f"no longer in the follow file: stopped copying {old.leader} (positions kept)")
        for spec in config.follows:
            await service.follow(follower, spec.leader, spec.settings)
        stats = RunStats(
            labels={s.leader: s.label for s in config.follows},
            takers=frozenset(s.leader for s in config.follows if _taker(s.settings)),
        )
        run = CopyRun(
            service, venue, store, follower, stats, console, interactive=interactive, rest_stats=rest_stats,
            title=title,
        )  # fmt: skip
        await run.begin()
        policies = {spec.leader: spec.exit_policy for spec in config.follows}
        risk = await start_risk(
            {follower: venue},
            store,
            clock=service.clock,
            owners=service.owners,
            policy_for=policy_by_leader(service.ledger, policies, ExitPolicy()),
        )
        run.risk = risk
        # after the risk service: it sees the start-up's copies open (none is an "unknown venue position")
        for event in await service.start():
            console.print(f"start-up: {event.kind.value} {event.coin} {event.cloid} {event.reason}")
        console.print(
            f"copying {len(config.follows)} leader(s) for {follower} on {where}"
            + (f" for {duration_s:g} s" if duration_s else " until Ctrl-C")
        )
        await run.run(stop, duration_s)
        if stop.is_set():
            console.print("Ctrl-C: stopping (positions kept); the report follows")
        report = await run.report()
        await service.close()
        service = None
        run.print_report(report)
        return report
    finally:
        restore()
        if risk is not None:
            await risk.close()
        if service is not None:
            await service.close()
