"""Hyperliquid JSON -> domain types. Pure functions; every number is ``Decimal(str)`` from the wire.

Each parser names the shape it reads (a sample is above it). Real recorded responses
(``../shared/fixtures/hl-real``, ``../shared/fixtures/real``) are parsed in ``tests/unit`` so the
shapes stay the venue's, not ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from itertools import groupby
from typing import Any

import msgspec

from hyperfollow.domain.errors import VenueRejected, rejection_for
from hyperfollow.domain.model import (
    AccountSnapshot,
    AckStatus,
    Bbo,
    Candle,
    Fill,
    L2Book,
    Level,
    OrderAck,
    OrderState,
    Position,
    RateLimitStatus,
    Side,
    Trade,
)

Json = Mapping[str, Any]
_ZERO = Decimal(0)


def _dec(value: Any) -> Decimal:
    return Decimal(value) if isinstance(value, str) else Decimal(str(value))


def _opt_dec(value: Any) -> Decimal | None:
    return None if value is None else _dec(value)


# {"coin":"SUI","px":"1.3189","sz":"142.7","side":"A","time":1683245884863,"startPosition":"4623.5",
#  "dir":"Close Long","closedPnl":"-0.25686","hash":"0x3d..","oid":189324432,"crossed":true,"fee":"0.0",
#  "tid":118906512037719,"feeToken":"USDC"[,"cloid":"0x..","liquidation":{...},"builderFee":"0.01"]}
def fill(address: str, raw: Json) -> Fill:
    """One fill of ``address`` (userFills, userFillsByTime, WS userFills / userEvents)."""
    tid = raw.get("tid")
    liquidation = raw.get("liquidation")  # {"liquidatedUser": "0x..", "markPx": "..", "method": "market"}
    liquidated = liquidation.get("liquidatedUser") if isinstance(liquidation, Mapping) else None
    return Fill(
        address=address.lower(),
        coin=raw["coin"],
        side=Side(raw["side"]),
        price=Decimal(raw["px"]),
        size=Decimal(raw["sz"]),
        time_ms=int(raw["time"]),
        start_position=_dec(raw.get("startPosition", "0")),
        direction=raw.get("dir", ""),
        closed_pnl=_dec(raw.get("closedPnl", "0")),
        fee=_dec(raw.get("fee", "0")),
        oid=int(raw["oid"]),
        tid=None if tid is None else int(tid),
        hash=raw.get("hash", ""),
        crossed=bool(raw.get("crossed", False)),
        fee_token=raw.get("feeToken") or "USDC",
        cloid=raw.get("cloid"),
        liquidation=liquidation is not None,
        liquidated_user=liquidated.lower() if isinstance(liquidated, str) else None,
        builder_fee=_dec(raw.get("builderFee", "0")),
    )


def fills(address: str, raws: Sequence[Json]) -> list[Fill]:
    """A list of fills, oldest first and in position order (``in_position_order``; the venue answers
    userFills newest first)."""
    return in_position_order([fill(address, r) for r in raws])


def in_position_order(fills: Iterable[Fill]) -> list[Fill]:
    """Fills oldest first; within a millisecond, each (address, coin) together and in the order the fills
    moved its position.

    Venue quirk: the trade ids (``tid``) of the fills of one millisecond, even of one order, are not in
    the order they moved the position, so sorting by them turns a close into a flip. The order is the
    ``startPosition`` chain instead: each fill starts where the previous one left the position. The chain
    is followed from where the (address, coin) stood after the previous millisecond, else from its head
    (a fill no other one leads to), keeping an order's fills together; a broken chain (a fill missing)
    goes on from the next head. (address, coin) groups come in the order they first appear.
    """
    out: list[Fill] = []
    last_end: dict[tuple[str, str], Decimal] = {}
    for _, same_ms in groupby(sorted(fills, key=lambda f: f.time_ms), key=lambda f: f.time_ms):
        by_coin: dict[tuple[str, str], list[Fill]] = {}
        for f in same_ms:
            by_coin.setdefault((f.address, f.coin), []).append(f)
        for key, group in by_coin.items():
            ordered = _chain(group, last_end.get(key))
            out.extend(ordered)
            last_end[key] = ordered[-1].start_position + ordered[-1].signed_size
    return out


def _chain(group: list[Fill], position: Decimal | None) -> list[Fill]:
    if len(group) == 1:
        return group
    remaining = sorted(group, key=lambda f: f.tid or 0)  # the fallback order: deterministic
    out: list[Fill] = []
    while remaining:
        nxt: Fill | None = None
        if position is not None:
            follows = [f for f in remaining if f.start_position == position]
            same_order = [f for f in follows if out and f.oid == out[-1].oid]
            nxt = next(iter(same_order or follows), None)
        if nxt is None:
            ends = {f.start_position + f.signed_size for f in remaining}
            nxt = next((f for f in remaining if f.start_position not in ends), remaining[0])
        remaining.remove(nxt)
        out.append(nxt)
        position = nxt.start_position + nxt.signed_size
    return out


# {"coin":"BTC","time":1700000000000,"levels":[[{"px":"26950.0","sz":"1.2","n":3},...],[...asks]]}
def l2_book(raw: Json) -> L2Book:
    """A book from decoded JSON (/info l2Book). WS frames take the faster ``decode_frame`` path."""
    bids_raw, asks_raw = raw["levels"]
    return L2Book(
        coin=raw["coin"],
        time_ms=int(raw["time"]),
        bids=tuple([Level(lv["px"], lv["sz"], lv["n"]) for lv in bids_raw]),
        asks=tuple([Level(lv["px"], lv["sz"], lv["n"]) for lv in asks_raw]),
    )


class _WireBook(msgspec.Struct):
    coin: str
    time: int
    levels: tuple[tuple[Level, ...], tuple[Level, ...]]


class _Frame(msgspec.Struct):
    channel: str
    data: msgspec.Raw = msgspec.Raw(b"null")


_frame_decoder = msgspec.json.Decoder(_Frame)
_book_decoder = msgspec.json.Decoder(_WireBook)


def decode_frame(text: str | bytes) -> tuple[str, msgspec.Raw]:
    """A WS frame's channel, and its data still encoded (decoded by the channel's own parser).

    Raises ``msgspec.DecodeError`` (a ``ValueError``) for a frame that is not a JSON object with a channel.
    """
    frame = _frame_decoder.decode(text)
    return frame.channel, frame.data


def l2_book_from_raw(data: msgspec.Raw | bytes | str) -> L2Book:
    """An ``l2Book`` frame's data as a book, decoded in C straight into ``Level`` structs."""
    wire = _book_decoder.decode(data)
    return L2Book(wire.coin, wire.time, wire.levels[0], wire.levels[1])


