"""Acceptance (issue 5, "Done when"): the risk service is SIGKILLed with an open position and the price
crosses the stop while it is down: the venue's native stop closes the position; the restarted service
restores its record from the store, reconciles it (swept flat, ``risk.swept`` in its log), and leaves no
stop order at the venue nor a holding in the store.

The service runs in a child process (``risk_child.py``: the real Hyperliquid adapter over HTTP/WS, the
store in a SQLite file) against an embedded exchange this test serves in real time (the market maker quotes
ETH around $3,000). The test opens the position through its own adapter on the same wallet.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from accept_support import Child, Operator, adapter, address, key_hex, operator, serve, wait_until, wallet

from hyperfollow.adapters.hyperliquid.venue import HyperliquidVenue
from hyperfollow.domain.model import OrderRequest, OrderState, Side, Tif
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.risk.stops import stop_cloid
from hyperfollow.store import Store

CHILD = Path(__file__).with_name("risk_child.py")
ENTRY = Decimal(3000)


async def spawn(url: str, db_url: str, account: str, key: str, log_path: Path) -> Child:
    quiet = asyncio.subprocess.DEVNULL
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), "--url", url, "--db", db_url, "--account", account,
        stdin=quiet, stdout=quiet, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HF_CHILD_KEY": key},  # the key never on a command line
    )  # fmt: skip
    child = Child(proc, log_path)
    child.reader = asyncio.create_task(child.read())
    await wait_until(lambda: child.events("child.ready") or proc.returncode is not None, "child.ready", 30)
    assert proc.returncode is None, f"the child died at start-up: see {log_path}"
    return child


async def triggers(venue: HyperliquidVenue) -> list[OrderState]:
    return [o for o in await venue.account.open_orders() if o.trigger_price is not None]


@dataclass
class World:
    url: str
    db_url: str
    tmp: Path
    account: str
    key: str
    op: Operator
    venue: HyperliquidVenue
    store: Store
    children: list[Child] = field(default_factory=list)

    async def spawn(self) -> Child:
        path = self.tmp / f"child-{len(self.children)}.log"
        child = await spawn(self.url, self.db_url, self.account, self.key, path)
        self.children.append(child)
        return child

    async def holdings(self) -> list[Any]:
        async with self.store.transaction() as tx:
            return await tx.holdings.all(self.account)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = wallet("risk-kill")
    exchange = EmbeddedExchange(seed=3, stepped=False, simulated_traders=False)  # real time, as the child
    exchange.set_price("ETH", ENTRY)
    exchange.fund(address(w), "100000")
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'risk.db'}"
    with serve(exchange) as (url, _server):
        async with operator(url) as op, adapter(url, w) as venue:
            store = Store.open(db_url)
            world = World(url, db_url, tmp_path, address(w), key_hex(w), op, venue, store)
            try:
                yield world
            finally:
                for child in world.children:
                    if child.proc.returncode is None:
                        await child.kill()
                await store.close()


async def test_killed_with_a_position_the_native_stop_closes_it_and_the_restart_sweeps(world: World) -> None:
    w, venue = world, world.venue
    first = await w.spawn()
    ack = await venue.gateway.submit(
        OrderRequest("ETH", Side.BUY, Decimal("0.5"), ENTRY * Decimal("1.05"), Tif.IOC)
    )
    assert ack.filled_size == Decimal("0.5")

    # the child saw our fill, placed its native stop (5 % below entry) and recorded the holding
    [stop] = await wait_until(lambda: triggers(venue), "the native stop at the venue")
    assert stop.cloid in {stop_cloid(w.account, "ETH", epoch) for epoch in range(4)}  # ours (the first stops)
    assert stop.reduce_only
    assert stop.side is Side.SELL
    assert stop.trigger_price is not None
    assert Decimal("2800") < stop.trigger_price < Decimal("2900")
    [record] = await wait_until(w.holdings, "the holding in the store")
    assert (record.coin, record.size) == ("ETH", Decimal("0.5"))

    await first.kill()
    await w.op.set_price("ETH", Decimal(2700))  # through the stop while nobody watches
    await wait_until(lambda: _flat(w), "the venue's trigger to close the position")
    fills = await w.op.fills(w.account)
    assert fills[-1]["cloid"] == stop.cloid  # the native stop closed it, not anything of ours
    assert await w.holdings() == [record]  # the store still says we hold it: the restart must sweep

    second = await w.spawn()
    [ready] = second.events("child.ready")
    assert ready["restored"] == ["ETH"]
    assert ready["held"] == 0
    swept = second.events("risk.swept")
    assert [(e["account"], e["coin"], e["record"]) for e in swept] == [(w.account, "ETH", "0.5")]
    assert await venue.account.open_orders() == []  # no stop left behind
    assert await w.holdings() == []  # the record is gone from the store
    assert not any(e.get("event") in ("risk.adopted", "risk.record_fixed") for e in second.lines)


async def _flat(w: World) -> bool:
    return "ETH" not in await w.op.positions(w.account)
