"""The dead man's switch (scheduleCancel) on a stepped clock: time only moves with `/sim/advance`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support import Trader, Venue

DEFAULT_OK = {"status": "ok", "response": {"type": "default"}}
GTC = {"limit": {"tif": "Gtc"}}
NOON_UTC = 1_767_268_800_000  # 2026-01-01 12:00 UTC: far from a UTC day boundary (the daily cap resets there)


@pytest.fixture
def noon_venue(make_venue: Callable[..., Venue]) -> Venue:
    return make_venue(start_ms=NOON_UTC)


def _rest_two_orders(venue: Venue, trader: Trader) -> list[int]:
    oids = []
    for coin, is_buy, factor in (("ETH", True, 0.9), ("SOL", False, 1.1)):
        px = round(venue.mid(coin) * factor)
        result = trader.exchange.order(coin, is_buy, 1 if coin == "SOL" else 0.01, px, GTC)
        oids.append(result["response"]["data"]["statuses"][0]["resting"]["oid"])
    assert {o["oid"] for o in trader.open_orders()} == set(oids)
    return oids


def test_schedule_cancel_fires_at_its_time(noon_venue: Venue) -> None:
    trader = noon_venue.trader("dead-man")
    oids = _rest_two_orders(noon_venue, trader)
    now = noon_venue.now()
    assert now == NOON_UTC

    assert trader.exchange.schedule_cancel(now + 10_000) == DEFAULT_OK
    noon_venue.advance(9_000)
    assert len(trader.open_orders()) == 2  # not yet

    noon_venue.advance(2_000)
    assert trader.open_orders() == []
    for oid in oids:
        status = trader.info.query_order_by_oid(trader.address, oid)["order"]
        assert status["status"] == "scheduledCancel"
        assert now + 10_000 <= status["statusTimestamp"] <= now + 11_000

    # it fired once: new orders stay
    _rest_two_orders(noon_venue, trader)
    noon_venue.advance(15_000)
    assert len(trader.open_orders()) == 2


def test_schedule_cancel_too_early_is_refused(noon_venue: Venue) -> None:
    trader = noon_venue.trader("dead-man-early")
    _rest_two_orders(noon_venue, trader)
    result = trader.exchange.schedule_cancel(noon_venue.now() + 4_000)  # must be >= 5 s ahead
    assert result["status"] == "err"
    assert "too early" in result["response"]
    noon_venue.advance(6_000)
    assert len(trader.open_orders()) == 2


def test_unset_schedule_cancel(noon_venue: Venue) -> None:
    trader = noon_venue.trader("dead-man-unset")
    _rest_two_orders(noon_venue, trader)
    assert trader.exchange.schedule_cancel(noon_venue.now() + 5_000) == DEFAULT_OK
    assert trader.exchange.schedule_cancel(None) == DEFAULT_OK
    noon_venue.advance(10_000)
    assert len(trader.open_orders()) == 2


def test_refreshing_the_switch_is_not_a_trigger(noon_venue: Venue) -> None:
    """The usual heartbeat: push the deadline forward again and again. Only firings count toward the
    venue's 10 triggers a day, so refreshing more than 10 times keeps working."""
    trader = noon_venue.trader("dead-man-heartbeat")
    _rest_two_orders(noon_venue, trader)
    for _ in range(12):
        assert trader.exchange.schedule_cancel(noon_venue.now() + 6_000) == DEFAULT_OK
        noon_venue.advance(3_000)
    assert len(trader.open_orders()) == 2
    noon_venue.advance(4_000)
    assert trader.open_orders() == []


def test_at_most_ten_triggers_a_day(noon_venue: Venue) -> None:
    trader = noon_venue.trader("dead-man-cap")
    for _ in range(10):
        assert trader.exchange.schedule_cancel(noon_venue.now() + 5_000) == DEFAULT_OK
        noon_venue.advance(5_000)
    refused = trader.exchange.schedule_cancel(noon_venue.now() + 5_000)
    assert refused["status"] == "err"
    _rest_two_orders(noon_venue, trader)
    noon_venue.advance(6_000)
    assert len(trader.open_orders()) == 2
