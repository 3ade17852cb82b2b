"""Loaders of the recorded real books and tapes (``../shared/fixtures/real``) as microstructure streams.

Each loader returns ``{coin: (snapshots, prints, orders_per_level)}``. Timestamps are the venue's
(``exchange_timestamp`` / ``time``), never the collector's clock.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path

from hyperfollow.exchange.microstructure import Print, Snapshot

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HYPERFOLLOW_SHARED") or REPO.parent / "shared")
REAL = SHARED / "fixtures" / "real"

Stream = tuple[list[Snapshot], list[Print], list[int]]
DJIENNE = ("l2_djienne_20250903", "l2_djienne_20250904")
DJIENNE_COINS = ("BTC", "ETH", "SOL")


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with gzip.open(path, "rt", newline="") as fh:
        yield from csv.DictReader(fh)


def load_djienne(folder: str, coins: tuple[str, ...] = DJIENNE_COINS) -> dict[str, Stream]:
    """One djienne capture: 20-level books and the tape per coin (no addresses, no order counts)."""
    out: dict[str, Stream] = {}
    for coin in coins:
        books = []
        for row in _rows(REAL / folder / f"orderbooks_{coin}.csv.gz"):
            bids, asks = [], []
            for i in range(20):
                bp, bs = row.get(f"bid_price_{i}"), row.get(f"bid_size_{i}")
                ap, az = row.get(f"ask_price_{i}"), row.get(f"ask_size_{i}")
                if bp and bs:
                    bids.append((float(bp), float(bs)))
                if ap and az:
                    asks.append((float(ap), float(az)))
            books.append(Snapshot(int(row["exchange_timestamp"]), bids, asks))
        books.sort(key=lambda b: b.ts_ms)
        prints = [
            Print(int(r["exchange_timestamp"]), float(r["price"]), float(r["size"]), r["side"] == "buy")
            for r in _rows(REAL / folder / f"trades_{coin}.csv.gz")
        ]
        prints.sort(key=lambda p: p.ts_ms)
        out[coin] = (books, prints, [])
    return out


def _ws_frames(path: Path, hft: bool) -> Iterator[tuple[str, object]]:
    with gzip.open(path, "rt") as fh:
        for line in fh:
            if not line.strip():
                continue
            msg = json.loads(line.split(" ", 1)[1] if hft else line)
            yield msg["channel"], msg["data"]


def load_ws(path: Path, hft: bool = False) -> dict[str, Stream]:
    """Raw WS frames (copier audit ``jsonl`` or hftbacktest ``<ns> <json>`` lines), per coin."""
    out: dict[str, Stream] = {}
    seen_tids: set[tuple[str, int]] = set()
    for channel, data in _ws_frames(path, hft):
        if channel == "l2Book" and isinstance(data, dict):
            coin = data["coin"]
            books, _, counts = out.setdefault(coin, ([], [], []))
            bids = [(float(lv["px"]), float(lv["sz"])) for lv in data["levels"][0]]
            asks = [(float(lv["px"]), float(lv["sz"])) for lv in data["levels"][1]]
            counts.extend(int(lv["n"]) for side in data["levels"] for lv in side)
            books.append(Snapshot(int(data["time"]), bids, asks))
        elif channel == "trades" and isinstance(data, list):
            for t in data:
                key = (t["coin"], int(t["tid"]))
                if key in seen_tids:
                    continue
                seen_tids.add(key)
                users = t.get("users")
                prints = out.setdefault(t["coin"], ([], [], []))[1]
                prints.append(
                    Print(
                        int(t["time"]),
                        float(t["px"]),
                        float(t["sz"]),
                        t["side"] == "B",
                        (users[0], users[1]) if users else None,
                    )
                )
    for books, prints, _ in out.values():
        books.sort(key=lambda b: b.ts_ms)
        prints.sort(key=lambda p: p.ts_ms)
    return out


def load_live_books() -> dict[str, Stream]:
    """The copier audit's 5-minute live capture (BTC and HIP-3 books, tapes with addresses)."""
    return load_ws(REAL / "copytrader_audit_202607" / "live_books_5m.jsonl.gz")


def load_hftbacktest() -> dict[str, Stream]:
    """The hftbacktest BTC capture (26 s of books and trades with addresses)."""
    return load_ws(REAL / "ws_hftbacktest_20250126" / "btcusd_20250126.gz", hft=True)


def load_axon_closes(coin: str) -> list[float]:
    """Consecutive 1-minute closes of ``coin`` (btc or eth) from the axon candles."""
    with (REAL / "candles_axon" / f"{coin.lower()}-1m.csv").open(newline="") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: int(r["T"]))
    return [float(r["c"]) for r in rows]
