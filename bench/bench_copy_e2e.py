"""Copy trading end to end through the embedded exchange: a leader's fill on the wire to our copy acked.

A real-time ``EmbeddedExchange`` (speed 1, no simulated traders; its market maker quotes ETH) is served by
``running_in_thread`` on a free 127.0.0.1 port (IP limits off). The leader and the follower each talk to it
through our Hyperliquid adapter over HTTP/WS, as they would to the venue. The follower runs ``CopyService``
(mirror, equity ratio 1:1, taker IOC with a 0.5 % cap) with its journal on a SQLite file (WAL) in a temporary
folder: every copy is journalled before it is sent, as in production.

The leader places ``ORDERS`` crossing IOC orders of 0.01 ETH (alternately buy and sell, so positions
stay small), one every ``GAP_S`` seconds. For each copy the service reports ``process_ms``: from the
leader's fill arriving in the process (WS ``userFills`` frame decoded) to our order's ack (the HTTP answer
parsed): decision, leverage check, journal transaction (SQLite commit), signing, the round trip. Also
shown: the wall time from the leader's own order ack to our copy's ack (includes the venue's WS push).
Median of the per-run p50s over
``REPEATS`` runs; p99 of all copies.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import structlog
from eth_account import Account
from pydantic import SecretStr

from bench._stats import median, percentile
from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.adapters.hyperliquid.venue import HyperliquidVenue, connect
from hyperfollow.copy.model import FollowSettings
from hyperfollow.copy.service import CopyService, ServiceConfig
from hyperfollow.copy.state import CopyEvent, EventKind
from hyperfollow.core.clock import LiveClock
from hyperfollow.domain.model import OrderRequest, Side, Tif
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.exchange.server import ServerLimits, running_in_thread
from hyperfollow.store import Store, migrate_async
from hyperfollow.store.copy_journal import StoreCopyJournal

ORDERS = 60
GAP_S = 0.05
WARMUP = 5
REPEATS = 3
LEADER_KEY = "0x" + hashlib.sha256(b"hyperfollow e2e leader").hexdigest()
FOLLOWER_KEY = "0x" + hashlib.sha256(b"hyperfollow e2e follower").hexdigest()

GOALS = {"leader WS fill -> copy acked, p50": ("<", 10.0)}


async def _venue(url: str, key: str) -> HyperliquidVenue:
    address = Account.from_key(key).address
    config = HyperliquidConfig(
        base_url=url, account_address=address, secret_key=SecretStr(key), ip_weight_per_min=10**9
    )
    return await connect(config)


async def _run_once(folder: Path) -> tuple[list[float], list[float]]:
    exchange = EmbeddedExchange(seed=11, simulated_traders=False, address_budget=None)
    exchange.set_price("ETH", Decimal(3000))
    for key in (LEADER_KEY, FOLLOWER_KEY):
        exchange.fund(Account.from_key(key).address, "100000")
    url_db = f"sqlite+aiosqlite:///{folder / 'e2e.db'}"
    await migrate_async(url_db)
    store = Store.open(url_db)
    limits = ServerLimits(ip_weight_per_min=None, ws_max_users_per_ip=None)
    process: list[float] = []
    wall: list[float] = []
    with running_in_thread(exchange, limits) as (url, _server):
        leader, follower = await _venue(url, LEADER_KEY), await _venue(url, FOLLOWER_KEY)
        service = CopyService(
            {follower.account.address: follower},
            StoreCopyJournal(store),
            config=ServiceConfig(delta_loop=False),
            clock=LiveClock(),
        )
        acked: dict[str, float] = {}
        done = asyncio.Event()
        copies: list[CopyEvent] = []

        def on_event(event: CopyEvent) -> None:
            if event.kind in (EventKind.FILLED, EventKind.PARTIAL, EventKind.UNFILLED):
                acked[event.fill_key] = time.perf_counter()
                copies.append(event)
                if len(copies) >= ORDERS:
                    done.set()

        service.on_event(on_event)
        try:
            await service.start()
            settings = FollowSettings(slippage_cap_pct=Decimal("0.5"), drift_guard_pct=Decimal(5))
            await service.follow(follower.account.address, leader.account.address, settings)
            await asyncio.sleep(0.5)  # streams subscribed
            sent: dict[int, float] = {}
            for i in range(ORDERS):
                side = Side.BUY if i % 2 == 0 else Side.SELL
                px = Decimal(3030) if side is Side.BUY else Decimal(2970)
                ack = await leader.gateway.submit(OrderRequest("ETH", side, Decimal("0.01"), px, Tif.IOC))
                if ack.oid is not None:
                    sent[ack.oid] = time.perf_counter()
                await asyncio.sleep(GAP_S)
            await asyncio.wait_for(done.wait(), timeout=30)
            fills = {f.ref: f.oid for f in await leader.account.fills_since(0)}
            for event in copies[WARMUP:]:
                if event.process_ms is not None:
                    process.append(event.process_ms)
                oid = fills.get(event.fill_key)
                if oid in sent and event.fill_key in acked:
                    wall.append(1000 * (acked[event.fill_key] - sent[oid]))
        finally:
            await service.close()
            await leader.close()
            await follower.close()
            await store.engine.dispose()
    return process, wall


def run() -> list[tuple[str, float, str]]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    p50s, wall50s, all_process, all_wall = [], [], [], []
    for _ in range(REPEATS):
        with tempfile.TemporaryDirectory() as folder:
            process, wall = asyncio.run(_run_once(Path(folder)))
        if not process:
            raise RuntimeError("no copy was acked")
        p50s.append(percentile(process, 50))
        all_process += process
        if wall:
            wall50s.append(percentile(wall, 50))
            all_wall += wall
    return [
        ("leader WS fill -> copy acked, p50", median(p50s), f"ms ({len(all_process)} copies)"),
        ("leader WS fill -> copy acked, p99", percentile(all_process, 99), "ms"),
        ("leader order acked -> copy acked, p50", median(wall50s) if wall50s else float("nan"), "ms (wall)"),
        (
            "leader order acked -> copy acked, p99",
            percentile(all_wall, 99) if all_wall else float("nan"),
            "ms",
        ),
    ]


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:45s} {value:10.2f} {unit}")
