"""The copy service's in-memory state: per-leader positions with orders in flight (``Ledger``), short-lived
caches, and the events it reports (``CopyEvent``, ``EventHub``).

The ledger is what decisions read as "our position for this follow". Fills are the truth (``record_fill``
persists each one and returns the leader's new position), but a taker order's ack comes back before its
fills arrive on the account stream, and the next leader fill must already see it. So each order we send is
a *flight*: its acked fill size counts until its fills have arrived; then the fills alone count.

A flight is what the copy engine owns: each one's cloid (and its taker fallback's) is claimed in the
process's order-ownership registry (``core.orders``) under ``Owner("copy", leader)`` while it flies, and
released when it lands, so the risk layer never sweeps a copy's order as stale nor cancels it as an orphan.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Generic, TypeVar

from hyperfollow.copy.journal import ZERO, HeldPosition, RecordedCopyFill
from hyperfollow.copy.model import SkipReason
from hyperfollow.core.orders import OrderOwners, Owner
from hyperfollow.domain.model import Fill, Side

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

PositionKey = tuple[str, str, str]  # follower, leader, coin

COPY = "copy"  # the copy engine's name as an order owner


def copy_owner(leader: str | None) -> Owner:
    """The owner of the orders copying ``leader``."""
    return Owner(COPY, (leader or "").lower())


@dataclass(slots=True)
class _Flight:
    key: PositionKey
    sign: int
    acked: Decimal = ZERO  # filled per the execution result
    seen: Decimal = ZERO  # filled per the fills received
    aliases: tuple[str, ...] = ()

    @property
    def pending(self) -> Decimal:
        return max(ZERO, self.acked - self.seen) * self.sign


class Ledger:
    """Our positions by (follower, leader, coin), plus what acked orders filled and the fill stream has
    not delivered yet."""

    def __init__(self, owners: OrderOwners | None = None) -> None:
        self._held: dict[PositionKey, HeldPosition] = {}
        self._flights: dict[str, _Flight] = {}
        self._alias: dict[str, str] = {}  # a maker order's taker fallback cloid -> the journalled cloid
        self.owners = owners if owners is not None else OrderOwners()  # the flights' cloids are claimed

    def load(self, positions: Iterable[HeldPosition]) -> None:
        for p in positions:
            self._held[(p.follower, p.leader, p.coin)] = p

    def held(self, follower: str, leader: str, coin: str) -> HeldPosition:
        key = (follower, leader, coin)
        return self._held.get(key) or HeldPosition(follower, leader, coin)

    def position(self, follower: str, leader: str, coin: str) -> Decimal:
        """Signed size: recorded fills plus acked fills not yet received."""
        key = (follower, leader, coin)
        pending = sum((f.pending for f in self._flights.values() if f.key == key), ZERO)
        return self.held(follower, leader, coin).size + pending

    def positions_of(self, follower: str, leader: str) -> dict[str, Decimal]:
        """The follow's non-zero positions by coin."""
        coins = {k[2] for k in self._held if k[:2] == (follower, leader)}
        coins |= {f.key[2] for f in self._flights.values() if f.key[:2] == (follower, leader)}
        out = {c: self.position(follower, leader, c) for c in sorted(coins)}
        return {c: s for c, s in out.items() if s != 0}

    def net_position(self, follower: str, coin: str) -> Decimal:
        """The follower's position in ``coin`` summed over every leader (what the venue should hold, foreign
        trades aside)."""
        leaders = {k[1] for k in self._held if k[0] == follower and k[2] == coin}
        leaders |= {f.key[1] for f in self._flights.values() if f.key[0] == follower and f.key[2] == coin}
        return sum((self.position(follower, leader, coin) for leader in leaders), ZERO)

    def coins_of(self, follower: str) -> set[str]:
        """Coins the follower has a record or an order in flight for."""
        coins = {k[2] for k in self._held if k[0] == follower}
        return coins | {f.key[2] for f in self._flights.values() if f.key[0] == follower}

    def all_positions(self, follower: str) -> list[HeldPosition]:
        return [p for k, p in sorted(self._held.items()) if k[0] == follower]

    def budget_used(self, follower: str, leader: str, marks: Mapping[str, Decimal]) -> Decimal:
        """Notional the follow holds, at ``marks`` (coins without a mark at their entry price)."""
        total = ZERO
        for coin, size in self.positions_of(follower, leader).items():
            px = marks.get(coin) or self.held(follower, leader, coin).entry_price or ZERO
            total += abs(size) * px
        return total

    # ------------------------------------------------------------------ orders and fills

    def sent(self, cloid: str, key: PositionKey, side: Side, *, aliases: Iterable[str] = ()) -> None:
        """An order is about to be sent (its fills count for ``key``); claimed for the follow's leader."""
        aliases = tuple(aliases)
        owner = copy_owner(key[1])
        self.owners.claim_all((cloid, *aliases), owner)
        self._flights[cloid] = _Flight(key, 1 if side is Side.BUY else -1, aliases=aliases)
        for alias in aliases:
            self._alias[alias] = cloid

    def acked(self, cloid: str, filled: Decimal) -> None:
        """The execution result: ``filled`` in total (maker and taker legs together)."""
        flight = self._flights.get(cloid)
        if flight is not None:
            flight.acked = max(flight.acked, filled)
            self._prune(cloid, flight)

    def leaders_for(self, follower: str, coin: str) -> set[str]:
        """Leaders whose copies hold ``coin`` for ``follower`` or have an order in flight in it."""
        held = {k[1] for k, p in self._held.items() if k[0] == follower and k[2] == coin and p.size != 0}
        return held | {f.key[1] for f in self._flights.values() if f.key[0] == follower and f.key[2] == coin}

    def in_flight_cloids(self) -> set[str]:
        """Cloids of orders this process sent whose fills are not all recorded yet (incl. maker legs)."""
        return set(self._flights) | set(self._alias)

    def leader_of(self, cloid: str | None) -> str | None:
        """The leader whose copy ``cloid`` is, when this process sent it."""
        if cloid is None:
            return None
        flight = self._flights.get(self._alias.get(cloid, cloid))
        return flight.key[1] if flight is not None else None

    def on_fill(self, fill: Fill, recorded: RecordedCopyFill) -> None:
        """A newly recorded follower fill: the leader's position is what the journal computed."""
        if recorded.position is not None:
            p = recorded.position
            self._held[(p.follower, p.leader, p.coin)] = p
        if fill.cloid is None:
            return
        main = self._alias.get(fill.cloid, fill.cloid)
        flight = self._flights.get(main)
        if flight is not None:
            flight.seen += fill.size
            self._prune(main, flight)

    def _prune(self, cloid: str, flight: _Flight) -> None:
        # Kept while the ack may still come (acked == 0 and nothing seen) or fills are missing.
        if flight.acked > 0 and flight.seen >= flight.acked:
            self._land(cloid, flight)

    def settle(self, cloid: str) -> None:
        """Forget a flight whose order ended with nothing filled."""
        flight = self._flights.get(cloid)
        if flight is not None and flight.acked == 0 and flight.seen == 0:
            self._land(cloid, flight)

    def _land(self, cloid: str, flight: _Flight) -> None:
        """The flight is over: its orders are no longer the copy engine's to watch."""
        del self._flights[cloid]
        owner = copy_owner(flight.key[1])
        for ref in (cloid, *flight.aliases):
            self.owners.release(ref, owner)

    def clamp_to_live(
        self, follower: str, live: Mapping[str, Decimal], *, coins: Collection[str] | None = None
    ) -> list[PositionKey]:
        """Bring the follower's attributed positions within the venue's (the truth): a coin where the venue
        holds nothing, or the other side, is zeroed; one where it holds less is scaled down. Returns the
        keys changed (e.g. a liquidation or a manual close while we were down). ``coins``: only these (the
        others are left as they are, whatever ``live`` says of them)."""
        changed: list[PositionKey] = []
        by_coin: dict[str, list[PositionKey]] = {}
        for key, p in self._held.items():
            if key[0] == follower and p.size != 0 and (coins is None or key[2] in coins):
                by_coin.setdefault(key[2], []).append(key)
        for coin, keys in by_coin.items():
            ours = sum((self._held[k].size for k in keys), ZERO)
            theirs = live.get(coin, ZERO)
            if ours == 0 or (theirs * ours > 0 and abs(theirs) >= abs(ours)):
                continue
            factor = ZERO if theirs * ours <= 0 else abs(theirs) / abs(ours)
            for k in keys:
                p = self._held[k]
                self._held[k] = HeldPosition(
                    p.follower, p.leader, p.coin, p.size * factor, p.entry_notional * factor, p.realized_pnl
                )
                changed.append(k)
        return changed


