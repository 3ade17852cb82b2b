"""The `hyperfollow` command line."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
from collections.abc import Callable
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hyperfollow.app.backtest import backtest_app
from hyperfollow.app.download import download_app
from hyperfollow.app.logging import configure_logging
from hyperfollow.app.settings import (
    ExchangeSettings,
    Settings,
    SettingsError,
    load_settings,
    merge_venue,
)

app = typer.Typer(
    help="hyperfollow: copy-trading and risk for Hyperliquid perps, with an embedded exchange.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"show_default": True},
)
app.add_typer(download_app, name="download")
app.add_typer(backtest_app, name="backtest")
console = Console()
_EXCHANGE = ExchangeSettings()  # the defaults the exchange command's help shows


def _reflowed(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Join the lines of each paragraph of ``fn``'s docstring: the help renderer keeps single newlines,
    so a docstring wrapped for the source would be printed with ragged breaks."""
    doc = inspect.cleandoc(fn.__doc__ or "")
    fn.__doc__ = "\n\n".join(" ".join(part.split()) for part in doc.split("\n\n"))
    return fn


def _version() -> str:
    try:
        return version("hyperfollow")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"hyperfollow {_version()}")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """hyperfollow: copy-trading and risk for Hyperliquid perps, with an embedded exchange."""


def _refuse(message: str) -> typer.Exit:
    """Print a refusal (red, no markup interpretation) and return the exit to raise (code 2)."""
    console.print(f"[red]{escape(message)}[/red]", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:  # names the environment variable; never echoes a key-shaped value
        raise _refuse(str(exc)) from None


@app.command()
@_reflowed
def exchange(
    host: Annotated[
        str | None, typer.Option(help=f"interface to bind (setting default: {_EXCHANGE.host})")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help=f"TCP port, 0 picks a free one (setting default: {_EXCHANGE.port})")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help=f"seed of the market and traders (setting default: {_EXCHANGE.seed})")
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(help=f"simulated seconds per wall second (setting default: {_EXCHANGE.speed:g})"),
    ] = None,
    stepped: Annotated[
        bool | None,
        typer.Option(help=f"clock moves only on POST /sim/advance (setting default: {_EXCHANGE.stepped})"),
    ] = None,
    recording: Annotated[str | None, typer.Option(help="replay this recording instead of generating")] = None,
    traders: Annotated[
        bool | None,
        typer.Option(help=f"run the simulated traders (setting default: {_EXCHANGE.simulated_traders})"),
    ] = None,
    no_limits: Annotated[
        bool, typer.Option("--no-limits", help="switch off the venue's rate limits (load tests)")
    ] = False,
) -> None:
    """Serve the embedded Hyperliquid-compatible exchange (POST /info, POST /exchange, GET /ws, /sim/*).

    Every option defaults to its `HYPERFOLLOW_EXCHANGE__*` setting; the command line wins.
    """
    from hyperfollow.exchange.embedded import EmbeddedExchange
    from hyperfollow.exchange.server import ExchangeServer, ServerLimits, serve

    settings = _settings()
    configure_logging(settings.logging.level, settings.logging.json_output)
    overrides = {
        "host": host, "port": port, "seed": seed, "speed": speed, "stepped": stepped,
        "recording": recording, "simulated_traders": traders,
    }  # fmt: skip
    cfg = settings.exchange.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    limits = cfg.limits
    try:
        ex = EmbeddedExchange(
            seed=cfg.seed,
            speed=cfg.speed,
            stepped=cfg.stepped,
            recording=cfg.recording,
            coins=cfg.coins if cfg.recording is None else None,
            simulated_traders=cfg.simulated_traders,
            is_mainnet=cfg.network == "mainnet",
            nonce_window_ms=(limits.nonce_window_past_ms, limits.nonce_window_future_ms),
            address_budget=None
            if no_limits or not limits.enforce_address_budget
            else limits.address_initial_budget,
        )
    except (OSError, ValueError) as exc:
        console.print(f"[red]Cannot start the exchange:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    server_limits = ServerLimits(
        ip_weight_per_min=None if no_limits or not limits.enforce_ip_weight else limits.ip_weight_per_min,
        ws_max_users_per_ip=None if no_limits or not limits.enforce_ws_users else limits.ws_max_users_per_ip,
    )
    server = ExchangeServer(ex, server_limits, cfg.tick_ms)

    async def main() -> None:
        runner, url = await serve(server, cfg.host, cfg.port)
        console.print(
            f"embedded exchange listening on [bold]{url}[/bold]  (WebSocket {url.replace('http', 'ws')}/ws)"
        )
        console.print(f"point any Hyperliquid client at it, e.g. Info('{url}'), Exchange(wallet, '{url}')")
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
    except OSError as exc:  # the address is taken, or not ours to bind
        if exc.errno == errno.EADDRINUSE:
            raise _refuse(
                f"Cannot start the exchange: {cfg.host}:{cfg.port} is already in use (another exchange?); "
                "choose another with --port, or stop what listens there."
            ) from None
        raise _refuse(f"Cannot start the exchange on {cfg.host}:{cfg.port}: {exc.strerror or exc}") from None


