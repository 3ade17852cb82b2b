"""The risk service as a child process, for ``test_accept_risk_kill.py`` (which kills it with SIGKILL).

    python tests/acceptance/risk_child.py --url URL --db SQLALCHEMY_URL --account 0x..

The account's key comes from ``HF_CHILD_KEY`` (never on the command line, never logged). One account is
guarded through the real Hyperliquid adapter with a 5 % price stop (``POLICY``) and native stops; its
holdings and state changes are kept in the store, restored at start (``app.risk_run.start_risk``, the
app's own wiring): what a restarted risk worker does. The dead man's switch is off (as in the app): its
scheduled cancel would take the native stop down with the process, and this test is about the stop
outliving the process. Logs are structlog JSON lines on stderr: the service's events (``risk.swept``...)
plus ``child.ready`` once ``start()`` returned.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from decimal import Decimal

import structlog

from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.adapters.hyperliquid.venue import connect
from hyperfollow.app.logging import configure_logging
from hyperfollow.app.risk_run import start_risk
from hyperfollow.core.clock import LiveClock
from hyperfollow.core.orders import OrderOwners
from hyperfollow.risk.exits import ExitPolicy
from hyperfollow.risk.service import RiskSettings
from hyperfollow.store import Store
from hyperfollow.store.risk_persist import RiskPersistence

POLICY = ExitPolicy(stop_loss_roe_pct=None, stop_loss_price_pct=Decimal(5))
SETTINGS = RiskSettings(
    scan_interval_secs=0.1, pending_check_secs=3600, breaker_interval_secs=3600, reconcile_interval_secs=3600,
    default_policy=POLICY, deadman=False,
)  # fmt: skip

log = structlog.get_logger("risk_child")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


async def main(args: argparse.Namespace) -> None:
    config = HyperliquidConfig(
        base_url=args.url,
        account_address=args.account,
        secret_key=os.environ["HF_CHILD_KEY"],
        ip_weight_per_min=1_000_000,  # one test IP serving everything
        backoff_base_secs=0.01,
        backoff_cap_secs=0.05,
    )
    venue = await connect(config)
    store = await Store.open_migrated(args.db)
    restored = await RiskPersistence(store, clock=wall_ms).restore([args.account])  # for the log line only
    # the app's own wiring (what `hyperfollow copy` runs): holdings and states restored, changes stored
    svc = await start_risk(
        {args.account: venue}, store, clock=LiveClock(), owners=OrderOwners(), settings=SETTINGS
    )
    log.info("child.ready", pid=os.getpid(), restored=[h.coin for h in restored], held=len(svc.book))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await svc.close()
    await venue.close()
    await store.close()
    log.info("child.stopped")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--account", required=True)
    return parser.parse_args()


if __name__ == "__main__":
    configure_logging("INFO", json_output=True)
    asyncio.run(main(parse_args()))
