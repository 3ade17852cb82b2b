"""`POST /exchange`: parse, authenticate, then apply one signed action; answer in the venue's envelopes.

Order of work, so that a refused request changes no state: (1) the body and the action are parsed
structurally (a wrong type is the venue's 422 deserialization error), (2) the signature is verified,
the nonce checked and recorded, (3) the action runs. Business rejections are HTTP 200:
``{"status": "err", "response": text}`` for the whole action, or ``{"status": "ok"}`` with a
per-order ``{"error": text}`` inside ``statuses``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hyperfollow.domain.rules import scaled_int, scaled_to_wire
from hyperfollow.exchange import clearing
from hyperfollow.exchange.auth import Actor, AgentRegistry, Authenticator, AuthError, MalformedRequest
from hyperfollow.exchange.book import Trigger
from hyperfollow.exchange.engine import Engine, OrderSpec
from hyperfollow.exchange.info import BadRequest, is_address

_CLOID = re.compile(r"^0x[0-9a-fA-F]{32}$")
_DECIMAL = re.compile(r"^\d+(\.\d+)?$")
_AMOUNT = re.compile(r"[0-9]+(?:\.([0-9]+))?")
USDC_DECIMALS = 6  # perp USDC: the venue's `usd` integers are micro-USD
SPOT_DECIMALS = 8  # spot balances are kept in 1e-8 units
TIFS = ("Gtc", "Ioc", "Alo", "FrontendMarket")
CANCEL_TYPES = ("cancel", "cancelByCloid", "scheduleCancel")


def _bad(text: str) -> BadRequest:
    return BadRequest(f"Failed to deserialize the JSON body into the target type: {text}")


def _get(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _bad(f"field `{key}` has the wrong type")
    return value


# Field types checked before authentication, so that a body the venue cannot deserialize is a 422
# that neither records the nonce nor half-applies a batch (the handlers read these fields afterwards).
_CANCEL_FIELDS: dict[str, tuple[tuple[str, type], ...]] = {
    "cancel": (("a", int), ("o", int)),
    "cancelByCloid": (("asset", int), ("cloid", str)),
}
_ACTION_FIELDS: dict[str, tuple[tuple[str, type], ...]] = {
    "updateLeverage": (("asset", int), ("isCross", bool), ("leverage", int)),
    "updateIsolatedMargin": (("asset", int), ("ntli", int)),
    "approveAgent": (("agentAddress", str),),
    "usdSend": (("destination", str), ("amount", str)),
    "withdraw3": (("amount", str),),
    "usdClassTransfer": (("amount", str), ("toPerp", bool)),
    "spotSend": (("token", str), ("destination", str), ("amount", str)),
    "createSubAccount": (("name", str),),
    "subAccountTransfer": (("subAccountUser", str), ("isDeposit", bool), ("usd", int)),
    "vaultTransfer": (("vaultAddress", str), ("isDeposit", bool), ("usd", int)),
}


def wire_amount(text: str, decimals: int) -> int | None:
    """A transfer amount: a plain positive decimal string ("1", "2.5") with at most ``decimals``
    decimals, scaled by 10**decimals; None for anything else ("1 ", "1e3", "-1", "NaN", "0", "")."""
    match = _AMOUNT.fullmatch(text)
    if match is None or len(text) > 40 or len(match.group(1) or "") > decimals:
        return None
    value = scaled_int(text, decimals)
    return value if value is not None and value > 0 else None


def _check_modify_oid(item: Mapping[str, Any]) -> None:
    oid = item.get("oid")
    if isinstance(oid, bool) or not isinstance(oid, int | str):
        raise _bad("`oid` must be an oid or a cloid")


@dataclass(slots=True)
class WireOrder:
    """An order parsed structurally (strings kept; the grid check needs the instrument)."""

    asset: int
    is_buy: bool
    px: str
    sz: str
    reduce_only: bool
    tif: str | None
    trigger: tuple[bool, str, str] | None  # (isMarket, triggerPx, tpsl)
    cloid: str | None


def parse_order_wire(wire: Any) -> WireOrder:
    if not isinstance(wire, Mapping):
        raise _bad("an order must be an object")
    asset = _get(wire, "a", int)
    is_buy = _get(wire, "b", bool)
    px, sz = _get(wire, "p", str), _get(wire, "s", str)
    if not _DECIMAL.match(px) or not _DECIMAL.match(sz):
        raise _bad("prices and sizes are decimal strings")
    reduce_only = _get(wire, "r", bool)
    kind = _get(wire, "t", Mapping)
    cloid = wire.get("c")
    if cloid is not None and (not isinstance(cloid, str) or not _CLOID.match(cloid)):
        raise _bad("cloid must be 0x followed by 32 hex characters")
    tif, trigger = None, None
    if len(kind) != 1:  # the venue's order type is an enum: exactly one of limit or trigger
        raise _bad("order type must be exactly one of `limit` or `trigger`")
    if "limit" in kind:
        tif = _get(kind["limit"], "tif", str) if isinstance(kind["limit"], Mapping) else None
        if tif not in TIFS:
            raise _bad(f"unknown tif `{tif}`")
    elif "trigger" in kind and isinstance(kind["trigger"], Mapping):
        trig = kind["trigger"]
        tpsl = _get(trig, "tpsl", str)
        trigger_px = _get(trig, "triggerPx", str)
        if tpsl not in ("tp", "sl") or not _DECIMAL.match(trigger_px):
            raise _bad("trigger needs tpsl tp|sl and a decimal triggerPx")
        trigger = (_get(trig, "isMarket", bool), trigger_px, tpsl)
    else:
        raise _bad("order type must be limit or trigger")
    return WireOrder(asset, is_buy, px, sz, reduce_only, tif, trigger, cloid.lower() if cloid else None)


class ExchangeApi:
    """Applies authenticated actions to the engine."""

    def __init__(
        self,
        engine: Engine,
        auth: Authenticator,
        agents: AgentRegistry,
        *,
        auth_clock: Callable[[], int],
        address_budget: int | None = 10_000,
        vault_lockup_ms: int = clearing.VAULT_LOCKUP_MS,
    ) -> None:
        self.engine = engine
        self.vault_lockup_ms = vault_lockup_ms
        self.auth = auth
        self.agents = agents
        self.auth_clock = auth_clock  # nonces and expiresAfter are client wall-clock times
        self.address_budget = address_budget
        self.handlers: dict[str, Callable[[Actor, Mapping[str, Any]], dict[str, Any]]] = {
            "order": self.order,
            "cancel": self.cancel,
            "cancelByCloid": self.cancel_by_cloid,
            "batchModify": self.batch_modify,
            "modify": self.modify,
            "scheduleCancel": self.schedule_cancel,
            "updateLeverage": self.update_leverage,
            "updateIsolatedMargin": self.update_isolated_margin,
            "approveAgent": self.approve_agent,
            "usdSend": self.usd_send,
            "withdraw3": self.withdraw,
            "usdClassTransfer": self.usd_class_transfer,
            "spotSend": self.spot_send,
            "sendAsset": self.send_asset,
            "createSubAccount": self.create_sub_account,
            "subAccountTransfer": self.sub_account_transfer,
            "vaultTransfer": self.vault_transfer,
            "approveBuilderFee": self.default,
            "setReferrer": self.default,
            "noop": self.default,
            "evmUserModify": self.default,
            "agentEnableDexAbstraction": self.default,
            "agentSetAbstraction": self.default,
            "userDexAbstraction": self.default,
            "userSetAbstraction": self.default,
            "tokenDelegate": self.default,
        }

    # ------------------------------------------------------------------ entry point

    def handle(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, Mapping) or not isinstance(body.get("action"), Mapping):
            raise _bad("missing field `action`")
        action = body["action"]
        kind = action.get("type")
        handler = self.handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise _bad(f"unknown variant `{kind}`")
        self._precheck(kind, action)
        try:
            actor = self.auth.authenticate(body, self.auth_clock())
        except MalformedRequest as exc:
            raise _bad(str(exc)) from None
        except AuthError as exc:
            return {"status": "err", "response": str(exc)}
        budget_error = self.spend_budget(actor, kind, action)
        if budget_error:
            return {"status": "err", "response": budget_error}
        return handler(actor, action)

    def _precheck(self, kind: str, action: Mapping[str, Any]) -> None:
        """Structural validation before anything is recorded (nonce included)."""
        if kind == "order":
            orders = _get(action, "orders", list)
            for wire in orders:
                parse_order_wire(wire)
            grouping = action.get("grouping", "na")
            if not (grouping in ("na", "normalTpsl", "positionTpsl") or isinstance(grouping, Mapping)):
                raise _bad("unknown grouping")
        elif kind in ("cancel", "cancelByCloid"):
            for item in _get(action, "cancels", list):
                if not isinstance(item, Mapping):
                    raise _bad("a cancel must be an object")
                for key, key_type in _CANCEL_FIELDS[kind]:
                    _get(item, key, key_type)
        elif kind in ("batchModify",):
            for item in _get(action, "modifies", list):
                if not isinstance(item, Mapping):
                    raise _bad("a modify must be an object")
                _check_modify_oid(item)
                parse_order_wire(item.get("order"))
        elif kind == "modify":
            _check_modify_oid(action)
            parse_order_wire(action.get("order"))
        elif kind == "scheduleCancel":
            when = action.get("time")
            if when is not None and (isinstance(when, bool) or not isinstance(when, int)):
                raise _bad("`time` must be an integer")
        for key, key_type in _ACTION_FIELDS.get(kind, ()):
            _get(action, key, key_type)

    def spend_budget(self, actor: Actor, kind: str, action: Mapping[str, Any]) -> str | None:
        """The address action budget: 10,000 actions + 1 per USDC traded (cancels get more room)."""
        acct = self.engine.account(actor.vault or actor.user)
        cost = len(action.get("orders") or action.get("cancels") or action.get("modifies") or [None])
        acct.n_actions += cost
        if self.address_budget is None:
            return None
        cap = self.address_budget + acct.cum_volume // 1_000_000
        if kind in CANCEL_TYPES:
            cap = min(cap + 100_000, 2 * cap)
        if acct.n_actions > cap:
            acct.n_actions -= cost
            volume = scaled_to_wire(acct.cum_volume, 6)
            return (
                f"Too many cumulative requests sent ({acct.n_actions + cost} > {cap}) for cumulative volume "
                f"traded ${volume}. Place taker orders to free up 1 request per USDC traded."
            )
        return None

    @staticmethod
    def ok(kind: str = "default", data: Any = None) -> dict[str, Any]:
        response: dict[str, Any] = {"type": kind}
        if data is not None:
            response["data"] = data
        return {"status": "ok", "response": response}

    @staticmethod
    def err(text: str) -> dict[str, Any]:
        return {"status": "err", "response": text}

    def _trader(self, actor: Actor) -> str:
        return actor.vault or actor.user

    # ------------------------------------------------------------------ orders

    def to_spec(self, wire: WireOrder) -> OrderSpec | str:
        """Grid conversion; a string is the per-order error."""
        inst = self.engine.insts.get(wire.asset)
        if inst is None:
            return "Invalid asset."
        px = scaled_int(wire.px, inst.px_decimals)
        if px is None:
            return f"Price must be divisible by tick size. asset={wire.asset}"
        sz = scaled_int(wire.sz, inst.sz_decimals)
        if sz is None:
            return f"Order has invalid size. asset={wire.asset}"
        trigger = None
        if wire.trigger is not None:
            is_market, trigger_px, tpsl = wire.trigger
            tpx = scaled_int(trigger_px, inst.px_decimals)
            if tpx is None:
                return f"Invalid TP/SL price. asset={wire.asset}"
            trigger = Trigger(is_market, tpx, tpsl, trigger_px)
        return OrderSpec(
            wire.asset, wire.is_buy, px, sz, wire.reduce_only, wire.tif or "Gtc", wire.cloid, trigger
        )

    def order(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        wires = [parse_order_wire(w) for w in action["orders"]]
        grouping = action.get("grouping", "na")
        grouping = grouping if isinstance(grouping, str) else "na"
        specs = [self.to_spec(w) for w in wires]
        user = self._trader(actor)
        if all(isinstance(s, OrderSpec) for s in specs):
            statuses = self.engine.place_batch(user, [s for s in specs if isinstance(s, OrderSpec)], grouping)
        else:
            statuses = [
                self.engine.place(user, s, grouping if s.trigger else "na")
                if isinstance(s, OrderSpec)
                else {"error": s}
                for s in specs
            ]
        return self.ok("order", {"statuses": statuses})

    def cancel(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        statuses: list[Any] = []
        for item in action["cancels"]:
            asset, oid = _get(item, "a", int), _get(item, "o", int)
            statuses.append(self.engine.cancel(self._trader(actor), asset, oid))
        return self.ok("cancel", {"statuses": statuses})

    def cancel_by_cloid(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        statuses: list[Any] = []
        for item in action["cancels"]:
            asset, cloid = _get(item, "asset", int), _get(item, "cloid", str)
            statuses.append(self.engine.cancel_by_cloid(self._trader(actor), asset, cloid))
        return self.ok("cancel", {"statuses": statuses})

    def _modify_one(self, actor: Actor, item: Mapping[str, Any]) -> Any:
        oid = item["oid"]
        spec = self.to_spec(parse_order_wire(item["order"]))
        if isinstance(spec, str):
            return {"error": spec}
        return self.engine.modify(self._trader(actor), oid.lower() if isinstance(oid, str) else oid, spec)

    def batch_modify(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        return self.ok("order", {"statuses": [self._modify_one(actor, m) for m in action["modifies"]]})

    def modify(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        status = self._modify_one(actor, action)
        if isinstance(status, dict) and "error" in status:
            return self.err(status["error"])
        return self.ok()

    def schedule_cancel(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        when = action.get("time")
        error = clearing.schedule_cancel(self.engine, self._trader(actor), when)
        return self.err(error) if error else self.ok()

    def update_leverage(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        asset, is_cross, lev = (
            _get(action, "asset", int),
            _get(action, "isCross", bool),
            _get(action, "leverage", int),
        )
        error = clearing.update_leverage(self.engine, self._trader(actor), asset, is_cross, lev)
        return self.err(error) if error else self.ok()

    def update_isolated_margin(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        asset, ntli = _get(action, "asset", int), _get(action, "ntli", int)
        error = clearing.update_isolated_margin(self.engine, self._trader(actor), asset, ntli)
        return self.err(error) if error else self.ok()

    # ------------------------------------------------------------------ agents and funds

    def approve_agent(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        agent = _get(action, "agentAddress", str)
        if not is_address(agent):
            return self.err("Invalid agent address.")
        name = action.get("agentName") or ""
        if self._has_own_account(agent.lower()):  # else its owner's orders would land on the approver
            return self.err(
                f"Agent address {agent.lower()} has funds or history of its own and cannot be an API wallet."
            )
        try:
            self.agents.approve(actor.user, agent.lower(), str(name), self.engine.now())
        except AuthError as exc:
            return self.err(str(exc))
        return self.ok()

    def _has_own_account(self, address: str) -> bool:
        """Whether ``address`` is an account of its own: funds, positions, orders, fills, ledger or
        signed actions, a vault or sub-account, or the leader of one."""
        acct = self.engine.accounts.get(address)
        if acct is not None and (
            acct.usdc
            or acct.positions
            or acct.open_orders
            or acct.orders
            or acct.fills
            or acct.ledger
            or acct.cum_volume
            or acct.n_actions
            or any(acct.spot.values())
            or acct.is_vault
            or acct.leader is not None
        ):
            return True
        return clearing.holds_elsewhere(self.engine, address)

    def _move(self, source: str, destination: str, amount: int, kind: str) -> dict[str, Any]:
        e = self.engine
        acct = e.account(source)
        if amount > max(0, e._available(acct)):
            return self.err("Insufficient balance for transfer.")
        acct.usdc -= amount
        e.account(destination).usdc += amount
        now = e.now()
        for user in (source, destination):
            e.accounts[user].ledger.append(
                {
                    "time": now,
                    "hash": e._hash(kind, now, source, destination),
                    "delta": {
                        "type": kind,
                        "user": source,
                        "destination": destination,
                        "token": "USDC",
                        "amount": scaled_to_wire(amount, 6),
                        "usdcValue": scaled_to_wire(amount, 6),
                        "fee": "0.0",
                    },
                }
            )
        return self.ok()

    def usd_send(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        destination = _get(action, "destination", str).lower()
        amount = wire_amount(_get(action, "amount", str), USDC_DECIMALS)
        if not is_address(destination) or amount is None:
            return self.err("Invalid transfer.")
        return self._move(actor.user, destination, amount, "send")

    def withdraw(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        amount = wire_amount(_get(action, "amount", str), USDC_DECIMALS)
        acct = self.engine.account(actor.user)
        if amount is None or amount > max(0, self.engine._available(acct)):
            return self.err("Insufficient balance for withdrawal.")
        acct.usdc -= amount
        return self.ok()

    def usd_class_transfer(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        text, named, sub = _get(action, "amount", str).partition(" subaccount:")
        amount = wire_amount(text, USDC_DECIMALS)
        to_perp = _get(action, "toPerp", bool)
        if amount is None or (named and not is_address(sub)):
            return self.err("Invalid amount.")
        user = actor.user
        if named:  # the SDK names the sub-account inside the amount: "2.5 subaccount:0x.."
            sub_acct = self.engine.accounts.get(sub.lower())
            if sub_acct is None or sub_acct.is_vault or sub_acct.leader != actor.user:
                return self.err("Invalid sub-account transfer.")
            user = sub.lower()
        acct = self.engine.account(user)
        if to_perp:
            if acct.spot.get("USDC", 0) < amount * 100:
                return self.err("Insufficient balance for transfer.")
            acct.spot["USDC"] -= amount * 100
            acct.usdc += amount
        else:
            if amount > max(0, self.engine._available(acct)):
                return self.err("Insufficient balance for transfer.")
            acct.usdc -= amount
            acct.spot["USDC"] = acct.spot.get("USDC", 0) + amount * 100
        return self.ok()

    def _token_decimals(self, token: str) -> int | None:
        for entry in self.engine.universe.spot["tokens"]:
            if entry["name"] == token:
                return min(int(entry["weiDecimals"]), SPOT_DECIMALS)
        return None

    def spot_send(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        token = _get(action, "token", str).split(":")[0]
        destination = _get(action, "destination", str).lower()
        decimals = self._token_decimals(token)
        amount = None if decimals is None else wire_amount(_get(action, "amount", str), decimals)
        acct = self.engine.account(actor.user)
        if amount is None or not is_address(destination):
            return self.err("Invalid transfer.")
        amount *= 10 ** (SPOT_DECIMALS - (decimals or 0))
        if acct.spot.get(token, 0) < amount:
            return self.err("Insufficient balance for transfer.")
        acct.spot[token] -= amount
        dest = self.engine.account(destination)
        dest.spot[token] = dest.spot.get(token, 0) + amount
        return self.ok()

    def send_asset(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        """Checked like any transfer; moving between dexes is not simulated (one USDC balance)."""
        destination = _get(action, "destination", str)
        token = _get(action, "token", str).split(":")[0]
        decimals = USDC_DECIMALS if token == "USDC" else self._token_decimals(token)
        amount = None if decimals is None else wire_amount(_get(action, "amount", str), decimals)
        if not is_address(destination) or amount is None:
            return self.err("Invalid transfer.")
        return self.ok()

    def create_sub_account(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        name = _get(action, "name", str)
        e = self.engine
        address = "0x" + e._hash("sub", actor.user, name)[2:42]
        sub = e.account(address)
        sub.leader = actor.user
        return self.ok("createSubAccount", address)

    def sub_account_transfer(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        sub = _get(action, "subAccountUser", str).lower()
        is_deposit, usd = _get(action, "isDeposit", bool), _get(action, "usd", int)
        sub_acct = self.engine.accounts.get(sub)
        if sub_acct is None or sub_acct.is_vault or sub_acct.leader != actor.user or usd <= 0:
            return self.err("Invalid sub-account transfer.")
        source, destination = (actor.user, sub) if is_deposit else (sub, actor.user)
        return self._move(source, destination, usd, "subAccountTransfer")

    def vault_transfer(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        """Deposit into or withdraw from a vault: the caller's shares move with the money."""
        vault = _get(action, "vaultAddress", str).lower()
        is_deposit, usd = _get(action, "isDeposit", bool), _get(action, "usd", int)
        acct = self.engine.accounts.get(vault)
        if acct is None or not acct.is_vault:
            return self.err(f"Vault not registered: {vault}")
        if usd <= 0:
            return self.err("Invalid vault transfer amount.")
        plan = clearing.plan_vault_transfer(self.engine, acct, actor.user, is_deposit, usd)
        if isinstance(plan, str):
            return self.err(plan)
        source, destination = (actor.user, vault) if is_deposit else (vault, actor.user)
        result = self._move(source, destination, usd, "vaultDeposit" if is_deposit else "vaultWithdraw")
        if result["status"] == "ok":
            clearing.book_vault_shares(acct, actor.user, plan, self.engine.now(), self.vault_lockup_ms)
        return result

    def default(self, actor: Actor, action: Mapping[str, Any]) -> dict[str, Any]:
        return self.ok()
