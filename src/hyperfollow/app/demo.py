"""``hyperfollow demo``: the copy engine end to end against the embedded exchange, in one process.

1. The embedded exchange runs with its simulated traders on an accelerated clock (``speed``), seeded, in a
   thread of its own, served over HTTP/WS on a free 127.0.0.1 port: the follower talks to it through the
   real Hyperliquid adapter exactly as it would to the venue.
2. A follower (a key generated for the run, never shown) is funded and follows three simulated leaders
   picked by style and skill: a swing trader (mirror, maker, joining the positions it already holds), a
   scalper (mirror, taker) and a position trader (delta sync). Each follow gets a third of the capital
   (``copy_ratio`` 1/3 of the equity ratio) and its own budget.
3. The copy service runs for ``duration`` wall seconds (Ctrl-C ends it early) with the live view; then the
   copies are closed (stop with CLOSE: every PnL in the report is realized), the report is printed and the
   follower-vs-leaders equity plot is saved in ``out`` beside the SQLite store.

The venue's REST budget (1,200 weight a minute per IP) is scaled by the speed on both sides: at 30x the
traders trade 30 times as often per wall second, and so does the follower.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from pydantic import SecretStr
from rich.console import Console

from hyperfollow.adapters.hyperliquid.budget import WeightLimiter
from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.adapters.hyperliquid.venue import HyperliquidVenue
from hyperfollow.app.copy_run import CopyRun, RunStats, open_follower, stop_on_ctrl_c
from hyperfollow.app.report import CopyReport, plot_equity
from hyperfollow.app.risk_run import start_risk
from hyperfollow.copy.model import CopyMode, ExecutionStyle, ExistingPositions, FollowSettings, MakerFallback
from hyperfollow.copy.service import CopyService, ServiceConfig
from hyperfollow.core.clock import LiveClock
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.exchange.server import ExchangeServer, ServerLimits, running_in_thread
from hyperfollow.risk.gate import TradingState
from hyperfollow.risk.service import RiskEvent, RiskService
from hyperfollow.signing import address_of
from hyperfollow.store.copy_journal import StoreCopyJournal
from hyperfollow.store.unit import Store

log = structlog.get_logger(__name__)

DB_NAME = "demo.db"
PLOT_NAME = "equity.png"
THIRD = Decimal("0.33")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    duration_s: float = 60.0  # wall seconds of copying
    speed: float = 30.0  # simulated seconds per wall second
    seed: int = 7
    out: Path = Path("hyperfollow-demo")
    follower_usd: Decimal = Decimal(10_000)
    interactive: bool | None = None  # None: a live view on a terminal, status lines otherwise


@dataclass(frozen=True, slots=True)
class Pick:
    """A simulated leader the demo follows, and how."""

    address: str
    name: str
    style: str
    settings: FollowSettings

    @property
    def label(self) -> str:
        mode = self.settings.mode.value
        how = f"{mode}, {self.settings.execution.value}" if self.settings.mode is CopyMode.MIRROR else mode
        return f"{self.name} ({how})"


@dataclass
class DemoResult:
    report: CopyReport
    plot: Path
    store_url: str
    follower: str
    leaders: list[Pick]
    exchange_url: str
    leftover_tasks: list[str]


def pick_leaders(traders: Sequence[dict[str, Any]]) -> list[Pick]:
    """The most skilled swing trader, scalper and position trader (main-dex coins only), with the settings
    that make each worth watching."""
    plans = {
        "swing": FollowSettings(
            copy_ratio=THIRD, budget_usd=Decimal(6_000), existing_positions=ExistingPositions.JOIN,
            execution=ExecutionStyle.MAKER, maker_offset_bps=Decimal(1),
            maker_timeout_secs=Decimal(30), maker_fallback=MakerFallback.TAKER,  # venue time: 1 s wall at 30x
        ),
        "scalper": FollowSettings(copy_ratio=THIRD, budget_usd=Decimal(6_000)),
        "position": FollowSettings(
            mode=CopyMode.DELTA, copy_ratio=THIRD, budget_usd=Decimal(6_000), delta_interval_secs=Decimal(60)
        ),
    }  # fmt: skip
    picks: list[Pick] = []
    for style, settings in plans.items():
        candidates = [t for t in traders if t["style"] == style and not any(":" in c for c in t["coins"])]
        if not candidates:
            continue
        best = max(candidates, key=lambda t: float(t["skill"]))
        picks.append(Pick(str(best["address"]).lower(), str(best["name"]), style, settings))
    return picks


@contextlib.contextmanager
def _exchange(options: DemoOptions) -> Iterator[tuple[str, EmbeddedExchange, ExchangeServer]]:
    exchange = EmbeddedExchange(seed=options.seed, speed=options.speed, simulated_traders=True)
    budget = max(1200, int(1200 * options.speed))
    limits = ServerLimits(ip_weight_per_min=budget, ws_max_users_per_ip=10)
    with running_in_thread(exchange, limits) as (url, server):
        yield url, exchange, server


async def _fund(url: str, address: str, usd: Decimal) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/sim/fund", json={"user": address, "usd": format(usd, "f")}) as response,
    ):
        if response.status != 200:
            raise RuntimeError(f"funding the demo follower failed: {await response.text()}")


def _fresh_store(folder: Path) -> str:
    """The demo's SQLite file, emptied: each run is a new exchange with a new follower."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        (folder / f"{DB_NAME}{suffix}").unlink(missing_ok=True)
    return f"sqlite+aiosqlite:///{(folder / DB_NAME).resolve()}"


