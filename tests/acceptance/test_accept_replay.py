"""Acceptance: a real leader's fills, re-traded on the embedded exchange, copied by ``CopyService`` over the
real Hyperliquid adapter (HTTP + WebSocket), checked against an independent calculation, exactly.

The leader: slot ``acc9`` of ``copytrader_audit_202607`` (verbatim mainnet ``userFillsByTime``), its
``xyz:CXMT`` fills 116-232 (117 fills, 2026-07-20): a long it held before the window is closed in pieces,
a short is opened, added to and closed in many small pieces, a long is opened and closed, then a short is
flipped (``Short > Long``) and the new long is added to, closed in one go, re-opened and partly closed.
Our exchange lists no CXMT, so the coin is HYPE and every price is the recorded one x 5 (HYPE trades
near $33 here, CXMT traded near $6.7); sizes, sides, ``dir`` and ``startPosition`` are the recorded ones.

The leader re-trades each recorded fill as one IOC at a crossing price against the market maker (the
exchange is stepped and has no simulated traders; before each fill the clock moves 1 s and the price is
set to the recorded one). The follower copies with the default settings: equity ratio, taker, the $10
minimum. The test then recomputes every decision from what the venue says (the leader's fills, both
accounts' equity, the book the leader traded against) with the sizing rules written out here, and
compares the follower's venue position, every copy and every skip reason with it.

The copy service runs in the test's event loop over HTTP/WS (not ``adapters/sim``): ~117 fills x ~10 requests
stay within a few seconds.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from fractions import Fraction
from itertools import groupby
from typing import Any

import pytest
import pytest_asyncio
from accept_support import Operator, adapter, address, operator, serve, wait_until, wallet

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.copy.model import FollowSettings
from hyperfollow.copy.service import CopyService, ServiceConfig
from hyperfollow.core.clock import LiveClock
from hyperfollow.domain.model import Fill, OrderRequest, Side, Tif
from hyperfollow.domain.rules import Rounding, quantize_price
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.store import Store
from hyperfollow.store.copy_journal import StoreCopyJournal
from shared_data import vendored

AUDIT = vendored("real/copytrader_audit_202607/exchange_leader_fills.json.gz")
SLOT, RECORDED_COIN, WINDOW = "acc9", "xyz:CXMT", slice(116, 233)
COIN, PRICE_SCALE = "HYPE", Decimal(5)
START_MS = 1_784_530_000_000  # the recording's day, on a whole second
LEADER_USD, FOLLOWER_USD = "1000000", "100000"
MIN_USD = Decimal(10)
SLIPPAGE_PCT, DRIFT_PCT = Decimal("0.5"), Decimal(1)  # FollowSettings' defaults, restated


def D(x: str) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(x)


# Every decision reads the venue at that moment, so the test can read the same numbers back: snapshots
# live 500 ms of the venue's clock (it moves 1 s per fill), no equity is served stale while a refresh runs,
# and the mids are read over REST at each decision rather than taken from the allMids stream or an earlier
# read (both may be from before the clock moved or before the leader's sweep).
EXACT = ServiceConfig(
    delta_loop=False,
    leader_snapshot_ttl_ms=500,
    follower_snapshot_ttl_ms=500,
    follower_snapshot_max_stale_ms=500,
    live_marks=False,
    marks_max_age_secs=0.0,
)


# ---------------------------------------------------------------------- the recording


def recorded_fills() -> list[Fill]:
    """The leader's CXMT fills in position order. The venue lists fills of one millisecond by trade id,
    which is not always the order they moved the position in; ``startPosition`` chains them."""
    doc = json.loads(gzip.decompress(AUDIT.read_bytes()))
    [query] = [q for q in doc["queries"] if q["slot"] == SLOT]
    raw = sorted(
        (f for f in query["fills"] if f["coin"] == RECORDED_COIN), key=lambda f: (f["time"], f["tid"])
    )
    fills = [parse.fill("0x" + "ac" * 20, f) for f in raw]
    out: list[Fill] = []
    position: Decimal | None = None
    for _, same_ms in groupby(fills, key=lambda f: f.time_ms):
        pending = list(same_ms)
        while pending:
            nxt = next((f for f in pending if position is None or f.start_position == position), pending[0])
            pending.remove(nxt)
            out.append(nxt)
            position = nxt.start_position + nxt.signed_size
    return out


def direction_of(start: Decimal, end: Decimal) -> str:
    """The venue's ``dir`` for a position moving from ``start`` to ``end``."""
    if start == 0:
        return "Open Long" if end > 0 else "Open Short"
    if start > 0:
        return "Open Long" if end > start else "Close Long" if end >= 0 else "Long > Short"
    return "Open Short" if end < start else "Close Short" if end <= 0 else "Short > Long"


