"""Who may sign for the account: the decision (pure), the queries it makes, and the embedded exchange's
``userRole`` / ``extraAgents`` / ``vaultDetails`` answers it relies on."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from hyperfollow.adapters.hyperliquid.account import (
    SignerNotAuthorized,
    check_signer,
    signer_problem,
    vault_problem,
)
from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.exchange.embedded import EmbeddedExchange

ACCOUNT = "0x" + "ac" * 20
SIGNER = "0x" + "51" * 20
OTHER = "0x" + "07" * 20
VAULT = "0x" + "7a" * 20
NOW = 1_767_225_600_000
KEY = "0x" + "42" * 32


def test_the_account_itself_may_sign() -> None:
    assert signer_problem(ACCOUNT.upper().replace("0X", "0x"), ACCOUNT, None, None, NOW) is None


def test_an_agent_of_the_account_may_sign() -> None:
    role = {"role": "agent", "data": {"user": ACCOUNT.upper().replace("0X", "0x")}}
    assert signer_problem(SIGNER, ACCOUNT, role, [], NOW) is None
    live = [{"name": "bot", "address": SIGNER, "validUntil": NOW + 1}]
    assert signer_problem(SIGNER, ACCOUNT, role, live, NOW) is None


def test_an_expired_named_agent_is_refused() -> None:
    role = {"role": "agent", "data": {"user": ACCOUNT}}
    expired = [{"name": "bot", "address": SIGNER.upper().replace("0X", "0x"), "validUntil": NOW - 1}]
    problem = signer_problem(SIGNER, ACCOUNT, role, expired, NOW)
    assert problem is not None
    assert "expired" in problem
    assert "approveAgent" in problem


@pytest.mark.parametrize(
    ("role", "says"),
    [
        ({"role": "missing"}, ["not an agent", "approveAgent", "HYPERFOLLOW_VENUE__ACCOUNT_ADDRESS"]),
        ({"role": "agent", "data": {"user": OTHER}}, [f"HYPERFOLLOW_VENUE__ACCOUNT_ADDRESS={OTHER}"]),
        ({"role": "user"}, ["own key", f"would trade {SIGNER}"]),
        ({"role": "vault"}, ["own key"]),
        (None, ["not an agent"]),  # an answer we cannot read is no approval
    ],
)
def test_anything_else_is_refused_with_what_to_do(role: Any, says: list[str]) -> None:
    problem = signer_problem(SIGNER, ACCOUNT, role, [], NOW)
    assert problem is not None
    for text in says:
        assert text in problem


def test_a_vault_needs_its_leader_and_a_sub_account_its_master() -> None:
    assert vault_problem(ACCOUNT, VAULT, {"role": "vault"}, ACCOUNT) is None
    assert vault_problem(ACCOUNT, VAULT, {"role": "subAccount", "data": {"master": ACCOUNT}}, None) is None
    led_by_other = vault_problem(ACCOUNT, VAULT, {"role": "vault"}, OTHER)
    assert led_by_other is not None
    assert OTHER in led_by_other
    assert vault_problem(ACCOUNT, VAULT, {"role": "subAccount", "data": {"master": OTHER}}, None)
    assert vault_problem(ACCOUNT, VAULT, {"role": "user"}, None)
    assert vault_problem(ACCOUNT, VAULT, {"role": "missing"}, None)


class FakeClient:
    """Answers ``/info`` from a table and records what was asked."""

    def __init__(self, answers: dict[tuple[str, str], Any], vault: str | None = None) -> None:
        self.answers = answers
        self.asked: list[dict[str, Any]] = []
        self._config = HyperliquidConfig(
            base_url="http://127.0.0.1:1", account_address=ACCOUNT, secret_key=SecretStr(KEY),
            vault_address=vault,
        )  # fmt: skip

    @property
    def config(self) -> HyperliquidConfig:
        return self._config

    async def info(self, payload: dict[str, Any]) -> Any:
        self.asked.append(payload)
        return self.answers[(payload["type"], payload.get("user") or payload.get("vaultAddress") or "")]

    async def action(
        self, action: dict[str, Any], n_orders: int = 0, *, expires_after: int | None = None
    ) -> Any:
        raise AssertionError("the check sends nothing")


async def test_check_signer_asks_the_venue_and_raises_with_the_sentence() -> None:
    client = FakeClient({("userRole", SIGNER): {"role": "missing"}, ("extraAgents", ACCOUNT): []})
    with pytest.raises(SignerNotAuthorized, match="approveAgent") as info:
        await check_signer(client, SIGNER, NOW)
    assert KEY[2:] not in str(info.value)
    assert {q["type"] for q in client.asked} == {"userRole", "extraAgents"}
    own = FakeClient({})
    await check_signer(own, ACCOUNT, NOW)  # the account's own key: nothing to ask
    assert own.asked == []


async def test_check_signer_checks_the_vault_leader() -> None:
    answers = {
        ("userRole", SIGNER): {"role": "agent", "data": {"user": ACCOUNT}},
        ("extraAgents", ACCOUNT): [],
        ("userRole", VAULT): {"role": "vault"},
        ("vaultDetails", VAULT): {"vaultAddress": VAULT, "leader": OTHER},
    }
    with pytest.raises(SignerNotAuthorized, match="led by"):
        await check_signer(FakeClient(answers, vault=VAULT), SIGNER, NOW)
    answers[("vaultDetails", VAULT)] = {"vaultAddress": VAULT, "leader": ACCOUNT}
    await check_signer(FakeClient(answers, vault=VAULT), SIGNER, NOW)


# ------------------------------------------------------------------ the embedded exchange's answers


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


def test_embedded_user_role_and_extra_agents_forget_an_expired_agent() -> None:
    clock = Clock()
    ex = EmbeddedExchange(stepped=True, simulated_traders=False, auth_clock=clock)
    ex.fund(ACCOUNT, "1000")
    ex.agents.approve(ACCOUNT, SIGNER, f"bot valid_until {NOW + 1000}", NOW)
    assert ex.info({"type": "userRole", "user": SIGNER}) == {"role": "agent", "data": {"user": ACCOUNT}}
    assert ex.info({"type": "extraAgents", "user": ACCOUNT}) == [
        {"name": "bot", "address": SIGNER, "validUntil": NOW + 1000}
    ]
    clock.now = NOW + 1001  # the authenticator refuses it from now on: so must the answers
    assert ex.info({"type": "userRole", "user": SIGNER}) == {"role": "missing"}
    assert ex.info({"type": "extraAgents", "user": ACCOUNT}) == []


def test_embedded_user_role_of_a_sub_account_and_vault_details() -> None:
    ex = EmbeddedExchange(stepped=True, simulated_traders=False)
    ex.fund(ACCOUNT, "1000")
    sub = ex.engine.account(OTHER)
    sub.leader = ACCOUNT  # what createSubAccount records
    assert ex.info({"type": "userRole", "user": OTHER}) == {"role": "subAccount", "data": {"master": ACCOUNT}}
    vault = ex.create_vault(ACCOUNT, "500")
    assert ex.info({"type": "userRole", "user": vault}) == {"role": "vault"}
    details = ex.info({"type": "vaultDetails", "vaultAddress": vault})
    assert (details["vaultAddress"], details["leader"]) == (vault, ACCOUNT)
    assert ex.info({"type": "vaultDetails", "vaultAddress": ACCOUNT}) is None


# ------------------------------------------------------------------ the venue's recorded answers


def _recorded(name: str) -> Any:
    import json

    import yaml

    from shared_data import vendored

    doc = yaml.safe_load(vendored(f"hl-real/{name}.yaml").read_text())
    return json.loads(doc["interactions"][-1]["response"]["body"]["string"])


def test_recorded_extra_agents_decide_validity_by_valid_until() -> None:
    master = "0xd42f2bb0e06455edb652e27b7374fc2bda8448ee"  # the recorded request's user
    agents = _recorded("test_extra_agents")
    agent = agents[0]["address"]
    role = {"role": "agent", "data": {"user": master}}
    assert signer_problem(agent, master, role, agents, agents[0]["validUntil"]) is None
    expired = signer_problem(agent, master, role, agents, agents[0]["validUntil"] + 1)
    assert expired is not None
    assert "expired" in expired


def test_recorded_user_role_of_a_vault_is_not_an_agent() -> None:
    role = _recorded("test_user_role")
    assert role == {"role": "vault"}
    problem = signer_problem(SIGNER, ACCOUNT, role, [], NOW)
    assert problem is not None
    assert "own key" in problem
