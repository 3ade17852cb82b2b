"""The venue adapter's own costs: per-order overhead, book parsing, fill de-duplication.

1. **Adapter overhead per order.** One stepped ``EmbeddedExchange`` (no simulated traders, no address
   budget) served by ``running_in_thread`` on a free 127.0.0.1 port, IP limits off. Two wallets place
   resting Gtc ETH bids (0.01 @ 2,900, $29) alternately through the bare official SDK
   (``Exchange.order(...)``, blocking, run off the loop) and through our adapter
   (``await venue.gateway.submit(OrderRequest(...))`` from an asyncio loop: quantization, cloid, nonce,
   weight limiter (its budget raised for this load test: at the venue's 1,200/min it would make us
   wait), address budget, executor hop, signing with ``hyperfollow.signing`` (byte-identical to the SDK's
   ``sign_l1_action``, about 8x faster), the SDK's transport, status parsing). Calls alternate one by one,
   so machine noise hits both alike; every ``CANCEL_EVERY`` orders the book is cleared untimed. Both get a
   strictly increasing nonce (the SDK's wall-clock nonce is replaced by a counter, as the integration tests
   do). Which path goes first alternates. A negative overhead means the adapter is faster than the bare
   SDK call (its signer saves more than its bookkeeping costs). Figures: p50 of each, and the overhead =
   the median of the paired differences (adapter - SDK, order by order: slow drifts of a shared VM cancel
   out) over the SDK p50; goal under 10 % of the round trip.
2. **l2Book frames parsed to domain books.** A real stream: the 9,808 recorded 20-level books of BTC, ETH,
   SOL and WLFI of ``../shared/fixtures/real/l2_djienne_20250904`` (22.6 minutes of mainnet, in time order),
   written as the venue's ``l2Book`` WebSocket frames (bytes; the recording has no order counts: n = 1;
   the collector's float-formatted sizes such as "7e-05" are written back as the venue's "0.00007")
   before timing, then decoded by the path the stream supervisor uses (``parse.decode_frame`` +
   ``parse.l2_book_from_raw``: msgspec decodes the JSON in C straight into ``L2Book`` / ``Level`` structs
   whose prices and sizes are the venue's exact strings, ``Decimal`` on access). Each repetition parses
   the stream once. Also shown: the same plus reading every level's price and size as a ``Decimal`` (all
   80 per book), and the plain-Python path (``json.loads`` + the dict parser ``parse.l2_book``).
3. **Fills de-duplicated during a reconnect storm.** 10 leader addresses, 2,000 fills each (ascending
   time, unique tids); every 100 new fills per address the stream "reconnects": the venue's snapshot (the
   last 500 fills) and a backfill (the last 300) arrive again, interleaved with the pushes. Every offered
   fill goes through one ``FillDeduper.accept``; the figure is offered fills per second; the bench checks
   that exactly the 20,000 unique fills were accepted.
Each figure is the median of ``REPEATS`` runs.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import gzip
import hashlib
import json
import time
from collections.abc import Callable
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import Any

import hyperliquid.exchange as sdk_exchange
import structlog
from eth_account import Account
from hyperliquid.exchange import Exchange
from pydantic import SecretStr

from bench._stats import median, percentile
from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.hyperliquid.config import HyperliquidConfig
from hyperfollow.adapters.hyperliquid.dedupe import FillDeduper
from hyperfollow.adapters.hyperliquid.venue import HyperliquidVenue, connect
from hyperfollow.domain.model import CancelRequest, Fill, OrderRequest, Side
from hyperfollow.exchange.embedded import EmbeddedExchange
from hyperfollow.exchange.server import ServerLimits, running_in_thread

ORDERS = 1000  # per path per repetition
CANCEL_EVERY = 100
WARMUP = 50
REPEATS = 3
REPEATS_BOOKS = 5
KEY = "0x" + hashlib.sha256(b"hyperfollow adapter bench").hexdigest()
SDK_KEY = "0x" + hashlib.sha256(b"hyperfollow adapter bench, bare SDK").hexdigest()
BOOKS = Path(__file__).resolve().parents[2] / "shared/fixtures/real/l2_djienne_20250904"

GOALS = {
    "adapter overhead per order vs bare SDK": ("<", 10.0),
    "l2Book frames -> domain books": (">=", 50_000.0),
}


# ---------------------------------------------------------------- 1. overhead per order


async def _order_overhead() -> tuple[list[float], list[float]]:
    exchange = EmbeddedExchange(seed=7, stepped=True, simulated_traders=False, address_budget=None)
    exchange.set_price("ETH", Decimal(3000))
    wallet, sdk_wallet = Account.from_key(KEY), Account.from_key(SDK_KEY)  # two signers: two nonce clocks
    exchange.fund(wallet.address, "1000000")
    exchange.fund(sdk_wallet.address, "1000000")
    limits = ServerLimits(ip_weight_per_min=None, ws_max_users_per_ip=None)
    sdk_times: list[float] = []
    adapter_times: list[float] = []
    with running_in_thread(exchange, limits) as (url, _server):
        sdk = Exchange(sdk_wallet, url)
        venue = await connect(
            HyperliquidConfig(
                base_url=url,
                account_address=wallet.address,
                secret_key=SecretStr(KEY),
                ip_weight_per_min=10**9,  # the venue's 1,200/min would make the adapter wait: a load test
            )
        )
        loop = asyncio.get_running_loop()
        order = OrderRequest("ETH", Side.BUY, Decimal("0.01"), Decimal(2900))
        sdk_oids: list[int] = []
        try:
            for i in range(WARMUP + ORDERS):
                sdk_first = i % 2 == 0  # alternate who goes first: no ordering bias
                if not sdk_first:
                    t2 = time.perf_counter()
                    ack = await venue.gateway.submit(order)
                    t3 = time.perf_counter()
                t0 = time.perf_counter()
                answer = await loop.run_in_executor(None, _sdk_order, sdk)  # off the loop, as a user must
                t1 = time.perf_counter()
                if sdk_first:
                    t2 = time.perf_counter()
                    ack = await venue.gateway.submit(order)
                    t3 = time.perf_counter()
                if answer["status"] != "ok" or "resting" not in answer["response"]["data"]["statuses"][0]:
                    raise RuntimeError(f"SDK order did not rest: {answer}")
                sdk_oids.append(answer["response"]["data"]["statuses"][0]["resting"]["oid"])
                if ack.oid is None:
                    raise RuntimeError(f"adapter order did not rest: {ack}")
                if i >= WARMUP:
                    sdk_times.append(t1 - t0)
                    adapter_times.append(t3 - t2)
                if (i + 1) % CANCEL_EVERY == 0:
                    await _clear_book(venue)
                    requests = [{"coin": "ETH", "oid": oid} for oid in sdk_oids]
                    await loop.run_in_executor(None, sdk.bulk_cancel, requests)
                    sdk_oids.clear()
        finally:
            await venue.close()
    return sdk_times, adapter_times


def _sdk_order(sdk: Exchange) -> Any:
    return sdk.order("ETH", True, 0.01, 2900.0, {"limit": {"tif": "Gtc"}})


async def _clear_book(venue: HyperliquidVenue) -> None:
    orders = await venue.account.open_orders()
    await venue.gateway.cancel_batch([CancelRequest(o.coin, oid=o.oid) for o in orders])


def _monotonic_ms() -> Callable[[], int]:
    counter = count(int(time.time() * 1000))
    return lambda: next(counter)


# ---------------------------------------------------------------- 2. books


def _frames() -> list[bytes]:
    """The recorded books as the venue's l2Book frames, in time order across the four coins."""
    books: list[tuple[int, bytes]] = []
    for coin in ("BTC", "ETH", "SOL", "WLFI"):
        with gzip.open(BOOKS / f"orderbooks_{coin}.csv.gz", "rt") as fh:
            for row in csv.DictReader(fh):
                levels = [
                    [
                        {
                            "px": _venue(row[f"{side}_price_{i}"]),
                            "sz": _venue(row[f"{side}_size_{i}"]),
                            "n": 1,
                        }
                        for i in range(20)
                    ]
                    for side in ("bid", "ask")
                ]
                time_ms = int(row["exchange_timestamp"])
                data = {"coin": coin, "time": time_ms, "levels": levels}
                frame = {"channel": "l2Book", "data": data}
                books.append((time_ms, json.dumps(frame, separators=(",", ":")).encode()))  # compact, as sent
    books.sort(key=lambda b: b[0])
    return [frame for _, frame in books]


