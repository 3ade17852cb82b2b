"""Signing: captures from the SDK, SDK known-answer vectors, fast path == generic path == SDK."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
from captures import all_captures, load_capture
from eth_account import Account
from eth_utils import to_checksum_address
from hyperliquid.utils import signing as sdk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperfollow import signing
from hyperfollow.signing import (
    USER_SIGNED_TYPES,
    SignatureError,
    action_hash,
    address_of,
    keccak256,
    recover_l1_signer,
    recover_l1_signer_generic,
    recover_user_signed_signer,
    recover_user_signed_signer_generic,
    sign_l1_action,
    sign_user_signed_action,
)

MASTER_KEY = bytes.fromhex("0123456789012345678901234567890123456789012345678901234567890123")
MASTER = "0x14791697260e4c9a71f18484c9f997b308e59325"
AGENT = "0x14c41e89ea59360ea41c2a49fbfc8244362442c5"  # approved in approve_agent.json
VAULT = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

SAMPLE_NAMES = (
    "order_limit_alo",
    "cancel",
    "vault_order",
    "expires_after_order",
    "agent_order_on_behalf",
    "usd_transfer",
    "usd_class_transfer",
    "approve_agent",
    "approve_agent_unnamed",
)

CAPTURES = all_captures()


def _expected_signer(name: str) -> str:
    return AGENT if name == "agent_order_on_behalf" else MASTER


def _recover(body: dict[str, Any], *, generic: bool = False, is_mainnet: bool = False) -> str:
    action, sig = body["action"], body["signature"]
    if action["type"] in USER_SIGNED_TYPES:
        return (recover_user_signed_signer_generic if generic else recover_user_signed_signer)(action, sig)
    fn = recover_l1_signer_generic if generic else recover_l1_signer
    return fn(action, sig, body["vaultAddress"], body["nonce"], body["expiresAfter"], is_mainnet)


# --------------------------------------------------------------------------------------------------------
# Captures


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_inline_capture_recovers_expected_signer(name: str) -> None:
    body = load_capture(name)
    assert _recover(body) == _expected_signer(name)
    assert _recover(body, generic=True) == _expected_signer(name)


def test_every_capture_recovers_expected_signer() -> None:
    assert len(CAPTURES) == 22
    for name, body in CAPTURES:
        assert _recover(body) == _expected_signer(name), name
        assert _recover(body, generic=True) == _expected_signer(name), name


def test_resigning_master_captures_reproduces_the_captured_signature() -> None:
    """RFC 6979 signatures are deterministic: our signer must reproduce the SDK's bytes exactly."""
    checked = 0
    for name, body in CAPTURES:
        if name == "agent_order_on_behalf":
            continue
        action = body["action"]
        if action["type"] in USER_SIGNED_TYPES:
            if "agentName" not in action and action["type"] == "approveAgent":
                action = {**action, "agentName": ""}
            sig = sign_user_signed_action(MASTER_KEY, action)
        else:
            sig = sign_l1_action(
                MASTER_KEY, action, body["vaultAddress"], body["nonce"], body["expiresAfter"], False
            )
        assert dict(sig) == body["signature"], name
        checked += 1
    assert checked == 21


def test_unpadded_s_is_accepted() -> None:
    body = load_capture("cancel")
    assert len(body["signature"]["s"]) == 2 + 63
    assert _recover(body) == MASTER


def test_unnamed_approve_agent_defaults_agent_name_to_empty() -> None:
    body = load_capture("approve_agent_unnamed")
    explicit = {**body["action"], "agentName": ""}
    assert recover_user_signed_signer(explicit, body["signature"]) == MASTER
    named = {**body["action"], "agentName": "x"}
    assert recover_user_signed_signer(named, body["signature"]) != MASTER


# --------------------------------------------------------------------------------------------------------
# Tampering: any change to the signed content recovers another address


def _with_price(body: dict[str, Any], price: str) -> dict[str, Any]:
    tampered = copy.deepcopy(body)
    tampered["action"]["orders"][0]["p"] = price
    return tampered


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda b: _with_price(b, "2900.50"), id="trailing-zero-price"),
        pytest.param(lambda b: {**b, "nonce": b["nonce"] + 1}, id="nonce"),
        pytest.param(lambda b: {**b, "vaultAddress": VAULT}, id="vault-added"),
        pytest.param(lambda b: {**b, "expiresAfter": b["nonce"] + 1}, id="expires-added"),
        pytest.param(
            lambda b: {**b, "action": {"grouping": "na", **b["action"]}}, id="key-order"
        ),  # same content, other key order
    ],
)
def test_tampered_l1_body_recovers_another_address(tamper: Any) -> None:
    body = load_capture("order_limit_alo")
    assert _recover(body) == MASTER
    tampered = tamper(body)
    assert _recover(tampered) != MASTER
    assert _recover(tampered) == _recover(tampered, generic=True)


