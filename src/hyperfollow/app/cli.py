"""The `hyperfollow` command line."""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from hyperfollow.app.logging import configure_logging
from hyperfollow.app.settings import Settings

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
        console.print(f"[red]Invalid settings (HYPERFOLLOW_* environment):[/red] {exc}")
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
        console.print(f"[red]Cannot start the exchange:[/red] {exc}")
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


def _trader_table(rows: list[dict[str, Any]], sim_time: str) -> Table:
    table = Table(title=f"Simulated wallets on the embedded exchange - {sim_time}")
    for col in ("wallet", "style", "account value", "PnL", "positions", "fills"):
        table.add_column(col, justify="right" if col not in ("wallet", "style", "positions") else "left")
    for r in rows:
        pnl = r["value"] - r["start"]
        colour = "green" if pnl >= 0 else "red"
        table.add_row(
            r["name"],
            r["style"],
            f"{r['value']:,.2f}",
            f"[{colour}]{pnl:+,.2f}[/{colour}]",
            r["positions"] or "-",
            str(r["fills"]),
        )
    return table


@app.command()
def demo(
    duration: Annotated[float, typer.Option(help="wall seconds to run")] = 30.0,
    speed: Annotated[float, typer.Option(help="simulated seconds per wall second")] = 120.0,
    seed: Annotated[int, typer.Option(help="seed of the market")] = 7,
) -> None:
    """Run the embedded exchange on an accelerated clock and watch its wallets trade, through the SDK.

    The copy-trading engine (follow these wallets) is built on this; until it lands, the demo shows
    the leaders a follower would copy, read back over HTTP with the official SDK.
    """
    from hyperliquid.info import Info

    from hyperfollow.exchange.embedded import EmbeddedExchange
    from hyperfollow.exchange.server import ServerLimits, running_in_thread
    from hyperfollow.exchange.traders import DEFAULT_TRADERS

    configure_logging("WARNING")
    ex = EmbeddedExchange(seed=seed, speed=speed)
    starts = {t.name: t.start_usd for t in DEFAULT_TRADERS}
    with running_in_thread(ex, ServerLimits(ip_weight_per_min=None)) as (url, _server):
        console.print(f"embedded exchange on {url} (seed {seed}, {speed:g}x)")
        info = Info(url, skip_ws=True)
        wallets = ex.traders()
        deadline = time.monotonic() + duration
        rows: list[dict[str, Any]] = []
        with Live(console=console, refresh_per_second=2) as live:
            while time.monotonic() < deadline:
                rows = [_wallet_row(info, w, starts) for w in wallets]
                sim_time = time.strftime("%Y-%m-%d %H:%M", time.gmtime(ex.clock.now_ms() / 1000))
                live.update(_trader_table(rows, sim_time))
                time.sleep(1.0)
    winners = sum(1 for r in rows if r["value"] > r["start"])
    console.print(
        f"{winners} of {len(rows)} wallets are up after {duration * speed / 3600:.1f} simulated hours."
    )


def _wallet_row(info: Any, wallet: dict[str, Any], starts: dict[str, int]) -> dict[str, Any]:
    state = info.user_state(wallet["address"])
    value = Decimal(state["marginSummary"]["accountValue"])
    for dex_coin in wallet["coins"]:
        if ":" in dex_coin:  # HIP-3 positions live in their dex's clearinghouse view
            state["assetPositions"] += info.user_state(wallet["address"], dex_coin.split(":")[0])[
                "assetPositions"
            ]
    positions = ", ".join(f"{p['position']['coin']} {p['position']['szi']}" for p in state["assetPositions"])
    fills = len(info.user_fills(wallet["address"]))
    return {
        "name": wallet["name"],
        "style": wallet["style"],
        "value": float(value),
        "start": float(starts.get(wallet["name"], 0)),
        "positions": positions,
        "fills": fills,
    }


if __name__ == "__main__":
    app()


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
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    try:
        asyncio.run(_show_account(config))
    except Exception as exc:  # a venue error: say it in words, not a traceback
        console.print(f"[red]{type(exc).__name__}: {exc}[/red]")
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
