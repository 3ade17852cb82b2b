"""The `hyperfollow` command line."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hyperfollow.app.logging import configure_logging
from hyperfollow.app.settings import Settings, VenueSettings

app = typer.Typer(
    help="hyperfollow: copy-trading and risk for Hyperliquid perps, with an embedded exchange.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic ValidationError names the field
        console.print(f"[red]Invalid settings (HYPERFOLLOW_* environment):[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None


@app.command()
def exchange(
    host: Annotated[str | None, typer.Option(help="interface to bind [settings: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port, 0 picks a free one [settings: 8931]")] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the market and traders [settings: 7]")] = None,
    speed: Annotated[
        float | None, typer.Option(help="simulated seconds per wall second [settings: 1]")
    ] = None,
    stepped: Annotated[bool | None, typer.Option(help="clock moves only on POST /sim/advance")] = None,
    recording: Annotated[str | None, typer.Option(help="replay this recording instead of generating")] = None,
    traders: Annotated[bool | None, typer.Option(help="run the simulated traders [settings: yes]")] = None,
    no_limits: Annotated[bool, typer.Option(help="switch off the venue's rate limits (load tests)")] = False,
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

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


@app.command()
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
def copy_command(
    config: Annotated[Path, typer.Option("--config", help="the follow file (follow.toml)")],
    live: Annotated[bool, typer.Option("--live", help="required to trade on mainnet (real money)")] = False,
    duration: Annotated[
        float | None, typer.Option(help="stop after this many wall seconds (default: until Ctrl-C)")
    ] = None,
) -> None:
    """Copy the leaders of --config for the configured account (HYPERFOLLOW_VENUE__*; the file's [venue]
    overrides them), with a live view and a report at the end.

    The signing key comes from HYPERFOLLOW_VENUE__AGENT_KEY only; the store from HYPERFOLLOW_STORE__URL.
    Mainnet is refused unless --live is given (the HYPERFOLLOW_VENUE__LIVE setting is not enough here).
    """
    from hyperfollow.app.copy_run import run_copy
    from hyperfollow.app.follow_config import FollowConfigError, load_copy_config
    from hyperfollow.app.venue import VenueConfigError, adapter_config

    settings = _settings()
    configure_logging(settings.logging.level, settings.logging.json_output)
    if duration is not None and duration <= 0:
        console.print("[red]--duration must be positive[/red]")
        raise typer.Exit(2)
    try:
        follow_config = load_copy_config(config)
        settings = _with_venue(settings, follow_config.venue, live)
        refuse_mainnet_without_live(settings, live)
        venue_config = adapter_config(settings)
    except (FollowConfigError, VenueConfigError) as exc:
        console.print(f"[red]{escape(str(exc))}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    try:
        asyncio.run(run_copy(follow_config, venue_config, settings.store.url, console, duration_s=duration))
    except Exception as exc:  # a venue or store error: say it in words, not a traceback
        console.print(f"[red]{type(exc).__name__}: {escape(str(exc))}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _with_venue(settings: Settings, overrides: dict[str, str], live: bool) -> Settings:
    """``settings`` with the follow file's [venue] values, and ``live`` from the command line only."""
    from hyperfollow.app.venue import VenueConfigError

    try:
        venue = VenueSettings.model_validate({**settings.venue.model_dump(), **overrides, "live": live})
    except ValidationError as exc:
        problems = "; ".join(f"venue.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise VenueConfigError(f"Invalid [venue] in the follow file: {problems}") from None
    return settings.model_copy(update={"venue": venue})


def refuse_mainnet_without_live(settings: Settings, live: bool) -> None:
    """Mainnet needs --live on the command line: raises ``VenueConfigError`` before anything connects."""
    from hyperfollow.adapters.hyperliquid.config import MAINNET_API_URL
    from hyperfollow.app.venue import VenueConfigError, venue_base_url

    if live:
        return
    if settings.venue.network == "mainnet" or venue_base_url(settings) == MAINNET_API_URL:
        raise VenueConfigError(
            "Refusing to copy on mainnet (real money) without --live: run `hyperfollow copy --config "
            '<file> --live` to trade live, or set network = "testnet" in [venue].'
        )


@app.command()
def account() -> None:
    """Read-only check of the venue settings: connect as configured and show the account.

    Sends no order. Use it to verify a testnet (or live) setup before trading: network, signer,
    account, equity, positions, open orders and the address action budget.
    """
    from hyperfollow.app.venue import VenueConfigError, adapter_config

    settings = _settings()
    configure_logging(settings.logging.level, settings.logging.json_output)
    try:
        config = adapter_config(settings)
    except VenueConfigError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    try:
        asyncio.run(_show_account(config))
    except Exception as exc:  # a venue error: say it in words, not a traceback
        console.print(f"[red]{type(exc).__name__}: {escape(str(exc))}[/red]")
        raise typer.Exit(1) from None


async def _show_account(config: Any) -> None:
    from hyperfollow.adapters.hyperliquid.venue import connect

    venue = await connect(config)
    try:
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
