"""Who is acting: envelope checks, signer recovery, agents (API wallets), vaults and nonces.

The body posted to ``/exchange`` never names the account. :class:`Authenticator` recovers the signer
from the signature (:mod:`hyperfollow.signing`), maps an approved agent to its master, checks
``vaultAddress`` against the vaults/sub-accounts the actor leads, enforces the per-signer nonce set and
``expiresAfter``, and returns an :class:`Actor`. Every refusal is an :class:`AuthError` whose message is
the text the venue answers with ``{"status": "err", "response": <message>}``.

Venue texts (``hyperliquid-api.md`` 3.3; community-sourced, not all confirmed against the real venue):

* ``User or API Wallet 0x<signer> does not exist.`` -- L1 action whose signer is neither a known user
  nor a live agent (also what any tampered body produces: it recovers to a random address);
* ``Must deposit before performing actions. User: 0x<signer>`` -- user-signed action (transfer,
  approveAgent, ...) from an address without funds, an agent's included: a user-signed action acts
  for its signer, never for an agent's master (seen from the real venue for an agent-signed
  usdClassTransfer);
* ``Invalid nonce: duplicate nonce <n>``, ``Invalid nonce: nonce too low <n> < <bound>`` (below the
  smallest of the 100 kept nonces, or older than the time window) and ``Invalid nonce: nonce too high
  <n> > <bound>`` (beyond the future window);
* ``Mainnet and testnet require different signature.`` -- user-signed ``hyperliquidChain`` of the other
  network; ``Nonce mismatch.`` -- the action's ``nonce``/``time`` differs from the envelope nonce;
* ``Vault not registered: 0x<vault>`` -- ``vaultAddress`` not led/owned by the actor.

Our own wording, where the venue's is unknown: ``Action expired: expiresAfter <t> < now <now>``;
``API Wallet 0x.. cannot perform <type>: it must be signed by the account itself.`` (an agent signing
a fund-moving L1 action, :data:`MASTER_ONLY_L1_TYPES`, or a user-signed one from an agent address that
holds funds); agent-registry
refusals; envelope-shape errors (:class:`MalformedRequest`, which a server may prefer to answer with
HTTP 422 plain text like the venue's deserialisation errors).

Not covered by a user-signed signature, ``vaultAddress`` and ``expiresAfter`` are ignored for user-signed
actions (the SDK posts its configured vault there even for transfers it signed without one).
None of these classes is thread-safe: they are meant to be driven by the exchange's single sequencer.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from hyperfollow.signing import (
    USER_SIGNED_TYPES,
    SignatureError,
    recover_l1_signer,
    recover_user_signed_signer,
)

__all__ = [
    "DEFAULT_FUTURE_WINDOW_MS",
    "DEFAULT_PAST_WINDOW_MS",
    "MASTER_ONLY_L1_TYPES",
    "Actor",
    "AgentRecord",
    "AgentRegistry",
    "AuthError",
    "Authenticator",
    "MalformedRequest",
    "NonceTracker",
]

DAY_MS: Final = 86_400_000
DEFAULT_PAST_WINDOW_MS: Final = 2 * DAY_MS  # venue docs: nonce within (T - 2 days, T + 1 day)
DEFAULT_FUTURE_WINDOW_MS: Final = DAY_MS
_ADDRESS_RE: Final = re.compile(r"0x[0-9a-fA-F]{40}")
_VALID_UNTIL_RE: Final = re.compile(r"(?P<name>.*) valid_until (?P<ms>\d{1,19})")


class AuthError(Exception):
    """A refused request; ``message`` is the exact text the venue answers with."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MalformedRequest(AuthError):
    """The envelope or signature is not shaped as the venue expects (missing/mistyped fields, bad hex)."""


# ---------------------------------------------------------------------------------------------------------
# Nonces


