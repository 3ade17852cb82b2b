"""Many clients at once: 20 threads place, cancel and fill orders over loopback for a few seconds, then
every order the venue acknowledged is checked against what it holds: the open orders are exactly the
acknowledged resting ones not cancelled, every fill belongs to an acknowledged fill of the right size,
no oid was handed out twice, and `orderStatus` agrees with every answer a client got.

Bounded: ``LOAD_SECONDS`` of traffic; the whole test (about 10 s on two cores) within its timeout.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
import requests
from eth_account.signers.local import LocalAccount
from support import Venue, serve_venue, signed_body, wallet_for

ETH = 1
CLIENTS = 20
LOAD_SECONDS = 7.0
GTC = {"limit": {"tif": "Gtc"}}
IOC = {"limit": {"tif": "Ioc"}}


@dataclass
class Client:
    """One client's view of its orders, built only from the venue's answers."""

    n: int
    wallet: LocalAccount
    resting: dict[int, str] = field(default_factory=dict)  # oid -> cloid, acked resting, not cancelled
    canceled: set[int] = field(default_factory=set)  # acked "success" to a cancel
    filled: dict[int, Decimal] = field(default_factory=dict)  # oid -> acked totalSz
    acked: list[int] = field(default_factory=list)  # every oid the venue answered with
    requests: int = 0
    anomalies: list[Any] = field(default_factory=list)
    counter: int = 0

    @property
    def user(self) -> str:
        return str(self.wallet.address).lower()

    def next_cloid(self) -> str:
        self.counter += 1
        return f"0x{self.n:016x}{self.counter:016x}"


def _post(session: requests.Session, url: str, client: Client, action: dict[str, Any]) -> dict[str, Any]:
    response = session.post(url + "/exchange", json=signed_body(client.wallet, action), timeout=30)
    client.requests += 1
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert result["status"] == "ok", result
    return result


def _statuses(result: dict[str, Any]) -> list[Any]:
    return result["response"]["data"]["statuses"]  # type: ignore[no-any-return]


def _place(session: requests.Session, url: str, client: Client, orders: list[dict[str, Any]]) -> None:
    result = _post(session, url, client, {"type": "order", "orders": orders, "grouping": "na"})
    for order, status in zip(orders, _statuses(result), strict=True):
        if "resting" in status:
            oid = status["resting"]["oid"]
            client.resting[oid] = order["c"]
            client.acked.append(oid)
        elif "filled" in status:
            oid = status["filled"]["oid"]
            client.filled[oid] = Decimal(status["filled"]["totalSz"])
            client.acked.append(oid)
        elif order["t"] == GTC:  # a far resting bid is never refused
            client.anomalies.append(("place", order, status))


def _cancel(session: requests.Session, url: str, client: Client, rng: random.Random) -> None:
    oid = rng.choice(sorted(client.resting))
    if rng.random() < 0.5:
        action = {"type": "cancel", "cancels": [{"a": ETH, "o": oid}]}
    else:
        action = {"type": "cancelByCloid", "cancels": [{"asset": ETH, "cloid": client.resting[oid]}]}
    (status,) = _statuses(_post(session, url, client, action))
    if status == "success":
        del client.resting[oid]
        client.canceled.add(oid)
    else:  # only orders the venue said are resting (and nobody can fill) are cancelled
        client.anomalies.append(("cancel", oid, status))


def _run(
    url: str, client: Client, bid_px: int, ask_px: int, deadline: float, errors: list[BaseException]
) -> None:
    rng = random.Random(client.n)
    session = requests.Session()
    try:
        while time.monotonic() < deadline:
            roll = rng.random()
            if roll < 0.3 and client.resting:
                _cancel(session, url, client, rng)
            elif roll < 0.45:  # a small taker buy: fills against the market maker's asks
                order = {"a": ETH, "b": True, "p": str(ask_px), "s": "0.01", "r": False, "t": IOC,
                         "c": client.next_cloid()}  # fmt: skip
                _place(session, url, client, [order])
            else:  # one to three resting bids far below the book
                orders = [
                    {"a": ETH, "b": True, "p": str(bid_px - rng.randrange(50)), "s": "0.01", "r": False,
                     "t": GTC, "c": client.next_cloid()}
                    for _ in range(rng.choice((1, 1, 2, 3)))
                ]  # fmt: skip
                _place(session, url, client, orders)
    except BaseException as exc:  # handed to the test thread
        errors.append(exc)
    finally:
        session.close()


def _venue_view(venue: Venue, user: str, oids: list[int]) -> dict[str, Any]:
    exchange = venue.server.exchange

    def read() -> dict[str, Any]:
        return {
            "open": exchange.info({"type": "openOrders", "user": user}),
            "fills": exchange.info({"type": "userFills", "user": user}),
            "status": {oid: exchange.info({"type": "orderStatus", "user": user, "oid": oid}) for oid in oids},
        }

    return venue.server.call(read)


@pytest.mark.timeout(15)
def test_concurrent_clients_lose_and_double_no_order() -> None:
    with serve_venue() as venue:
        bid, ask = venue.book("ETH")
        bid_px, ask_px = round(bid * 0.8), round(ask * 1.02)
        clients = [Client(n, wallet_for(f"load-client-{n}")) for n in range(CLIENTS)]
        for client in clients:
            venue.fund(client.wallet.address, "100000")
        errors: list[BaseException] = []
        started = time.monotonic()
        deadline = started + LOAD_SECONDS
        threads = [
            threading.Thread(target=_run, args=(venue.url, c, bid_px, ask_px, deadline, errors))
            for c in clients
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(LOAD_SECONDS + 30)
        elapsed = time.monotonic() - started
        assert not errors, errors[:3]
        assert not any(t.is_alive() for t in threads)

        all_oids = [oid for c in clients for oid in c.acked]
        assert len(all_oids) == len(set(all_oids)), "an oid was handed out twice"
        total = sum(c.requests for c in clients)
        assert total >= CLIENTS * 5, total  # every client really traded
        for client in clients:
            assert not client.anomalies, client.anomalies[:3]
            view = _venue_view(venue, client.user, client.acked)
            assert {o["oid"] for o in view["open"]} == set(client.resting)
            fills: dict[int, Decimal] = defaultdict(Decimal)
            for fill in view["fills"]:
                fills[fill["oid"]] += Decimal(fill["sz"])
            assert dict(fills) == client.filled  # each acked fill exactly, nothing else
            for oid in client.acked:
                status = view["status"][oid]
                assert status["status"] == "order", (oid, status)
                if oid in client.resting:
                    expected = {"open"}
                elif oid in client.canceled:
                    expected = {"canceled"}
                elif client.filled[oid] == Decimal("0.01"):
                    expected = {"filled"}
                else:  # an IOC that met the end of the book: filled in part, the rest cancelled
                    expected = {"filled", "canceled"}
                assert status["order"]["status"] in expected, (oid, status)
        filled = sum(len(c.filled) for c in clients)
        canceled = sum(len(c.canceled) for c in clients)
        assert filled > 0  # the mix really filled
        assert canceled > 0  # and cancelled
        print(
            f"{total} signed requests from {CLIENTS} clients in {elapsed:.1f} s: "
            f"{len(all_oids)} orders acked, {filled} filled, {canceled} cancelled"
        )
