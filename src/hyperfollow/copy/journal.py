"""What the copy service needs from persistence (``CopyJournal``), in copy and domain types, and an
in-memory implementation for unit tests. ``store/copy_journal.py`` implements it over the database.

The rules every implementation keeps (the crash-safety argument of the service rests on them):

* ``begin`` writes a decision atomically: its new intents (by cloid: an intent already journalled is not
  new, and is not returned), its skips, and optionally the follow's leader cursor. The service sends an
  order only after ``begin`` returned it, so every order the venue may have is journalled first.
* ``record_outcome`` only moves an entry forward (INTENT < SENT < UNKNOWN < ACKED < terminal).
* ``record_fill`` records a follower fill once (by ``Fill.ref``); the first time, it attributes the fill to
  a leader (the one given, else the journal entry of the fill's cloid) and moves that leader's position
  (``apply_fill``) in the same transaction.
* cursors never move back.

It also keeps the copy engine's risk records: each leader's ``LeaderStatus`` (a blacklist must outlive a
restart) and, when the copy engine runs its own circuit breakers, each follower's trading state changes
(the latest one is the state a restart resumes in).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from hyperfollow.copy.model import CopyIntent, FollowSettings, Skip, StopAction
from hyperfollow.domain.model import Fill, OrderRequest, Side, Tif
from hyperfollow.risk.breakers import StateChange
from hyperfollow.risk.gate import TradingState
from hyperfollow.risk.leaders import LeaderStatus

ZERO = Decimal(0)


class EntryState(StrEnum):
    """A journal entry's state (the same names as the store's ``JournalState``)."""

    INTENT = "INTENT"  # decided and written; maybe not sent
    SENT = "SENT"  # handed to the venue, no answer yet
    UNKNOWN = "UNKNOWN"  # the send's outcome is unknown: reconcile by cloid
    ACKED = "ACKED"  # resting at the venue
    FILLED = "FILLED"
    REJECTED = "REJECTED"
    CANCELED = "CANCELED"  # the unfilled rest cancelled (IOC, maker timeout), or abandoned at a restart

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def terminal(self) -> bool:
        return self.rank == _TERMINAL


_TERMINAL = 4
_RANK = {
    EntryState.INTENT: 0,
    EntryState.SENT: 1,
    EntryState.UNKNOWN: 2,
    EntryState.ACKED: 3,
    EntryState.FILLED: _TERMINAL,
    EntryState.REJECTED: _TERMINAL,
    EntryState.CANCELED: _TERMINAL,
}


def moves_forward(current: EntryState, new: EntryState) -> bool:
    """True when ``new`` may replace ``current`` (a higher rank, or ACKED progress on ACKED)."""
    return new.rank > current.rank or (new == current and not new.terminal)


@dataclass(frozen=True, slots=True)
class Follow:
    """A follower copying a leader with ``settings`` since ``created_ms`` (addresses lower-case)."""

    follower: str
    leader: str
    settings: FollowSettings
    created_ms: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "follower", self.follower.lower())
        object.__setattr__(self, "leader", self.leader.lower())

    @property
    def key(self) -> tuple[str, str]:
        return (self.follower, self.leader)


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """What became of a journalled order."""

    cloid: str
    state: EntryState
    filled_size: Decimal | None = None
    avg_price: Decimal | None = None
    oid: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """An unresolved journal entry: enough to look the order up, and to send it if it never left."""

    cloid: str
    follower: str
    leader: str | None
    coin: str
    side: Side
    size: Decimal
    limit_price: Decimal
    reduce_only: bool
    tif: Tif
    leg: str
    fill_key: str | None
    created_ms: int
    state: EntryState = EntryState.INTENT

    def to_order(self) -> OrderRequest:
        """The order as the intent had it (same cloid)."""
        return OrderRequest(
            coin=self.coin,
            side=self.side,
            size=self.size,
            price=self.limit_price,
            tif=self.tif,
            reduce_only=self.reduce_only,
            cloid=self.cloid,
        )


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far a follow handled its leader's fills: every fill before ``time_ms``, and at ``time_ms`` the
    fills named in ``fill_ref`` (their ``Fill.ref``, space-separated, the last handled last).

    Fills share milliseconds and their trade ids are not in the order they come in (a backfill or a late
    push may bring one with a lower id than one already handled), so within its millisecond the cursor
    names what it handled rather than comparing ids.
    """

    time_ms: int
    fill_ref: str

    @property
    def refs(self) -> frozenset[str]:
        """The fills handled at ``time_ms``."""
        return frozenset(self.fill_ref.split())

    def passed(self, fill: Fill) -> bool:
        """True when ``fill`` is behind the cursor: older than its millisecond, or named at it."""
        return fill.time_ms < self.time_ms or (fill.time_ms == self.time_ms and fill.ref in self.refs)

    def after(self, fills: Iterable[Fill]) -> Cursor:
        """The cursor once ``fills`` are handled as well (never earlier than this one)."""
        return advance_cursor(self, fills)


