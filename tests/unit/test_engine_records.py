"""Fills, prints and order updates are stored as integer records and formatted on read: the wire they
produce must be the venue's, exactly, and an update must show the order as it was when it happened."""

from __future__ import annotations

from hyperfollow.exchange.engine import Engine, OrderSpec, OrderUpdate

ETH = 1  # szDecimals 4: prices in 0.01 ticks (at this price 0.1 steps keep 5 significant figures)
MAKER = "0x" + "a" * 40
TAKER = "0x" + "b" * 40


def _engine() -> Engine:
    engine = Engine()
    engine.set_prices(ETH, 300_000)  # $3,000.00
    for user in (MAKER, TAKER):
        engine.deposit(user, 100_000 * 1_000_000)
    return engine


def test_fill_and_trade_wire_are_exact_venue_strings() -> None:
    engine = _engine()
    rest = engine.place(MAKER, OrderSpec(ETH, False, 300_010, 25_000, cloid="0x" + "1" * 32))  # 2.5 @ 3000.1
    assert isinstance(rest, dict)
    assert "resting" in rest
    status = engine.place(TAKER, OrderSpec(ETH, True, 301_000, 10_000, tif="Ioc"))  # 1.0
    assert status == {"filled": {"totalSz": "1.0", "avgPx": "3000.1", "oid": status["filled"]["oid"]}}

    taker_fill = engine.fill_wire(engine.accounts[TAKER].fills[-1])
    maker_fill = engine.fill_wire(engine.accounts[MAKER].fills[-1])
    print_ = engine.trade_wire(engine.trades[ETH][-1])

    wanted = {"px": "3000.1", "sz": "1.0", "side": "B", "dir": "Open Long", "crossed": True}
    assert {k: taker_fill[k] for k in wanted} == wanted
    assert (taker_fill["startPosition"], taker_fill["closedPnl"]) == ("0.0", "0.0")
    assert taker_fill["fee"] == "1.350045"  # 3000.1 * 0.045 %
    assert maker_fill["fee"] == "0.450015"  # 3000.1 * 0.015 %
    assert (maker_fill["side"], maker_fill["dir"], maker_fill["crossed"]) == ("A", "Open Short", False)
    assert maker_fill["cloid"] == "0x" + "1" * 32
    assert "cloid" not in taker_fill
    assert "liquidation" not in taker_fill
    assert taker_fill["hash"] == maker_fill["hash"] == print_["hash"]
    assert taker_fill["tid"] == maker_fill["tid"] == print_["tid"]
    assert (print_["side"], print_["px"], print_["sz"]) == ("B", "3000.1", "1.0")
    assert print_["users"] == [TAKER, MAKER]  # [buyer, seller]


def test_order_updates_keep_the_size_at_the_time_of_the_event() -> None:
    engine = _engine()
    engine.outbox = []
    engine.place(MAKER, OrderSpec(ETH, False, 300_010, 25_000))
    engine.place(TAKER, OrderSpec(ETH, True, 301_000, 10_000, tif="Ioc"))
    engine.place(TAKER, OrderSpec(ETH, True, 301_000, 15_000, tif="Ioc"))
    maker_updates = [
        engine.order_update_wire(p) for ch, key, p in engine.outbox if ch == "orderUpdates" and key == MAKER
    ]
    assert [(u["status"], u["order"]["sz"]) for u in maker_updates] == [("open", "2.5"), ("filled", "0.0")]
    assert all(u["order"]["origSz"] == "2.5" for u in maker_updates)
    assert all(isinstance(p, OrderUpdate) for ch, _, p in engine.outbox if ch == "orderUpdates")
    fills = [engine.fill_wire(p) for ch, key, p in engine.outbox if ch == "userFills" and key == TAKER]
    assert [(f["sz"], f["startPosition"]) for f in fills] == [("1.0", "0.0"), ("1.5", "1.0")]
