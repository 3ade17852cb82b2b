"""Copy a wallet in a backtest: a leader's recorded fills re-traded on a stepped embedded exchange, followed
by the real copy engine (``CopyService``) and the real risk layer (``RiskService``) through the in-process
venue.

The run (``copy_backtest``):

* **The venue.** A stepped ``EmbeddedExchange`` with no simulated traders and no synthetic price paths,
  listing every recorded coin (rules: ``copy_inputs``). Its market maker quotes a 20-level book around the
  price the backtest sets; nothing else moves a price.
* **Prices.** Each recorded leader order sets its coin's price to the order's size-weighted fill price (on the
  coin's price grid) before the leader trades, and to its last fill's price after it. ``prices`` (candles,
  trades, books as ``(ms, price)`` points per coin) set prices in between, at the time each became known.
* **The leader** re-trades each recorded order as one IOC at that price against a counterparty resting the
  whole size there (so the leader's fill is the recorded one, and the market maker's book is left for us). It
  trades the recording's position change: the recorded end position minus what it holds, so a gap in the
  recording is traded as part of the next order; an opening order under the $10 minimum waits for the next
  order of its coin. The positions held before the first fill are opened before the follow starts.
* **The follower** is the copy engine with the follow's settings (mirror mode), the risk service with the
  follow's exit policy (``app.risk_run.start_risk``; its state in memory, or recorded in a database with
  ``risk_store_url``), both on the exchange's clock. The leader's fills reach the engine ``latency_ms`` of
  venue time after they happened. The risk service's passes (exit scan and native stops, stale orders,
  breakers; reconciliation at most once a simulated minute) run after every event that moves a price we
  hold, our positions or our orders, and on every hour.
* **Time** moves only from event to event (leader orders, price points, deliveries, hours, the engine's own
  timers), never with the wall clock; every event is handled to the end (``settle``) before time moves on.

The result is a ``metrics.BacktestResult``: the follower's equity after every event, its round trips (owner
``copy:<leader>``), skips by reason, the leader's own return (``copy_inputs.leader_result``), the models used
and what ran (``meta``: where each coin's rules came from, the leader's orders traded and deferred...).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog

from hyperfollow.adapters.sim import Feed, SimVenue
from hyperfollow.app.follow_config import FollowSpec
from hyperfollow.app.risk_run import policy_by_leader, start_risk
from hyperfollow.backtest.copy_inputs import (
    CoinRules,
    LeaderOrder,
    LeaderResult,
    coin_rules,
    leader_orders,
    leader_result,
    universe_for,
)
from hyperfollow.backtest.copy_sim import DelayedLeaderFeed, LeaderView, SimTimers, venue_time
from hyperfollow.backtest.data.fills import FillHistory, placeholder_address
from hyperfollow.backtest.metrics import HOUR_MS, BacktestResult, EquityPoint, PricePoint
from hyperfollow.backtest.progress import ReplayProgress
from hyperfollow.backtest.roundtrips import FundingPaid, round_trips
from hyperfollow.copy.journal import InMemoryJournal
from hyperfollow.copy.model import CopyMode, FollowSettings
from hyperfollow.copy.service import CopyService, ServiceConfig
from hyperfollow.copy.state import CopyEvent, EventKind
from hyperfollow.domain.model import Fill
from hyperfollow.domain.rules import (
    MIN_ORDER_VALUE,
    Instrument,
    Rounding,
    quantize_price,
    scaled_int,
    to_wire,
)
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.exchange.engine import OrderSpec
from hyperfollow.exchange.market import DEFAULT_MODELS, CoinModel
from hyperfollow.risk.exits import ExitPolicy
from hyperfollow.risk.gate import RiskLimits, TradingState
from hyperfollow.risk.reconcile import is_flat
from hyperfollow.risk.service import RiskEvent, RiskService, RiskSettings
from hyperfollow.store import Store

log = structlog.get_logger(__name__)

DEFAULT_LATENCY_MS = 300
DEFAULT_EQUITY_USD = Decimal(10_000)
RECONCILE_EVERY_MS = 60_000
COUNTERPARTY_USD = "10000000000"  # the leader's counterparty: deep enough for any recorded position
LEAD_MS = 60_000  # the run starts this long before the first recorded fill
_FAR_SECS = 10.0**9  # the risk service's own loops never fire: the backtest runs their passes itself
_SPINS = 100_000
_RISK_SETTINGS = RiskSettings(
    deadman=False,
    scan_interval_secs=_FAR_SECS,
    pending_check_secs=_FAR_SECS,
    breaker_interval_secs=_FAR_SECS,
    reconcile_interval_secs=_FAR_SECS,
    limits=RiskLimits(stale_market_data_ms=10**15),  # the recording is the market: it never goes stale
)  # event-loop turns ``settle`` allows before it calls the run stuck


class BacktestError(ValueError):
    """The inputs cannot be backtested as given; the message says why."""


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class _Event:
    """Something due at ``time_ms``; ``rank`` orders events of one millisecond (prices, then the leader,
    then deliveries, then the hourly tick)."""

    time_ms: int
    rank: int
    seq: int
    kind: str
    coin: str = ""
    price: Decimal = Decimal(0)
    order: LeaderOrder | None = None


_PRICE, _LEADER, _DELIVER, _HOUR = 0, 1, 2, 3


def _active() -> TradingState:
    return TradingState.ACTIVE


def _scaled(points: Sequence[EquityPoint], factor: Decimal) -> list[EquityPoint]:
    """The leader's curve on our starting equity (its return path, not its dollars)."""
    return [(t, v * factor) for t, v in points]