# ---------------------------------------------------------------------------- caches


class TtlCache(Generic[K, V]):
    """Values kept for ``ttl_ms`` of the service's clock."""

    def __init__(self, ttl_ms: int) -> None:
        self.ttl_ms = ttl_ms
        self._items: dict[K, tuple[V, int]] = {}

    def get(self, key: K, now_ms: int) -> V | None:
        item = self._items.get(key)
        if item is None or now_ms - item[1] > self.ttl_ms:
            return None
        return item[0]

    def get_stale(self, key: K, now_ms: int, max_age_ms: int) -> V | None:
        """The value if it is younger than ``max_age_ms`` (past its TTL or not)."""
        item = self._items.get(key)
        if item is None or now_ms - item[1] > max_age_ms:
            return None
        return item[0]

    def put(self, key: K, value: V, now_ms: int) -> None:
        self._items[key] = (value, now_ms)

    def drop(self, key: K) -> None:
        self._items.pop(key, None)


# ---------------------------------------------------------------------------- events


class EventKind(StrEnum):
    FILLED = "filled"  # the copy filled completely
    PARTIAL = "partial"  # part filled, the rest cancelled (IOC) or dropped (maker)
    UNFILLED = "unfilled"  # sent and acked, nothing filled (IOC found no one in the slippage cap)
    REJECTED = "rejected"  # the venue refused it, or it could not be sent
    UNKNOWN = "unknown"  # sent, outcome unknown: reconciled by cloid
    SKIPPED = "skipped"  # not taken (reason in ``skip_reason``)
    SETTLED = "settled"  # a share settled against an opposite one (or a gap) at the mark: nothing traded
    RESOLVED = "resolved"  # start-up: an order found at the venue was recorded (not resent)
    RESENT = "resent"  # start-up: an intent the venue never received was sent (same cloid)
    ABANDONED = "abandoned"  # start-up: an intent the venue never received was too old to send


