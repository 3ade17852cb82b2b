"""``PaperVenue``: the venue ports for paper trading. Market data and leader feeds are the real venue's
(read-only); the order gateway and the account are a simulated account (``PaperSession``) whose fills
follow the real venue's books and prints (``models``).

The real venue is reached only through the ``MarketData`` and ``LeaderFeed`` handed in: from
``connect_paper`` these are the read-only ``PublicVenue`` parts over a keyless client with no way to
post to ``/exchange``. So nothing a paper run does (copy engine, risk layer, a bug in either) can send
an order to the real venue: there is no object in reach that could.

The outside market is followed per coin once a coin is traded (or held): a book snapshot by REST, then
the ``l2Book`` and ``trades`` streams; the ``allMids`` stream sets every mark. Paper time is the time
the process gives it (``now_ms``: the wall clock live, the exchange's clock for a sped-up embedded one).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

import structlog

from hyperfollow.adapters.paper.account import PaperAccountState, PaperSession
from hyperfollow.adapters.paper.engine import PaperEngine
from hyperfollow.adapters.paper.gateway import PaperGateway
from hyperfollow.adapters.paper.models import Level
from hyperfollow.domain.model import L2Book, StreamEvent, Trade
from hyperfollow.domain.rules import Instrument, scaled_int
from hyperfollow.exchange import clearing
from hyperfollow.exchange.universe import Universe
from hyperfollow.ports.venue import LeaderFeed, MarketData, Venue

log = structlog.get_logger(__name__)

MODELS = {
    "taker": "walks the latest l2Book levels of the real venue at their sizes, up to the limit price "
    "(what it takes is gone until the next snapshot; no market impact on the real book)",
    "maker": "rests at its price; fills only when a real print trades at its price (after the size that "
    "was queued ahead of it has traded; the queue shrinks with the level) or through it",
    "fees": "the venue's base schedule: taker 0.045 %, maker 0.015 % (HIP-3 dexes twice that)",
    "marks": "the real venue's mids are the mark and oracle (margin, PnL, TP/SL triggers, liquidation)",
    "funding": "the interest-rate baseline (0.01 % per 8 h) charged hourly on the mark; no premium",
    "latency": "none added: an order meets the book as this process last received it",
}


def paper_address(name: str) -> str:
    """The simulated account's address for ``name`` (e.g. the configured account): never a real one, so
    paper follows and live follows of one store never share a follower."""
    return "0x" + hashlib.blake2b(f"hyperfollow-paper:{name.lower()}".encode(), digest_size=20).hexdigest()


def universe_of(perp_dexs: list[Any], metas: Mapping[str, Any]) -> Universe:
    """The venue's listings as the engine's universe (spot is not traded on paper)."""
    return Universe(metas=dict(metas), spot={"universe": [], "tokens": []}, dexs=list(perp_dexs))


def _ticks(inst: Instrument, text: str) -> int | None:
    return scaled_int(text, inst.px_decimals)


def mid_ticks(inst: Instrument, mid: Decimal) -> int:
    """A mid on the price grid's decimals (a mid between two ticks carries one more digit)."""
    return int((mid.scaleb(inst.px_decimals)).to_integral_value(rounding=ROUND_HALF_EVEN))


def book_levels(inst: Instrument, book: L2Book) -> tuple[list[Level], list[Level]]:
    """The book's sides in ticks and lots (a level off the grid, which the venue never sends, is skipped)."""
    sides: list[list[Level]] = [[], []]
    for side, levels in zip(sides, (book.bids, book.asks), strict=True):
        for level in levels:
            px, sz = _ticks(inst, level.px), scaled_int(level.sz, inst.sz_decimals)
            if px is not None and sz is not None and sz > 0:
                side.append(Level(px, sz))
    return sides[0], sides[1]


