"""The simulated account as JSON-able documents, and back: what the store keeps so a paper run resumes.

Two kinds of documents, so a save writes little however long the run:

* the **state** (one per account, replaced on every save): balance, positions, leverage settings, open
  orders with their queue positions, the dead man's switch, and the engine's id counters;
* **records** (appended): each fill, and each order once it is finished (``orderStatus`` by cloid must
  still answer after a restart: the copy engine reconciles its journal with it).

Integers stay integers (micro-USD, ticks, lots): nothing is rounded on the way to the store and back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hyperfollow.adapters.paper.engine import PaperEngine
from hyperfollow.exchange.accounts import ORDER_HISTORY_LIMIT, Fill, Position
from hyperfollow.exchange.book import Order, Trigger

VERSION = 1
Doc = dict[str, Any]


def order_doc(order: Order) -> Doc:
    trig = order.trigger
    return {
        "oid": order.oid, "asset": order.asset, "is_buy": order.is_buy, "px": order.px, "sz": order.sz,
        "orig_sz": order.orig_sz, "tif": order.tif, "reduce_only": order.reduce_only, "cloid": order.cloid,
        "timestamp": order.timestamp,
        "trigger": None if trig is None else [trig.is_market, trig.px, trig.tpsl, trig.wire_px],
        "status": order.status, "status_ts": order.status_ts, "margin": order.margin, "group": order.group,
        "parent": order.parent.oid if order.parent is not None else None,
        "children": [c.oid for c in order.children] if order.children else None,
        "triggered": order.triggered, "filled_sz": order.filled_sz, "filled_ntl": order.filled_ntl,
    }  # fmt: skip


def _order(user: str, doc: Doc) -> Order:
    trig = doc["trigger"]
    return Order(
        int(doc["oid"]), user, int(doc["asset"]), bool(doc["is_buy"]), int(doc["px"]), int(doc["sz"]),
        int(doc["orig_sz"]), str(doc["tif"]), bool(doc["reduce_only"]), doc["cloid"], int(doc["timestamp"]),
        None if trig is None else Trigger(bool(trig[0]), int(trig[1]), str(trig[2]), str(trig[3])),
        str(doc["status"]), int(doc["status_ts"]), int(doc["margin"]), str(doc["group"]),
        triggered=bool(doc["triggered"]), filled_sz=int(doc["filled_sz"]), filled_ntl=int(doc["filled_ntl"]),
    )  # fmt: skip


def fill_doc(fill: Fill) -> list[Any]:
    return list(fill)


def _fill(doc: list[Any]) -> Fill:
    return Fill(*doc)


def _position(row: list[Any]) -> Position:
    asset, szi, entry, cross, lev, margin, f_all, f_open, f_change = row
    return Position(int(asset), int(szi), int(entry), bool(cross), int(lev), int(margin), int(f_all),
                    int(f_open), int(f_change))  # fmt: skip


def _position_row(p: Position) -> list[Any]:
    return [p.asset, p.szi, p.entry_ntl, p.is_cross, p.leverage, p.margin, p.funding_all, p.funding_open,
            p.funding_change]  # fmt: skip


def state_doc(engine: PaperEngine, user: str) -> Doc:
    """The account's current state (see the module docstring)."""
    acct = engine.account(user)
    return {
        "version": VERSION,
        "user": user,
        "usdc": acct.usdc,
        "order_margin": acct.order_margin,
        "cum_volume": acct.cum_volume,
        "leverage": [[asset, cross, lev] for asset, (cross, lev) in sorted(acct.leverage.items())],
        "positions": [_position_row(p) for p in acct.positions.values()],
        "open_orders": [order_doc(o) for o in sorted(acct.open_orders.values(), key=lambda o: o.oid)],
        "queue": [[oid, lots] for oid, lots in sorted(engine.queue.items()) if oid in acct.open_orders],
        "schedule_cancel_ms": acct.schedule_cancel_ms,
        "schedule_cancel_count": [[day, n] for day, n in acct.schedule_cancel_count.items()],
        "next_oid": engine.next_oid,
        "next_tid": engine.next_tid,
        "next_funding_ms": engine.next_funding_ms,
    }


def restore(engine: PaperEngine, state: Doc, fills: Iterable[list[Any]], finished: Iterable[Doc]) -> None:
    """Put a saved account back into a fresh ``engine`` (``fills`` and ``finished`` orders oldest first)."""
    if state.get("version") != VERSION:
        raise ValueError(
            f"paper account saved in format {state.get('version')!r}, this build reads {VERSION}"
        )
    user = str(state["user"])
    acct = engine.account(user)
    acct.usdc, acct.order_margin, acct.cum_volume = state["usdc"], state["order_margin"], state["cum_volume"]
    acct.leverage = {int(a): (bool(c), int(lev)) for a, c, lev in state["leverage"]}
    acct.positions = {int(row[0]): _position(row) for row in state["positions"]}
    acct.schedule_cancel_ms = state["schedule_cancel_ms"]
    acct.schedule_cancel_count = {int(day): int(n) for day, n in state["schedule_cancel_count"]}
    engine.next_oid, engine.next_tid = int(state["next_oid"]), int(state["next_tid"])
    engine.next_funding_ms = int(state["next_funding_ms"])
    for doc in finished:
        order = _order(user, doc)
        acct.orders.append(order)
        engine.order_log[order.oid] = order
        if order.cloid:
            engine.cloid_log[(user, order.cloid)] = order.oid
    while len(engine.order_log) > 10 * ORDER_HISTORY_LIMIT:  # orderStatus memory, oldest dropped first
        engine.order_log.pop(next(iter(engine.order_log)))
    docs = {int(d["oid"]): d for d in state["open_orders"]}
    live = {oid: _order(user, doc) for oid, doc in docs.items()}
    for oid, order in live.items():
        parent = docs[oid]["parent"]
        if parent is not None:
            order.parent = live.get(parent) or engine.order_log.get(parent)
        children = [live[c] for c in docs[oid]["children"] or () if c in live]
        order.children = children or None
        acct.open_orders[oid] = order
        engine.live[oid] = order
        if order.trigger is not None and not order.triggered:
            engine.triggers[order.asset][oid] = order
        else:
            engine.books[order.asset].add(order)
    engine.queue = {int(oid): int(lots) for oid, lots in state["queue"] if int(oid) in live}
    acct.fills.extend(_fill(doc) for doc in fills)  # the deque keeps the newest HISTORY_LIMIT
