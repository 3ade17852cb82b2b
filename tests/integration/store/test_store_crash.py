"""``kill -9`` in the middle of a transaction: what was committed is there, the rest is not at all."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from store_support import make_fill

from hyperfollow.store import JournalState, Store

# The child commits an intent, then in a second transaction records the order's outcome, its fill, the
# position and the leader cursor, and waits inside that transaction to be killed.
CHILD = """
import asyncio, sys
from decimal import Decimal
from hyperfollow.domain.model import Side
from hyperfollow.store import JournalEntry, JournalState, PositionRecord, Store
from store_support import make_fill

url, follower, leader, cloid, tid = sys.argv[1:]

async def main() -> None:
    store = Store.open(url)
    async with store.transaction() as tx:
        await tx.journal.write_intent(JournalEntry(
            cloid=cloid, follower=follower, leader=leader, coin="BTC", side=Side.BUY,
            size=Decimal("0.01"), limit_price=Decimal("65000"), reduce_only=False, leg="open",
            source_fill_key="tid:1", created_ms=1))
    print("intent committed", flush=True)
    async with store.transaction() as tx:
        await tx.journal.transition(cloid, JournalState.FILLED, now_ms=2, oid=7, filled_size=Decimal("0.01"))
        await tx.fills.record_fill(make_fill(follower, int(tid), cloid=cloid))
        await tx.positions.put(
            PositionRecord(follower, "BTC", leader, Decimal("0.01"), Decimal("650"), Decimal(0), 2))
        await tx.cursors.advance(follower, leader, time_ms=5, fill_key="tid:1", now_ms=2)
        print("inside the outcome's transaction", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_sigkill_inside_a_transaction_leaves_only_what_was_committed(
    store: Store, migrated_url: str, new_address: Callable[[], str]
) -> None:
    follower, leader = new_address(), new_address()
    cloid, tid = "0x" + secrets.token_hex(16), secrets.randbelow(2**62)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, migrated_url, follower, leader, cloid, str(tid),
        env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        lines = [await asyncio.wait_for(child.stdout.readline(), 60) for _ in range(2)]
        assert lines == [b"intent committed\n", b"inside the outcome's transaction\n"]
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL

    fill = make_fill(follower, tid, cloid=cloid)
    async with store.transaction() as tx:
        entry = await tx.journal.get(cloid)
        assert entry is not None
        assert entry.state is JournalState.INTENT  # the outcome's transaction died with the process
        assert await tx.fills.get(fill) is None
        assert await tx.positions.get(follower, "BTC", leader) is None
        assert await tx.cursors.get(follower, leader) is None
        assert [e.cloid for e in await tx.journal.unresolved(follower)] == [cloid]
    # the restart redoes the work: the database is usable and the fill is new exactly once
    async with store.transaction() as tx:
        assert await tx.journal.transition(cloid, JournalState.FILLED, now_ms=3, filled_size=Decimal("0.01"))
        assert await tx.fills.record_fill(fill) is True
        assert await tx.fills.record_fill(fill) is False
    async with store.transaction() as tx:
        recorded = await tx.fills.get(fill)
    assert recorded is not None
    assert recorded.leader == leader  # attributed through the journal's cloid
