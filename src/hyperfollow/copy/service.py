"""``CopyService``: copy trading for several followers and leaders in one asyncio process.

The pure modules decide (``decide_mirror``, ``decide_delta``, ``decide_join``, ``plan_close``); this
shell fetches their inputs, journals, sends, records and reports:

* **Mirror** (``mirror_loop``): one leader fill stream; each fill, for each mirror follow of its leader.
* **Delta** (``delta_loop``): every ``delta_interval_secs`` per delta follow.
* **Acting on a decision** (``act``): leverage set for opening orders (before the journal, see below);
  intents, skips and the follow's leader cursor journalled in one transaction; then each new intent sent
  (taker IOC, or maker post-only with the watchdog), its outcome journalled, and an event emitted.
* **Follower fills**: each follower's fill stream is recorded (once per fill), attributed to the leader
  of the fill's cloid, and moves that leader's position (``Ledger``): per-leader budgets and PnL.
* **Start-up** (``start``): every unresolved journal entry is looked up at the venue by cloid. Found: its
  outcome is recorded (an order still resting, a maker order whose watchdog died with the process, is
  cancelled first). Not found, the venue never received it: a reduce-only order is sent now with the same
  cloid whatever its age (it can only bring us closer to the leader); an opening order is sent if it was
  decided less than ``resend_max_age_ms`` ago, else abandoned (CANCELED, with the reason) - the leader's
  position may have moved on, and the backfill below will bring its later fills. Then each follower's
  missed fills are recorded (from the last recorded one), the attributed positions are checked against
  the venue's, and the leader stream backfills from each follow's cursor.

Leverage is set *before* the intent is journalled, so an order resent at start-up already has it; a
leverage set for an order that then never goes out is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import structlog

from hyperfollow.copy import closing, startup
from hyperfollow.copy.delta_loop import DeltaLoop
from hyperfollow.copy.journal import CopyJournal, Cursor, Follow, advance_cursor
from hyperfollow.copy.lifecycle import against_net, decide_join
from hyperfollow.copy.mirror_loop import MirrorLoop, Pump, Received
from hyperfollow.copy.model import (
    CopyMode,
    Decision,
    ExistingPositions,
    FollowSettings,
    StopAction,
    intents,
    skips,
)
from hyperfollow.copy.risk_glue import RiskGlue
from hyperfollow.copy.sending import OrderJob, Sender
from hyperfollow.copy.state import COPY, CopyEvent, EventHub, EventKind, Ledger, TtlCache, copy_owner
from hyperfollow.core.market import CacheSettings, MarketCache, MarketSubscription
from hyperfollow.core.orders import OrderOwners
from hyperfollow.domain.errors import UnknownInstrument
from hyperfollow.domain.model import AccountSnapshot, Fill
from hyperfollow.domain.rules import Instrument
from hyperfollow.ports.clock import Clock
from hyperfollow.ports.venue import LeaderFeed, MarketData, Venue
from hyperfollow.risk.gate import RiskLimits, TradingState
from hyperfollow.risk.leaders import LeaderHealthPolicy

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Timing of the copy service (ms of the clock's epoch time unless named ``_secs``: seconds of its
    monotonic time, the one its sleeps run on; see ``ports.clock``)."""

    leader_snapshot_ttl_ms: int = 2_000  # leader equity / leverage for mirror sizing
    follower_snapshot_ttl_ms: int = 2_000  # follower equity (dropped on each of its fills)
    max_leader_snapshot_age_ms: int = 10_000  # delta sync trades nothing on an older leader snapshot
    resend_max_age_ms: int = 60_000  # start-up: an opening intent never received is sent if younger
    delta_tick_secs: float = 1.0
    delta_loop: bool = True
    stream_retry_secs: float = 1.0
    retry_secs: float = 0.5  # a leader fill (or its order) that failed: tried again after this, doubling
    retry_max_secs: float = 30.0  # ... up to this
    live_marks: bool = True  # keep mids from the venue's allMids stream (no request on the hot path)
    marks_max_age_secs: float = 2.0  # older streamed mids are re-read over REST
    follower_snapshot_max_stale_ms: int = 10_000  # served while a refresh runs in the background
    risk_limits: RiskLimits | None = None  # the pre-trade gate and breakers per follower; None = off
    leader_health: LeaderHealthPolicy | None = field(default_factory=LeaderHealthPolicy)  # None = off
    flip_guard: bool = True  # an open waits while our record disagrees with the venue's position
    # The account's trading state from elsewhere (``RiskService.state`` when the risk service runs beside
    # the copy engine: one state per account). Given, the copy engine runs no breakers of its own and obeys
    # it (opens refused outside ACTIVE, closes always pass); None = its own breakers (with ``risk_limits``).
    trading_state: Callable[[str], TradingState] | None = None