def test_vault_changed_or_removed_recovers_another_address() -> None:
    body = load_capture("vault_order")
    other_vault = {**body, "vaultAddress": "0x" + "11" * 20}
    no_vault = {**body, "vaultAddress": None}
    upper = {**body, "vaultAddress": "0x" + VAULT[2:].upper()}
    assert _recover(other_vault) != MASTER
    assert _recover(no_vault) != MASTER
    assert _recover(upper) == MASTER  # the address is hex-decoded: case does not matter


def test_network_is_part_of_the_signature() -> None:
    assert _recover(load_capture("order_limit_alo"), is_mainnet=True) != MASTER
    body = load_capture("usd_transfer")
    mainnet = {**body["action"], "hyperliquidChain": "Mainnet"}
    assert recover_user_signed_signer(mainnet, body["signature"]) != MASTER
    other_chain = {**body["action"], "signatureChainId": "0xa4b1"}
    assert recover_user_signed_signer(other_chain, body["signature"]) != MASTER


def test_user_signed_field_change_recovers_another_address() -> None:
    body = load_capture("usd_transfer")
    changed = {**body["action"], "amount": "1.00"}
    assert recover_user_signed_signer(changed, body["signature"]) != MASTER
    extra = {**body["action"], "unsigned": 1}  # keys outside the struct are not signed
    assert recover_user_signed_signer(extra, body["signature"]) == MASTER


def test_v_zero_one_equivalent_to_27_28() -> None:
    body = load_capture("order_limit_alo")
    sig = {**body["signature"], "v": body["signature"]["v"] - 27}
    assert recover_l1_signer(body["action"], sig, None, body["nonce"], None, False) == MASTER


# --------------------------------------------------------------------------------------------------------
# SDK known-answer vectors (hyperliquid-python-sdk tests/signing_test.py)

_ORDER_GTC = {"a": 1, "b": True, "p": "100", "s": "100", "r": False, "t": {"limit": {"tif": "Gtc"}}}
_ORDER_CLOID = {**_ORDER_GTC, "c": "0x00000000000000000000000000000001"}
_ORDER_TPSL = {**_ORDER_GTC, "t": {"trigger": {"isMarket": True, "triggerPx": "103", "tpsl": "sl"}}}
_DUMMY = {"type": "dummy", "num": 100000000000}
_SUB_TRANSFER = {
    "type": "subAccountTransfer",
    "subAccountUser": "0x1d9470d4b963f552e6f671a81619d395877bf409",
    "isDeposit": True,
    "usd": 10,
}