def raw_json(data: msgspec.Raw | bytes | str) -> Any:
    """Any other channel's data as plain JSON values."""
    return msgspec.json.decode(data)


# {"coin":"BTC","side":"B","px":"26951.0","sz":"0.01","time":1700..,"hash":"0x..","tid":123,"users":[b,s]}
def trade(raw: Json) -> Trade:
    users = raw.get("users") or (None, None)
    return Trade(
        coin=raw["coin"],
        side=Side(raw["side"]),
        price=Decimal(raw["px"]),
        size=Decimal(raw["sz"]),
        time_ms=int(raw["time"]),
        tid=int(raw["tid"]),
        hash=raw.get("hash", ""),
        buyer=users[0],
        seller=users[1],
    )


def recent_trades(raws: Iterable[Json]) -> list[Trade]:
    """``recentTrades`` (the venue answers newest first) oldest first. Within a millisecond the answer's own
    order is kept: trade ids are not in execution order."""
    trades = [trade(t) for t in raws]
    trades.reverse()
    trades.sort(key=lambda t: t.time_ms)
    return trades


# {"coin":"BTC","time":1700..,"bbo":[{"px":"..","sz":"..","n":1} | null, {...} | null]}
def bbo(raw: Json) -> Bbo:
    bid, ask = raw["bbo"]
    return Bbo(
        coin=raw["coin"],
        time_ms=int(raw["time"]),
        bid=None if bid is None else Level(bid["px"], bid["sz"], bid["n"]),
        ask=None if ask is None else Level(ask["px"], ask["sz"], ask["n"]),
    )


# {"mids": {"BTC": "26951.5", "@1": "0.1", ...}}  (WS) or {"BTC": "26951.5", ...}  (/info allMids)
def mids(raw: Json) -> dict[str, Decimal]:
    table = raw.get("mids", raw)
    return {coin: Decimal(px) for coin, px in table.items() if isinstance(px, str)}


