"""`POST /info`: every request type the official SDK sends, answered in the venue's shapes.

Prices and sizes are strings, times ms integers, addresses lowercase. Unknown users get the empty
answers the venue gives them. A malformed request raises ``BadRequest`` (the server answers 422
with plain text, which the SDK turns into a ``ClientError``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeGuard

from hyperfollow.domain.rules import Instrument, scaled_to_wire
from hyperfollow.exchange.accounts import Account, Position, liquidation_px
from hyperfollow.exchange.book import Order
from hyperfollow.exchange.clearing import funding_rate, vault_equities
from hyperfollow.exchange.engine import Engine

MAX_FILLS = 2000
MAX_TIME_RANGE_ITEMS = 500
L2_LEVELS = 20


DESERIALIZE = "Failed to deserialize the JSON body into the target type"
MAX_ERROR_TEXT = 240
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class BadRequest(Exception):
    """A request the venue refuses to deserialize (HTTP 422, plain-text body)."""


def bad_request(detail: str) -> BadRequest:
    """The venue's 422 for a body that does not fit the request type."""
    return BadRequest(f"{DESERIALIZE}: {detail}")


def error_text(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """``text`` safe to send back: characters that are not printable (controls, lone surrogates,
    bidirectional overrides, line separators) escaped, at most ``limit`` characters. Error texts quote
    what the client sent; this keeps a hostile input from growing the answer or breaking its encoding."""
    safe = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return safe if len(safe) <= limit else safe[: limit - 3] + "..."


def is_address(value: Any) -> TypeGuard[str]:
    """``0x`` and 40 ASCII hex digits (either case): the only address form the venue deserializes."""
    return isinstance(value, str) and _ADDRESS.fullmatch(value) is not None


class AgentDirectory(Protocol):
    def extra_agents(self, master: str, now_ms: int | None = None) -> list[dict[str, Any]]: ...
    def role_of(self, address: str, now_ms: int | None = None) -> dict[str, Any] | None: ...


def _str(req: Mapping[str, Any], key: str) -> str:
    value = req.get(key)
    if not isinstance(value, str):
        raise bad_request(f"missing field `{key}`")
    return value


def _address_field(req: Mapping[str, Any], key: str) -> str:
    """A required address field, lowercased (the venue's echo and our account keys)."""
    value = _str(req, key)
    if not is_address(value):
        raise bad_request(f"{key}: invalid address")
    return value.lower()


def _user(req: Mapping[str, Any]) -> str:
    return _address_field(req, "user")


def _needs_user(answer: Any) -> Callable[[Mapping[str, Any]], Any]:
    """A handler of a request type that carries a `user` but whose answer does not depend on it."""

    def handler(req: Mapping[str, Any]) -> Any:
        _user(req)
        return answer() if callable(answer) else answer

    return handler


def _int(req: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = req.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"`{key}` must be an integer")
    return value


def _end_time(req: Mapping[str, Any]) -> int:
    """The optional `endTime` (absent or null: no end)."""
    end = req.get("endTime")
    if end is None:
        return 2**63
    if isinstance(end, bool) or not isinstance(end, int):
        raise bad_request("`endTime` must be an integer")
    return end


def _usd(micro: int) -> str:
    return scaled_to_wire(micro, 6)


class InfoApi:
    """Dispatches `/info` requests on their ``type``."""

    def __init__(
        self,
        engine: Engine,
        agents: AgentDirectory | None = None,
        agent_clock: Callable[[], int] | None = None,
    ) -> None:
        self.engine = engine
        self.agents = agents
        # the clock agents expire on (the authenticator's: wall ms); None shows expired agents too
        self.agent_clock = agent_clock
        self.handlers: dict[str, Callable[[Mapping[str, Any]], Any]] = {
            "meta": self.meta,
            "metaAndAssetCtxs": self.meta_and_ctxs,
            "spotMeta": lambda r: engine.universe.spot,
            "spotMetaAndAssetCtxs": self.spot_meta_and_ctxs,
            "perpDexs": lambda r: engine.universe.dexs,
            "allMids": self.all_mids,
            "clearinghouseState": self.clearinghouse_state,
            "spotClearinghouseState": self.spot_state,
            "openOrders": self.open_orders,
            "frontendOpenOrders": self.frontend_open_orders,
            "userFills": self.user_fills,
            "userFillsByTime": self.user_fills_by_time,
            "l2Book": self.l2_book,
            "candleSnapshot": self.candle_snapshot,
            "fundingHistory": self.funding_history,
            "userFunding": self.user_funding,
            "userNonFundingLedgerUpdates": self.ledger,
            "orderStatus": self.order_status,
            "historicalOrders": self.historical_orders,
            "userRateLimit": self.user_rate_limit,
            "userFees": self.user_fees,
            "portfolio": self.portfolio,
            "userRole": self.user_role,
            "extraAgents": self.extra_agents,
            "vaultDetails": self.vault_details,
            "recentTrades": self.recent_trades,
            "activeAssetData": self.active_asset_data,
            "predictedFundings": self.predicted_fundings,
            "exchangeStatus": lambda r: {"time": engine.now(), "specialStatuses": None},
            "subAccounts": _needs_user(None),
            "userVaultEquities": lambda r: vault_equities(self.engine, _user(r)),
            "userTwapSliceFills": _needs_user(list),
            "referral": self.referral,
            "maxBuilderFee": self.max_builder_fee,
            "delegations": _needs_user(list),
            "delegatorSummary": _needs_user(
                lambda: {
                    "delegated": "0.0",
                    "undelegated": "0.0",
                    "totalPendingWithdrawal": "0.0",
                    "nPendingWithdrawals": 0,
                }
            ),
            "delegatorRewards": _needs_user(list),
            "delegatorHistory": _needs_user(list),
            "userToMultiSigSigners": _needs_user(None),
            "userDexAbstraction": _needs_user(False),
            "userAbstraction": _needs_user("disabled"),
            "perpDeployAuctionStatus": self.auction_status,
        }

    def handle(self, req: Any) -> Any:
        if not isinstance(req, Mapping):
            raise bad_request("expected an object")
        kind = req.get("type")
        handler = self.handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise bad_request(f"unknown variant `{error_text(str(kind), 64)}`")
        return handler(req)

    # ------------------------------------------------------------------ markets

    def _dex(self, req: Mapping[str, Any]) -> str:
        dex = req.get("dex") or ""
        if not isinstance(dex, str) or dex not in self.engine.universe.metas:
            raise bad_request(f"unknown dex `{error_text(str(dex), 64)}`")
        return dex

    def meta(self, req: Mapping[str, Any]) -> Any:
        return self.engine.universe.metas[self._dex(req)]

    def _asset_ctx(self, inst: Instrument) -> dict[str, Any]:
        e = self.engine
        mark = e.marks.get(inst.asset)
        if mark is None:
            return {
                "funding": "0.0",
                "openInterest": "0.0",
                "prevDayPx": "0.0",
                "dayNtlVlm": "0.0",
                "premium": None,
                "oraclePx": "0.0",
                "markPx": "0.0",
                "midPx": None,
                "impactPxs": None,
                "dayBaseVlm": "0.0",
            }
        book = e.books[inst.asset]
        bid, ask = book.best_bid(), book.best_ask()
        ntl, base = e.day_stats.get(inst.asset, [0, 0])
        oracle = e.oracles.get(inst.asset, mark)
        mid = e.mid(inst.asset)
        oi = (
            sum(abs(a.positions[inst.asset].szi) for a in e.accounts.values() if inst.asset in a.positions)
            // 2
        )
        return {
            "funding": f"{funding_rate(e, inst.asset):.8f}",
            "openInterest": e.sz_wire(inst, oi),
            "prevDayPx": e.px_wire(inst, e.prev_day_px.get(inst.asset, mark)),
            "dayNtlVlm": _usd(ntl),
            "premium": f"{((mid or oracle) - oracle) / oracle:.8f}",
            "oraclePx": e.px_wire(inst, oracle),
            "markPx": e.px_wire(inst, mark),
            "midPx": e.px_wire(inst, mid) if mid is not None else None,
            "impactPxs": [e.px_wire(inst, bid), e.px_wire(inst, ask)] if bid and ask else None,
            "dayBaseVlm": e.sz_wire(inst, base),
        }

    def meta_and_ctxs(self, req: Mapping[str, Any]) -> Any:
        dex = self._dex(req)
        meta = self.engine.universe.metas[dex]
        insts = [self.engine.universe.by_coin[u["name"]] for u in meta["universe"]]
        return [meta, [self._asset_ctx(i) for i in insts]]

    def spot_meta_and_ctxs(self, req: Mapping[str, Any]) -> Any:
        e = self.engine
        ctxs = []
        for pair in e.universe.spot["universe"]:
            inst = e.universe.by_coin[pair["name"]]
            ctx = self._asset_ctx(inst)
            ctxs.append(
                {
                    "dayNtlVlm": ctx["dayNtlVlm"],
                    "markPx": ctx["markPx"],
                    "midPx": ctx["midPx"],
                    "prevDayPx": ctx["prevDayPx"],
                    "circulatingSupply": "1000000000.0",
                    "coin": inst.coin,
                    "totalSupply": "1000000000.0",
                    "dayBaseVlm": ctx["dayBaseVlm"],
                }
            )
        return [e.universe.spot, ctxs]

    def all_mids(self, req: Mapping[str, Any]) -> dict[str, str]:
        dex = self._dex(req)
        e = self.engine
        out = {}
        for asset in e.marks:
            inst = e.insts[asset]
            if inst.dex == dex and (not inst.is_spot or dex == ""):
                mid = e.mid(asset)
                if mid is not None:
                    out[inst.coin] = e.px_wire(inst, mid)
        return out

    def _coin(self, req: Mapping[str, Any]) -> Instrument | None:
        coin = _str(req, "coin")
        return self.engine.universe.by_coin.get(coin)

    def l2_book(self, req: Mapping[str, Any]) -> Any:
        inst = self._coin(req)
        return None if inst is None else self.book_wire(inst)

    def book_wire(self, inst: Instrument) -> dict[str, Any]:
        e = self.engine
        book = e.books[inst.asset]
        levels = [
            [
                {"px": e.px_wire(inst, px), "sz": e.sz_wire(inst, sz), "n": n}
                for px, sz, n in book.depth(side, L2_LEVELS)
            ]
            for side in (True, False)
        ]
        return {"coin": inst.coin, "time": e.now(), "levels": levels}

    def recent_trades(self, req: Mapping[str, Any]) -> Any:
        inst = self._coin(req)
        if inst is None:
            return []
        return [self.engine.trade_wire(t) for t in list(self.engine.trades[inst.asset])[-100:][::-1]]

    def candle_snapshot(self, req: Mapping[str, Any]) -> Any:
        inner = req.get("req")
        if not isinstance(inner, Mapping):
            raise BadRequest("Failed to deserialize the JSON body into the target type: missing field `req`")
        coin, interval = _str(inner, "coin"), _str(inner, "interval")
        return self.engine.candles.snapshot(coin, interval, _int(inner, "startTime"), _int(inner, "endTime"))

    def funding_history(self, req: Mapping[str, Any]) -> Any:
        inst = self._coin(req)
        start, end = _int(req, "startTime"), _end_time(req)
        if inst is None:
            return []
        items = [f for f in self.engine.funding_history[inst.asset] if start <= f["time"] <= end]
        return items[:MAX_TIME_RANGE_ITEMS]

    def predicted_fundings(self, req: Mapping[str, Any]) -> Any:
        e = self.engine
        return [
            [
                e.insts[a].coin,
                [
                    [
                        "HlPerp",
                        {"fundingRate": f"{funding_rate(e, a):.8f}", "nextFundingTime": e.next_funding_ms},
                    ]
                ],
            ]
            for a in e.marks
            if not e.insts[a].is_spot
        ]

    def auction_status(self, req: Mapping[str, Any]) -> Any:
        now = self.engine.now()
        return {
            "startTimeSeconds": now // 1000,
            "durationSeconds": 111600,
            "startGas": "500.0",
            "currentGas": "500.0",
            "endGas": None,
        }

    # ------------------------------------------------------------------ users

    def _account(self, req: Mapping[str, Any]) -> Account | None:
        return self.engine.accounts.get(_user(req))

    def _position_wire(
        self, acct: Account, pos: Position, cross_value: int, cross_maint: int
    ) -> dict[str, Any]:
        e = self.engine
        inst = e.insts[pos.asset]
        mark = e.marks[pos.asset]
        upnl = pos.upnl(mark)
        value = pos.value(mark)
        margin_used = -(-value // pos.leverage) if pos.is_cross else pos.margin + upnl
        if pos.is_cross:
            available = cross_value - cross_maint
        else:
            available = pos.margin + upnl - value // (2 * inst.max_leverage)
        liq = liquidation_px(pos, inst, mark, available)
        leverage: dict[str, Any] = {"type": "cross" if pos.is_cross else "isolated", "value": pos.leverage}
        if not pos.is_cross:
            leverage["rawUsd"] = _usd(pos.margin - (pos.entry_ntl if pos.szi > 0 else -pos.entry_ntl))
        entry_px = pos.entry_ntl * 10**inst.px_decimals // abs(pos.szi)  # in 10^-(2*px_decimals)
        roe = upnl / (pos.entry_ntl / pos.leverage) if pos.entry_ntl else 0.0
        return {
            "type": "oneWay",
            "position": {
                "coin": inst.coin,
                "szi": e.sz_wire(inst, pos.szi),
                "leverage": leverage,
                "entryPx": scaled_to_wire(entry_px, 2 * inst.px_decimals),
                "positionValue": _usd(value),
                "unrealizedPnl": _usd(upnl),
                "returnOnEquity": f"{roe:.10f}".rstrip("0").rstrip("."),
                "liquidationPx": None
                if liq is None
                else f"{liq / 10**inst.px_decimals:.{inst.px_decimals}f}",
                "marginUsed": _usd(margin_used),
                "maxLeverage": inst.max_leverage,
                "cumFunding": {
                    "allTime": _usd(pos.funding_all),
                    "sinceOpen": _usd(pos.funding_open),
                    "sinceChange": _usd(pos.funding_change),
                },
            },
        }

    def clearinghouse_state(self, req: Mapping[str, Any]) -> Any:
        e = self.engine
        dex = self._dex(req)
        acct = self._account(req)
        now = e.now()
        if acct is None:
            zero = {
                "accountValue": "0.0",
                "totalNtlPos": "0.0",
                "totalRawUsd": "0.0",
                "totalMarginUsed": "0.0",
            }
            return {
                "marginSummary": zero,
                "crossMarginSummary": dict(zero),
                "crossMaintenanceMarginUsed": "0.0",
                "withdrawable": "0.0",
                "assetPositions": [],
                "time": now,
            }
        cross_value, cross_ntl, cross_used, cross_maint = acct.cross_summary(e.marks, e.insts)
        open_positions = [p for p in acct.positions.values() if p.szi]
        positions = [p for p in open_positions if e.insts[p.asset].dex == dex]
        iso_margin = sum(p.margin for p in positions if not p.is_cross)
        if dex:
            # A builder dex has its own clearinghouse: only its (isolated) positions and their margin.
            # The account's USDC lives on the main dex, so summing every dex's accountValue gives the
            # account's total, as on the real venue.
            iso_value = sum(p.margin + p.upnl(e.marks[p.asset]) for p in positions)
            ntl = sum(p.value(e.marks[p.asset]) for p in positions)
            none_usd = _usd(0)
            return {
                "marginSummary": {
                    "accountValue": _usd(iso_value),
                    "totalNtlPos": _usd(ntl),
                    "totalRawUsd": _usd(iso_margin),
                    "totalMarginUsed": _usd(iso_margin),
                },
                "crossMarginSummary": {
                    "accountValue": none_usd,
                    "totalNtlPos": none_usd,
                    "totalRawUsd": none_usd,
                    "totalMarginUsed": none_usd,
                },
                "crossMaintenanceMarginUsed": none_usd,
                "withdrawable": none_usd,
                "assetPositions": [self._position_wire(acct, p, cross_value, cross_maint) for p in positions],
                "time": now,
            }
        other_dex_value = sum(
            p.margin + p.upnl(e.marks[p.asset]) for p in open_positions if e.insts[p.asset].dex
        )
        total_ntl = sum(p.value(e.marks[p.asset]) for p in positions)
        raw = acct.usdc - sum((p.entry_ntl if p.szi > 0 else -p.entry_ntl) for p in positions if p.is_cross)
        return {
            "marginSummary": {
                "accountValue": _usd(acct.total_value(e.marks) - other_dex_value),
                "totalNtlPos": _usd(total_ntl),
                "totalRawUsd": _usd(raw + iso_margin),
                "totalMarginUsed": _usd(cross_used + iso_margin),
            },
            "crossMarginSummary": {
                "accountValue": _usd(cross_value),
                "totalNtlPos": _usd(cross_ntl),
                "totalRawUsd": _usd(raw),
                "totalMarginUsed": _usd(cross_used),
            },
            "crossMaintenanceMarginUsed": _usd(cross_maint),
            "withdrawable": _usd(max(0, cross_value - cross_used - acct.order_margin)),
            "assetPositions": [self._position_wire(acct, p, cross_value, cross_maint) for p in positions],
            "time": now,
        }

    def spot_state(self, req: Mapping[str, Any]) -> Any:
        acct = self._account(req)
        if acct is None:
            return {"balances": []}
        tokens = {t["name"]: t["index"] for t in self.engine.universe.spot["tokens"]}
        balances = []
        for name, amount in acct.spot.items():
            if amount or name == "USDC":
                balances.append(
                    {
                        "coin": name,
                        "token": tokens.get(name, 0),
                        "total": scaled_to_wire(amount, 8),
                        "hold": "0.0",
                        "entryNtl": "0.0",
                    }
                )
        return {"balances": balances}

    def _orders(self, req: Mapping[str, Any]) -> list[Order]:
        acct = self._account(req)
        if acct is None:
            return []
        dex = self._dex(req)
        return [o for o in acct.open_orders.values() if self.engine.insts[o.asset].dex == dex]

    def open_orders(self, req: Mapping[str, Any]) -> Any:
        e = self.engine
        return [e.order_wire(e.insts[o.asset], o) for o in self._orders(req)]

    def frontend_order(self, order: Order) -> dict[str, Any]:
        e = self.engine
        inst = e.insts[order.asset]
        out = e.order_wire(inst, order)
        trig = order.trigger
        if trig is None:
            kind = "Limit" if order.tif != "FrontendMarket" else "Market"
            condition, trigger_px = "N/A", "0.0"
        else:
            kind = ("Take Profit" if trig.tpsl == "tp" else "Stop") + (
                " Market" if trig.is_market else " Limit"
            )
            above = (trig.tpsl == "tp") != order.is_buy
            trigger_px = e.px_wire(inst, trig.px)
            condition = f"Price {'above' if above else 'below'} {trigger_px}"
        out.update(
            {
                "triggerCondition": condition,
                "isTrigger": trig is not None,
                "triggerPx": trigger_px,
                "children": [self.frontend_order(c) for c in order.children or []],
                "isPositionTpsl": order.is_position_tpsl,
                "reduceOnly": order.reduce_only,
                "orderType": kind,
                "tif": None if trig is not None else order.tif,
                "cloid": order.cloid,
            }
        )
        return out

    def frontend_open_orders(self, req: Mapping[str, Any]) -> Any:
        return [self.frontend_order(o) for o in self._orders(req)]

    def user_fills(self, req: Mapping[str, Any]) -> Any:
        acct = self._account(req)
        if acct is None:
            return []
        return [self.engine.fill_wire(f) for f in list(acct.fills)[-MAX_FILLS:][::-1]]

    def user_fills_by_time(self, req: Mapping[str, Any]) -> Any:
        acct = self._account(req)
        start, stop = _int(req, "startTime"), _end_time(req)
        if acct is None:
            return []
        picked = [f for f in acct.fills if start <= f.time <= stop][:MAX_FILLS]
        return [self.engine.fill_wire(f) for f in picked]

    def user_funding(self, req: Mapping[str, Any]) -> Any:
        acct = self._account(req)
        start, end = _int(req, "startTime"), _end_time(req)
        if acct is None:
            return []
        return [
            {
                "time": f["time"],
                "hash": "0x" + "0" * 64,
                "delta": {"type": "funding", **{k: v for k, v in f.items() if k != "time"}},
            }
            for f in acct.fundings
            if start <= f["time"] <= end
        ][:MAX_TIME_RANGE_ITEMS]

    def ledger(self, req: Mapping[str, Any]) -> Any:
        acct = self._account(req)
        start, end = _int(req, "startTime"), _end_time(req)
        return (
            []
            if acct is None
            else [x for x in acct.ledger if start <= x["time"] <= end][:MAX_TIME_RANGE_ITEMS]
        )

    def _status_wire(self, order: Order) -> dict[str, Any]:
        return {
            "order": self.frontend_order(order),
            "status": order.status,
            "statusTimestamp": order.status_ts,
        }

    def order_status(self, req: Mapping[str, Any]) -> Any:
        acct = self._account(req)
        key = req.get("oid")
        if isinstance(key, bool) or not isinstance(key, int | str):
            raise BadRequest(
                "Failed to deserialize the JSON body into the target type: `oid` must be an oid or cloid"
            )
        # Every order the venue saw stays queryable here (historicalOrders keeps only the latest).
        order = self.engine.find_order(acct.user, key) if acct is not None else None
        if order is not None:
            return {"status": "order", "order": self._status_wire(order)}
        return {"status": "unknownOid"}

    def historical_orders(self, req: Mapping[str, Any]) -> Any:
        acct = self._account(req)
        if acct is None:
            return []
        orders = list(acct.open_orders.values()) + list(acct.orders)[::-1]
        return [self._status_wire(o) for o in orders[:MAX_FILLS]]

    def user_rate_limit(self, req: Mapping[str, Any]) -> Any:
        acct = self._account(req)
        volume = acct.cum_volume if acct else 0
        used = acct.n_actions if acct else 0
        return {
            "cumVlm": _usd(volume),
            "nRequestsUsed": used,
            "nRequestsCap": 10_000 + volume // 1_000_000,
            "nRequestsSurplus": 0,
        }

    def max_builder_fee(self, req: Mapping[str, Any]) -> Any:
        _user(req)
        _address_field(req, "builder")
        return 0  # builder fees are accepted, never charged

    def user_fees(self, req: Mapping[str, Any]) -> Any:
        _user(req)
        return {
            "dailyUserVlm": [],
            "feeSchedule": {
                "cross": "0.00045",
                "add": "0.00015",
                "spotCross": "0.0007",
                "spotAdd": "0.0004",
                "tiers": {"vip": [], "mm": []},
                "referralDiscount": "0.04",
                "stakingDiscountTiers": [],
            },
            "userCrossRate": "0.00045",
            "userAddRate": "0.00015",
            "userSpotCrossRate": "0.0007",
            "userSpotAddRate": "0.0004",
            "activeReferralDiscount": "0.0",
            "trial": None,
            "feeTrialReward": "0.0",
            "nextTrialAvailableTimestamp": None,
            "stakingLink": None,
            "activeStakingDiscount": {"bpsOfMaxSupply": "0.0", "discount": "0.0"},
        }

    def portfolio(self, req: Mapping[str, Any]) -> Any:
        acct = self._account(req)
        e = self.engine
        value = _usd(acct.total_value(e.marks)) if acct else "0.0"
        volume = _usd(acct.cum_volume) if acct else "0.0"
        point = {"accountValueHistory": [[e.now(), value]], "pnlHistory": [[e.now(), "0.0"]], "vlm": volume}
        periods = ["day", "week", "month", "allTime", "perpDay", "perpWeek", "perpMonth", "perpAllTime"]
        return [[p, dict(point)] for p in periods]

    def _agent_now(self) -> int | None:
        return self.agent_clock() if self.agent_clock is not None else None

    def user_role(self, req: Mapping[str, Any]) -> Any:
        """An expired agent is no agent any more; a sub-account names its master."""
        user = _user(req)
        if self.agents is not None:
            role = self.agents.role_of(user, self._agent_now())
            if role is not None:
                return role
        acct = self.engine.accounts.get(user)
        if acct is None:
            return {"role": "missing"}
        if acct.is_vault:
            return {"role": "vault"}
        if acct.leader is not None:
            return {"role": "subAccount", "data": {"master": acct.leader}}
        return {"role": "user"}

    def extra_agents(self, req: Mapping[str, Any]) -> Any:
        user = _user(req)
        return self.agents.extra_agents(user, self._agent_now()) if self.agents is not None else []

    def vault_details(self, req: Mapping[str, Any]) -> Any:
        """The identity part of ``vaultDetails`` (name, address, leader); ``null`` for a non-vault."""
        vault = _str(req, "vaultAddress").lower()
        acct = self.engine.accounts.get(vault)
        if acct is None or not acct.is_vault or acct.leader is None:
            return None
        return {
            "name": vault, "vaultAddress": vault, "leader": acct.leader, "description": "",
            "portfolio": [], "followers": [], "isClosed": False, "allowDeposits": True,
        }  # fmt: skip

    def referral(self, req: Mapping[str, Any]) -> Any:
        acct = self._account(req)
        return {
            "referredBy": None,
            "cumVlm": _usd(acct.cum_volume if acct else 0),
            "unclaimedRewards": "0.0",
            "claimedRewards": "0.0",
            "builderRewards": "0.0",
            "referrerState": {"stage": "needToTrade", "data": {"required": "10000.0"}},
            "rewardHistory": [],
            "tokenToState": [],
        }

    def active_asset_data(self, req: Mapping[str, Any]) -> Any:
        e = self.engine
        user = _user(req)
        inst = self._coin(req)
        if inst is None or inst.is_spot:
            raise BadRequest("Failed to deserialize the JSON body into the target type: unknown coin")
        acct = e.accounts.get(user)
        is_cross, lev = acct.lev_for(inst) if acct else (not inst.only_isolated, min(20, inst.max_leverage))
        mark = e.marks.get(inst.asset, 0)
        avail = max(0, e._available(acct)) if acct else 0
        max_sz = avail * lev // mark if mark else 0
        return {
            "user": user,
            "coin": inst.coin,
            "leverage": {"type": "cross" if is_cross else "isolated", "value": lev},
            "maxTradeSzs": [e.sz_wire(inst, max_sz)] * 2,
            "availableToTrade": [_usd(avail)] * 2,
            "markPx": e.px_wire(inst, mark),
        }
