"""Who may act for whom: agents (API wallets) approved with approve_agent, and vaults."""

from __future__ import annotations

from decimal import Decimal

import eth_account
from hyperliquid.exchange import Exchange
from support import Trader, Venue, dec, wallet_for

DEFAULT_OK = {"status": "ok", "response": {"type": "default"}}
GTC = {"limit": {"tif": "Gtc"}}


def _agent(venue: Venue, master: Trader, name: str | None = None) -> Exchange:
    result, agent_key = master.exchange.approve_agent(name)
    assert result == DEFAULT_OK
    agent = eth_account.Account.from_key(agent_key)
    return Exchange(agent, venue.url, account_address=master.address)


def test_agent_trades_for_its_master(venue: Venue) -> None:
    master = venue.trader("agent-master")
    agent_exchange = _agent(venue, master)
    agent_address = agent_exchange.wallet.address
    assert master.info.user_role(agent_address) == {"role": "agent", "data": {"user": master.user}}

    px = round(venue.mid("ETH") * 0.9)
    result = agent_exchange.order("ETH", True, 0.01, px, GTC)
    oid = result["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert [o["oid"] for o in master.open_orders()] == [oid]
    assert master.info.open_orders(agent_address) == []  # the agent has no account of its own
    assert agent_exchange.cancel("ETH", oid)["response"]["data"]["statuses"] == ["success"]
    assert master.open_orders() == []

    opened = agent_exchange.market_open("ETH", True, 0.1)
    assert opened["response"]["data"]["statuses"][0]["filled"]["totalSz"] == "0.1"
    assert master.positions()["ETH"]["szi"] == "0.1"
    assert agent_exchange.update_leverage(7, "ETH") == DEFAULT_OK
    assert master.positions()["ETH"]["leverage"] == {"type": "cross", "value": 7}
    closed = agent_exchange.market_close("ETH")  # looks the position up by account_address
    assert closed["response"]["data"]["statuses"][0]["filled"]["totalSz"] == "0.1"
    assert master.positions() == {}


def test_agent_cannot_move_funds(venue: Venue) -> None:
    master = venue.trader("agent-master-funds")
    agent_exchange = _agent(venue, master)
    destination = wallet_for("agent-funds-destination").address
    before = master.snapshot()

    transfer = agent_exchange.usd_transfer(100.0, destination)
    assert transfer["status"] == "err"
    # a user-signed action acts for its signer: the agent address, which holds nothing
    assert (
        transfer["response"]
        == f"Must deposit before performing actions. User: {agent_exchange.wallet.address.lower()}"
    )
    withdraw = agent_exchange.withdraw_from_bridge(100.0, destination)
    assert withdraw["status"] == "err"
    result, _ = agent_exchange.approve_agent()
    assert result["status"] == "err"

    assert master.snapshot() == before
    assert dec(master.info.user_state(destination)["marginSummary"]["accountValue"]) == 0

    # the master itself may
    assert master.exchange.usd_transfer(100.0, destination) == DEFAULT_OK
    assert dec(master.state()["withdrawable"]) == Decimal(9900)
    assert dec(master.info.user_state(destination)["withdrawable"]) == Decimal(100)


def test_named_agents_and_unapproved_wallets(venue: Venue) -> None:
    master = venue.trader("agent-master-named")
    named = _agent(venue, master, "bot1")
    (extra,) = master.info.extra_agents(master.address)
    assert extra["name"] == "bot1"
    assert extra["address"] == named.wallet.address.lower()
    px = round(venue.mid("SOL") * 0.9)
    assert "resting" in named.order("SOL", True, 1, px, GTC)["response"]["data"]["statuses"][0]

    stranger = Exchange(wallet_for("not-an-agent"), venue.url, account_address=master.address)
    before = master.snapshot()
    refused = stranger.order("SOL", True, 1, px, GTC)
    assert refused == {
        "status": "err",
        "response": f"User or API Wallet {stranger.wallet.address.lower()} does not exist.",
    }
    assert master.snapshot() == before


def test_vault_trading_by_its_leader(venue: Venue) -> None:
    leader = venue.trader("vault-leader")
    vault = venue.create_vault(leader.address, "50000")
    assert leader.info.user_role(vault) == {"role": "vault"}
    vault_exchange = Exchange(leader.wallet, venue.url, vault_address=vault)

    px = round(venue.mid("ETH") * 0.9)
    result = vault_exchange.order("ETH", True, 0.02, px, GTC)
    oid = result["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert [o["oid"] for o in leader.info.open_orders(vault)] == [oid]
    assert leader.open_orders() == []
    assert vault_exchange.cancel("ETH", oid)["response"]["data"]["statuses"] == ["success"]

    opened = vault_exchange.market_open("ETH", False, 0.3)
    assert opened["response"]["data"]["statuses"][0]["filled"]["totalSz"] == "0.3"
    vault_positions = leader.info.user_state(vault)["assetPositions"]
    assert [p["position"]["szi"] for p in vault_positions] == ["-0.3"]
    assert leader.positions() == {}
    assert dec(leader.state()["marginSummary"]["accountValue"]) == 10000  # the leader's own money untouched

    closed = vault_exchange.market_close("ETH")  # looks the position up by vault address
    assert closed["response"]["data"]["statuses"][0]["filled"]["totalSz"] == "0.3"
    assert leader.info.user_state(vault)["assetPositions"] == []
    fills = leader.info.user_fills(vault)
    assert [f["dir"] for f in fills] == ["Close Short", "Open Short"]
    expected = Decimal(50000) + sum(dec(f["closedPnl"]) - dec(f["fee"]) for f in fills)
    assert dec(leader.info.user_state(vault)["marginSummary"]["accountValue"]) == expected


def test_vault_refuses_anyone_but_its_leader(venue: Venue) -> None:
    leader = venue.trader("vault-leader-2")
    vault = venue.create_vault(leader.address, "20000")
    outsider = venue.trader("vault-outsider")
    outsider_vault_exchange = Exchange(outsider.wallet, venue.url, vault_address=vault)
    before_vault = leader.info.user_state(vault)
    before_outsider = outsider.snapshot()

    px = round(venue.mid("ETH") * 0.9)
    refused = outsider_vault_exchange.order("ETH", True, 0.02, px, GTC)
    assert refused == {"status": "err", "response": f"Vault not registered: {vault}"}
    assert leader.info.open_orders(vault) == []
    after_vault = leader.info.user_state(vault)
    before_vault.pop("time")
    after_vault.pop("time")
    assert after_vault == before_vault
    assert outsider.snapshot() == before_outsider


def test_agent_of_the_leader_trades_for_the_vault(venue: Venue) -> None:
    leader = venue.trader("vault-leader-3")
    vault = venue.create_vault(leader.address, "20000")
    result, agent_key = leader.exchange.approve_agent()
    assert result == DEFAULT_OK
    agent_vault_exchange = Exchange(eth_account.Account.from_key(agent_key), venue.url, vault_address=vault)
    opened = agent_vault_exchange.market_open("SOL", True, 2)
    assert opened["response"]["data"]["statuses"][0]["filled"]["totalSz"] == "2.0"
    assert [p["position"]["coin"] for p in leader.info.user_state(vault)["assetPositions"]] == ["SOL"]
    assert leader.positions() == {}
