"""Fan-out: one leader fill -> 1,000 followers' signed ``/exchange`` order bodies, on one core.

The leader buys 12.5 ETH at 3,000.5 with $250,000 of equity. Each of 1,000 followers (equities drawn
once, seeded, from $500 to $100,000) copies it with the equity ratio: ``size = 12.5 x follower equity /
leader equity``, a taker IOC with a 1 % slippage cap, a cloid derived from (fill, follower), the wire
built by ``gateway.order_wire`` (grid rounding, exact strings), then signed with the follower's own key
and nonce. Timed from the fill to the list of 1,000 bodies, single-threaded:

* ours: ``fanout.sign_order_bodies`` (keys prepared once per follower as ``FollowerSigner``;
  per body msgpack + 3 keccaks + one libsecp256k1 signature);
* stock SDK: the same sizing and wires, then ``hyperliquid.utils.signing.order_wires_to_order_action``
  + ``sign_l1_action`` (``eth_account``) per follower, wallets built once per follower too.

Before timing, the first bodies of both paths are checked to be identical (same keys and nonces).
Each figure is the median over the repetitions (``REPS`` for ours, ``SDK_REPS`` for the SDK, which
signs all 1,000 followers too: no scaling). Sizing and wires are also timed alone, so the split is
visible. Nothing is sent: this is the CPU cost before the first byte goes out.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from hyperliquid.utils import signing as sdk_signing

from bench._stats import median
from hyperfollow.adapters.hyperliquid.fanout import FollowerSigner, sign_order_bodies
from hyperfollow.adapters.hyperliquid.gateway import order_wire
from hyperfollow.adapters.hyperliquid.nonce import NonceSource
from hyperfollow.domain.ids import cloid_for
from hyperfollow.domain.model import OrderRequest, Side, Tif
from hyperfollow.domain.rules import Instrument

FOLLOWERS = 1000
REPS = 15
SDK_REPS = 3
ETH = Instrument("ETH", 1, 4, 25)
LEADER_EQUITY = Decimal(250_000)
LEADER_SIZE = Decimal("12.5")
FILL_PX = Decimal("3000.5")
SLIPPAGE = Decimal("1.01")
IS_MAINNET = False

GOALS = {"1 fill -> 1,000 signed order bodies": ("<", 100.0)}

Wire = dict[str, Any]


def _followers(n: int) -> tuple[list[bytes], list[Decimal]]:
    rng = random.Random(4)
    keys = [keccak(text=f"hyperfollow-bench-fanout:{i}") for i in range(n)]
    equities = [Decimal(rng.randint(50_000, 10_000_000)) / 100 for _ in range(n)]
    return keys, equities


def _wires(equities: list[Decimal], fill_id: int) -> list[Wire]:
    """The follower orders for one leader fill: equity-ratio size, IOC with a slippage cap, on the grid."""
    limit = FILL_PX * SLIPPAGE
    wires = []
    for i, equity in enumerate(equities):
        cloid = cloid_for(fill_id, i)
        size = LEADER_SIZE * equity / LEADER_EQUITY
        wires.append(order_wire(ETH, OrderRequest("ETH", Side.BUY, size, limit, Tif.IOC, cloid=cloid), cloid))
    return wires


def _sdk_body(wallet: LocalAccount, nonce: int, wire: Wire) -> dict[str, Any]:
    """The body the SDK's ``Exchange`` would post for one order wire, signed by its own signer."""
    action = sdk_signing.order_wires_to_order_action([wire])
    signature = sdk_signing.sign_l1_action(wallet, action, None, nonce, None, IS_MAINNET)
    return {
        "action": action,
        "nonce": nonce,
        "signature": signature,
        "vaultAddress": None,
        "expiresAfter": None,
    }


def _ms(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return median(times)


def run() -> list[tuple[str, float, str]]:
    """Time the fan-out, ours vs the stock SDK signer; returns ``(name, value, unit)`` rows."""
    keys, equities = _followers(FOLLOWERS)
    start = time.perf_counter_ns()
    signers = [FollowerSigner(key, nonces=NonceSource()) for key in keys]
    setup_us = (time.perf_counter_ns() - start) / 1000 / FOLLOWERS
    wallets: list[LocalAccount] = [Account.from_key(key) for key in keys]
    sdk_nonces = [NonceSource() for _ in keys]
    fill_ids = iter(range(1, 1_000_000))

    def ours() -> list[dict[str, Any]]:
        return sign_order_bodies(
            list(zip(signers, _wires(equities, next(fill_ids)), strict=True)), IS_MAINNET
        )

    def stock() -> list[dict[str, Any]]:
        wires = _wires(equities, next(fill_ids))
        return [_sdk_body(w, n.next(), wire) for w, n, wire in zip(wallets, sdk_nonces, wires, strict=True)]

    # correctness before speed: same wires, keys and nonces -> the same bodies, byte for byte
    n_check, nonce = 20, 1_795_288_638_369
    wires = _wires(equities[:n_check], 0)
    pinned = [FollowerSigner(key, nonces=NonceSource(clock=lambda: nonce)) for key in keys[:n_check]]
    ours_bodies = sign_order_bodies(list(zip(pinned, wires, strict=True)), IS_MAINNET)
    sdk_bodies = [_sdk_body(w, nonce, wire) for w, wire in zip(wallets[:n_check], wires, strict=True)]
    if json.dumps(ours_bodies) != json.dumps(sdk_bodies):
        raise RuntimeError("fanout bench: our bodies differ from the SDK's")
    if (
        len(ours()) != FOLLOWERS
        or len(stock()) != FOLLOWERS
        or len({w["s"] for w in _wires(equities, 0)}) < 100
    ):
        raise RuntimeError("fanout bench: unexpected plan")

    wires_ms = _ms(lambda: _wires(equities, next(fill_ids)), REPS)
    ours_ms = _ms(ours, REPS)
    stock_ms = _ms(stock, SDK_REPS)
    return [
        ("1 fill -> 1,000 signed order bodies", ours_ms, "ms (1 core)"),
        ("1 fill -> 1,000 bodies, stock SDK signer", stock_ms, "ms (1 core)"),
        ("fan-out speed-up vs stock SDK", stock_ms / ours_ms, "x"),
        ("of which sizing + order wires", wires_ms, "ms"),
        ("signing per body (ours)", (ours_ms - wires_ms) / FOLLOWERS * 1000, "us"),
        ("follower key setup (once)", setup_us, "us/follower"),
    ]


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:45s} {value:10.2f} {unit}")
