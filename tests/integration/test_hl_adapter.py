"""The Hyperliquid adapter (REST and actions) against the embedded exchange over HTTP.

Each test trades for its own master account through an agent key the master approved with the
official SDK, as a deployment would (the vault test signs with the vault leader's own key).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from support import Trader, Venue

from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.adapters.hyperliquid.venue import HyperliquidVenue, connect
from hyperfollow.domain.errors import (
    MinNotional,
    OrderNotFound,
    OutcomeUnknown,
    PostOnlyWouldCross,
    ReduceOnlyWouldIncrease,
)
from hyperfollow.domain.model import AckStatus, CancelRequest, OrderAck, OrderRequest, Side, Tif

Connect = Callable[..., Awaitable[HyperliquidVenue]]
DEFAULT_OK = {"status": "ok", "response": {"type": "default"}}


@pytest.fixture
async def open_venue(venue: Venue) -> AsyncIterator[Connect]:
    """``await open_venue(master)`` -> an adapter trading for ``master`` through a fresh agent."""
    opened: list[HyperliquidVenue] = []

    async def make(
        master: Trader, *, agent: bool = True, vault: str | None = None, **kw: Any
    ) -> HyperliquidVenue:
        if agent:
            result, key = master.exchange.approve_agent()
            assert result == DEFAULT_OK
        else:
            key = master.wallet.key.hex()
        options: dict[str, Any] = {"backoff_base_secs": 0.01, "backoff_cap_secs": 0.05}
        options.update(kw)
        config = HyperliquidConfig(
            base_url=venue.url, account_address=master.address, secret_key=key, vault_address=vault, **options
        )
        conn = await connect(config)
        opened.append(conn)
        return conn

    yield make
    for conn in opened:
        await conn.close()
    venue.server.faults.clear()  # a failed fault test must not leave faults behind for the module


async def _mid(hl: HyperliquidVenue, coin: str) -> Decimal:
    return (await hl.market.mids())[coin]


def order(coin: str, side: Side, size: str, price: Decimal | str, **kw: Any) -> OrderRequest:
    return OrderRequest(coin, side, Decimal(size), Decimal(price), **kw)


async def test_agent_limit_rests_then_cancels(venue: Venue, open_venue: Connect) -> None:
    master = venue.trader("hl-adapter-rest")
    hl = await open_venue(master)
    assert hl.client.signer_address != master.user  # an agent signs, the master's account trades
    assert hl.account.address == master.user

    mid = await _mid(hl, "ETH")
    ack = await hl.gateway.submit(order("ETH", Side.BUY, "0.0123456", mid * Decimal("0.9")))
    assert ack.status is AckStatus.RESTING
    assert ack.oid is not None
    assert ack.cloid is not None
    (open_order,) = await hl.account.open_orders()
    assert (open_order.oid, open_order.cloid, open_order.size) == (ack.oid, ack.cloid, Decimal("0.0123"))
    assert [o["oid"] for o in master.open_orders()] == [ack.oid]  # on the master's account

    await hl.gateway.cancel(CancelRequest("ETH", oid=ack.oid))
    assert await hl.account.open_orders() == []
    with pytest.raises(OrderNotFound):
        await hl.gateway.cancel(CancelRequest("ETH", oid=ack.oid))
    state = await hl.gateway.order_status(ack.oid)
    assert state is not None
    assert state.status == "canceled"


async def test_ioc_fills_with_average_price_and_shows_in_fills(venue: Venue, open_venue: Connect) -> None:
    master = venue.trader("hl-adapter-ioc")
    hl = await open_venue(master)
    start = venue.now()
    mid = await _mid(hl, "ETH")
    ack = await hl.gateway.submit(order("ETH", Side.BUY, "0.1", mid * Decimal("1.05"), tif=Tif.IOC))
    assert ack.status is AckStatus.FILLED
    assert ack.filled_size == Decimal("0.1")
    assert ack.avg_price is not None
    assert mid * Decimal("0.95") < ack.avg_price < mid * Decimal("1.05")

    snapshot = await hl.account.snapshot()
    position = snapshot.position("ETH")
    assert position is not None
    assert position.size == Decimal("0.1")
    fills = await hl.account.fills_since(start)
    assert fills
    assert sum(f.size for f in fills) == Decimal("0.1")
    assert {f.oid for f in fills} == {ack.oid}
    assert {f.cloid for f in fills} == {ack.cloid}
    assert all(f.address == master.user for f in fills)
    # the same through the leader feed (any public address), and nothing from a later start
    assert await hl.leaders.fills_since(master.address, start) == fills
    assert await hl.account.fills_since(fills[-1].time_ms + 1) == []
    leader_view = await hl.leaders.snapshot(master.address)
    assert leader_view.position("ETH") == position

    trades = await hl.market.recent_trades("ETH")
    assert any(t.time_ms == fills[-1].time_ms and t.price == fills[-1].price for t in trades)


async def test_venue_rejections_are_typed(venue: Venue, open_venue: Connect) -> None:
    master = venue.trader("hl-adapter-rejections")
    hl = await open_venue(master)
    book = await hl.market.l2_book("ETH")
    assert book.best_ask is not None
    assert book.best_bid is not None
    with pytest.raises(PostOnlyWouldCross):
        await hl.gateway.submit(order("ETH", Side.BUY, "0.01", book.best_ask * Decimal("1.01"), tif=Tif.ALO))
    with pytest.raises(ReduceOnlyWouldIncrease):  # no position: a reduce-only would open one
        await hl.gateway.submit(order("ETH", Side.SELL, "0.01", book.best_bid, tif=Tif.IOC, reduce_only=True))
    with pytest.raises(MinNotional):
        await hl.gateway.submit(order("ETH", Side.BUY, "0.001", book.best_bid * Decimal("0.9")))
    assert await hl.account.open_orders() == []


async def test_batch_with_one_bad_order_keeps_the_good_ones(venue: Venue, open_venue: Connect) -> None:
    master = venue.trader("hl-adapter-batch")
    hl = await open_venue(master)
    mid = await _mid(hl, "ETH")
    low = mid * Decimal("0.8")
    results = await hl.gateway.submit_batch(
        [
            order("ETH", Side.BUY, "0.02", low),
            order("ETH", Side.BUY, "0.001", low),  # $2: under the $10 minimum
            order("ETH", Side.SELL, "0.02", mid * Decimal("1.2")),
        ]
    )
    good_first, bad, good_last = results
    assert isinstance(good_first, OrderAck)
    assert isinstance(bad, MinNotional)
    assert isinstance(good_last, OrderAck)
    assert {o.oid for o in await hl.account.open_orders()} == {good_first.oid, good_last.oid}
    errors = await hl.gateway.cancel_batch(
        [CancelRequest("ETH", oid=good_first.oid), CancelRequest("ETH", cloid=good_last.cloid)]
    )
    assert errors == [None, None]
    assert await hl.account.open_orders() == []


async def test_leverage_change_shows_in_snapshot(venue: Venue, open_venue: Connect) -> None:
    master = venue.trader("hl-adapter-leverage")
    hl = await open_venue(master)
    await hl.gateway.set_leverage("ETH", 7, cross=True)
    mid = await _mid(hl, "ETH")
    await hl.gateway.submit(order("ETH", Side.SELL, "0.2", mid * Decimal("0.95"), tif=Tif.IOC))
    position = (await hl.account.snapshot()).position("ETH")
    assert position is not None
    assert (position.size, position.leverage, position.is_cross) == (Decimal("-0.2"), 7, True)
    assert position.margin_used == position.position_value / 7
    assert await hl.account.positions() == [position]


async def test_hip3_order_isolated_with_margin(venue: Venue, open_venue: Connect) -> None:
    master = venue.trader("hl-adapter-hip3")
    hl = await open_venue(master)
    tsla = await hl.market.instrument("xyz:TSLA")
    assert (tsla.asset, tsla.dex, tsla.only_isolated) == (110000, "xyz", True)
    await hl.gateway.set_leverage("xyz:TSLA", 4, cross=False)
    mid = await _mid(hl, "xyz:TSLA")
    ack = await hl.gateway.submit(order("xyz:TSLA", Side.BUY, "1.5", mid * Decimal("1.05"), tif=Tif.IOC))
    assert ack.filled_size == Decimal("1.5")

    position = (await hl.account.snapshot()).position("xyz:TSLA")  # merged from the xyz dex
    assert position is not None
    assert (position.size, position.leverage, position.is_cross) == (Decimal("1.5"), 4, False)
    await hl.gateway.update_isolated_margin("xyz:TSLA", Decimal(10))
    after = (await hl.account.snapshot()).position("xyz:TSLA")
    assert after is not None
    assert (
        after.margin_used - position.margin_used
        == Decimal(10) + after.unrealized_pnl - position.unrealized_pnl
    )

    resting = await hl.gateway.submit(order("xyz:TSLA", Side.BUY, "1", mid * Decimal("0.9")))
    (open_order,) = await hl.account.open_orders()  # frontendOpenOrders of every dex
    assert (open_order.coin, open_order.oid) == ("xyz:TSLA", resting.oid)


async def test_order_status_by_cloid_and_modify(venue: Venue, open_venue: Connect) -> None:
    master = venue.trader("hl-adapter-status")
    hl = await open_venue(master)
    mid = await _mid(hl, "ETH")
    cloid = "0x" + "5a" * 16
    ack = await hl.gateway.submit(order("ETH", Side.BUY, "0.02", mid * Decimal("0.9"), cloid=cloid))
    assert ack.cloid == cloid
    state = await hl.gateway.order_status(cloid)
    assert state is not None
    assert (state.oid, state.status, state.cloid, state.size) == (ack.oid, "open", cloid, Decimal("0.02"))
    assert await hl.gateway.order_status("0x" + "00" * 16) is None

    modified = await hl.gateway.modify(cloid, order("ETH", Side.BUY, "0.03", mid * Decimal("0.85")))
    assert modified.status is AckStatus.RESTING
    assert modified.cloid == cloid
    state = await hl.gateway.order_status(cloid)
    assert state is not None
    assert (state.oid, state.size, state.status) == (modified.oid, Decimal("0.03"), "open")


async def test_vault_order_is_queried_by_the_vault(venue: Venue, open_venue: Connect) -> None:
    leader = venue.trader("hl-adapter-vault-leader")
    vault = venue.create_vault(leader.address, "20000")
    hl = await open_venue(leader, agent=False, vault=vault)
    assert hl.account.address == vault.lower()
    mid = await _mid(hl, "ETH")
    ack = await hl.gateway.submit(order("ETH", Side.SELL, "0.05", mid * Decimal("1.1")))
    assert [o.oid for o in await hl.account.open_orders()] == [ack.oid]
    assert leader.open_orders() == []  # not on the leader's own account
    state = await hl.gateway.order_status(ack.oid)
    assert state is not None
    assert state.is_open
    snapshot = await hl.account.snapshot()
    assert snapshot.address == vault.lower()
    assert snapshot.equity == Decimal(20000)


async def test_market_reads(venue: Venue, open_venue: Connect) -> None:
    hl = await open_venue(venue.trader("hl-adapter-market"))
    instruments = {i.coin: i for i in await hl.market.instruments()}
    assert instruments["ETH"].asset == 1
    assert instruments["HYPE"].asset == 159
    assert instruments["xyz:TSLA"].asset == 110000
    assert "PURR/USDC" not in instruments
    assert not any(i.is_delisted for i in instruments.values())
    mids = await hl.market.mids()
    assert {"BTC", "ETH", "xyz:TSLA"} <= set(mids)
    assert not any("/" in c or c.startswith("@") for c in mids)
    book = await hl.market.l2_book("ETH")
    assert book.best_bid is not None
    assert book.best_ask is not None
    assert book.best_bid < mids["ETH"] < book.best_ask
    now = venue.now()
    candles = await hl.market.candles("ETH", "1m", now - 3_600_000, now)
    assert all(c.coin == "ETH" and c.interval == "1m" for c in candles)
    status = await hl.account.rate_limit()
    assert status.cap >= 10_000
    assert status.used >= 1  # the agent approval counted


async def test_streams_are_wired_to_the_supervisor(venue: Venue, open_venue: Connect) -> None:
    """Smoke test of the delegation only (the supervisor has its own tests): a fill of ours arrives."""
    master = venue.trader("hl-adapter-streams")
    hl = await open_venue(master)
    # since_ms=0 on this fresh account: exact. (With None, a fill the venue executes before our WS
    # subscription reaches it is part of the snapshot, i.e. "already there", and not delivered.)
    fills = hl.account.stream_fills(since_ms=0)
    try:
        mid = await _mid(hl, "ETH")
        ack = await hl.gateway.submit(order("ETH", Side.BUY, "0.05", mid * Decimal("1.05"), tif=Tif.IOC))
        fill = await asyncio.wait_for(anext(fills), timeout=10)
        assert (fill.address, fill.oid, fill.cloid) == (master.user, ack.oid, ack.cloid)
    finally:
        await fills.aclose()  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------ faults


def _faults(venue: Venue) -> Any:
    return venue.server.faults


async def test_garbled_answer_after_the_order_was_placed_is_resolved_by_lookup(
    venue: Venue, open_venue: Connect
) -> None:
    faults = _faults(venue)
    hl = await open_venue(venue.trader("hl-adapter-garbled"))
    mid = await _mid(hl, "ETH")
    faults.add({"type": "malformed", "path": "/exchange", "count": 1, "apply": True})
    ack = await hl.gateway.submit(order("ETH", Side.BUY, "0.02", mid * Decimal("0.9")))
    assert ack.status is AckStatus.RESTING
    assert [o.oid for o in await hl.account.open_orders()] == [ack.oid]  # placed once, not twice


async def test_lost_order_is_resent_once_and_transient_info_retried(
    venue: Venue, open_venue: Connect
) -> None:
    faults = _faults(venue)
    hl = await open_venue(venue.trader("hl-adapter-lost"))
    mid = await _mid(hl, "ETH")
    faults.add(
        {"type": "httpStatus", "path": "/exchange", "status": 502, "count": 1}
    )  # never reached the venue
    ack = await hl.gateway.submit(order("ETH", Side.BUY, "0.02", mid * Decimal("0.9")))
    (open_order,) = await hl.account.open_orders()
    assert (open_order.oid, open_order.cloid) == (ack.oid, ack.cloid)

    faults.add({"type": "httpStatus", "path": "/exchange", "status": 503, "count": 2})
    with pytest.raises(OutcomeUnknown) as info:
        await hl.gateway.submit(order("ETH", Side.BUY, "0.02", mid * Decimal("0.8")))
    assert len(info.value.cloids) == 1
    assert len(await hl.account.open_orders()) == 1  # two unknowns: nothing placed, no third try

    faults.add({"type": "httpStatus", "path": "/info", "status": 429, "count": 2})
    assert (await hl.market.mids())["ETH"] > 0  # retried past the 429s
