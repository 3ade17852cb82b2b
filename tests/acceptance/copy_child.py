"""The copy engine as a child process, for ``test_accept_sigkill.py`` (which kills it with SIGKILL).

    python tests/acceptance/copy_child.py --url URL --db SQLALCHEMY_URL --follower 0x.. --leader 0x..
        [--arm-file PATH] [--style taker|maker]

The follower's key comes from ``HF_CHILD_KEY`` (never on the command line, never logged). One follower
copies one leader with a fixed multiplier of 0.1 (``SETTINGS``), mirror mode, taker (or, with ``--style
maker``, post-only at the touch for ``MAKER_TIMEOUT_SECS`` then the rest as a taker fallback: ``MAKER``),
through the real Hyperliquid adapter, journalling in the SQLite file: exactly what a restarted ``hyperfollow
copy`` does.
Logs are structlog JSON lines on stderr: the engine's own events (``copy.resolved``, ``copy.resent``...),
plus ``child.ready`` once ``start()`` returned (with what the start-up reconciliation did) and
``child.window`` when a debug hook pauses.

Debug hooks (test-only, here and not in ``src/``): at points of a copy's life, if the file ``--arm-file``
names that point, the child removes the file, logs ``child.window`` and sleeps (the test kills it there):

* ``before_send``: the intent is journalled (INTENT), the order not yet handed to the venue;
* ``after_send``: the venue answered (the order filled), nothing of it recorded yet;
* ``before_record_fill``: a follower fill came in and is not yet recorded (nor its position moved);

and for maker copies, in place of the first two:

* ``maker_journalled``: the post-only leg is journalled (SENT), not yet handed to the venue;
* ``maker_resting``: the venue answered, the post-only order rests, its watchdog not yet watching;
* ``fallback_journalled``: the watchdog cancelled the maker order and journalled the taker fallback, which
  is not yet handed to the venue;
* ``fallback_sent``: the venue answered the fallback, nothing of it recorded yet.

The hooks are armed only after ``start()``: the start-up reconciliation itself runs unpaused.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import structlog

from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.adapters.hyperliquid.venue import connect
from hyperfollow.app.logging import configure_logging
from hyperfollow.copy.journal import RecordedCopyFill
from hyperfollow.copy.model import ExecutionStyle, FollowSettings, MakerFallback, SizingMode
from hyperfollow.copy.service import CopyService, ServiceConfig
from hyperfollow.core.clock import LiveClock
from hyperfollow.domain.model import Fill, OrderAck, OrderRequest, Tif
from hyperfollow.store import Store
from hyperfollow.store.copy_journal import StoreCopyJournal

SETTINGS = FollowSettings(sizing=SizingMode.FIXED_MULTIPLIER, multiplier=Decimal("0.1"))
MAKER_TIMEOUT_SECS = Decimal("0.5")
MAKER = replace(
    SETTINGS,
    execution=ExecutionStyle.MAKER,
    maker_timeout_secs=MAKER_TIMEOUT_SECS,
    maker_fallback=MakerFallback.TAKER,
)
POINTS = {  # (tif, maker style) -> the hook points before and after the send
    (Tif.IOC, False): ("before_send", "after_send"),
    (Tif.ALO, True): ("maker_journalled", "maker_resting"),
    (Tif.IOC, True): ("fallback_journalled", "fallback_sent"),
}
PAUSE_SECS = 60.0  # "forever": the test kills the child well before

log = structlog.get_logger("copy_child")


class Hooks:
    """The pause points; armed by the test through a file."""

    def __init__(self, arm_file: Path | None) -> None:
        self.arm_file = arm_file
        self.armed = False  # set once start() returned

    async def at(self, point: str, **context: object) -> None:
        if not self.armed or self.arm_file is None:
            return
        try:
            wanted = self.arm_file.read_text().strip()
        except FileNotFoundError:
            return
        if wanted != point:
            return
        with contextlib.suppress(FileNotFoundError):
            self.arm_file.unlink()
        log.info("child.window", point=point, **context)
        await asyncio.sleep(PAUSE_SECS)


class HookedJournal(StoreCopyJournal):
    """The store journal with a pause before a follower fill is recorded."""

    def __init__(self, store: Store, hooks: Hooks) -> None:
        super().__init__(store)
        self.hooks = hooks

    async def record_fill(self, fill: Fill, *, leader: str | None) -> RecordedCopyFill | None:
        await self.hooks.at("before_record_fill", cloid=fill.cloid, tid=fill.tid)
        return await super().record_fill(fill, leader=leader)


async def main(args: argparse.Namespace) -> None:
    hooks = Hooks(Path(args.arm_file) if args.arm_file else None)
    config = HyperliquidConfig(
        base_url=args.url,
        account_address=args.follower,
        secret_key=os.environ["HF_CHILD_KEY"],
        ip_weight_per_min=1_000_000,  # one test IP serving everything
        backoff_base_secs=0.01,
        backoff_cap_secs=0.05,
    )
    venue = await connect(config)
    gateway = venue.gateway
    send = gateway.submit

    maker = args.style == "maker"

    async def submit(order: OrderRequest) -> OrderAck:
        before, after = POINTS.get((order.tif, maker), POINTS[(Tif.IOC, False)])
        await hooks.at(before, cloid=order.cloid)
        ack = await send(order)
        await hooks.at(after, cloid=order.cloid, status=ack.status.value)
        return ack

    gateway.submit = submit  # type: ignore[method-assign]
    store = await Store.open_migrated(args.db)
    svc = CopyService(
        {args.follower: venue},
        HookedJournal(store, hooks),
        config=ServiceConfig(delta_loop=False),
        clock=LiveClock(),
    )
    await svc.follow(args.follower, args.leader, MAKER if maker else SETTINGS)
    events = await svc.start()
    hooks.armed = True
    log.info("child.ready", pid=os.getpid(),
             recovered=[{"kind": e.kind.value, "cloid": e.cloid, "leg": e.leg} for e in events])  # fmt: skip
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
    parser.add_argument("--follower", required=True)
    parser.add_argument("--leader", required=True)
    parser.add_argument("--arm-file")
    parser.add_argument("--style", choices=["taker", "maker"], default="taker")
    return parser.parse_args()


if __name__ == "__main__":
    configure_logging("INFO", json_output=True)
    asyncio.run(main(parse_args()))
