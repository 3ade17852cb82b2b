"""PaperVenue against an in-process "real" venue: a stepped embedded exchange read through ``SimVenue``
(seed 7, no simulated traders, the market maker quoting ETH around $3,000). ``theirs`` is a trader on
that venue whose orders make the prints; the paper account trades only on paper, and a dict ledger keeps
it so that a second ``PaperVenue`` can resume it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from hyperfollow.adapters.paper.account import PaperSession
from hyperfollow.adapters.paper.engine import PaperEngine
from hyperfollow.adapters.paper.venue import PaperVenue, paper_address, universe_of
from hyperfollow.adapters.sim import SimVenue
from hyperfollow.domain.errors import MinNotional, PostOnlyWouldCross
from hyperfollow.domain.model import AckStatus, CancelRequest, L2Book, OrderRequest, Side, Tif
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.ports import Venue

START_MS = 1_767_225_600_000
THEIRS = "0x" + "b2" * 20
WATCHER = "0x" + "c3" * 20  # the read-only side: a SimVenue whose gateway the paper venue never gets
PAPER = paper_address("unit")
TAKER, MAKER = Decimal("0.00045"), Decimal("0.00015")


@dataclass
class Saved:
    state: dict[str, Any]
    fills: list[list[Any]]
    orders: list[dict[str, Any]]


@dataclass
class DictLedger:
    rows: dict[str, tuple[dict[str, Any], list[list[Any]], dict[int, dict[str, Any]]]] = field(
        default_factory=dict
    )
    saves: int = 0

    async def load(self, address: str) -> Saved | None:
        row = self.rows.get(address)
        return None if row is None else Saved(row[0], list(row[1]), list(row[2].values()))

    async def save(
        self,
        address: str,
        state: dict[str, Any],
        fills: Sequence[list[Any]],
        orders: Sequence[dict[str, Any]],
        now_ms: int,
    ) -> None:
        _, old_fills, old_orders = self.rows.get(address, ({}, [], {}))
        self.rows[address] = (state, [*old_fills, *fills], {**old_orders, **{o["oid"]: o for o in orders}})
        self.saves += 1


@pytest.fixture
def exchange() -> EmbeddedExchange:
    ex = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=START_MS)
    ex.set_price("ETH", "3000")
    ex.fund(THEIRS, "1000000")
    return ex


@pytest.fixture
async def real(exchange: EmbeddedExchange) -> AsyncIterator[SimVenue]:
    venue = SimVenue(exchange, WATCHER)
    yield venue
    await venue.close()


@pytest.fixture
async def theirs(exchange: EmbeddedExchange) -> AsyncIterator[SimVenue]:
    venue = SimVenue(exchange, THEIRS)
    yield venue
    await venue.close()


@pytest.fixture
def ledger() -> DictLedger:
    return DictLedger()


async def open_paper(exchange: EmbeddedExchange, real: SimVenue, ledger: DictLedger) -> PaperVenue:
    universe = exchange.engine.universe
    engine = PaperEngine(universe_of(universe.dexs, universe.metas), exchange.clock.now_ms)
    venue = PaperVenue(PaperSession(engine, PAPER, ledger), real.market, real.leaders)
    await venue.start(Decimal(5_000_000))  # the calibrated book is ~$0.5M a level: enough to walk two
    return venue


@pytest.fixture
async def paper(exchange: EmbeddedExchange, real: SimVenue, ledger: DictLedger) -> AsyncIterator[PaperVenue]:
    venue = await open_paper(exchange, real, ledger)
    yield venue
    await venue.close()


async def settle() -> None:
    """Let the paper venue's feed tasks take what the real venue published."""
    for _ in range(10):
        await asyncio.sleep(0)


def order(side: Side, size: str, px: Decimal | str, tif: Tif = Tif.GTC, **kw: Any) -> OrderRequest:
    return OrderRequest("ETH", side, Decimal(size), Decimal(px), tif, **kw)


async def state(venue: PaperVenue) -> tuple[Any, ...]:
    snap = await venue.account.snapshot()
    return (
        snap.equity,
        snap.positions,
        await venue.account.open_orders(),
        await venue.account.fills_since(0),
    )


def test_the_paper_venue_implements_the_venue_port(paper: PaperVenue) -> None:
    venue: Venue = paper  # mypy checks the structural match
    assert venue.account.address == PAPER