L1_VECTORS: list[tuple[str, dict[str, Any], str | None, bool, str, str, int]] = [
    ("dummy-main", _DUMMY, None, True, "0x53749d5b30552aeb2fca34b530185976545bb22d0b3ce6f62e31be961a59298",
     "0x755c40ba9bf05223521753995abb2f73ab3229be8ec921f350cb447e384d8ed8", 27),
    ("dummy-test", _DUMMY, None, False, "0x542af61ef1f429707e3c76c5293c80d01f74ef853e34b76efffcb57e574f9510",
     "0x17b8b32f086e8cdede991f1e2c529f5dd5297cbe8128500e00cbaf766204a613", 28),
    ("order-main", {"type": "order", "orders": [_ORDER_GTC], "grouping": "na"}, None, True,
     "0xd65369825a9df5d80099e513cce430311d7d26ddf477f5b3a33d2806b100d78e",
     "0x2b54116ff64054968aa237c20ca9ff68000f977c93289157748a3162b6ea940e", 28),
    ("order-test", {"type": "order", "orders": [_ORDER_GTC], "grouping": "na"}, None, False,
     "0x82b2ba28e76b3d761093aaded1b1cdad4960b3af30212b343fb2e6cdfa4e3d54",
     "0x6b53878fc99d26047f4d7e8c90eb98955a109f44209163f52d8dc4278cbbd9f5", 27),
    ("cloid-main", {"type": "order", "orders": [_ORDER_CLOID], "grouping": "na"}, None, True,
     "0x41ae18e8239a56cacbc5dad94d45d0b747e5da11ad564077fcac71277a946e3",
     "0x3c61f667e747404fe7eea8f90ab0e76cc12ce60270438b2058324681a00116da", 27),
    ("cloid-test", {"type": "order", "orders": [_ORDER_CLOID], "grouping": "na"}, None, False,
     "0xeba0664bed2676fc4e5a743bf89e5c7501aa6d870bdb9446e122c9466c5cd16d",
     "0x7f3e74825c9114bc59086f1eebea2928c190fdfbfde144827cb02b85bbe90988", 28),
    ("vault-main", _DUMMY, VAULT, True, "0x3c548db75e479f8012acf3000ca3a6b05606bc2ec0c29c50c515066a326239",
     "0x4d402be7396ce74fbba3795769cda45aec00dc3125a984f2a9f23177b190da2c", 28),
    ("vault-test", _DUMMY, VAULT, False, "0xe281d2fb5c6e25ca01601f878e4d69c965bb598b88fac58e475dd1f5e56c362b",
     "0x7ddad27e9a238d045c035bc606349d075d5c5cd00a6cd1da23ab5c39d4ef0f60", 27),
    ("tpsl-main", {"type": "order", "orders": [_ORDER_TPSL], "grouping": "na"}, None, True,
     "0x98343f2b5ae8e26bb2587daad3863bc70d8792b09af1841b6fdd530a2065a3f9",
     "0x6b5bb6bb0633b710aa22b721dd9dee6d083646a5f8e581a20b545be6c1feb405", 27),
    ("tpsl-test", {"type": "order", "orders": [_ORDER_TPSL], "grouping": "na"}, None, False,
     "0x971c554d917c44e0e1b6cc45d8f9404f32172a9d3b3566262347d0302896a2e4",
     "0x206257b104788f80450f8e786c329daa589aa0b32ba96948201ae556d5637eac", 28),
    ("subaccount-main", {"type": "createSubAccount", "name": "example"}, None, True,
     "0x51096fe3239421d16b671e192f574ae24ae14329099b6db28e479b86cdd6caa7",
     "0xb71f7d293af92d3772572afb8b102d167a7cef7473388286bc01f52a5c5b423", 27),
    ("subaccount-test", {"type": "createSubAccount", "name": "example"}, None, False,
     "0xa699e3ed5c2b89628c746d3298b5dc1cca604694c2c855da8bb8250ec8014a5b",
     "0x53f1b8153a301c72ecc655b1c315d64e1dcea3ee58921fd7507e35818fcc1584", 28),
    ("subtransfer-main", _SUB_TRANSFER, None, True,
     "0x43592d7c6c7d816ece2e206f174be61249d651944932b13343f4d13f306ae602",
     "0x71a926cb5c9a7c01c3359ec4c4c34c16ff8107d610994d4de0e6430e5cc0f4c9", 28),
    ("subtransfer-test", _SUB_TRANSFER, None, False,
     "0xe26574013395ad55ee2f4e0575310f003c5bb3351b5425482e2969fa51543927",
     "0xefb08999196366871f919fd0e138b3a7f30ee33e678df7cfaf203e25f0a4278", 28),
    ("schedcancel-main", {"type": "scheduleCancel"}, None, True,
     "0x6cdfb286702f5917e76cd9b3b8bf678fcc49aec194c02a73e6d4f16891195df9",
     "0x6557ac307fa05d25b8d61f21fb8a938e703b3d9bf575f6717ba21ec61261b2a0", 27),
    ("schedcancel-test", {"type": "scheduleCancel"}, None, False,
     "0xc75bb195c3f6a4e06b7d395acc20bbb224f6d23ccff7c6a26d327304e6efaeed",
     "0x342f8ede109a29f2c0723bd5efb9e9100e3bbb493f8fb5164ee3d385908233df", 28),
    ("schedcancel-time-main", {"type": "scheduleCancel", "time": 123456789}, None, True,
     "0x609cb20c737945d070716dcc696ba030e9976fcf5edad87afa7d877493109d55",
     "0x16c685d63b5c7a04512d73f183b3d7a00da5406ff1f8aad33f8ae2163bab758b", 28),
    ("schedcancel-time-test", {"type": "scheduleCancel", "time": 123456789}, None, False,
     "0x4e4f2dbd4107c69783e251b7e1057d9f2b9d11cee213441ccfa2be63516dc5bc",
     "0x706c656b23428c8ba356d68db207e11139ede1670481a9e01ae2dfcdb0e1a678", 27),
]  # fmt: skip