# {"t":1681923600000,"T":1681924499999,"s":"BTC","i":"15m","o":"29295.0","c":"29258.0","h":"29309.0",
#  "l":"29250.0","v":"0.98639","n":189}
def candle(raw: Json) -> Candle:
    return Candle(
        coin=raw["s"],
        interval=raw["i"],
        open_ms=int(raw["t"]),
        close_ms=int(raw["T"]),
        open=_dec(raw["o"]),
        high=_dec(raw["h"]),
        low=_dec(raw["l"]),
        close=_dec(raw["c"]),
        volume=_dec(raw["v"]),
        trades=int(raw["n"]),
    )


# {"coin":"BTC","entryPx":"26951.0","leverage":{"type":"cross","value":20},"liquidationPx":"173198.69",
#  "marginUsed":"10.58","positionValue":"211.64","returnOnEquity":"-0.0075","szi":"-0.00785",
#  "unrealizedPnl":"-0.08"}
def position(raw: Json) -> Position:
    lev = raw.get("leverage") or {}
    return Position(
        coin=raw["coin"],
        size=Decimal(raw["szi"]),
        entry_price=_dec(raw.get("entryPx") or "0"),
        unrealized_pnl=_dec(raw.get("unrealizedPnl", "0")),
        leverage=int(lev.get("value", 1)),
        is_cross=lev.get("type", "cross") == "cross",
        position_value=_dec(raw.get("positionValue", "0")),
        margin_used=_dec(raw.get("marginUsed", "0")),
        liquidation_price=_opt_dec(raw.get("liquidationPx")),
        return_on_equity=_dec(raw.get("returnOnEquity", "0")),
    )


# {"assetPositions":[{"position":{...},"type":"oneWay"}],"marginSummary":{"accountValue":"1182.31",
#  "totalMarginUsed":"171.74",...},"crossMarginSummary":{...},"withdrawable":"1010.57","time":1700..}
def account_snapshot(address: str, raw: Json, now_ms: int = 0) -> AccountSnapshot:
    """clearinghouseState; several dexes' states can be merged with ``merge_snapshots``."""
    summary = raw.get("marginSummary") or {}
    return AccountSnapshot(
        address=address.lower(),
        time_ms=int(raw.get("time") or now_ms),
        equity=_dec(summary.get("accountValue", "0")),
        margin_used=_dec(summary.get("totalMarginUsed", "0")),
        withdrawable=_dec(raw.get("withdrawable", "0")),
        positions=tuple(
            position(item["position"])
            for item in raw.get("assetPositions", ())
            if Decimal(item["position"]["szi"]) != 0
        ),
    )


def merge_snapshots(parts: Sequence[AccountSnapshot]) -> AccountSnapshot:
    """The main dex's state plus HIP-3 dexes' (each dex has its own clearinghouse)."""
    first = parts[0]
    return AccountSnapshot(
        address=first.address,
        time_ms=max(p.time_ms for p in parts),
        equity=sum((p.equity for p in parts), _ZERO),
        margin_used=sum((p.margin_used for p in parts), _ZERO),
        withdrawable=first.withdrawable,
        positions=tuple(pos for p in parts for pos in p.positions),
    )


# openOrders: {"coin":"MATIC","limitPx":"1.0357","oid":62269971,"side":"B","sz":"208.7","timestamp":..}
# frontendOpenOrders: + "origSz","reduceOnly","isTrigger","triggerPx","orderType","tif","cloid",...
def order_state(raw: Json, status: str = "open", status_ms: int | None = None) -> OrderState:
    trigger = _dec(raw["triggerPx"]) if raw.get("isTrigger") else None
    return OrderState(
        coin=raw["coin"],
        side=Side(raw["side"]),
        price=Decimal(raw["limitPx"]),
        size=Decimal(raw["sz"]),
        orig_size=Decimal(raw.get("origSz", raw["sz"])),
        oid=int(raw["oid"]),
        timestamp_ms=int(raw["timestamp"]),
        status=status,
        cloid=raw.get("cloid"),
        reduce_only=bool(raw.get("reduceOnly", False)),
        trigger_price=trigger,
        status_ms=status_ms,
    )


# orderStatus: {"status":"order","order":{"order":{...frontend...},"status":"open","statusTimestamp":..}}
#              {"status":"unknownOid"}
# WS orderUpdates item / historicalOrders item: {"order":{...},"status":"filled","statusTimestamp":..}
def order_status(raw: Json) -> OrderState | None:
    if raw.get("status") != "order":
        return None
    return order_update(raw["order"])


