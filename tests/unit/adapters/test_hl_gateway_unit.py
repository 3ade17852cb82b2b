"""The gateway against a fake client: wires, cloids, batching, status parsing, OutcomeUnknown resolution."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from hyperfollow.adapters.hyperliquid.budget import AddressBudget
from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.adapters.hyperliquid.gateway import HyperliquidGateway, ack_from_state
from hyperfollow.adapters.hyperliquid.market import InstrumentDirectory
from hyperfollow.domain.errors import (
    InsufficientMargin,
    InvalidSize,
    MinNotional,
    OrderNotFound,
    OutcomeUnknown,
    PostOnlyWouldCross,
    RateLimited,
    UnknownInstrument,
    VenueRejected,
)
from hyperfollow.domain.ids import cloid_for
from hyperfollow.domain.model import (
    AckStatus,
    CancelRequest,
    Grouping,
    OrderAck,
    OrderRequest,
    OrderState,
    RateLimitStatus,
    Side,
    Tif,
    TpSl,
    Trigger,
)

ACCOUNT = "0x" + "ab" * 20
CONFIG = HyperliquidConfig(
    base_url="http://127.0.0.1:9", account_address=ACCOUNT, secret_key="0x" + "11" * 32
)
META = {
    "universe": [
        {"name": "BTC", "szDecimals": 5, "maxLeverage": 40},
        {"name": "ETH", "szDecimals": 4, "maxLeverage": 25},
        {"name": "OLD", "szDecimals": 0, "maxLeverage": 1, "isDelisted": True},
    ]
}
XYZ_META = {"universe": [{"name": "xyz:TSLA", "szDecimals": 3, "maxLeverage": 10, "onlyIsolated": True}]}
UNKNOWN = OutcomeUnknown("read timeout")


def ok_order(*statuses: Any) -> dict[str, Any]:
    return {"status": "ok", "response": {"type": "order", "data": {"statuses": list(statuses)}}}


def ok_cancel(*statuses: Any) -> dict[str, Any]:
    return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": list(statuses)}}}


DEFAULT_OK = {"status": "ok", "response": {"type": "default"}}


def status_of(
    oid: int, status: str, *, cloid: str | None = None, sz: str = "0.01", orig: str = "0.01"
) -> Any:
    order = {
        "coin": "ETH", "side": "B", "limitPx": "2000.0", "sz": sz, "origSz": orig, "oid": oid,
        "timestamp": 1, "cloid": cloid,
    }  # fmt: skip
    return {"status": "order", "order": {"order": order, "status": status, "statusTimestamp": 2}}


class FakeClient:
    """Records every action; answers from per-call handlers (an exception is raised)."""

    def __init__(self) -> None:
        self.actions: list[dict[str, Any]] = []
        self.infos: list[dict[str, Any]] = []
        self.action_answers: list[Any] = []
        self.order_status: Callable[[Any], Any] = lambda oid: {"status": "unknownOid"}
        self.clearinghouse: dict[str, Any] = {"assetPositions": []}

    @property
    def config(self) -> HyperliquidConfig:
        return CONFIG

    async def info(self, payload: dict[str, Any]) -> Any:
        self.infos.append(payload)
        kind = payload["type"]
        if kind == "perpDexs":
            return [None, {"name": "xyz"}]
        if kind == "meta":
            return META if payload["dex"] == "" else XYZ_META
        if kind == "orderStatus":
            assert payload["user"] == ACCOUNT
            return self.order_status(payload["oid"])
        if kind == "clearinghouseState":
            return self.clearinghouse
        raise AssertionError(f"unexpected info {payload}")

    async def action(
        self, action: dict[str, Any], n_orders: int = 0, *, expires_after: int | None = None
    ) -> Any:
        self.actions.append(action)
        answer = self.action_answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return answer(action)
        return answer


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
async def gateway(client: FakeClient) -> HyperliquidGateway:
    directory = InstrumentDirectory(client)
    await directory.load()
    return HyperliquidGateway(client, directory, seq_start=0)


def buy(size: str = "0.0123456", price: str = "2970.1485", **kw: Any) -> OrderRequest:
    return OrderRequest("ETH", Side.BUY, Decimal(size), Decimal(price), **kw)


def sell(size: str = "0.0123456", price: str = "2970.1485", **kw: Any) -> OrderRequest:
    return OrderRequest("ETH", Side.SELL, Decimal(size), Decimal(price), **kw)


# ------------------------------------------------------------------------------------------ wires


async def test_order_wire_is_exact_strings_in_sdk_key_order(
    gateway: HyperliquidGateway, client: FakeClient
) -> None:
    client.action_answers = [ok_order({"resting": {"oid": 7}})]
    ack = await gateway.submit(buy())
    (action,) = client.actions
    assert list(action) == ["type", "orders", "grouping"]
    assert action["grouping"] == "na"
    (wire,) = action["orders"]
    assert list(wire) == ["a", "b", "p", "s", "r", "t", "c"]
    cloid = cloid_for(ACCOUNT, "ETH", "B", "0.0123", "2970.1", "Gtc", 0)
    assert wire == {
        "a": 1,
        "b": True,
        "p": "2970.1",
        "s": "0.0123",
        "r": False,
        "t": {"limit": {"tif": "Gtc"}},
        "c": cloid,
    }
    assert ack == OrderAck(AckStatus.RESTING, 7, cloid)


async def test_prices_round_never_worse_than_asked(gateway: HyperliquidGateway) -> None:
    assert (await gateway.prepare(sell())).wire["p"] == "2970.2"  # sells round up
    assert (await gateway.prepare(buy(price="2970.1999"))).wire["p"] == "2970.1"  # buys down
    assert (await gateway.prepare(buy(price="3000"))).wire["p"] == "3000"  # no trailing zeros
    btc = OrderRequest("BTC", Side.SELL, Decimal("0.000019"), Decimal("65432.5"), tif=Tif.IOC)
    wire = (await gateway.prepare(btc)).wire
    assert (wire["a"], wire["p"], wire["s"], wire["t"]) == (0, "65433", "0.00001", {"limit": {"tif": "Ioc"}})


async def test_trigger_wire_and_reduce_only(gateway: HyperliquidGateway) -> None:
    stop = sell(
        size="0.5", price="2500.04", reduce_only=True, trigger=Trigger(Decimal("2600.06"), TpSl.STOP_LOSS)
    )
    wire = (await gateway.prepare(stop)).wire
    assert wire["r"] is True
    assert wire["p"] == "2500.1"
    assert list(wire["t"]["trigger"]) == ["isMarket", "triggerPx", "tpsl"]
    assert wire["t"] == {"trigger": {"isMarket": True, "triggerPx": "2600.1", "tpsl": "sl"}}


async def test_zero_size_and_unknown_instruments_are_refused_before_sending(
    gateway: HyperliquidGateway, client: FakeClient
) -> None:
    with pytest.raises(InvalidSize):
        await gateway.submit(buy(size="0.00009"))
    with pytest.raises(UnknownInstrument, match="spot"):
        await gateway.submit(OrderRequest("PURR/USDC", Side.BUY, Decimal(10), Decimal(1)))
    with pytest.raises(UnknownInstrument):
        await gateway.submit(OrderRequest("OLD", Side.BUY, Decimal(10), Decimal(1)))  # delisted
    assert client.actions == []


async def test_hip3_asset_ids(gateway: HyperliquidGateway) -> None:
    tsla = OrderRequest("xyz:TSLA", Side.BUY, Decimal("1.5"), Decimal("250.55"))
    wire = (await gateway.prepare(tsla)).wire
    assert (wire["a"], wire["s"], wire["p"]) == (110000, "1.5", "250.55")


async def test_cloids_are_deterministic_and_callers_win(client: FakeClient) -> None:
    directory = InstrumentDirectory(client)
    await directory.load()
    a = HyperliquidGateway(client, directory, seq_start=5)
    b = HyperliquidGateway(client, directory, seq_start=5)
    first_a, first_b = await a.prepare(buy()), await b.prepare(buy())
    assert first_a.cloid == first_b.cloid == cloid_for(ACCOUNT, "ETH", "B", "0.0123", "2970.1", "Gtc", 5)
    assert (await a.prepare(buy())).cloid != first_a.cloid  # the next order of the same shape differs
    mine = "0x" + "AB" * 16
    assert (await a.prepare(buy(cloid=mine))).cloid == mine.lower()
    with pytest.raises(ValueError, match="cloid"):
        await a.prepare(buy(cloid="0x123"))


# ------------------------------------------------------------------------------------------ statuses


async def test_batch_statuses_become_acks_and_rejections(
    gateway: HyperliquidGateway, client: FakeClient
) -> None:
    client.action_answers = [
        ok_order(
            {"resting": {"oid": 1}},
            {"filled": {"totalSz": "0.02", "avgPx": "1891.4", "oid": 2}},
            {"error": "Post only order would have immediately matched, bbo was 1.0@1.1. asset=1"},
            {"error": "Order must have minimum value of $10. asset=1"},
        )
    ]
    orders = [buy(), buy(tif=Tif.IOC), buy(tif=Tif.ALO), buy(size="0.001")]
    results = await gateway.submit_batch(orders)
    assert len(client.actions) == 1
    assert len(client.actions[0]["orders"]) == 4
    first, second, third, fourth = results
    assert isinstance(first, OrderAck)
    assert first.status is AckStatus.RESTING
    assert isinstance(second, OrderAck)
    assert (second.status, second.filled_size, second.avg_price) == (
        AckStatus.FILLED,
        Decimal("0.02"),
        Decimal("1891.4"),
    )
    assert isinstance(third, PostOnlyWouldCross)
    assert third.cloid == client.actions[0]["orders"][2]["c"]
    assert isinstance(fourth, MinNotional)


async def test_single_submit_raises_its_rejection(gateway: HyperliquidGateway, client: FakeClient) -> None:
    client.action_answers = [ok_order({"error": "Insufficient margin to place order. asset=1"})]
    with pytest.raises(InsufficientMargin):
        await gateway.submit(buy())


async def test_whole_action_error_raises(gateway: HyperliquidGateway, client: FakeClient) -> None:
    client.action_answers = [{"status": "err", "response": "Invalid nonce: duplicate nonce 5"}]
    with pytest.raises(VenueRejected, match="nonce"):
        await gateway.submit_batch([buy(), sell()])


async def test_concurrent_submits_are_coalesced_into_one_action(
    gateway: HyperliquidGateway, client: FakeClient
) -> None:
    client.action_answers = [
        ok_order(
            {"resting": {"oid": 1}},
            {"error": "Order must have minimum value of $10."},
            {"resting": {"oid": 3}},
        )
    ]
    results = await asyncio.gather(
        gateway.submit(buy()),
        gateway.submit(buy(size="0.001")),
        gateway.submit(sell()),
        return_exceptions=True,
    )
    assert len(client.actions) == 1
    assert len(client.actions[0]["orders"]) == 3
    assert isinstance(results[0], OrderAck)
    assert results[0].oid == 1
    assert isinstance(results[1], MinNotional)
    assert isinstance(results[2], OrderAck)
    assert results[2].oid == 3
    # a submit on its own, later, is an action of its own
    client.action_answers = [ok_order({"resting": {"oid": 4}})]
    assert (await gateway.submit(buy())).oid == 4
    assert len(client.actions) == 2


async def test_coalesced_submits_all_see_a_whole_action_failure(
    gateway: HyperliquidGateway, client: FakeClient
) -> None:
    client.action_answers = [{"status": "err", "response": "User or API Wallet 0x1 does not exist."}]
    results = await asyncio.gather(gateway.submit(buy()), gateway.submit(sell()), return_exceptions=True)
    assert len(client.actions) == 1
    assert all(isinstance(r, VenueRejected) and "does not exist" in str(r) for r in results)


async def test_address_budget_is_checked_before_sending(client: FakeClient) -> None:
    async def spent() -> RateLimitStatus:
        return RateLimitStatus(used=10_000, cap=10_000, cum_volume=Decimal(0))

    directory = InstrumentDirectory(client)
    await directory.load()
    gateway = HyperliquidGateway(client, directory, budget=AddressBudget(spent), seq_start=0)
    with pytest.raises(RateLimited):
        await gateway.submit(buy())
    assert client.actions == []
    client.action_answers = [ok_cancel("success")]
    await gateway.cancel(CancelRequest("ETH", oid=5))  # cancels still have room
    assert len(client.actions) == 1


# ------------------------------------------------------------------------------------------ OutcomeUnknown


async def test_unknown_outcome_found_by_cloid_returns_its_ack_without_resending(
    gateway: HyperliquidGateway, client: FakeClient
) -> None:
    client.action_answers = [UNKNOWN]
    looked_up: list[Any] = []

    def lookup(oid: Any) -> Any:
        looked_up.append(oid)
        return status_of(42, "filled", cloid=oid, sz="0.0", orig="0.0123")

    client.order_status = lookup
    ack = await gateway.submit(buy())
    assert len(client.actions) == 1
    assert looked_up == [client.actions[0]["orders"][0]["c"]]
    assert (ack.status, ack.oid, ack.filled_size) == (AckStatus.FILLED, 42, Decimal("0.0123"))


async def test_unknown_outcome_not_found_is_resent_once_with_the_same_cloid(
    gateway: HyperliquidGateway, client: FakeClient
) -> None:
    client.action_answers = [UNKNOWN, ok_order({"resting": {"oid": 9}})]
    ack = await gateway.submit(buy())
    assert len(client.actions) == 2
    assert client.actions[0] == client.actions[1]  # same order, same cloid (the client signs a new nonce)
    assert ack.oid == 9


async def test_two_unknown_outcomes_raise_and_never_send_a_third_time(
    gateway: HyperliquidGateway, client: FakeClient
) -> None:
    client.action_answers = [UNKNOWN, UNKNOWN, ok_order({"resting": {"oid": 9}})]
    with pytest.raises(OutcomeUnknown) as info:
        await gateway.submit(buy())
    assert len(client.actions) == 2
    assert info.value.cloids == (client.actions[0]["orders"][0]["c"],)


async def test_unknown_batch_resends_only_the_missing_orders(
    gateway: HyperliquidGateway, client: FakeClient
) -> None:
    first, second = (
        await gateway.prepare(buy(cloid="0x" + "01" * 16)),
        await gateway.prepare(sell(cloid="0x" + "02" * 16)),
    )
    client.action_answers = [UNKNOWN, ok_order({"resting": {"oid": 8}})]
    client.order_status = lambda oid: (
        status_of(7, "open", cloid=oid) if oid == first.cloid else {"status": "unknownOid"}
    )
    results = await gateway.submit_batch([buy(cloid=first.cloid), sell(cloid=second.cloid)])
    assert [len(a["orders"]) for a in client.actions] == [2, 1]
    assert client.actions[1]["orders"][0]["c"] == second.cloid
    assert [(r.status, r.oid) for r in results if isinstance(r, OrderAck)] == [
        (AckStatus.RESTING, 7),
        (AckStatus.RESTING, 8),
    ]


async def test_unknown_grouped_batch_with_part_found_is_not_resent_in_pieces(
    gateway: HyperliquidGateway, client: FakeClient
) -> None:
    entry = buy(cloid="0x" + "01" * 16)
    tp = sell(cloid="0x" + "02" * 16, reduce_only=True, trigger=Trigger(Decimal(3100), TpSl.TAKE_PROFIT))
    client.action_answers = [UNKNOWN]
    client.order_status = lambda oid: (
        status_of(7, "open", cloid=oid) if oid == entry.cloid else {"status": "unknownOid"}
    )
    with pytest.raises(OutcomeUnknown) as info:
        await gateway.submit_batch([entry, tp], Grouping.NORMAL_TPSL)
    assert len(client.actions) == 1
    assert info.value.cloids == (tp.cloid,)


def test_ack_from_rejected_status() -> None:
    state = OrderState("ETH", Side.BUY, Decimal(1), Decimal(1), Decimal(1), 3, 0, "badAloPxRejected")
    assert isinstance(ack_from_state(state, "0x" + "0" * 32), PostOnlyWouldCross)
    partly = OrderState("ETH", Side.BUY, Decimal(1), Decimal("0.4"), Decimal(1), 3, 0, "canceled")
    ack = ack_from_state(partly, None)
    assert isinstance(ack, OrderAck)
    assert (ack.status, ack.filled_size) == (AckStatus.FILLED, Decimal("0.6"))


# ------------------------------------------------------------------------------------------ cancels


async def test_cancel_batch_splits_oids_and_cloids(gateway: HyperliquidGateway, client: FakeClient) -> None:
    cloid = "0x" + "0a" * 16
    client.action_answers = [
        ok_cancel("success", {"error": "Order was never placed, already canceled, or filled. asset=1"}),
        ok_cancel("success"),
    ]
    results = await gateway.cancel_batch(
        [CancelRequest("ETH", oid=1), CancelRequest("xyz:TSLA", cloid=cloid), CancelRequest("BTC", oid=2)]
    )
    assert client.actions == [
        {"type": "cancel", "cancels": [{"a": 1, "o": 1}, {"a": 0, "o": 2}]},
        {"type": "cancelByCloid", "cancels": [{"asset": 110000, "cloid": cloid}]},
    ]
    assert results[0] is None
    assert results[1] is None
    assert isinstance(results[2], OrderNotFound)


async def test_cancel_with_unknown_outcome_succeeds_when_the_order_is_gone(
    gateway: HyperliquidGateway, client: FakeClient
) -> None:
    client.action_answers = [UNKNOWN]
    client.order_status = lambda oid: status_of(5, "canceled")
    await gateway.cancel(CancelRequest("ETH", oid=5))
    assert len(client.actions) == 1


async def test_cancel_with_unknown_outcome_is_resent_once_when_still_open(
    gateway: HyperliquidGateway, client: FakeClient
) -> None:
    client.action_answers = [UNKNOWN, ok_cancel("success")]
    client.order_status = lambda oid: status_of(5, "open")
    await gateway.cancel(CancelRequest("ETH", oid=5))
    assert len(client.actions) == 2
    client.action_answers = [UNKNOWN, UNKNOWN]
    with pytest.raises(OutcomeUnknown):
        await gateway.cancel(CancelRequest("ETH", oid=5))
    assert len(client.actions) == 4


# ------------------------------------------------------------------------------------------ other actions


async def test_modify_leverage_margin_schedule_and_status(
    gateway: HyperliquidGateway, client: FakeClient
) -> None:
    client.action_answers = [
        ok_order({"resting": {"oid": 11}}),
        DEFAULT_OK,
        DEFAULT_OK,
        DEFAULT_OK,
        DEFAULT_OK,
    ]
    ack = await gateway.modify("0x" + "CC" * 16, buy(size="0.5", price="2000"))
    assert ack.oid == 11
    assert ack.cloid == "0x" + "cc" * 16
    assert client.actions[0] == {
        "type": "batchModify",
        "modifies": [
            {
                "oid": "0x" + "cc" * 16,
                "order": {
                    "a": 1,
                    "b": True,
                    "p": "2000",
                    "s": "0.5",
                    "r": False,
                    "t": {"limit": {"tif": "Gtc"}},
                },
            }
        ],
    }
    await gateway.set_leverage("xyz:TSLA", 4, cross=False)
    assert client.actions[1] == {"type": "updateLeverage", "asset": 110000, "isCross": False, "leverage": 4}
    short = {"coin": "ETH", "szi": "-0.5", "leverage": {"type": "isolated", "value": 5}}
    client.clearinghouse = {"assetPositions": [{"type": "oneWay", "position": short}], "marginSummary": {}}
    await gateway.update_isolated_margin("ETH", Decimal("-1.2345678"))
    assert client.actions[2] == {"type": "updateIsolatedMargin", "asset": 1, "isBuy": False, "ntli": -1234567}
    await gateway.schedule_cancel(1_700_000_005_000)
    await gateway.schedule_cancel(None)
    assert client.actions[3:] == [
        {"type": "scheduleCancel", "time": 1_700_000_005_000},
        {"type": "scheduleCancel"},
    ]
    client.order_status = lambda oid: status_of(11, "open") if oid == 11 else {"status": "unknownOid"}
    state = await gateway.order_status(11)
    assert state is not None
    assert state.is_open
    assert state.oid == 11
    assert await gateway.order_status(12) is None