# ---------------------------------------------------------------------- what the test saw at each step


@dataclass
class Step:
    """One recorded fill re-traded: what the follower's decision depended on, as read from the venue."""

    recorded: Fill
    follower_equity: Decimal  # before the leader's trade (nothing else moves it within the step)
    book: tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]  # before the leader's trade
    leader_equity: Decimal = Decimal(0)  # after it (the follower's trade does not move the leader's marks)
    fills: tuple[Fill, ...] = ()  # the leader's venue fills of the order


@dataclass(frozen=True)
class Outcome:
    """What the independent calculation expects for one leader order: orders ("close"/"open", size) and
    skip codes."""

    orders: tuple[tuple[str, Decimal], ...] = ()
    skips: tuple[str, ...] = ()


# ---------------------------------------------------------------------- the independent calculation


def floor_lots(x: Fraction, decimals: int) -> Decimal:
    """``x`` rounded down to whole lots of 10^-decimals."""
    lots = math.floor(x * 10**decimals)
    return Decimal(lots).scaleb(-decimals)


def on_price_grid(px: Decimal, sz_decimals: int, rounding: str) -> Decimal:
    """``px`` rounded onto the perp price grid (5 significant figures, at most 6 - szDecimals places)."""
    digits = px.adjusted() + 1  # digits before the point
    places = max(0, min(6 - sz_decimals, 5 - digits))
    return px.quantize(Decimal(1).scaleb(-places), rounding=rounding)


def mid_after(step: Step, side: Side, size: Decimal, px_decimals: int) -> Decimal:
    """The book's mid once the leader's IOC took ``size`` from the touch (it was the only taker)."""
    bids, asks = (list(s) for s in step.book)
    levels = asks if side is Side.BUY else bids
    left = size
    while left > 0:
        px, sz = levels[0]
        if sz <= left:
            left -= sz
            levels.pop(0)
        else:
            levels[0] = (px, sz - left)
            left = D("0")
    tick = Decimal(1).scaleb(-px_decimals)
    ticks = (int(bids[0][0] / tick) + int(asks[0][0] / tick)) // 2  # the venue's integer mid
    return Decimal(ticks) * tick


def head(fills: tuple[Fill, ...]) -> Fill:
    """The first fill of one order: the head of its ``startPosition`` chain (the one no other fill leads
    to). The venue's trade ids, and so the order fills are listed in, say nothing about which came first."""
    ends = {f.start_position + f.signed_size for f in fills}
    [first] = [f for f in fills if f.start_position not in ends]
    return first


def merged(fills: tuple[Fill, ...]) -> tuple[Decimal, Decimal, Decimal]:
    """(start, size, size-weighted price) of one order's fills."""
    size = sum((f.size for f in fills), D("0"))
    price = sum((f.price * f.size for f in fills), D("0")) / size
    return head(fills).start_position, size, price


def open_leg(leader_size: Decimal, sign: int, *, mark: Decimal, price: Decimal, ratio: Fraction,
             sz_decimals: int) -> tuple[str, Decimal] | str:  # fmt: skip
    """Our opening order ("open", size) for a leader opening ``leader_size`` on side ``sign``, or the skip
    code: the drift guard, the equity ratio rounded down to lots, the $10 minimum."""
    moved = (mark - price) / price * 100 * sign  # against us: up for a buy, down for a sell
    if moved > DRIFT_PCT:
        return "SKIP_DRIFT"
    requested = Fraction(leader_size) * ratio
    ours = floor_lots(requested, sz_decimals)
    # the limit is the slippage cap from the mark, rounded towards caution; the $10 minimum is checked at
    # the lower of the mark and the limit
    if sign > 0:
        cap = on_price_grid(mark * (1 + SLIPPAGE_PCT / 100), sz_decimals, ROUND_FLOOR)
    else:
        cap = on_price_grid(mark * (1 - SLIPPAGE_PCT / 100), sz_decimals, ROUND_CEILING)
    check = min(mark, cap)
    if ours == 0 and requested * Fraction(check) >= MIN_USD:
        return "SKIP_ZERO_SIZE"
    if ours * check < MIN_USD:
        return "SKIP_MIN_NOTIONAL"
    return ("open", ours)