@pytest.mark.parametrize(("name", "action", "vault", "is_mainnet", "r", "s", "v"), L1_VECTORS)
def test_sdk_l1_known_answer(
    name: str, action: dict[str, Any], vault: str | None, is_mainnet: bool, r: str, s: str, v: int
) -> None:
    assert dict(sign_l1_action(MASTER_KEY, action, vault, 0, None, is_mainnet)) == {"r": r, "s": s, "v": v}
    sig = {"r": r, "s": s, "v": v}
    assert recover_l1_signer(action, sig, vault, 0, None, is_mainnet) == MASTER
    assert recover_l1_signer(action, sig, vault, 0, None, not is_mainnet) != MASTER


def test_sdk_connection_id_matches_production() -> None:
    wire = {"a": 4, "b": True, "p": "1670.1", "s": "0.0147", "r": False, "t": {"limit": {"tif": "Ioc"}}}
    action = {"type": "order", "orders": [wire], "grouping": "na"}
    expected = "0fcbeda5ae3c4950a548021552a4fea2226858c4453571bf3f24ba017eac2908"
    assert action_hash(action, None, 1677777606040, None).hex() == expected


@pytest.mark.parametrize(
    ("action_type", "r", "s", "v"),
    [
        ("usdSend", "0x637b37dd731507cdd24f46532ca8ba6eec616952c56218baeff04144e4a77073",
         "0x11a6a24900e6e314136d2592e2f8d502cd89b7c15b198e1bee043c9589f9fad7", 27),
        ("withdraw3", "0x8363524c799e90ce9bc41022f7c39b4e9bdba786e5f9c72b20e43e1462c37cf9",
         "0x58b1411a775938b83e29182e8ef74975f9054c8e97ebf5ec2dc8d51bfc893881", 28),
    ],
)  # fmt: skip
def test_sdk_user_signed_known_answer(action_type: str, r: str, s: str, v: int) -> None:
    action = {
        "type": action_type,
        "destination": "0x5e9ee1089755c3435139848e47e6635505d5a13a",
        "amount": "1",
        "time": 1687816341423,
        "signatureChainId": "0x66eee",
        "hyperliquidChain": "Testnet",
    }
    assert dict(sign_user_signed_action(MASTER_KEY, action)) == {"r": r, "s": s, "v": v}
    assert recover_user_signed_signer(action, {"r": r, "s": s, "v": v}) == MASTER


def test_address_of_and_keccak_vectors() -> None:
    assert address_of(MASTER_KEY) == MASTER
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak256(bytearray(b"abc")) == signing._keccak256_portable(b"abc")


def test_keccak_is_thread_safe() -> None:
    inputs = [bytes([i]) * (i * 7) for i in range(64)]
    expected = [signing._keccak256_portable(x) for x in inputs]
    failures: list[int] = []

    def work() -> None:
        for _ in range(50):
            for i, x in enumerate(inputs):
                if keccak256(x) != expected[i]:
                    failures.append(i)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


# --------------------------------------------------------------------------------------------------------
# Property tests: fast == generic == SDK on random actions and keys

private_keys = st.integers(1, SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
decimals = st.decimals(min_value=0, max_value=10**7, places=5, allow_nan=False).map(
    lambda d: f"{d.normalize():f}"
)
order_wires = st.fixed_dictionaries(
    {
        "a": st.integers(0, 200_000),
        "b": st.booleans(),
        "p": decimals,
        "s": decimals,
        "r": st.booleans(),
        "t": st.sampled_from([{"limit": {"tif": t}} for t in ("Alo", "Ioc", "Gtc")]),
    },
    optional={"c": st.binary(min_size=16, max_size=16).map(lambda b: "0x" + b.hex())},
)
order_actions = st.builds(
    lambda orders, grouping: {"type": "order", "orders": orders, "grouping": grouping},
    st.lists(order_wires, min_size=1, max_size=3),
    st.sampled_from(["na", "normalTpsl", "positionTpsl"]),
)
random_actions = st.builds(
    lambda t, rest: {"type": t, **rest},
    st.text(min_size=1, max_size=10),
    st.dictionaries(st.text(), json_values),
)
l1_actions = st.one_of(order_actions, random_actions)
vaults = st.one_of(
    st.none(), st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b).lower())
)
u64 = st.integers(0, 2**64 - 1)
addresses = st.binary(min_size=20, max_size=20).map(to_checksum_address)  # EIP-55; lowercase below
_SOL = {
    "string": st.text(max_size=30),
    "address": st.one_of(addresses, addresses.map(str.lower)),
    "uint64": u64,
    "bool": st.booleans(),
}


