"""Paper trading for a bounded, accelerated period against the embedded exchange as the "real" venue.

The embedded exchange runs its simulated traders on an accelerated clock (``SPEED`` simulated seconds per
wall second, seed 7) and is served over HTTP/WS on a free 127.0.0.1 port, as in ``hyperfollow demo``. The
paper run (``app.paper_run.run_paper``, the wiring of ``hyperfollow copy --paper``) follows the demo's three
leaders (a swing trader copied as maker, a scalper as taker, a position trader by delta sync) on a simulated
$10,000 account kept in a SQLite store in a temporary folder, reading the venue with the keyless read-only
client. Every ``/exchange`` request that reaches the venue is counted (the simulated traders trade
in-process, so any request there could only be ours): the figure must be 0.

Reported: wall minutes, simulated minutes, copies (orders filled), paper fills (taker / maker), fees, the
paper account's PnL (equity end - start, open positions at the mark), prints and books the paper venue
followed, and the ``/exchange`` count.

    .venv/bin/python -m bench.bench_paper --minutes 10     # the long run; the suite runs BENCH_SECONDS
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sqlite3
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console

from hyperfollow.adapters.hyperliquid.config import EndpointConfig
from hyperfollow.adapters.paper import paper_address
from hyperfollow.app.demo import pick_leaders
from hyperfollow.app.follow_config import CopyConfig, FollowSpec
from hyperfollow.app.paper_run import run_paper
from hyperfollow.copy.service import ServiceConfig
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.exchange.server import ServerLimits, running_in_thread

SPEED = 30.0
SEED = 7
BENCH_SECONDS = 20.0  # the suite's short run
GOALS = {"/exchange requests from the paper run": ("<=", 0.0)}


def _counted(exchange: EmbeddedExchange) -> list[Any]:
    bodies: list[Any] = []
    handle = exchange.exchange

    def counted(body: Any) -> dict[str, Any]:
        bodies.append(body)
        return handle(body)

    exchange.exchange = counted  # type: ignore[method-assign]
    return bodies


def paper_once(seconds: float, speed: float = SPEED, console: Console | None = None) -> dict[str, Any]:
    """One paper run of ``seconds`` wall seconds; the figures."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    exchange = EmbeddedExchange(seed=SEED, speed=speed, simulated_traders=True)
    bodies = _counted(exchange)
    picks = pick_leaders(exchange.traders())
    config = CopyConfig(follows=tuple(FollowSpec(p.address, p.settings, p.label) for p in picks), venue={})
    out = console or Console(file=io.StringIO(), width=140)
    budget = max(1200, int(1200 * speed))
    ttl = int(ServiceConfig().leader_snapshot_ttl_ms * speed)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_in_thread(exchange, ServerLimits(ip_weight_per_min=budget, ws_max_users_per_ip=10)) as (
            url,
            _server,
        ),
    ):
        db = Path(tmp) / "paper.db"
        started_ms, wall0 = exchange.clock.now_ms(), time.monotonic()
        report = asyncio.run(
            run_paper(
                config, EndpointConfig(base_url=url, ip_weight_per_min=budget), f"sqlite+aiosqlite:///{db}",
                out, account_name="bench", duration_s=seconds, interactive=False, clock=exchange.clock.now_ms,
                service_config=ServiceConfig(leader_snapshot_ttl_ms=ttl, follower_snapshot_ttl_ms=ttl),
            )
        )  # fmt: skip
        wall_s = time.monotonic() - wall0
        sim_min = (exchange.clock.now_ms() - started_ms) / 60_000
        with sqlite3.connect(db) as conn:
            rows = conn.execute(
                "SELECT json_extract(doc, '$[10]'), json_extract(doc, '$[11]') FROM paper_records "
                "WHERE kind = 'fill' AND address = ?",
                (paper_address("bench"),),
            ).fetchall()
    takers = sum(1 for crossed, _ in rows if crossed)
    fees = sum(Decimal(fee) for _, fee in rows) / 1_000_000
    return {
        "wall_min": wall_s / 60,
        "sim_min": sim_min,
        "leaders": [p.label for p in picks],
        "orders": report.orders,
        "copies": sum(line.copies for line in report.leaders),
        "skips": sum(line.skips for line in report.leaders),
        "fills": len(rows),
        "taker_fills": takers,
        "maker_fills": len(rows) - takers,
        "fees_usd": fees,
        "start": report.follower_start,
        "end": report.follower_end,
        "pnl_usd": report.follower_end - report.follower_start,
        "exchange_requests": len(bodies),
    }


def run() -> list[tuple[str, float, str]]:
    figures = paper_once(BENCH_SECONDS)
    return [
        ("paper copies in the run", float(figures["copies"]), f"in {figures['sim_min']:.0f} simulated min"),
        ("paper fills (taker/maker)", float(figures["fills"]),
         f"{figures['taker_fills']}/{figures['maker_fills']}"),
        ("paper PnL", float(figures["pnl_usd"]), "USDC"),
        ("/exchange requests from the paper run", float(figures["exchange_requests"]), "requests"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=BENCH_SECONDS / 60, help="wall minutes to run")
    parser.add_argument("--speed", type=float, default=SPEED, help="simulated seconds per wall second")
    args = parser.parse_args()
    figures = paper_once(args.minutes * 60, args.speed)
    for name, value in figures.items():
        print(f"{name:20} {value}")
    if figures["exchange_requests"]:
        raise SystemExit("the paper run sent requests to /exchange")


if __name__ == "__main__":
    main()
