"""WebSocket channels as the SDK receives them: `Info(url, skip_ws=False).subscribe(...)` callbacks."""

from __future__ import annotations

from decimal import Decimal

from support import Inbox, Venue, dec

GTC = {"limit": {"tif": "Gtc"}}
LEVEL_KEYS = {"px", "sz", "n"}
FILL_KEYS = {
    "coin", "px", "sz", "side", "time", "startPosition", "dir", "closedPnl", "hash", "oid", "crossed", "fee",
    "tid", "feeToken", "twapId",
}  # fmt: skip


def test_market_channels(fresh_venue: Venue) -> None:
    venue = fresh_venue
    info = venue.ws_info()
    book, trades, mids, bbo, candles = Inbox(), Inbox(), Inbox(), Inbox(), Inbox()
    info.subscribe({"type": "l2Book", "coin": "ETH"}, book)
    info.subscribe({"type": "trades", "coin": "ETH"}, trades)
    info.subscribe({"type": "allMids"}, mids)
    info.subscribe({"type": "bbo", "coin": "ETH"}, bbo)
    info.subscribe({"type": "candle", "coin": "ETH", "interval": "1m"}, candles)

    # l2Book, allMids and bbo arrive on subscription
    first_book = book.wait(what="l2Book")
    assert first_book["channel"] == "l2Book"
    data = first_book["data"]
    assert data["coin"] == "ETH"
    assert isinstance(data["time"], int)
    bids, asks = data["levels"]
    assert len(bids) == len(asks) == 20
    assert all(set(level) == LEVEL_KEYS for level in bids + asks)
    bid_px = [dec(level["px"]) for level in bids]
    ask_px = [dec(level["px"]) for level in asks]
    assert bid_px == sorted(bid_px, reverse=True)
    assert ask_px == sorted(ask_px)
    assert bid_px[0] < ask_px[0]
    assert data["levels"] == venue.info_request({"type": "l2Book", "coin": "ETH"})["levels"]

    first_mids = mids.wait(what="allMids")["data"]
    assert first_mids["mids"] == venue.info_request({"type": "allMids"})
    assert "ETH" in first_mids["mids"]

    first_bbo = bbo.wait(what="bbo")["data"]
    assert first_bbo["coin"] == "ETH"
    assert first_bbo["bbo"] == [bids[0], asks[0]]

    # a trade: trades, candle, and a new book (the best ask shrank)
    trader = venue.trader("ws-market")
    trader.exchange.market_open("ETH", True, 0.25)
    (fill,) = trader.info.user_fills(trader.address)

    trade_msg = trades.wait(what="trades")
    assert trade_msg["channel"] == "trades"
    (trade,) = trade_msg["data"]
    assert trade["coin"] == "ETH"
    assert trade["side"] == "B"
    assert trade["px"] == fill["px"]
    assert trade["sz"] == "0.25"
    assert trade["tid"] == fill["tid"]
    assert trade["hash"] == fill["hash"]
    assert trade["users"][0] == trader.user  # [buyer, seller]
    assert trade["time"] == fill["time"]

    candle = candles.wait(what="candle")["data"]
    assert candle["s"] == "ETH"
    assert candle["i"] == "1m"
    assert candle["T"] - candle["t"] == 59_999
    assert candle["t"] <= fill["time"] <= candle["T"]
    assert candle["o"] == candle["c"] == candle["h"] == candle["l"] == fill["px"]
    assert candle["v"] == "0.25"
    assert candle["n"] == 1
    snapshot = trader.info.candles_snapshot("ETH", "1m", candle["t"], candle["T"])
    assert snapshot == [candle]

    updated = book.wait(lambda m: m["data"]["levels"][1][0]["sz"] != asks[0]["sz"], what="l2Book update")
    assert dec(updated["data"]["levels"][1][0]["sz"]) == dec(asks[0]["sz"]) - Decimal("0.25")
    new_bbo = bbo.wait(lambda m: m["data"]["bbo"][1] != asks[0], what="bbo update")["data"]["bbo"]
    assert dec(new_bbo[1]["sz"]) == dec(asks[0]["sz"]) - Decimal("0.25")


