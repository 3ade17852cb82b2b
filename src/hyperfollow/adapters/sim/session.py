"""The state one ``SimVenue`` shares between its roles: the exchange, the account, the in-process
"connection" (up or down) with its subscriptions, and the helpers every role needs.

Queries go through the exchange's own ``/info`` handler (``EmbeddedExchange.info``) with the request
types the Hyperliquid adapter sends, and actions are authorised and charged to the address budget
the way ``exchange/actions.py`` does it, so both adapters meet the same venue behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.sim.feed import Feed
from hyperfollow.adapters.sim.hub import Published, SimHub
from hyperfollow.adapters.sim.streams import Subscription
from hyperfollow.domain.errors import UnknownInstrument, VenueRejected, rejection_for
from hyperfollow.domain.model import AccountSnapshot, Fill, StreamEvent
from hyperfollow.domain.rules import Instrument, instruments_from_meta
from hyperfollow.exchange.auth import Actor
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.exchange.info import MAX_FILLS, BadRequest

log = structlog.get_logger(__name__)


class SimSession:
    """One account on one embedded exchange, with its subscriptions and connection state."""

    def __init__(self, exchange: EmbeddedExchange, account: str) -> None:
        self.exchange = exchange
        self.engine = exchange.engine
        self.address = account.lower()
        self.hub = SimHub.for_exchange(exchange)
        self.connected = True
        self.closed = False
        self._subs: list[Subscription] = []
        self._event_feeds: list[Feed[StreamEvent]] = []
        self._instruments: dict[str, Instrument] | None = None
        self._dexes: list[str] | None = None
        self._seq = 0
        self.hub.attach(self._on_publish)

    # ------------------------------------------------------------------ plumbing

    def now_ms(self) -> int:
        return self.exchange.clock.now_ms()

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def info(self, request: Mapping[str, Any]) -> Any:
        """``POST /info`` in-process; a request the venue would answer with 422 raises ``VenueRejected``."""
        try:
            return self.exchange.info(request)
        except BadRequest as exc:
            raise VenueRejected(str(exc)) from None

    def publish(self) -> Published:
        """Drain the engine and fan its events out (after every action and market move)."""
        return self.hub.publish()

    def _on_publish(self, published: Published) -> None:
        self._subs = [s for s in self._subs if not s.closed]
        if not self.connected:  # the stream is down: pushes are lost, as on a dropped socket
            return
        for sub in self._subs:
            sub.offer(published)

    def subscribe(self, sub: Subscription) -> None:
        if self.closed:
            sub.close()
            return
        self._subs.append(sub)

    def events(self) -> Feed[StreamEvent]:
        feed: Feed[StreamEvent] = Feed()
        if self.closed:
            feed.close()
        else:
            self._event_feeds.append(feed)
        return feed

    def emit(self, kind: str, detail: str = "", subjects: tuple[str, ...] = ()) -> None:
        event = StreamEvent(kind, detail, self.now_ms(), subjects)
        self._event_feeds = [f for f in self._event_feeds if not f.closed]
        for feed in self._event_feeds:
            feed.push(event)

    # ------------------------------------------------------------------ connection

    def disconnect(self) -> None:
        if not self.connected or self.closed:
            return
        self.publish()  # what happened before the drop was delivered before the drop
        self.connected = False
        log.info("sim.stream.disconnected", account=self.address)
        self.emit("disconnected", "forced", (self.address,))

    def reconnect(self) -> None:
        """Back up: events of the gap are gone; re-snapshot books and mids, backfill fills."""
        if self.connected or self.closed:
            return
        self.publish()  # drained while still down: the gap's pushes are lost
        self.connected = True
        self.emit("connected", "", (self.address,))
        self._subs = [s for s in self._subs if not s.closed]
        backfilled = 0
        for sub in self._subs:
            backfilled += sub.resync()
        log.info("sim.stream.reconnected", account=self.address, resent=backfilled)
        self.emit("backfilled", f"{backfilled} items re-sent", (self.address,))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.hub.detach(self._on_publish)
        for sub in self._subs:
            sub.close()
        for feed in self._event_feeds:
            feed.close()
        self._subs, self._event_feeds = [], []

    # ------------------------------------------------------------------ actions

    def authorize(self, kind: str, cost_items: int) -> None:
        """What the wire path checks before an action runs: the account exists (else the signature
        would recover to an unknown user) and the address action budget has room."""
        if not self.engine.is_known(self.address):
            raise rejection_for(f"User or API Wallet {self.address} does not exist.")
        actor = Actor(signer=self.address, user=self.address, vault=None, is_agent=False, action_type=kind)
        items: list[None] = [None] * max(1, cost_items)
        key = {"order": "orders", "batchModify": "modifies"}.get(kind, "cancels")
        # The exchange's own budget accounting (actions.ExchangeApi.spend_budget), so userRateLimit
        # reads the same on both adapters.
        error = self.exchange.exchange_api.spend_budget(actor, kind, {"type": kind, key: items})
        if error:
            raise rejection_for(error)

    # ------------------------------------------------------------------ reference data

    def dexes(self) -> list[str]:
        """Perp dex names: "" (main) then the HIP-3 dexes, in ``perpDexs`` order."""
        if self._dexes is None:
            raw = self.info({"type": "perpDexs"})
            self._dexes = ["" if d is None else str(d["name"]) for d in raw]
        return self._dexes

    def instrument_table(self) -> dict[str, Instrument]:
        """Every listed perp of every dex by name (delisted placeholders and spot left out, as the
        Hyperliquid adapter's instrument directory does)."""
        if self._instruments is None:
            table: dict[str, Instrument] = {}
            for index, dex in enumerate(self.dexes()):
                meta = self.info({"type": "meta", "dex": dex})
                table.update({i.coin: i for i in instruments_from_meta(meta, index) if not i.is_delisted})
            self._instruments = table
        return self._instruments

    def instrument(self, coin: str) -> Instrument:
        inst = self.instrument_table().get(coin)
        if inst is None:
            spot = "/" in coin or coin.startswith("@")
            what = "spot is not traded by this adapter" if spot else "not a listed perp"
            raise UnknownInstrument(f"Invalid asset: {coin} ({what}).")
        return inst

    # ------------------------------------------------------------------ account data

    def fills_since(self, users: Sequence[str], start_ms: int) -> list[Fill]:
        """``userFillsByTime`` of each address from ``start_ms`` (paged by time), merged oldest first."""
        out: dict[tuple[object, ...], Fill] = {}
        for user in users:
            start = start_ms
            while True:
                raw = self.info({"type": "userFillsByTime", "user": user, "startTime": start})
                page = parse.fills(user, raw)
                for fill in page:
                    out.setdefault(fill.key, fill)
                if len(raw) < MAX_FILLS or not page:
                    break
                # The next page starts at the last page's latest ms (fills of one ms may straddle pages;
                # repeats are dropped by key); a page all in one ms must step past it.
                start = max(page[-1].time_ms, start + 1)
        return parse.in_position_order(out.values())

    def snapshot(self, user: str) -> AccountSnapshot:
        """``clearinghouseState`` of every perp dex, merged (each HIP-3 dex has its own clearinghouse)."""
        now = self.now_ms()
        parts = [
            parse.account_snapshot(
                user, self.info({"type": "clearinghouseState", "user": user, "dex": d}), now
            )
            for d in self.dexes()
        ]
        return parse.merge_snapshots(parts)