def order_update(raw: Json) -> OrderState:
    return order_state(raw["order"], raw["status"], raw.get("statusTimestamp"))


# {"cumVlm":"170043721737.45","nRequestsUsed":36589831368,"nRequestsCap":170043731737}
def rate_limit(raw: Json) -> RateLimitStatus:
    return RateLimitStatus(
        used=int(raw["nRequestsUsed"]), cap=int(raw["nRequestsCap"]), cum_volume=_dec(raw["cumVlm"])
    )


# --------------------------------------------------------------------------- /exchange responses


class UnexpectedResponse(ValueError):
    """A /exchange answer that is neither an envelope we know nor an error text."""


def _envelope_data(response: Any) -> Any:
    """The ``data`` of an ``ok`` envelope; a whole-action ``err`` raises its typed rejection."""
    if not isinstance(response, Mapping):
        raise UnexpectedResponse(f"not a JSON object: {response!r:.200}")
    status = response.get("status")
    if status == "err":
        raise rejection_for(str(response.get("response")))
    if status != "ok":
        raise UnexpectedResponse(f"unknown envelope status: {response!r:.200}")
    body = response.get("response")
    return body.get("data") if isinstance(body, Mapping) else None


# {"status":"ok","response":{"type":"order","data":{"statuses":[{"resting":{"oid":77738308}},
#   {"filled":{"totalSz":"0.02","avgPx":"1891.4","oid":77747314}}, {"error":"..."}, "waitingForFill"]}}}
def order_statuses(response: Any, cloids: Sequence[str | None]) -> list[OrderAck | VenueRejected]:
    """Every ``statuses[i]`` of an order/batchModify answer, matched with the cloid we sent for it."""
    data = _envelope_data(response)
    statuses = data.get("statuses") if isinstance(data, Mapping) else None
    if not isinstance(statuses, list) or len(statuses) != len(cloids):
        raise UnexpectedResponse(f"expected {len(cloids)} statuses: {response!r:.300}")
    return [_order_status_item(s, c) for s, c in zip(statuses, cloids, strict=True)]


def _order_status_item(item: Any, cloid: str | None) -> OrderAck | VenueRejected:
    if isinstance(item, str):
        if item in ("waitingForFill", "waitingForTrigger"):
            return OrderAck(AckStatus.WAITING, None, cloid)
        if item == "success":  # batchModify answers plain success for some items
            return OrderAck(AckStatus.RESTING, None, cloid)
        raise UnexpectedResponse(f"unknown order status {item!r}")
    if not isinstance(item, Mapping):
        raise UnexpectedResponse(f"unknown order status {item!r}")
    if "error" in item:
        return rejection_for(str(item["error"]), cloid=cloid)
    if "resting" in item:
        body = item["resting"]
        return OrderAck(AckStatus.RESTING, int(body["oid"]), body.get("cloid", cloid))
    if "filled" in item:
        body = item["filled"]
        return OrderAck(
            AckStatus.FILLED,
            int(body["oid"]),
            body.get("cloid", cloid),
            filled_size=Decimal(body["totalSz"]),
            avg_price=Decimal(body["avgPx"]),
        )
    raise UnexpectedResponse(f"unknown order status {item!r}")


# {"status":"ok","response":{"type":"cancel","data":{"statuses":["success", {"error":"Order was never.."}]}}}
def cancel_statuses(response: Any, n: int) -> list[VenueRejected | None]:
    data = _envelope_data(response)
    statuses = data.get("statuses") if isinstance(data, Mapping) else None
    if not isinstance(statuses, list) or len(statuses) != n:
        raise UnexpectedResponse(f"expected {n} cancel statuses: {response!r:.300}")
    out: list[VenueRejected | None] = []
    for item in statuses:
        if item == "success":
            out.append(None)
        elif isinstance(item, Mapping) and "error" in item:
            out.append(rejection_for(str(item["error"])))
        else:
            raise UnexpectedResponse(f"unknown cancel status {item!r}")
    return out


# {"status":"ok","response":{"type":"default"}}
def default_ok(response: Any) -> None:
    """updateLeverage, updateIsolatedMargin, scheduleCancel, ...: ok, or the whole-action error raised."""
    _envelope_data(response)
