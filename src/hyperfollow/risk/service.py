"""The risk service: the shell that runs the pure risk pieces against live venues.

For a set of accounts (one ``Venue`` per account, sharing the market data of the first):

* a :class:`PositionBook` kept from each account's fill stream and the mids stream (never polled per
  account in the loop; reconciliation corrects it every ``reconcile_interval_secs``);
* every ``scan_interval_secs``: ``book.check(now)`` -> exit actions -> the exactly-once closer (full
  closes, or partial closes for take-profit tiers, the ``ExitReason`` as the reason), then the stop keeper
  for the positions whose native stop moved or whose size changed;
* every ``pending_check_secs``: open orders older than ``pending_timeout_secs`` that no component owns are
  cancelled to free margin. Owned orders are never swept: whatever the order-ownership registry
  (``owners``, ``core.orders``, shared with the other components of the process) says someone owns: our own
  stops (``Owner("risk", "stop")``), the copy engine's resting maker orders and orders in flight; trigger
  orders, ours or not, are left alone too (stops and take-profits wait by design). The open orders come
  from the order-update stream (``risk.orders.OpenOrderBook``), not from polling ``frontendOpenOrders``
  (weight 20 per dex: every 2 s on two dexes it would spend the whole per-IP budget); a REST read refreshes
  them at each reconciliation and confirms an order the stream alone showed before it is cancelled;
* the breaker tick: a ``RiskSnapshot`` per account (equity from the account snapshot every
  ``equity_refresh_secs``, PnL today = equity - the UTC day's first equity, positions from the book, the
  time of the last mids message) -> ``next_state`` -> ``StateChange`` events (logged ``risk.state_change``,
  kept in :attr:`RiskService.changes`, handed to ``on_state_change`` for persistence); a change into
  HALTED with ``flatten`` closes every position of the account;
* a dead man's switch per account, renewed while :meth:`RiskService.healthy`;
* reconciliation at start, every ``reconcile_interval_secs`` and after any stream gap: flat sweep, adoption
  (default policy, ``risk.adopted``), record fixes, orphan orders (owned by no one) cancelled.

Every loop and stream is supervised: an exception (a venue error, a database error, a bug) is logged with
the loop's name (``risk.loop_failed``), the loop goes on after a capped backoff, and :meth:`healthy` is
False until that loop succeeds again (:meth:`health` names what fails). A change into HALTED flattens first
and is persisted after; a persistence that fails is retried at the next breaker tick.

Persistence (the shell's, e.g. ``store.risk_persist``): ``restore=`` the holdings recorded before a restart;
``on_holdings_change(account, holdings)`` is handed an account's whole set of holdings after each of its
fills, after a scan that evaluated its positions and after each reconciliation (a failure there is logged,
never stops risk).

Everything the loops do is also a public one-shot coroutine (``scan_once``, ``cancel_stale_orders``,
``breaker_tick``, ``reconcile_once``), which is how tests drive it deterministically.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import structlog

from hyperfollow.core.orders import OrderOwners, Owner
from hyperfollow.domain.errors import OutcomeUnknown, TransientError, VenueRejected
from hyperfollow.domain.model import CancelRequest, Fill, OrderState
from hyperfollow.ports.clock import Clock
from hyperfollow.ports.venue import Venue
from hyperfollow.risk.breakers import StateChange, next_state, utc_day_start_ms
from hyperfollow.risk.close import CloseResult, ExactlyOnceCloser
from hyperfollow.risk.deadman import DeadMansSwitch
from hyperfollow.risk.exits import ExitPolicy, ExitReason, ExitState, native_stop_price
from hyperfollow.risk.gate import PositionMark, RiskLimits, RiskSnapshot, TradingState
from hyperfollow.risk.locks import CloseLock, LocalCloseLock
from hyperfollow.risk.orders import OpenOrderBook
from hyperfollow.risk.reconcile import ActionKind, reconcile
from hyperfollow.risk.scan import Holding, PositionBook
from hyperfollow.risk.stops import StopKeeper, StopTarget

log = structlog.get_logger(__name__)

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class RiskSettings:
    """Periods (seconds), the default exit policy and the breaker limits."""

    scan_interval_secs: float = 1.0
    pending_timeout_secs: float = 5.0
    pending_check_secs: float = 2.0
    equity_refresh_secs: float = 30.0
    breaker_interval_secs: float = 1.0
    reconcile_interval_secs: float = 60.0
    default_policy: ExitPolicy = field(default_factory=ExitPolicy)
    limits: RiskLimits = field(default_factory=RiskLimits)
    native_stops: bool = True
    stop_min_step_pct: Decimal = Decimal("0.5")
    stop_max_moves_per_min: int = 20
    deadman: bool = True
    loop_backoff_max_secs: float = 30.0  # a failing loop retries after its period, doubled each time, capped


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """Something a UI shows: ``kind`` is the log event's name without ``risk.``."""

    kind: str
    account: str
    coin: str | None
    time_ms: int
    data: Mapping[str, Any] = field(default_factory=dict)


