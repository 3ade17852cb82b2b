"""The faults issue 3 names, produced by the embedded exchange's switches, against the Hyperliquid
adapter: no lost fill, no duplicate order, and a log event that says what happened, in each case."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
import structlog
from support import Venue

from hyperfollow.adapters.hyperliquid.client import HyperliquidClient
from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.adapters.hyperliquid.nonce import NonceSource
from hyperfollow.adapters.hyperliquid.venue import HyperliquidVenue, connect
from hyperfollow.domain.ids import cloid_for
from hyperfollow.domain.model import AckStatus, Fill, OrderRequest, Side, Tif

Open = Callable[..., Awaitable[HyperliquidVenue]]


@pytest.fixture
async def open_venue(fresh_venue: Venue) -> AsyncIterator[Open]:
    """``await open_venue(name)``: a funded wallet trading through the adapter on a venue of its own."""
    opened: list[HyperliquidVenue] = []

    async def make(name: str, client_clock: Callable[[], int] | None = None, **kw: Any) -> HyperliquidVenue:
        trader = fresh_venue.trader(name)
        options: dict[str, Any] = {"backoff_base_secs": 0.01, "backoff_cap_secs": 0.05}
        options.update(kw)
        config = HyperliquidConfig(
            base_url=fresh_venue.url,
            account_address=trader.address,
            secret_key=trader.wallet.key.hex(),
            **options,
        )
        client = HyperliquidClient(config, nonces=NonceSource(client_clock)) if client_clock else None
        hl = await connect(config, client=client)
        opened.append(hl)
        return hl

    yield make
    for hl in opened:
        await hl.close()
    fresh_venue.server.faults.clear()


def resting(cloid_part: str, px: str = "2500") -> OrderRequest:
    return OrderRequest("ETH", Side.BUY, Decimal("0.02"), Decimal(px), cloid=cloid_for("faults", cloid_part))


async def cloids_open(hl: HyperliquidVenue) -> list[str | None]:
    return [o.cloid for o in await hl.account.open_orders()]


@pytest.mark.parametrize("applied", [True, False], ids=["order-placed", "order-lost"])
async def test_a_response_that_never_comes_is_resolved_by_cloid_never_blindly_resent(
    fresh_venue: Venue, open_venue: Open, applied: bool
) -> None:
    hl = await open_venue("hang", request_timeout_secs=0.5)
    fresh_venue.server.faults.add(
        {"type": "hang", "path": "/exchange", "count": 1, "apply": applied, "seconds": 2}
    )
    request = resting(f"hang-{applied}")
    with structlog.testing.capture_logs() as logs:
        ack = await hl.gateway.submit(request)
    assert ack.status is AckStatus.RESTING
    assert await cloids_open(hl) == [request.cloid]  # exactly one order, whichever way it went
    events = [e["event"] for e in logs]
    assert "venue.outcome_unknown" in events


async def test_429_bursts_are_retried_with_backoff_and_place_once(
    fresh_venue: Venue, open_venue: Open
) -> None:
    hl = await open_venue("burst")
    fresh_venue.server.faults.add({"type": "httpStatus", "path": "/exchange", "status": 429, "count": 3})
    with structlog.testing.capture_logs() as logs:
        ack = await hl.gateway.submit(resting("burst"))
    assert ack.status is AckStatus.RESTING
    assert await cloids_open(hl) == [cloid_for("faults", "burst")]
    assert [e["attempt"] for e in logs if e["event"] == "venue.retry"] == [1, 2, 3]


async def test_malformed_json_before_the_venue_acted_places_once(
    fresh_venue: Venue, open_venue: Open
) -> None:
    hl = await open_venue("garbled")
    fresh_venue.server.faults.add({"type": "malformed", "path": "/exchange", "count": 1, "apply": False})
    with structlog.testing.capture_logs() as logs:
        ack = await hl.gateway.submit(resting("garbled"))
    assert ack.status is AckStatus.RESTING
    assert await cloids_open(hl) == [cloid_for("faults", "garbled")]
    assert any(e["event"] == "venue.outcome_unknown" for e in logs)


async def test_a_5xx_on_info_is_retried(fresh_venue: Venue, open_venue: Open) -> None:
    hl = await open_venue("info-5xx")
    fresh_venue.server.faults.add({"type": "httpStatus", "path": "/info", "status": 500, "count": 2})
    with structlog.testing.capture_logs() as logs:
        snap = await hl.account.snapshot()
    assert snap.equity == Decimal(10000)
    assert sum(e["event"] == "venue.retry" for e in logs) == 2


async def _collect(hl: HyperliquidVenue, into: list[Fill]) -> None:
    async for fill in hl.account.stream_fills():
        into.append(fill)


async def _until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("abrupt", [True, False], ids=["network-dies", "server-closes"])
async def test_ws_dropped_mid_stream_loses_no_fill_and_doubles_none(
    fresh_venue: Venue, open_venue: Open, abrupt: bool
) -> None:
    hl = await open_venue("drop")
    got: list[Fill] = []
    task = asyncio.create_task(_collect(hl, got))
    try:
        await asyncio.sleep(0.2)
        buy = OrderRequest("ETH", Side.BUY, Decimal("0.02"), Decimal(fresh_venue.mid("ETH") * 1.05), Tif.IOC)
        await hl.gateway.submit(buy)
        await _until(lambda: len(got) == 1, "the first fill")
        with structlog.testing.capture_logs() as logs:
            fresh_venue.server.drop_websockets(abrupt)
            for _ in range(3):  # while the stream is down
                await hl.gateway.submit(buy)
            venue_fills = await hl.account.fills_since(0)
            await _until(lambda: len(got) >= len(venue_fills), "the fills made while the socket was down")
            await asyncio.sleep(0.5)  # a duplicate would show up now
    finally:
        task.cancel()
    assert sorted(f.key for f in got) == sorted(f.key for f in venue_fills)
    assert len(got) == len(venue_fills) == 4
    events = {e["event"] for e in logs}
    assert "stream.disconnected" in events


async def test_venue_clock_jump_keeps_the_fill_stream_whole(fresh_venue: Venue, open_venue: Open) -> None:
    hl = await open_venue("venue-clock")
    got: list[Fill] = []
    task = asyncio.create_task(_collect(hl, got))
    try:
        await asyncio.sleep(0.2)
        buy = OrderRequest("ETH", Side.BUY, Decimal("0.02"), Decimal(fresh_venue.mid("ETH") * 1.05), Tif.IOC)
        await hl.gateway.submit(buy)
        before = fresh_venue.now()
        fresh_venue.server.faults.add({"type": "clockJump", "ms": 3_600_000})
        assert fresh_venue.now() >= before + 3_600_000
        await hl.gateway.submit(buy)
        await _until(lambda: len(got) == 2, "both fills")
    finally:
        task.cancel()
    assert got[1].time_ms - got[0].time_ms >= 3_600_000
    assert len({f.key for f in got}) == 2


async def test_our_clock_jumping_back_never_reuses_a_nonce(fresh_venue: Venue, open_venue: Open) -> None:
    wall = [fresh_venue.now()]  # a frozen clock: a raw wall-clock nonce would repeat at once
    hl = await open_venue("client-clock", client_clock=lambda: wall[0])
    with structlog.testing.capture_logs() as logs:
        await hl.gateway.submit(resting("clock-1"))
        wall[0] -= 10_000  # NTP steps our clock 10 s back ...
        await hl.gateway.submit(resting("clock-2", px="2400"))
        wall[0] += 10_000  # ... and forward again: the first nonce's millisecond comes round again
        await hl.gateway.submit(resting("clock-3", px="2300"))
    assert sorted(c or "" for c in await cloids_open(hl)) == sorted(
        cloid_for("faults", f"clock-{i}") for i in (1, 2, 3)
    )
    assert any(e["event"] == "nonce.clock_jump_back" for e in logs)
