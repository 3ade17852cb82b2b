"""Fan-out signing: one leader fill -> N followers' signed ``/exchange`` order bodies, as fast as possible.

Copy trading turns one leader fill into one order per follower, each signed by that follower's own key
(an agent's or the master's) with that signer's own nonce. The SDK's signer (``eth_account``'s generic
EIP-712 encoder) takes ~350-400 µs per body, so 1,000 followers take ~0.5 s; here a body costs about
50 µs, 1,000 of them with sizing and wires ~70 ms on one core (``bench/bench_fanout.py``):

* **Once per process** (in :mod:`hyperfollow.signing`): the EIP-712 domain separator and the ``Agent``
  type hash, the keccak of ``"a"``/``"b"`` (mainnet/testnet source), a native keccak state per thread.
* **Once per follower** (:class:`FollowerSigner`): the libsecp256k1 private key object (building one
  costs as much as a signature, because coincurve derives the public key up front), the signer's
  address, its vault and its nonce source.
* **Per body**: ``msgpack`` of the action, three keccaks (``connectionId``, ``Agent`` struct hash,
  EIP-712 digest: each covers something that changes with the body) and one RFC 6979 ECDSA signature.

The bodies are byte-identical to what ``hyperliquid.utils.signing.sign_l1_action`` signs and what the
SDK posts: ``{"action", "nonce", "signature": {"r", "s", "v"}, "vaultAddress", "expiresAfter"}``, with
``r``/``s`` written as ``hex(int)`` (no zero padding) and ``v`` 27/28
(``tests/unit/test_fanout_signing.py`` checks it against the SDK). Wires come from
:func:`hyperfollow.adapters.hyperliquid.gateway.order_wire`, so prices and sizes are on the grid.

Signing is pure CPU: callers run it off the event loop (or accept the ~50 ms per 1,000 bodies). Sending
the bodies is the caller's job, within the venue's per-IP budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import coincurve

from hyperfollow.adapters.hyperliquid.nonce import NonceSource, nonce_source_for
from hyperfollow.domain.model import Grouping
from hyperfollow.signing import SignatureDict, SignatureError, address_of, l1_signing_digest

__all__ = ["FollowerSigner", "order_body", "sign_order_bodies"]


class FollowerSigner:
    """One follower's signing key, prepared once: key object, address, vault and nonce source.

    ``nonces`` defaults to the process-wide source of this signer (``nonce_source_for``), the one a
    ``HyperliquidClient`` with the same key uses, so bodies signed here never reuse one of its nonces.
    The key is never shown (``repr`` gives the address and the vault only).
    """

    __slots__ = ("_key", "address", "nonces", "vault")

    def __init__(
        self, private_key: bytes, vault: str | None = None, nonces: NonceSource | None = None
    ) -> None:
        self.address = address_of(private_key)  # validates: 32 bytes, in range (SignatureError)
        self._key = coincurve.PrivateKey(private_key)
        self.vault = vault.lower() if vault is not None else None
        self.nonces = nonces if nonces is not None else nonce_source_for(self.address)

    @classmethod
    def from_hex(
        cls, secret: str, vault: str | None = None, nonces: NonceSource | None = None
    ) -> FollowerSigner:
        """From a hex key (``0x`` optional), as ``HyperliquidConfig.secret_key`` holds it."""
        try:
            key = bytes.fromhex(secret.strip().removeprefix("0x"))
        except ValueError:
            raise SignatureError("the signing key is not hex") from None  # never echo the value
        return cls(key, vault, nonces)

    def sign(
        self, action: dict[str, Any], nonce: int, is_mainnet: bool, expires_after: int | None = None
    ) -> SignatureDict:
        """Sign an L1 action for this signer (and its vault): same output as the SDK's ``sign_l1_action``."""
        digest = l1_signing_digest(action, self.vault, nonce, expires_after, is_mainnet)
        sig = self._key.sign_recoverable(digest, hasher=None)  # RFC 6979 nonce, low s: as eth_keys
        # r and s as the SDK writes them (eth_utils.to_hex of an int: no zero padding), v = 27 + recid
        return {
            "r": hex(int.from_bytes(sig[:32], "big")),
            "s": hex(int.from_bytes(sig[32:64], "big")),
            "v": sig[64] + 27,
        }

    def __repr__(self) -> str:
        return f"FollowerSigner(address={self.address}, vault={self.vault})"


def order_body(
    signer: FollowerSigner,
    wires: Sequence[dict[str, Any]],
    is_mainnet: bool,
    *,
    grouping: Grouping = Grouping.NONE,
    expires_after: int | None = None,
) -> dict[str, Any]:
    """One signed ``/exchange`` body placing ``wires`` (one ``order`` action) with the signer's next nonce."""
    # key order as the SDK builds it (order_wires_to_order_action): the hash covers the msgpack bytes
    action = {"type": "order", "orders": list(wires), "grouping": grouping.value}
    nonce = signer.nonces.next()
    return {
        "action": action,
        "nonce": nonce,
        "signature": signer.sign(action, nonce, is_mainnet, expires_after),
        "vaultAddress": signer.vault,
        "expiresAfter": expires_after,
    }


def sign_order_bodies(
    orders: Sequence[tuple[FollowerSigner, dict[str, Any]]],
    is_mainnet: bool,
    *,
    expires_after: int | None = None,
) -> list[dict[str, Any]]:
    """One signed ``/exchange`` body per ``(follower, order wire)``, in input order.

    Each body is an ``order`` action of that single wire (grouping ``na``), a fresh nonce of that
    follower's signer, its vault. A follower listed twice gets two bodies with increasing nonces.
    """
    return [order_body(signer, (wire,), is_mainnet, expires_after=expires_after) for signer, wire in orders]
