"""The copy service's use of the risk layer: what may go out, and what the leaders' health calls for.

``screen`` runs in ``CopyService.act`` on every decision's intents before anything is journalled or sent:

* **Leader health**: a blacklisted leader (liquidated) or a paused one (drawdown) gets no new opens
  (``SKIP_LEADER_BLACKLISTED`` / ``SKIP_LEADER_PAUSED``); its closes are still copied, so we never stay
  in a position the leader has left.
* **Flip guard** (``risk.reconcile.flip_guard``): the ledger's net position in the coin (every leader of
  the follower) plus the difference accepted at the last reconcile (trades that are not ours) must match
  the venue's position. Both sides are compared as of the last follower snapshot: when it was read, the
  ledger's net size is noted with it (a coin whose size moved during the read, or with an order out, is
  left unjudged until the next read). A mismatch blocks the coin's opening intents (``SKIP_FLIP_GUARD``
  with both sizes) and the service reconciles the follower. Reduce-only closes are not blocked: the venue
  never lets them open anything, and an exit must never wait for our bookkeeping.
* **Pre-trade gate** (``risk.gate.check_order``, when ``ServiceConfig.risk_limits`` is set): a
  ``RiskSnapshot`` of the follower (equity from the cached snapshot, positions from it moved by our
  fills since, marks from the service's mids, our order times of the last minute, the newest mid's age,
  the day's starting equity per UTC day, the kill switch) and the follower's ``TradingState``. Intents of
  one decision are checked in order, each seeing the ones before it as filled (a flip's close, then its
  open). Refused opens become ``SKIP_RISK_GATE``.

One trading state per account. With ``ServiceConfig.trading_state`` (the risk service's ``state``, when it
runs beside the copy engine) that provider *is* the state: no breakers run here, the gate checks with the
provided state, and without ``risk_limits`` the state alone is enforced (outside ACTIVE, opens are refused;
closes always pass). Standalone, the state is this glue's own, stepped by ``breakers.next_state`` on each
decision; every change is recorded in the journal (``record_state_change``) and a restart resumes in the
latest recorded state (a HALTED follower stays HALTED until a reset).

Leader health (``assess_leader``) runs on each leader snapshot the service reads, with the previous one
and the leader fills the mirror stream delivered in between; a position gone without fills is confirmed
with a ``fills_since`` backfill (a stream lagging behind the snapshot must not look like a liquidation)
before our copies of the coin are closed (reduce-only, reason ``leader_liquidated``) for every follow.
Leader statuses are kept in the journal (``save_leader_status``) and loaded at start, so a blacklist or a
pause outlives a restart: every change of blacklist or pause is saved at once, a new peak equity at most
once a minute (a peak lost to a crash only makes the drawdown look smaller for a minute's worth of gains).
Flip-guard offsets live in memory: a restart reconciles them afresh.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog

from hyperfollow.copy.lifecycle import decide_stop
from hyperfollow.copy.model import CopyIntent, Decision, Skip, SkipReason, StopAction, numbers
from hyperfollow.domain.model import AccountSnapshot, Fill, Side
from hyperfollow.domain.rules import Instrument
from hyperfollow.risk.breakers import StateChange, next_state, reset, utc_day_start_ms
from hyperfollow.risk.exits import ExitReason
from hyperfollow.risk.gate import GateReason, PositionMark, RiskSnapshot, TradingState, check_order
from hyperfollow.risk.leaders import LeaderEventKind, LeaderStatus, assess_leader
from hyperfollow.risk.reconcile import flip_guard

if TYPE_CHECKING:
    from hyperfollow.copy.journal import Follow
    from hyperfollow.copy.service import CopyService

log = structlog.get_logger(__name__)

ZERO = Decimal(0)
MAX_BUFFERED_FILLS = 10_000  # per leader, between two snapshots
PEAK_SAVE_MS = 60_000  # a leader status whose only change is a new peak equity is saved at most this often


class RiskGlue:
    """Per-follower trading states and flip-guard records, per-leader health, for one ``CopyService``."""

    def __init__(self, service: CopyService) -> None:
        self._svc = service
        self._states: dict[str, TradingState] = {}
        self._kill: set[str] = set()
        self._day: dict[str, tuple[int, Decimal]] = {}  # follower -> (UTC day start, equity then)
        # follower -> (snapshot, ledger net size per coin when it was read; unjudged coins left out)
        self._fetched: dict[str, tuple[AccountSnapshot, dict[str, Decimal]]] = {}
        self._foreign: dict[str, dict[str, Decimal]] = {}  # follower -> coin -> venue size not ours
        self._leaders: dict[str, LeaderStatus] = {}
        self._leader_prev: dict[str, AccountSnapshot] = {}
        self._leader_fills: dict[str, list[Fill]] = {}
        self._reflected: dict[str, set[str]] = {}  # leader -> fills already in its previous snapshot
        self._saved: dict[str, tuple[LeaderStatus, int]] = {}  # leader -> (status as saved, when)
        self.tasks: set[asyncio.Task[None]] = set()

    async def load(self) -> None:
        """At start: the leader statuses recorded before a restart, and (standalone) each follower's last
        recorded trading state."""
        journal = self._svc.journal
        for leader, status in (await journal.leader_statuses()).items():
            self._leaders[leader] = status
            self._saved[leader] = (status, self._svc.now_ms())
            if status.paused or status.blacklisted_until_ms is not None:
                log.warning("copy.leader_status_restored", leader=leader, paused=status.paused,
                            blacklisted_until_ms=status.blacklisted_until_ms)  # fmt: skip
        if self.provided:
            return
        for follower in self._svc.venues:
            latest = await journal.latest_state(follower)
            if latest is not None and latest is not TradingState.ACTIVE:
                self._states[follower] = latest
                log.warning("copy.risk_state_restored", follower=follower, state=latest.value)

    # ------------------------------------------------------------------ public state

    @property
    def provided(self) -> bool:
        """True when the trading state comes from ``ServiceConfig.trading_state`` (no breakers here)."""
        return self._svc.config.trading_state is not None

    def state(self, follower: str) -> TradingState:
        """The follower's trading state: the provider's, else our own (ACTIVE until the gate's first
        decision says otherwise)."""
        provider = self._svc.config.trading_state
        if provider is not None:
            return provider(follower.lower())
        return self._states.get(follower.lower(), TradingState.ACTIVE)

    def set_kill_switch(self, follower: str, on: bool) -> None:
        """The manual kill switch: on, the follower halts at its next decision (closes still go)."""
        (self._kill.add if on else self._kill.discard)(follower.lower())
        log.warning("copy.kill_switch", follower=follower.lower(), on=on)

    async def reset(self, follower: str, *, by: str = "manual") -> TradingState:
        """Leave HALTED on a person's request (``breakers.ResetRefused`` while a halt condition holds)."""
        follower = follower.lower()
        limits = self._svc.config.risk_limits
        if self.provided:  # the state is the risk service's: a reset goes there
            log.warning("copy.reset_ignored", follower=follower, by=by, why="trading state is provided")
            return self.state(follower)
        if limits is None:
            return self.state(follower)
        now = self._svc.now_ms()
        risk = self._snapshot(follower, await self._svc.follower_snapshot(follower), now)
        new, changes = reset(risk, limits, self.state(follower), now, by=by)
        await self._set_state(follower, new, changes)
        return new

    def leader_status(self, leader: str) -> LeaderStatus:
        leader = leader.lower()
        return self._leaders.get(leader) or LeaderStatus(leader)

    def foreign(self, follower: str) -> dict[str, Decimal]:
        """Venue sizes accepted as not ours at the last reconcile (manual trades), by coin."""
        return dict(self._foreign.get(follower, {}))

    # ------------------------------------------------------------------ follower snapshots

    def nets(self, follower: str) -> dict[str, Decimal]:
        """The ledger's net size per coin (taken before a snapshot read, passed to ``fetched``)."""
        ledger = self._svc.ledger
        return {c: ledger.net_position(follower, c) for c in ledger.coins_of(follower)}

    def fetched(self, follower: str, snap: AccountSnapshot, before: dict[str, Decimal]) -> None:
        """A follower snapshot was read: note the ledger's sizes with it (coins that moved while it was
        read, or with an order unanswered, cannot be judged against it)."""
        after = self.nets(follower)
        judged: dict[str, Decimal] = {}
        for coin in set(before) | set(after) | {p.coin for p in snap.positions}:
            ours = after.get(coin, ZERO)
            if before.get(coin, ZERO) == ours and not self._svc.sender.sending(follower, coin):
                judged[coin] = ours
        self._fetched[follower] = (snap, judged)

    def adopt(self, follower: str) -> dict[str, Decimal]:
        """After a reconcile (a fresh read, then the ledger clamped to it; no await in between): the venue's
        remaining difference from the ledger is accepted as not ours. Returns the new offsets."""
        fetched = self._fetched.get(follower)
        if fetched is None:
            return {}
        snap, judged = fetched
        foreign = self._foreign.setdefault(follower, {})
        now = self.nets(follower)
        for coin in judged:
            judged[coin] = now.get(coin, ZERO)
            live = snap.position(coin)
            diff = (live.size if live is not None else ZERO) - judged[coin]
            if diff:
                foreign[coin] = diff
            else:
                foreign.pop(coin, None)
        return dict(foreign)

    async def reconcile(self, follower: str, snap: AccountSnapshot, why: str) -> None:
        """``snap`` was just read: bring our records within the venue's positions, and accept what remains
        different as not ours (after a flip-guard mismatch, or an outcome that stayed unknown)."""
        changed = self._svc.ledger.clamp_to_live(follower, {p.coin: p.size for p in snap.positions})
        foreign = self.adopt(follower)
        event = "copy.reconcile_after_unknown" if why == "outcome_unknown" else "copy.reconcile"
        log.warning(event, follower=follower, why=why, clamped=[k[2] for k in changed],
                    foreign={c: str(v) for c, v in foreign.items()})  # fmt: skip

    def _guard(self, follower: str, coin: str, inst: Instrument) -> tuple[Decimal, Decimal] | None:
        """``(record, live)`` when they disagree as of the last snapshot; ``None`` when they agree or the
        coin could not be judged."""
        fetched = self._fetched.get(follower)
        if fetched is None or coin not in fetched[1]:
            return None
        snap, judged = fetched
        record = judged[coin] + self._foreign.get(follower, {}).get(coin, ZERO)
        held = snap.position(coin)
        live = held.size if held is not None else ZERO
        return None if flip_guard(record, live, inst) else (record, live)

    # ------------------------------------------------------------------ screening a decision

    async def screen(
        self, follow: Follow, wanted: list[CopyIntent]
    ) -> tuple[list[CopyIntent], list[Skip], bool]:
        """The intents that may go, the skips for those that may not, and whether the follower needs a
        reconcile (the flip guard found a mismatch)."""
        svc = self._svc
        now = svc.now_ms()
        status = self._leaders.get(follow.leader)
        kept: list[CopyIntent] = []
        skipped: list[Skip] = []
        blocked: dict[str, tuple[Decimal, Decimal]] = {}
        for intent in wanted:
            if intent.reduce_only:
                kept.append(intent)
                continue
            if status is not None and status.blacklisted_until_ms is not None and not status.may_copy(now):
                until = numbers(blacklisted_until_ms=status.blacklisted_until_ms)
                skipped.append(_skip(intent, SkipReason.SKIP_LEADER_BLACKLISTED, until))
                continue
            if status is not None and status.paused:
                skipped.append(_skip(intent, SkipReason.SKIP_LEADER_PAUSED, numbers(peak=status.peak_equity)))
                continue
            if svc.config.flip_guard:
                mismatch = blocked.get(intent.coin) or self._guard(
                    intent.follower, intent.coin, await svc.market.instrument(intent.coin)
                )
                if mismatch is not None:
                    blocked[intent.coin] = mismatch
                    detail = numbers(record_size=mismatch[0], venue_size=mismatch[1])
                    skipped.append(_skip(intent, SkipReason.SKIP_FLIP_GUARD, detail))
                    log.warning("copy.flip_guard", follower=intent.follower, coin=intent.coin, **detail)
                    continue
            kept.append(intent)
        if svc.config.risk_limits is not None and kept:
            kept, refused = await self._gate(follow.follower, kept, now)
            skipped += refused
        elif self.provided and kept:
            kept, refused = self._obey_state(follow.follower, kept)
            skipped += refused
        return kept, skipped, bool(blocked)

    def _obey_state(self, follower: str, wanted: list[CopyIntent]) -> tuple[list[CopyIntent], list[Skip]]:
        """No limits, a provided state: outside ACTIVE only reduce-only intents go (what the gate's state
        check does; a copy intent that shrinks a position is always reduce-only)."""
        state = self.state(follower)
        if state is TradingState.ACTIVE:
            return wanted, []
        reason = GateReason.HALTED if state is TradingState.HALTED else GateReason.REDUCING
        text = f"{reason.value} (trading state is {state.value})"
        kept = [i for i in wanted if i.reduce_only]
        refused = [
            _skip(i, SkipReason.SKIP_RISK_GATE, numbers(gate=reason.name), text=text)
            for i in wanted
            if not i.reduce_only
        ]
        for skip in refused:
            log.info("copy.risk_refused", follower=follower, coin=skip.coin, gate=reason.name, text=text)
        return kept, refused

    async def _gate(
        self, follower: str, wanted: list[CopyIntent], now: int
    ) -> tuple[list[CopyIntent], list[Skip]]:
        limits = self._svc.config.risk_limits
        assert limits is not None
        risk = self._snapshot(follower, await self._svc.follower_snapshot(follower), now)
        if self.provided:  # one state per account: the provider's (its breakers run elsewhere)
            new = self.state(follower)
        else:
            new, changes = next_state(risk, limits, self.state(follower), now)
            await self._set_state(follower, new, changes)
        positions = dict(risk.positions)
        times = list(risk.recent_order_times_ms)
        kept: list[CopyIntent] = []
        refused: list[Skip] = []
        for intent in wanted:
            mark = self._svc.mid(intent.coin) or intent.mark or None
            current = replace(risk, positions=positions, recent_order_times_ms=tuple(times))
            leverage = None if intent.reduce_only else intent.leverage
            decision = check_order(intent.to_order(), mark, current, limits, new, now, leverage=leverage)
            if not decision.allowed:
                detail = numbers(gate=decision.reason.name, **dict(decision.numbers))
                refused.append(_skip(intent, SkipReason.SKIP_RISK_GATE, detail, text=decision.text))
                log.info("copy.risk_refused", follower=follower, coin=intent.coin, gate=decision.reason.name,
                         text=decision.text)  # fmt: skip
                continue
            kept.append(intent)
            times.append(now)
            held = positions.get(intent.coin)
            size = (held.size if held is not None else ZERO) + _signed(intent)
            price = mark or (held.mark if held is not None else intent.limit_price)
            positions[intent.coin] = PositionMark(size, price, intent.leverage)
        return kept, refused

    def _snapshot(self, follower: str, snap: AccountSnapshot, now: int) -> RiskSnapshot:
        fetched = self._fetched.get(follower)
        judged = fetched[1] if fetched is not None and fetched[0] is snap else {}
        nets = self.nets(follower)
        positions: dict[str, PositionMark] = {}
        for coin in {p.coin for p in snap.positions} | set(nets):
            held = snap.position(coin)
            size = held.size if held is not None else ZERO
            if coin in judged:  # our fills since the snapshot was read move it
                size += nets.get(coin, ZERO) - judged[coin]
            fallback = held.position_value / abs(held.size) if held is not None and held.size else ZERO
            mark = self._svc.mid(coin) or fallback
            positions[coin] = PositionMark(size, mark, held.leverage if held is not None else None)
        day = utc_day_start_ms(now)
        start = self._day.get(follower)
        if start is None or start[0] != day:
            start = self._day[follower] = (day, snap.equity)
        return RiskSnapshot(
            equity_usd=snap.equity,
            day_start_equity_usd=start[1],
            pnl_today_usd=snap.equity - start[1],  # deposits/withdrawals count: the fills are not summed
            positions=positions,
            recent_order_times_ms=self._svc.sender.order_times(follower, now),
            last_market_data_ms=self._svc.last_market_data_ms(now),
            kill_switch=follower in self._kill,
        )

    async def _set_state(self, follower: str, new: TradingState, changes: list[StateChange]) -> None:
        self._states[follower] = new
        for change in changes:  # every change is an event: logged and recorded (a restart resumes in it)
            log.warning("copy.risk_state", follower=follower, change=change.to_dict())
            try:
                await self._svc.journal.record_state_change(follower, change)
            except Exception:  # a failed record must not stop the gate; the state holds in memory
                log.exception("copy.risk_state_save_failed", follower=follower)

    # ------------------------------------------------------------------ leader health

    def saw_leader_fills(self, fills: list[Fill]) -> None:
        """Leader fills the mirror stream delivered (kept until the leader's next snapshot)."""
        for fill in fills:
            buffer = self._leader_fills.setdefault(fill.address.lower(), [])
            if len(buffer) < MAX_BUFFERED_FILLS:
                buffer.append(fill)

    async def on_leader_snapshot(self, leader: str, snap: AccountSnapshot) -> None:
        """A fresh leader snapshot was read: assess the leader's health and act on it."""
        svc = self._svc
        policy = svc.config.leader_health
        prev = self._leader_prev.get(leader)
        self._leader_prev[leader] = snap
        fills = self._leader_fills.pop(leader, [])
        if prev is not None:  # delivered late (the stream queues behind slow copies), executed before prev:
            fills = [f for f in fills if f.time_ms >= prev.time_ms]  # prev already shows them
        reflected = self._reflected.get(leader, set())
        self._reflected[leader] = {f.ref for f in fills}
        if policy is None:
            return
        now = svc.now_ms()
        status = self.leader_status(leader)
        new, events = assess_leader(status, prev, snap, fills, policy, now)
        if prev is not None and any(e.kind is LeaderEventKind.LIQUIDATED for e in events):
            # confirm: the stream may simply not have delivered the closing fills yet
            # (a backfill from the snapshot's millisecond also returns fills it already shows: left out)
            known = {f.ref for f in fills} | reflected
            backfill = await svc.leader_feed.fills_since(leader, prev.time_ms)
            fills += [f for f in backfill if f.ref not in known]
            new, events = assess_leader(status, prev, snap, fills, policy, now)
        self._leaders[leader] = new
        await self._save_status(new, now)
        for event in events:
            log.warning("copy.leader_health", leader=leader, kind=event.kind.value, coin=event.coin,
                        detail=event.detail, blacklisted_until_ms=new.blacklisted_until_ms)  # fmt: skip
        coins = sorted({e.coin for e in events if e.kind is LeaderEventKind.LIQUIDATED and e.coin})
        if coins:
            # not awaited here: the caller may hold a follow's lock, which closing needs
            task = asyncio.create_task(
                self.close_copies(leader, coins, now), name=f"copy.liquidated.{leader}"
            )
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _save_status(self, status: LeaderStatus, now: int) -> None:
        """Record a changed status: a blacklist or pause change at once, a new peak at most once a minute."""
        saved = self._saved.get(status.leader)
        if saved is not None:
            old, when = saved
            if old == status:
                return
            health_same = (old.paused, old.blacklisted_until_ms) == (
                status.paused,
                status.blacklisted_until_ms,
            )
            if health_same and now - when < PEAK_SAVE_MS:  # only the peak moved, and it was saved lately
                return
        try:
            await self._svc.journal.save_leader_status(status, now_ms=now)
        except Exception:  # the status holds in memory; the next change saves again
            log.exception("copy.leader_status_save_failed", leader=status.leader)
            return
        self._saved[status.leader] = (status, now)

    async def close_copies(self, leader: str, coins: list[str], now: int) -> None:
        """Close our copies of ``coins`` for every follow of ``leader`` (reduce-only, through ``act``)."""
        svc = self._svc
        for follow in [f for f in svc.active_follows() if f.leader == leader]:
            async with svc.lock(follow):
                if not svc.is_active(follow):
                    continue
                positions = {c: svc.ledger.position(follow.follower, leader, c) for c in coins}
                decision: Decision = decide_stop(
                    positions,
                    marks=await svc.marks(),
                    instruments=await svc.instruments(positions),
                    settings=replace(follow.settings, stop_action=StopAction.CLOSE),
                    follower=follow.follower,
                    leader=leader,
                    stop_ref=f"leader-liquidated:{now}",
                )
                decision = [
                    replace(d, reason=ExitReason.LEADER_LIQUIDATED.value) if isinstance(d, CopyIntent) else d
                    for d in decision
                ]
                log.warning("copy.leader_liquidated", follower=follow.follower, leader=leader, coins=coins,
                            closes=len(decision))  # fmt: skip
                await svc.act(follow, decision, origin_ms=None, received=None, cursor=None)


def _signed(intent: CopyIntent) -> Decimal:
    return intent.size if intent.side is Side.BUY else -intent.size


def _skip(intent: CopyIntent, reason: SkipReason, detail: dict[str, str], *, text: str = "") -> Skip:
    base = numbers(side=intent.side.value, size=intent.size, leg=intent.leg)
    if text:
        base["text"] = text
    return Skip(intent.follower, intent.leader, intent.coin, reason, base | detail, intent.fill_key)