@st.composite
def user_signed_actions(draw: st.DrawFn) -> dict[str, Any]:
    action_type = draw(st.sampled_from(sorted(USER_SIGNED_TYPES)))
    action: dict[str, Any] = {"type": action_type}
    for name, sol in USER_SIGNED_TYPES[action_type][1]:
        action[name] = draw(_SOL[sol])
    action["signatureChainId"] = hex(draw(st.integers(1, 2**64)))
    return action


PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(
    key=private_keys,
    action=l1_actions,
    vault=vaults,
    nonce=u64,
    expires=st.one_of(st.none(), u64),
    main=st.booleans(),
)
def test_l1_fast_equals_generic_equals_sdk(
    key: bytes, action: dict[str, Any], vault: str | None, nonce: int, expires: int | None, main: bool
) -> None:
    wallet = Account.from_key(key)
    assert action_hash(action, vault, nonce, expires) == sdk.action_hash(action, vault, nonce, expires)
    ours = sign_l1_action(key, action, vault, nonce, expires, main)
    theirs = sdk.sign_l1_action(wallet, copy.deepcopy(action), vault, nonce, expires, main)
    assert dict(ours) == theirs
    address = wallet.address.lower()
    assert address_of(key) == address
    assert recover_l1_signer(action, ours, vault, nonce, expires, main) == address
    assert recover_l1_signer_generic(action, ours, vault, nonce, expires, main) == address
    sdk_recovered = sdk.recover_agent_or_user_from_l1_action(action, theirs, vault, nonce, expires, main)
    assert sdk_recovered.lower() == address


@PROPERTY_SETTINGS
@given(key=private_keys, action=user_signed_actions(), main=st.booleans())
def test_user_signed_fast_equals_generic_equals_sdk(key: bytes, action: dict[str, Any], main: bool) -> None:
    wallet = Account.from_key(key)
    address = wallet.address.lower()
    ours = sign_user_signed_action(key, action)
    assert recover_user_signed_signer(action, ours) == address
    assert recover_user_signed_signer_generic(action, ours) == address
    # The SDK forces signatureChainId 0x66eee and the network's hyperliquidChain into the action.
    sdk_action = {
        **action,
        "signatureChainId": "0x66eee",
        "hyperliquidChain": "Mainnet" if main else "Testnet",
    }
    primary, fields = USER_SIGNED_TYPES[action["type"]]
    payload_types = [{"name": n, "type": s} for n, s in fields]
    theirs = sdk.sign_user_signed_action(wallet, dict(sdk_action), payload_types, primary, main)
    assert dict(sign_user_signed_action(key, sdk_action)) == theirs


# --------------------------------------------------------------------------------------------------------
# Malformed input: a clear SignatureError (a ValueError), never KeyError/TypeError

_GOOD_SIG = {"r": "0x1", "s": "0x1", "v": 27}


@pytest.mark.parametrize(
    ("signature", "match"),
    [
        ({"s": "0x1", "v": 27}, "missing 'r'"),
        ({"r": "0xzz", "s": "0x1", "v": 27}, "signature r"),
        ({"r": "0x 1", "s": "0x1", "v": 27}, "signature r"),
        ({"r": "0x1_0", "s": "0x1", "v": 27}, "signature r"),
        ({"r": "0x" + "f" * 65, "s": "0x1", "v": 27}, "signature r"),
        ({"r": 5, "s": "0x1", "v": 27}, "signature r"),
        ({"r": "0x1", "s": "", "v": 27}, "signature s"),
        ({"r": "0x1", "s": "0x1", "v": 29}, "v must be"),
        ({"r": "0x1", "s": "0x1", "v": True}, "v must be"),
        ({"r": "0x1", "s": "0x1", "v": "27"}, "v must be"),
        ({"r": "0x0", "s": "0x0", "v": 27}, "no public key"),
        ("0xdead", "object with r, s and v"),
    ],
)
def test_malformed_signature_raises_signature_error(signature: Any, match: str) -> None:
    with pytest.raises(SignatureError, match=match):
        recover_l1_signer({"type": "noop"}, signature, None, 1, None, False)