def _venue(text: str) -> str:
    """The venue's number format (the collector wrote some sizes as floats, "7e-05")."""
    return text if "e" not in text else format(Decimal(text), "f")


def _books_per_second(frames: list[bytes]) -> float:
    decode, to_book = parse.decode_frame, parse.l2_book_from_raw
    t0 = time.perf_counter()
    for frame in frames:
        _, data = decode(frame)
        to_book(data)
    return len(frames) / (time.perf_counter() - t0)


def _books_per_second_all_decimals(frames: list[bytes]) -> float:
    """The same, then every level's price and size read as a Decimal (what a consumer of all 40 pays)."""
    decode, to_book = parse.decode_frame, parse.l2_book_from_raw
    t0 = time.perf_counter()
    for frame in frames:
        _, data = decode(frame)
        book = to_book(data)
        for level in book.bids + book.asks:
            level.price  # noqa: B018
            level.size  # noqa: B018
    return len(frames) / (time.perf_counter() - t0)


def _books_per_second_dicts(frames: list[bytes]) -> float:
    t0 = time.perf_counter()
    for frame in frames:
        parse.l2_book(json.loads(frame)["data"])
    return len(frames) / (time.perf_counter() - t0)


# ---------------------------------------------------------------- 3. de-duplication


def _storm() -> tuple[list[Fill], int]:
    """The offered sequence (pushes, snapshots, backfills interleaved) and the number of unique fills."""
    addresses = [f"0x{i:040x}" for i in range(10)]
    per_address = {
        a: [
            Fill(a, "ETH", Side.BUY, Decimal(3000), Decimal("0.1"), 1_700_000_000_000 + k, Decimal(0),
                 "Open Long", Decimal(0), Decimal("0.01"), k, 10_000 * i + k, f"0x{k:064x}", True)
            for k in range(2000)
        ]
        for i, a in enumerate(addresses)
    }  # fmt: skip
    offered: list[Fill] = []
    for k in range(2000):
        for a in addresses:
            offered.append(per_address[a][k])
            if (k + 1) % 100 == 0:  # a reconnect: snapshot of the last 500 and a backfill of the last 300
                offered.extend(per_address[a][max(0, k - 499) : k + 1])
                offered.extend(per_address[a][max(0, k - 299) : k + 1])
    return offered, 20_000


