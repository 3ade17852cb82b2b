"""``hyperfollow download fills|candles``: a wallet's fills or a coin's candles from the venue, for backtests.

Both read public ``/info`` data only: nothing is signed and nothing is sent that could trade, so mainnet
needs no ``--live`` here (the mainnet guard protects orders; a download places none). The venue is the one
the settings name (``HYPERFOLLOW_VENUE__NETWORK``, embedded by default; ``--network`` overrides it).

* Fills: ``userFillsByTime`` answers at most 2,000 fills, oldest first, so the command pages by time: the
  next page starts at the last page's latest millisecond (fills of that millisecond may straddle the pages;
  repeats are dropped by trade id). The output is a JSON array of the venue's fill objects, oldest first
  in position order, which ``backtest.data.fills.load_fills`` reads. With ``--meta`` (default) the venue's
  ``perpDexs`` and each dex's ``meta`` are saved beside it (``<out>.meta.json``) for the coins' rules.
* Candles: ``candleSnapshot`` answers at most 5,000 candles, so the span is cut into windows of
  ``page_bars`` candles; the output is a JSON array of the venue's candle objects.

Requests go through the Hyperliquid adapter's client, whose weight limiter keeps to the venue's REST
budget (1,200 weight a minute per IP) and retries what the venue refused before acting. Every complete page
is cached on disk (``--cache``, one JSON file per page under the venue's host): a full fill page never
changes, nor does a window that ended before the venue's time (``exchangeStatus``), so a re-run fetches only
what was not complete. A tail page (fewer than 2,000 fills, or a window still open) is always re-fetched.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.hyperliquid.client import HyperliquidInfoClient
from hyperfollow.adapters.hyperliquid.config import EndpointConfig, is_address, is_mainnet_url, url_host
from hyperfollow.recordings.candles import INTERVAL_MS, to_ms

FILLS_PAGE = 2000  # userFillsByTime answers at most this many
CANDLES_PAGE = 5000  # candleSnapshot answers at most this many

download_app = typer.Typer(
    help="Fetch a wallet's fills or a coin's candles from the venue (public data), cached on disk.",
    no_args_is_help=True,
)
console = Console()


class InfoClient(Protocol):
    async def info(self, payload: dict[str, Any]) -> Any: ...


# --------------------------------------------------------------------------------------------- cache


class PageCache:
    """Complete pages as JSON files under ``root/<venue host>/`` (written atomically)."""

    def __init__(self, root: Path, base_url: str) -> None:
        host = url_host(base_url) or "venue"
        port = re.search(r":(\d+)(?:/|$)", base_url.split("//", 1)[-1])
        self.root = root / (f"{host}_{port.group(1)}" if port else host)

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*(re.sub(r"[^A-Za-z0-9._-]", "_", p) for p in parts))

    def get(self, path: Path) -> Any | None:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except ValueError:  # a torn or foreign file: fetch again
            return None

    def put(self, path: Path, value: Any) -> None:
        write_json(path, value)


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as JSON through a temporary file, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, separators=(",", ":")))
    os.replace(tmp, path)


@dataclass
class DownloadStats:
    requests: int = 0  # pages fetched from the venue
    cached: int = 0  # pages read from the cache
    items: int = 0  # fills or candles kept


class _VenueTime:
    """The venue's clock (``exchangeStatus``), asked once and only when a page's completeness needs it."""

    def __init__(self, client: InfoClient, stats: DownloadStats) -> None:
        self._client, self._stats, self._ms = client, stats, 0
        self._asked_at = 0.0

    async def now_ms(self) -> int:
        if not self._ms:
            answer = await self._client.info({"type": "exchangeStatus"})
            self._stats.requests += 1
            stamp = answer.get("time") if isinstance(answer, dict) else None
            self._ms = int(stamp) if isinstance(stamp, int) else int(time.time() * 1000)
            self._asked_at = time.monotonic()
        return self._ms + int((time.monotonic() - self._asked_at) * 1000)


Progressed = Callable[[int, DownloadStats], None]  # (covered up to ms, stats)


# --------------------------------------------------------------------------------------------- fills


async def download_fills(
    client: InfoClient,
    cache: PageCache,
    user: str,
    start_ms: int,
    end_ms: int | None,
    *,
    page_size: int = FILLS_PAGE,
    on_page: Progressed | None = None,
) -> tuple[list[dict[str, Any]], DownloadStats]:
    """The venue's fill objects of ``user`` in ``[start_ms, end_ms]``, oldest first in position order."""
    user = user.lower()
    stats = DownloadStats()
    clock = _VenueTime(client, stats)
    by_key: dict[tuple[object, ...], tuple[Any, dict[str, Any]]] = {}
    cursor = start_ms
    while True:
        full_path = cache.path("fills", user, f"from-{cursor}.json")
        tail_path = cache.path("fills", user, f"from-{cursor}-to-{end_ms}.json")
        page = cache.get(full_path)
        if page is None and end_ms is not None:
            page = cache.get(tail_path)
        if page is not None:
            stats.cached += 1
        else:
            request = {"type": "userFillsByTime", "user": user, "startTime": cursor, "endTime": end_ms}
            page = await client.info({**request, "aggregateByTime": False}) or []
            stats.requests += 1
            if len(page) >= page_size:
                cache.put(full_path, page)
            elif end_ms is not None and end_ms < await clock.now_ms():
                cache.put(tail_path, page)
        parsed = [(parse.fill(user, raw), raw) for raw in page]
        new = [(f, raw) for f, raw in parsed if f.key not in by_key]
        by_key.update((f.key, (f, raw)) for f, raw in new)
        last = max((f.time_ms for f, _ in parsed), default=cursor)
        if on_page is not None:
            stats.items = len(by_key)
            on_page(last, stats)
        if len(page) < page_size or not new:
            break
        cursor = last if last > cursor else cursor + 1  # one millisecond filled a whole page: step past it
    ordered = parse.in_position_order(f for f, _ in by_key.values())
    raws = {id(f): raw for f, raw in by_key.values()}
    stats.items = len(ordered)
    return [raws[id(f)] for f in ordered], stats


