"""Keeps the market alive: price paths (or a recording), the makers' books, the tape, simulated traders.

Each ``step(now_ms)`` walks the market through every 100 ms of the path up to ``now`` (so the result
does not depend on how the caller chunks time): the reference prices advance, the crowd of takers
trades (``liquidity.Tape``) and every taker's flow moves its coin's price (square-root impact, part of
it decaying), and every 0.5 s the makers update their ladders (``liquidity.Quoter``: new quotes trade
against any resting order they cross, which is how a user's limit order gets filled when the market
moves). Then oracle and mark prices move (firing triggers), the simulated traders act, and funding,
scheduled cancels and liquidations run. A replayed coin is quoted from its recording instead.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from decimal import Decimal

from hyperfollow.domain.rules import Instrument, scaled_int
from hyperfollow.exchange import clearing
from hyperfollow.exchange.engine import Engine, OrderSpec
from hyperfollow.exchange.liquidity import BOOK_MS, DEFAULT_PROFILES, Crowd, Profile, Quoter, Tape
from hyperfollow.exchange.market import (
    DEFAULT_MODELS,
    CoinModel,
    CoinState,
    SyntheticMarket,
    build_quotes,
    operator_price_error,
)
from hyperfollow.exchange.replay import BookEvent, CandleEvent, Recording, TradeEvent, intra_candle_path
from hyperfollow.exchange.traders import DEFAULT_TRADERS, SimTrader, TraderSpec

MM_FUNDS_MICRO = 10**9 * 1_000_000  # the market maker's deep pockets: $1bn
IMPACT_Y = 0.5  # square-root law: a taker order of Q moves the price Y * daily vol * sqrt(Q / daily volume)


class MarketMaker:
    """One account quoting replayed coins (the recorded book, or a ladder around a replayed price)."""

    def __init__(self, engine: Engine, seed: int) -> None:
        self.engine = engine
        self.address = "0x" + hashlib.blake2b(f"hyperfollow-mm:{seed}".encode(), digest_size=20).hexdigest()
        self.rng = random.Random(f"mm:{seed}")
        engine.deposit(self.address, MM_FUNDS_MICRO)
        acct = engine.account(self.address)
        acct.keep_history = False
        self.quotes: dict[int, list[int]] = {}  # asset -> oids of its live quotes

    def requote(self, inst: Instrument, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> None:
        engine = self.engine
        for oid in self.quotes.pop(inst.asset, []):
            order = engine.live.get(oid)
            if order is not None:
                engine._cancel(order, "canceled")
        oids = []
        for is_buy, side in ((True, bids), (False, asks)):
            for px, sz in side:
                status = engine.place(self.address, OrderSpec(inst.asset, is_buy, px, sz, tif="Gtc"))
                if isinstance(status, dict) and "resting" in status:
                    oids.append(status["resting"]["oid"])
        self.quotes[inst.asset] = oids


class MarketDriver:
    """Synthetic (seeded) or replayed market, plus the market maker and the simulated traders."""

    def __init__(
        self,
        engine: Engine,
        seed: int,
        coins: list[str],
        *,
        traders: tuple[TraderSpec, ...] | None = DEFAULT_TRADERS,
        recording: Recording | None = None,
        models: Mapping[str, CoinModel] | None = None,
        profiles: Mapping[str, Profile] | None = None,
        synthetic_paths: bool = True,
    ) -> None:
        self.engine = engine
        self.seed = seed
        self.recording = recording
        self.models = models = models or DEFAULT_MODELS
        listed = [c for c in coins if c in engine.universe.by_coin]
        unknown = sorted(set(coins) - set(listed))
        if unknown:
            raise ValueError(f"unknown coins: {', '.join(unknown)} (listed: see the `meta` request)")
        self.insts = [engine.universe.by_coin[c] for c in listed]
        now = engine.now()
        paths = {c: models[c] for c in listed if c in models} if synthetic_paths else {}
        self.market = SyntheticMarket(paths, seed, now)  # without paths: prices move only when set
        self.mm = MarketMaker(engine, seed)
        profiles = profiles or DEFAULT_PROFILES
        self.crowd = Crowd(engine)
        synthetic = [i for i in self.insts if i.coin in paths and i.coin in profiles]
        self.quoters = {i.coin: Quoter(engine, self.crowd, i, profiles[i.coin], seed) for i in synthetic}
        self.tapes = {i.coin: Tape(engine, self.crowd, i, profiles[i.coin], seed) for i in synthetic}
        self._impact_k = {
            i.coin: IMPACT_Y * models[i.coin].daily_vol / math.sqrt(profiles[i.coin].daily_volume_usd)
            for i in synthetic
        }
        self._seen_seq = {i.asset: 0 for i in synthetic}  # the last print absorbed (trade ids are unordered)
        self._t0 = self._t = now  # the path's start, and its last step the book and tape have seen
        self.traders = [
            SimTrader(spec, seed) for spec in traders or () if all(c in listed for c in spec.coins)
        ]
        for trader in self.traders:
            trader.setup(engine)
        self._replay_px: dict[str, float] = {}
        self._replay_books: dict[str, BookEvent] = {}
        self._replay_cursor = recording.start_ms if recording else 0
        self.step(now)

    def step(self, now_ms: int) -> None:
        """Advance the market to ``now_ms`` and let everyone act."""
        if self.recording is not None:
            self._replay_until(now_ms)
        live = [self.quoters[c] for c in self.quoters if not self._replayed(c)]
        for quoter in self.quoters.values():
            if quoter.bid0 and self._replayed(quoter.inst.coin):
                quoter.clear()
        market, step_ms = self.market, self.market.step_ms
        for quoter in live:
            self._absorb(quoter.inst)  # what users and simulated traders did since the last step
            if not quoter.bid0:
                self._open(quoter, market.path(quoter.inst.coin).state)
        t = self._t
        while t + step_ms <= now_ms:
            t += step_ms
            market.advance_to(t)
            book_time = (t - self._t0) % BOOK_MS == 0
            for quoter in live:
                coin = quoter.inst.coin
                path = market.path(coin)
                self.tapes[coin].act(step_ms, path.state)
                self._absorb(quoter.inst)
                if book_time:
                    quoter.update(path.state)
        self._t = t
        states = market.advance_to(now_ms)
        for inst in self.insts:
            state = states.get(inst.coin)
            if self.recording is not None and inst.coin in self._replay_px:
                self._quote(inst, self._replay_px[inst.coin], 0.0)
            elif state is not None and not self._replayed(inst.coin):
                if inst.coin in self.quoters:
                    self.engine.set_prices(inst.asset, _ticks(inst, state.ref_px))
                else:
                    self._quote(inst, state.ref_px, state.imbalance, state)
        for trader in self.traders:
            trader.act(self.engine, now_ms, states)
        clearing.run_due(self.engine)

    def catch_up(self, now_ms: int, max_ms: int) -> bool:
        """Advance the price paths alone toward ``now_ms`` by at most ``max_ms``; True once they are
        within ``max_ms`` of it, so that ``step(now_ms)`` is short work. After a clock jump this splits
        the gap into slices a server can interleave with other work; the paths come out the same.
        The makers and the crowd sleep through the jump: their steps resume at the paths' time (else
        ``step`` would replay a day of quotes and prints in one go)."""
        behind = now_ms - self.market.now_ms
        if behind <= max_ms:
            return True
        self.market.advance_to(self.market.now_ms + max_ms)
        step_ms = self.market.step_ms
        self._t += max(0, (self.market.now_ms - self._t) // step_ms) * step_ms  # on the step grid
        return False

    def _replayed(self, coin: str) -> bool:
        return coin in self._replay_px or coin in self._replay_books

    def _open(self, quoter: Quoter, state: CoinState) -> None:
        """First quotes of a coin: its prices must exist before the makers may place."""
        self.engine.set_prices(quoter.inst.asset, _ticks(quoter.inst, state.ref_px))
        quoter.update(state, force=True)

    def _absorb(self, inst: Instrument) -> None:
        """New flow of takers outside the crowd (users, simulated traders) on ``inst`` moves its price:
        square-root impact per taker."""
        trades = self.engine.trades[inst.asset]
        seen = self._seen_seq[inst.asset]
        if not trades or trades[-1].seq <= seen:
            return
        flow: dict[str, float] = {}
        crowd = self.crowd.crowd_set
        scale = 10**inst.px_decimals * 10**inst.sz_decimals
        for trade in reversed(trades):
            if trade.seq <= seen:
                break
            taker = trade.buyer if trade.taker_is_buy else trade.seller
            if taker in crowd:
                # the crowd's flow is already in the calibrated path; and a ladder moving through a
                # resting order is the move's consequence, not its cause
                continue
            usd = trade.px * trade.sz / scale
            flow[taker] = flow.get(taker, 0.0) + (usd if trade.taker_is_buy else -usd)
        self._seen_seq[inst.asset] = trades[-1].seq
        k = self._impact_k[inst.coin]
        move = sum(math.copysign(k * math.sqrt(abs(usd)), usd) for usd in flow.values())
        if move:
            self.market.path(inst.coin).impact(move)

    def _quote(
        self,
        inst: Instrument,
        ref_px: float,
        imbalance: float,
        state: CoinState | None = None,
        *,
        shock: bool = False,
    ) -> None:
        model = self.models.get(inst.coin) or CoinModel(inst.coin, ref_px)  # replayed coins may have none
        bids, asks = build_quotes(
            inst,
            ref_px,
            imbalance,
            levels=20,
            half_spread_bps=model.half_spread_bps,
            level_step_bps=model.level_step_bps,
            base_size_usd=model.base_size_usd,
            rng=self.mm.rng,
        )
        if shock:  # the price band's reference jumps with an operator's move, or the new quotes fail it
            self.engine.reset_reference(inst.asset, _ticks(inst, ref_px))
        else:
            self.engine.set_prices(inst.asset, _ticks(inst, state.efficient_px if state else ref_px))
        self.mm.requote(inst, bids, asks)
        self.engine.set_prices(inst.asset, _ticks(inst, ref_px))

    def set_price(self, coin: str, px: Decimal) -> None:
        """The operator moves a coin's reference price; the book and the mark follow at once."""
        inst = self.engine.universe.by_coin[coin]
        if inst not in self.insts:
            raise ValueError(f"{coin} is not simulated here")
        error = operator_price_error(inst, px)
        if error is not None:
            raise ValueError(error)
        quoter = self.quoters.get(coin)
        if quoter is not None:
            self._absorb(inst)  # flow since the last step moved the old price; the operator sets the new one
        # without a synthetic path the book is quoted at the operator's price until it is set again
        state = self.market.set_price(coin, float(px)) if coin in self.market.coins() else None
        self._replay_px.pop(coin, None)
        if quoter is not None and state is not None and coin not in self._replay_books:
            # the 80 % band's reference jumps with the operator's move, or the new quotes would fail it
            self.engine.reset_reference(inst.asset, _ticks(inst, state.ref_px))
            quoter.update(state, force=True)
            self._absorb(inst)
            self.engine.set_prices(inst.asset, _ticks(inst, self.market.path(coin).state.ref_px))
        else:
            self._quote(inst, state.ref_px if state is not None else float(px), 0.0, None, shock=True)
        clearing.run_due(self.engine)

    # ------------------------------------------------------------------ replay

    def _replay_until(self, now_ms: int) -> None:
        """Replay time = recording start + (now - engine start)."""
        assert self.recording is not None
        events = self.recording.between(self._replay_cursor, now_ms + 1)
        self._replay_cursor = now_ms + 1
        for event in events:
            inst = self.engine.universe.by_coin.get(event.coin)
            if inst is None or inst not in self.insts:
                continue
            if isinstance(event, BookEvent):
                self._replay_book(inst, event)
            elif isinstance(event, CandleEvent):
                path = intra_candle_path(event, 1000)
                self._replay_px[inst.coin] = (
                    path[-1][1]
                    if event.ts_ms + event.interval_ms <= now_ms
                    else next((p for t, p in reversed(path) if t <= now_ms), path[0][1])
                )
            elif isinstance(event, TradeEvent):
                self._replay_px.setdefault(inst.coin, float(event.px))

    def _replay_book(self, inst: Instrument, event: BookEvent) -> None:
        def levels(side: list[tuple[str, str]]) -> list[tuple[int, int]]:
            out = []
            for px, sz in side:
                p, s = scaled_int(px, inst.px_decimals), scaled_int(sz, inst.sz_decimals)
                if p and s:
                    out.append((p, s))
            return out

        bids, asks = levels(event.bids), levels(event.asks)
        if not bids or not asks:
            return
        self._replay_px.pop(inst.coin, None)
        self._replay_books[inst.coin] = event
        mid = (bids[0][0] + asks[0][0]) // 2
        self.engine.set_prices(inst.asset, mid)
        self.mm.requote(inst, bids, asks)
        self.engine.set_prices(inst.asset, mid)


def _ticks(inst: Instrument, px: float) -> int:
    scale: int = 10**inst.px_decimals
    return max(1, round(px * scale))
