"""``ports.AccountState`` over /info, plus the fill and snapshot readers shared with ``leaders``.

Every query uses the account address (the vault/sub-account when trading for one), never the
signer's: an agent's own address has no state on the venue.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

import structlog

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.hyperliquid.budget import AddressBudget
from hyperfollow.adapters.hyperliquid.client import InfoClient, VenueClient
from hyperfollow.adapters.hyperliquid.market import InstrumentDirectory, Streams
from hyperfollow.domain.model import AccountSnapshot, Fill, OrderState, Position, RateLimitStatus

log = structlog.get_logger(__name__)

FILLS_PAGE = 2000  # userFillsByTime answers at most this many fills per request


async def fetch_fills(
    client: InfoClient, address: str, start_ms: int, end_ms: int | None = None
) -> list[Fill]:
    """Every fill of ``address`` from ``start_ms`` on, oldest first, paging past the 2,000-fill limit.

    Each next page starts at the last page's latest time (not after it: fills of that millisecond may
    straddle the pages) and repeats are dropped by fill key. If one millisecond alone holds a whole
    page the cursor has to step past it, and fills beyond the page in that millisecond are lost:
    logged. (The venue keeps only the 10,000 most recent fills retrievable at all.)
    """
    address = address.lower()
    seen: dict[tuple[object, ...], Fill] = {}
    start = start_ms
    while True:
        raw: list[Any] = (
            await client.info(
                {
                    "type": "userFillsByTime",
                    "user": address,
                    "startTime": start,
                    "endTime": end_ms,
                    "aggregateByTime": False,
                }
            )
            or []
        )
        page = parse.fills(address, raw)
        new = [f for f in page if f.key not in seen]
        for f in new:
            seen[f.key] = f
        if len(raw) < FILLS_PAGE or not new:
            break
        last = page[-1].time_ms
        if last <= start:
            log.warning("venue.fills_page_one_ms", address=address, time_ms=last, page=len(raw))
            last = start + 1
        start = last
    return parse.in_position_order(seen.values())


async def fetch_snapshot(client: InfoClient, dexs: Sequence[str], address: str) -> AccountSnapshot:
    """``clearinghouseState`` of the main dex merged with each HIP-3 dex's (each has its own)."""
    address = address.lower()
    raws = await asyncio.gather(
        *(client.info({"type": "clearinghouseState", "user": address, "dex": d}) for d in dexs)
    )
    return parse.merge_snapshots([parse.account_snapshot(address, raw or {}) for raw in raws])


async def fetch_open_orders(client: InfoClient, dexs: Sequence[str], address: str) -> list[OrderState]:
    """``frontendOpenOrders`` of every dex (triggers and cloids included), oldest first."""
    address = address.lower()
    raws = await asyncio.gather(
        *(client.info({"type": "frontendOpenOrders", "user": address, "dex": d}) for d in dexs)
    )
    by_oid: dict[int, OrderState] = {}
    for raw in raws:
        for item in raw or []:
            state = parse.order_state(item)
            by_oid[state.oid] = state
    return sorted(by_oid.values(), key=lambda o: (o.timestamp_ms, o.oid))


class HyperliquidAccount:
    """``ports.AccountState`` of the configured account."""

    def __init__(
        self,
        client: VenueClient,
        instruments: InstrumentDirectory,
        streams: Streams,
        *,
        budget: AddressBudget | None = None,
    ) -> None:
        self._client = client
        self._instruments = instruments
        self._streams = streams
        self._budget = budget
        self._address = client.config.query_address

    @property
    def address(self) -> str:
        return self._address

    async def snapshot(self) -> AccountSnapshot:
        return await fetch_snapshot(self._client, self._instruments.dexs, self._address)

    async def positions(self) -> list[Position]:
        return list((await self.snapshot()).positions)

    async def open_orders(self) -> list[OrderState]:
        return await fetch_open_orders(self._client, self._instruments.dexs, self._address)

    async def equity(self) -> Decimal:
        return (await self.snapshot()).equity

    async def fills_since(self, start_ms: int) -> list[Fill]:
        """Fills from ``start_ms`` on, oldest first."""
        return await fetch_fills(self._client, self._address, start_ms)

    async def rate_limit(self) -> RateLimitStatus:
        """``userRateLimit`` (also refreshes the local action budget)."""
        status = parse.rate_limit(await self._client.info({"type": "userRateLimit", "user": self._address}))
        if self._budget is not None:
            self._budget.update(status)
        return status

    def stream_fills(self, since_ms: int | None = None) -> AsyncIterator[Fill]:
        """Each fill of the account once, oldest first; with ``since_ms`` earlier ones are backfilled."""
        return self._streams.fills([self._address], since_ms)

    def stream_orders(self) -> AsyncIterator[OrderState]:
        """The account's order updates (live; a ``gap`` event follows each reconnect)."""
        return self._streams.orders(self._address)


# ---------------------------------------------------------------------------------------------- who signs


class SignerNotAuthorized(Exception):
    """The signing key cannot trade for the configured account; the message says what to do."""


