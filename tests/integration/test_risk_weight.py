"""The risk service's REST weight with the venue's limits on: ten minutes of a venue clock running 100x
(its loops scaled to match), over HTTP/WS through the Hyperliquid adapter against the embedded exchange.

The venue's IP limiter counts a "minute" of 0.6 wall seconds (the 100x clock's minute), so its 1,200 weight
a minute is the real budget at the real pace. The risk service watches a position (with its native stop)
and a resting order that goes stale; open orders must come from the order-update stream, not from a
``frontendOpenOrders`` poll every sweep (weight 20 per dex, two dexes: that poll alone is the budget)."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from typing import Any

import eth_account
from eth_utils.crypto import keccak
from pydantic import SecretStr

from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.adapters.hyperliquid.venue import connect
from hyperfollow.core.clock import LiveClock
from hyperfollow.domain.model import OrderRequest, Side, Tif
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.exchange.ratelimit import IpWeightLimiter
from hyperfollow.exchange.server import ServerLimits, running_in_thread
from hyperfollow.risk.exits import ExitPolicy
from hyperfollow.risk.service import RiskService, RiskSettings

SPEED = 100  # venue ms per wall ms
SIM_MINUTES = 10
WALL_MINUTE = 60 / SPEED


def _settings() -> RiskSettings:
    """The production periods, divided by the speed (wall-clock sleeps); ages are on the venue's clock."""
    return RiskSettings(
        scan_interval_secs=1 / SPEED, pending_check_secs=2 / SPEED, breaker_interval_secs=1 / SPEED,
        reconcile_interval_secs=60 / SPEED, deadman=False,
        default_policy=ExitPolicy(stop_loss_roe_pct=None, stop_loss_price_pct=Decimal(5)),
    )  # fmt: skip


async def test_ten_minutes_of_risk_stay_inside_the_ip_budget() -> None:
    account = eth_account.Account.from_key(keccak(text="hyperfollow-risk-weight"))
    address = str(account.address).lower()
    exchange = EmbeddedExchange(seed=7, speed=SPEED, simulated_traders=False)
    exchange.fund(address, "100000")
    with running_in_thread(exchange, ServerLimits(ip_weight_per_min=1200, ws_max_users_per_ip=10)) as (
        url,
        server,
    ):
        server.limiter = IpWeightLimiter(1200, window_s=WALL_MINUTE)  # the venue's minute, at 100x
        config = HyperliquidConfig(
            base_url=url, account_address=address, secret_key=SecretStr("0x" + bytes(account.key).hex()),
            ip_weight_per_min=1200 * SPEED,  # the client's own pacing out of the way: the venue judges
        )  # fmt: skip
        venue = await connect(config)
        by_type: Counter[str] = Counter()
        info = venue.client.info

        async def counted(payload: dict[str, Any]) -> Any:
            by_type[str(payload.get("type"))] += 1
            return await info(payload)

        venue.client.info = counted  # type: ignore[method-assign]
        mid = (await venue.market.mids())["ETH"]
        cap = (mid * Decimal("1.05")).quantize(Decimal(1))
        await venue.gateway.submit(OrderRequest("ETH", Side.BUY, Decimal("0.1"), cap, Tif.IOC))
        risk = RiskService(
            {address: venue}, clock=LiveClock(wall_ms=exchange.clock.now_ms), settings=_settings()
        )
        try:
            await risk.start()
            resting = await venue.gateway.submit(
                OrderRequest("ETH", Side.BUY, Decimal("0.1"), (mid * Decimal("0.8")).quantize(Decimal(1)))
            )
            before = dict(by_type)
            await asyncio.sleep(SIM_MINUTES * WALL_MINUTE)
            reads = by_type["frontendOpenOrders"] - before.get("frontendOpenOrders", 0)
            open_orders = await venue.account.open_orders()
        finally:
            await risk.close()
            await venue.close()
    # one REST read a (venue) minute at reconciliation, on two dexes, plus one to confirm the stale order
    # (and slack for a gap): about 2 reads a minute, against 60 when every 2 s sweep polled
    assert reads <= 3 * SIM_MINUTES, by_type
    stats = venue.client.limiter.stats  # every 429 the venue answered was retried or given up: counted
    assert stats.rate_limited == 0, stats
    assert stats.give_ups == 0, stats
    assert resting.oid not in {o.oid for o in open_orders}  # the stale order was still swept
    assert any(o.trigger_price is not None for o in open_orders)  # and the position keeps its stop
