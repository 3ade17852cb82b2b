"""REST weight of ``hyperfollow copy`` with two leaders and the risk layer, against a venue with limits on.

An ``EmbeddedExchange`` with its simulated traders (seed 7, real-time clock: speed 1) is served in-process on
a free 127.0.0.1 port with the venue's limits on (1,200 weight a minute per IP, at most 10 WS users per IP). A
funded follower runs ``app.copy_run.run_copy`` - exactly what ``hyperfollow copy --config follow.toml`` runs:
the copy engine, the risk service beside it, the live view's account reads - copying two of the simulated
leaders (the best swing trader, maker; the best scalper, taker) for ``--minutes`` wall minutes, with the
journal in a SQLite file in a temporary folder.

What the venue saw is counted at the venue (its IP limiter, wrapped): weight per wall minute, requests it
refused with HTTP 429. Beside it, per request type, the weight the adapter asked for, and the adapter's own
counts of retries and give-ups when it exposes them.

    .venv/bin/python -m bench.bench_copy_weight --minutes 10
    .venv/bin/python -m bench copy_weight --minutes 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from eth_account import Account
from pydantic import SecretStr
from rich.console import Console

from hyperfollow.adapters.hyperliquid.client import HyperliquidClient
from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.app.copy_run import run_copy
from hyperfollow.app.demo import pick_leaders
from hyperfollow.app.follow_config import CopyConfig, FollowSpec
from hyperfollow.domain.weights import exchange_weight, info_base_weight
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.exchange.server import ExchangeServer, ServerLimits, running_in_thread

MINUTES = 1.0  # the suite's default run (``--minutes`` for the real figure)
BUDGET = 1200  # the venue's weight per minute per IP
FOLLOWER_KEY = "0x" + "5e" * 32
GOALS = {"HTTP 429 answers": ("<=", 0.0), "weight per minute, max": ("<", float(BUDGET))}


class VenueMeter:
    """What the venue's IP limiter was asked: (wall second since start, weight, allowed) per request."""

    def __init__(self, server: ExchangeServer) -> None:
        self.start = time.monotonic()
        self.calls: list[tuple[float, int, bool]] = []
        self._lock = threading.Lock()
        limiter = server.limiter
        spend: Callable[..., bool] = limiter.try_spend

        def counted(ip: str, weight: int, now: float | None = None) -> bool:
            ok = spend(ip, weight, now)
            with self._lock:
                self.calls.append((time.monotonic() - self.start, weight, ok))
            return ok

        limiter.try_spend = counted  # type: ignore[method-assign]

    def per_minute(self, minutes: int) -> list[int]:
        """Weight the venue accepted in each wall minute of the run."""
        out = [0] * max(1, minutes)
        with self._lock:
            for t, weight, ok in self.calls:
                if ok and int(t // 60) < len(out):
                    out[int(t // 60)] += weight
        return out

    @property
    def refused(self) -> int:
        with self._lock:
            return sum(1 for _, _, ok in self.calls if not ok)


@contextlib.contextmanager
def _by_type(counts: Counter[str]) -> Iterator[None]:
    """Count the weight the adapter asks for, per request type (``HyperliquidClient`` patched for the run)."""
    info, action = HyperliquidClient.info, HyperliquidClient.action

    async def counted_info(self: HyperliquidClient, payload: dict[str, Any]) -> Any:
        counts[str(payload.get("type"))] += info_base_weight(payload.get("type"))
        return await info(self, payload)

    async def counted_action(
        self: HyperliquidClient, act: dict[str, Any], n_orders: int = 0, **kw: Any
    ) -> Any:
        counts[f"exchange:{act.get('type')}"] += exchange_weight(n_orders)
        return await action(self, act, n_orders, **kw)

    HyperliquidClient.info = counted_info  # type: ignore[method-assign]
    HyperliquidClient.action = counted_action  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        HyperliquidClient.info = info  # type: ignore[method-assign]
        HyperliquidClient.action = action  # type: ignore[method-assign]


async def _fund(url: str, address: str, usd: str) -> None:
    body = {"user": address, "usd": usd}
    async with aiohttp.ClientSession() as http, http.post(f"{url}/sim/fund", json=body) as response:
        response.raise_for_status()


async def _copy(url: str, exchange: EmbeddedExchange, folder: Path, minutes: float, console: Console) -> Any:
    follower = Account.from_key(FOLLOWER_KEY).address.lower()
    await _fund(url, follower, "10000")
    picks = [p for p in pick_leaders(exchange.traders()) if p.style in ("swing", "scalper")]
    if len(picks) != 2:
        raise RuntimeError(f"expected a swing trader and a scalper among the simulated traders: {picks}")
    config = CopyConfig(
        follows=tuple(FollowSpec(p.address, p.settings, name=p.label) for p in picks), venue={}
    )
    venue_config = HyperliquidConfig(
        base_url=url, account_address=follower, secret_key=SecretStr(FOLLOWER_KEY), ip_weight_per_min=BUDGET
    )
    store_url = f"sqlite+aiosqlite:///{folder / 'copy.db'}"
    return await run_copy(
        config, venue_config, store_url, console, duration_s=minutes * 60, interactive=False
    )


def measure(minutes: float, out: Console | None = None) -> dict[str, Any]:
    """One run of ``minutes``; the figures (see the module docstring)."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    console = out or Console(file=io.StringIO(), width=160)
    exchange = EmbeddedExchange(seed=7, speed=1.0, simulated_traders=True)
    limits = ServerLimits(ip_weight_per_min=BUDGET, ws_max_users_per_ip=10)
    types: Counter[str] = Counter()
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_in_thread(exchange, limits) as (url, server),
        _by_type(types),
    ):
        meter = VenueMeter(server)
        report = asyncio.run(_copy(url, exchange, Path(tmp), minutes, console))
        elapsed_min = (time.monotonic() - meter.start) / 60
        full = max(1, int(minutes))
        per_minute = meter.per_minute(full)
        refused = meter.refused
    return {
        "minutes": elapsed_min,
        "per_minute": per_minute,
        "refused": refused,
        "by_type": dict(types.most_common()),
        "orders": getattr(report, "orders", None),
        "venue_stats": getattr(report, "venue", None),
        "report_venue": report.venue_text() if hasattr(report, "venue_text") else None,
    }


def run(minutes: float = MINUTES) -> list[tuple[str, float, str]]:
    figures = measure(minutes)
    per_minute = figures["per_minute"]
    rows: list[tuple[str, float, str]] = [
        ("weight per minute, max", max(per_minute), f"weight (budget {BUDGET}; {len(per_minute)} min)"),
        ("weight per minute, mean", sum(per_minute) / len(per_minute), "weight"),
        ("HTTP 429 answers", float(figures["refused"]), "requests refused by the venue"),
    ]
    stats = figures["venue_stats"]
    if stats is not None:
        rows += [
            ("adapter retries", float(stats.retries), "requests"),
            ("adapter give-ups", float(stats.give_ups), "requests"),
        ]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=MINUTES, help="wall minutes of copying")
    parser.add_argument("--show", action="store_true", help="print the copy run's own output too")
    args = parser.parse_args(argv)
    console = Console(width=160) if args.show else None
    figures = measure(args.minutes, console)
    print(f"ran {figures['minutes']:.1f} wall minutes; copy orders {figures['orders']}")
    print("weight accepted by the venue, per wall minute:", " ".join(str(w) for w in figures["per_minute"]))
    print(f"HTTP 429 answers: {figures['refused']}")
    stats = figures["venue_stats"]
    if stats is not None:
        print(f"adapter: {stats.text()}; weight in all {stats.weight_total}, waited {stats.waited_secs} s")
    if figures["report_venue"]:
        print(f"the copy report's line: {figures['report_venue']}")
    total = sum(figures["by_type"].values()) or 1
    print("weight asked by the adapter, by request type (whole run):")
    for kind, weight in figures["by_type"].items():
        print(f"  {kind:28s} {weight:7d}  {100 * weight / total:5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
