"""``EmbeddedExchange(synthetic_prices=False)``: prices move only when set (a backtest's recorded prices),
and a coin with no synthetic model can be priced at all."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hyperfollow.exchange.embedded import EmbeddedExchange

START_MS = 1_767_225_600_000


def mid(ex: EmbeddedExchange, coin: str) -> Decimal:
    return Decimal(ex.info({"type": "allMids"})[coin])


@pytest.mark.parametrize("synthetic", [True, False])
def test_time_moves_the_price_only_with_synthetic_paths(synthetic: bool) -> None:
    ex = EmbeddedExchange(stepped=True, simulated_traders=False, start_ms=START_MS, coins=["ETH"],
                          synthetic_prices=synthetic)  # fmt: skip
    ex.set_price("ETH", "3000")
    before = mid(ex, "ETH")
    ex.advance(3_600_000)
    assert (mid(ex, "ETH") != before) is synthetic
    if not synthetic:
        ex.set_price("ETH", "3100.5")
        assert mid(ex, "ETH") == Decimal("3100.5")


def test_a_coin_without_a_synthetic_model_takes_the_operators_price() -> None:
    coins = ["BTC", "SOL", "OP"]
    ex = EmbeddedExchange(stepped=True, simulated_traders=False, start_ms=START_MS, coins=coins)
    ex.set_price("OP", "1.2345")  # OP has no synthetic model: it used to fail with a KeyError
    assert mid(ex, "OP") == Decimal("1.2345")
