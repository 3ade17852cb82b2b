"""Exactly-once close over HTTP against the embedded exchange's faults: a close whose answer never comes
(the order placed, or lost) is resolved by its cloid and never doubled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import structlog
from support import Venue

from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.adapters.hyperliquid.venue import HyperliquidVenue, connect
from hyperfollow.core.clock import LiveClock
from hyperfollow.domain.model import OrderRequest, Side, Tif
from hyperfollow.risk.close import CloseSettings, ExactlyOnceCloser
from hyperfollow.risk.locks import LocalCloseLock


@pytest.fixture
async def trader(fresh_venue: Venue) -> AsyncIterator[HyperliquidVenue]:
    wallet = fresh_venue.trader("risk-close-fault").wallet
    config = HyperliquidConfig(
        base_url=fresh_venue.url,
        account_address=wallet.address,
        secret_key=wallet.key.hex(),
        request_timeout_secs=0.5,
        backoff_base_secs=0.01,
        backoff_cap_secs=0.05,
    )
    hl = await connect(config)
    yield hl
    await hl.close()
    fresh_venue.server.faults.clear()


@pytest.mark.parametrize("applied", [True, False], ids=["close-placed", "close-lost"])
async def test_a_close_whose_answer_never_comes_is_one_order(
    fresh_venue: Venue, trader: HyperliquidVenue, applied: bool
) -> None:
    mid = Decimal(str(fresh_venue.mid("ETH")))
    await trader.gateway.submit(OrderRequest("ETH", Side.BUY, Decimal("0.1"), mid * Decimal("1.05"), Tif.IOC))
    address = trader.account.address
    closer = ExactlyOnceCloser(
        {address: trader},
        LocalCloseLock(clock=LiveClock()),
        CloseSettings(resolve_pause_secs=0.05),
        clock=LiveClock(),
    )
    fresh_venue.server.faults.add(
        {"type": "hang", "path": "/exchange", "count": 1, "apply": applied, "seconds": 2}
    )
    with structlog.testing.capture_logs() as logs:
        result = await closer.close(address, "ETH", "stop_loss")
    assert result.ok, result
    assert (await trader.account.snapshot()).position("ETH") is None  # flat
    closes = [f for f in await trader.account.fills_since(0) if f.side is Side.SELL]
    assert len({f.oid for f in closes}) == 1  # one close order, whatever happened to the first answer
    assert sum(f.size for f in closes) == Decimal("0.1")
    assert any(e["event"] == "venue.outcome_unknown" for e in logs)
    assert any(e["event"] == "risk.close" for e in logs)