def expected(steps: list[Step], sz_decimals: int, preexisting: bool) -> tuple[Decimal, list[Outcome]]:
    """Replay the mirror rules by hand (settings: the defaults): the follower's final position and each
    order's outcome. Copies are IOCs within a 0.5% cap against a deep book: each fills whole."""
    position = D("0")
    outcomes: list[Outcome] = []
    for step in steps:
        start, size, price = merged(step.fills)
        end = start + (size if step.fills[0].side is Side.BUY else -size)
        dir_ = direction_of(start, end)
        mark = mid_after(step, step.fills[0].side, size, 6 - sz_decimals)
        ratio = Fraction(step.follower_equity) / Fraction(step.leader_equity)
        legs: list[tuple[tuple[str, Decimal] | str, int]] = []  # (an order or a skip code, its side)
        if start == 0 or dir_.startswith("Open"):
            sign = 1 if dir_ == "Open Long" else -1
            if start != 0 and preexisting:
                legs.append(("SKIP_PREEXISTING", sign))
            else:
                assert position * sign >= 0, "never out of step with the leader here"
                legs.append(
                    (open_leg(size, sign, mark=mark, price=price, ratio=ratio, sz_decimals=sz_decimals), sign)
                )
        else:
            sign = 1 if start > 0 else -1  # the side being closed
            ours = position * sign
            flip = dir_ in ("Long > Short", "Short > Long")
            if ours <= 0:
                legs.append(("SKIP_PREEXISTING" if preexisting else "SKIP_NO_POSITION", -sign))
            elif flip or size >= abs(start):
                legs.append((("close", ours), -sign))
            else:
                fraction = Fraction(ours) * Fraction(size) / Fraction(abs(start))
                share = min(floor_lots(fraction, sz_decimals), ours)
                legs.append((("close", share) if share else "SKIP_ZERO_SIZE", -sign))
            if flip:
                opened = open_leg(
                    size - abs(start), -sign, mark=mark, price=price, ratio=ratio, sz_decimals=sz_decimals
                )
                legs.append((opened, -sign))
        orders = tuple(leg for leg, _ in legs if isinstance(leg, tuple))
        position += sum((leg[1] * side for leg, side in legs if isinstance(leg, tuple)), D("0"))
        if end == 0 or end * start < 0:
            preexisting = False  # the leader's old position is gone
        outcomes.append(Outcome(orders, tuple(leg for leg, _ in legs if isinstance(leg, str))))
    return position, outcomes


# ---------------------------------------------------------------------- the run


@dataclass
class Run:
    steps: list[Step]
    follower_position: dict[str, Decimal]
    journal: list[Any]
    skips: list[Any]
    sz_decimals: int


async def _leader_trade(
    op: Operator, leader: Any, fill: Fill, inst: Any, size: Decimal | None = None
) -> None:
    bids, asks = await op.book(COIN)
    buy = fill.side is Side.BUY
    limit = quantize_price(inst, asks[0][0] * D("1.05") if buy else bids[0][0] * D("0.95"),
                           Rounding.DOWN if buy else Rounding.UP)  # fmt: skip
    closing = fill.direction.startswith("Close")  # reduce-only: exempt from the $10 minimum, like the venue
    qty = fill.size if size is None else size
    ack = await leader.gateway.submit(OrderRequest(COIN, fill.side, qty, limit, Tif.IOC, reduce_only=closing))
    assert ack.filled_size == qty, f"the leader's re-trade did not fill whole: {ack}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    window = recorded_fills()[WINDOW]
    leader_w, follower_w = wallet("replay-leader"), wallet("replay-follower")
    leader_addr, follower_addr = address(leader_w), address(follower_w)
    exchange = EmbeddedExchange(seed=11, stepped=True, simulated_traders=False, start_ms=START_MS)
    exchange.fund(leader_addr, LEADER_USD)
    exchange.fund(follower_addr, FOLLOWER_USD)
    db = tmp_path_factory.mktemp("replay") / "replay.db"
    store = await Store.open_migrated(f"sqlite+aiosqlite:///{db}")
    with serve(exchange) as (url, _server):
        async with operator(url) as op, adapter(url, leader_w) as leader, adapter(url, follower_w) as fv:
            inst = await leader.market.instrument(COIN)
            # the position the leader held before the window, opened before the follow starts
            first = window[0]
            await op.set_price(COIN, first.price * PRICE_SCALE)
            long = first.start_position > 0
            opening = replace(first, direction="Open Long" if long else "Open Short", side=Side.of(long))
            await _leader_trade(op, leader, opening, inst, abs(first.start_position))
            await op.advance(1_000)
            svc = CopyService(
                {follower_addr: fv},
                StoreCopyJournal(store),
                config=EXACT,
                # the venue's stepped clock: snapshots expire as it moves
                clock=LiveClock(wall_ms=exchange.clock.now_ms),
            )
            follow = await svc.follow(follower_addr, leader_addr, FollowSettings())
            await svc.start()
            steps: list[Step] = []
            try:
                for rec in window:
                    await op.advance(1_000)
                    await op.set_price(COIN, rec.price * PRICE_SCALE)
                    step = Step(rec, await op.equity(follower_addr), await op.book(COIN))
                    before = svc.cursor_of(follow)
                    await _leader_trade(op, leader, rec, inst)
                    await _handled(svc, follow, before)
                    step.leader_equity = await op.equity(leader_addr)
                    steps.append(step)
                leader_fills = [parse.fill(leader_addr, f) for f in await op.fills(leader_addr)]
                follower_position = await op.positions(follower_addr)
            finally:
                await svc.close()
    after_start = [f for f in leader_fills if f.time_ms >= follow.created_ms]
    orders = [tuple(g) for _, g in groupby(after_start, key=lambda f: f.oid)]
    assert len(orders) == len(steps)
    for step, order_fills in zip(steps, orders, strict=True):
        step.fills = order_fills
    async with store.transaction() as tx:
        journal = await tx.journal.recent(follower_addr, limit=10_000)
        skips = await tx.skips.for_follower(follower_addr)
    await store.close()
    yield Run(steps, follower_position, journal, skips, inst.sz_decimals)


