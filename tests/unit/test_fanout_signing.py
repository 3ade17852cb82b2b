"""Fan-out signing: our order bodies are byte-identical to the SDK's; the embedded exchange accepts them."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any

import msgpack
import pytest
from eth_account import Account
from hyperliquid.utils import signing as sdk
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hyperfollow.adapters.hyperliquid.client import HyperliquidClient
from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.adapters.hyperliquid.fanout import FollowerSigner, order_body, sign_order_bodies
from hyperfollow.adapters.hyperliquid.gateway import order_wire
from hyperfollow.adapters.hyperliquid.nonce import NonceSource, nonce_source_for
from hyperfollow.domain.errors import InvalidSize
from hyperfollow.domain.ids import cloid_for
from hyperfollow.domain.model import OrderRequest, Side, Tif, TpSl, Trigger
from hyperfollow.domain.rules import Instrument, instruments_from_meta
from hyperfollow.exchange.auth import AgentRegistry, Authenticator, NonceTracker
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.signing import SignatureError, address_of

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
NOW = 1_795_288_640_000
START_MS = 1_767_225_600_000

INSTRUMENTS = (
    Instrument("BTC", 0, 5, 40),
    Instrument("ETH", 1, 4, 25),
    Instrument("SOL", 5, 2, 20),
    Instrument("kPEPE", 7, 0, 10),
    Instrument("HYPE", 159, 2, 10),
    Instrument("xyz:TSLA", 110_000, 3, 10, only_isolated=True, dex="xyz"),
)

keys = st.integers(min_value=1, max_value=SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
cloids = st.one_of(
    st.binary(min_size=16, max_size=16).map(lambda b: "0x" + b.hex()),
    st.integers(min_value=0, max_value=10**9).map(lambda n: cloid_for("leader-fill", n)),
)
triggers = st.one_of(
    st.none(),
    st.builds(
        Trigger,
        price=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(150_000), places=4),
        kind=st.sampled_from(TpSl),
        is_market=st.booleans(),
    ),
)
orders = st.builds(
    OrderRequest,
    coin=st.just(""),  # set from the instrument below
    side=st.sampled_from(Side),
    size=st.decimals(min_value=Decimal("0.00001"), max_value=Decimal(100_000), places=5),
    price=st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(150_000), places=6),
    tif=st.sampled_from(Tif),
    reduce_only=st.booleans(),
    trigger=triggers,
)


def _wire(inst: Instrument, order: OrderRequest, cloid: str) -> dict[str, Any]:
    try:
        return order_wire(inst, order, cloid)
    except InvalidSize:
        assume(False)
        raise


def _sdk_body(
    key: bytes, wire: dict[str, Any], vault: str | None, nonce: int, mainnet: bool
) -> dict[str, Any]:
    """What the SDK's Exchange._post_action posts for this wire (its own action builder and signer)."""
    action = sdk.order_wires_to_order_action([wire])
    signature = sdk.sign_l1_action(Account.from_key(key), action, vault, nonce, None, mainnet)
    return {
        "action": action,
        "nonce": nonce,
        "signature": signature,
        "vaultAddress": vault,
        "expiresAfter": None,
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=keys,
    inst=st.sampled_from(INSTRUMENTS),
    order=orders,
    cloid=cloids,
    vault=st.one_of(st.none(), addresses),
    mainnet=st.booleans(),
    nonce=st.one_of(st.integers(NOW - 10**6, NOW + 10**6), st.integers(min_value=1, max_value=(1 << 64) - 1)),
)
def test_body_is_byte_identical_to_the_sdk_and_recovers_to_the_follower(
    key: bytes,
    inst: Instrument,
    order: OrderRequest,
    cloid: str,
    vault: str | None,
    mainnet: bool,
    nonce: int,
) -> None:
    wire = _wire(inst, dataclasses.replace(order, coin=inst.coin, cloid=cloid), cloid)
    signer = FollowerSigner(key, vault, NonceSource(clock=lambda: nonce))
    ours = order_body(signer, [wire], mainnet)
    theirs = _sdk_body(key, wire, vault, nonce, mainnet)
    assert ours["signature"] == theirs["signature"]
    # the whole body, key order included: the signature covers msgpack(action) in its key order
    assert json.dumps(ours) == json.dumps(theirs)
    assert msgpack.packb(ours["action"]) == msgpack.packb(theirs["action"])

    # the embedded exchange's authenticator recovers the follower (and accepts its vault)
    follower = address_of(key)
    assert signer.address == follower == Account.from_key(key).address.lower()
    vaults = {vault: follower} if vault is not None else {}
    auth = Authenticator({follower}.__contains__, vaults.get, AgentRegistry(), NonceTracker(), mainnet)
    if NOW - 86_400_000 < nonce < NOW + 86_400_000:  # the venue's nonce window; only then can it pass
        actor = auth.authenticate(ours, NOW)
        assert (actor.signer, actor.account) == (follower, vault or follower)
    recovered = sdk.recover_agent_or_user_from_l1_action(
        ours["action"], ours["signature"], vault, nonce, None, mainnet
    )
    assert recovered.lower() == follower