def advance_cursor(cursor: Cursor | None, fills: Iterable[Fill]) -> Cursor:
    """``cursor`` (None: none yet) moved over ``fills``: the latest millisecond, naming every fill handled
    at it (those of ``cursor`` too when it stays in the same millisecond)."""
    given = list(fills)
    if not given:
        if cursor is None:
            raise ValueError("no cursor and no fills")
        return cursor
    latest = max(f.time_ms for f in given)
    if cursor is not None and cursor.time_ms > latest:
        return cursor
    refs = cursor.fill_ref.split() if cursor is not None and cursor.time_ms == latest else []
    for f in given:
        if f.time_ms == latest and f.ref not in refs:
            refs.append(f.ref)
    return Cursor(latest, " ".join(refs))


@dataclass(frozen=True, slots=True)
class HeldPosition:
    """Our position in ``coin`` built by copies of ``leader``: size (signed), the entry notional of what is
    open, and realized PnL net of fees (USD)."""

    follower: str
    leader: str
    coin: str
    size: Decimal = ZERO
    entry_notional: Decimal = ZERO
    realized_pnl: Decimal = ZERO

    @property
    def entry_price(self) -> Decimal | None:
        return self.entry_notional / abs(self.size) if self.size else None

    def unrealized(self, mark: Decimal) -> Decimal:
        """PnL of the open part at ``mark``."""
        if not self.size:
            return ZERO
        return (mark * abs(self.size) - self.entry_notional) * (1 if self.size > 0 else -1)


def apply_fill(position: HeldPosition, fill: Fill) -> HeldPosition:
    """``position`` after one of our fills: increases add to the entry notional at the fill price; reductions
    realize PnL against the average entry; a fill through zero opens the rest on the other side. The fee is
    taken from realized PnL."""
    size, notional, realized = position.size, position.entry_notional, position.realized_pnl - fill.fee
    signed = fill.signed_size
    if size == 0 or (size > 0) == (signed > 0):
        return replace(position, size=size + signed, entry_notional=notional + abs(signed) * fill.price,
                       realized_pnl=realized)  # fmt: skip
    closed = min(abs(signed), abs(size))
    avg = notional / abs(size)
    direction = 1 if size > 0 else -1
    realized += closed * (fill.price - avg) * direction
    notional -= avg * closed
    size += closed * (1 if signed > 0 else -1)
    rest = abs(signed) - closed
    if rest > 0:  # through zero: the rest opens the other side
        size = rest * (1 if signed > 0 else -1)
        notional = rest * fill.price
    if size == 0:
        notional = ZERO
    return replace(position, size=size, entry_notional=notional, realized_pnl=realized)


@dataclass(frozen=True, slots=True)
class RecordedCopyFill:
    """A newly recorded follower fill: the leader it was attributed to, and that leader's position after
    it (both None for a fill no copy of ours caused)."""

    leader: str | None
    position: HeldPosition | None


