"""Signature speed: our hand-rolled EIP-712 path against the generic ``eth_account`` path and the SDK.

Every ``/exchange`` request costs one signer recovery, so this bounds the embedded exchange's request
rate. Measured, in one run, on a realistic body (a one-order L1 ``order`` action signed on testnet, and
a ``usdSend`` for the user-signed path):

* recovery: ``signing.recover_l1_signer`` (keccak + libsecp256k1 via coincurve) vs
  ``signing.recover_l1_signer_generic`` (``eth_account.encode_typed_data`` + ``Account.recover_message``);
* signing: ``signing.sign_l1_action`` vs ``hyperliquid.utils.signing.sign_l1_action`` (what the SDK runs
  for every order it sends).

Each figure is the median over ``BATCHES`` batches of the mean time per call in a batch
(``time.perf_counter_ns`` around ``ITERATIONS`` calls; the slow reference paths run a quarter as many
calls per batch). Each path is checked to give the expected answer before it is timed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from eth_account import Account
from hyperliquid.utils import signing as sdk_signing

from bench._stats import median
from hyperfollow import signing

ITERATIONS = 2000
BATCHES = 7
KEY = bytes.fromhex("0123456789012345678901234567890123456789012345678901234567890123")
NONCE = 1_795_288_638_369
ACTION = {
    "type": "order",
    "orders": [
        {
            "a": 1,
            "b": True,
            "p": "2900.5",
            "s": "0.01",
            "r": False,
            "t": {"limit": {"tif": "Alo"}},
            "c": "0x00000000000000000000000000000001",
        }
    ],
    "grouping": "na",
}
USD_SEND = {
    "destination": "0x0000000000000000000000000000000000000001",
    "amount": "1.0",
    "time": NONCE,
    "type": "usdSend",
    "signatureChainId": "0x66eee",
    "hyperliquidChain": "Testnet",
}

GOALS = {"recover L1 signer, fast path": ("<=", 100.0)}


def per_call_us(fn: Callable[[], object], iterations: int = ITERATIONS, batches: int = BATCHES) -> float:
    """Median over ``batches`` of the mean microseconds per ``fn()`` call in a batch of ``iterations``."""
    for _ in range(max(1, iterations // 10)):  # warm caches (domain separators, key objects, imports)
        fn()
    means = []
    for _ in range(batches):
        start = time.perf_counter_ns()
        for _ in range(iterations):
            fn()
        means.append((time.perf_counter_ns() - start) / iterations / 1000)
    return median(means)


def run() -> list[tuple[str, float, str]]:
    """Measure recovery and signing, fast vs generic/SDK; returns ``(name, value, unit)`` rows."""
    address = signing.address_of(KEY)
    sig = signing.sign_l1_action(KEY, ACTION, None, NONCE, None, False)
    user_sig = signing.sign_user_signed_action(KEY, USD_SEND)
    wallet = Account.from_key(KEY)
    sdk_sig = sdk_signing.sign_l1_action(wallet, ACTION, None, NONCE, None, False)
    checks = {
        "fast recover": signing.recover_l1_signer(ACTION, sig, None, NONCE, None, False) == address,
        "generic recover": signing.recover_l1_signer_generic(ACTION, sig, None, NONCE, None, False)
        == address,
        "fast user recover": signing.recover_user_signed_signer(USD_SEND, user_sig) == address,
        "SDK signature identical": sdk_sig == dict(sig),
    }
    if not all(checks.values()):
        raise RuntimeError(f"signing bench: wrong answers before timing: {checks}")

    slow = ITERATIONS // 4
    fast = per_call_us(lambda: signing.recover_l1_signer(ACTION, sig, None, NONCE, None, False))
    generic = per_call_us(
        lambda: signing.recover_l1_signer_generic(ACTION, sig, None, NONCE, None, False), slow
    )
    user_fast = per_call_us(lambda: signing.recover_user_signed_signer(USD_SEND, user_sig))
    user_generic = per_call_us(lambda: signing.recover_user_signed_signer_generic(USD_SEND, user_sig), slow)
    sign_fast = per_call_us(lambda: signing.sign_l1_action(KEY, ACTION, None, NONCE, None, False))
    sign_sdk = per_call_us(lambda: sdk_signing.sign_l1_action(wallet, ACTION, None, NONCE, None, False), slow)
    return [
        ("recover L1 signer, fast path", fast, "us/op"),
        ("recover L1 signer, eth_account generic path", generic, "us/op"),
        ("recover L1 signer, speed-up", generic / fast, "x"),
        ("recover user-signed signer, fast path", user_fast, "us/op"),
        ("recover user-signed signer, eth_account generic path", user_generic, "us/op"),
        ("recover user-signed signer, speed-up", user_generic / user_fast, "x"),
        ("sign L1 action, fast path", sign_fast, "us/op"),
        ("sign L1 action, SDK sign_l1_action", sign_sdk, "us/op"),
        ("sign L1 action, speed-up", sign_sdk / sign_fast, "x"),
    ]


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:55s} {value:10,.1f} {unit}")
