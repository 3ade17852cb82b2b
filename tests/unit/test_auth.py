"""Authentication: envelopes, agents, vaults, nonces and the venue's error texts."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from captures import load_capture
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperfollow.exchange.auth import (
    DEFAULT_FUTURE_WINDOW_MS,
    DEFAULT_PAST_WINDOW_MS,
    Actor,
    AgentRegistry,
    Authenticator,
    AuthError,
    MalformedRequest,
    NonceTracker,
)
from hyperfollow.signing import address_of, sign_l1_action, sign_user_signed_action

MASTER_KEY = bytes.fromhex("0123456789012345678901234567890123456789012345678901234567890123")
MASTER = "0x14791697260e4c9a71f18484c9f997b308e59325"
AGENT_KEY = bytes.fromhex("11" * 32)
AGENT = address_of(AGENT_KEY)
OTHER_KEY = bytes.fromhex("22" * 32)
OTHER = address_of(OTHER_KEY)
CAPTURED_AGENT = "0x14c41e89ea59360ea41c2a49fbfc8244362442c5"
VAULT = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"
NOW = 1_795_288_640_000

# our short names -> capture files in tests/fixtures/hl-captured
CAPTURED = {
    "order": "order_limit_alo",
    "agent_order": "agent_order_on_behalf",
    "vault_order": "vault_order",
    "expires_order": "expires_after_order",
    "usd_send": "usd_transfer",
    "approve_agent": "approve_agent",
    "approve_unnamed": "approve_agent_unnamed",
}


def captured(name: str) -> dict[str, Any]:
    return load_capture(CAPTURED[name])


class World:
    """An authenticator over a tiny fake ledger of known users and vault leaders."""

    def __init__(self, *, is_mainnet: bool = False, users: tuple[str, ...] = (MASTER,)) -> None:
        self.users = set(users)
        self.vaults: dict[str, str] = {}
        self.agents = AgentRegistry()
        self.nonces = NonceTracker()
        self.auth = Authenticator(
            self.users.__contains__, self.vaults.get, self.agents, self.nonces, is_mainnet
        )

    def authenticate(self, body: Any, now_ms: int = NOW) -> Actor:
        return self.auth.authenticate(body, now_ms)

    def refused(self, body: Any, now_ms: int = NOW) -> str:
        with pytest.raises(AuthError) as info:
            self.auth.authenticate(body, now_ms)
        assert str(info.value) == info.value.message
        return info.value.message


def l1_body(
    key: bytes,
    action: dict[str, Any],
    nonce: int = NOW,
    vault: str | None = None,
    expires_after: int | None = None,
    is_mainnet: bool = False,
) -> dict[str, Any]:
    signature = sign_l1_action(key, action, vault, nonce, expires_after, is_mainnet)
    return {
        "action": action,
        "nonce": nonce,
        "signature": dict(signature),
        "vaultAddress": vault,
        "expiresAfter": expires_after,
    }


def user_body(
    key: bytes, action: dict[str, Any], nonce: int = NOW, is_mainnet: bool = False
) -> dict[str, Any]:
    action = {
        **action,
        "signatureChainId": "0x66eee",
        "hyperliquidChain": "Mainnet" if is_mainnet else "Testnet",
    }
    signature = sign_user_signed_action(key, action)
    return {
        "action": action,
        "nonce": nonce,
        "signature": dict(signature),
        "vaultAddress": None,
        "expiresAfter": None,
    }


def order_action(price: str = "100") -> dict[str, Any]:
    wire = {"a": 0, "b": True, "p": price, "s": "1", "r": False, "t": {"limit": {"tif": "Gtc"}}}
    return {"type": "order", "orders": [wire], "grouping": "na"}


def usd_send(nonce: int = NOW) -> dict[str, Any]:
    return {"destination": OTHER, "amount": "1", "time": nonce, "type": "usdSend"}


def approve(agent: str, name: str = "", nonce: int = NOW) -> dict[str, Any]:
    return {"type": "approveAgent", "agentAddress": agent, "agentName": name, "nonce": nonce}


# --------------------------------------------------------------------------------------------------------
# Captured SDK bodies


def test_captured_l1_order_from_master() -> None:
    body = captured("order")
    actor = World().authenticate(body, body["nonce"])
    assert actor == Actor(signer=MASTER, user=MASTER, vault=None, is_agent=False, action_type="order")
    assert actor.account == MASTER


def test_captured_user_signed_actions_from_master() -> None:
    world = World()
    for name, action_type in (("usd_send", "usdSend"), ("approve_agent", "approveAgent")):
        body = captured(name)
        actor = world.authenticate(body, body["nonce"])
        assert actor == Actor(MASTER, MASTER, None, False, action_type)
    body = captured("approve_unnamed")  # agentName omitted from the posted action, signed as ""
    assert world.authenticate(body, body["nonce"]).signer == MASTER


def test_captured_agent_order_maps_to_master_once_approved() -> None:
    world = World()
    body = captured("agent_order")
    assert world.refused(body, body["nonce"]) == f"User or API Wallet {CAPTURED_AGENT} does not exist."
    approval = captured("approve_agent")
    world.authenticate(approval, approval["nonce"])
    world.agents.approve(MASTER, approval["action"]["agentAddress"], approval["action"]["agentName"], NOW)
    actor = world.authenticate(body, body["nonce"])
    assert actor == Actor(signer=CAPTURED_AGENT, user=MASTER, vault=None, is_agent=True, action_type="order")


def test_captured_vault_order_needs_a_vault_led_by_the_actor() -> None:
    world = World()
    body = captured("vault_order")
    assert world.refused(body, body["nonce"]) == f"Vault not registered: {VAULT}"
    world.vaults[VAULT] = OTHER
    assert world.refused(body, body["nonce"]) == f"Vault not registered: {VAULT}"
    world.vaults[VAULT] = MASTER.upper().replace("0X", "0x")  # leader compared case-insensitively
    actor = world.authenticate(body, body["nonce"])  # nonce not consumed by the refusals above
    assert (actor.user, actor.vault, actor.account) == (MASTER, VAULT, VAULT)


def test_captured_expires_after() -> None:
    body = captured("expires_order")
    assert World().authenticate(body, body["expiresAfter"]).signer == MASTER
    world = World()
    late = body["expiresAfter"] + 1
    assert world.refused(body, late) == f"Action expired: expiresAfter {body['expiresAfter']} < now {late}"
    assert world.nonces.nonces(MASTER) == []  # an expired action does not consume its nonce


def test_tampered_captured_price_is_an_unknown_wallet() -> None:
    body = captured("order")
    body["action"]["orders"][0]["p"] = "2900.50"
    message = World().refused(body, body["nonce"])
    assert message.startswith("User or API Wallet 0x")
    assert message.endswith(" does not exist.")
    assert MASTER not in message


def test_replayed_capture_is_a_duplicate_nonce() -> None:
    world = World()
    body = captured("order")
    world.authenticate(body, body["nonce"])
    assert (
        world.refused(copy.deepcopy(body), body["nonce"]) == f"Invalid nonce: duplicate nonce {body['nonce']}"
    )


def test_testnet_capture_on_mainnet_exchange() -> None:
    world = World(is_mainnet=True)
    assert world.refused(captured("usd_send")) == "Mainnet and testnet require different signature."
    assert world.refused(captured("order")).startswith("User or API Wallet 0x")


# --------------------------------------------------------------------------------------------------------
# Agents through the authenticator


def test_agent_may_trade_but_not_sign_user_actions() -> None:
    world = World()
    world.agents.approve(MASTER, AGENT, "", NOW)
    actor = world.authenticate(l1_body(AGENT_KEY, order_action()))
    assert (actor.signer, actor.user, actor.is_agent) == (AGENT, MASTER, True)
    for action in (usd_send(NOW + 1), approve(OTHER, "x", NOW + 1)):  # they act for the agent address
        message = world.refused(user_body(AGENT_KEY, action, NOW + 1))
        assert message == f"Must deposit before performing actions. User: {AGENT}"
    world.users.add(AGENT)  # an agent address that came to hold funds still moves nothing
    message = world.refused(user_body(AGENT_KEY, usd_send(NOW + 2), NOW + 2))
    assert message == f"API Wallet {AGENT} cannot perform usdSend: it must be signed by the account itself."
    assert world.nonces.nonces(AGENT) == [NOW]  # the refusals recorded no nonce


@pytest.mark.parametrize(
    "kind", ["vaultTransfer", "subAccountTransfer", "subAccountSpotTransfer", "createSubAccount"]
)
def test_agent_may_not_sign_fund_moving_l1_actions(kind: str) -> None:
    world = World()
    world.agents.approve(MASTER, AGENT, "", NOW)
    action = {"type": kind, "usd": 1}
    message = world.refused(l1_body(AGENT_KEY, action, NOW + 1))
    assert message == f"API Wallet {AGENT} cannot perform {kind}: it must be signed by the account itself."
    assert world.nonces.nonces(AGENT) == []
    assert world.authenticate(l1_body(MASTER_KEY, action, NOW + 1)).user == MASTER


def test_agent_acts_for_a_sub_account_of_its_master() -> None:
    world = World()
    world.agents.approve(MASTER, AGENT, "bot", NOW)
    sub = "0x" + "ab" * 20
    world.vaults[sub] = MASTER
    actor = world.authenticate(l1_body(AGENT_KEY, order_action(), vault=sub))
    assert (actor.user, actor.vault, actor.is_agent) == (MASTER, sub, True)


def test_expired_agent_is_an_unknown_wallet() -> None:
    world = World()
    world.agents.approve(MASTER, AGENT, f"bot valid_until {NOW + 10}", NOW)
    assert world.authenticate(l1_body(AGENT_KEY, order_action(), NOW + 1), NOW + 10).is_agent
    assert world.refused(l1_body(AGENT_KEY, order_action(), NOW + 2), NOW + 11) == (
        f"User or API Wallet {AGENT} does not exist."
    )


def test_nonces_are_per_signer() -> None:
    world = World()
    world.agents.approve(MASTER, AGENT, "", NOW)
    world.authenticate(l1_body(MASTER_KEY, order_action(), NOW))
    world.authenticate(l1_body(AGENT_KEY, order_action(), NOW))  # same nonce, other signer: fine
    assert (
        world.refused(l1_body(AGENT_KEY, order_action("101"), NOW)) == f"Invalid nonce: duplicate nonce {NOW}"
    )


# --------------------------------------------------------------------------------------------------------
# User-signed checks


def test_unfunded_address_must_deposit_before_approving_an_agent() -> None:
    body = user_body(OTHER_KEY, approve(AGENT, "bot"))
    assert World().refused(body) == f"Must deposit before performing actions. User: {OTHER}"
    assert World(users=(MASTER, OTHER)).authenticate(body).signer == OTHER


def test_user_signed_nonce_mismatch() -> None:
    body = user_body(MASTER_KEY, usd_send(NOW), nonce=NOW + 1)
    assert World().refused(body) == "Nonce mismatch."
    approval = user_body(MASTER_KEY, approve(AGENT, nonce=NOW - 1))
    assert World().refused(approval) == "Nonce mismatch."


def test_user_signed_wrong_network() -> None:
    assert World().refused(user_body(MASTER_KEY, usd_send(), is_mainnet=True)) == (
        "Mainnet and testnet require different signature."
    )
    assert (
        World(is_mainnet=True).authenticate(user_body(MASTER_KEY, usd_send(), is_mainnet=True)).user == MASTER
    )


def test_user_signed_ignores_unsigned_vault_and_expiry() -> None:
    body = {**user_body(MASTER_KEY, usd_send()), "vaultAddress": VAULT, "expiresAfter": NOW - 1}
    actor = World().authenticate(body)
    assert (actor.user, actor.vault) == (MASTER, None)


def test_l1_from_unknown_user() -> None:
    assert (
        World().refused(l1_body(OTHER_KEY, order_action())) == f"User or API Wallet {OTHER} does not exist."
    )


# --------------------------------------------------------------------------------------------------------
# Malformed envelopes


def _good() -> dict[str, Any]:
    return l1_body(MASTER_KEY, order_action())


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda b: [b], "must be a JSON object"),
        (lambda b: {k: v for k, v in b.items() if k != "action"}, "action"),
        (lambda b: {**b, "action": {"orders": []}}, "action.type"),
        (lambda b: {**b, "action": {**b["action"], "type": 3}}, "action.type"),
        (lambda b: {**b, "nonce": str(b["nonce"])}, "nonce"),
        (lambda b: {**b, "nonce": True}, "nonce"),
        (lambda b: {**b, "nonce": -5}, "nonce"),
        (lambda b: {**b, "signature": None}, "signature"),
        (lambda b: {**b, "signature": {"r": "0x1", "s": "0x1"}}, "signature"),
        (lambda b: {**b, "signature": {"r": 1, "s": "0x1", "v": 27}}, "signature"),
        (lambda b: {**b, "signature": {**b["signature"], "r": "0xnothex"}}, "signature r"),
        (lambda b: {**b, "signature": {**b["signature"], "v": 31}}, "v must be"),
        (lambda b: {**b, "vaultAddress": "0x1234"}, "vaultAddress"),
        (lambda b: {**b, "vaultAddress": 5}, "vaultAddress"),
        (lambda b: {**b, "expiresAfter": "soon"}, "expiresAfter"),
        (lambda b: {**b, "action": {**b["action"], "bad": object()}}, "msgpack"),
    ],
)
def test_malformed_envelope(mutate: Any, match: str) -> None:
    world = World()
    with pytest.raises(MalformedRequest, match=match):
        world.authenticate(mutate(_good()))
    assert world.nonces.nonces(MASTER) == []


def test_malformed_user_signed_action() -> None:
    body = user_body(MASTER_KEY, usd_send())
    del body["action"]["destination"]
    with pytest.raises(MalformedRequest, match="missing field 'destination'"):
        World().authenticate(body)


def test_multisig_is_refused() -> None:
    body = {**_good(), "action": {"type": "multiSig", "signatureChainId": "0x66eee"}}
    assert "multiSig" in World().refused(body)


# --------------------------------------------------------------------------------------------------------
# NonceTracker


def test_nonce_duplicate_and_per_signer_case_insensitive() -> None:
    nonces = NonceTracker()
    nonces.check_and_record(MASTER, NOW, NOW)
    with pytest.raises(AuthError, match=f"^Invalid nonce: duplicate nonce {NOW}$"):
        nonces.check_and_record(MASTER.upper().replace("0X", "0x"), NOW, NOW)
    nonces.check_and_record(OTHER, NOW, NOW)
    nonces.check_and_record(MASTER, NOW - 5, NOW)  # lower but the set is not full: accepted
    assert nonces.nonces(MASTER) == [NOW - 5, NOW]


def test_nonce_too_low_once_100_are_kept() -> None:
    nonces = NonceTracker()
    for i in range(100):
        nonces.check_and_record(MASTER, NOW + i, NOW)
    with pytest.raises(AuthError, match=f"^Invalid nonce: nonce too low {NOW - 1} < {NOW}$"):
        nonces.check(MASTER, NOW - 1, NOW)
    nonces.check_and_record(MASTER, NOW + 1000, NOW)  # evicts NOW
    assert len(nonces.nonces(MASTER)) == 100
    assert min(nonces.nonces(MASTER)) == NOW + 1
    with pytest.raises(AuthError, match=f"^Invalid nonce: nonce too low {NOW} < {NOW + 1}$"):
        nonces.check(MASTER, NOW, NOW)
    nonces.check_and_record(MASTER, NOW + 500, NOW)  # a gap above the smallest is still usable


def test_nonce_time_window_bounds() -> None:
    nonces = NonceTracker()
    lowest, highest = NOW - DEFAULT_PAST_WINDOW_MS, NOW + DEFAULT_FUTURE_WINDOW_MS
    with pytest.raises(AuthError, match=f"^Invalid nonce: nonce too low {lowest} < {lowest + 1}$"):
        nonces.check(MASTER, lowest, NOW)
    with pytest.raises(AuthError, match=f"^Invalid nonce: nonce too high {highest} > {highest - 1}$"):
        nonces.check(MASTER, highest, NOW)
    nonces.check_and_record(MASTER, lowest + 1, NOW)
    nonces.check_and_record(MASTER, highest - 1, NOW)


def test_nonce_check_alone_records_nothing() -> None:
    nonces = NonceTracker(capacity=2, past_window_ms=10, future_window_ms=10)
    nonces.check(MASTER, NOW, NOW)
    nonces.check(MASTER, NOW, NOW)
    assert nonces.nonces(MASTER) == []
    nonces.record(MASTER, NOW)
    nonces.record(MASTER, NOW + 1)
    nonces.record(MASTER, NOW + 2)
    assert nonces.nonces(MASTER) == [NOW + 1, NOW + 2]
    with pytest.raises(AuthError, match="too high"):
        nonces.check(MASTER, NOW + 10, NOW)


def test_failed_authentication_does_not_consume_the_nonce() -> None:
    world = World()
    body = l1_body(MASTER_KEY, order_action(), vault=VAULT)
    world.refused(body)
    world.vaults[VAULT] = MASTER
    assert world.authenticate(body).vault == VAULT


# --------------------------------------------------------------------------------------------------------
# AgentRegistry


def _agent(i: int) -> str:
    return "0x" + f"{i:040x}"


def test_new_unnamed_agent_replaces_the_previous_one() -> None:
    agents = AgentRegistry()
    agents.approve(MASTER, _agent(1), "", NOW)
    agents.approve(MASTER, _agent(2), "", NOW)
    assert agents.master_of(_agent(1), NOW) is None
    assert agents.master_of(_agent(2), NOW) == MASTER
    assert agents.extra_agents(MASTER) == []  # the unnamed agent is not an "extra" agent


def test_three_named_agents_then_refusal_and_same_name_replacement() -> None:
    agents = AgentRegistry()
    for i, name in enumerate(("a", "b", "c"), start=1):
        agents.approve(MASTER, _agent(i), name, NOW)
    agents.approve(MASTER, _agent(9), "", NOW)  # the unnamed slot is separate
    with pytest.raises(AuthError, match="Too many named agents: at most 3"):
        agents.approve(MASTER, _agent(4), "d", NOW)
    assert agents.master_of(_agent(4), NOW) is None
    agents.approve(MASTER, _agent(5), "b", NOW)  # same name: replaces agent 2
    assert agents.master_of(_agent(2), NOW) is None
    assert agents.master_of(_agent(5), NOW) == MASTER
    assert {a["name"]: a["address"] for a in agents.extra_agents(MASTER)} == {
        "a": _agent(1),
        "b": _agent(5),
        "c": _agent(3),
    }


def test_expiry_suffix_and_pruning() -> None:
    agents = AgentRegistry()
    record = agents.approve(MASTER, _agent(1).upper().replace("0X", "0x"), f"a valid_until {NOW + 5}", NOW)
    assert (record.name, record.valid_until, record.address) == ("a", NOW + 5, _agent(1))
    assert agents.master_of(_agent(1), NOW + 5) == MASTER
    assert agents.master_of(_agent(1), NOW + 6) is None
    assert agents.extra_agents(MASTER) == [{"name": "a", "address": _agent(1), "validUntil": NOW + 5}]
    assert agents.extra_agents(MASTER, NOW + 6) == []
    agents.approve(MASTER, _agent(2), "b", NOW)
    agents.approve(MASTER, _agent(3), "c", NOW)
    agents.approve(MASTER, _agent(4), "d", NOW + 6)  # the expired "a" no longer holds a slot
    assert sorted(a["name"] for a in agents.extra_agents(MASTER)) == ["b", "c", "d"]
    with pytest.raises(AuthError, match="Too many named agents"):
        agents.approve(MASTER, _agent(5), "e", NOW + 6)
    plain = AgentRegistry().approve(MASTER, _agent(5), "no valid_until here", NOW)
    assert (plain.name, plain.valid_until) == ("no valid_until here", None)  # no timestamp: all name


def test_named_limit_counts_only_live_agents() -> None:
    agents = AgentRegistry(max_named=1)
    agents.approve(MASTER, _agent(1), f"a valid_until {NOW}", NOW)
    with pytest.raises(AuthError):
        agents.approve(MASTER, _agent(2), "b", NOW)
    agents.approve(MASTER, _agent(2), "b", NOW + 1)
    assert agents.master_of(_agent(2), NOW + 1) == MASTER


def test_agent_serves_one_master_and_cannot_be_the_master() -> None:
    agents = AgentRegistry()
    agents.approve(MASTER, _agent(1), "a", NOW)
    with pytest.raises(AuthError, match="already used by another user"):
        agents.approve(OTHER, _agent(1), "x", NOW)
    with pytest.raises(AuthError, match="cannot approve itself"):
        agents.approve(MASTER, MASTER, "self", NOW)
    with pytest.raises(AuthError, match="Invalid agent address"):
        agents.approve(MASTER, "0x1234", "short", NOW)
    agents.approve(MASTER, _agent(1), "renamed", NOW)  # moves to the new slot
    assert [a["name"] for a in agents.extra_agents(MASTER)] == ["renamed"]


def test_role_of_and_forget_master() -> None:
    agents = AgentRegistry()
    agents.approve(MASTER, _agent(1), f"a valid_until {NOW}", NOW)
    agents.approve(MASTER, _agent(2), "", NOW)
    assert agents.role_of(_agent(1)) == {"role": "agent", "data": {"user": MASTER}}
    assert agents.role_of(_agent(1), NOW + 1) is None
    assert agents.role_of(MASTER) is None
    assert len(agents.agents_of(MASTER)) == 2
    agents.forget_master(MASTER)
    assert agents.master_of(_agent(2), NOW) is None
    assert agents.agents_of(MASTER) == []


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**65), 2**65), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=10,
)
_envelope_parts = st.fixed_dictionaries(
    {},
    optional={
        "action": st.one_of(
            _json,
            st.builds(
                lambda t, a: {**a, "type": t},
                st.sampled_from(["order", "usdSend", "approveAgent", "cancel", "withdraw3", "multiSig"]),
                st.dictionaries(st.text(max_size=12), _json),
            ),
        ),
        "nonce": st.one_of(_json, st.integers(0, 2**64 - 1)),
        "signature": st.one_of(
            _json, st.fixed_dictionaries({"r": st.text(max_size=70), "s": st.text(max_size=70), "v": _json})
        ),
        "vaultAddress": _json,
        "expiresAfter": _json,
    },
)


@settings(max_examples=300, deadline=None)
@given(body=st.one_of(_json, _envelope_parts))
def test_garbage_bodies_only_ever_raise_auth_error(body: Any) -> None:
    try:
        outcome: object = World().authenticate(body)
    except AuthError as exc:
        outcome = exc.message
    assert isinstance(outcome, Actor) or (isinstance(outcome, str) and outcome)
