"""`hyperfollow copy --paper` against the embedded exchange served over HTTP/WS as if it were the real
venue: a leader trades there through the official SDK; the paper run copies it on a simulated account
kept in SQLite. Every `/exchange` request reaching the venue is counted: the leader's are all there are.
No signing key is set anywhere in the environment."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog
from support import Trader, Venue
from typer.testing import CliRunner

from hyperfollow.adapters.hyperliquid.client import HyperliquidClient, HyperliquidInfoClient
from hyperfollow.adapters.hyperliquid.config import EndpointConfig
from hyperfollow.adapters.hyperliquid.public import connect_public
from hyperfollow.adapters.paper import paper_address
from hyperfollow.adapters.paper.snapshot import state_doc
from hyperfollow.app.cli import app
from hyperfollow.app.paper_run import open_paper_venue
from hyperfollow.exchange.accounts import ntl_div
from hyperfollow.exchange.engine import TAKER_FEE, fee_for
from hyperfollow.store.unit import Store

PAPER = paper_address("default")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No HYPERFOLLOW_* setting of the machine leaks in (no key above all); the store is this test's."""
    import os

    for name in list(os.environ):
        if name.startswith("HYPERFOLLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HYPERFOLLOW_STORE__URL", f"sqlite+aiosqlite:///{tmp_path / 'paper.db'}")


class ExchangeCounter:
    """Wraps the venue's `/exchange` handler: every action body that reaches it, from anyone."""

    def __init__(self, venue: Venue) -> None:
        self.bodies: list[dict[str, Any]] = []
        exchange = venue.server.exchange
        handle = exchange.exchange

        def counted(body: Any) -> dict[str, Any]:
            self.bodies.append(body)
            return handle(body)

        exchange.exchange = counted  # type: ignore[method-assign]


class Leader:
    """The leader's SDK trading, each call one `/exchange` request."""

    def __init__(self, trader: Trader) -> None:
        self.trader = trader
        self.actions = 0

    def trade_until(self, done: Callable[[], bool], stop: threading.Event) -> None:
        buy = True
        while not stop.is_set() and not done():
            if buy:
                self.trader.exchange.market_open("ETH", True, 0.5)
            else:
                self.trader.exchange.market_close("ETH")
            self.actions += 1
            buy = not buy
            stop.wait(0.4)