async def download_meta(client: InfoClient) -> dict[str, Any]:
    """``perpDexs`` and every dex's ``meta`` (the coins' szDecimals, max leverage, HIP-3 dexes)."""
    dexs = await client.info({"type": "perpDexs"}) or [None]
    names = [""] + [str(d["name"]) for d in dexs[1:] if isinstance(d, dict) and d.get("name")]
    metas = [await client.info({"type": "meta", "dex": name}) for name in names]
    return {"perpDexs": dexs, "meta": dict(zip(names, metas, strict=True))}


# --------------------------------------------------------------------------------------------- candles


async def download_candles(
    client: InfoClient,
    cache: PageCache,
    coin: str,
    interval: str,
    start_ms: int,
    end_ms: int,
    *,
    page_bars: int = CANDLES_PAGE,
    on_page: Progressed | None = None,
) -> tuple[list[dict[str, Any]], DownloadStats]:
    """The venue's candles of ``coin`` opening in ``[start_ms, end_ms]``, oldest first."""
    step = INTERVAL_MS[interval]
    stats = DownloadStats()
    clock = _VenueTime(client, stats)
    by_open: dict[int, dict[str, Any]] = {}
    window = start_ms - start_ms % step
    while window <= end_ms:
        last_open = min(window + (page_bars - 1) * step, end_ms - end_ms % step)
        path = cache.path("candles", coin, interval, f"{window}-{last_open}.json")
        page = cache.get(path)
        if page is not None:
            stats.cached += 1
        else:
            req = {"coin": coin, "interval": interval, "startTime": window, "endTime": last_open}
            page = await client.info({"type": "candleSnapshot", "req": req}) or []
            stats.requests += 1
            if last_open + step - 1 < await clock.now_ms():  # every candle of the window has closed
                cache.put(path, page)
        for raw in page:
            if window <= int(raw["t"]) <= last_open:
                by_open[int(raw["t"])] = raw
        stats.items = len(by_open)
        if on_page is not None:
            on_page(min(last_open + step, end_ms), stats)
        window = last_open + step
    return [by_open[t] for t in sorted(by_open) if start_ms - start_ms % step <= t], stats


# --------------------------------------------------------------------------------------------- wiring


def read_only_client(base_url: str) -> HyperliquidInfoClient:
    """The adapter's client for public ``/info`` reads: no key, and no way to post to ``/exchange``."""
    return HyperliquidInfoClient(EndpointConfig(base_url=base_url), max_workers=1)


def _base_url(network: str | None) -> str:
    from hyperfollow.app.cli import _settings
    from hyperfollow.app.venue import venue_base_url

    settings = _settings()
    if network is not None:
        if network not in ("embedded", "testnet", "mainnet"):
            raise typer.BadParameter("must be embedded, testnet or mainnet", param_hint="--network")
        venue = settings.venue.model_copy(update={"network": network, "base_url": None})
        settings = settings.model_copy(update={"venue": venue})
    return venue_base_url(settings)


def _ms(text: str, option: str) -> int:
    try:
        return to_ms(text.strip())
    except ValueError:
        raise typer.BadParameter(
            "a time: epoch ms, or a UTC date / date-time like 2026-07-19 or 2026-07-19T01:51:00Z",
            param_hint=option,
        ) from None


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[detail]}"),
        console=console,
        transient=False,
    )


def _announce(base_url: str) -> None:
    where = "mainnet, read-only public data" if is_mainnet_url(base_url) else "read-only"
    console.print(f"venue {base_url} ({where}: nothing is signed or sent)")