async def test_a_taker_walks_the_live_book_at_its_level_sizes_with_the_taker_fee(
    paper: PaperVenue, real: SimVenue
) -> None:
    book: L2Book = await real.market.l2_book("ETH")
    first, second = book.asks[0], book.asks[1]
    size = first.size + second.size / 2
    ack = await paper.gateway.submit(order(Side.BUY, format(size, "f"), second.price, Tif.IOC))
    assert ack.status is AckStatus.FILLED
    fills = await paper.account.fills_since(0)
    assert [(f.price, f.size) for f in fills] == [
        (first.price, first.size),
        (second.price, size - first.size),
    ]
    for f in fills:
        assert f.crossed
        assert f.fee == (f.price * f.size * TAKER).quantize(Decimal("0.000001"))
    [position] = (await paper.account.snapshot()).positions
    assert position.size == size
    # the size it took is gone for the next taker until the venue's next book: it meets the rest of level 2
    await paper.gateway.submit(order(Side.BUY, format(second.size, "f"), second.price, Tif.IOC))
    last = (await paper.account.fills_since(0))[-1]
    assert (last.price, last.size) == (second.price, second.size - (size - first.size))
    assert (await real.market.l2_book("ETH")).asks[:2] == book.asks[:2]  # the real book never saw us


async def test_a_maker_fills_only_when_prints_cross_it_after_the_queue_ahead(
    paper: PaperVenue, real: SimVenue, theirs: SimVenue
) -> None:
    book = await real.market.l2_book("ETH")
    bid = book.bids[0]
    ack = await paper.gateway.submit(order(Side.BUY, "1", bid.price, Tif.ALO))
    assert ack.status is AckStatus.RESTING
    await theirs.gateway.submit(order(Side.BUY, "2", book.asks[0].price, Tif.IOC))  # prints on the ask side
    await settle()
    assert await paper.account.fills_since(0) == []
    # someone sells into the bid level: the size queued ahead of us trades first
    ahead = bid.size
    await theirs.gateway.submit(order(Side.SELL, format(ahead - Decimal("0.5"), "f"), bid.price, Tif.IOC))
    await settle()
    assert await paper.account.fills_since(0) == []
    # 0.8 more: 0.5 prints at our price (the rest of the queue ahead), 0.3 at the levels below, through our
    # price, which would have met us first (the sell may go as deep as the book: levels can be thin)
    await theirs.gateway.submit(order(Side.SELL, "0.8", book.bids[-1].price, Tif.IOC))
    await settle()
    fills = await paper.account.fills_since(
        0
    )  # one per print through our price (a level holds several orders)
    assert {(f.price, f.crossed) for f in fills} == {(bid.price, False)}
    assert sum((f.size for f in fills), Decimal(0)) == Decimal("0.3")
    for fill in fills:
        assert fill.fee == (fill.price * fill.size * MAKER).quantize(Decimal("0.000001"))
    [resting] = await paper.account.open_orders()
    assert resting.size == Decimal("0.7")


async def test_refused_orders_change_nothing(paper: PaperVenue, real: SimVenue) -> None:
    book = await real.market.l2_book("ETH")
    await paper.gateway.submit(order(Side.BUY, "0.5", book.bids[2].price))  # something to compare
    before = await state(paper)
    with pytest.raises(MinNotional):
        await paper.gateway.submit(order(Side.BUY, "0.001", book.asks[0].price, Tif.IOC))
    with pytest.raises(PostOnlyWouldCross):
        await paper.gateway.submit(order(Side.BUY, "0.5", book.asks[0].price, Tif.ALO))
    assert await state(paper) == before


async def test_a_stopped_account_resumes_with_its_balance_positions_orders_and_queue(
    exchange: EmbeddedExchange, real: SimVenue, theirs: SimVenue, ledger: DictLedger
) -> None:
    first = await open_paper(exchange, real, ledger)
    book = await real.market.l2_book("ETH")
    await first.gateway.submit(order(Side.BUY, "2", book.asks[0].price, Tif.IOC))
    resting = await first.gateway.submit(
        order(Side.SELL, "1", book.asks[1].price, Tif.ALO, cloid="0x" + "1" * 32)
    )
    bid = await first.gateway.submit(order(Side.BUY, "1", book.bids[0].price, Tif.ALO))
    await first.gateway.cancel(CancelRequest("ETH", oid=bid.oid))
    before = await state(first)
    cancelled = await first.gateway.order_status(bid.oid or 0)
    await first.close()

    second = await open_paper(exchange, real, ledger)
    try:
        assert await state(second) == before
        assert await second.gateway.order_status(bid.oid or 0) == cancelled
        assert (await second.gateway.order_status("0x" + "1" * 32)) is not None
        # the resting ask still waits behind its queue, then fills on the prints that reach it
        # the real level 1 is whole (our taker took from it on paper only), then level 2: our queue
        ahead = book.asks[0].size + book.asks[1].size
        await theirs.gateway.submit(order(Side.BUY, format(ahead + 1, "f"), book.asks[2].price, Tif.IOC))
        await settle()
        fill = (await second.account.fills_since(0))[-1]
        assert (fill.oid, fill.price, fill.size, fill.crossed) == (resting.oid, book.asks[1].price, 1, False)
    finally:
        await second.close()
