"""``hyperfollow download``: paging past 2,000 fills on the embedded exchange, the page cache, the CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from hyperliquid.utils.signing import OrderType
from support import Venue, serve_venue
from typer.testing import CliRunner

from hyperfollow.app.cli import app
from hyperfollow.app.download import (
    FILLS_PAGE,
    PageCache,
    download_candles,
    download_fills,
    read_only_client,
)
from hyperfollow.backtest.data.fills import load_fills
from hyperfollow.backtest.data.market import candles

IOC: OrderType = {"limit": {"tif": "Ioc"}}
SWEEPS, PER_SWEEP, STEP_MS = 18, 120, 20_000  # 2,160 taker fills over 6 simulated minutes


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


class Counting:
    """The client, counting the /info requests that reach the venue."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, []  # type: list[str]

    async def info(self, payload: dict[str, Any]) -> Any:
        self.calls.append(str(payload["type"]))
        return await self.inner.info(payload)


@pytest.fixture(scope="module")
def traded() -> Iterator[tuple[Venue, str, list[dict[str, Any]], int, int]]:
    """A venue where one taker sent 18 batches of 120 small IOC orders against the book, 20 s apart, buying
    and selling in turn: (venue, taker, its fills as the venue reports them batch by batch, first ms, last
    ms)."""
    with serve_venue() as venue:
        taker = venue.trader("dl-taker", "1000000")
        truth: list[dict[str, Any]] = []
        for k in range(SWEEPS):
            buy = k % 2 == 0
            mid = venue.mid("SOL")
            px = round(mid * (1.03 if buy else 0.97), 2)
            orders = [
                {
                    "coin": "SOL",
                    "is_buy": buy,
                    "sz": 0.1,
                    "limit_px": px,
                    "order_type": IOC,
                    "reduce_only": False,
                }
                for _ in range(PER_SWEEP)
            ]
            statuses = taker.exchange.bulk_orders(orders)["response"]["data"]["statuses"]
            assert all("filled" in s for s in statuses), statuses[:2]
            now = venue.now()
            truth += venue.info_request(
                {"type": "userFillsByTime", "user": taker.user, "startTime": now, "endTime": now}
            )
            venue.advance(STEP_MS)
        first, last = truth[0]["time"], truth[-1]["time"]
        assert len(truth) >= SWEEPS * PER_SWEEP > 2000  # an order may fill against several makers
        yield venue, taker.user, truth, first, last


def _tids(fills: list[dict[str, Any]]) -> list[int]:
    return [int(f["tid"]) for f in fills]


async def _download(venue: Venue, user: str, start: int, end: int, cache: Path) -> tuple[Any, Counting]:
    client = read_only_client(venue.url)
    counting = Counting(client)
    try:
        return await download_fills(counting, PageCache(cache, venue.url), user, start, end), counting
    finally:
        await client.close()


def test_fills_are_paged_past_2000_and_cached(
    traded: tuple[Venue, str, list[dict[str, Any]], int, int], tmp_path: Path
) -> None:
    venue, user, truth, first, last = traded
    (fills, stats), counting = asyncio.run(_download(venue, user, first, last, tmp_path))
    assert sorted(_tids(fills)) == sorted(_tids(truth))  # every fill once, past the 2,000 of one answer
    assert len(fills) == len(truth)
    assert [f["time"] for f in fills] == sorted(f["time"] for f in truth)
    assert counting.calls.count("userFillsByTime") == stats.requests - 1 == 2  # a full page, then the rest
    assert counting.calls.count("exchangeStatus") == 1  # is the window over? asked once
    second_page = sorted(f["time"] for f in truth)[FILLS_PAGE - 1]  # the next page starts at the last ms
    assert {p.name for p in tmp_path.rglob("*.json")} == {
        f"from-{first}.json",
        f"from-{second_page}-to-{last}.json",
    }
    # the second run reads every page from the cache: no request at all
    (again, stats2), counting2 = asyncio.run(_download(venue, user, first, last, tmp_path))
    assert counting2.calls == []
    assert (stats2.requests, stats2.cached) == (0, 2)
    assert again == fills


def test_a_window_not_over_is_fetched_again(
    traded: tuple[Venue, str, list[dict[str, Any]], int, int], tmp_path: Path
) -> None:
    venue, user, truth, first, _ = traded
    future = venue.now() + 3_600_000  # fills may still come: the tail page is not final
    (fills, _), counting = asyncio.run(_download(venue, user, first, future, tmp_path))
    assert len(fills) == len(truth)
    (_, stats), counting = asyncio.run(_download(venue, user, first, future, tmp_path))
    assert counting.calls == ["userFillsByTime", "exchangeStatus"]  # the full page came from the cache
    assert stats.cached == 1


def test_download_fills_command(
    traded: tuple[Venue, str, list[dict[str, Any]], int, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venue, user, truth, first, last = traded
    monkeypatch.setenv("HYPERFOLLOW_VENUE__BASE_URL", venue.url)
    out = tmp_path / "leader.json"
    args = ["download", "fills", "--user", user, "--start", str(first), "--end", str(last), "--out", str(out),
            "--cache", str(tmp_path / "cache")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"{len(truth):,} fills" in " ".join(result.output.split())
    history = load_fills(out, address=user)
    assert sorted(f.tid for f in history.fills) == sorted(_tids(truth))
    meta = json.loads((tmp_path / "leader.json.meta.json").read_text())
    assert "SOL" in {asset["name"] for asset in meta["meta"][""]["universe"]}

    # a second run reads the cached pages only: a client that refuses every request is enough
    class Refusing:
        async def info(self, payload: dict[str, Any]) -> Any:
            raise AssertionError(f"request sent: {payload}")

        async def close(self) -> None:
            pass

    monkeypatch.setattr("hyperfollow.app.download.read_only_client", lambda *a: Refusing())
    out2 = tmp_path / "again.json"
    result = CliRunner().invoke(
        app, [*args[:-4], "--out", str(out2), "--cache", str(tmp_path / "cache"), "--no-meta"]
    )
    assert result.exit_code == 0, result.output
    assert "(0 requests, 2 pages cached)" in " ".join(result.output.split())
    assert json.loads(out2.read_text()) == json.loads(out.read_text())


def test_download_candles_in_windows(
    traded: tuple[Venue, str, list[dict[str, Any]], int, int], tmp_path: Path
) -> None:
    venue, _, _, first, last = traded
    venue.advance(60_000)  # every candle of the span has closed: every window is final

    async def run() -> tuple[Any, Counting]:
        client = read_only_client(venue.url)
        counting = Counting(client)
        try:
            got = await download_candles(
                counting, PageCache(tmp_path, venue.url), "SOL", "1m", first, last, page_bars=2
            )
            return got, counting
        finally:
            await client.close()

    (bars, stats), counting = asyncio.run(run())
    direct = venue.info_request(
        {
            "type": "candleSnapshot",
            "req": {"coin": "SOL", "interval": "1m", "startTime": first, "endTime": last},
        }
    )
    assert bars == direct
    assert len(bars) >= 6  # 6 minutes of trading
    windows = -(-len(bars) // 2)
    assert counting.calls.count("candleSnapshot") == stats.requests - 1 == windows  # windows of 2 candles
    path = tmp_path / "sol.json"
    path.write_text(json.dumps(bars))
    assert [e.item.open_ms for e in candles(path)] == [b["t"] for b in bars]
    (_, stats2), counting2 = asyncio.run(run())
    assert counting2.calls == []
    assert stats2.cached == windows
