"""Keeps the market alive: price paths (or a recording), the market maker's book, simulated traders.

Each ``step(now_ms)``: the reference prices advance to ``now``; the market maker replaces its
ladder on every coin (its new quotes trade against any resting order they cross, which is how a user's
limit order gets filled when the market moves); oracle and mark prices move (firing triggers); the
simulated traders act; then funding, scheduled cancels and liquidations run.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from decimal import Decimal

from hyperfollow.domain.rules import Instrument, scaled_int
from hyperfollow.exchange import clearing
from hyperfollow.exchange.engine import Engine, OrderSpec
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


class MarketMaker:
    """One account quoting every coin; quotes are ordinary orders in the books."""

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
        synthetic: bool = True,
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
        paths = {c: models[c] for c in listed if c in models} if synthetic else {}
        self.market = SyntheticMarket(paths, seed, now)  # without paths: prices move only when set
        self.mm = MarketMaker(engine, seed)
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
        states = self.market.advance_to(now_ms)
        if self.recording is not None:
            self._replay_until(now_ms)
        for inst in self.insts:
            state = states.get(inst.coin)
            if self.recording is not None and inst.coin in self._replay_px:
                self._quote(inst, self._replay_px[inst.coin], 0.0)
            elif state is not None and inst.coin not in self._replay_books:
                self._quote(inst, state.ref_px, state.imbalance, state)
        for trader in self.traders:
            trader.act(self.engine, now_ms, states)
        clearing.run_due(self.engine)

    def catch_up(self, now_ms: int, max_ms: int) -> bool:
        """Advance the price paths alone toward ``now_ms`` by at most ``max_ms``; True once they are
        within ``max_ms`` of it, so that ``step(now_ms)`` is short work. After a clock jump this splits
        the gap into slices a server can interleave with other work; the paths come out the same."""
        behind = now_ms - self.market.now_ms
        if behind <= max_ms:
            return True
        self.market.advance_to(self.market.now_ms + max_ms)
        return False

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
        # without a synthetic path the book is quoted at the operator's price until it is set again
        has_path = coin in self.market.coins()
        ref_px = self.market.set_price(coin, float(px)).ref_px if has_path else float(px)
        self._replay_px.pop(coin, None)
        self._quote(inst, ref_px, 0.0, None, shock=True)
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