async def run_demo(options: DemoOptions, console: Console) -> DemoResult:
    """Run the demo (see the module docstring) and return what it produced."""
    out = options.out
    store_url = _fresh_store(out)
    key = secrets.token_bytes(32)
    follower = address_of(key)
    stop = asyncio.Event()
    restore = stop_on_ctrl_c(stop)
    try:
        with _exchange(options) as (url, exchange, _server):
            picks = pick_leaders(exchange.traders())
            simulated = options.duration_s * options.speed / 60
            console.print(
                f"embedded exchange on [bold]{url}[/bold] (seed {options.seed}, {options.speed:g}x: "
                f"{simulated:.0f} simulated minutes in {options.duration_s:g} s)"
            )
            await _fund(url, follower, options.follower_usd)
            config = HyperliquidConfig(
                base_url=url,
                account_address=follower,
                secret_key=SecretStr("0x" + key.hex()),
                ip_weight_per_min=max(1200, int(1200 * options.speed)),
            )
            limiter = WeightLimiter(config.ip_weight_per_min)  # one per IP, shared by every follower
            result = await _copy(options, console, exchange, config, limiter, picks, store_url, stop)
            result.exchange_url = url
    finally:
        restore()
    current = asyncio.current_task()
    result.leftover_tasks = [t.get_name() for t in asyncio.all_tasks() if t is not current and not t.done()]
    return result


async def _copy(
    options: DemoOptions,
    console: Console,
    exchange: EmbeddedExchange,
    config: HyperliquidConfig,
    limiter: WeightLimiter,
    picks: list[Pick],
    store_url: str,
    stop: asyncio.Event,
) -> DemoResult:
    follower = config.account_address
    store = await Store.open_migrated(store_url)
    venue: HyperliquidVenue | None = None
    service: CopyService | None = None
    risk: RiskService | None = None
    try:
        venue = await open_follower(config, limiter)
        # The service runs on the venue's clock: cooldowns, intervals and snapshot ages are simulated time.
        # Its snapshot caches keep the wall-clock life they have at 1x (2 s), not 2 s of simulated time:
        # otherwise every copy on a 30x clock would wait for two fresh account reads.
        ttl = int(ServiceConfig().leader_snapshot_ttl_ms * options.speed)
        service_config = ServiceConfig(
            leader_snapshot_ttl_ms=ttl,
            follower_snapshot_ttl_ms=ttl,
            # one trading state per account: the risk service's (started below; ACTIVE until then)
            trading_state=lambda a: risk.state(a) if risk is not None else TradingState.ACTIVE,
        )
        clock = LiveClock(wall_ms=exchange.clock.now_ms)  # the venue's epoch time; sleeps stay real
        service = CopyService({follower: venue}, StoreCopyJournal(store), config=service_config, clock=clock)
        for pick in picks:
            await service.follow(follower, pick.address, pick.settings)
        stats = RunStats(
            labels={p.address: p.label for p in picks},
            speed=options.speed,
            takers=frozenset(
                p.address
                for p in picks
                if p.settings.mode is CopyMode.MIRROR and p.settings.execution is ExecutionStyle.TAKER
            ),
        )
        run = CopyRun(
            service, venue, store, follower, stats, console, title=f"hyperfollow demo {options.speed:g}x",
            clock=exchange.clock.now_ms, sample_ms=60_000, read_secs=0.5, interactive=options.interactive,
            rest_stats=lambda: venue.client.limiter.stats,
        )  # fmt: skip
        await run.begin()
        risk_counts = {"stops placed": 0, "stops moved": 0, "exits": 0}

        def count_risk(event: RiskEvent) -> None:
            if event.kind == "stops":
                risk_counts["stops placed"] += len(event.data.get("placed", ()))
                risk_counts["stops moved"] += len(event.data.get("moved", ()))
            elif event.kind == "close":
                risk_counts["exits"] += 1

        risk = await start_risk(
            {follower: venue}, store, clock=clock, owners=service.owners, listeners=[count_risk]
        )
        run.risk = risk
        await service.start()  # after the risk service: it sees the copies open (none is "unknown")
        console.print(
            f"follower funded with {options.follower_usd:,.0f} USDC copies: "
            + "; ".join(p.label for p in picks)
        )
        await run.run(stop, options.duration_s)
        if stop.is_set():
            console.print("Ctrl-C: ending the demo early")
        console.print("risk: " + ", ".join(f"{n} {what}" for what, n in risk_counts.items()))
        console.print("closing the copied positions (stop with close) ...")
        await risk.close()  # its stops go with the positions: no exit races the demo's final close
        risk = run.risk = None
        await run.close_copies()
        report = await run.report()
        await service.close()
        service = None
        plot = plot_equity(run.series, out_path(options.out, PLOT_NAME), title=_plot_title(options))
        run.print_report(report)
        console.print(f"store: {Path(store_url.split(':///', 1)[1])}")
        console.print(f"plot:  {plot.resolve()}")
        console.print(f"output folder: [bold]{options.out.resolve()}[/bold]")
        return DemoResult(report, plot, store_url, follower, picks, "", [])
    finally:
        if risk is not None:
            await risk.close()
        if service is not None:
            await service.close()
        if venue is not None:
            await venue.close()
        await store.close()


def _plot_title(options: DemoOptions) -> str:
    return f"hyperfollow demo: follower vs leaders (seed {options.seed}, {options.speed:g}x)"


def out_path(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def threads_left(before: set[int]) -> list[str]:
    """Names of threads started since ``before`` (thread idents) that are still alive."""
    return [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]


def wait_threads(before: set[int], timeout_s: float = 5.0) -> list[str]:
    """Wait (briefly) for threads started during the run to end; the names of those still alive."""
    deadline = time.monotonic() + timeout_s
    left = threads_left(before)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = threads_left(before)
    return left