@settings(max_examples=40, deadline=None)
@given(key=keys, nonce=st.integers(min_value=NOW - 1000, max_value=NOW + 1000), mainnet=st.booleans())
def test_authenticator_recovers_the_signer_within_the_nonce_window(
    key: bytes, nonce: int, mainnet: bool
) -> None:
    wire = order_wire(
        INSTRUMENTS[0], OrderRequest("BTC", Side.BUY, Decimal("0.001"), Decimal(60_000)), "0x" + "0" * 32
    )
    signer = FollowerSigner(key, None, NonceSource(clock=lambda: nonce))
    body = order_body(signer, [wire], mainnet)
    auth = Authenticator(lambda _: True, lambda _: None, AgentRegistry(), NonceTracker(), mainnet)
    assert auth.authenticate(body, NOW).signer == address_of(key)
    # signed for the other network: the venue recovers someone else (and would not know them)
    other = Authenticator(lambda _: True, lambda _: None, AgentRegistry(), NonceTracker(), not mainnet)
    assert other.authenticate(body, NOW).signer != address_of(key)


def test_bodies_keep_input_order_and_each_signer_its_own_increasing_nonces() -> None:
    ticks = iter(range(NOW, NOW + 1000))
    shared_clock = lambda: next(ticks)  # noqa: E731
    signers = [FollowerSigner(bytes([i + 1]) * 32, nonces=NonceSource(shared_clock)) for i in range(3)]
    wires = [
        order_wire(
            INSTRUMENTS[1], OrderRequest("ETH", Side.SELL, Decimal(i + 1), Decimal(3000)), cloid_for(i)
        )
        for i in range(4)
    ]
    pairs = [(signers[0], wires[0]), (signers[1], wires[1]), (signers[0], wires[2]), (signers[2], wires[3])]
    bodies = sign_order_bodies(pairs, False)
    assert [b["action"]["orders"] for b in bodies] == [[w] for w in wires]
    assert all(b["action"]["grouping"] == "na" and b["vaultAddress"] is None for b in bodies)
    first, second = bodies[0]["nonce"], bodies[2]["nonce"]
    assert second > first  # the same follower twice: two nonces, rising
    for body, (signer, _) in zip(bodies, pairs, strict=True):
        assert (
            sdk.recover_agent_or_user_from_l1_action(
                body["action"], body["signature"], None, body["nonce"], None, False
            ).lower()
            == signer.address
        )


def test_default_nonce_source_is_the_signers_process_wide_one() -> None:
    key = bytes.fromhex("5a" * 32)
    signer = FollowerSigner(key, vault="0x" + "AB" * 20)
    assert signer.nonces is nonce_source_for(address_of(key))
    assert signer.vault == "0x" + "ab" * 20


def test_key_is_never_shown_and_bad_keys_are_refused_without_echo() -> None:
    secret = "0x" + "3c" * 32
    signer = FollowerSigner.from_hex(secret)
    assert "3c3c" not in repr(signer) and signer.address in repr(signer)  # noqa: PT018
    for bad in (bytes(32), SECP256K1_N.to_bytes(32, "big"), b"\x01" * 31):
        with pytest.raises(SignatureError):
            FollowerSigner(bad)
    with pytest.raises(SignatureError) as info:
        FollowerSigner.from_hex("0x" + "zz" * 32)
    assert "zz" not in str(info.value)


async def test_adapter_client_signs_exactly_as_the_sdk() -> None:
    key = "0x" + "47" * 32
    vault = "0x" + "cd" * 20
    posted: list[Any] = []

    def transport(path: str, payload: Any) -> Any:
        posted.append(payload)
        return {"status": "ok", "response": {"type": "default"}}

    config = HyperliquidConfig(
        base_url="http://127.0.0.1:9", account_address="0x" + "ab" * 20, secret_key=key, vault_address=vault
    )
    client = HyperliquidClient(config, nonces=NonceSource(clock=lambda: NOW), transport=transport)
    wire = order_wire(
        INSTRUMENTS[2], OrderRequest("SOL", Side.BUY, Decimal("1.5"), Decimal("150.25")), cloid_for(1)
    )
    action = sdk.order_wires_to_order_action([wire])
    await client.action(action, 1)
    await client.close()
    assert json.dumps(posted[0]) == json.dumps(_sdk_body(bytes.fromhex(key[2:]), wire, vault, NOW, False))
    assert client.signer_address == Account.from_key(key).address.lower()


def test_embedded_exchange_accepts_a_fan_out_sized_by_equity_ratio() -> None:
    ex = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, start_ms=START_MS)
    by_coin = {i.coin: i for i in instruments_from_meta(ex.info({"type": "meta"}))}
    eth = by_coin["ETH"]
    mid = Decimal(ex.info({"type": "allMids"})["ETH"])
    leader_equity, leader_size = Decimal(250_000), Decimal("12.5")
    followers = [FollowerSigner(bytes([7, i + 1]) * 16) for i in range(12)]
    equities = [Decimal(2_000 + 1_500 * i) for i in range(len(followers))]
    pairs = []
    for i, (signer, equity) in enumerate(zip(followers, equities, strict=True)):
        ex.fund(signer.address, str(equity))
        size = leader_size * equity / leader_equity
        order = OrderRequest("ETH", Side.BUY, size, (mid * Decimal("0.9")), Tif.GTC)
        pairs.append((signer, order_wire(eth, order, cloid_for("fill-1", i))))
    bodies = sign_order_bodies(pairs, is_mainnet=False)
    for (signer, wire), body in zip(pairs, bodies, strict=True):
        answer = ex.exchange(json.loads(json.dumps(body)))  # as it crosses the wire
        assert answer["status"] == "ok", answer
        assert "resting" in answer["response"]["data"]["statuses"][0], answer
        (open_order,) = ex.info({"type": "openOrders", "user": signer.address})
        assert (open_order["cloid"], open_order["sz"]) == (wire["c"], wire["s"])