@app.command()
@_reflowed
def demo(
    duration: Annotated[float, typer.Option(help="wall seconds of copying (Ctrl-C ends early)")] = 60.0,
    speed: Annotated[float, typer.Option(help="simulated seconds per wall second")] = 30.0,
    seed: Annotated[int, typer.Option(help="seed of the market and the simulated traders")] = 7,
    out: Annotated[Path, typer.Option(help="folder for the SQLite store and the equity plot")] = Path(
        "hyperfollow-demo"
    ),
    usd: Annotated[float, typer.Option(help="the follower's starting capital (USDC)")] = 10_000,
) -> None:
    """Copy trading end to end: the embedded exchange with simulated traders, a follower copying three of
    them through the real Hyperliquid adapter (mirror taker, mirror maker, delta sync), a live view, then
    a report (per-leader PnL, copies and skips, latency) and a PNG of follower vs leader equity in --out.
    """
    from hyperfollow.app.demo import DemoOptions, run_demo

    if duration <= 0 or speed <= 0 or usd < 100:
        console.print("[red]--duration and --speed must be positive, --usd at least 100[/red]")
        raise typer.Exit(2)
    configure_logging("WARNING")
    options = DemoOptions(
        duration_s=duration, speed=speed, seed=seed, out=out, follower_usd=Decimal(str(usd))
    )
    result = asyncio.run(run_demo(options, console))
    if result.leftover_tasks:  # a bug: say so rather than hide it
        console.print(f"[yellow]tasks still running at the end: {result.leftover_tasks}[/yellow]")