class CopyJournal(Protocol):
    """Persistence as the copy service sees it (see the module docstring for the rules)."""

    async def follows(self) -> list[Follow]:
        """Active follows, oldest first."""
        ...

    async def save_follow(self, follow: Follow, *, now_ms: int) -> Follow:
        """Start (or restart, or re-configure) a follow; returns it with its original ``created_ms``."""
        ...

    async def end_follow(self, follower: str, leader: str, action: StopAction, *, now_ms: int) -> bool:
        """Mark a follow stopped; False if it was not active."""
        ...

    async def begin(
        self,
        intents: Sequence[CopyIntent],
        *,
        skips: Sequence[Skip] = (),
        cursor: tuple[str, str, Cursor] | None = None,
        now_ms: int,
    ) -> list[CopyIntent]:
        """Journal ``intents`` (as INTENT), log ``skips`` and advance ``cursor`` (follower, leader, cursor)
        in one transaction; the intents that were new, in order. Send nothing that is not returned."""
        ...

    async def mark_sent(self, cloid: str, *, now_ms: int) -> None: ...

    async def record_outcome(self, outcome: OrderOutcome, *, now_ms: int) -> bool:
        """Move the entry forward to the outcome; False when it was already there or beyond."""
        ...

    async def unresolved(self) -> list[PendingEntry]:
        """Entries not in a terminal state, oldest first: what a restart reconciles by cloid."""
        ...

    async def record_skip(self, skip: Skip, *, now_ms: int) -> bool:
        """Log one skip; False if this cause was already skipped for this reason."""
        ...

    async def handled(self, follower: str, leader: str, fill_ref: str) -> bool:
        """True when the leader fill named ``fill_ref`` already produced intents or skips for the follow."""
        ...

    async def record_fill(self, fill: Fill, *, leader: str | None) -> RecordedCopyFill | None:
        """Record a follower fill (None when already recorded); see the module docstring."""
        ...

    async def cursor(self, follower: str, leader: str) -> Cursor | None: ...

    async def advance(self, follower: str, leader: str, cursor: Cursor, *, now_ms: int) -> bool:
        """Move the cursor forward (never back); True if it moved."""
        ...

    async def positions(self, follower: str) -> list[HeldPosition]:
        """The follower's positions by leader and coin (closed ones may be included, size 0)."""
        ...

    async def last_fill_ms(self, follower: str) -> int | None:
        """The time of the follower's latest recorded fill: where its fill backfill resumes."""
        ...

    async def leader_statuses(self) -> dict[str, LeaderStatus]:
        """Every recorded leader status, by (lower-case) leader."""
        ...

    async def save_leader_status(self, status: LeaderStatus, *, now_ms: int) -> None:
        """Record ``status`` as the leader's (replacing the previous one)."""
        ...

    async def record_state_change(self, account: str, change: StateChange) -> None:
        """Append one trading state change of ``account`` (the copy engine's own breakers)."""
        ...

    async def latest_state(self, account: str) -> TradingState | None:
        """The state ``account``'s last recorded change moved it to (``None``: never changed)."""
        ...


# ---------------------------------------------------------------------------- in memory


@dataclass(slots=True)
class _Entry:
    pending: PendingEntry
    state: EntryState = EntryState.INTENT
    filled_size: Decimal = ZERO
    avg_price: Decimal | None = None
    oid: int | None = None
    error: str | None = None