def _dedupe_per_second(offered: list[Fill], unique: int) -> float:
    deduper = FillDeduper()
    accept = deduper.accept
    t0 = time.perf_counter()
    accepted = sum(1 for fill in offered if accept(fill))
    seconds = time.perf_counter() - t0
    if accepted != unique:
        raise RuntimeError(f"de-duplication accepted {accepted} fills, expected {unique}")
    return len(offered) / seconds


# ---------------------------------------------------------------- run


def run() -> list[tuple[str, float, str]]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # warnings off the table
    original = sdk_exchange.get_timestamp_ms
    sdk_exchange.get_timestamp_ms = _monotonic_ms()
    try:
        sdk_p50s, adapter_p50s, extra_p50s, sdk_all, adapter_all = [], [], [], [], []
        for _ in range(REPEATS):
            gc.collect()
            sdk_times, adapter_times = asyncio.run(_order_overhead())
            sdk_p50s.append(median(sdk_times))
            adapter_p50s.append(median(adapter_times))
            extra_p50s.append(median([a - b for a, b in zip(adapter_times, sdk_times, strict=True)]))
            sdk_all += sdk_times
            adapter_all += adapter_times
    finally:
        sdk_exchange.get_timestamp_ms = original
    sdk_p50, adapter_p50, extra_p50 = median(sdk_p50s), median(adapter_p50s), median(extra_p50s)
    frames = _frames()
    books = median([_books_per_second(frames) for _ in range(REPEATS_BOOKS)])
    books_decimals = median([_books_per_second_all_decimals(frames) for _ in range(REPEATS_BOOKS)])
    books_dicts = median([_books_per_second_dicts(frames) for _ in range(REPEATS_BOOKS)])
    offered, unique = _storm()
    dedupe = median([_dedupe_per_second(offered, unique) for _ in range(REPEATS)])
    return [
        ("adapter overhead per order vs bare SDK", 100 * extra_p50 / sdk_p50, "% of SDK p50"),
        ("adapter overhead per order, absolute", 1e6 * extra_p50, "us (paired median)"),
        ("order via bare SDK, p50", 1000 * sdk_p50, f"ms ({ORDERS} orders x {REPEATS})"),
        ("order via adapter (submit), p50", 1000 * adapter_p50, f"ms ({ORDERS} orders x {REPEATS})"),
        ("order via bare SDK, p99", 1000 * percentile(sdk_all, 99), "ms"),
        ("order via adapter (submit), p99", 1000 * percentile(adapter_all, 99), "ms"),
        ("l2Book frames -> domain books", books, f"books/s ({len(frames):,} real)"),
        ("l2Book frames -> books, all 80 Decimals read", books_decimals, "books/s"),
        ("l2Book via json.loads + dict parser", books_dicts, "books/s (for scale)"),
        ("fills de-duplicated, reconnect storm", dedupe, f"fills/s ({len(offered):,} offered)"),
    ]


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:45s} {value:14,.2f} {unit}")