class CopyService:
    """Copy trading over ``venues`` (one per follower address) with ``journal`` for persistence, on
    ``clock`` (every time it reads, every wait)."""

    def __init__(
        self,
        venues: Mapping[str, Venue],
        journal: CopyJournal,
        *,
        leader_venue: Venue | None = None,
        config: ServiceConfig | None = None,
        clock: Clock,
        market_cache: MarketCache | None = None,
        owners: OrderOwners | None = None,
    ) -> None:
        if not venues and leader_venue is None:
            raise ValueError("the copy service needs at least one venue")
        self.venues = {a.lower(): v for a, v in venues.items()}
        self._leader_venue = leader_venue or next(iter(self.venues.values()))
        self.journal = journal
        self.config = config or ServiceConfig()
        # the process's market-data cache (shared with other strategies when given; over the leader venue)
        self.cache = market_cache or MarketCache(
            self._leader_venue.market,
            clock=clock,
            settings=CacheSettings(
                marks_max_age_secs=self.config.marks_max_age_secs, retry_secs=self.config.stream_retry_secs
            ),
        )
        self._mids_feed: MarketSubscription | None = None
        self.clock = clock
        self.owners = owners if owners is not None else OrderOwners()  # whose each order is (core.orders)
        self.ledger = Ledger(self.owners)
        self.hub = EventHub()
        self._follows: dict[tuple[str, str], Follow] = {}
        self._cursors: dict[tuple[str, str], Cursor] = {}
        self._preexisting: dict[tuple[str, str], set[str]] = {}
        self._fresh: set[tuple[str, str]] = set()  # follows started before ``start``: they may join
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._leaders = TtlCache[str, AccountSnapshot](self.config.leader_snapshot_ttl_ms)
        self._followers = TtlCache[str, AccountSnapshot](self.config.follower_snapshot_ttl_ms)
        self._follower_stale: set[str] = set()  # our own fills changed its equity since the snapshot
        self._refreshing: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()
        self.sender = Sender(
            self.venues, journal, self.ledger, self.hub, clock=clock,
            retry_secs=self.config.retry_secs, retry_max_secs=self.config.retry_max_secs,
        )  # fmt: skip
        self.sender.on_unknown = lambda follower: self._background_task(
            self.reconcile_follower(follower, "outcome_unknown"), f"copy.reconcile.{follower}"
        )
        self.risk = RiskGlue(self)  # pre-trade gate, flip guard, leader health (see risk_glue)
        self._fill_pumps: list[Pump[Fill]] = []
        self.mirror = MirrorLoop(self)
        self.delta = DeltaLoop(self)
        self._started = False

    # ------------------------------------------------------------------ accessors used by the loops

    def now_ms(self) -> int:
        """The clock's epoch time (ms)."""
        return self.clock.now_ms()

    @property
    def leader_feed(self) -> LeaderFeed:
        return self._leader_venue.leaders

    @property
    def market(self) -> MarketData:
        return self._leader_venue.market

    def active_follows(self) -> list[Follow]:
        return list(self._follows.values())

    def follow_of(self, follower: str, leader: str) -> Follow | None:
        return self._follows.get((follower, leader))

    def is_active(self, follow: Follow) -> bool:
        return self._follows.get(follow.key) is not None

    def cursor_of(self, follow: Follow) -> Cursor | None:
        return self._cursors.get(follow.key)

    def preexisting(self, follow: Follow) -> set[str]:
        return self._preexisting.setdefault(follow.key, set())

    def lock(self, follow: Follow) -> asyncio.Lock:
        return self._locks.setdefault(follow.key, asyncio.Lock())

    def mid(self, coin: str) -> Decimal | None:
        """The last mid seen for ``coin`` (streamed or read), without a request."""
        return self.cache.mid(coin)

    def last_market_data_ms(self, now_ms: int) -> int | None:
        """When the newest mid arrived, on the service's clock."""
        return self.cache.last_mid_ms(now_ms)

    async def marks(self, coins: Iterable[str] | None = None) -> dict[str, Decimal]:
        """Mids (``core.market``): no request on the hot path while the streamed ones are younger than
        ``marks_max_age_secs``."""
        return await self.cache.marks(coins, max_age_secs=self.config.marks_max_age_secs)

    async def leader_snapshot(self, leader: str, *, fresh: bool = False) -> AccountSnapshot:
        now = self.now_ms()
        snap = None if fresh else self._leaders.get(leader, now)
        if snap is None:
            snap = await self.leader_feed.snapshot(leader)
            self._leaders.put(leader, snap, now)
            await self.risk.on_leader_snapshot(leader, snap)
        return snap

    async def follower_snapshot(self, follower: str, *, fresh: bool = False) -> AccountSnapshot:
        """The follower's account (equity for sizing; positions come from the ledger). A snapshot past its
        TTL but younger than ``follower_snapshot_max_stale_ms`` is served while a refresh runs in the
        background, so a copy never waits for it; our own fills only schedule that refresh."""
        now = self.now_ms()
        if not fresh:
            snap = self._followers.get(follower, now)
            if snap is not None and follower not in self._follower_stale:
                return snap
            stale = self._followers.get_stale(follower, now, self.config.follower_snapshot_max_stale_ms)
            if stale is not None:
                self._refresh_follower(follower)
                return stale
        return await self._fetch_follower(follower)

    async def _fetch_follower(self, follower: str) -> AccountSnapshot:
        before = self.risk.nets(follower)
        snap = await self.venues[follower].account.snapshot()
        self._followers.put(follower, snap, self.now_ms())
        self._follower_stale.discard(follower)
        self.risk.fetched(follower, snap, before)
        return snap

    async def reconcile_follower(self, follower: str, why: str) -> None:
        """Read the follower's account now and bring our records in line with it (``RiskGlue.reconcile``)."""
        await self.risk.reconcile(follower, await self._fetch_follower(follower), why)

    def _background_task(self, work: Awaitable[None], name: str) -> None:
        async def run() -> None:
            try:
                await work
            except Exception as exc:  # a background chore never kills the service
                log.warning("copy.background_failed", task=name, error=str(exc))

        task = asyncio.create_task(run(), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _refresh_follower(self, follower: str) -> None:
        if follower in self._refreshing:
            return
        self._refreshing.add(follower)

        async def refresh() -> None:
            try:
                await self._fetch_follower(follower)  # a failure: the next copy reads it again
            finally:
                self._refreshing.discard(follower)

        self._background_task(refresh(), f"copy.refresh.{follower}")

    async def follower_equity(self, follower: str) -> Decimal:
        return (await self.follower_snapshot(follower)).equity

    # ------------------------------------------------------------------ public API

    def owns(self, cloid: str) -> bool:
        """Whether ``cloid`` is an order of this engine still at work (a maker order resting under its
        watchdog, an order awaiting its answer or its fills, a journal entry being resolved at start-up):
        its claim in ``owners``, the registry the risk service asks before it sweeps an order as stale or
        cancels it as an orphan."""
        owner = self.owners.owner_of(cloid)
        return owner is not None and owner.strategy == COPY

    def events(self) -> AsyncIterator[CopyEvent]:
        """Every event from now on (until ``close``)."""
        return self.hub.subscribe()

    def on_event(self, callback: Callable[[CopyEvent], None]) -> None:
        self.hub.on(callback)

    async def start(self) -> list[CopyEvent]:
        """Load the follows, reconcile the journal with the venue, catch up fills, then start copying.
        Returns the start-up events (resolved, resent, abandoned)."""
        await self.risk.load()  # leader statuses (and its own trading states) from before a restart
        for follow in await self.journal.follows():
            if follow.follower not in self.venues:
                log.warning("copy.follow_without_venue", follower=follow.follower, leader=follow.leader)
                continue
            self._follows[follow.key] = follow
            cursor = await self.journal.cursor(follow.follower, follow.leader)
            if cursor is not None:
                self._cursors[follow.key] = cursor
        catch_up: dict[str, int] = {}
        for follower in self.venues:
            self.ledger.load(await self.journal.positions(follower))
            catch_up[follower] = await startup.fills_from(self, follower)
        claimed = await self._claim_unresolved()
        events = await startup.recover(self)
        self._release_landed(claimed)
        for follower, since in catch_up.items():
            await self._catch_up(follower, since)
        for follow in self.active_follows():
            await self._activate(follow, fresh=follow.key in self._fresh)
        self._fresh.clear()
        if self.config.live_marks and self._mids_feed is None:
            self._mids_feed = self.cache.subscribe_mids()
        await self.mirror.restart()
        if self.config.delta_loop:
            self.delta.start()
        self._started = True
        return events

    async def _claim_unresolved(self) -> list[tuple[str, str | None]]:
        """Claim the journal's open entries (orders that may be at the venue) before they are resolved: the
        registry knows them from the first moment of a restart. Returns the (cloid, leader) claimed."""
        claimed = []
        for entry in await self.journal.unresolved():
            if entry.follower in self.venues:
                self.owners.claim(entry.cloid, copy_owner(entry.leader))
                claimed.append((entry.cloid, entry.leader))
        return claimed

    def _release_landed(self, claimed: Iterable[tuple[str, str | None]]) -> None:
        """After start-up recovery, the entries it settled are ours no longer; the orders it sent again are
        flights (claimed and released by the ledger)."""
        flying = {c.lower() for c in self.ledger.in_flight_cloids()}
        for cloid, leader in claimed:
            if cloid.lower() not in flying:
                self.owners.release(cloid, copy_owner(leader))

    async def close(self) -> None:
        """Stop every task and stream; the journal is left as it is (nothing half-written)."""
        await self.delta.stop()
        await self.mirror.stop()
        for pump in self._fill_pumps:
            await pump.stop()
        self._fill_pumps = []
        if self._mids_feed is not None:
            await self._mids_feed.aclose()
            self._mids_feed = None
        tasks = [*self._background, *self.risk.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.hub.close()
        self._started = False

    async def follow(self, follower: str, leader: str, settings: FollowSettings) -> Follow:
        """Start (or re-configure) a follow. A follow that was not active copies from now on (a re-started
        one does not catch up on what the leader did while it was stopped) and joins the leader's open
        positions if its settings say JOIN."""
        follower, leader = follower.lower(), leader.lower()
        key = (follower, leader)
        if follower not in self.venues:
            raise KeyError(f"no venue for follower {follower}")
        active = key in self._follows
        if not active and not self._started:
            active = any(f.key == key for f in await self.journal.follows())
        now = self.now_ms()
        saved = await self.journal.save_follow(Follow(follower, leader, settings), now_ms=now)
        self._follows[key] = saved
        if not active:
            cursor = await self._start_cursor(leader, now)
            await self.journal.advance(follower, leader, cursor, now_ms=now)
            self._cursors[key] = cursor
            self._fresh.add(key)
        log.info("copy.follow", follower=follower, leader=leader, mode=settings.mode.value, new=not active)
        if self._started:
            await self._activate(saved, fresh=key in self._fresh)
            self._fresh.discard(key)
            await self.mirror.restart()
        return saved

    async def _start_cursor(self, leader: str, now: int) -> Cursor:
        """Where a follow starting ``now`` begins: after the leader's latest fill of this millisecond (fills
        share milliseconds), else just before it."""
        fills = await self.leader_feed.fills_since(leader, now)
        if fills:
            return advance_cursor(None, fills)
        return Cursor(now - 1, f"follow:{now}")

    async def stop_follow(
        self, follower: str, leader: str, action: StopAction | None = None
    ) -> list[CopyEvent]:
        """Stop copying ``leader``: KEEP our positions, or CLOSE them - the follow's ``stop_action`` unless
        ``action`` is given. Closing closes the follow's share of the account's net position (reduce-only,
        never more than the net) and settles what offsets other follows' shares (``copy.closing``)."""
        follow = self._follows.get((follower.lower(), leader.lower()))
        if follow is None:
            return []
        events = await closing.stop_follows(self, [follow], action)
        await self.mirror.restart()
        return events

    async def stop_all(self, action: StopAction | None = None) -> list[CopyEvent]:
        """Stop every follow (``action``, else each one's own). Closing all of an account's follows closes
        its net position once per coin and settles every ledger."""
        events = await closing.stop_follows(self, self.active_follows(), action)
        await self.mirror.restart()
        return events

    def deactivate(self, follow: Follow) -> None:
        """No copy starts for ``follow`` from now on (the caller holds its lock and ends the follow)."""
        self._follows.pop(follow.key, None)

    async def delta_round(self) -> list[CopyEvent]:
        """One delta-sync round for every delta follow, now."""
        return await self.delta.round()

    async def settle(self, rounds: int = 200) -> None:
        """Wait until everything the streams delivered so far is handled, including the fills of the
        orders that handling sent (tests and demos; the in-process venue delivers synchronously)."""
        for _ in range(rounds):
            for _ in range(5):
                await self.clock.sleep(0)
            pumps = self._fill_pumps
            tasks = [*self._background, *self.risk.tasks]  # refreshes, reconciles, liquidation closes
            if not any(p.busy for p in pumps) and not self.mirror.busy and not tasks:
                return
            await asyncio.gather(
                *(p.join() for p in pumps), self.mirror.join(), *tasks, return_exceptions=True
            )

    def leader_pnl(self, follower: str, marks: Mapping[str, Decimal]) -> dict[str, Decimal]:
        """PnL per leader of ``follower``'s copies: realized (net of fees) plus unrealized at ``marks``."""
        out: dict[str, Decimal] = {}
        for p in self.ledger.all_positions(follower.lower()):
            mark = marks.get(p.coin)
            unrealized = p.unrealized(mark) if mark is not None else Decimal(0)
            out[p.leader] = out.get(p.leader, Decimal(0)) + p.realized_pnl + unrealized
        return out

    # ------------------------------------------------------------------ acting on decisions

    async def act(
        self,
        follow: Follow,
        decision: Decision,
        *,
        origin_ms: int | None,
        received: float | None,
        cursor: Cursor | None,
        retry_sends: bool = False,
        catch_up: bool = False,
    ) -> list[CopyEvent]:
        """Journal a decision (with the follow's cursor), then send its new intents in order.

        ``retry_sends``: an order that did not reach the venue (``TransientError``) is sent again until the
        venue answers (``Sender.execute``'s ``until_answered``), rather than recorded as rejected.
        ``catch_up``: the decision catches up on missed leader fills (its events say so)."""
        wanted, skipped = intents(decision), skips(decision)
        wanted = against_net(wanted, lambda coin: self.ledger.net_position(follow.follower, coin))
        reconcile = False
        if wanted:  # leader health, flip guard, pre-trade gate: refusals become skips
            wanted, refused, reconcile = await self.risk.screen(follow, wanted)
            skipped += refused
        if not wanted and not skipped and cursor is None:
            return []
        venue = self.venues[follow.follower]
        for intent in wanted:
            if not intent.reduce_only:
                await self.sender.ensure_leverage(venue, intent)
        now = self.now_ms()
        new = await self.journal.begin(
            wanted,
            skips=skipped,
            cursor=(follow.follower, follow.leader, cursor) if cursor is not None else None,
            now_ms=now,
        )
        if cursor is not None:
            old = self._cursors.get(follow.key)
            if old is None or cursor.time_ms >= old.time_ms:
                self._cursors[follow.key] = cursor
        events: list[CopyEvent] = []
        for skip in skipped:
            log.info("copy.skipped", follower=skip.follower, leader=skip.leader, coin=skip.coin,
                     reason=skip.reason.code, detail=dict(skip.detail), fill=skip.fill_key,
                     catch_up=catch_up)  # fmt: skip
            event = CopyEvent(EventKind.SKIPPED, skip.follower, skip.leader, skip.coin, now,
                              fill_key=skip.fill_key, reason=skip.text, skip_reason=skip.reason,
                              detail=skip.detail, catch_up=catch_up)  # fmt: skip
            self.hub.emit(event)
            events.append(event)
        for intent in new:
            order = OrderJob(intent.follower, intent.leader, intent.to_order(), intent.leg, intent.fill_key,
                           intent.reason)  # fmt: skip
            event = await self.sender.execute(
                order, follow.settings, origin_ms=origin_ms, received=received, until_answered=retry_sends,
                catch_up=catch_up,
            )  # fmt: skip
            events.append(event)
        if reconcile:  # the flip guard blocked: the venue is the truth, read it before the next copy
            await self.reconcile_follower(follow.follower, "flip_guard")
        return events

    async def instruments(self, coins: Mapping[str, object] | set[str]) -> dict[str, Instrument]:
        out: dict[str, Instrument] = {}
        for coin in coins:
            with contextlib.suppress(UnknownInstrument):
                out[coin] = await self.market.instrument(coin)
        return out

    # ------------------------------------------------------------------ follows

    async def _activate(self, follow: Follow, *, fresh: bool) -> None:
        """Note the leader's open positions as preexisting; a fresh follow with JOIN joins them."""
        leader = await self.leader_snapshot(follow.leader, fresh=True)
        held = self.ledger.positions_of(follow.follower, follow.leader)
        pre = {p.coin for p in leader.positions if p.size != 0 and not held.get(p.coin)}
        self._preexisting[follow.key] = pre
        if follow.settings.mode is CopyMode.DELTA:
            return  # delta rounds apply existing_positions themselves, within the follow's exposure bound
        if not fresh or follow.settings.existing_positions is not ExistingPositions.JOIN or not pre:
            return
        marks = await self.marks()
        instruments = await self.instruments(pre)
        decision: Decision = []
        for position in leader.positions:
            inst, mark = instruments.get(position.coin), marks.get(position.coin)
            if inst is None or mark is None or position.coin not in pre:
                continue
            decision += decide_join(
                position,
                leader_equity=leader.equity,
                follower_equity=await self.follower_equity(follow.follower),
                follower_position=self.ledger.position(follow.follower, follow.leader, position.coin),
                mark=mark,
                instrument=inst,
                settings=follow.settings,
                follower=follow.follower,
                leader=follow.leader,
                budget_used_usd=self.ledger.budget_used(follow.follower, follow.leader, marks),
            )
        async with self.lock(follow):
            await self.act(follow, decision, origin_ms=None, received=None, cursor=None)
        pre -= {i.coin for i in intents(decision)}  # joined: its adds and closes are ours to copy now

    # ------------------------------------------------------------------ start-up and follower fills

    async def _catch_up(self, follower: str, since_ms: int) -> None:
        """Record the fills missed while down, check our positions against the venue's, then stream."""
        venue = self.venues[follower]
        now = self.now_ms()
        missed = await venue.account.fills_since(since_ms)
        for fill in missed:
            await self._record_fill(fill)
        log.info("copy.caught_up", follower=follower, since_ms=since_ms, fills=len(missed))
        live = {p.coin: p.size for p in (await self.follower_snapshot(follower, fresh=True)).positions}
        changed = self.ledger.clamp_to_live(follower, live)
        self.risk.adopt(follower)  # what the venue holds beyond our records (manual trades) is not ours
        for key in changed:
            log.warning(
                "copy.reconciled",
                follower=key[0],
                leader=key[1],
                coin=key[2],
                venue_size=str(live.get(key[2], 0)),
            )

        async def open_stream() -> AsyncIterator[Fill]:
            return venue.account.stream_fills(since_ms=now)

        async def handle(batch: list[Received[Fill]]) -> None:
            for fill, _ in batch:
                await self._record_fill(fill)

        pump = Pump(f"copy.fills.{follower}", open_stream, handle, clock=self.clock,
                    retry_secs=self.config.stream_retry_secs)  # fmt: skip
        pump.start()
        self._fill_pumps.append(pump)

    async def _record_fill(self, fill: Fill) -> None:
        recorded = await self.journal.record_fill(fill, leader=self.ledger.leader_of(fill.cloid))
        if recorded is None:
            return
        follower = fill.address.lower()
        self._follower_stale.add(follower)  # equity moved: refreshed in the background, never waited for
        self._refresh_follower(follower)
        self.ledger.on_fill(fill, recorded)
        if recorded.leader is None:
            log.info("copy.foreign_fill", follower=fill.address, coin=fill.coin, size=str(fill.size),
                     cloid=fill.cloid, liquidation=fill.liquidation)  # fmt: skip
            # not a copy, yet it shrank the position (the risk layer's stop, a liquidation, a manual close):
            # the shares go with it, as far as the venue position after this fill says
            start, end = fill.start_position, fill.start_position + fill.signed_size
            if abs(end) < abs(start) or start * end < 0:
                for key in self.ledger.clamp_to_live(follower, {fill.coin: end}, coins={fill.coin}):
                    log.warning("copy.shares_closed_by_fill", follower=key[0], leader=key[1], coin=key[2],
                                venue_size=str(end), cloid=fill.cloid)  # fmt: skip