@app.command("copy")
@_reflowed
def copy_command(
    config: Annotated[Path, typer.Option("--config", help="the follow file (follow.toml)")],
    live: Annotated[bool, typer.Option("--live", help="required to trade on mainnet (real money)")] = False,
    duration: Annotated[
        float | None, typer.Option(help="stop after this many wall seconds (default: until Ctrl-C)")
    ] = None,
    paper: Annotated[
        bool,
        typer.Option(
            "--paper",
            help="trade a simulated account on the venue's live market; nothing is sent to the venue",
        ),
    ] = False,
    paper_usd: Annotated[
        float, typer.Option(help="--paper: the simulated account's starting USDC (when it is new)")
    ] = 10_000,
) -> None:
    """Copy the leaders of --config for the configured account, with a live view and a report at the end.

    With --paper the venue is only read (market data and the leaders' fills: no key, no --live needed) and
    the copies trade a simulated account kept in the store, which the next --paper run resumes.

    The venue and account come from the file's \\[venue] table and HYPERFOLLOW_VENUE__* (the environment
    wins). The signing key comes from HYPERFOLLOW_VENUE__AGENT_KEY only; the store from
    HYPERFOLLOW_STORE__URL. Mainnet is refused unless --live is given (HYPERFOLLOW_VENUE__LIVE is not
    enough here). A key that the account never approved as its agent is refused before anything is sent.
    """
    from hyperfollow.adapters.hyperliquid.account import SignerNotAuthorized
    from hyperfollow.app.copy_run import run_copy
    from hyperfollow.app.follow_config import FollowConfigError, load_copy_config
    from hyperfollow.app.venue import VenueConfigError, adapter_config

    settings = _settings()
    configure_logging(settings.logging.level, settings.logging.json_output)
    if duration is not None and duration <= 0:
        console.print("[red]--duration must be positive[/red]")
        raise typer.Exit(2)
    if paper:
        _copy_paper(config, settings, duration, Decimal(str(paper_usd)))
        return
    try:
        follow_config = load_copy_config(config)
        venue = merge_venue(settings.venue, follow_config.venue, str(config), live=live)
        settings = settings.model_copy(update={"venue": venue})
        refuse_mainnet_without_live(settings, live)
        venue_config = adapter_config(settings)
    except (FollowConfigError, VenueConfigError, SettingsError) as exc:
        raise _refuse(str(exc)) from None
    try:
        asyncio.run(run_copy(follow_config, venue_config, settings.store.url, console, duration_s=duration))
    except SignerNotAuthorized as exc:
        raise _refuse(str(exc)) from None
    except Exception as exc:  # a venue or store error: say it in words, not a traceback
        console.print(f"[red]{type(exc).__name__}: {escape(str(exc))}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _copy_paper(config: Path, settings: Settings, duration: float | None, start_usd: Decimal) -> None:
    """``copy --paper``: the venue settings say only where the market is; no key is read or needed."""
    from hyperfollow.app.follow_config import FollowConfigError, load_copy_config
    from hyperfollow.app.paper_run import run_paper
    from hyperfollow.app.venue import VenueConfigError, endpoint_config

    if start_usd < 100:
        raise _refuse("--paper-usd must be at least 100")
    try:
        follow_config = load_copy_config(config)
        venue = merge_venue(settings.venue, follow_config.venue, str(config), live=False)
        settings = settings.model_copy(update={"venue": venue})
        endpoint = endpoint_config(settings)
    except (FollowConfigError, VenueConfigError, SettingsError) as exc:
        raise _refuse(str(exc)) from None
    name = settings.venue.account_address or "default"
    try:
        asyncio.run(
            run_paper(follow_config, endpoint, settings.store.url, console, account_name=name,
                      start_usd=start_usd, duration_s=duration)
        )  # fmt: skip
    except Exception as exc:  # a venue or store error: say it in words, not a traceback
        console.print(f"[red]{type(exc).__name__}: {escape(str(exc))}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def refuse_mainnet_without_live(settings: Settings, live: bool) -> None:
    """Mainnet needs --live on the command line: raises ``VenueConfigError`` before anything connects."""
    from hyperfollow.adapters.hyperliquid.config import is_mainnet_url
    from hyperfollow.app.venue import VenueConfigError, venue_base_url

    if live:
        return
    if settings.venue.network == "mainnet" or is_mainnet_url(venue_base_url(settings)):
        raise VenueConfigError(
            "Refusing to copy on mainnet (real money) without --live: run `hyperfollow copy --config "
            '<file> --live` to trade live, or set network = "testnet" in [venue].'
        )


@app.command()
@_reflowed
def account() -> None:
    """Read-only check of the venue settings: connect as configured and show the account.

    Sends no order. Use it to verify a testnet (or live) setup before trading: network, signer,
    account, equity, positions, open orders and the address action budget. A signing key the account
    never approved as its agent (or an expired agent) is refused with what to do (exit 2).
    """
    from hyperfollow.adapters.hyperliquid.account import SignerNotAuthorized
    from hyperfollow.app.venue import VenueConfigError, adapter_config

    settings = _settings()
    configure_logging(settings.logging.level, settings.logging.json_output)
    try:
        config = adapter_config(settings)
    except VenueConfigError as exc:
        raise _refuse(str(exc)) from None
    try:
        asyncio.run(_show_account(config))
    except SignerNotAuthorized as exc:
        raise _refuse(str(exc)) from None
    except Exception as exc:  # a venue error: say it in words, not a traceback
        console.print(f"[red]{type(exc).__name__}: {escape(str(exc))}[/red]")
        raise typer.Exit(1) from None


async def _show_account(config: Any) -> None:
    import time

    from hyperfollow.adapters.hyperliquid.account import check_signer
    from hyperfollow.adapters.hyperliquid.venue import connect

    venue = await connect(config)
    try:
        await check_signer(venue.client, venue.client.signer_address, int(time.time() * 1000))
        snap = await venue.account.snapshot()
        orders = await venue.account.open_orders()
        budget = await venue.account.rate_limit()
        console.print(f"venue    {config.base_url}  ({'mainnet' if config.is_mainnet else 'not mainnet'})")
        console.print(f"signer   {venue.client.signer_address}")
        console.print(f"account  {config.query_address}")
        console.print(
            f"equity   {snap.equity} USDC  (margin used {snap.margin_used}, free {snap.withdrawable})"
        )
        console.print(f"actions  {budget.used:,} used of {budget.cap:,}")
        table = Table("coin", "size", "entry", "uPnL", "leverage", "liq. px", title="positions")
        for p in snap.positions:
            lev = f"{p.leverage}x {'cross' if p.is_cross else 'isolated'}"
            table.add_row(
                p.coin, str(p.size), str(p.entry_price), str(p.unrealized_pnl), lev, str(p.liquidation_price)
            )
        console.print(table)
        console.print(f"{len(orders)} open order(s)")
    finally:
        await venue.close()


if __name__ == "__main__":
    app()