@dataclass(frozen=True, slots=True)
class CopyEvent:
    """Something the copy service did, for a live view or a report.

    ``latency_ms``: the leader's fill time to our order's ack, on the venue's clock (None when no leader
    fill caused it). ``process_ms``: from the leader fill's arrival in this process to the ack (monotonic).
    ``catch_up``: it is the catch-up of leader fills missed while the engine was down (no latency).
    """

    kind: EventKind
    follower: str
    leader: str
    coin: str
    time_ms: int
    cloid: str | None = None
    side: Side | None = None
    size: Decimal | None = None
    filled: Decimal | None = None
    avg_price: Decimal | None = None
    leg: str = ""
    fill_key: str = ""
    reason: str = ""
    skip_reason: SkipReason | None = None
    latency_ms: int | None = None
    process_ms: float | None = None
    detail: Mapping[str, str] = field(default_factory=dict)
    catch_up: bool = False


_END = object()


class EventHub:
    """Fans ``CopyEvent`` out to callbacks and to async-iterator subscribers (unbounded queues)."""

    def __init__(self) -> None:
        self._queues: list[asyncio.Queue[object]] = []
        self._callbacks: list[Callable[[CopyEvent], None]] = []
        self._closed = False

    def on(self, callback: Callable[[CopyEvent], None]) -> None:
        self._callbacks.append(callback)

    def subscribe(self) -> AsyncIterator[CopyEvent]:
        """Every event from now on, until the service stops."""
        queue: asyncio.Queue[object] = asyncio.Queue()
        if self._closed:
            queue.put_nowait(_END)
        self._queues.append(queue)
        return self._iterate(queue)

    async def _iterate(self, queue: asyncio.Queue[object]) -> AsyncIterator[CopyEvent]:
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                assert isinstance(item, CopyEvent)
                yield item
        finally:
            if queue in self._queues:
                self._queues.remove(queue)

    def emit(self, event: CopyEvent) -> None:
        for queue in self._queues:
            queue.put_nowait(event)
        for callback in self._callbacks:
            callback(event)

    def close(self) -> None:
        self._closed = True
        for queue in self._queues:
            queue.put_nowait(_END)