CacheOption = Annotated[Path, typer.Option("--cache", help="folder of the page cache")]
NetworkOption = Annotated[
    str | None, typer.Option(help="embedded, testnet or mainnet (default: HYPERFOLLOW_VENUE__NETWORK)")
]


@download_app.command("fills")
def fills_command(
    user: Annotated[str, typer.Option("--user", help="the wallet (0x...)")],
    start: Annotated[str, typer.Option(help="from (epoch ms or UTC date-time)")],
    out: Annotated[Path, typer.Option(help="the JSON file to write")],
    end: Annotated[str | None, typer.Option(help="to, inclusive (default: now)")] = None,
    cache: CacheOption = Path(".hyperfollow-cache"),
    network: NetworkOption = None,
    meta: Annotated[bool, typer.Option(help="also save the venue's perp listings as <out>.meta.json")] = True,
) -> None:
    """Download a wallet's fills (paged past 2,000, within the rate budget, cached) as a JSON array."""
    if not is_address(user):
        raise typer.BadParameter("not a 0x address of 40 hex digits", param_hint="--user")
    start_ms = _ms(start, "--start")
    end_ms = None if end is None else _ms(end, "--end")
    base_url = _base_url(network)
    _announce(base_url)
    goal = end_ms if end_ms is not None else int(time.time() * 1000)

    async def run() -> tuple[list[dict[str, Any]], DownloadStats]:
        client = read_only_client(base_url)
        try:
            with _progress() as progress:
                task = progress.add_task("fills", total=max(1, goal - start_ms), detail="")

                def on_page(covered: int, stats: DownloadStats) -> None:
                    detail = f"{stats.items:,} fills, {stats.requests} fetched, {stats.cached} cached"
                    progress.update(task, completed=min(covered, goal) - start_ms, detail=detail)

                result = await download_fills(
                    client, PageCache(cache, base_url), user, start_ms, end_ms, on_page=on_page
                )
                progress.update(task, completed=goal - start_ms)
            if meta:
                write_json(out.with_name(out.name + ".meta.json"), await download_meta(client))
            return result
        finally:
            await client.close()

    fills, stats = _run(run)
    write_json(out, fills)
    console.print(f"{len(fills):,} fills -> {out}  ({stats.requests} requests, {stats.cached} pages cached)")


@download_app.command("candles")
def candles_command(
    coin: Annotated[str, typer.Option(help="the coin, e.g. BTC or xyz:TSLA")],
    start: Annotated[str, typer.Option(help="from (epoch ms or UTC date-time)")],
    end: Annotated[str, typer.Option(help="to, inclusive (epoch ms or UTC date-time)")],
    interval: Annotated[str, typer.Option(help="1m, 5m, 15m, 1h, 4h, 1d, ...")] = "1m",
    out: Annotated[
        Path | None, typer.Option(help="the JSON file (default: candles_<COIN>_<interval>.json)")
    ] = None,
    cache: CacheOption = Path(".hyperfollow-cache"),
    network: NetworkOption = None,
) -> None:
    """Download a coin's candles (in windows of 5,000, within the rate budget, cached) as a JSON array."""
    if interval not in INTERVAL_MS:
        raise typer.BadParameter(f"one of {', '.join(INTERVAL_MS)}", param_hint="--interval")
    start_ms, end_ms = _ms(start, "--start"), _ms(end, "--end")
    if end_ms < start_ms:
        raise typer.BadParameter("must not be before --start", param_hint="--end")
    target = out or Path(f"candles_{re.sub(r'[^A-Za-z0-9]', '_', coin)}_{interval}.json")
    base_url = _base_url(network)
    _announce(base_url)

    async def run() -> tuple[list[dict[str, Any]], DownloadStats]:
        client = read_only_client(base_url)
        try:
            with _progress() as progress:
                task = progress.add_task(f"{coin} {interval}", total=max(1, end_ms - start_ms), detail="")

                def on_page(covered: int, stats: DownloadStats) -> None:
                    detail = f"{stats.items:,} candles, {stats.requests} fetched, {stats.cached} cached"
                    progress.update(task, completed=covered - start_ms, detail=detail)

                return await download_candles(
                    client, PageCache(cache, base_url), coin, interval, start_ms, end_ms, on_page=on_page
                )
        finally:
            await client.close()

    candles, stats = _run(run)
    write_json(target, candles)
    console.print(f"{len(candles):,} candles -> {target}  ({stats.requests} requests, {stats.cached} cached)")


def _run(main: Callable[[], Any]) -> Any:
    """Run the download; a venue error is said in words (exit 1), not as a traceback."""
    try:
        return asyncio.run(main())
    except Exception as exc:
        console.print(f"[red]{type(exc).__name__}: {escape(str(exc))}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
