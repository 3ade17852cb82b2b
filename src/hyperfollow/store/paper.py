"""Paper accounts: the simulated account's state (one JSON document, replaced on each save) and its
history (fills and finished orders, appended). ``StorePaperLedger`` is what the paper venue persists to
(``adapters.paper.account.PaperLedger``, met structurally: the store knows nothing of adapters)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hyperfollow.store.sql import upsert_insert
from hyperfollow.store.tables import PaperAccountRow, PaperRecordRow
from hyperfollow.store.unit import Store

FILL_TID = 12  # index of the trade id in a fill record (``exchange.accounts.Fill``)
FILLS_KEPT = 10_000  # the venue keeps the 10,000 most recent fills retrievable
ORDERS_KEPT = 20_000


@dataclass(frozen=True, slots=True)
class SavedPaperAccount:
    state: dict[str, Any]
    fills: list[list[Any]] = field(default_factory=list)  # oldest first
    orders: list[dict[str, Any]] = field(default_factory=list)  # oldest first


class PaperRepository:
    """Paper accounts, in the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def load(self, address: str) -> SavedPaperAccount | None:
        address = address.lower()
        row = await self._session.get(PaperAccountRow, address, populate_existing=True)
        if row is None:
            return None
        return SavedPaperAccount(
            dict(row.state), await self._records(address, "fill", FILLS_KEPT),
            await self._records(address, "order", ORDERS_KEPT),
        )  # fmt: skip

    async def _records(self, address: str, kind: str, limit: int) -> list[Any]:
        rows = await self._session.scalars(
            select(PaperRecordRow.doc)
            .where(PaperRecordRow.address == address, PaperRecordRow.kind == kind)
            .order_by(PaperRecordRow.id.desc())
            .limit(limit)
        )
        return list(reversed(list(rows)))

    async def save(
        self,
        address: str,
        state: dict[str, Any],
        fills: Sequence[list[Any]],
        orders: Sequence[dict[str, Any]],
        now_ms: int,
    ) -> None:
        address = address.lower()
        stmt = upsert_insert(self._session, PaperAccountRow).values(
            address=address, state=state, updated_ms=now_ms
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["address"], set_={"state": stmt.excluded.state, "updated_ms": now_ms}
        )
        await self._session.execute(stmt)
        rows = [{"address": address, "kind": "fill", "ref": int(f[FILL_TID]), "doc": f} for f in fills]
        rows += [{"address": address, "kind": "order", "ref": int(o["oid"]), "doc": o} for o in orders]
        for values in rows:  # a fill is never booked twice; an order recorded again replaces its record
            insert = upsert_insert(self._session, PaperRecordRow).values(**values)
            await self._session.execute(
                insert.on_conflict_do_update(
                    index_elements=["address", "kind", "ref"], set_={"doc": insert.excluded.doc}
                )
            )


class StorePaperLedger:
    """The paper venue's persistence on a ``Store``: each save is one transaction."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def load(self, address: str) -> SavedPaperAccount | None:
        async with self._store.transaction() as tx:
            return await PaperRepository(tx.session).load(address)

    async def save(
        self,
        address: str,
        state: dict[str, Any],
        fills: Sequence[list[Any]],
        orders: Sequence[dict[str, Any]],
        now_ms: int,
    ) -> None:
        async with self._store.transaction() as tx:
            await PaperRepository(tx.session).save(address, state, fills, orders, now_ms)