@dataclass(slots=True)
class InMemoryJournal:
    """``CopyJournal`` in dictionaries (unit tests; everything is lost with the process)."""

    follow_table: dict[tuple[str, str], tuple[Follow, bool]] = field(default_factory=dict)
    entries: dict[str, _Entry] = field(default_factory=dict)
    skip_log: list[tuple[Skip, int]] = field(default_factory=list)
    fills: dict[tuple[str, str], tuple[Fill, str | None]] = field(default_factory=dict)
    cursors: dict[tuple[str, str], Cursor] = field(default_factory=dict)
    held: dict[tuple[str, str, str], HeldPosition] = field(default_factory=dict)
    sent_marks: list[str] = field(default_factory=list)
    leader_table: dict[str, LeaderStatus] = field(default_factory=dict)
    state_changes: list[tuple[str, StateChange]] = field(default_factory=list)

    async def follows(self) -> list[Follow]:
        return [f for f, active in self.follow_table.values() if active]

    async def save_follow(self, follow: Follow, *, now_ms: int) -> Follow:
        old = self.follow_table.get(follow.key)
        created = old[0].created_ms if old is not None else now_ms
        saved = replace(follow, created_ms=created)
        self.follow_table[follow.key] = (saved, True)
        return saved

    async def end_follow(self, follower: str, leader: str, action: StopAction, *, now_ms: int) -> bool:
        key = (follower.lower(), leader.lower())
        old = self.follow_table.get(key)
        if old is None or not old[1]:
            return False
        self.follow_table[key] = (old[0], False)
        return True

    async def begin(
        self,
        intents: Sequence[CopyIntent],
        *,
        skips: Sequence[Skip] = (),
        cursor: tuple[str, str, Cursor] | None = None,
        now_ms: int,
    ) -> list[CopyIntent]:
        new: list[CopyIntent] = []
        for i in intents:
            if i.cloid in self.entries:
                continue
            self.entries[i.cloid] = _Entry(_pending(i, now_ms))
            new.append(i)
        for s in skips:
            await self.record_skip(s, now_ms=now_ms)
        if cursor is not None:
            await self.advance(cursor[0], cursor[1], cursor[2], now_ms=now_ms)
        return new

    async def mark_sent(self, cloid: str, *, now_ms: int) -> None:
        self.sent_marks.append(cloid)
        await self.record_outcome(OrderOutcome(cloid, EntryState.SENT), now_ms=now_ms)

    async def record_outcome(self, outcome: OrderOutcome, *, now_ms: int) -> bool:
        entry = self.entries.get(outcome.cloid)
        if entry is None or not moves_forward(entry.state, outcome.state):
            return False
        entry.state = outcome.state
        if outcome.filled_size is not None:
            entry.filled_size = outcome.filled_size
        if outcome.avg_price is not None:
            entry.avg_price = outcome.avg_price
        if outcome.oid is not None:
            entry.oid = outcome.oid
        if outcome.error is not None:
            entry.error = outcome.error
        return True

    async def unresolved(self) -> list[PendingEntry]:
        return [replace(e.pending, state=e.state) for e in self.entries.values() if not e.state.terminal]

    async def record_skip(self, skip: Skip, *, now_ms: int) -> bool:
        key = (skip.follower.lower(), skip.leader.lower(), skip.fill_key, skip.reason)
        if any((s.follower.lower(), s.leader.lower(), s.fill_key, s.reason) == key for s, _ in self.skip_log):
            return False
        self.skip_log.append((skip, now_ms))
        return True

    async def handled(self, follower: str, leader: str, fill_ref: str) -> bool:
        f, lead = follower.lower(), leader.lower()
        if any(
            e.pending.follower == f and e.pending.leader == lead and e.pending.fill_key == fill_ref
            for e in self.entries.values()
        ):
            return True
        return any(
            s.follower.lower() == f and s.leader.lower() == lead and s.fill_key == fill_ref
            for s, _ in self.skip_log
        )

    async def record_fill(self, fill: Fill, *, leader: str | None) -> RecordedCopyFill | None:
        key = (fill.address.lower(), fill.ref)
        if key in self.fills:
            return None
        if leader is None and fill.cloid is not None and fill.cloid in self.entries:
            leader = self.entries[fill.cloid].pending.leader
        leader = leader.lower() if leader else None
        self.fills[key] = (fill, leader)
        if leader is None:
            return RecordedCopyFill(None, None)
        pkey = (fill.address.lower(), leader, fill.coin)
        position = apply_fill(self.held.get(pkey) or HeldPosition(pkey[0], leader, fill.coin), fill)
        self.held[pkey] = position
        return RecordedCopyFill(leader, position)

    async def cursor(self, follower: str, leader: str) -> Cursor | None:
        return self.cursors.get((follower.lower(), leader.lower()))

    async def advance(self, follower: str, leader: str, cursor: Cursor, *, now_ms: int) -> bool:
        key = (follower.lower(), leader.lower())
        old = self.cursors.get(key)
        if old is not None and old.time_ms > cursor.time_ms:
            return False
        self.cursors[key] = cursor
        return True

    async def positions(self, follower: str) -> list[HeldPosition]:
        return [p for (f, _, _), p in sorted(self.held.items()) if f == follower.lower()]

    async def last_fill_ms(self, follower: str) -> int | None:
        times = [f.time_ms for (addr, _), (f, _) in self.fills.items() if addr == follower.lower()]
        return max(times) if times else None

    async def leader_statuses(self) -> dict[str, LeaderStatus]:
        return dict(self.leader_table)

    async def save_leader_status(self, status: LeaderStatus, *, now_ms: int) -> None:
        leader = status.leader.lower()
        self.leader_table[leader] = replace(status, leader=leader)

    async def record_state_change(self, account: str, change: StateChange) -> None:
        self.state_changes.append((account.lower(), change))

    async def latest_state(self, account: str) -> TradingState | None:
        mine = [c for a, c in self.state_changes if a == account.lower()]
        return mine[-1].to_state if mine else None

    # ------------------------------------------------------------------ for tests

    def state_of(self, cloid: str) -> EntryState | None:
        """The entry's state (None: not journalled)."""
        entry = self.entries.get(cloid)
        return None if entry is None else entry.state

    def skips_of(self, follower: str) -> list[Skip]:
        return [s for s, _ in self.skip_log if s.follower.lower() == follower.lower()]


def _pending(intent: CopyIntent, now_ms: int) -> PendingEntry:
    return PendingEntry(
        cloid=intent.cloid,
        follower=intent.follower.lower(),
        leader=intent.leader.lower(),
        coin=intent.coin,
        side=intent.side,
        size=intent.size,
        limit_price=intent.limit_price,
        reduce_only=intent.reduce_only,
        tif=intent.tif,
        leg=intent.leg,
        fill_key=intent.fill_key,
        created_ms=now_ms,
    )
