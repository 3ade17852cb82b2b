"""The risk service over SimVenue on a stepped embedded exchange (seed 7, no simulated traders, the market
maker quoting ETH around $3,000). The loops' periods are an hour so nothing runs by itself: each test drives
the one-shot coroutines (``scan_once``, ``cancel_stale_orders``, ``breaker_tick``, ``reconcile_once``); the
fill and mids streams are pumped by the service's tasks, given a few turns of the event loop (``settle``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import structlog
from structlog.testing import capture_logs

from hyperfollow.adapters.sim import SimVenue
from hyperfollow.core.clock import LiveClock
from hyperfollow.core.orders import OrderOwners, Owner
from hyperfollow.domain.model import OrderRequest, OrderState, Side, Tif
from hyperfollow.domain.rules import Rounding, quantize_price
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.risk.close import CloseStatus
from hyperfollow.risk.exits import ExitPolicy, ExitState, TakeProfitTier
from hyperfollow.risk.gate import RiskLimits, TradingState
from hyperfollow.risk.scan import Holding
from hyperfollow.risk.service import RiskService, RiskSettings
from hyperfollow.risk.stops import STOP_OWNER, stop_cloid

START_MS = 1_767_225_600_000
OURS = "0x" + "e1" * 20
HOUR = 3600.0
COPY_OWNER = Owner("copy", "0x" + "1e" * 20)
PRICE_STOP_5 = ExitPolicy(stop_loss_roe_pct=None, stop_loss_price_pct=Decimal(5))


def settings(policy: ExitPolicy = PRICE_STOP_5, **kw: object) -> RiskSettings:
    base: dict[str, object] = {
        "scan_interval_secs": HOUR, "pending_check_secs": HOUR, "breaker_interval_secs": HOUR,
        "reconcile_interval_secs": HOUR, "default_policy": policy, "deadman": False,
    }  # fmt: skip
    base.update(kw)
    return RiskSettings(**base)  # type: ignore[arg-type]


@pytest.fixture
async def venue() -> AsyncIterator[tuple[EmbeddedExchange, SimVenue]]:
    ex = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=START_MS)
    ex.set_price("ETH", Decimal(3000))
    ex.set_price("BTC", Decimal(90000))
    ex.fund(OURS, "100000")
    v = SimVenue(ex, OURS)
    yield ex, v
    await v.close()


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def started(ex: EmbeddedExchange, v: SimVenue, s: RiskSettings, **kw: object) -> RiskService:
    svc = RiskService({OURS: v}, clock=LiveClock(wall_ms=ex.clock.now_ms), settings=s, **kw)  # type: ignore[arg-type]
    await svc.start()
    return svc


async def trade(v: SimVenue, side: Side, size: str, *, reduce_only: bool = False) -> None:
    px = Decimal(4000) if side is Side.BUY else Decimal(2000)
    ack = await v.gateway.submit(
        OrderRequest("ETH", side, Decimal(size), px, Tif.IOC, reduce_only=reduce_only)
    )
    assert ack.filled_size == Decimal(size)
    await settle()


async def stops(v: SimVenue) -> list[OrderState]:
    return [o for o in await v.account.open_orders() if o.trigger_price is not None]


async def eth(v: SimVenue) -> Decimal:
    return next((p.size for p in await v.account.positions() if p.coin == "ETH"), Decimal(0))


# ---------------------------------------------------------------------- native stops


async def test_entry_gets_a_native_stop_resized_and_cancelled_when_flat(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    ex, v = venue
    svc = await started(ex, v, settings())
    try:
        await trade(v, Side.BUY, "0.1")
        await svc.scan_once()
        [stop] = await stops(v)
        held = svc.book.get(OURS, "ETH")
        assert held is not None
        inst = await v.market.instrument("ETH")
        assert stop.trigger_price == quantize_price(inst, held.entry_price * Decimal("0.95"), Rounding.UP)
        assert abs(stop.trigger_price - Decimal(2850)) < 5  # long 0.1 at ~3000, 5 % stop -> ~2850
        assert (stop.side, stop.size, stop.reduce_only) == (Side.SELL, Decimal("0.1"), True)
        assert stop.cloid == stop_cloid(OURS, "ETH", 0)

        await trade(v, Side.BUY, "0.1")  # the position grows: the stop follows
        await svc.scan_once()
        [stop] = await stops(v)
        assert stop.size == Decimal("0.2")

        await trade(v, Side.SELL, "0.2", reduce_only=True)
        await svc.scan_once()
        assert await stops(v) == []
        assert svc.stops.stop(OURS, "ETH") is None
    finally:
        await svc.close()


async def test_trailing_stop_moves_the_native_stop_up_but_not_for_a_tiny_step(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    ex, v = venue
    policy = ExitPolicy(
        stop_loss_roe_pct=None,
        stop_loss_price_pct=Decimal(5),
        trailing_retrace_pct=Decimal(5),
        trailing_activation_pct=Decimal(2),
    )
    svc = await started(ex, v, settings(policy))
    try:
        await trade(v, Side.BUY, "0.1")
        await svc.scan_once()
        [first] = await stops(v)
        await v.set_price("ETH", Decimal(3200))  # trailing active; 5 % under 3200 = 3040
        await settle()
        await svc.scan_once()
        [moved] = await stops(v)
        assert moved.trigger_price is not None
        assert first.trigger_price is not None
        assert moved.trigger_price > first.trigger_price
        assert abs(moved.trigger_price - Decimal(3040)) < 2
        actions = svc.stops.actions_sent
        await v.set_price("ETH", Decimal(3205))  # the watermark ratchets 0.16 %: not worth an action
        await settle()
        await svc.scan_once()
        [same] = await stops(v)
        assert same.trigger_price == moved.trigger_price
        assert svc.stops.actions_sent == actions
        held = svc.book.get(OURS, "ETH")
        assert held is not None
        assert held.state.watermark == Decimal(3205)
    finally:
        await svc.close()


# ---------------------------------------------------------------------- the scan


async def test_scan_closes_at_the_hard_stop_with_one_reduce_only_order(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    ex, v = venue
    svc = await started(ex, v, settings(native_stops=False))  # only the scan can close it here
    try:
        await trade(v, Side.BUY, "0.1")
        await v.set_price("ETH", Decimal(2800))
        await settle()
        [result] = await svc.scan_once()
        assert (result.status, result.reason, result.requested) == (
            CloseStatus.CLOSED, "stop_loss", Decimal("0.1"),
        )  # fmt: skip
        assert await eth(v) == 0
        await settle()
        assert svc.book.get(OURS, "ETH") is None  # our close's fill reached the book
        assert await svc.scan_once() == []
        fills = await v.account.fills_since(START_MS)
        assert [f.direction for f in fills] == ["Open Long", "Close Long"]
    finally:
        await svc.close()


async def test_a_take_profit_tier_fires_once(venue: tuple[EmbeddedExchange, SimVenue]) -> None:
    ex, v = venue
    await v.gateway.set_leverage("ETH", 5, cross=True)
    policy = ExitPolicy(take_profit_tiers=(TakeProfitTier(Decimal(20), Decimal("0.3")),))
    svc = await started(ex, v, settings(policy))
    try:
        await trade(v, Side.BUY, "1")
        await v.set_price("ETH", Decimal(3150))  # +5 % x 5 = +25 % ROE
        await settle()
        [result] = await svc.scan_once()
        assert (result.reason, result.status, result.filled) == (
            "take_profit",
            CloseStatus.CLOSED,
            Decimal("0.3"),
        )
        await settle()
        assert await svc.scan_once() == []
        await v.set_price("ETH", Decimal(3160))
        await settle()
        assert await svc.scan_once() == []
        assert await eth(v) == Decimal("0.7")
        [stop] = await stops(v)
        assert stop.size == Decimal("0.7")  # the native stop follows the partial close
    finally:
        await svc.close()


# ---------------------------------------------------------------------- stale pending orders


async def test_a_stale_pending_order_is_cancelled_after_5_s(venue: tuple[EmbeddedExchange, SimVenue]) -> None:
    ex, v = venue
    svc = await started(ex, v, settings())
    try:
        await trade(v, Side.BUY, "0.1")
        await svc.scan_once()  # a native stop: never "stale"
        old = await v.gateway.submit(OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(2800)))
        await v.step(3_000)
        young = await v.gateway.submit(OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(2790)))
        await v.step(2_500)
        await settle()  # the order updates reach the service's book
        assert await svc.cancel_stale_orders() == [old.oid]
        left = await v.account.open_orders()
        assert {o.oid for o in left if o.trigger_price is None} == {young.oid}
        assert len(await stops(v)) == 1
    finally:
        await svc.close()


# ---------------------------------------------------------------------- breakers


@pytest.mark.parametrize("flatten", [True, False])
async def test_kill_switch_halts_and_flattens_when_set(
    venue: tuple[EmbeddedExchange, SimVenue], flatten: bool
) -> None:
    ex, v = venue
    persisted: list[str] = []
    svc = await started(
        ex, v, settings(limits=RiskLimits(flatten_on_halt=flatten)),
        on_state_change=lambda account, change: persisted.append(change.to_state.value),
    )  # fmt: skip
    try:
        await trade(v, Side.BUY, "0.1")
        assert await svc.breaker_tick() == []
        svc.set_kill_switch(True)
        with capture_logs() as logs:
            [change] = await svc.breaker_tick()
        assert (change.to_state, change.flatten) == (TradingState.HALTED, flatten)
        assert svc.state[OURS] is TradingState.HALTED
        assert persisted == ["halted"]
        assert any(e["event"] == "risk.state_change" for e in logs)
        assert await eth(v) == (0 if flatten else Decimal("0.1"))
        if flatten:
            assert any(e["event"] == "risk.close" and e["reason"] == "kill_switch" for e in logs)
    finally:
        await svc.close()


# ---------------------------------------------------------------------- reconciliation


async def test_reconcile_adopts_an_unknown_position_sweeps_a_flat_record_and_cancels_orphans(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    ex, v = venue
    await trade(v, Side.BUY, "0.1")  # opened before the service ran: unknown to it
    copy_order = "0x" + "c0" * 16
    await v.gateway.submit(OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(2700), cloid=copy_order))
    stranger = await v.gateway.submit(OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(2710)))
    ghost = Holding(
        OURS, "BTC", Decimal("0.01"), Decimal(90000), Decimal(10), ExitPolicy(), ExitState(START_MS)
    )
    with capture_logs() as logs:
        svc = await started(ex, v, settings(deadman=True), restore=[ghost],
                            owners=OrderOwners([(copy_order, COPY_OWNER)]))  # fmt: skip
    try:
        events = [e["event"] for e in logs]
        assert "risk.adopted" in events
        assert "risk.swept" in events
        assert "risk.orphan_cancelled" in events
        held = svc.book.get(OURS, "ETH")
        assert held is not None
        assert held.size == Decimal("0.1")
        assert held.policy == PRICE_STOP_5  # the default policy
        assert svc.book.get(OURS, "BTC") is None
        open_ = await v.account.open_orders()
        assert copy_order in {o.cloid for o in open_}  # the copy engine's: kept
        assert stranger.oid not in {o.oid for o in open_}
        [stop] = await stops(v)  # the adopted position is protected at once
        assert stop.size == Decimal("0.1")
        assert svc.healthy()
    finally:
        await svc.close()


async def test_killed_with_a_stop_the_venue_closes_and_the_restart_sweeps(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    ex, v = venue
    first = await started(ex, v, settings())
    await trade(v, Side.BUY, "0.1")
    await first.scan_once()
    [stop] = await stops(v)
    record = first.book.get(OURS, "ETH")
    assert record is not None
    await first.stop_tasks()  # killed: no cleanup, the stop stays on the venue

    await v.set_price("ETH", Decimal(2800))  # crosses ~2850 while nobody watches
    await v.step(1_000)
    assert await eth(v) == 0  # the venue's trigger closed it
    fills = await v.account.fills_since(START_MS)
    assert fills[-1].cloid == stop.cloid

    with capture_logs() as logs:
        second = await started(ex, v, settings(), restore=[record])
    try:
        assert any(e["event"] == "risk.swept" and e["coin"] == "ETH" for e in logs)
        assert second.book.get(OURS, "ETH") is None
        assert await v.account.open_orders() == []
        assert second.stops.stop(OURS, "ETH") is None
    finally:
        await second.close()


async def test_a_stream_gap_triggers_a_reconcile(venue: tuple[EmbeddedExchange, SimVenue]) -> None:
    ex, v = venue
    svc = await started(ex, v, settings())
    try:
        with structlog.testing.capture_logs() as logs:
            await v.force_reconnect()
            for _ in range(5):
                await settle()
        assert any(e["event"] == "risk.reconcile_after_gap" for e in logs)
    finally:
        await svc.close()


# ---------------------------------------------------------------------- ownership, supervision, weight


async def test_an_owned_resting_order_is_never_swept_an_unowned_one_is(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    ex, v = venue
    maker = "0x" + "5a" * 16  # the copy engine's post-only order, resting under its own watchdog
    owners = OrderOwners()
    owners.claim(maker.upper().replace("0X", "0x"), COPY_OWNER)  # the venue's spelling may differ in case
    svc = await started(ex, v, settings(), owners=owners)
    try:
        owned = await v.gateway.submit(
            OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(2800), cloid=maker)
        )
        stranger = await v.gateway.submit(OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(2790)))
        await v.step(60_000)  # far beyond the sweep's 5 s
        await settle()
        assert await svc.cancel_stale_orders() == [stranger.oid]
        [kept] = await v.account.open_orders()
        assert kept.oid == owned.oid
        assert svc.owner_of(kept) == COPY_OWNER  # whose it is, for a UI
        await svc.reconcile_once()  # nor is it an orphan
        assert [o.oid for o in await v.account.open_orders()] == [owned.oid]
    finally:
        await svc.close()


async def test_an_order_its_owner_released_is_swept_like_any_other(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    ex, v = venue
    maker = "0x" + "5b" * 16
    owners = OrderOwners([(maker, COPY_OWNER)])
    svc = await started(ex, v, settings(), owners=owners)
    try:
        order = await v.gateway.submit(
            OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(2800), cloid=maker)
        )
        await v.step(60_000)
        await settle()
        assert await svc.cancel_stale_orders() == []
        assert owners.release(maker, Owner("copy", "someone else")) is None  # only its owner lets it go
        assert await svc.cancel_stale_orders() == []
        assert owners.release(maker) == COPY_OWNER  # the copy engine is done with it (its watchdog died)
        assert await svc.cancel_stale_orders() == [order.oid]
        assert await v.account.open_orders() == []
    finally:
        await svc.close()


async def test_the_risk_services_own_stops_are_owned_by_risk_in_the_shared_registry(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    ex, v = venue
    owners = OrderOwners()
    svc = await started(ex, v, settings(), owners=owners)
    try:
        await trade(v, Side.BUY, "0.1")
        await svc.scan_once()
        [first] = await stops(v)
        assert owners.owner_of(first.cloid) == STOP_OWNER
        assert svc.owner_of(first) == Owner("risk", "stop")
        await trade(v, Side.BUY, "0.1")  # resized: the stop moves to a new cloid
        await svc.scan_once()
        [second] = await stops(v)
        assert second.cloid != first.cloid
        assert owners.cloids("risk") == {second.cloid}  # the old one released
        await v.step(60_000)
        await settle()
        await svc.cancel_stale_orders()  # a trigger order, and ours: left alone
        await svc.reconcile_once()  # nor an orphan
        assert [o.cloid for o in await stops(v)] == [second.cloid]
        await trade(v, Side.SELL, "0.2", reduce_only=True)  # flat: the stop is cancelled and released
        await svc.scan_once()
        assert await stops(v) == []
        assert len(owners) == 0
    finally:
        await svc.close()


async def test_after_a_restart_the_stops_recognised_on_the_venue_are_owned_by_risk(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    ex, v = venue
    first = await started(ex, v, settings())
    await trade(v, Side.BUY, "0.1")
    await first.scan_once()
    [stop] = await stops(v)
    record = first.book.get(OURS, "ETH")
    assert record is not None
    await first.stop_tasks()  # killed: the stop stays on the venue
    owners = OrderOwners()  # the new process's registry starts empty
    second = await started(ex, v, settings(), restore=[record], owners=owners)
    try:
        assert owners.owner_of(stop.cloid) == STOP_OWNER  # adopted at the start-up reconcile
        assert [o.cloid for o in await stops(v)] == [stop.cloid]
    finally:
        await second.close()


async def test_the_sweep_reads_open_orders_from_the_stream_not_over_rest(
    venue: tuple[EmbeddedExchange, SimVenue],
) -> None:
    ex, v = venue
    svc = await started(ex, v, settings())
    reads = 0
    read = v.account.open_orders

    async def counted() -> list[OrderState]:
        nonlocal reads
        reads += 1
        return await read()

    v.account.open_orders = counted  # type: ignore[method-assign]
    try:
        await trade(v, Side.BUY, "0.1")
        await svc.scan_once()  # a native stop rests
        young = await v.gateway.submit(OrderRequest("ETH", Side.BUY, Decimal("0.1"), Decimal(2800)))
        for _ in range(30):  # a minute of sweeps every 2 s
            await v.step(100)
            await settle()
            assert await svc.cancel_stale_orders() == []
        assert reads == 0  # frontendOpenOrders weighs 20 per dex: none spent
        await v.step(6_000)
        await settle()
        assert await svc.cancel_stale_orders() == [young.oid]  # now stale: confirmed once, then cancelled
        assert reads == 1
        assert len(await stops(v)) == 1
    finally:
        await svc.close()


async def test_a_failing_store_never_stops_the_breakers(venue: tuple[EmbeddedExchange, SimVenue]) -> None:
    ex, v = venue
    saved: list[str] = []
    health_at_call: list[set[str]] = []  # what the service said was wrong, at each persistence call
    svc: RiskService | None = None

    async def flaky_store(account: str, change: object) -> None:
        assert svc is not None
        health_at_call.append(set(svc.health()))
        if len(health_at_call) == 1:
            raise OSError("database is locked")
        saved.append(getattr(change, "to_state").value)  # noqa: B009

    svc = await started(
        ex, v, settings(breaker_interval_secs=0.01, limits=RiskLimits(flatten_on_halt=True)),
        on_state_change=flaky_store,
    )  # fmt: skip
    try:
        await trade(v, Side.BUY, "0.1")
        with capture_logs() as logs:
            svc.set_kill_switch(True)
            for _ in range(500):
                await asyncio.sleep(0.01)
                if saved:
                    break
        assert await eth(v) == 0  # flattened although the store failed
        assert saved == ["halted"]  # persisted at the next tick
        assert "breakers" in health_at_call[1]  # unhealthy while the breaker loop was failing
        failed = [e for e in logs if e["event"] == "risk.loop_failed"]
        assert [(e["loop"], e["log_level"]) for e in failed] == [("breakers", "error")]
        assert "database is locked" in failed[0]["error"]
        assert svc.healthy()  # recovered
        assert svc.state[OURS] is TradingState.HALTED
    finally:
        await svc.close()