@dataclass
class _Tally:
    """What the run counts for ``meta``."""

    leader_orders: int = 0
    leader_traded: int = 0
    leader_deferred: int = 0
    leader_gaps: int = 0
    price_points: int = 0
    events: int = 0
    risk_events: Counter[str] = field(default_factory=Counter)
    skips: Counter[str] = field(default_factory=Counter)
    copies: Counter[str] = field(default_factory=Counter)


def _grid(inst: Instrument, px: Decimal) -> Decimal:
    """``px`` on the coin's price grid (the nearest valid price; at least one tick)."""
    price = quantize_price(inst, px, Rounding.NEAREST)
    return price if price > 0 else Decimal(1).scaleb(-inst.px_decimals)


def _book_models(rules: Mapping[str, CoinRules]) -> str:
    parts = []
    for coin in sorted(rules):
        m = DEFAULT_MODELS.get(coin) or CoinModel(coin, 1.0)
        parts.append(f"{coin} {m.half_spread_bps:g}/{m.level_step_bps:g} bps ${m.base_size_usd:,.0f}")
    return "; ".join(parts)


class CopyBacktest:
    """One run (see the module docstring); ``await run()`` once."""

    def __init__(
        self,
        history: FillHistory,
        settings: FollowSettings,
        exit_policy: ExitPolicy,
        *,
        prices: Mapping[str, Sequence[PricePoint]] | None,
        latency_ms: int,
        equity_usd: Decimal,
        leader_equity_usd: Decimal | None,
        meta: Mapping[str, Mapping[str, Any]] | None,
        meta_source: str | None,
        progress: ReplayProgress | None,
        title: str | None,
        risk_store_url: str | None,
    ) -> None:
        if not history.fills:
            raise BacktestError("the fill history is empty: nothing to copy")
        if settings.mode is not CopyMode.MIRROR:
            raise BacktestError(
                f"backtest copy runs mirror follows; this follow's mode is {settings.mode.value}"
            )
        if latency_ms < 0:
            raise BacktestError(f"latency must be >= 0 ms, got {latency_ms}")
        if equity_usd <= 0:
            raise BacktestError(f"the follower's equity must be positive, got {equity_usd}")
        self.history, self.settings, self.exit_policy = history, settings, exit_policy
        self.prices = {c: sorted(p) for c, p in (prices or {}).items()}
        self.latency_ms, self.equity_usd = latency_ms, equity_usd
        self.rules = coin_rules(history.fills, meta)
        self.meta_source = meta_source
        self.orders = leader_orders(history.fills)
        self.leader_stats: LeaderResult = leader_result(self.orders, leader_equity_usd)
        self.progress, self.title, self.risk_store_url = progress, title, risk_store_url
        self.leader = history.fills[0].address.lower()
        self.follower = placeholder_address("backtest:follower")
        self.counterparty = placeholder_address("backtest:counterparty")
        self.tally = _Tally(leader_orders=len(self.orders))
        self.equity: list[EquityPoint] = []
        self.events: list[tuple[str, Fill] | FundingPaid] = []
        self._funded_ms = -1
        self._price_log: dict[str, list[PricePoint]] = {}
        self.copy_events: list[CopyEvent] = []  # everything the copy engine did, in order
        self.observers: list[Callable[[CopyBacktest], None]] = []  # called after every event is handled
        self._seq = itertools.count()
        self._heap: list[tuple[int, int, int, _Event]] = []

    # ------------------------------------------------------------------ the run

    async def run(self) -> BacktestResult:
        start_ms = self.orders[0].time_ms - LEAD_MS
        self.exchange = ex = EmbeddedExchange(
            seed=1,
            stepped=True,
            start_ms=start_ms,
            coins=sorted(self.rules),
            simulated_traders=False,
            address_budget=None,
            universe=universe_for(self.rules),
            synthetic_prices=False,
        )
        ex.fund(self.leader, str(self.leader_stats.base_usd))
        ex.fund(self.counterparty, COUNTERPARTY_USD)
        ex.fund(self.follower, str(self.equity_usd))
        self.timers = SimTimers(ex.clock.now_ms)
        self.time = venue_time(ex, self.timers)
        self.leader_venue = SimVenue(ex, self.leader)
        self.counter_venue = SimVenue(ex, self.counterparty)
        self.follower_venue = SimVenue(ex, self.follower)
        self.feed = DelayedLeaderFeed(self.follower_venue)
        our_fills = self.follower_venue.account.stream_fills()
        if not isinstance(our_fills, Feed):
            raise TypeError("the in-process venue's fill stream is a Feed")
        self.our_fills = our_fills
        store = await Store.open_migrated(self.risk_store_url) if self.risk_store_url else None
        try:
            await self._wire_and_replay(store)
        finally:
            if store is not None:
                await store.close()
            for venue in (self.leader_venue, self.counter_venue, self.follower_venue):
                await venue.close()
        return self.result()

    async def _wire_and_replay(self, store: Store | None) -> None:
        await self._open_starting_positions()
        risk: RiskService | None = None
        config = ServiceConfig(
            delta_loop=False, trading_state=lambda a: risk.state(a) if risk is not None else _active()
        )
        self.svc = svc = CopyService(
            {self.follower: self.follower_venue},
            InMemoryJournal(),
            leader_venue=LeaderView(self.follower_venue, self.feed),
            config=config,
            clock=self.time,
        )
        svc.on_event(self._on_copy_event)
        await svc.follow(self.follower, self.leader, self.settings)
        await svc.start()
        try:
            risk = self.risk = await start_risk(
                {self.follower: self.follower_venue},
                store,
                clock=self.time,
                owners=svc.owners,
                settings=_RISK_SETTINGS,
                policy_for=policy_by_leader(svc.ledger, {self.leader: self.exit_policy}, ExitPolicy()),
                listeners=[self._on_risk_event],
            )
            try:
                await self._settle()
                self._collect()
                self._sample()
                await self._replay()
            finally:
                await risk.close()
        finally:
            await svc.close()

    async def _replay(self) -> None:
        for order in self.orders:
            self._push(_Event(order.time_ms, _LEADER, 0, "leader", order.coin, order=order))
        for coin, points in self.prices.items():
            for ts, px in points:
                if ts >= self.exchange.clock.now_ms() and coin in self.rules:
                    self._push(_Event(ts, _PRICE, 0, "price", coin, px))
        ends = [self.orders[-1].time_ms + self.latency_ms] + [p[-1][0] for p in self.prices.values() if p]
        end_ms = max(ends)
        first_hour = (self.exchange.clock.now_ms() // HOUR_MS + 1) * HOUR_MS
        for hour in range(first_hour, end_ms + 1, HOUR_MS):
            self._push(_Event(hour, _HOUR, 0, "hour"))
        self._last_reconcile = self.exchange.clock.now_ms()
        total = len(self._heap) + len(self.orders)  # every order adds one delivery
        if self.progress is not None:
            self.progress.update(0, total)
        while self._heap:
            _, _, _, event = heapq.heappop(self._heap)
            await self._advance_to(event.time_ms)
            before = self._our_state()
            await self._handle(event)
            await self._settle()
            held = event.coin and self._position(self.follower, event.coin) != 0
            await self._after_event(risk_pass=event.kind == "hour" or held or self._our_state() != before)
            for observe in self.observers:
                observe(self)
            if self.progress is not None:
                self.progress.advance()

    def _push(self, event: _Event) -> None:
        seq = next(self._seq)
        heapq.heappush(self._heap, (event.time_ms, event.rank, seq, event))

    async def _handle(self, event: _Event) -> None:
        self.tally.events += 1
        if event.kind == "leader" and event.order is not None:
            await self._leader_order(event.order)
            self._push(_Event(event.time_ms + self.latency_ms, _DELIVER, 0, "deliver"))
        elif event.kind == "price":
            self.tally.price_points += 1
            await self._set_price(event.coin, event.price)
        elif event.kind == "deliver":
            self.feed.release(self.exchange.clock.now_ms() - self.latency_ms)

    # ------------------------------------------------------------------ time

    async def _move_clock(self, to_ms: int) -> None:
        ex = self.exchange
        gap = to_ms - ex.clock.now_ms()
        if gap > 0:
            ex.clock.advance(gap)
            ex.step()  # funding of every hour passed, liquidations, scheduled cancels
            self.follower_venue.publish()

    async def _advance_to(self, to_ms: int) -> None:
        """Move the clock to ``to_ms``, waking the engine's sleepers on the way at their deadlines."""
        while (due := self.timers.next_due()) is not None and due <= to_ms:
            await self._move_clock(due)
            self.timers.fire()
            await self._settle()
        await self._move_clock(to_ms)

    # ------------------------------------------------------------------ the leader

    def _inst(self, coin: str) -> Instrument:
        return self.exchange.engine.universe.by_coin[coin]

    def position(self, user: str, coin: str) -> Decimal:
        """``user``'s position in ``coin`` at the venue now."""
        return self._position(user, coin)

    def _position(self, user: str, coin: str) -> Decimal:
        inst = self._inst(coin)
        pos = self.exchange.engine.position(user, inst.asset)
        return Decimal(0) if pos is None else Decimal(pos.szi).scaleb(-inst.sz_decimals)

    async def _set_price(self, coin: str, px: Decimal, *, publish: bool = True) -> None:
        price = _grid(self._inst(coin), px)
        self.exchange.set_price(coin, str(price))
        if publish:
            self.follower_venue.publish()
        log_ = self._price_log.setdefault(coin, [])
        now = self.exchange.clock.now_ms()
        if log_ and log_[-1][0] == now:
            log_[-1] = (now, price)
        else:
            log_.append((now, price))

    async def _open_starting_positions(self) -> None:
        """The positions the leader held before its first recorded fill, opened before the follow."""
        seen: set[str] = set()
        for order in self.orders:
            if order.coin in seen:
                continue
            seen.add(order.coin)
            await self._set_price(order.coin, order.fills[0].price)
            if order.start != 0:
                await self._trade_to(order.coin, order.start, order.fills[0].price)
        await self._move_clock(self.exchange.clock.now_ms() + 1_000)

    async def _leader_order(self, order: LeaderOrder) -> None:
        held = self._position(self.leader, order.coin)
        if held != order.start:
            self.tally.leader_gaps += 1
        if await self._trade_to(order.coin, order.end, order.avg_price):
            self.tally.leader_traded += 1
        if order.last_price != order.avg_price:
            await self._set_price(order.coin, order.last_price)

    async def _trade_to(self, coin: str, target: Decimal, price: Decimal) -> bool:
        """The leader trades from its position to ``target`` at ``price``: the counterparty rests the size
        there, the leader takes it with an IOC (both straight into the matching engine: they are the
        recording, not code under test; the fills reach the streams with the next publish). False when
        nothing was traded (no change, or an opening order under the $10 minimum: deferred to the coin's
        next order)."""
        held = self._position(self.leader, coin)
        delta = target - held
        if delta == 0:
            return False
        inst = self._inst(coin)
        px = _grid(inst, price)
        reducing = held != 0 and target * held >= 0 and abs(target) < abs(held)
        size = abs(delta)
        if not reducing and size * px < MIN_ORDER_VALUE:
            self.tally.leader_deferred += 1
            return False
        await self._set_price(coin, px, publish=False)
        buy = delta > 0
        ticks = scaled_int(to_wire(px), inst.px_decimals)
        lots = scaled_int(to_wire(size), inst.sz_decimals)
        if ticks is None or lots is None:
            raise BacktestError(f"{size} {coin} at {px} is not on the coin's grid")
        engine = self.exchange.engine
        engine.place(self.counterparty, OrderSpec(inst.asset, not buy, ticks, lots, reducing, "Gtc"))
        engine.place(self.leader, OrderSpec(inst.asset, buy, ticks, lots, reducing, "Ioc"))
        self.follower_venue.publish()
        if self._position(self.leader, coin) != target:
            raise BacktestError(f"the leader's re-trade of {size} {coin} at {px} did not reach {target}")
        return True

    # ------------------------------------------------------------------ the follower

    def _on_copy_event(self, event: CopyEvent) -> None:
        self.copy_events.append(event)
        if event.kind is EventKind.SKIPPED and event.skip_reason is not None:
            self.tally.skips[event.skip_reason.code] += 1
        else:
            self.tally.copies[event.kind.value] += 1

    def _on_risk_event(self, event: RiskEvent) -> None:
        reason = event.data.get("reason")
        self.tally.risk_events[f"{event.kind}:{reason}" if reason else event.kind] += 1

    def _engine_busy(self) -> bool:
        """The copy engine still handles something (read from its parts: it has no single flag)."""
        svc = self.svc
        pumps = getattr(svc, "_fill_pumps", ())
        return bool(
            svc.mirror.busy or any(p.busy for p in pumps) or getattr(svc, "_background", ()) or svc.risk.tasks
        )

    def _risk_behind(self) -> bool:
        """The risk service's book has not seen all of our fills yet (its stream is handled in a task). Dust
        the book may differ by (under ``RESIDUAL_LOTS`` lots: it counts that as flat, its reconciliation
        fixes it once a simulated minute) is not waited for."""
        risk = getattr(self, "risk", None)
        if risk is None:
            return False
        engine = self.exchange.engine
        held = 0
        for asset, pos in engine.accounts[self.follower].positions.items():
            if pos.szi == 0:
                continue
            inst = engine.insts[asset]
            holding = risk.book.get(self.follower, inst.coin)
            size = Decimal(pos.szi).scaleb(-inst.sz_decimals)
            if holding is None:
                if not is_flat(size, inst):
                    return True
                continue
            held += 1
            if not is_flat(holding.size - size, inst):
                return True
        if len(risk.book) == held:  # the book holds only our account
            return False
        return any(  # a holding the venue no longer has, beyond dust
            not is_flat(h.size, engine.universe.by_coin[h.coin]) and not self._position(self.follower, h.coin)
            for h in (risk.book.holding(i) for i in range(len(risk.book)))
        )

    async def _settle(self) -> None:
        """Turn the event loop until the engine and the risk service have handled everything delivered, or
        what is left waits only on simulated time (a sleeper of ``SimTimers``)."""
        quiet = 0
        for spin in range(_SPINS):
            await asyncio.sleep(0)
            if not self._engine_busy():
                quiet += 1
                if quiet >= 2 and not self._risk_behind():
                    return
                continue
            quiet = 0
            if self.timers.waiting and spin > 50 and not self._risk_behind():
                return  # what is left sleeps on simulated time
            if spin > 1000:
                await asyncio.sleep(0.0005)  # a database write on its thread (risk_store_url)
        raise BacktestError(
            f"the copy engine did not settle at {self.exchange.clock.now_ms()} ms (engine busy: "
            f"{self._engine_busy()}, risk book behind the venue: {self._risk_behind()})"
        )

    def _our_state(self) -> tuple[object, ...]:
        """Our positions and open orders as the venue holds them (what a risk pass looks at, with prices)."""
        acct = self.exchange.engine.accounts[self.follower]
        return (tuple(sorted((a, p.szi) for a, p in acct.positions.items())), tuple(sorted(acct.open_orders)))

    async def _after_event(self, *, risk_pass: bool) -> None:
        """The risk service's passes when the event moved a price we hold, our positions or our orders (a
        pass over an unchanged book decides what the last one did; the hourly tick catches time stops),
        then our fills, funding and equity are recorded."""
        if not risk_pass:
            self._collect()
            self._sample()
            return
        risk = self.risk
        await risk.scan_once()
        await self._settle()
        await risk.cancel_stale_orders()
        await risk.breaker_tick()
        now = self.exchange.clock.now_ms()
        if now - self._last_reconcile >= RECONCILE_EVERY_MS:
            self._last_reconcile = now
            await risk.reconcile_once()
        await self._settle()
        self._collect()
        self._sample()

    def _sample(self) -> None:
        engine = self.exchange.engine
        value = engine.accounts[self.follower].total_value(engine.marks)
        point = (self.exchange.clock.now_ms(), Decimal(value).scaleb(-6))
        if self.equity and self.equity[-1][0] == point[0]:
            self.equity[-1] = point
        else:
            self.equity.append(point)

    # ------------------------------------------------------------------ the result

    def _collect(self) -> None:
        """The follower's fills and funding payments since the last call, in the order they happened."""
        owner = f"copy:{self.leader}"
        for fill in self.our_fills.drain():
            self.events.append((owner, fill))
        acct = self.exchange.engine.accounts[self.follower]
        for item in acct.fundings:
            if item["time"] <= self._funded_ms:
                continue
            amount = -Decimal(item["usdc"])  # the venue's usdc is what we received: paid is positive here
            self.events.append(FundingPaid(owner, item["coin"], item["time"], amount))
        if acct.fundings:
            self._funded_ms = max(self._funded_ms, acct.fundings[-1]["time"])

    def _price_series(self) -> dict[str, list[PricePoint]]:
        return dict(sorted(self._price_log.items()))

    def models(self) -> dict[str, str]:
        """Every model the run used, as the report states it."""
        return {
            "latency": (
                f"fixed {self.latency_ms} ms of venue time from each leader fill to its delivery to the copy "
                "engine; the engine's reads and orders then take no venue time"
            ),
            "queue": (
                "maker copies rest in the exchange's book (price-time priority) behind the market maker's "
                "quotes at their price and fill only when a later price set by the recording crosses them"
            ),
            "fees": (
                "the venue's base schedule, charged by the exchange: taker 0.045 %, maker 0.015 % of "
                "notional (HIP-3 dexes x2)"
            ),
            "slippage": (
                "taker copies walk the exchange's book: the market maker's 20-level ladder around the "
                "recorded price (half-spread / level step, depth of the first level, per coin: "
                f"{_book_models(self.rules)}); the leader's own orders fill against a counterparty at their "
                "recorded price and leave that book to us"
            ),
            "funding": (
                "the exchange's hourly funding at the recorded price: rate = (premium + clamp(0.01 %/8 h - "
                "premium, +-0.05 %)) / 8 with premium = (book mid - oracle) / oracle, about 0.00125 %/h "
                "paid by longs here"
            ),
            "prices": (
                "each leader order sets its coin's price to its average fill price, then its last fill's "
                f"price; {self.tally.price_points} more price points from the prices given"
            ),
            "leader": (
                "re-trades every recorded order; leader_return_pct = (closedPnl - fees of the recorded "
                f"fills) / {self.leader_stats.base_usd} USD (the leader's peak gross notional unless given) "
                "x 100"
            ),
            "risk": (
                "the risk service's exit scan with native stops, stale-order sweep and breakers after every "
                "event that moves a price we hold, our positions or our orders, and every hour; "
                "reconciliation at most once a simulated minute; the stale-market-data breaker off (the "
                f"recording is the market); exit policy {self.exit_policy}"
            ),
        }

    def meta(self) -> dict[str, str]:
        """What ran, for the report."""
        t = self.tally
        sources = Counter(r.source for r in self.rules.values())
        rules = "; ".join(f"{c}: {r.describe()}" for c, r in sorted(self.rules.items()))
        open_now = {c: self._position(self.follower, c) for c in self.rules}
        return {
            "mode": "backtest copy",
            "leader": self.leader,
            "fills_source": self.history.source,
            "fills": str(len(self.history.fills)),
            "fills_inferred_fields": ", ".join(self.history.inferred) or "none",
            "fills_chain_restarts": str(self.history.restarts),
            "leader_orders": str(t.leader_orders),
            "leader_orders_traded": str(t.leader_traded),
            "leader_orders_deferred_below_min": str(t.leader_deferred),
            "leader_position_gaps": str(t.leader_gaps),
            "leader_base_usd": str(self.leader_stats.base_usd),
            "leader_closed_pnl_usd": str(self.leader_stats.closed_pnl_usd),
            "leader_fees_usd": str(self.leader_stats.fees_usd),
            "follower_start_equity_usd": str(self.equity_usd),
            "follow_settings": str(self.settings),
            "rules_source": ", ".join(f"{k} {v}" for k, v in sorted(sources.items())),
            "rules_meta_file": self.meta_source or "none",
            "rules": rules,
            "copies": ", ".join(f"{k} {v}" for k, v in sorted(t.copies.items())) or "none",
            "risk_events": ", ".join(f"{k} {v}" for k, v in sorted(t.risk_events.items())) or "none",
            "open_at_end": ", ".join(f"{c} {p}" for c, p in sorted(open_now.items()) if p) or "flat",
            "events": str(t.events),
        }

    def result(self) -> BacktestResult:
        """What the run produced (after ``run``)."""
        leader = self.leader_stats
        skips = dict(sorted(self.tally.skips.items()))
        return BacktestResult(
            equity=self.equity,
            trades=round_trips(self.events),
            skips_by_reason=skips,
            models=self.models(),
            prices=self._price_series(),
            leader_return_pct=leader.return_pct,
            leader_equity=_scaled(leader.equity, self.equity_usd / leader.base_usd),
            title=self.title or f"copy {self.leader} ({self.history.source})",
            meta=self.meta(),
        )


async def copy_backtest(
    fills: FillHistory,
    follow: FollowSpec | FollowSettings,
    *,
    prices: Mapping[str, Sequence[PricePoint]] | None = None,
    latency_ms: int = DEFAULT_LATENCY_MS,
    equity_usd: Decimal = DEFAULT_EQUITY_USD,
    leader_equity_usd: Decimal | None = None,
    meta: Mapping[str, Mapping[str, Any]] | None = None,
    meta_source: str | None = None,
    progress: ReplayProgress | None = None,
    title: str | None = None,
    risk_store_url: str | None = None,
) -> BacktestResult:
    """Copy ``fills``' leader with ``follow``'s settings and exit policy (a ``FollowSpec`` of follow.toml, or
    bare settings with the risk layer's default exits); see the module docstring. ``risk_store_url``: record
    the risk service's state in that database, as a live run does (slower; nothing in a backtest reads it)."""
    settings, policy = (
        (follow.settings, follow.exit_policy) if isinstance(follow, FollowSpec) else (follow, ExitPolicy())
    )
    run = CopyBacktest(
        fills, settings, policy, prices=prices, latency_ms=latency_ms, equity_usd=equity_usd,
        leader_equity_usd=leader_equity_usd, meta=meta, meta_source=meta_source, progress=progress,
        title=title, risk_store_url=risk_store_url,
    )  # fmt: skip
    return await run.run()


def run_copy_backtest(
    fills: FillHistory,
    follow: FollowSpec | FollowSettings,
    **options: Any,
) -> BacktestResult:
    """``copy_backtest`` in a fresh event loop (for callers without one: the CLI, scripts, benchmarks)."""
    return asyncio.run(copy_backtest(fills, follow, **options))