GAP_EVENTS = frozenset({"gap", "backfilled"})  # StreamEvent kinds after which we reconcile


class AccountStates(dict[str, TradingState]):
    """Each account's trading state, by (lower-case) account; also callable, ``states(account)`` (ACTIVE for
    an account it does not know), which is the provider the copy engine takes
    (``ServiceConfig.trading_state=risk.state``: one trading state per account)."""

    def __call__(self, account: str) -> TradingState:
        return self.get(account.lower(), TradingState.ACTIVE)


class RiskService:
    """Exits, native stops, stale orders, breakers, dead man's switch and reconciliation for ``venues``."""

    def __init__(
        self,
        venues: Mapping[str, Venue],
        *,
        clock: Clock,
        settings: RiskSettings | None = None,
        lock: CloseLock | None = None,
        closer: ExactlyOnceCloser | None = None,
        owners: OrderOwners | None = None,
        policy_for: Callable[[str, str], ExitPolicy] | None = None,
        on_state_change: Callable[[str, StateChange], Awaitable[None] | None] | None = None,
        restore: Iterable[Holding] = (),
        on_holdings_change: Callable[[str, list[Holding]], Awaitable[None] | None] | None = None,
        restore_states: Mapping[str, TradingState] | None = None,
    ) -> None:
        if not venues:
            raise ValueError("a risk service needs at least one account")
        self.venues = {a.lower(): v for a, v in venues.items()}
        self.settings = s = settings or RiskSettings()
        self._clock = clock
        self.market = next(iter(self.venues.values())).market
        self.closer = closer or ExactlyOnceCloser(
            self.venues, lock or LocalCloseLock(clock=clock), clock=clock
        )
        self.owners = owners if owners is not None else OrderOwners()  # whose each order is
        self.stops = StopKeeper(
            {a: v.gateway for a, v in self.venues.items()}, self.market, clock=clock,
            min_step_pct=s.stop_min_step_pct, max_moves_per_min=s.stop_max_moves_per_min, owners=self.owners,
        )  # fmt: skip
        self.book = PositionBook()
        for holding in restore:  # our records from before a restart (the store's): reconciled at start
            self.book.upsert(replace(holding, account=holding.account.lower()))
        self.open_orders = OpenOrderBook()
        self._order_streams: set[str] = set()  # accounts whose open orders the stream keeps
        self._failing: dict[str, str] = {}  # loop or stream name -> its last error, while it fails
        self._unsaved: list[tuple[str, StateChange]] = []  # state changes whose persistence failed
        self._policy_for = policy_for or (lambda _a, _c: s.default_policy)
        self._on_state_change = on_state_change
        self._on_holdings_change = on_holdings_change
        self._save_lock = asyncio.Lock()  # saves in order, each of the book as it is then
        self.listeners: list[Callable[[RiskEvent], None]] = []
        self.state = AccountStates(dict.fromkeys(self.venues, TradingState.ACTIVE))  # risk.state(account)
        for account, state in (restore_states or {}).items():  # a halt outlives a restart (reset is manual)
            if account.lower() in self.state:
                self.state[account.lower()] = state
        self.changes: list[tuple[str, StateChange]] = []
        self.kill_switch = False
        self.last_mids_ms: int | None = None
        self._leverage: dict[Key, int] = {}
        self._equity: dict[str, tuple[int, Decimal]] = {}  # account -> (time read, equity)
        self._day_start: dict[str, tuple[int, Decimal]] = {}  # account -> (UTC day start, first equity)
        self._dirty: set[Key] = set()  # positions whose native stop must be re-synced
        self._closing: dict[Key, asyncio.Task[CloseResult]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._deadmen: list[DeadMansSwitch] = []

    # ------------------------------------------------------------------ events

    def _emit(self, kind: str, account: str, coin: str | None = None, **data: Any) -> None:
        event = RiskEvent(kind, account, coin, self._clock.now_ms(), data)
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a broken UI must never stop risk
                log.exception("risk.listener_failed", kind=kind)

    async def _holdings_changed(self, accounts: Iterable[str]) -> None:
        """Hand each account's holdings to ``on_holdings_change`` (the store's record of them)."""
        if self._on_holdings_change is None:
            return
        async with self._save_lock:
            for account in sorted(set(accounts)):
                try:
                    pending = self._on_holdings_change(account, self._holdings(account))
                    if pending is not None:
                        await pending
                except Exception:  # a failed save must never stop risk; the next change saves again
                    log.exception("risk.save_failed", account=account)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Subscribe to fills, order updates and mids, reconcile, then run the loops."""
        streams: list[tuple[str, Callable[[], Awaitable[None]]]] = [("mids", self._pump_mids)]
        watched: list[Venue] = []
        for venue in self.venues.values():
            if all(venue is not w for w in watched):
                watched.append(venue)
        streams += [(f"gaps.{i}", lambda v=v: self._watch_gaps(v)) for i, v in enumerate(watched)]  # type: ignore[misc]
        for account, venue in self.venues.items():
            # subscribed before reconciling: nothing falls in between
            fills = venue.account.stream_fills()
            streams.append((f"fills.{account}", self._fill_pump(account, fills)))
            orders = self._subscribe_orders(account, venue)
            if orders is not None:
                streams.append((f"orders.{account}", self._order_pump(account, orders)))
        self._tasks = [asyncio.create_task(self._supervised(n, run), name=f"risk.{n}") for n, run in streams]
        self.book.set_marks(await self.market.mids())
        self.last_mids_ms = self._clock.now_ms()
        await self.reconcile_once()
        await self.refresh_equity(force=True)
        s = self.settings
        loops: list[tuple[str, float, Callable[[], Awaitable[object]]]] = [
            ("scan", s.scan_interval_secs, lambda: self.scan_once(wait=False)),
            ("pending", s.pending_check_secs, self.cancel_stale_orders),
            ("breakers", s.breaker_interval_secs, self.breaker_tick),
            ("reconcile", s.reconcile_interval_secs, self.reconcile_once),
        ]
        self._tasks += [asyncio.create_task(self._every(n, p, f), name=f"risk.{n}") for n, p, f in loops]
        if s.deadman:
            for venue in self.venues.values():
                switch = DeadMansSwitch(venue.gateway, clock=self._clock, healthy=self.healthy)
                switch.start()
                self._deadmen.append(switch)
        log.info("risk.started", accounts=sorted(self.venues), positions=len(self.book),
                 order_streams=sorted(self._order_streams))  # fmt: skip

    def _subscribe_orders(self, account: str, venue: Venue) -> AsyncIterator[OrderState] | None:
        """The account's order-update stream, or None (then the sweep reads open orders over REST)."""
        try:
            stream = venue.account.stream_orders()
        except Exception as exc:  # e.g. no WS user slot left for it on this IP
            log.warning("risk.no_order_stream", account=account, error=str(exc))
            return None
        self._order_streams.add(account)
        return stream

    def _fill_pump(self, account: str, first: AsyncIterator[Fill]) -> Callable[[], Awaitable[None]]:
        """Runs the fill stream; a restarted stream resubscribes and reconciles (what it missed)."""
        streams = [first]

        async def run() -> None:
            if not streams:
                streams.append(self.venues[account].account.stream_fills())
                await self.reconcile_once()
            try:
                async for fill in streams[0]:
                    await self.on_fill(account, fill)
            finally:
                streams.clear()

        return run

    def _order_pump(self, account: str, first: AsyncIterator[OrderState]) -> Callable[[], Awaitable[None]]:
        """Keeps ``open_orders`` from the stream; a restarted stream resubscribes and re-reads over REST."""
        streams = [first]

        async def run() -> None:
            if not streams:
                streams.append(self.venues[account].account.stream_orders())
                await self.read_open_orders(account)
            try:
                async for update in streams[0]:
                    self.open_orders.apply(account, update)
            finally:
                streams.clear()

        return run

    async def _watch_gaps(self, venue: Venue) -> None:
        """Reconcile after any stream gap: what happened while a stream was down (fills, order updates) is
        read from the venue."""
        async for event in venue.events():
            if event.kind in GAP_EVENTS:
                log.info("risk.reconcile_after_gap", stream_event=event.kind, detail=event.detail)
                try:
                    await self.reconcile_once()
                except Exception:  # the periodic reconcile tries again; never stop risk for it
                    log.exception("risk.reconcile_failed")

    async def stop_tasks(self) -> None:
        """Stop every loop and stream at once, clearing nothing (what a crash leaves behind)."""
        for task in [*self._tasks, *self._closing.values()]:
            task.cancel()
        for task in [*self._tasks, *self._closing.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for switch in self._deadmen:
            await switch.stop(clear=False)
        self._tasks, self._closing, self._deadmen = [], {}, []

    async def close(self) -> None:
        """A planned stop: the loops end and the dead man's switches are cleared (native stops stay)."""
        deadmen = self._deadmen
        self._deadmen = []
        await self.stop_tasks()
        for switch in deadmen:
            await switch.stop(clear=True)
        log.info("risk.stopped")

    def _backoff(self, period: float, failures: int) -> float:
        return float(min(self.settings.loop_backoff_max_secs, max(period, 0.05) * 2 ** min(failures, 30)))

    def _failed(self, name: str, exc: BaseException) -> None:
        self._failing[name] = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, VenueRejected | TransientError | OutcomeUnknown):
            log.warning("risk.loop_failed", loop=name, error=str(exc))
        else:  # not the venue's: a database error, a bug; with its traceback
            log.exception("risk.loop_failed", loop=name, error=str(exc))

    def _recovered(self, name: str) -> None:
        if self._failing.pop(name, None) is not None:
            log.info("risk.loop_recovered", loop=name)

    async def _every(self, name: str, period: float, step: Callable[[], Awaitable[object]]) -> None:
        """Run ``step`` every ``period`` seconds, whatever it raises (see the module docstring)."""
        failures = 0
        while True:
            await self._clock.sleep(period if not failures else self._backoff(period, failures - 1))
            try:
                await step()
            except Exception as exc:
                failures += 1
                self._failed(name, exc)
                continue
            failures = 0
            self._recovered(name)

    async def _supervised(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run a stream consumer for good: restarted (after a capped backoff) when it fails or ends."""
        failures = 0
        while True:
            try:
                await run()
                raise RuntimeError("the stream ended")
            except Exception as exc:
                self._failed(name, exc)
            await self._clock.sleep(self._backoff(1.0, failures))
            failures += 1

    def healthy(self) -> bool:
        """Mids fresh, every loop and stream alive, none failing (the dead man's switch renews only then)."""
        return not self.health()

    def health(self) -> dict[str, str]:
        """What is wrong now, by loop or stream name (empty: healthy)."""
        problems = dict(self._failing)
        age = None if self.last_mids_ms is None else self._clock.now_ms() - self.last_mids_ms
        if age is None or age >= self.settings.limits.stale_market_data_ms:
            problems.setdefault("mids", "stale" if age is not None else "none yet")
        if any(t.done() for t in self._tasks):
            problems.setdefault("tasks", "a loop ended")
        if self._unsaved:
            problems.setdefault("persistence", f"{len(self._unsaved)} state change(s) not saved")
        return problems

    # ------------------------------------------------------------------ streams

    async def _pump_mids(self) -> None:
        async for mids in self.market.stream_mids():
            self.book.set_marks(mids)
            self.last_mids_ms = self._clock.now_ms()

    async def on_fill(self, account: str, fill: Fill) -> None:
        """Apply one of our fills to the book (positions are never polled per fill)."""
        account = account.lower()
        key = (account, fill.coin)
        leverage = self._leverage.get(key)
        if leverage is None and self.book.get(account, fill.coin) is None:
            leverage = await self._read_leverage(account, fill.coin)  # a new position only: rare
        self.book.on_fill(
            account, fill.coin, side=fill.side, size=fill.size, price=fill.price, time_ms=fill.time_ms,
            leverage=leverage, policy=self._policy_for(account, fill.coin),
        )  # fmt: skip
        self._dirty.add(key)
        await self._holdings_changed([account])

    async def _read_leverage(self, account: str, coin: str) -> int:
        snapshot = await self.venues[account].account.snapshot()
        for p in snapshot.positions:
            self._leverage[(account, p.coin)] = p.leverage
        return self._leverage.get((account, coin), 1)

    # ------------------------------------------------------------------ scan and stops

    async def scan_once(self, *, wait: bool = True) -> list[CloseResult]:
        """One monitor pass: exits closed through the closer, then native stops synced. ``wait`` awaits
        the closes started (the loop does not: a slow close must not delay the next scan)."""
        started: list[asyncio.Task[CloseResult]] = []
        checked: list[Key] = []
        for decision in self.book.check(self._clock.now_ms()):
            checked.append((decision.account, decision.coin))
            key = (decision.account, decision.coin)
            self._dirty.add(key)
            if decision.actions and key not in self._closing:
                task = asyncio.create_task(self._exit(decision.account, decision.coin, decision.actions))
                self._closing[key] = task
                task.add_done_callback(lambda _t, k=key: self._closing.pop(k, None))  # type: ignore[misc]
                started.append(task)
        await self.sync_stops()
        await self._holdings_changed(a for a, _ in checked)
        if not wait:
            return []
        return list(await asyncio.gather(*started))

    async def _exit(self, account: str, coin: str, actions: Iterable[Any]) -> CloseResult:
        """Closes of one position in order: a full close, or take-profit tiers (each a fraction of what is
        left: the closer reads the live position, so ``action.size`` is re-expressed against it)."""
        result: CloseResult | None = None
        amount: Decimal | None = None
        closed = Decimal(0)
        for action in actions:
            if amount is None:
                amount = action.size / action.fraction
            remaining = amount - closed
            fraction = Decimal(1) if action.full else min(Decimal(1), action.size / remaining)
            result = await self.closer.close(account, coin, action.reason.value, fraction)
            self._emit("close", account, coin, reason=action.reason.value, status=result.status.value,
                       filled=str(result.filled), tier=action.tier)  # fmt: skip
            closed += action.size
            if not result.ok:
                break
        assert result is not None
        return result

    async def sync_stops(self) -> None:
        """Re-sync the native stops of the positions marked dirty (fills, stop moves, reconciliation)."""
        if not self.settings.native_stops or not self._dirty:
            return
        targets = []
        for account, coin in sorted(self._dirty):
            h = self.book.get(account, coin)
            if h is None:
                targets.append(StopTarget(account, coin, Decimal(0), None))
                continue
            level = native_stop_price(h.policy, h.state, size=h.size, entry_price=h.entry_price,
                                      leverage=h.leverage)  # fmt: skip
            targets.append(StopTarget(account, coin, h.size, level))
        self._dirty.clear()
        report = await self.stops.sync(targets)
        if report.placed or report.moved or report.cancelled or report.skipped:
            self._emit("stops", "*", None, placed=report.placed, moved=report.moved,
                       cancelled=report.cancelled, skipped=report.skipped)  # fmt: skip

    # ------------------------------------------------------------------ stale pending orders

    def owned(self, account: str, order: OrderState) -> bool:
        """The order belongs to a component: one of our stops, or one claimed in ``owners``."""
        return self.stops.is_stop(account, order) or self.owners.owns(order.cloid)

    def owner_of(self, order: OrderState) -> Owner | None:
        """Whose ``order`` is (a UI's question), None when no component owns it."""
        return self.owners.owner_of(order.cloid)

    def _stale(self, account: str, orders: Iterable[OrderState], now: int) -> list[OrderState]:
        timeout_ms = int(self.settings.pending_timeout_secs * 1000)
        return [
            o for o in orders
            if o.trigger_price is None and now - o.timestamp_ms >= timeout_ms and not self.owned(account, o)
        ]  # fmt: skip

    async def read_open_orders(self, account: str) -> list[OrderState]:
        """Read the account's open orders over REST (and refresh the stream-kept book with them)."""
        account = account.lower()
        self.open_orders.begin_read(account)
        try:
            orders = await self.venues[account].account.open_orders()
        except BaseException:
            self.open_orders.abort_read(account)
            raise
        self.open_orders.load(account, orders)
        return orders

    async def cancel_stale_orders(self) -> list[int]:
        """Cancel resting (non-trigger) orders older than ``pending_timeout_secs`` that no component owns;
        their oids. An order only the stream showed is confirmed by a REST read first (the stream does not
        say whether an order is a trigger order)."""
        now = self._clock.now_ms()
        cancelled: list[int] = []
        for account, venue in self.venues.items():
            if account in self._order_streams and self.open_orders.loaded(account):
                stale = self._stale(account, self.open_orders.orders(account), now)
                if any(not self.open_orders.confirmed(account, o.oid) for o in stale):
                    stale = self._stale(account, await self.read_open_orders(account), now)
            else:  # no order stream: read them
                stale = self._stale(account, await self.read_open_orders(account), now)
            if not stale:
                continue
            errors = await venue.gateway.cancel_batch([CancelRequest(o.coin, oid=o.oid) for o in stale])
            for order, error in zip(stale, errors, strict=True):
                self.open_orders.remove(account, order.oid)  # cancelled, or no longer open
                if error is None:
                    cancelled.append(order.oid)
                    log.info("risk.pending_cancelled", account=account, coin=order.coin, oid=order.oid,
                             age_ms=now - order.timestamp_ms)  # fmt: skip
                    self._emit("pending_cancelled", account, order.coin, oid=order.oid)
        return cancelled

    # ------------------------------------------------------------------ breakers

    def set_kill_switch(self, on: bool) -> None:
        """The manual kill switch (takes effect at the next breaker tick)."""
        self.kill_switch = on
        log.warning("risk.kill_switch", on=on)

    async def refresh_equity(self, *, force: bool = False) -> None:
        """Read each account's snapshot at a modest rate (``equity_refresh_secs``): equity, leverage and
        liquidation prices."""
        now = self._clock.now_ms()
        for account, venue in self.venues.items():
            last = self._equity.get(account)
            if not force and last is not None and now - last[0] < self.settings.equity_refresh_secs * 1000:
                continue
            snapshot = await venue.account.snapshot()
            self._equity[account] = (now, snapshot.equity)
            day = utc_day_start_ms(now)
            if self._day_start.get(account, (None,))[0] != day:
                self._day_start[account] = (day, snapshot.equity)
            for p in snapshot.positions:
                self._leverage[(account, p.coin)] = p.leverage
                self.book.set_liquidation_price(account, p.coin, p.liquidation_price)

    def snapshot(self, account: str) -> RiskSnapshot:
        """The breakers' view of ``account`` now (positions from the book, not from the venue)."""
        account = account.lower()
        equity = self._equity.get(account, (0, Decimal(0)))[1]
        day_equity = self._day_start.get(account, (0, equity))[1]
        positions: dict[str, PositionMark] = {}
        for i in range(len(self.book)):
            h = self.book.holding(i)
            mark = self.book.mark(h.coin)
            if h.account == account and mark is not None:
                positions[h.coin] = PositionMark(h.size, mark, int(h.leverage))
        return RiskSnapshot(
            equity_usd=equity, day_start_equity_usd=day_equity, pnl_today_usd=equity - day_equity,
            positions=positions, last_market_data_ms=self.last_mids_ms, kill_switch=self.kill_switch,
        )  # fmt: skip

    async def breaker_tick(self) -> list[StateChange]:
        """One breaker evaluation per account; a change into HALTED with ``flatten`` closes everything."""
        await self.refresh_equity()
        now = self._clock.now_ms()
        out: list[StateChange] = []
        for account in self.venues:
            limits = self.settings.limits
            state, changes = next_state(self.snapshot(account), limits, self.state[account], now)
            self.state[account] = state
            for change in changes:
                out.append(change)
                self.changes.append((account, change))
                self._unsaved.append((account, change))
                log.warning("risk.state_change", account=account, **change.to_dict())
                self._emit("state_change", account, None, **change.to_dict())
                if change.flatten:  # first: a failing store must never keep a halt from flattening
                    reason = ExitReason.KILL_SWITCH if self.kill_switch else ExitReason.CIRCUIT_BREAKER
                    await self.flatten(account, reason)
        await self._save_changes()
        return out

    async def _save_changes(self) -> None:
        """Persist the state changes not saved yet, in order (a failure raises; the next tick retries)."""
        while self._unsaved:
            account, change = self._unsaved[0]
            if self._on_state_change is not None:
                pending = self._on_state_change(account, change)
                if pending is not None:
                    await pending
            self._unsaved.pop(0)

    async def flatten(self, account: str, reason: ExitReason) -> list[CloseResult]:
        """Close every position of ``account`` (the book's, and any the venue holds that we missed)."""
        account = account.lower()
        coins = {h.coin for h in self._holdings(account)}
        coins |= {p.coin for p in await self.venues[account].account.positions() if p.size != 0}
        results = [await self.closer.close(account, coin, reason.value) for coin in sorted(coins)]
        for r in results:
            self._emit("close", account, r.coin, reason=reason.value, status=r.status.value)
        return results

    def _holdings(self, account: str) -> list[Holding]:
        """The book's positions of ``account``."""
        return [h for h in (self.book.holding(i) for i in range(len(self.book))) if h.account == account]

    # ------------------------------------------------------------------ reconciliation

    async def reconcile_once(self) -> list[tuple[str, Any]]:
        """Our records against each venue's positions and open orders; acts on every finding."""
        done: list[tuple[str, Any]] = []
        for account, venue in self.venues.items():
            positions = {p.coin: p for p in await venue.account.positions() if p.size != 0}
            orders = await self.read_open_orders(account)
            self.stops.adopt(account, orders)
            records = {h.coin: h.size for h in self._holdings(account)}
            coins = set(records) | set(positions) | {o.coin for o in orders}
            instruments = {c: await self.market.instrument(c) for c in coins}
            ours = set(self.stops.cloids(account)) | {
                o.cloid.lower() for o in orders if o.cloid is not None and self.owners.owns(o.cloid)
            }
            live = {c: p.size for c, p in positions.items()}
            actions = reconcile(records, live, orders, ours, instruments)
            orphans = []
            for action in actions:
                key = (account, action.coin)
                if action.kind is ActionKind.CANCEL_ORPHAN:
                    orphans.append(action)
                    continue
                if action.kind is ActionKind.CLOSE_RECORD:
                    self.book.remove(account, action.coin)
                    log.info("risk.swept", account=account, coin=action.coin, record=str(action.record_size))
                else:
                    p = positions[action.coin]
                    self._leverage[key] = p.leverage
                    old = self.book.get(account, action.coin)
                    if action.kind is ActionKind.ADOPT or old is None or old.size * p.size < 0:
                        policy = self._policy_for(account, action.coin) if old is None else old.policy
                        holding = Holding(account, action.coin, p.size, p.entry_price, Decimal(p.leverage),
                                          policy, ExitState(entry_time_ms=self._clock.now_ms()),
                                          p.liquidation_price)  # fmt: skip
                    else:
                        holding = replace(old, size=p.size, entry_price=p.entry_price)
                    self.book.upsert(holding)
                    event = "risk.adopted" if action.kind is ActionKind.ADOPT else "risk.record_fixed"
                    log.warning(event, account=account, coin=action.coin, record=str(action.record_size),
                                venue=str(action.venue_size), reason=action.reason)  # fmt: skip
                self._dirty.add(key)
                self._emit(action.kind.value, account, action.coin, venue=str(action.venue_size))
                done.append((account, action))
            if orphans:
                await venue.gateway.cancel_batch([CancelRequest(a.coin, oid=a.oid) for a in orphans])
                for a in orphans:
                    if a.oid is not None:
                        self.open_orders.remove(account, a.oid)
                    log.warning("risk.orphan_cancelled", account=account, coin=a.coin, oid=a.oid,
                                reason=a.reason)  # fmt: skip
                    self._emit("orphan_cancelled", account, a.coin, oid=a.oid, reason=a.reason)
                    done.append((account, a))
            # Every held position must carry a stop (after a restart, the dead man's switch may have
            # cancelled it): mark them all; the keeper leaves a stop that is already right alone.
            self._dirty.update((account, h.coin) for h in self._holdings(account))
        await self.sync_stops()
        await self._holdings_changed(self.venues)
        return done
