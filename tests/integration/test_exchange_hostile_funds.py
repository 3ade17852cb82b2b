"""Fund-moving actions driven by a hostile client: vault withdrawals, agents, agent approvals, amounts.

Every refusal is checked against the whole state of every party involved (balances, positions, open
orders, fills, spot balances, vault equities, ledger, role), read over the wire before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import eth_account
import pytest
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.utils.signing import (
    sign_agent,
    sign_send_asset_action,
    sign_spot_transfer_action,
    sign_usd_class_transfer_action,
    sign_usd_transfer_action,
    sign_withdraw_from_bridge_action,
)
from support import NEXT_NONCE, Trader, Venue, dec, signed_body, wallet_for

OK = {"status": "ok", "response": {"type": "default"}}
GTC = {"limit": {"tif": "Gtc"}}
LOCKUP_MS = 5_000  # venues of this module that need a lock-up to pass use this one
DAY_MS = 86_400_000
MICRO = 1_000_000


# ------------------------------------------------------------------------------------------ helpers


def party(venue: Venue, address: str) -> dict[str, Any]:
    """Everything the venue tells about one address (minus the server's clock)."""
    user = address.lower()
    state = venue.info_request({"type": "clearinghouseState", "user": user, "dex": ""})
    state.pop("time")
    return {
        "state": state,
        "spot": venue.info_request({"type": "spotClearinghouseState", "user": user}),
        "orders": venue.info_request({"type": "frontendOpenOrders", "user": user, "dex": ""}),
        "fills": venue.info_request({"type": "userFills", "user": user}),
        "vaults": venue.info_request({"type": "userVaultEquities", "user": user}),
        "ledger": venue.info_request({"type": "userNonFundingLedgerUpdates", "user": user, "startTime": 0}),
        "role": venue.info_request({"type": "userRole", "user": user}),
        "agents": venue.info_request({"type": "extraAgents", "user": user}),
    }


def parties(venue: Venue, *addresses: str) -> dict[str, dict[str, Any]]:
    return {a.lower(): party(venue, a) for a in addresses}


def refused(result: Any) -> str:
    assert isinstance(result, dict), result
    assert result.get("status") == "err", result
    text = result["response"]
    assert isinstance(text, str)
    assert text
    return text


def value(venue: Venue, address: str) -> Decimal:
    state = venue.info_request({"type": "clearinghouseState", "user": address.lower(), "dex": ""})
    return dec(state["marginSummary"]["accountValue"])


def vault_equity(venue: Venue, user: str, vault: str) -> tuple[Decimal, int] | None:
    rows = venue.info_request({"type": "userVaultEquities", "user": user.lower()})
    for row in rows:
        if row["vaultAddress"] == vault.lower():
            return dec(row["equity"]), int(row["lockedUntilTimestamp"])
    return None


def post(venue: Venue, body: dict[str, Any]) -> Any:
    response = venue.post("/exchange", body)
    return response.json() if response.status_code == 200 else (response.status_code, response.text)


def user_signed(
    wallet: LocalAccount, action: dict[str, Any], sign: Callable[[Any, dict[str, Any], bool], Any]
) -> dict[str, Any]:
    """The body the SDK posts for a user-signed action (testnet), with a fresh nonce in its time field."""
    nonce = NEXT_NONCE()
    action = {**action, ("time" if "time" in action else "nonce"): nonce}
    signature = sign(wallet, action, False)
    return {
        "action": action,
        "nonce": nonce,
        "signature": signature,
        "vaultAddress": None,
        "expiresAfter": None,
    }


def approve_body(approver: LocalAccount, agent_address: str, name: str = "") -> dict[str, Any]:
    """approveAgent for a chosen address (the SDK's approve_agent only approves a key it generates)."""
    action = {"type": "approveAgent", "agentAddress": agent_address, "agentName": name, "nonce": 0}
    return user_signed(approver, action, sign_agent)


def usdc_token(venue: Venue) -> str:
    token = next(t for t in venue.info_request({"type": "spotMeta"})["tokens"] if t["name"] == "USDC")
    return f"USDC:{token['tokenId']}"


# ------------------------------------------------------------------------------------------ 1. vaults


def test_stranger_cannot_withdraw_a_vault_it_never_deposited_into(venue: Venue) -> None:
    leader = venue.trader("hostile-vault-leader")
    vault = venue.create_vault(leader.address, "20000")
    stranger = venue.trader("hostile-vault-stranger")
    before = parties(venue, leader.address, vault, stranger.address)

    whole = refused(stranger.exchange.vault_usd_transfer(vault, False, 20_000 * MICRO))
    assert whole == "Insufficient vault equity for withdrawal: 0.0 USDC withdrawable."
    assert refused(stranger.exchange.vault_usd_transfer(vault, False, 1)) == whole
    withdrawal = stranger.exchange.withdraw_from_bridge(20_000.0, stranger.address)
    assert refused(withdrawal) == "Insufficient balance for withdrawal."

    assert parties(venue, leader.address, vault, stranger.address) == before
    assert vault_equity(venue, leader.address, vault) == (Decimal(20000), venue.now())


def test_follower_withdraws_its_own_share_and_no_more(make_venue: Callable[..., Venue]) -> None:
    venue = make_venue(vault_lockup_ms=LOCKUP_MS)
    leader = venue.trader("share-leader")
    vault = venue.create_vault(leader.address, "20000")
    follower = venue.trader("share-follower")
    other = venue.trader("share-other")
    deposited_at = venue.now()
    assert follower.exchange.vault_usd_transfer(vault, True, 5_000 * MICRO) == OK
    assert other.exchange.vault_usd_transfer(vault, True, 5_000 * MICRO) == OK
    venue.advance(LOCKUP_MS)
    venue.fund(vault, "6000")  # the vault gains 6,000; the follower owns a sixth of it
    assert value(venue, vault) == 36000
    unlocked_at = deposited_at + LOCKUP_MS
    assert vault_equity(venue, follower.address, vault) == (Decimal(6000), unlocked_at)
    assert vault_equity(venue, leader.address, vault) == (Decimal(24000), deposited_at)
    everyone = (leader.address, vault, follower.address, other.address)
    before = parties(venue, *everyone)

    too_much = refused(follower.exchange.vault_usd_transfer(vault, False, 6_000 * MICRO + 1))
    assert too_much == "Insufficient vault equity for withdrawal: 6000.0 USDC withdrawable."
    assert parties(venue, *everyone) == before

    assert follower.exchange.vault_usd_transfer(vault, False, 6_000 * MICRO) == OK
    assert dec(follower.state()["withdrawable"]) == 11000
    assert vault_equity(venue, follower.address, vault) is None
    assert value(venue, vault) == 30000
    assert vault_equity(venue, other.address, vault) == (Decimal(6000), unlocked_at)
    assert vault_equity(venue, leader.address, vault) == (Decimal(24000), deposited_at)
    before = parties(venue, *everyone)
    assert refused(follower.exchange.vault_usd_transfer(vault, False, 1)).startswith(
        "Insufficient vault equity"
    )
    withdrawal = follower.exchange.withdraw_from_bridge(11_000.000001, follower.address)
    assert refused(withdrawal) == "Insufficient balance for withdrawal."
    assert parties(venue, *everyone) == before
    assert follower.exchange.withdraw_from_bridge(11_000.0, follower.address) == OK
    assert dec(follower.state()["withdrawable"]) == 0


def test_follower_deposit_is_locked_up(make_venue: Callable[..., Venue]) -> None:
    venue = make_venue(vault_lockup_ms=LOCKUP_MS)
    leader = venue.trader("lock-leader")
    vault = venue.create_vault(leader.address, "20000")
    follower = venue.trader("lock-follower")
    deposited_at = venue.now()
    assert follower.exchange.vault_usd_transfer(vault, True, 1_000 * MICRO) == OK
    assert vault_equity(venue, follower.address, vault) == (Decimal(1000), deposited_at + LOCKUP_MS)
    before = parties(venue, leader.address, vault, follower.address)

    locked = refused(follower.exchange.vault_usd_transfer(vault, False, 1_000 * MICRO))
    assert locked == f"Vault deposit is locked until {deposited_at + LOCKUP_MS}."
    venue.advance(LOCKUP_MS - 1000)
    assert refused(follower.exchange.vault_usd_transfer(vault, False, 1 * MICRO)) == locked
    assert parties(venue, leader.address, vault, follower.address) == before

    venue.advance(1000)
    assert follower.exchange.vault_usd_transfer(vault, False, 400 * MICRO) == OK
    assert follower.exchange.vault_usd_transfer(vault, True, 100 * MICRO) == OK  # a deposit locks again
    relocked = venue.now() + LOCKUP_MS
    assert vault_equity(venue, follower.address, vault) == (Decimal(700), relocked)
    before = parties(venue, leader.address, vault, follower.address)
    again = refused(follower.exchange.vault_usd_transfer(vault, False, 100 * MICRO))
    assert again == f"Vault deposit is locked until {relocked}."
    assert parties(venue, leader.address, vault, follower.address) == before


def test_everything_parked_in_a_vault_can_come_back(make_venue: Callable[..., Venue]) -> None:
    venue = make_venue(vault_lockup_ms=LOCKUP_MS)
    leader = venue.trader("parked-leader")
    vault = venue.create_vault(leader.address, "20000")
    follower = venue.trader("parked-follower", usd="1000")
    assert follower.exchange.vault_usd_transfer(vault, True, 1_000 * MICRO) == OK  # nothing left outside
    venue.advance(LOCKUP_MS)
    assert follower.exchange.vault_usd_transfer(vault, False, 1_000 * MICRO) == OK
    assert dec(follower.state()["withdrawable"]) == 1000


def test_default_lockup_is_a_day(venue: Venue) -> None:
    leader = venue.trader("day-lock-leader")
    vault = venue.create_vault(leader.address, "20000")
    follower = venue.trader("day-lock-follower")
    assert follower.exchange.vault_usd_transfer(vault, True, 100 * MICRO) == OK
    locked_until = venue.now() + DAY_MS
    assert vault_equity(venue, follower.address, vault) == (Decimal(100), locked_until)
    before = parties(venue, leader.address, vault, follower.address)
    assert refused(follower.exchange.vault_usd_transfer(vault, False, 100 * MICRO)) == (
        f"Vault deposit is locked until {locked_until}."
    )
    assert parties(venue, leader.address, vault, follower.address) == before


def test_leader_keeps_five_percent_of_its_vault(make_venue: Callable[..., Venue]) -> None:
    venue = make_venue(vault_lockup_ms=LOCKUP_MS)
    leader = venue.trader("min-share-leader")
    vault = venue.create_vault(leader.address, "20000")
    follower = venue.trader("min-share-follower", usd="400000")
    assert follower.exchange.vault_usd_transfer(vault, True, 380_000 * MICRO) == OK  # leader: exactly 5 %
    everyone = (leader.address, vault, follower.address)
    before = parties(venue, *everyone)
    below = refused(leader.exchange.vault_usd_transfer(vault, False, 1))
    assert below == "Vault leader must keep at least 5% of the vault."
    assert parties(venue, *everyone) == before

    assert leader.exchange.vault_usd_transfer(vault, True, 10_000 * MICRO) == OK  # 30,000 of 410,000
    assert leader.exchange.vault_usd_transfer(vault, False, 9_000 * MICRO) == OK  # 21,000 of 401,000
    before = parties(venue, *everyone)
    assert refused(leader.exchange.vault_usd_transfer(vault, False, 2_000 * MICRO)) == below
    assert parties(venue, *everyone) == before
    assert vault_equity(venue, leader.address, vault) == (Decimal(21000), venue.now())


def test_leader_cannot_drain_its_vault_as_a_sub_account(venue: Venue) -> None:
    leader = venue.trader("drain-leader")
    vault = venue.create_vault(leader.address, "20000")
    follower = venue.trader("drain-follower")
    assert follower.exchange.vault_usd_transfer(vault, True, 5_000 * MICRO) == OK
    everyone = (leader.address, vault, follower.address)
    before = parties(venue, *everyone)
    result = leader.exchange.sub_account_transfer(vault, False, 25_000 * MICRO)
    assert refused(result) == "Invalid sub-account transfer."
    assert parties(venue, *everyone) == before


# ------------------------------------------------------------------------------------------ 2. agents


@dataclass
class AgentWorld:
    """A master with a sub-account, a vault it leads, an agent, and a stranger to send to."""

    master: Trader
    agent: Exchange
    sub: str
    vault: str
    destination: str
    token: str

    @property
    def addresses(self) -> tuple[str, ...]:
        return (self.master.address, self.agent.wallet.address, self.sub, self.vault, self.destination)


@pytest.fixture(scope="module")
def agent_world(venue: Venue) -> AgentWorld:
    master = venue.trader("hostile-agent-master")
    created = master.exchange.create_sub_account("hostile-sub")
    assert created["status"] == "ok", created
    sub = created["response"]["data"]
    assert master.exchange.sub_account_transfer(sub, True, 1_000 * MICRO) == OK
    assert master.exchange.usd_class_transfer(500.0, False) == OK  # spot USDC to send
    vault = venue.create_vault(master.address, "20000")
    result, agent_key = master.exchange.approve_agent()
    assert result == OK
    agent = Exchange(eth_account.Account.from_key(agent_key), venue.url, account_address=master.address)
    destination = venue.trader("hostile-agent-destination").address
    return AgentWorld(master, agent, sub, vault, destination, usdc_token(venue))


USER_SIGNED: dict[str, Callable[[AgentWorld], Any]] = {
    "usdSend": lambda w: w.agent.usd_transfer(100.0, w.destination),
    "spotSend": lambda w: w.agent.spot_transfer(100.0, w.destination, w.token),
    "withdraw3": lambda w: w.agent.withdraw_from_bridge(100.0, w.destination),
    "usdClassTransfer to spot": lambda w: w.agent.usd_class_transfer(100.0, False),
    "usdClassTransfer to perp": lambda w: w.agent.usd_class_transfer(100.0, True),
    "sendAsset": lambda w: w.agent.send_asset(w.destination, "", "spot", "USDC", 100.0),
    "approveAgent": lambda w: w.agent.approve_agent()[0],
    "approveBuilderFee": lambda w: w.agent.approve_builder_fee(w.destination, "0.001%"),
    "tokenDelegate": lambda w: w.agent.token_delegate(w.destination, 100, False),
}
L1: dict[str, Callable[[AgentWorld], Any]] = {
    "subAccountTransfer deposit": lambda w: w.agent.sub_account_transfer(w.sub, True, 100 * MICRO),
    "subAccountTransfer withdrawal": lambda w: w.agent.sub_account_transfer(w.sub, False, 100 * MICRO),
    "vaultTransfer deposit": lambda w: w.agent.vault_usd_transfer(w.vault, True, 100 * MICRO),
    "vaultTransfer withdrawal": lambda w: w.agent.vault_usd_transfer(w.vault, False, 100 * MICRO),
    "createSubAccount": lambda w: w.agent.create_sub_account("agent-made"),
}


@pytest.mark.parametrize("kind", list(USER_SIGNED))
def test_agent_cannot_sign_a_user_signed_transfer(venue: Venue, agent_world: AgentWorld, kind: str) -> None:
    before = parties(venue, *agent_world.addresses)
    text = refused(USER_SIGNED[kind](agent_world))
    assert text == f"Must deposit before performing actions. User: {agent_world.agent.wallet.address.lower()}"
    assert parties(venue, *agent_world.addresses) == before


@pytest.mark.parametrize("kind", list(L1))
def test_agent_cannot_move_funds_with_an_l1_action(venue: Venue, agent_world: AgentWorld, kind: str) -> None:
    before = parties(venue, *agent_world.addresses)
    accounts = len(venue.server.exchange.engine.accounts)  # no account made (createSubAccount)
    text = refused(L1[kind](agent_world))
    action_type = kind.split(" ")[0]
    assert text == (
        f"API Wallet {agent_world.agent.wallet.address.lower()} cannot perform {action_type}: "
        "it must be signed by the account itself."
    )
    assert parties(venue, *agent_world.addresses) == before
    assert len(venue.server.exchange.engine.accounts) == accounts


def test_the_master_itself_moves_what_its_agent_may_not(venue: Venue, agent_world: AgentWorld) -> None:
    master, sub, vault = agent_world.master, agent_world.sub, agent_world.vault
    sub_before, master_before = value(venue, sub), value(venue, master.address)
    assert master.exchange.sub_account_transfer(sub, True, 10 * MICRO) == OK
    assert master.exchange.vault_usd_transfer(vault, True, 10 * MICRO) == OK
    assert value(venue, sub) == sub_before + 10
    assert value(venue, master.address) == master_before - 20
    # the agent still trades for the master
    px = round(venue.mid("ETH") * 0.9)
    status = agent_world.agent.order("ETH", True, 0.01, px, GTC)["response"]["data"]["statuses"][0]
    assert [o["oid"] for o in master.open_orders()] == [status["resting"]["oid"]]
    assert agent_world.agent.cancel("ETH", status["resting"]["oid"])["response"]["data"]["statuses"] == [
        "success"
    ]


def test_usd_class_transfer_names_only_a_sub_account_of_the_signer(
    venue: Venue, agent_world: AgentWorld
) -> None:
    master, sub = agent_world.master, agent_world.sub
    on_sub = Exchange(master.wallet, venue.url, vault_address=sub)  # amount "10.0 subaccount:0x.."
    sub_value = value(venue, sub)
    assert on_sub.usd_class_transfer(10.0, False) == OK
    assert value(venue, sub) == sub_value - 10
    stranger = venue.trader("hostile-class-transfer-stranger")
    everyone = (*agent_world.addresses, stranger.address)
    before = parties(venue, *everyone)
    hijack = Exchange(stranger.wallet, venue.url, vault_address=sub)
    assert refused(hijack.usd_class_transfer(10.0, False)) == "Invalid sub-account transfer."
    assert refused(hijack.usd_class_transfer(10.0, True)) == "Invalid sub-account transfer."
    assert parties(venue, *everyone) == before


# ------------------------------------------------------------------------------------------ 3. approvals


def _funded(venue: Venue, v: Trader) -> list[str]:
    venue.fund(v.address, "1000")
    return []


def _sent_everything_away(venue: Venue, v: Trader) -> list[str]:
    venue.fund(v.address, "100")
    sink = wallet_for("approval-sink").address
    assert v.exchange.usd_transfer(100.0, sink) == OK
    return [sink]


def _ordered_then_left(venue: Venue, v: Trader) -> list[str]:
    venue.fund(v.address, "100")
    px = round(venue.mid("ETH") * 0.9)
    oid = v.exchange.order("ETH", True, 0.01, px, GTC)["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert v.exchange.cancel("ETH", oid)["response"]["data"]["statuses"] == ["success"]
    sink = wallet_for("approval-sink").address
    assert v.exchange.usd_transfer(100.0, sink) == OK
    return [sink]


def _traded(venue: Venue, v: Trader) -> list[str]:
    venue.fund(v.address, "1000")
    assert "filled" in v.exchange.market_open("ETH", True, 0.01)["response"]["data"]["statuses"][0]
    assert "filled" in v.exchange.market_close("ETH")["response"]["data"]["statuses"][0]
    return []


def _master_of_a_sub_account(venue: Venue, v: Trader) -> list[str]:
    venue.fund(v.address, "100")
    sub = v.exchange.create_sub_account("parked")["response"]["data"]
    assert v.exchange.sub_account_transfer(sub, True, 100 * MICRO) == OK
    return [sub]


def _vault_leader(venue: Venue, v: Trader) -> list[str]:
    return [venue.create_vault(v.address, "5000")]  # the leader holds nothing outside its vault


def _vault_follower(venue: Venue, v: Trader) -> list[str]:
    vault = venue.create_vault(wallet_for("approval-vault-leader").address, "5000")
    venue.fund(v.address, "100")
    assert v.exchange.vault_usd_transfer(vault, True, 100 * MICRO) == OK
    return [vault]


HISTORIES: dict[str, Callable[[Venue, Trader], list[str]]] = {
    "funded": _funded,
    "deposited then sent everything away": _sent_everything_away,
    "ordered, cancelled and left": _ordered_then_left,
    "traded flat": _traded,
    "master of a funded sub-account": _master_of_a_sub_account,
    "vault leader": _vault_leader,
    "vault follower": _vault_follower,
}


@pytest.mark.parametrize("history", list(HISTORIES))
def test_address_with_its_own_history_cannot_become_an_agent(
    venue: Venue, request: pytest.FixtureRequest, history: str
) -> None:
    approver = venue.trader(f"approver {request.node.name}")
    v = venue.trader(f"v {request.node.name}", usd=None)
    others = HISTORIES[history](venue, v)
    everyone = (approver.address, v.address, *others)
    before = parties(venue, *everyone)

    text = refused(post(venue, approve_body(approver.wallet, v.address)))
    assert text == f"Agent address {v.user} has funds or history of its own and cannot be an API wallet."
    assert refused(post(venue, approve_body(approver.wallet, v.address, "named"))) == text
    assert parties(venue, *everyone) == before

    if history == "funded":  # V still acts for itself, and moves its own funds
        px = round(venue.mid("ETH") * 0.9)
        status = v.exchange.order("ETH", True, 0.01, px, GTC)["response"]["data"]["statuses"][0]
        assert [o["oid"] for o in v.open_orders()] == [status["resting"]["oid"]]
        assert approver.open_orders() == []
        assert v.exchange.usd_transfer(10.0, approver.address) == OK


@pytest.mark.parametrize("kind", ["vault", "sub-account"])
def test_vault_or_sub_account_address_cannot_become_an_agent(venue: Venue, kind: str) -> None:
    approver = venue.trader(f"approver of a {kind}")
    owner = venue.trader(f"owner of a {kind}")
    if kind == "vault":
        target = venue.create_vault(owner.address, "1000")
    else:
        target = owner.exchange.create_sub_account("empty")["response"]["data"]  # never funded
    everyone = (approver.address, owner.address, target)
    before = parties(venue, *everyone)
    text = refused(post(venue, approve_body(approver.wallet, target)))
    assert text == f"Agent address {target} has funds or history of its own and cannot be an API wallet."
    assert parties(venue, *everyone) == before


def test_fresh_address_may_be_approved(venue: Venue) -> None:
    approver = venue.trader("approver of a fresh key")
    fresh = wallet_for("fresh agent key")
    assert post(venue, approve_body(approver.wallet, fresh.address)) == OK
    role = venue.info_request({"type": "userRole", "user": fresh.address.lower()})
    assert role == {"role": "agent", "data": {"user": approver.user}}


# ------------------------------------------------------------------------------------------ 4. amounts

BAD_AMOUNTS = ["1 ", " 1", "1e3", "-1", "+1", "NaN", "inf", "0", "0.0", "", "1.", ".5", "1,5", "0x10",
               "1.000000001", "١", "1\n", "1 subaccount:", "1 subaccount:0x12"]  # fmt: skip
SIX_DECIMALS = ["1.0000001", "1.0000000"]  # perp USDC has 6 decimals (spot USDC 8)


def _usd_send(w: LocalAccount, dest: str, amount: str, token: str) -> dict[str, Any]:
    action = {"type": "usdSend", "destination": dest, "amount": amount, "time": 0}
    return user_signed(w, action, sign_usd_transfer_action)


def _withdraw(w: LocalAccount, dest: str, amount: str, token: str) -> dict[str, Any]:
    action = {"type": "withdraw3", "destination": dest, "amount": amount, "time": 0}
    return user_signed(w, action, sign_withdraw_from_bridge_action)


def _to_spot(w: LocalAccount, dest: str, amount: str, token: str) -> dict[str, Any]:
    action = {"type": "usdClassTransfer", "amount": amount, "toPerp": False, "nonce": 0}
    return user_signed(w, action, sign_usd_class_transfer_action)


def _to_perp(w: LocalAccount, dest: str, amount: str, token: str) -> dict[str, Any]:
    action = {"type": "usdClassTransfer", "amount": amount, "toPerp": True, "nonce": 0}
    return user_signed(w, action, sign_usd_class_transfer_action)


def _spot_send(w: LocalAccount, dest: str, amount: str, token: str) -> dict[str, Any]:
    action = {"type": "spotSend", "destination": dest, "token": token, "amount": amount, "time": 0}
    return user_signed(w, action, sign_spot_transfer_action)


def _send_asset(w: LocalAccount, dest: str, amount: str, token: str) -> dict[str, Any]:
    action = {"type": "sendAsset", "destination": dest, "sourceDex": "", "destinationDex": "spot",
              "token": token, "amount": amount, "fromSubAccount": "", "nonce": 0}  # fmt: skip
    return user_signed(w, action, sign_send_asset_action)


AMOUNT_ACTIONS: dict[str, tuple[Callable[[LocalAccount, str, str, str], dict[str, Any]], list[str]]] = {
    "usdSend": (_usd_send, SIX_DECIMALS),
    "withdraw3": (_withdraw, SIX_DECIMALS),
    "usdClassTransfer to spot": (_to_spot, SIX_DECIMALS),
    "usdClassTransfer to perp": (_to_perp, SIX_DECIMALS),
    "spotSend": (_spot_send, []),
    "sendAsset": (_send_asset, SIX_DECIMALS),
}


@pytest.fixture(scope="module")
def payer(venue: Venue) -> Trader:
    """A wallet with perp and spot USDC."""
    payer = venue.trader("hostile-amount-payer")
    assert payer.exchange.usd_class_transfer(1000.0, False) == OK
    return payer


@pytest.mark.parametrize("kind", list(AMOUNT_ACTIONS))
def test_malformed_amounts_are_refused(venue: Venue, payer: Trader, kind: str) -> None:
    payee = wallet_for(f"hostile-amount-payee {kind}").address
    build, extra = AMOUNT_ACTIONS[kind]
    token = usdc_token(venue)
    before = parties(venue, payer.address, payee)
    for amount in BAD_AMOUNTS + extra:
        refused(post(venue, build(payer.wallet, payee, amount, token)))
        assert parties(venue, payer.address, payee) == before, amount


def test_well_formed_amounts_move_exactly(venue: Venue, payer: Trader) -> None:
    payee = wallet_for("hostile-amount-payee good").address
    start = dec(payer.state()["withdrawable"])
    for amount in ("1", "1.5", "0.000001", "02.250000"):
        assert post(venue, _usd_send(payer.wallet, payee, amount, "")) == OK, amount
    moved = Decimal("1") + Decimal("1.5") + Decimal("0.000001") + Decimal("2.25")
    assert dec(payer.state()["withdrawable"]) == start - moved
    assert value(venue, payee) == moved


@pytest.mark.parametrize("usd", [0, -1, True, 1.5, "1", None])
def test_malformed_usd_integers_are_refused(venue: Venue, agent_world: AgentWorld, usd: Any) -> None:
    master = agent_world.master
    before = parties(venue, *agent_world.addresses)
    for action in (
        {"type": "subAccountTransfer", "subAccountUser": agent_world.sub, "isDeposit": True, "usd": usd},
        {"type": "subAccountTransfer", "subAccountUser": agent_world.sub, "isDeposit": False, "usd": usd},
        {"type": "vaultTransfer", "vaultAddress": agent_world.vault, "isDeposit": True, "usd": usd},
        {"type": "vaultTransfer", "vaultAddress": agent_world.vault, "isDeposit": False, "usd": usd},
    ):
        result = post(venue, signed_body(master.wallet, action))
        if isinstance(usd, int) and not isinstance(usd, bool):
            refused(result)
        else:
            assert result[0] == 422, result
    assert parties(venue, *agent_world.addresses) == before
