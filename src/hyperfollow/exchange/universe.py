"""What the embedded exchange lists, numbered exactly as on Hyperliquid mainnet.

Main perp dex: the first 28 entries are the real mainnet universe in its real order (names and
szDecimals from the recorded `meta` response in fixtures/hl-real/test_get_info.yaml), so BTC is
asset 0, ETH 1, SOL 5, OP 9, as on the venue. HYPE is asset 159 on mainnet; the entries between are
listed as delisted placeholders (`isDelisted: true`, never tradable) only to keep that number.
maxLeverage of the simulated coins is today's mainnet value (BTC 40, ETH 25, SOL 20, HYPE 10).

HIP-3: one builder dex `xyz` (perpDexs index 1, so `xyz:TSLA` is asset 110000 as in our SDK capture)
with two equity perps, isolated only. Spot: PURR/USDC, asset 10000.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hyperfollow.domain.rules import Instrument, instruments_from_meta, instruments_from_spot_meta

# name, szDecimals, maxLeverage: mainnet order as recorded in 2023-07 (leverage of simulated coins: today's).
_MAIN_DEX: list[tuple[str, int, int]] = [
    ("BTC", 5, 40), ("ETH", 4, 25), ("ATOM", 2, 50), ("MATIC", 1, 50), ("DYDX", 1, 50),
    ("SOL", 2, 20), ("AVAX", 2, 50), ("BNB", 3, 50), ("APE", 1, 50), ("OP", 1, 50),
    ("LTC", 2, 50), ("ARB", 1, 50), ("DOGE", 0, 50), ("INJ", 1, 50), ("SUI", 1, 50),
    ("kPEPE", 0, 50), ("CRV", 1, 50), ("LDO", 1, 50), ("LINK", 1, 50), ("STX", 1, 50),
    ("RNDR", 1, 50), ("CFX", 0, 50), ("FTM", 0, 50), ("GMX", 2, 50), ("SNX", 1, 50),
    ("XRP", 0, 50), ("BCH", 3, 50), ("APT", 2, 50),
]  # fmt: skip
_HYPE_ASSET = 159
_XYZ_DEX: list[tuple[str, int, int]] = [("xyz:TSLA", 3, 10), ("xyz:NVDA", 3, 10)]
_USDC_TOKEN_ID = "0x6d1e1e8e9d0a1a4d6d1e1e8e9d0a1a4d"
_PURR_TOKEN_ID = "0xc4bf3f870c0e9465323c0b6ed28096c2"


def _perp_entry(
    name: str, sz: int, lev: int, *, isolated: bool = False, delisted: bool = False
) -> dict[str, Any]:
    entry: dict[str, Any] = {"szDecimals": sz, "name": name, "maxLeverage": lev, "marginTableId": lev}
    if isolated:
        entry["onlyIsolated"] = True
        entry["marginMode"] = "strictIsolated"
    if delisted:
        entry["isDelisted"] = True
    return entry


def _margin_tables(levs: Iterable[int]) -> list[list[Any]]:
    return [
        [lev, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": lev}]}]
        for lev in sorted(set(levs))
    ]


def main_meta() -> dict[str, Any]:
    """The `meta` response of the main perp dex."""
    universe = [_perp_entry(n, s, lev) for n, s, lev in _MAIN_DEX]
    for index in range(len(universe), _HYPE_ASSET):
        universe.append(_perp_entry(f"DELISTED{index}", 0, 1, delisted=True))
    universe.append(_perp_entry("HYPE", 2, 10))
    return {
        "universe": universe,
        "marginTables": _margin_tables(e["maxLeverage"] for e in universe),
        "collateralToken": 0,
    }


def xyz_meta() -> dict[str, Any]:
    """The `meta` response of the `xyz` builder dex (HIP-3): equity perps, isolated only."""
    universe = [_perp_entry(n, s, lev, isolated=True) for n, s, lev in _XYZ_DEX]
    return {
        "universe": universe,
        "marginTables": _margin_tables(e["maxLeverage"] for e in universe),
        "collateralToken": 0,
    }


def spot_meta() -> dict[str, Any]:
    """The `spotMeta` response: USDC and PURR, one pair PURR/USDC at spot index 0."""
    tokens = [
        {"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0, "tokenId": _USDC_TOKEN_ID,
         "isCanonical": True, "evmContract": None, "fullName": None, "deployerTradingFeeShare": "0.0"},
        {"name": "PURR", "szDecimals": 0, "weiDecimals": 5, "index": 1, "tokenId": _PURR_TOKEN_ID,
         "isCanonical": True, "evmContract": None, "fullName": None, "deployerTradingFeeShare": "0.0"},
    ]  # fmt: skip
    universe = [{"tokens": [1, 0], "name": "PURR/USDC", "index": 0, "isCanonical": True}]
    return {"universe": universe, "tokens": tokens}


def perp_dexs() -> list[Any]:
    """The `perpDexs` response: element 0 is null (the main dex)."""
    return [
        None,
        {
            "name": "xyz",
            "fullName": "XYZ equity perps (simulated)",
            "deployer": "0x0000000000000000000000000000000000000001",
            "oracleUpdater": None,
            "feeRecipient": None,
            "assetToStreamingOiCap": [],
            "subDeployers": [],
            "deployerFeeScale": "1.0",
            "lastDeployerFeeScaleChangeTime": "1970-01-01T00:00:00",
            "assetToFundingMultiplier": [],
            "assetToFundingInterestRate": [],
        },
    ]


@dataclass
class Universe:
    """All listed instruments, by asset id and by coin name, plus the raw meta documents."""

    metas: dict[str, dict[str, Any]] = field(default_factory=lambda: {"": main_meta(), "xyz": xyz_meta()})
    spot: dict[str, Any] = field(default_factory=spot_meta)
    dexs: list[Any] = field(default_factory=perp_dexs)
    by_asset: dict[int, Instrument] = field(init=False)
    by_coin: dict[str, Instrument] = field(init=False)

    def __post_init__(self) -> None:
        instruments = instruments_from_meta(self.metas[""], 0)
        for dex_index, dex in enumerate(self.dexs[1:], start=1):
            instruments += instruments_from_meta(self.metas[dex["name"]], dex_index)
        instruments += instruments_from_spot_meta(self.spot)
        self.by_asset = {i.asset: i for i in instruments}
        self.by_coin = {i.coin: i for i in instruments}

    def dex_names(self) -> list[str]:
        return [""] + [d["name"] for d in self.dexs[1:]]

    def perps(self, dex: str | None = None) -> list[Instrument]:
        """Listed (not delisted) perps, of one dex or of all."""
        return [
            i for i in self.by_asset.values()
            if not i.is_spot and not i.is_delisted and (dex is None or i.dex == dex)
        ]  # fmt: skip

    def meta(self, dex: str) -> dict[str, Any] | None:
        return self.metas.get(dex)
