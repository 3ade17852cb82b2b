"""Venue rules: price/size grid, quantization direction, wire strings, meta parsing on real fixtures."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import yaml
from hyperliquid.utils.signing import float_to_wire
from hypothesis import given
from hypothesis import strategies as st

from hyperfollow.domain.rules import (
    Instrument,
    Rounding,
    instruments_from_meta,
    instruments_from_spot_meta,
    meets_min_value,
    price_is_valid,
    quantize_price,
    quantize_size,
    scaled_int,
    scaled_to_wire,
    size_is_valid,
    ticks_are_valid,
    to_wire,
)
from shared_data import vendored

FIXTURES = vendored(".")
BTC = Instrument("BTC", 0, 5, 40)
ETH = Instrument("ETH", 1, 4, 25)
DOGE = Instrument("DOGE", 12, 0, 50)
PURR = Instrument("PURR/USDC", 10000, 0, is_spot=True)


@pytest.mark.parametrize(
    ("inst", "px", "valid"),
    [
        (ETH, "1234.5", True),
        (ETH, "1234.56", False),  # 6 significant figures
        (ETH, "123456", True),  # integers always valid
        (ETH, "12345.6", False),
        (DOGE, "0.001234", True),
        (DOGE, "0.0012345", False),
        (Instrument("X", 0, 1, 10), "0.01234", True),
        (Instrument("X", 0, 1, 10), "0.012345", False),  # 6 decimals > 6 - 1
        (BTC, "95000.5", False),  # BTC allows 1 decimal but 95000.5 has 6 significant figures
        (BTC, "9500.5", True),
        (PURR, "0.0001234", True),  # spot: 8 - 0 decimals
        (ETH, "0", False),
        (ETH, "-5", False),
    ],
)
def test_price_grid_examples_from_the_docs(inst: Instrument, px: str, valid: bool) -> None:
    assert price_is_valid(inst, Decimal(px)) is valid
    ticks = scaled_int(px, inst.px_decimals) if not px.startswith("-") else None
    assert (ticks is not None and ticks_are_valid(ticks, inst.px_decimals)) is valid


@pytest.mark.parametrize(
    ("px", "rounding", "expected"),
    [
        ("2970.1485", Rounding.DOWN, "2970.1"),
        ("2970.1485", Rounding.UP, "2970.2"),
        ("2970.15", Rounding.NEAREST, "2970.2"),
        ("99999.7", Rounding.UP, "100000"),
        ("123456.7", Rounding.DOWN, "123456"),
        ("0.000012345", Rounding.DOWN, "0.00001"),  # szDecimals 1: at most 5 decimals
    ],
)
def test_quantize_price_direction(px: str, rounding: Rounding, expected: str) -> None:
    inst = ETH if not px.startswith("0.0000") else Instrument("T", 0, 1, 3)
    out = quantize_price(inst, Decimal(px), rounding)
    assert out == Decimal(expected)
    assert price_is_valid(inst, out)


positive_prices = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("10000000"), places=8)
instruments = st.builds(
    Instrument,
    coin=st.just("T"),
    asset=st.just(0),
    sz_decimals=st.integers(0, 5),
    max_leverage=st.just(10),
    is_spot=st.booleans(),
)


@given(instruments, positive_prices)
def test_quantized_prices_are_valid_and_bracket_the_input(inst: Instrument, px: Decimal) -> None:
    down = quantize_price(inst, px, Rounding.DOWN)
    up = quantize_price(inst, px, Rounding.UP)
    assert price_is_valid(inst, down)
    assert price_is_valid(inst, up)
    assert up >= px
    assert down <= px or down == Decimal(1).scaleb(-inst.px_decimals)  # floor at the smallest price
    if price_is_valid(inst, px):
        assert down == px == up


@given(instruments, st.decimals(min_value=0, max_value=Decimal("1000000"), places=9))
def test_quantized_sizes_never_exceed_the_request(inst: Instrument, sz: Decimal) -> None:
    out = quantize_size(inst, sz)
    assert out <= sz
    assert sz - out < inst.lot
    assert out == 0 or size_is_valid(inst, out)


@given(
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("1000000"), places=6)
)  # float-exact range
def test_to_wire_matches_the_sdk_and_round_trips(x: Decimal) -> None:
    text = to_wire(x)
    assert Decimal(text) == x
    assert "e" not in text.lower()
    assert text == float_to_wire(float(text))


@given(st.integers(0, 10**15), st.integers(0, 8))
def test_scaled_int_and_wire_are_inverse(value: int, decimals: int) -> None:
    text = scaled_to_wire(value, decimals)
    assert "." in text  # the venue's style: "26951.0"
    assert scaled_int(text, decimals) == value


@pytest.mark.parametrize("text", ["", "1e5", "-1", "1.", ".5", "abc", "1.2.3", "0x10", " 1"])
def test_scaled_int_rejects_non_plain_decimals(text: str) -> None:
    assert scaled_int(text, 6) is None


def test_scaled_int_rejects_excess_decimals_but_allows_trailing_zeros() -> None:
    assert scaled_int("2900.50", 2) == 290050
    assert scaled_int("2900.501", 2) is None


def test_min_value_is_ten_dollars() -> None:
    assert meets_min_value(Decimal("1000"), Decimal("0.01"))
    assert not meets_min_value(Decimal("999.99"), Decimal("0.01"))


def test_instruments_from_real_meta_fixture() -> None:
    cassette = yaml.safe_load((FIXTURES / "hl-real" / "test_get_info.yaml").read_text())
    meta = json.loads(cassette["interactions"][0]["response"]["body"]["string"])
    insts = {i.coin: i for i in instruments_from_meta(meta)}
    assert (insts["BTC"].asset, insts["BTC"].sz_decimals, insts["BTC"].px_decimals) == (0, 5, 1)
    assert (insts["ETH"].asset, insts["ETH"].px_decimals) == (1, 2)
    assert insts["SOL"].asset == 5
    assert (insts["kPEPE"].sz_decimals, insts["kPEPE"].px_decimals) == (0, 6)
    assert len(insts) == len(meta["universe"])


def test_hip3_and_spot_asset_ids() -> None:
    meta = {"universe": [{"name": "xyz:TSLA", "szDecimals": 3, "maxLeverage": 10, "onlyIsolated": True}]}
    (tsla,) = instruments_from_meta(meta, dex_index=1)
    assert (tsla.asset, tsla.dex, tsla.only_isolated) == (110000, "xyz", True)
    spot = {
        "tokens": [
            {"name": "USDC", "szDecimals": 8, "index": 0},
            {"name": "PURR", "szDecimals": 0, "index": 1},
        ],
        "universe": [{"name": "PURR/USDC", "tokens": [1, 0], "index": 0}],
    }
    (purr,) = instruments_from_spot_meta(spot)
    assert (purr.asset, purr.sz_decimals, purr.px_decimals, purr.is_spot) == (10000, 0, 8, True)


def test_real_l2_book_prices_are_on_the_grid() -> None:
    """Every price the real venue published for DYDX (szDecimals 1) satisfies our validity check."""
    cassette = yaml.safe_load((FIXTURES / "hl-real" / "test_get_l2_snapshot.yaml").read_text())
    book = json.loads(cassette["interactions"][-1]["response"]["body"]["string"])
    dydx = Instrument("DYDX", 4, 1, 50)
    prices = [Decimal(level["px"]) for side in book["levels"] for level in side]
    assert len(prices) == 40
    assert all(price_is_valid(dydx, px) for px in prices)


@pytest.mark.parametrize("text", ["²", "1.²", "٣"])
def test_scaled_int_refuses_unicode_digits(text: str) -> None:
    assert scaled_int(text, 6) is None
