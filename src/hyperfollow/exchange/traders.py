"""Simulated traders: wallets with distinct styles that trade through the matching engine.

Their edge is explicit: ``skill`` is how much of the market's hidden state they see: the coming
moves of the price path over their horizon (``CoinState.outlook``, the next 3 minutes, for scalpers;
``outlook_long``, the next 30 minutes, plus the hours-long trend for swing and position traders). So
a skilled trader's entries precede the moves that pay for its costs, copying it is worth something,
and its fills, positions and PnL look like real wallets' through `/info` and WS.
The "degen" over-levers and doubles down on losses until it is liquidated.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

from hyperfollow.exchange.engine import Engine, OrderSpec
from hyperfollow.exchange.market import CoinState

MINUTE = 60_000
HOUR = 60 * MINUTE


@dataclass(frozen=True, slots=True)
class TraderSpec:
    name: str
    style: str  # "swing" | "scalper" | "position" | "degen"
    coins: tuple[str, ...]
    skill: float  # -1..1: correlation of its view with the hidden state (negative = systematically wrong)
    leverage: int
    equity_frac: float  # notional per entry as a fraction of equity times leverage
    decide_every_ms: int
    hold_ms: int
    start_usd: int = 50_000


DEFAULT_TRADERS: tuple[TraderSpec, ...] = (
    TraderSpec("swing-winner", "swing", ("BTC", "ETH"), 0.7, 5, 0.3, 20 * MINUTE, 6 * HOUR),
    TraderSpec("swing-loser", "swing", ("ETH", "SOL"), -0.5, 5, 0.3, 20 * MINUTE, 6 * HOUR),
    TraderSpec("scalper-winner", "scalper", ("ETH", "SOL"), 0.8, 10, 0.15, 30_000, 3 * MINUTE),
    TraderSpec("scalper-loser", "scalper", ("HYPE", "SOL"), 0.0, 10, 0.15, 30_000, 3 * MINUTE),
    TraderSpec("position-winner", "position", ("BTC",), 0.6, 3, 0.5, 2 * HOUR, 24 * HOUR),
    TraderSpec("position-hip3", "position", ("xyz:TSLA",), 0.4, 5, 0.4, 2 * HOUR, 24 * HOUR),
    TraderSpec("degen", "degen", ("HYPE",), 0.0, 10, 0.8, 10 * MINUTE, 12 * HOUR, start_usd=5_000),
)


def address_for(seed: int, name: str) -> str:
    """A stable, realistic-looking wallet address for a simulated trader."""
    return "0x" + hashlib.blake2b(f"hyperfollow-sim:{seed}:{name}".encode(), digest_size=20).hexdigest()


class SimTrader:
    """One simulated wallet; ``act`` is called every market step with the coins' hidden states."""

    def __init__(self, spec: TraderSpec, seed: int) -> None:
        self.spec = spec
        self.address = address_for(seed, spec.name)
        self.rng = random.Random(f"{seed}:{spec.name}")
        self.next_decision_ms = 0
        self.opened_ms: dict[str, int] = {}
        self.liquidated = False

    def setup(self, engine: Engine) -> None:
        engine.deposit(self.address, self.spec.start_usd * 1_000_000)
        for coin in self.spec.coins:
            inst = engine.universe.by_coin[coin]
            is_cross = not inst.only_isolated
            lev = min(self.spec.leverage, inst.max_leverage)
            engine.account(self.address).leverage[inst.asset] = (is_cross, lev)

    def act(self, engine: Engine, now_ms: int, states: dict[str, CoinState]) -> None:
        if self.liquidated or now_ms < self.next_decision_ms:
            return
        jitter = self.rng.uniform(0.5, 1.5)
        self.next_decision_ms = now_ms + int(self.spec.decide_every_ms * jitter)
        for coin in self.spec.coins:
            state = states.get(coin)
            inst = engine.universe.by_coin[coin]
            if state is None or inst.asset not in engine.marks:
                continue
            self._decide(engine, coin, state, now_ms)

    # ------------------------------------------------------------------ decisions

    def _view(self, state: CoinState) -> float:
        """Signed conviction in [-1, 1]: skill-weighted hidden signal plus private noise."""
        if self.spec.style == "scalper":
            hidden = math.tanh(state.outlook)
        else:
            trend = 0.0 if state.trend == 0 else math.copysign(0.25, state.trend)
            hidden = math.tanh(state.outlook_long + trend)
        noise = self.rng.gauss(0.0, 1.0)
        skill = self.spec.skill
        return max(-1.0, min(1.0, skill * hidden + (1 - abs(skill)) * noise * 0.7))

    def _decide(self, engine: Engine, coin: str, state: CoinState, now_ms: int) -> None:
        inst = engine.universe.by_coin[coin]
        pos = engine.position(self.address, inst.asset)
        szi = pos.szi if pos else 0
        held = now_ms - self.opened_ms.get(coin, now_ms)
        if self.spec.style == "degen":
            self._degen(engine, coin, szi, now_ms)
            return
        view = self._view(state)
        if szi:
            wrong_way = (szi > 0) != (view > 0) and abs(view) > 0.6
            if held >= self.spec.hold_ms or wrong_way:
                self._market(engine, coin, szi < 0, abs(szi), reduce_only=True)
                self.opened_ms.pop(coin, None)
            return
        if abs(view) > 0.35:
            self._open(engine, coin, view > 0, self.spec.equity_frac, now_ms)

    def _degen(self, engine: Engine, coin: str, szi: int, now_ms: int) -> None:
        inst = engine.universe.by_coin[coin]
        acct = engine.accounts[self.address]
        if acct.total_value(engine.marks) <= 0 or (szi == 0 and coin in self.opened_ms):
            self.liquidated = szi == 0 and acct.usdc < 10_000_000
            self.opened_ms.pop(coin, None)
            if self.liquidated:
                return
        if szi == 0:
            self._open(engine, coin, self.rng.random() < 0.5, self.spec.equity_frac, now_ms)
            return
        pos = engine.position(self.address, inst.asset)
        if pos is not None and pos.upnl(engine.marks[inst.asset]) < 0:  # double down while losing
            self._open(engine, coin, szi > 0, self.spec.equity_frac / 2, now_ms)

    def _open(self, engine: Engine, coin: str, is_buy: bool, frac: float, now_ms: int) -> None:
        inst = engine.universe.by_coin[coin]
        acct = engine.accounts[self.address]
        mark = engine.marks[inst.asset]
        _, lev = acct.lev_for(inst)
        budget_micro = max(0, acct.available(engine.marks, engine.insts)) * lev * frac
        lots = int(budget_micro // mark)
        if lots <= 0 or lots * mark < 12_000_000:
            return
        if self._market(engine, coin, is_buy, lots, reduce_only=False):
            self.opened_ms.setdefault(coin, now_ms)

    def _market(self, engine: Engine, coin: str, is_buy: bool, lots: int, reduce_only: bool) -> bool:
        """An IOC at the mark +-2 %: the SDK's market order, through the same engine."""
        inst = engine.universe.by_coin[coin]
        mark = engine.marks[inst.asset]
        px = engine._round_px(inst, mark * (1.02 if is_buy else 0.98), up=is_buy)
        status = engine.place(self.address, OrderSpec(inst.asset, is_buy, px, lots, reduce_only, "Ioc"))
        return isinstance(status, dict) and "filled" in status
