"""``hyperfollow copy --paper``: the same follows, copy engine and risk layer as a live run, on a simulated
account (``adapters.paper``) that follows the real venue's market and is kept in the store.

Wiring only. The real venue is opened read-only (``connect_public``: a keyless client with no way to post
to ``/exchange``), so no key, no ``--live`` and no account approval are needed, and nothing can be sent to
it. The simulated account's address is derived from the configured account (``paper_address``), never the
account itself: paper follows and live follows in one store never mix.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import structlog
from rich.console import Console

from hyperfollow.adapters.hyperliquid.budget import WeightLimiter
from hyperfollow.adapters.hyperliquid.config import EndpointConfig
from hyperfollow.adapters.hyperliquid.public import PublicVenue, connect_public
from hyperfollow.adapters.paper import MODELS, PaperVenue, paper_address
from hyperfollow.adapters.paper.account import PaperSession
from hyperfollow.adapters.paper.engine import PaperEngine
from hyperfollow.adapters.paper.venue import universe_of
from hyperfollow.app.copy_run import copy_follows
from hyperfollow.app.follow_config import CopyConfig
from hyperfollow.app.report import CopyReport
from hyperfollow.copy.service import ServiceConfig
from hyperfollow.core.clock import LiveClock
from hyperfollow.store.paper import StorePaperLedger
from hyperfollow.store.unit import Store

log = structlog.get_logger(__name__)

DEFAULT_START_USD = Decimal(10_000)


async def open_paper_venue(
    public: PublicVenue,
    store: Store,
    address: str,
    *,
    start_usd: Decimal = DEFAULT_START_USD,
    clock: Callable[[], int] | None = None,
) -> tuple[PaperVenue, bool]:
    """The simulated account ``address`` on ``public``'s market, opened or resumed from ``store``; the
    venue and whether it was resumed. Closing the venue saves the account; ``public`` is closed with it."""
    client = public.client
    try:
        perp_dexs = await client.info({"type": "perpDexs"}) or [None]
        names = [""] + [str(d["name"]) for d in perp_dexs[1:] if d]
        metas = {name: await client.info({"type": "meta", "dex": name}) for name in names}
    except BaseException:
        await public.close()
        raise
    engine = PaperEngine(universe_of(perp_dexs, metas), clock or LiveClock().now_ms)
    session = PaperSession(engine, address, StorePaperLedger(store))
    venue = PaperVenue(session, public.market, public.leaders, events=public.events, on_close=public.close)
    try:
        resumed = await venue.start(start_usd)
    except BaseException:
        await venue.close()
        raise
    return venue, resumed


async def run_paper(
    config: CopyConfig,
    endpoint: EndpointConfig,
    store_url: str,
    console: Console,
    *,
    account_name: str = "default",
    start_usd: Decimal = DEFAULT_START_USD,
    duration_s: float | None = None,
    interactive: bool | None = None,
    clock: Callable[[], int] | None = None,
    service_config: ServiceConfig | None = None,
) -> CopyReport:
    """Copy ``config``'s leaders on paper until Ctrl-C or ``duration_s``, then report (see the module
    docstring). ``clock``: the venue's clock when it runs its own (a sped-up embedded exchange)."""
    address = paper_address(account_name)
    store = await Store.open_migrated(store_url)
    venue: PaperVenue | None = None
    try:
        limiter = WeightLimiter(endpoint.ip_weight_per_min)
        public = await connect_public(endpoint, limiter=limiter, now_ms=clock)
        venue, resumed = await open_paper_venue(public, store, address, start_usd=start_usd,
                                                clock=clock or LiveClock().now_ms)  # fmt: skip
        snap = await venue.account.snapshot()
        console.print(
            f"paper account {address} ({'resumed' if resumed else 'new'}): equity {snap.equity:,.2f} USDC, "
            f"{len(snap.positions)} position(s); market data from {endpoint.base_url}, nothing is sent there"
        )
        console.print("fill models: " + "; ".join(f"{k}: {v}" for k, v in MODELS.items()), highlight=False)
        return await copy_follows(
            config, venue, address, store, console, where=f"paper ({endpoint.base_url})",
            duration_s=duration_s, interactive=interactive, rest_stats=lambda: limiter.stats, clock=clock,
            service_config=service_config, title="hyperfollow copy --paper",
        )  # fmt: skip
    finally:
        if venue is not None:
            await venue.close()
        await store.close()
