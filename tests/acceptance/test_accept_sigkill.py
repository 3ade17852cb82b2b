"""Acceptance: the copy engine killed with SIGKILL at random moments, restarted each time, loses nothing and
does nothing twice; for taker copies and for maker copies (post-only, then the rest as a taker fallback).

The engine runs in a child process (``copy_child.py``: the real Hyperliquid adapter over HTTP/WS, the store in
a SQLite file) against an embedded exchange this test serves in real time (no simulated traders; the market
maker gives liquidity). The test's leader trades a seeded sequence on ETH and SOL (opens, adds, partial
closes, full closes, flips). Seeded kills land

* right after a leader fill (a few ms later: while the child receives, decides, journals or sends),
* in the dangerous windows, paused there by the child's debug hooks: ``before_send`` (journalled,
  not sent), ``after_send`` (filled at the venue, nothing recorded), ``before_record_fill`` (our fill came
  in, not recorded); for maker copies ``maker_journalled`` (the post-only leg journalled, not sent),
  ``maker_resting`` (it rests at the venue, unwatched), ``fallback_journalled`` (the taker fallback
  journalled, not sent) and ``fallback_sent`` (the fallback filled, nothing recorded),

and after some kills the leader trades on while the child is down. At the end (after the last restart has
settled) the venue, the store and an independent calculation must agree; every cloid is one order at the
venue, every order at the venue is journalled and each entry's filled size is what its order filled there;
no journal entry is unresolved; each leader order was decided exactly once; and each restart's log says what
it reconciled.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from accept_support import Child, Operator, adapter, address, key_hex, operator, serve, wait_until, wallet

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.hyperliquid.venue import HyperliquidVenue
from hyperfollow.domain.model import Fill, OrderRequest, Side, Tif
from hyperfollow.domain.rules import Rounding, quantize_price
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.store import Store

CHILD = Path(__file__).with_name("copy_child.py")
ACTIONS = 22
MULTIPLIER = Decimal("0.1")  # copy_child.SETTINGS
LOTS = {"ETH": (Decimal("0.1"), 5, 30), "SOL": (Decimal("1"), 5, 40)}  # leader lot, min and max lots


def D(x: str) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(x)


@dataclass(frozen=True)
class Style:
    """One execution style under test: its seed, the kills it draws, and what each restart must say."""

    name: str
    seed: int
    windows: tuple[str, ...]  # the hook points a kill may be armed at
    kills: tuple[str, ...]  # the kill kinds drawn over the actions
    flip_kills: frozenset[str]  # kinds the seed must land on flips (two orders per leader fill)
    resent: frozenset[str]  # the restart after this kind says ``copy.resent`` for the window's cloid
    resolved: frozenset[str]  # ... or ``copy.resolved``


_TAKER_WINDOWS = ("before_send", "after_send", "before_record_fill")
TAKER = Style(
    "taker", 20260711, _TAKER_WINDOWS, ("after_leader_fill", *_TAKER_WINDOWS) * 2,
    frozenset({"before_send", "after_send"}), frozenset({"before_send"}), frozenset({"after_send"}),
)  # fmt: skip
_MAKER_WINDOWS = ("maker_journalled", "maker_resting", "fallback_journalled", "fallback_sent")
MAKER = Style(
    "maker", 20260837, (*_MAKER_WINDOWS, "before_record_fill"),
    ("after_leader_fill", "before_record_fill", *_MAKER_WINDOWS, *_MAKER_WINDOWS),
    frozenset({"maker_resting", "fallback_journalled"}),
    frozenset({"maker_journalled", "fallback_journalled"}), frozenset({"maker_resting", "fallback_sent"}),
)  # fmt: skip


# ---------------------------------------------------------------------- the child


@dataclass
class Harness:
    url: str
    db_url: str
    tmp: Path
    leader_addr: str
    follower_addr: str
    follower_key: str
    style: str = "taker"
    children: list[Child] = field(default_factory=list)

    @property
    def arm_file(self) -> Path:
        return self.tmp / "arm"

    async def spawn(self) -> Child:
        n = len(self.children)
        args = ["--url", self.url, "--db", self.db_url, "--follower", self.follower_addr,
                "--leader", self.leader_addr, "--arm-file", str(self.arm_file),
                "--style", self.style]  # fmt: skip
        quiet = asyncio.subprocess.DEVNULL
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(CHILD), *args, stdin=quiet, stdout=quiet, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "HF_CHILD_KEY": self.follower_key},  # the key never on a command line
        )  # fmt: skip
        child = Child(proc, self.tmp / f"child-{n}.log", n)
        child.reader = asyncio.create_task(child.read())
        self.children.append(child)
        await wait_until(
            lambda: child.events("child.ready") or proc.returncode is not None, "child.ready", 30
        )
        assert proc.returncode is None, f"the child died at start-up: see {child.log_path}"
        return child


# ---------------------------------------------------------------------- the leader's seeded sequence


@dataclass(frozen=True)
class Action:
    coin: str
    side: Side
    size: Decimal
    reduce_only: bool
    what: str


def leader_plan(rng: random.Random, n: int) -> list[Action]:
    """Opens, adds, partial closes, full closes and flips, in sizes whose copies are worth well over $10."""
    held = {coin: D("0") for coin in LOTS}
    out: list[Action] = []
    for _ in range(n):
        coin = rng.choice(sorted(LOTS))
        lot, lo, hi = LOTS[coin]
        pos = held[coin]
        fresh = lot * rng.randint(lo, hi)
        kind = "open" if pos == 0 else rng.choice(["add", "reduce", "reduce", "close", "flip"])
        sign = (1 if pos > 0 else -1) if pos else rng.choice([1, -1])
        if kind in ("open", "add"):
            size, side, ro = fresh, Side.of(sign > 0), False
        elif kind == "reduce":
            size, side, ro = (
                max(lot, (abs(pos) * Decimal(rng.randint(2, 7)) / 10 // lot) * lot),
                Side.of(sign < 0),
                True,
            )
            if size >= abs(pos):
                kind = "close"
        if kind == "close":
            size, side, ro = abs(pos), Side.of(sign < 0), True
        elif kind == "flip":
            size, side, ro = abs(pos) + fresh, Side.of(sign < 0), False
        held[coin] = pos + (size if side is Side.BUY else -size)
        out.append(Action(coin, side, size, ro, kind))
    return out


async def trade(leader: HyperliquidVenue, op: Operator, action: Action) -> None:
    bids, asks = await op.book(action.coin)
    inst = await leader.market.instrument(action.coin)
    buy = action.side is Side.BUY
    limit = quantize_price(inst, asks[0][0] * D("1.02") if buy else bids[0][0] * D("0.98"),
                           Rounding.DOWN if buy else Rounding.UP)  # fmt: skip
    order = OrderRequest(
        action.coin, action.side, action.size, limit, Tif.IOC, reduce_only=action.reduce_only
    )
    ack = await leader.gateway.submit(order)
    assert ack.filled_size == action.size, ack


# ---------------------------------------------------------------------- what the venue and the store say


async def settled(h: Harness, op: Operator, store: Store) -> bool:
    """The child has decided every leader fill (its cursor is at the last), resolved every order, and
    recorded every follower fill."""
    leader_fills = await op.fills(h.leader_addr)
    follower_fills = await op.fills(h.follower_addr)
    async with store.transaction() as tx:
        cursor = await tx.cursors.get(h.follower_addr, h.leader_addr)
        unresolved = await tx.journal.unresolved()
        recorded = await tx.fills.for_address(h.follower_addr)
    last = f"tid:{leader_fills[-1]['tid']}" if leader_fills else None
    # the cursor names every fill of its millisecond
    at_end = last is None or (cursor is not None and last in cursor.last_fill_key.split())
    return at_end and not unresolved and len(recorded) == len(follower_fills)


def expected_positions(leader_orders: list[tuple[Fill, ...]]) -> dict[str, Decimal]:
    """The follower's positions by the mirror rules, from the leader's orders: opens x 0.1 rounded down to
    lots; closes the same fraction of ours, rounded down (all of it when the leader went flat); a flip closes
    ours, then opens 0.1 x the part beyond the leader's close."""
    lot = {"ETH": D("0.0001"), "SOL": D("0.01")}
    ours: dict[str, Decimal] = {}
    for fills in leader_orders:
        coin, start = fills[0].coin, fills[0].start_position
        size = sum((f.size for f in fills), D("0"))
        signed = size if fills[0].side is Side.BUY else -size
        end, pos = start + signed, ours.get(coin, D("0"))
        if start == 0 or ((end > 0) == (start > 0) and abs(end) > abs(start)):  # open or add
            pos += (abs(signed) * MULTIPLIER // lot[coin]) * lot[coin] * (1 if signed > 0 else -1)
        elif end * start >= 0:  # a close, part or whole
            share = abs(pos) if end == 0 else (abs(pos) * size / abs(start) // lot[coin]) * lot[coin]
            pos -= share * (1 if pos > 0 else -1)
        else:  # a flip
            beyond = abs(end)
            pos = (beyond * MULTIPLIER // lot[coin]) * lot[coin] * (1 if end > 0 else -1)
        ours[coin] = pos
    return {c: p for c, p in ours.items() if p}


def _next_on_coin(plan: list[Action], j: int) -> int | None:
    return next((k for k in range(j + 1, len(plan)) if plan[k].coin == plan[j].coin), None)


def _opened_while_down_then_added(plan: list[Action], down: set[int]) -> bool:
    """Whether the leader opened a position while the child was down and added to it once it was back: the
    restarted engine must copy that add (the position is not one that predates the follow)."""
    for j in down:
        k = _next_on_coin(plan, j)
        if plan[j].what == "open" and k is not None and k not in down and plan[k].what == "add":
            return True
    return False


async def _at_kill_point(child: Child, kind: str, rng: random.Random) -> str | None:
    """Wait for the moment to kill: a few ms after the leader's fill, or inside the armed window (the cloid
    the child paused on)."""
    if kind == "after_leader_fill":
        await asyncio.sleep(rng.uniform(0, 0.02))
        return None
    await wait_until(
        lambda: child.events("child.window") or child.events("copy.skipped"), f"the {kind} window"
    )
    skipped = child.events("copy.skipped")
    assert not skipped, f"a copy was skipped, there is no {kind} window to kill in: {skipped}"
    [window] = child.events("child.window")
    assert window["point"] == kind
    await asyncio.sleep(rng.uniform(0, 0.02))
    cloid = window.get("cloid")
    return str(cloid) if cloid else None


def _check_coverage(plan: list[Action], kill_at: dict[int, str], style: Style) -> None:
    """The seed must give what the test claims to exercise: every kind of leader move, and flips (two
    orders per leader fill) killed in the windows of their send."""
    assert {a.what for a in plan} == {"open", "add", "reduce", "close", "flip"}
    assert style.flip_kills <= {kill_at.get(i) for i, a in enumerate(plan) if a.what == "flip"}


def draw(style: Style) -> tuple[list[Action], dict[int, str], random.Random]:
    """The leader's seeded plan, the seeded kills (action index -> kill kind), and the generator that goes
    on to time the kills and the trades while the child is down."""
    rng = random.Random(style.seed)
    plan = leader_plan(rng, ACTIONS)
    at = sorted(rng.sample(range(1, ACTIONS - 1), len(style.kills)))
    return plan, dict(zip(at, rng.sample(style.kills, len(style.kills)), strict=True)), rng


# ---------------------------------------------------------------------- the test


@pytest.fixture(params=[TAKER, MAKER], ids=lambda s: s.name)
def style(request: pytest.FixtureRequest) -> Style:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def harness(
    tmp_path: Path, style: Style
) -> AsyncIterator[tuple[Harness, Operator, HyperliquidVenue, Store]]:
    leader_w, follower_w = wallet("sigkill-leader"), wallet("sigkill-follower")
    # real time: the child's clock is the wall clock, and so is the venue's
    exchange = EmbeddedExchange(seed=3, stepped=False, simulated_traders=False)
    exchange.fund(address(leader_w), "1000000")
    exchange.fund(address(follower_w), "100000")
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'copy.db'}"
    with serve(exchange) as (url, _server):
        h = Harness(
            url, db_url, tmp_path, address(leader_w), address(follower_w), key_hex(follower_w), style.name
        )
        async with operator(url) as op, adapter(url, leader_w) as leader:
            store = Store.open(db_url)
            try:
                yield h, op, leader, store
            finally:
                for child in h.children:
                    if child.proc.returncode is None:
                        await child.kill()
                await store.close()


async def test_sigkill_at_random_points_loses_nothing_and_doubles_nothing(
    harness: tuple[Harness, Operator, HyperliquidVenue, Store], style: Style
) -> None:
    h, op, leader, store = harness
    plan, kill_at, rng = draw(style)
    _check_coverage(plan, kill_at, style)
    child: Child | None = await h.spawn()
    kills: list[tuple[int, str, str | None, int]] = []  # (action, kind, cloid in the window, child killed)
    down: set[int] = set()  # actions the leader traded while the child was down
    i = 0
    while i < len(plan):
        if child is None:
            child = await h.spawn()
        await wait_until(lambda: settled(h, op, store), "the child to settle", 20, every=0.02)
        kind = kill_at.get(i)
        if kind in style.windows:
            h.arm_file.write_text(kind)
        await trade(leader, op, plan[i])
        i += 1
        if kind is None:
            continue
        cloid = await _at_kill_point(child, kind, rng)
        await child.kill()
        kills.append((i - 1, kind, cloid, child.n))
        child = None
        for _ in range(rng.choice([0, 0, 1, 2])):  # the leader trades on while we are down
            if i < len(plan) and i not in kill_at:
                await trade(leader, op, plan[i])
                down.add(i)
                i += 1
    if child is None:
        child = await h.spawn()
    await wait_until(lambda: settled(h, op, store), "the last child to settle", 20, every=0.02)

    assert _opened_while_down_then_added(plan, down), "the seed lost its coverage"

    # -- the venue and the store agree, and match the independent calculation
    venue_positions = await op.positions(h.follower_addr)
    # in position order: the venue lists an order's fills in no useful order (its trade ids are unordered),
    # and a leader order sweeping a level of several makers is several fills
    leader_fills = parse.in_position_order(
        parse.fill(h.leader_addr, f) for f in await op.fills(h.leader_addr)
    )
    by_oid: dict[int, list[Fill]] = {}
    for f in leader_fills:
        by_oid.setdefault(f.oid, []).append(f)
    orders = [tuple(fills) for fills in by_oid.values()]
    async with store.transaction() as tx:
        held: dict[str, Decimal] = {}  # summed over leaders (one here)
        for p in await tx.positions.for_follower(h.follower_addr):
            held[p.coin] = held.get(p.coin, D("0")) + p.size
        journal = await tx.journal.recent(h.follower_addr, limit=10_000)
        skips = await tx.skips.for_follower(h.follower_addr)
        assert await tx.journal.unresolved() == []
    assert not skips, [(s.reason, s.detail) for s in skips]  # every copy was worth over $10: no skips
    assert venue_positions == {c: s for c, s in held.items() if s}
    assert venue_positions == expected_positions(orders)

    # -- every cloid is at most one order at the venue, every order there is journalled, and each entry's
    #    filled size is what its order filled at the venue (a maker copy's legs each their own)
    history = await op.info({"type": "historicalOrders", "user": h.follower_addr})
    oids_by_cloid: dict[str, set[int]] = {}
    for item in history:
        order = item["order"]
        if order.get("cloid"):
            oids_by_cloid.setdefault(order["cloid"], set()).add(order["oid"])
    filled_at_venue: dict[str, Decimal] = {}
    for f in await op.fills(h.follower_addr):
        oids_by_cloid.setdefault(f["cloid"], set()).add(f["oid"])
        filled_at_venue[f["cloid"]] = filled_at_venue.get(f["cloid"], D("0")) + D(f["sz"])
    assert all(len(oids) == 1 for oids in oids_by_cloid.values()), oids_by_cloid
    assert set(oids_by_cloid) <= {e.cloid for e in journal}
    assert {e.cloid: e.filled_size for e in journal if e.filled_size} == filled_at_venue
    if style is TAKER:  # every taker copy filled: each order at the venue has a fill
        assert set(filled_at_venue) == set(oids_by_cloid)
    else:  # both legs went out (each journalled as an entry of its own)
        assert {e.tif for e in journal} == {Tif.ALO, Tif.IOC}

    # -- each leader order decided exactly once (its intents and skips name one of its fills)
    keys = {e.source_fill_key for e in journal} | {s.source_fill_key for s in skips}
    for fills in orders:
        assert len({f.ref for f in fills} & keys) == 1, fills
    assert len(keys) == len(orders)

    # -- what the kills hit, and what each restart said about it
    assert Counter(k for _, k, _, _ in kills) == Counter(style.kills)
    for _, kind, cloid, n in kills:
        nxt = h.children[n + 1]
        said = {
            (e["event"], e.get("cloid")) for e in nxt.lines if str(e.get("event", "")).startswith("copy.")
        }
        if kind in style.resent:
            assert ("copy.resent", cloid) in said, (kind, nxt.log_path)
        elif kind in style.resolved:
            assert ("copy.resolved", cloid) in said, (kind, nxt.log_path)
        elif kind == "before_record_fill":  # caught up from the venue at the restart, recorded once
            async with store.transaction() as tx:
                assert len(await tx.fills.for_cloid(str(cloid))) >= 1, (kind, cloid)
    summary = {"style": style.name, "kills": [(a, k) for a, k, _, _ in kills],
               "restarts": len(h.children) - 1, "leader_orders": len(orders),
               "traded_while_down": sorted(down)}  # fmt: skip
    (h.tmp / "summary.json").write_text(json.dumps(summary))
