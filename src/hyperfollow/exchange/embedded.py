"""The embedded exchange as one object, usable in-process (tests, backtests) or behind HTTP/WS.

``info(request)`` and ``exchange(body)`` take and return the same JSON documents as `POST /info`
and `POST /exchange`; ``step()`` moves the market to the clock's time. The HTTP server (``server``)
is a thin shell around this object.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog

from hyperfollow.domain.rules import scaled_int
from hyperfollow.exchange.actions import ExchangeApi
from hyperfollow.exchange.auth import AgentRegistry, Authenticator, NonceTracker
from hyperfollow.exchange.clearing import VAULT_LOCKUP_MS, book_vault_shares, holds_elsewhere
from hyperfollow.exchange.clock import SimClock
from hyperfollow.exchange.driver import MarketDriver
from hyperfollow.exchange.engine import Engine
from hyperfollow.exchange.info import InfoApi, error_text, is_address
from hyperfollow.exchange.replay import load_recording
from hyperfollow.exchange.traders import DEFAULT_TRADERS
from hyperfollow.exchange.universe import Universe

log = structlog.get_logger(__name__)


MAX_ADVANCE_MS = 86_400_000  # one `/sim/advance`: at most a day of one-second market steps
ADVANCE_STEP_MS = 1000
CATCH_UP_SLICE_MS = 60_000  # price paths caught up a minute at a time after a clock jump


class AdminError(ValueError):
    """A bad operator request (`/sim/...`): the text says what is wrong."""


def wall_ms() -> int:
    return int(time.time() * 1000)


class EmbeddedExchange:
    """Engine + authentication + /info + /exchange + the living market, on one clock."""

    def __init__(
        self,
        *,
        seed: int = 7,
        speed: float = 1.0,
        stepped: bool = False,
        start_ms: int | None = None,
        coins: list[str] | None = None,
        simulated_traders: bool = True,
        recording: str | None = None,
        is_mainnet: bool = False,
        address_budget: int | None = 10_000,
        nonce_window_ms: tuple[int, int] = (2 * 86_400_000, 86_400_000),
        auth_clock: Callable[[], int] = wall_ms,
        vault_lockup_ms: int = VAULT_LOCKUP_MS,
        universe: Universe | None = None,
        synthetic_prices: bool = True,
    ) -> None:
        """``universe``: what is listed (default: ``Universe()``, the mainnet-numbered set); a backtest lists
        the coins of its recording. ``synthetic_prices=False``: no seeded price paths, a coin's price is what
        the operator (``set_price``) or the recording last set, and time passing moves nothing."""
        rec = load_recording(recording) if recording else None
        if rec is not None and start_ms is None:
            start_ms = rec.start_ms
        self.clock = SimClock(start_ms=start_ms, speed=speed, stepped=stepped)
        self.engine = Engine(universe or Universe(), self.clock, seed=seed)
        self.agents = AgentRegistry()
        self.nonces = NonceTracker(past_window_ms=nonce_window_ms[0], future_window_ms=nonce_window_ms[1])
        self.auth = Authenticator(self._is_known, self._vault_leader, self.agents, self.nonces, is_mainnet)
        self.info_api = InfoApi(self.engine, self.agents, agent_clock=auth_clock)
        self.exchange_api = ExchangeApi(
            self.engine,
            self.auth,
            self.agents,
            auth_clock=auth_clock,
            address_budget=address_budget,
            vault_lockup_ms=vault_lockup_ms,
        )
        coins = coins if coins is not None else (rec.coins() if rec else ["BTC", "ETH", "SOL", "HYPE"])
        coins = list(dict.fromkeys([*coins, "xyz:TSLA", "xyz:NVDA", "PURR/USDC"])) if rec is None else coins
        self.driver = MarketDriver(
            self.engine,
            seed,
            coins,
            recording=rec,
            traders=DEFAULT_TRADERS if simulated_traders else None,
            synthetic_paths=synthetic_prices,
        )
        log.info(
            "exchange.ready",
            seed=seed,
            speed=speed,
            stepped=stepped,
            coins=coins,
            traders=len(self.driver.traders),
            replay=recording,
        )

    def _is_known(self, user: str) -> bool:
        """A user exists while it holds anything: a balance, a position, or money in a vault or
        sub-account (else everything parked there could never come back)."""
        return self.engine.is_known(user) or holds_elsewhere(self.engine, user)

    def _vault_leader(self, address: str) -> str | None:
        acct = self.engine.accounts.get(address)
        return acct.leader if acct is not None else None

    # ------------------------------------------------------------------ wire API

    def info(self, request: Any) -> Any:
        """`POST /info`; raises ``info.BadRequest`` for a request the venue would answer with 422."""
        return self.info_api.handle(request)

    def exchange(self, body: Any) -> dict[str, Any]:
        """`POST /exchange`; raises ``info.BadRequest`` for a body that does not deserialize."""
        return self.exchange_api.handle(body)

    def step(self) -> None:
        """Move the market to the clock's current time."""
        self.driver.step(self.clock.now_ms())

    # ------------------------------------------------------------------ operator API (/sim)

    def fund(self, user: Any, usd: Any) -> int:
        address = _address(user)
        micro = scaled_int(str(usd), 6) if isinstance(usd, str | int) and not isinstance(usd, bool) else None
        if micro is None or micro <= 0:
            raise AdminError('usd must be a positive decimal string with at most 6 decimals, e.g. "10000"')
        self.engine.deposit(address, micro)
        return self.engine.accounts[address].usdc

    def set_price(self, coin: Any, px: Any) -> None:
        if not isinstance(coin, str) or coin not in self.engine.universe.by_coin:
            raise AdminError(f"unknown coin {coin!r}")
        try:
            value = Decimal(str(px))
        except InvalidOperation:
            raise AdminError(f"px must be a decimal string, got {px!r}") from None
        if not value.is_finite() or value <= 0:
            raise AdminError("px must be positive")
        try:
            self.driver.set_price(coin, value)
        except ValueError as exc:
            raise AdminError(str(exc)) from None

    def check_advance(self, ms: Any) -> int:
        """``ms`` if `/sim/advance` may move the clock by it; ``AdminError`` says why not."""
        if isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= MAX_ADVANCE_MS:
            raise AdminError(f"ms must be an integer from 0 to {MAX_ADVANCE_MS:,} (one day)")
        if not self.clock.stepped:
            raise AdminError("the clock runs in real time; start the exchange with --stepped to advance it")
        return ms

    def advance_steps(self, ms: int) -> Iterator[None]:
        """Advance the stepped clock by ``ms`` (checked by ``check_advance``), one market step per second
        so that triggers and traders see every second; yields between pieces of work, so that a
        server can serve others meanwhile. The target is fixed when iteration starts."""
        target = self.clock.now_ms() + ms
        while self.clock.now_ms() < target:
            self.clock.advance(min(ADVANCE_STEP_MS, target - self.clock.now_ms()))
            yield from self.step_slices()
            yield None

    def advance(self, ms: Any) -> int:
        """`POST /sim/advance` in-process: ``advance_steps`` run to the end; returns the new time."""
        for _ in self.advance_steps(self.check_advance(ms)):
            pass
        return self.clock.now_ms()

    def step_slices(self) -> Iterator[None]:
        """``step()`` in slices: after a clock jump the price paths first catch up the gap a slice at
        a time (the same paths as in one go), yielding in between; then the market steps."""
        now = self.clock.now_ms()
        while not self.driver.catch_up(now, CATCH_UP_SLICE_MS):
            yield None
        self.driver.step(now)

    def create_vault(self, leader: Any, usd: Any) -> str:
        """Create a vault led by ``leader``, funded with ``usd`` that is the leader's share; returns
        its address."""
        address = _address(leader)
        vault = self.engine._hash("vault", address, len(self.engine.accounts))[:42]
        acct = self.engine.account(vault)
        acct.is_vault, acct.leader = True, address
        book_vault_shares(acct, address, self.fund(vault, usd), self.engine.now(), 0)
        return vault

    def traders(self) -> list[dict[str, Any]]:
        return [
            {
                "address": t.address,
                "name": t.spec.name,
                "style": t.spec.style,
                "coins": list(t.spec.coins),
                "leverage": t.spec.leverage,
                "skill": t.spec.skill,
            }
            for t in self.driver.traders
        ]


def _address(value: Any) -> str:
    if not is_address(value):
        shown = error_text(repr(value), 80)
        raise AdminError(f"user must be 0x followed by 40 hex digits, got {shown}")
    return str(value).lower()