class NonceTracker:
    """Per-signer nonce sets, as the venue keeps them.

    For each signer the ``capacity`` highest nonces are kept. A new nonce must not be in the set, must
    exceed the smallest kept nonce once the set is full, and must lie strictly inside
    ``(now - past_window_ms, now + future_window_ms)``. Signers are compared lowercase.
    """

    def __init__(
        self,
        capacity: int = 100,
        past_window_ms: int = DEFAULT_PAST_WINDOW_MS,
        future_window_ms: int = DEFAULT_FUTURE_WINDOW_MS,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._past = past_window_ms
        self._future = future_window_ms
        self._heaps: dict[str, list[int]] = {}  # min-heap of kept nonces per signer
        self._sets: dict[str, set[int]] = {}

    def check(self, signer: str, nonce: int, now_ms: int) -> None:
        """Raise :class:`AuthError` if ``nonce`` may not be used by ``signer`` now; record nothing."""
        key = signer.lower()
        used = self._sets.get(key)
        if used is not None:
            if nonce in used:
                raise AuthError(f"Invalid nonce: duplicate nonce {nonce}")
            heap = self._heaps[key]
            if len(heap) >= self._capacity and nonce < heap[0]:
                raise AuthError(f"Invalid nonce: nonce too low {nonce} < {heap[0]}")
        lowest = now_ms - self._past
        if nonce <= lowest:
            raise AuthError(f"Invalid nonce: nonce too low {nonce} < {lowest + 1}")
        highest = now_ms + self._future
        if nonce >= highest:
            raise AuthError(f"Invalid nonce: nonce too high {nonce} > {highest - 1}")

    def record(self, signer: str, nonce: int) -> None:
        """Add ``nonce`` to ``signer``'s set, dropping the smallest one beyond ``capacity``."""
        key = signer.lower()
        heap = self._heaps.setdefault(key, [])
        used = self._sets.setdefault(key, set())
        if nonce in used:
            return
        heapq.heappush(heap, nonce)
        used.add(nonce)
        if len(heap) > self._capacity:
            used.discard(heapq.heappop(heap))

    def check_and_record(self, signer: str, nonce: int, now_ms: int) -> None:
        """Check ``nonce`` for ``signer`` (raising :class:`AuthError`) and record it only if it passes."""
        self.check(signer, nonce, now_ms)
        self.record(signer, nonce)

    def nonces(self, signer: str) -> list[int]:
        """Return ``signer``'s kept nonces, ascending."""
        return sorted(self._heaps.get(signer.lower(), ()))


# ---------------------------------------------------------------------------------------------------------
# Agents (API wallets)


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """An approved agent: ``name`` is ``""`` for the unnamed one; ``valid_until`` is ms or ``None``."""

    address: str
    master: str
    name: str
    valid_until: int | None

    def is_live(self, now_ms: int) -> bool:
        """True while the agent has not expired (it is valid up to and including ``valid_until``)."""
        return self.valid_until is None or now_ms <= self.valid_until


def _split_agent_name(agent_name: str) -> tuple[str, int | None]:
    """``"bot1 valid_until 1767776120478"`` -> ``("bot1", 1767776120478)``; no suffix -> ``(name, None)``."""
    match = _VALID_UNTIL_RE.fullmatch(agent_name)
    if match is None:
        return agent_name, None
    return match["name"], int(match["ms"])


def _address(value: object, what: str) -> str:
    if not isinstance(value, str) or _ADDRESS_RE.fullmatch(value) is None:
        raise AuthError(f"Invalid {what}: {value!r}")
    return value.lower()


class AgentRegistry:
    """approveAgent bookkeeping: per master one unnamed agent and up to ``max_named`` named agents.

    Approving a new unnamed agent replaces the previous unnamed one; approving under an existing name
    replaces that named agent; a new name beyond ``max_named`` live named agents is refused. A name may
    end with ``" valid_until <ms>"`` to make the agent expire; expired agents act for nobody and free
    their slot. An agent address serves one master at a time. Addresses are compared lowercase.
    """

    def __init__(self, max_named: int = 3) -> None:
        self._max_named = max_named
        self._by_agent: dict[str, AgentRecord] = {}
        self._unnamed: dict[str, AgentRecord] = {}
        self._named: dict[str, dict[str, AgentRecord]] = {}

    def approve(self, master: str, agent_address: str, agent_name: str, now_ms: int) -> AgentRecord:
        """Register ``agent_address`` as an agent of ``master`` (the approveAgent action's effect)."""
        master = _address(master, "user address")
        agent = _address(agent_address, "agent address")
        if not isinstance(agent_name, str):
            raise AuthError(f"Invalid agent name: {agent_name!r}")
        if agent == master:
            raise AuthError("An account cannot approve itself as an agent.")
        self._prune(master, now_ms)
        existing = self._by_agent.get(agent)
        if existing is not None and existing.master != master and existing.is_live(now_ms):
            raise AuthError(f"Agent {agent} is already used by another user.")
        name, valid_until = _split_agent_name(agent_name)
        named = self._named.setdefault(master, {})
        if name and name not in named and len(named) >= self._max_named:
            raise AuthError(
                f"Too many named agents: at most {self._max_named} are allowed per account. "
                "Approve under an existing name to replace an agent."
            )
        if existing is not None:
            self._drop(existing)
        replaced = named.get(name) if name else self._unnamed.get(master)
        if replaced is not None:
            self._drop(replaced)
        record = AgentRecord(address=agent, master=master, name=name, valid_until=valid_until)
        if name:
            named[name] = record
        else:
            self._unnamed[master] = record
        self._by_agent[agent] = record
        return record

    def master_of(self, agent_address: str, now_ms: int) -> str | None:
        """Return the master an agent acts for, or ``None`` (not an agent, or expired)."""
        record = self._by_agent.get(agent_address.lower())
        if record is None or not record.is_live(now_ms):
            return None
        return record.master

    def agents_of(self, master: str, now_ms: int | None = None) -> list[AgentRecord]:
        """All agents of ``master`` (unnamed first); only live ones when ``now_ms`` is given."""
        key = master.lower()
        records = [r for r in (self._unnamed.get(key),) if r is not None]
        records.extend(self._named.get(key, {}).values())
        return [r for r in records if now_ms is None or r.is_live(now_ms)]

    def extra_agents(self, master: str, now_ms: int | None = None) -> list[dict[str, Any]]:
        """Named agents in the ``/info`` ``extraAgents`` shape: ``[{name, address, validUntil}]``."""
        return [
            {"name": r.name, "address": r.address, "validUntil": r.valid_until}
            for r in self.agents_of(master, now_ms)
            if r.name
        ]

    def role_of(self, address: str, now_ms: int | None = None) -> dict[str, Any] | None:
        """``{"role": "agent", "data": {"user": master}}`` for an agent address (``userRole`` shape),
        else ``None`` (the caller decides between user, vault, subAccount and missing)."""
        record = self._by_agent.get(address.lower())
        if record is None or (now_ms is not None and not record.is_live(now_ms)):
            return None
        return {"role": "agent", "data": {"user": record.master}}

    def forget_master(self, master: str) -> None:
        """Drop every agent of ``master`` (the venue prunes agents of accounts without funds)."""
        for record in self.agents_of(master):
            self._drop(record)

    def _prune(self, master: str, now_ms: int) -> None:
        for record in self.agents_of(master):
            if not record.is_live(now_ms):
                self._drop(record)

    def _drop(self, record: AgentRecord) -> None:
        if self._by_agent.get(record.address) is record:
            del self._by_agent[record.address]
        if record.name:
            named = self._named.get(record.master, {})
            if named.get(record.name) is record:
                del named[record.name]
        elif self._unnamed.get(record.master) is record:
            del self._unnamed[record.master]


# ---------------------------------------------------------------------------------------------------------
# Authenticator


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: ``signer`` signed; ``user`` is the account (the master for an agent); ``vault`` is
    the vault/sub-account the action applies to, if any. Addresses are lowercase."""

    signer: str
    user: str
    vault: str | None
    is_agent: bool
    action_type: str

    @property
    def account(self) -> str:
        """The account the action applies to: the vault/sub-account if given, else the user."""
        return self.vault or self.user


#: L1-signed actions that move funds or manage the account: an agent (API wallet) may not sign them.
MASTER_ONLY_L1_TYPES: Final = frozenset(
    {"vaultTransfer", "subAccountTransfer", "subAccountSpotTransfer", "createSubAccount"}
)


def _agent_refused(signer: str, action_type: str) -> AuthError:
    return AuthError(
        f"API Wallet {signer} cannot perform {action_type}: it must be signed by the account itself."
    )


def _nonce_field(fields: tuple[tuple[str, str], ...]) -> str:
    names = {name for name, _ in fields}
    return "time" if "time" in names else "nonce"


_USER_NONCE_FIELD: Final[dict[str, str]] = {t: _nonce_field(f) for t, (_, f) in USER_SIGNED_TYPES.items()}


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class _Envelope:
    action: Mapping[str, Any]
    action_type: str
    nonce: int
    signature: Mapping[str, Any]
    vault: str | None
    expires_after: int | None


def _parse_envelope(body: object) -> _Envelope:
    if not isinstance(body, Mapping):
        raise MalformedRequest("Request body must be a JSON object.")
    action = body.get("action")
    if not isinstance(action, Mapping):
        raise MalformedRequest("Missing or invalid field: action (expected an object).")
    action_type = action.get("type")
    if not isinstance(action_type, str):
        raise MalformedRequest("Missing or invalid field: action.type (expected a string).")
    nonce = body.get("nonce")
    if not _is_int(nonce) or not 0 <= nonce < 1 << 64:
        raise MalformedRequest("Missing or invalid field: nonce (expected a non-negative integer).")
    signature = body.get("signature")
    if (
        not isinstance(signature, Mapping)
        or not isinstance(signature.get("r"), str)
        or not isinstance(signature.get("s"), str)
        or not _is_int(signature.get("v"))
    ):
        raise MalformedRequest("Missing or invalid field: signature (expected {r: hex, s: hex, v: int}).")
    vault = body.get("vaultAddress")
    if vault is not None:
        if not isinstance(vault, str) or _ADDRESS_RE.fullmatch(vault) is None:
            raise MalformedRequest(f"Invalid field: vaultAddress (expected a 0x address), got {vault!r}.")
        vault = vault.lower()
    expires_after = body.get("expiresAfter")
    if expires_after is not None and (not _is_int(expires_after) or not 0 <= expires_after < 1 << 64):
        raise MalformedRequest("Invalid field: expiresAfter (expected a millisecond timestamp or null).")
    return _Envelope(action, action_type, nonce, signature, vault, expires_after)


class Authenticator:
    """Turns a posted ``/exchange`` body into an :class:`Actor`, or raises :class:`AuthError`.

    ``is_known_user(address)`` says whether an address is an account that exists (has ever held funds);
    ``vault_leader(address)`` returns the leader of a vault or the master of a sub-account (``None`` if
    the address is neither). Both receive lowercase addresses. On success the signer's nonce is recorded.
    """

    def __init__(
        self,
        is_known_user: Callable[[str], bool],
        vault_leader: Callable[[str], str | None],
        agents: AgentRegistry,
        nonces: NonceTracker,
        is_mainnet: bool,
    ) -> None:
        self._is_known_user = is_known_user
        self._vault_leader = vault_leader
        self._agents = agents
        self._nonces = nonces
        self._is_mainnet = is_mainnet
        self._chain = "Mainnet" if is_mainnet else "Testnet"

    def authenticate(self, body: Mapping[str, Any], now_ms: int) -> Actor:
        """Authenticate one posted body at time ``now_ms`` (ms); see the module docstring for errors."""
        env = _parse_envelope(body)
        if env.action_type in USER_SIGNED_TYPES:
            return self._user_signed(env, now_ms)
        if env.action_type == "multiSig":
            raise AuthError("multiSig actions are not supported by this exchange.")
        return self._l1(env, now_ms)

    def _l1(self, env: _Envelope, now_ms: int) -> Actor:
        try:
            signer = recover_l1_signer(
                env.action, env.signature, env.vault, env.nonce, env.expires_after, self._is_mainnet
            )
        except SignatureError as exc:
            raise MalformedRequest(str(exc)) from exc
        master = self._agents.master_of(signer, now_ms)
        if master is not None:
            user, is_agent = master, True
        elif self._is_known_user(signer):
            user, is_agent = signer, False
        else:
            raise AuthError(f"User or API Wallet {signer} does not exist.")
        if is_agent and env.action_type in MASTER_ONLY_L1_TYPES:
            raise _agent_refused(signer, env.action_type)
        if env.vault is not None:
            leader = self._vault_leader(env.vault)
            if leader is None or leader.lower() != user:
                raise AuthError(f"Vault not registered: {env.vault}")
        if env.expires_after is not None and env.expires_after < now_ms:
            raise AuthError(f"Action expired: expiresAfter {env.expires_after} < now {now_ms}")
        self._nonces.check_and_record(signer, env.nonce, now_ms)
        return Actor(
            signer=signer, user=user, vault=env.vault, is_agent=is_agent, action_type=env.action_type
        )

    def _user_signed(self, env: _Envelope, now_ms: int) -> Actor:
        action = env.action
        if action.get("hyperliquidChain") != self._chain:
            raise AuthError("Mainnet and testnet require different signature.")
        action_nonce = action.get(_USER_NONCE_FIELD[env.action_type])
        if not _is_int(action_nonce) or action_nonce != env.nonce:
            raise AuthError("Nonce mismatch.")
        try:
            signer = recover_user_signed_signer(action, env.signature)
        except SignatureError as exc:
            raise MalformedRequest(str(exc)) from exc
        # A user-signed action is the signer's own: an agent's acts for the agent address, never
        # for its master, and an agent address has no funds of its own.
        if not self._is_known_user(signer):
            raise AuthError(f"Must deposit before performing actions. User: {signer}")
        if self._agents.master_of(signer, now_ms) is not None:
            raise _agent_refused(signer, env.action_type)
        self._nonces.check_and_record(signer, env.nonce, now_ms)
        return Actor(signer=signer, user=signer, vault=None, is_agent=False, action_type=env.action_type)