def test_user_channels(fresh_venue: Venue) -> None:
    venue = fresh_venue
    trader = venue.trader("ws-user")
    trader.exchange.market_open("ETH", True, 0.1)  # one fill before subscribing
    (old_fill,) = trader.info.user_fills(trader.address)

    info = venue.ws_info()
    fills, updates, events = Inbox(), Inbox(), Inbox()
    info.subscribe({"type": "userFills", "user": trader.address}, fills)
    info.subscribe({"type": "orderUpdates", "user": trader.address}, updates)
    info.subscribe({"type": "userEvents", "user": trader.address}, events)

    snapshot = fills.wait(what="userFills snapshot")
    assert snapshot["channel"] == "userFills"
    assert snapshot["data"]["isSnapshot"] is True
    assert snapshot["data"]["user"] == trader.user
    assert snapshot["data"]["fills"] == [old_fill]
    assert set(old_fill) == FILL_KEYS

    # a resting order: orderUpdates "open"; its cancel: "canceled"
    px = round(venue.mid("ETH") * 0.9)
    result = trader.exchange.order("ETH", True, 0.01, px, GTC)
    oid = result["response"]["data"]["statuses"][0]["resting"]["oid"]
    opened = updates.wait(what="orderUpdates open")
    assert opened["channel"] == "orderUpdates"
    (update,) = opened["data"]
    assert update["status"] == "open"
    assert update["order"]["oid"] == oid
    assert update["order"]["coin"] == "ETH"
    assert update["order"]["side"] == "B"
    assert dec(update["order"]["limitPx"]) == px
    assert update["order"]["sz"] == update["order"]["origSz"] == "0.01"
    assert isinstance(update["statusTimestamp"], int)
    trader.exchange.cancel("ETH", oid)
    canceled = updates.wait(lambda m: m["data"][0]["status"] == "canceled", what="orderUpdates canceled")
    assert canceled["data"][0]["order"]["oid"] == oid

    # a fill: userFills increment (no snapshot flag), userEvents "user" channel, orderUpdates "filled"
    result = trader.exchange.market_open("ETH", False, 0.1)
    taker_oid = result["response"]["data"]["statuses"][0]["filled"]["oid"]
    increment = fills.wait(lambda m: not m["data"].get("isSnapshot"), what="userFills increment")
    (new_fill,) = increment["data"]["fills"]
    assert new_fill["oid"] == taker_oid
    assert new_fill["dir"] == "Close Long"
    assert new_fill == trader.info.user_fills(trader.address)[0]

    event = events.wait(what="userEvents fills")
    assert event["channel"] == "user"
    assert event["data"] == {"fills": [new_fill]}

    filled = updates.wait(lambda m: m["data"][0]["order"]["oid"] == taker_oid, what="orderUpdates filled")
    assert filled["data"][0]["status"] == "filled"
    # nothing leaks from other users
    other = venue.trader("ws-other")
    other.exchange.market_open("ETH", True, 0.1)
    venue.advance(1_000)  # a market step: every pending message is flushed
    assert all(f["oid"] != other.info.user_fills(other.address)[0]["oid"] for m in fills.messages
               for f in m["data"]["fills"])  # fmt: skip
    assert len(events.messages) == 1


def test_unsubscribe_stops_messages(fresh_venue: Venue) -> None:
    venue = fresh_venue
    info = venue.ws_info()
    trades = Inbox()
    sub = {"type": "trades", "coin": "SOL"}
    sub_id = info.subscribe(dict(sub), trades)
    trader = venue.trader("ws-unsub")
    trader.exchange.market_open("SOL", True, 1)
    trades.wait(what="SOL trade")
    assert info.unsubscribe(dict(sub), sub_id)
    venue.advance(1_000)
    count = len(trades.messages)
    trader.exchange.market_open("SOL", True, 1)
    venue.advance(1_000)
    assert len(trades.messages) == count


def test_every_subscriber_gets_the_book_snapshots(fresh_venue: Venue) -> None:
    """l2Book and bbo answer each new subscription with the current state, also the second one."""
    venue = fresh_venue
    firsts: list[tuple[Inbox, Inbox]] = []
    for _ in range(2):
        info = venue.ws_info()
        book, bbo = Inbox(), Inbox()
        info.subscribe({"type": "l2Book", "coin": "BTC"}, book)
        info.subscribe({"type": "bbo", "coin": "BTC"}, bbo)
        book.wait(what="l2Book snapshot")
        bbo.wait(what="bbo snapshot")
        firsts.append((book, bbo))
    (book_a, bbo_a), (book_b, bbo_b) = firsts
    assert bbo_a.messages[0]["data"]["bbo"] == bbo_b.messages[0]["data"]["bbo"]
    assert book_a.messages[0]["data"]["levels"] == book_b.messages[0]["data"]["levels"]