async def _handled(svc: CopyService, follow: Any, before: Any) -> None:
    """Wait until the leader's order is decided, every copy it caused is resolved, and their fills are
    recorded."""
    key = (follow.follower, follow.leader, COIN)

    async def done() -> bool:
        if svc.cursor_of(follow) == before or await svc.journal.unresolved():
            return False
        return svc.ledger.position(*key) == svc.ledger.held(*key).size

    await wait_until(done, "the copy of a leader fill")


# ---------------------------------------------------------------------- checks


def test_the_leader_reproduces_the_recorded_sequence(run: Run) -> None:
    got = [(direction_of(s, s + (z if st.fills[0].side is Side.BUY else -z)), z, s)
           for st in run.steps for s, z, _ in [merged(st.fills)]]  # fmt: skip
    want = [(r.recorded.direction, r.recorded.size, r.recorded.start_position) for r in run.steps]
    assert got == want
    dirs = {d for d, _, _ in want}
    assert {"Open Short", "Close Short", "Open Long", "Close Long", "Short > Long"} <= dirs


def test_the_follower_ends_where_the_independent_calculation_says(run: Run) -> None:
    position, outcomes = expected(run.steps, run.sz_decimals, preexisting=True)
    assert run.follower_position == ({COIN: position} if position else {})
    copies = sum(len(o.orders) for o in outcomes)
    assert copies > 40, "the window is mostly copied, not mostly skipped"


def test_every_copy_and_every_skip_is_the_expected_one(run: Run) -> None:
    _, outcomes = expected(run.steps, run.sz_decimals, preexisting=True)
    by_key: dict[str, Outcome] = {}
    for entry in run.journal:
        o = by_key.setdefault(entry.source_fill_key, Outcome())
        by_key[entry.source_fill_key] = Outcome((*o.orders, (entry.leg, entry.size)), o.skips)
        assert entry.state.value == "FILLED", entry
        assert entry.filled_size == entry.size, entry
    for skip in run.skips:
        o = by_key.setdefault(skip.source_fill_key, Outcome())
        by_key[skip.source_fill_key] = Outcome(o.orders, (*o.skips, skip.reason))
    got = [by_key.get(head(step.fills).ref, Outcome()) for step in run.steps]  # the merged fill's ids
    got = [Outcome(tuple(sorted(o.orders, key=lambda x: x[0] != "close")), o.skips) for o in got]
    assert got == outcomes
    reasons = {r for o in outcomes for r in o.skips}
    assert {"SKIP_PREEXISTING", "SKIP_MIN_NOTIONAL"} <= reasons
    for skip in run.skips:  # every skip says why, with the numbers behind it
        assert skip.reason.startswith("SKIP_"), skip
        assert skip.detail.get("leader_dir"), skip
