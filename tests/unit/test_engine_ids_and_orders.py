"""Trade ids as the venue makes them, and the engine's order bookkeeping: a refused modify touches
nothing, and every order the venue saw stays findable by oid and cloid."""

from __future__ import annotations

from hyperfollow.exchange.engine import TID_BITS, Engine, OrderSpec, tid_keys, trade_id

ETH = 1  # szDecimals 4: prices in 0.01 ticks
MAKER = "0x" + "a" * 40
TAKER = "0x" + "b" * 40


def _engine(seed: int = 0) -> Engine:
    engine = Engine(seed=seed)
    engine.set_prices(ETH, 300_000)  # $3,000.00
    for user in (MAKER, TAKER):
        engine.deposit(user, 1_000_000 * 1_000_000)
    return engine


def _sweep(engine: Engine, levels: int = 12) -> list[int]:
    """A taker buy through ``levels`` resting asks: the tids of its fills, in execution order."""
    for i in range(levels):
        engine.place(MAKER, OrderSpec(ETH, False, 300_010 + 10 * i, 10_000))  # 1 ETH each, 3000.1 up
    status = engine.place(TAKER, OrderSpec(ETH, True, 300_010 + 10 * levels, 10_000 * levels, tif="Ioc"))
    assert isinstance(status, dict)
    assert "filled" in status
    fills = [f for f in engine.accounts[TAKER].fills if f.oid == status["filled"]["oid"]]
    assert [f.start for f in fills] == [10_000 * i for i in range(levels)]  # execution order
    return [f.tid for f in fills]


def test_trade_ids_are_large_and_not_in_execution_order() -> None:
    tids = _sweep(_engine())
    assert len(set(tids)) == len(tids)
    assert all(2**30 < t < 2**TID_BITS for t in tids)  # the venue's are 50-bit hashes (~1e14..1e15)
    assert tids != sorted(tids)  # sorting one order's fills by tid scrambles its position chain


def test_trade_ids_are_deterministic_for_a_seed() -> None:
    assert _sweep(_engine(seed=7)) == _sweep(_engine(seed=7))
    assert _sweep(_engine(seed=7)) != _sweep(_engine(seed=8))


def test_trade_ids_never_collide() -> None:
    keys = tid_keys(7)
    n = 200_000
    assert len({trade_id(keys, i) for i in range(1, n + 1)}) == n


def test_both_fills_and_the_print_share_the_tid() -> None:
    engine = _engine()
    tids = _sweep(engine, levels=3)
    maker_tids = [f.tid for f in engine.accounts[MAKER].fills]
    assert maker_tids == tids
    assert [t.tid for t in engine.trades[ETH]] == tids


def test_a_refused_modify_on_a_halted_market_keeps_the_order() -> None:
    engine = _engine()
    status = engine.place(TAKER, OrderSpec(ETH, True, 290_000, 10_000, cloid="0x" + "c" * 32))
    assert isinstance(status, dict)
    oid = status["resting"]["oid"]
    order = engine.live[oid]
    before = (order.px, order.sz, order.cloid, engine.accounts[TAKER].order_margin)
    del engine.marks[ETH]  # trading halted
    refused = engine.modify(TAKER, oid, OrderSpec(ETH, True, 289_000, 20_000))
    assert refused == {"error": "Trading is halted. asset=1"}
    assert engine.live[oid] is order
    assert (order.px, order.sz, order.cloid, engine.accounts[TAKER].order_margin) == before
    assert engine.books[ETH].best_bid() == 290_000


def test_a_modify_may_flip_side_through_its_own_original() -> None:
    """A post-only replacement is checked against the book without the order it replaces."""
    engine = _engine()
    engine.place(MAKER, OrderSpec(ETH, False, 300_010, 10_000))
    status = engine.place(TAKER, OrderSpec(ETH, False, 300_000, 10_000))  # the best ask, 3000.0
    assert isinstance(status, dict)
    moved = engine.modify(TAKER, status["resting"]["oid"], OrderSpec(ETH, True, 300_000, 10_000, tif="Alo"))
    assert isinstance(moved, dict)
    assert "resting" in moved, moved
    assert (engine.books[ETH].best_bid(), engine.books[ETH].best_ask()) == (300_000, 300_010)


def test_every_order_stays_findable_by_oid_and_cloid() -> None:
    engine = _engine()
    first = "0x" + "1" * 32
    oids = []
    for i in range(2_500):  # each an Ioc that cannot trade (the book is empty): iocCancelRejected
        cloid = first if i == 0 else f"0x{i:032x}"
        status = engine.place(TAKER, OrderSpec(ETH, True, 300_000, 10_000, tif="Ioc", cloid=cloid))
        assert isinstance(status, dict)
        assert "error" in status
        oids.append(engine.next_oid)
    assert len(engine.accounts[TAKER].orders) == 2_000  # recent history keeps its cap
    found = engine.find_order(TAKER, first)
    assert found is not None
    assert (found.oid, found.status) == (oids[0], "iocCancelRejected")
    assert engine.find_order(TAKER, oids[0]) is found
    assert engine.find_order(MAKER, oids[0]) is None  # another user's oid
    assert engine.find_order(MAKER, first) is None


def test_a_reused_cloid_finds_its_latest_order() -> None:
    engine = _engine()
    cloid = "0x" + "2" * 32
    engine.place(TAKER, OrderSpec(ETH, True, 300_000, 10_000, tif="Ioc", cloid=cloid))  # rejected
    status = engine.place(TAKER, OrderSpec(ETH, True, 290_000, 10_000, cloid=cloid))
    assert isinstance(status, dict)
    oid = status["resting"]["oid"]
    found = engine.find_order(TAKER, cloid)
    assert found is not None
    assert (found.oid, found.status) == (oid, "open")
    engine.cancel(TAKER, ETH, oid)
    found = engine.find_order(TAKER, cloid.upper().replace("0X", "0x"))
    assert found is not None
    assert (found.oid, found.status) == (oid, "canceled")


def test_a_refused_order_of_an_unknown_user_records_nothing() -> None:
    engine = _engine()
    stranger = "0x" + "c" * 40
    status = engine.place(stranger, OrderSpec(ETH, True, 300_000, 10_000, cloid="0x" + "3" * 32))
    assert status == {"error": "Insufficient margin to place order. asset=1"}
    assert engine.order_log == {}
    assert stranger not in engine.accounts