@pytest.mark.parametrize(
    ("action", "vault", "nonce", "expires", "match"),
    [
        ("order", None, 1, None, "action must be an object"),
        ({"type": "x", "v": object()}, None, 1, None, "msgpack"),
        ({"type": "x", "v": 2**70}, None, 1, None, "msgpack"),
        ({"type": "x"}, None, -1, None, "nonce is out of range"),
        ({"type": "x"}, None, 2**64, None, "nonce is out of range"),
        ({"type": "x"}, None, True, None, "nonce must be an integer"),
        ({"type": "x"}, None, "1", None, "nonce must be an integer"),
        ({"type": "x"}, "0x1234", 1, None, "vaultAddress"),
        ({"type": "x"}, "0x" + "g" * 40, 1, None, "vaultAddress"),
        ({"type": "x"}, None, 1, 1.5, "expiresAfter must be an integer"),
    ],
)
def test_malformed_l1_input_raises_signature_error(
    action: Any, vault: Any, nonce: Any, expires: Any, match: str
) -> None:
    with pytest.raises(SignatureError, match=match):
        recover_l1_signer(action, _GOOD_SIG, vault, nonce, expires, False)
    with pytest.raises(SignatureError, match=match):
        recover_l1_signer_generic(action, _GOOD_SIG, vault, nonce, expires, False)


_DROP = object()


def _usd_send(**changes: Any) -> dict[str, Any]:
    action = load_capture("usd_transfer")["action"]
    action.update(changes)
    return {k: v for k, v in action.items() if v is not _DROP}


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (_usd_send(destination=_DROP), "missing field 'destination'"),
        (_usd_send(time="1795288638911"), "usdSend.time must be an integer"),
        (_usd_send(time=-1), "usdSend.time is out of range"),
        (_usd_send(amount=1.0), "usdSend.amount must be a string"),
        (_usd_send(signatureChainId=_DROP), "signatureChainId"),
        (_usd_send(signatureChainId="66eee!"), "signatureChainId"),
        (_usd_send(type="order"), "not a user-signed action type"),
        (_usd_send(type=None), "not a user-signed action type"),
        ({"type": "usdClassTransfer", "amount": "1", "toPerp": "true", "nonce": 1,
          "hyperliquidChain": "Testnet", "signatureChainId": "0x66eee"}, "toPerp must be a boolean"),
        ({"type": "approveAgent", "agentAddress": "0x1234", "nonce": 1, "hyperliquidChain": "Testnet",
          "signatureChainId": "0x66eee"}, "agentAddress must be a 20-byte hex address"),
        ({"type": "approveAgent", "agentAddress": "0x" + "ab" * 20, "nonce": 1, "hyperliquidChain": "Testnet",
          "signatureChainId": "0x66eee", "agentName": 7}, "agentName must be a string"),
        ([("type", "usdSend")], "action must be an object"),
    ],
)  # fmt: skip
def test_malformed_user_signed_input_raises_signature_error(action: Any, match: str) -> None:
    with pytest.raises(SignatureError, match=match):
        recover_user_signed_signer(action, _GOOD_SIG)
    with pytest.raises(SignatureError, match=match):
        sign_user_signed_action(MASTER_KEY, action)


@pytest.mark.parametrize("key", [b"\x01" * 31, b"\x00" * 32, (SECP256K1_N).to_bytes(32, "big"), "0x01"])
def test_bad_private_key_raises_signature_error(key: Any) -> None:
    with pytest.raises(SignatureError, match="private key"):
        sign_l1_action(key, {"type": "noop"}, None, 1, None, False)
    with pytest.raises(SignatureError, match="private key"):
        address_of(key)


@settings(max_examples=300, deadline=None)
@given(action=json_values, signature=json_values, vault=json_values, nonce=json_values, expires=json_values)
def test_garbage_input_only_ever_raises_signature_error(
    action: Any, signature: Any, vault: Any, nonce: Any, expires: Any
) -> None:
    calls = [
        lambda: recover_l1_signer(action, signature, vault, nonce, expires, False),
        lambda: recover_user_signed_signer(action, signature),
        lambda: recover_user_signed_signer(
            {"type": "usdSend", **(action if isinstance(action, dict) else {})}, signature
        ),
    ]
    for call in calls:
        try:
            result = call()
        except SignatureError:
            continue
        assert isinstance(result, str)
        assert len(result) == 42
