"""What a copy backtest derives from a fill history: coin rules (listed, recorded meta, inferred), the listing
of the coins the embedded exchange lacks, the leader's orders and the leader's own return."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from hyperfollow.backtest.copy_inputs import (
    INFERRED_MAX_LEVERAGE,
    coin_rules,
    infer_rules,
    leader_orders,
    leader_result,
    peak_gross_notional,
    read_meta,
    universe_for,
)
from hyperfollow.domain.model import Fill, Side
from hyperfollow.domain.rules import HIP3_ASSET_OFFSET, HIP3_DEX_STRIDE
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.exchange.universe import Universe

LEADER = "0x" + "ab" * 20


def D(x: str) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(x)


def fill(coin: str, side: Side, px: str, sz: str, start: str, *, oid: int = 1, t: int = 1_000,
         pnl: str = "0", fee: str = "0") -> Fill:  # fmt: skip
    return Fill(
        address=LEADER, coin=coin, side=side, price=D(px), size=D(sz), time_ms=t, start_position=D(start),
        direction="", closed_pnl=D(pnl), fee=D(fee), oid=oid, tid=oid * 100 + t, hash="0x", crossed=True,
    )  # fmt: skip


def test_rules_are_inferred_from_size_decimals_ignoring_off_grid_prices() -> None:
    fills = [
        fill("ZZZ", Side.BUY, "1.2345", "10.25", "0"),
        fill("ZZZ", Side.SELL, "1.23456789", "3.1", "10.25"),  # a "Price Improved" average: off the grid
    ]
    rules = infer_rules("ZZZ", fills)
    assert (rules.sz_decimals, rules.max_leverage, rules.hip3, rules.source) == (
        2, INFERRED_MAX_LEVERAGE, False, "inferred"
    )  # fmt: skip
    # a grid price with 5 decimals leaves room for at most 1 size decimal
    assert infer_rules("ZZZ", [fill("ZZZ", Side.BUY, "0.12345", "10.25", "0")]).sz_decimals == 1
    assert infer_rules("dex:ABC", fills).hip3 is True


def test_listed_coins_keep_the_exchange_rules_and_meta_wins_over_inference(tmp_path: Path) -> None:
    meta = {
        "perpDexs": [None, {"name": "xyz"}],
        "meta": {
            "": {"universe": [{"name": "CASHCAT", "szDecimals": 3, "maxLeverage": 5}]},
            "xyz": {
                "universe": [{"name": "xyz:CXMT", "szDecimals": 1, "maxLeverage": 20, "onlyIsolated": True}]
            },
        },
    }
    path = tmp_path / "fills.json.meta.json"
    path.write_text(json.dumps(meta))
    fills = [
        fill("BTC", Side.BUY, "95000", "0.001", "0"),
        fill("CASHCAT", Side.BUY, "0.01", "100", "0"),
        fill("xyz:CXMT", Side.BUY, "6.7", "10", "0"),
        fill("GRAM", Side.BUY, "2.5", "4", "0"),
    ]
    rules = coin_rules(fills, read_meta(path))
    assert {c: (r.source, r.sz_decimals, r.max_leverage, r.hip3) for c, r in rules.items()} == {
        "BTC": ("listed", 5, 40, False),
        "CASHCAT": ("meta", 3, 5, False),
        "xyz:CXMT": ("meta", 1, 20, True),
        "GRAM": ("inferred", 0, INFERRED_MAX_LEVERAGE, False),
    }


def test_the_listing_adds_unlisted_coins_on_their_dex_and_keeps_the_rest_numbered() -> None:
    fills = [
        fill("CASHCAT", Side.BUY, "0.0123", "100", "0"),
        fill("xyz:CXMT", Side.BUY, "6.7", "10.5", "0"),
        fill("km:GOLD", Side.BUY, "2400.5", "0.01", "0"),
        fill("ETH", Side.BUY, "3000", "0.1", "0"),
    ]
    base = Universe()
    universe = universe_for(coin_rules(fills))
    assert {c: i.asset for c, i in base.by_coin.items()} == {
        c: universe.by_coin[c].asset for c in base.by_coin
    }, "what the exchange lists keeps its asset ids"
    cashcat, cxmt, gold = (universe.by_coin[c] for c in ("CASHCAT", "xyz:CXMT", "km:GOLD"))
    assert cashcat.asset == len(base.metas[""]["universe"])
    assert cashcat.sz_decimals == 0
    assert cxmt.asset == HIP3_ASSET_OFFSET + HIP3_DEX_STRIDE + 2
    assert cxmt.only_isolated
    assert cxmt.sz_decimals == 1
    assert gold.dex == "km"
    assert gold.asset == HIP3_ASSET_OFFSET + 2 * HIP3_DEX_STRIDE
    assert gold.only_isolated
    # the exchange trades them
    ex = EmbeddedExchange(stepped=True, simulated_traders=False, synthetic_prices=False, universe=universe,
                          coins=["CASHCAT", "xyz:CXMT", "km:GOLD"])  # fmt: skip
    ex.set_price("km:GOLD", "2400.5")
    book = ex.info({"type": "l2Book", "coin": "km:GOLD"})
    assert D(book["levels"][0][0]["px"]) < D("2400.5") < D(book["levels"][1][0]["px"])


def test_orders_group_consecutive_fills_of_one_order_per_coin() -> None:
    fills = [
        fill("A", Side.BUY, "10", "1", "0", oid=7, t=1),
        fill("B", Side.SELL, "5", "2", "0", oid=8, t=1),  # another coin between two fills of order 7
        fill("A", Side.BUY, "11", "3", "1", oid=7, t=1),
        fill("A", Side.SELL, "12", "4", "4", oid=9, t=2),
        fill("A", Side.BUY, "12", "1", "0", oid=9, t=3),  # same oid, other side: another order
    ]
    orders = leader_orders(fills)
    assert [(o.coin, o.fills[0].oid, len(o.fills), o.start, o.end, o.size) for o in orders] == [
        ("A", 7, 2, D(0), D(4), D(4)),
        ("B", 8, 1, D(0), D(-2), D(2)),
        ("A", 9, 1, D(4), D(0), D(4)),
        ("A", 9, 1, D(0), D(1), D(1)),
    ]
    assert orders[0].avg_price == D("10.75")
    assert orders[0].last_price == D(11)


def test_the_leader_return_is_realised_pnl_net_of_fees_on_its_peak_gross_notional() -> None:
    fills = [
        fill("A", Side.BUY, "100", "2", "3", oid=1, t=1, fee="0.1"),  # held 3 before: 5 x 100 = 500 gross
        fill("B", Side.SELL, "50", "4", "0", oid=2, t=2, fee="0.2"),  # + 200 = 700 at the peak
        fill("A", Side.SELL, "110", "5", "5", oid=3, t=3, pnl="45", fee="0.3"),
        fill("B", Side.BUY, "40", "4", "-4", oid=4, t=4, pnl="40", fee="0.4"),
    ]
    orders = leader_orders(fills)
    assert peak_gross_notional(orders) == D(700)
    result = leader_result(orders, D(1000))
    assert (result.closed_pnl_usd, result.fees_usd, result.net_usd) == (D(85), D("1.0"), D(84))
    assert result.return_pct == D("8.4")
    assert leader_result(orders).base_usd == D(1000), "at least the stated minimum base"
    assert result.equity[-1] == (4, D(1084))


def test_a_bad_meta_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    path.write_text('{"nothing": 1}')
    with pytest.raises(ValueError, match=r"meta\.json"):
        read_meta(path)