_APPROVE = (
    "approve it as an agent (API wallet) of {account} in the venue's UI (API page) or with an approveAgent "
    "action signed by {account}, or set HYPERFOLLOW_VENUE__ACCOUNT_ADDRESS to the account that approved it"
)


def signer_problem(
    signer: str,
    account: str,
    signer_role: Any,
    extra_agents: Any,
    now_ms: int,
) -> str | None:
    """Why ``signer`` cannot trade for ``account``, or ``None`` when it can.

    It can when it is the account itself, or an agent whose master (``userRole`` of the signer:
    ``{"role": "agent", "data": {"user": master}}``) is the account and that has not expired (a named
    agent's ``validUntil`` in ``extraAgents`` of the account). Anything else would be refused by the
    venue order by order ("User or API Wallet ... does not exist"), or would trade another account.
    """
    signer, account = signer.lower(), account.lower()
    if signer == account:
        return None
    role = signer_role.get("role") if isinstance(signer_role, dict) else None
    data = signer_role.get("data") if isinstance(signer_role, dict) else None
    master = data.get("user") if role == "agent" and isinstance(data, dict) else None
    if role == "agent" and isinstance(master, str) and master.lower() == account:
        for agent in extra_agents if isinstance(extra_agents, list) else ():
            if not isinstance(agent, dict) or str(agent.get("address", "")).lower() != signer:
                continue
            until = agent.get("validUntil")
            if isinstance(until, int) and not isinstance(until, bool) and until < now_ms:
                return (
                    f"The signing key (agent {signer}, named {agent.get('name')!r}) expired at {until} ms "
                    f"(now {now_ms}): approve a new agent for {account} in the venue's UI or with "
                    "approveAgent."
                )
        return None
    if role == "agent" and isinstance(master, str):
        return (
            f"The signing key is an agent (API wallet) of {master.lower()}, not of {account}: set "
            f"HYPERFOLLOW_VENUE__ACCOUNT_ADDRESS={master.lower()}, or {_APPROVE.format(account=account)}."
        )
    if role in ("user", "vault", "subAccount"):
        return (
            f"The signing key is the own key of account {signer}, not an agent of {account}: its orders "
            f"would trade {signer}. Set HYPERFOLLOW_VENUE__ACCOUNT_ADDRESS={signer} to trade that account, "
            f"or use the key of an agent approved by {account}."
        )
    return (
        f"The signing key's address {signer} is not an agent (API wallet) of {account} on this venue "
        f"(it is unknown there), so every order would be refused: {_APPROVE.format(account=account)}."
    )


def vault_problem(account: str, vault: str, vault_role: Any, vault_leader: str | None) -> str | None:
    """Why ``account`` cannot act for ``vault`` (a vault it leads or a sub-account it owns), or ``None``."""
    account, vault = account.lower(), vault.lower()
    role = vault_role.get("role") if isinstance(vault_role, dict) else None
    data = vault_role.get("data") if isinstance(vault_role, dict) else None
    if role == "subAccount":
        master = data.get("master") if isinstance(data, dict) else None
        if isinstance(master, str) and master.lower() == account:
            return None
        return (
            f"HYPERFOLLOW_VENUE__VAULT_ADDRESS {vault} is a sub-account of {master}, not of {account}: set "
            "the account address to its master, or clear the vault address."
        )
    if role == "vault":
        if vault_leader is not None and vault_leader.lower() == account:
            return None
        return (
            f"HYPERFOLLOW_VENUE__VAULT_ADDRESS {vault} is a vault led by "
            f"{vault_leader or 'another account'}, not by {account}: set the account address to the vault's "
            "leader, or clear the vault address."
        )
    return (
        f"HYPERFOLLOW_VENUE__VAULT_ADDRESS {vault} is neither a vault nor a sub-account on this venue: "
        "check the address, or clear it to trade the account itself."
    )


async def check_signer(client: VenueClient, signer: str, now_ms: int) -> None:
    """Ask the venue (``userRole``, ``extraAgents``, ``vaultDetails``) whether the configured key may trade
    for the configured account (and vault); raises ``SignerNotAuthorized`` with what to do if not.

    ``signer`` is the address the key signs as. Run at start, before anything is sent: an unapproved key
    is otherwise silent until every order is refused. The key never appears in a message (only the
    address it signs as).
    """
    config = client.config
    signer, account = signer.lower(), config.account_address.lower()
    problem: str | None = None
    if signer != account:
        role, agents = await asyncio.gather(
            client.info({"type": "userRole", "user": signer}),
            client.info({"type": "extraAgents", "user": account}),
        )
        problem = signer_problem(signer, account, role, agents, now_ms)
    if problem is None and config.vault_address is not None:
        vault_role = await client.info({"type": "userRole", "user": config.vault_address})
        leader: str | None = None
        if isinstance(vault_role, dict) and vault_role.get("role") == "vault":
            details = await client.info({"type": "vaultDetails", "vaultAddress": config.vault_address})
            found = details.get("leader") if isinstance(details, dict) else None
            leader = found if isinstance(found, str) else None
        problem = vault_problem(account, config.vault_address, vault_role, leader)
    if problem is not None:
        raise SignerNotAuthorized(problem)
