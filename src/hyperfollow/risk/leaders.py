"""Leader health (pure): a leader that got liquidated is dropped; a leader in a deep drawdown is paused.

* **Liquidated**: a position the leader held disappears (or shrinks, or flips) without the fills that would
  explain it, or a fill names the leader as the liquidated user. Our copies of it are closed at once
  (``LEADER_LIQUIDATED``) and the leader is blacklisted for ``blacklist_days`` (14 by default).
  Hyperliquid liquidations do produce fills for the liquidated user, but a feed can miss them (a gap, a
  poll that skipped a page), so the position check does not rely on them.
* **Drawdown**: copying pauses while the leader's equity is more than ``max_drawdown_pct`` below its peak
  (the highest equity seen since we started watching); it resumes once the drawdown is back under half the
  limit (hysteresis, so a leader hovering at the threshold does not flap).

Everything is a function of (status, previous snapshot, current snapshot, fills in between, now): the
shell stores the status, logs the events and acts on them. The fills must be complete for the interval
(the shell backfills them with ``fills_since`` first): a close whose fills were missed would look like a
liquidation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from hyperfollow.domain.model import AccountSnapshot, Fill

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class LeaderHealthPolicy:
    blacklist_days: int = 14
    max_drawdown_pct: Decimal = Decimal(30)

    def __post_init__(self) -> None:
        if self.blacklist_days < 0:
            raise ValueError(f"blacklist_days must be >= 0, got {self.blacklist_days}")
        if not Decimal(0) < self.max_drawdown_pct < Decimal(100):
            raise ValueError(f"max_drawdown_pct must be between 0 and 100, got {self.max_drawdown_pct}")


class LeaderEventKind(StrEnum):
    LIQUIDATED = "liquidated"  # close our copies of ``coin`` now; the leader is blacklisted
    PAUSED = "paused"  # drawdown beyond the limit: no new copies
    RESUMED = "resumed"  # drawdown back under half the limit
    BLACKLIST_ENDED = "blacklist_ended"


@dataclass(frozen=True, slots=True)
class LeaderEvent:
    leader: str
    kind: LeaderEventKind
    time_ms: int
    coin: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LeaderStatus:
    leader: str
    peak_equity: Decimal = Decimal(0)
    paused: bool = False
    blacklisted_until_ms: int | None = None

    def may_copy(self, now_ms: int) -> bool:
        """New copies are allowed: not paused and not blacklisted."""
        return not self.paused and (self.blacklisted_until_ms is None or now_ms >= self.blacklisted_until_ms)


def unexplained_exits(prev: AccountSnapshot, cur: AccountSnapshot, fills: Sequence[Fill]) -> list[str]:
    """Coins whose position changed between the snapshots by more than the leader's fills explain, in the
    direction of closing: what a liquidation looks like from outside. A position that grew, or a change the
    fills account for exactly, is not one."""
    moved: dict[str, Decimal] = {}
    for fill in fills:
        moved[fill.coin] = moved.get(fill.coin, Decimal(0)) + fill.signed_size
    out = []
    for before in prev.positions:
        after = cur.position(before.coin)
        after_size = after.size if after is not None else Decimal(0)
        explained = before.size + moved.get(before.coin, Decimal(0))
        if after_size == explained:
            continue
        closing = abs(after_size) < abs(before.size) or after_size * before.size < 0
        if closing:
            out.append(before.coin)
    return out


def assess_leader(
    status: LeaderStatus,
    prev: AccountSnapshot | None,
    cur: AccountSnapshot,
    fills: Sequence[Fill],
    policy: LeaderHealthPolicy,
    now_ms: int,
) -> tuple[LeaderStatus, list[LeaderEvent]]:
    """The leader's new status and what happened, from two snapshots and the fills between them."""
    events: list[LeaderEvent] = []
    leader = status.leader
    if status.blacklisted_until_ms is not None and now_ms >= status.blacklisted_until_ms:
        status = replace(status, blacklisted_until_ms=None)
        events.append(LeaderEvent(leader, LeaderEventKind.BLACKLIST_ENDED, now_ms))
    liquidated = {f.coin for f in fills if f.liquidated_user == leader.lower()}
    if prev is not None:
        liquidated |= set(unexplained_exits(prev, cur, fills))
    for coin in sorted(liquidated):
        events.append(
            LeaderEvent(leader, LeaderEventKind.LIQUIDATED, now_ms, coin, "position gone without fills")
        )
    if liquidated:
        until = now_ms + policy.blacklist_days * DAY_MS
        status = replace(status, blacklisted_until_ms=max(until, status.blacklisted_until_ms or 0))
    peak = max(status.peak_equity, cur.equity)
    drawdown = (peak - cur.equity) / peak * 100 if peak > 0 else Decimal(0)
    paused = status.paused
    if not paused and drawdown > policy.max_drawdown_pct:
        paused = True
        events.append(
            LeaderEvent(leader, LeaderEventKind.PAUSED, now_ms, detail=f"drawdown {drawdown:.2f} %")
        )
    elif paused and drawdown < policy.max_drawdown_pct / 2:
        paused = False
        events.append(
            LeaderEvent(leader, LeaderEventKind.RESUMED, now_ms, detail=f"drawdown {drawdown:.2f} %")
        )
    return replace(status, peak_equity=peak, paused=paused), events