class PaperVenue:
    """A simulated account on the real venue's market, implementing ``ports.Venue``."""

    def __init__(
        self,
        session: PaperSession,
        market: MarketData,
        leaders: LeaderFeed,
        *,
        events: Callable[[], AsyncIterator[StreamEvent]] | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.session = session
        self._market = market
        self._leaders = leaders
        self._events = events
        self._on_close = on_close
        self._gateway = PaperGateway(session, self.watch)
        self._account = PaperAccountState(session)
        self._ready: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.prints_seen = 0
        self.books_seen = 0

    # ------------------------------------------------------------------ the four roles

    @property
    def gateway(self) -> PaperGateway:
        return self._gateway

    @property
    def market(self) -> MarketData:
        return self._market

    @property
    def account(self) -> PaperAccountState:
        return self._account

    @property
    def leaders(self) -> LeaderFeed:
        return self._leaders

    @property
    def engine(self) -> PaperEngine:
        return self.session.engine

    def events(self) -> AsyncIterator[StreamEvent]:
        """The real venue's connection and staleness events (stale market data is stale for paper too)."""
        if self._events is not None:
            return self._events()
        return _no_events()

    # ------------------------------------------------------------------ life cycle

    async def start(self, start_usd: Decimal) -> bool:
        """Open (or resume) the account, set every mark, follow the coins it holds or has orders in.
        True when an existing account was resumed."""
        resumed = await self.session.open(int(start_usd.scaleb(6).to_integral_value()))
        self._apply_mids(await self._market.mids())
        acct = self.engine.account(self.session.address)
        held = {self.engine.insts[a].coin for a, p in acct.positions.items() if p.szi}
        held |= {self.engine.insts[o.asset].coin for o in self.engine.live.values()}
        for coin in sorted(held):
            await self.watch(coin)
        self._spawn(self._follow_mids(), "paper-mids")
        return resumed

    async def close(self) -> None:
        """Stop following the market, save the account, close the real venue's read-only connection."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self.session.publish()
        await self.session.persist(force=True)
        self.session.close()
        if self._on_close is not None:
            await self._on_close()

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        task.add_done_callback(_log_end)
        self._tasks.append(task)

    # ------------------------------------------------------------------ following the market

    async def watch(self, coin: str) -> None:
        """Make sure ``coin``'s outside book is known (a REST snapshot the first time, then its streams)
        before an order meets it. ``UnknownInstrument`` for a coin the venue does not list."""
        inst = self.session.instrument(coin)
        ready = self._ready.get(coin)
        if ready is not None:
            await ready.wait()
            return
        ready = self._ready[coin] = asyncio.Event()
        try:
            books = self._market.stream_books([coin])  # subscribed before the snapshot: nothing missed
            trades = self._market.stream_trades([coin])
            self._apply_book(inst, await self._market.l2_book(coin))
            if inst.asset not in self.engine.marks:
                self._apply_mids(await self._market.mids())
        except BaseException:
            del self._ready[coin]
            ready.set()
            raise
        ready.set()
        self._spawn(self._follow_books(inst, books), f"paper-book-{coin}")
        self._spawn(self._follow_trades(inst, trades), f"paper-trades-{coin}")
        log.info("paper.watching", coin=coin)

    def _apply_book(self, inst: Instrument, book: L2Book) -> None:
        bids, asks = book_levels(inst, book)
        self.engine.set_book(inst.asset, bids, asks)
        self.books_seen += 1

    def _apply_mids(self, mids: Mapping[str, Decimal]) -> None:
        for coin, mid in mids.items():
            inst = self.session.instruments.get(coin)
            if inst is not None and mid > 0:
                self.engine.set_mid(inst.asset, mid_ticks(inst, mid))

    async def _follow_books(self, inst: Instrument, books: AsyncIterator[L2Book]) -> None:
        async for book in books:
            self._apply_book(inst, book)

    async def _follow_trades(self, inst: Instrument, trades: AsyncIterator[Trade]) -> None:
        async for trade in trades:
            self.on_print(inst, trade)
            await self._after_market()

    def on_print(self, inst: Instrument, trade: Trade) -> int:
        """One real print: our resting orders it reaches fill. Returns the lots filled."""
        px, sz = _ticks(inst, format(trade.price, "f")), scaled_int(format(trade.size, "f"), inst.sz_decimals)
        self.prints_seen += 1
        if px is None or sz is None:
            return 0
        return self.engine.on_print(inst.asset, trade.side.is_buy, px, sz)

    async def _follow_mids(self) -> None:
        async for mids in self._market.stream_mids():
            before = self._time_driven_state()
            self._apply_mids(mids)
            clearing.run_due(self.engine)  # scheduled cancels, funding on the hour, liquidation
            await self._after_market(force=self._time_driven_state() != before)

    def _time_driven_state(self) -> tuple[int, int | None]:
        acct = self.engine.account(self.session.address)
        return self.engine.next_funding_ms, acct.schedule_cancel_ms

    async def _after_market(self, *, force: bool = False) -> None:
        self.session.publish()
        await self.session.persist(force=force)


def _log_end(task: asyncio.Task[None]) -> None:
    """A market-following task that ends says so (the coin's book would silently go stale)."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("paper.feed_failed", task=task.get_name(), error=repr(error))
    else:
        log.warning("paper.feed_ended", task=task.get_name())


async def _no_events() -> AsyncIterator[StreamEvent]:
    await asyncio.Event().wait()
    yield StreamEvent("never", "", 0, ())  # pragma: no cover - unreachable


if TYPE_CHECKING:  # mypy proves the paper venue implements the ports

    def _implements_ports(venue: PaperVenue) -> Venue:
        return venue