def _paper_fills(db: Path) -> list[list[Any]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            rows = conn.execute("SELECT doc FROM paper_records WHERE kind = 'fill' ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []
    return [json.loads(r[0]) for r in rows]


def _reachable(root: object) -> list[object]:
    """Every object of ours reachable from ``root`` through attributes, containers and bound methods."""
    seen: dict[int, object] = {}
    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | Decimal | type):
            continue
        seen[id(obj)] = obj
        if isinstance(obj, dict):
            todo.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            todo.extend(obj)
        elif hasattr(obj, "__self__"):  # a bound method (a callback handed to a component)
            todo.append(obj.__self__)
        elif type(obj).__module__.startswith("hyperfollow"):
            todo.extend(vars(obj).values() if hasattr(obj, "__dict__") else ())
            todo.extend(getattr(obj, s) for s in getattr(type(obj), "__slots__", ()) if hasattr(obj, s))
    return [o for o in seen.values() if type(o).__module__.startswith("hyperfollow")]


def _follow_file(path: Path, leader: Trader) -> Path:
    path.write_text(
        f'[defaults]\nsizing = "fixed_multiplier"\nmultiplier = 1\n\n'
        f'[[follow]]\nleader = "{leader.address}"\nname = "sdk leader"\n'
    )
    return path


def _paper_state(db: Path) -> dict[str, Any] | None:
    if not db.exists():
        return None
    with sqlite3.connect(db) as conn:
        try:
            row = conn.execute("SELECT state FROM paper_accounts WHERE address = ?", (PAPER,)).fetchone()
        except sqlite3.OperationalError:  # not migrated yet
            return None
    return None if row is None else dict(json.loads(row[0]))


def _holds(db: Path) -> bool:
    state = _paper_state(db)
    return state is not None and any(row[1] != 0 for row in state["positions"])


def _run_paper_cli(config: Path, leader: Leader, db: Path, seconds: float, done: Callable[[], bool]) -> Any:
    stop = threading.Event()
    trading = threading.Thread(target=leader.trade_until, args=(done, stop), daemon=True)
    trading.start()
    try:
        return CliRunner().invoke(
            app, ["copy", "--config", str(config), "--paper", "--duration", str(seconds)]
        )
    finally:
        stop.set()
        trading.join(10)


def test_a_paper_copy_sends_nothing_to_the_venue_and_fills_at_its_book_with_fees(
    make_venue: Callable[..., Venue], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venue = make_venue(stepped=False)  # real time: the service's clock is the wall clock
    counter = ExchangeCounter(venue)
    leader = Leader(venue.trader("paper-leader", usd="100000"))
    monkeypatch.setenv("HYPERFOLLOW_VENUE__BASE_URL", venue.url)
    db = tmp_path / "paper.db"
    config = _follow_file(tmp_path / "follow.toml", leader.trader)
    result = _run_paper_cli(config, leader, db, 6, lambda: len(_paper_fills(db)) >= 2)

    assert result.exit_code == 0, result.output
    assert "paper account" in result.output
    # every /exchange request the venue saw is one of the leader's SDK orders: none came from the paper run
    assert len(counter.bodies) == leader.actions
    assert all(b["action"]["type"] == "order" for b in counter.bodies)
    # the paper account exists only in our store, never on the venue
    assert venue.info_request({"type": "userFills", "user": PAPER}) == []
    assert venue.info_request({"type": "clearinghouseState", "user": PAPER})["assetPositions"] == []

    fills = _paper_fills(db)
    assert fills, result.output
    leader_fills = leader.trader.info.user_fills(leader.trader.address)
    leader_px = [Decimal(f["px"]) for f in leader_fills]
    inst = venue.server.exchange.engine.universe.by_coin["ETH"]
    for _user, asset, _is_buy, px, sz, *_, crossed, fee, _tid, cloid, _liq in fills:
        assert asset == inst.asset
        assert cloid  # our copies carry our cloids
        assert crossed  # taker copies
        assert fee == fee_for(px * sz // ntl_div(inst), TAKER_FEE)  # the venue's taker fee, exactly
        price = Decimal(px).scaleb(-inst.px_decimals)
        assert min(abs(price - p) / p for p in leader_px) < Decimal("0.005")  # the live book, near the leader


def test_a_paper_account_resumes_from_the_store_as_it_was(
    make_venue: Callable[..., Venue], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venue = make_venue(stepped=False)
    leader = Leader(venue.trader("paper-resume-leader", usd="100000"))
    monkeypatch.setenv("HYPERFOLLOW_VENUE__BASE_URL", venue.url)
    db = tmp_path / "paper.db"
    config = _follow_file(tmp_path / "follow.toml", leader.trader)
    result = _run_paper_cli(config, leader, db, 5, lambda: _holds(db))  # the leader stops holding
    assert result.exit_code == 0, result.output
    assert _holds(db), result.output  # the copy holds a position when the run stops
    saved = _paper_state(db)

    async def reopen() -> tuple[dict[str, Any], Any, bool, int]:
        store = await Store.open_migrated(f"sqlite+aiosqlite:///{db}")
        public = await connect_public(EndpointConfig(base_url=venue.url))
        paper, resumed = await open_paper_venue(public, store, PAPER)
        try:
            # structurally read-only: nothing the paper venue can reach is able to post to /exchange
            clients = [o for o in _reachable(paper) if isinstance(o, HyperliquidInfoClient)]
            assert clients == [public.client]
            assert type(public.client) is HyperliquidInfoClient
            assert not any(
                hasattr(o, "action") or isinstance(o, HyperliquidClient) for o in _reachable(paper)
            )
            snap = await paper.account.snapshot()
            return state_doc(paper.engine, PAPER), snap, resumed, len(await paper.account.fills_since(0))
        finally:
            await paper.close()
            await store.close()

    restored, snap, resumed, n_fills = asyncio.run(reopen())
    assert resumed
    assert restored == saved  # balance, positions, open orders, counters: identical
    assert n_fills == len(_paper_fills(db))
    [position] = snap.positions
    inst = venue.server.exchange.engine.universe.by_coin["ETH"]
    [row] = [r for r in saved["positions"] if r[1]]
    assert position.size == Decimal(row[1]).scaleb(-inst.sz_decimals)
    assert position.entry_price * position.size == Decimal(row[2]).scaleb(-6)
