"""One typed settings tree (`HYPERFOLLOW_` prefix, `__` between nested sections).

Example: `HYPERFOLLOW_EXCHANGE__PORT=9000`. Each component receives only its own section.
Units are in field names (`_ms`, `_secs`, `_pct`, `_usd`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class LimitsSettings(BaseModel):
    """The real venue's limits, enforced by the embedded exchange; each can be switched off for load tests."""

    ip_weight_per_min: int = Field(1200, ge=1, description="REST weight budget per IP per minute")
    enforce_ip_weight: bool = True
    ws_max_users_per_ip: int = Field(10, ge=1, description="distinct users across WS user subscriptions")
    enforce_ws_users: bool = True
    address_initial_budget: int = Field(10_000, ge=0, description="actions before volume is needed")
    enforce_address_budget: bool = True
    nonce_window_past_ms: int = Field(2 * 86_400_000, ge=0)
    nonce_window_future_ms: int = Field(86_400_000, ge=0)


class ExchangeSettings(BaseModel):
    """The embedded Hyperliquid-compatible exchange."""

    host: str = "127.0.0.1"
    port: int = Field(8931, ge=0, le=65535)
    seed: int = 7
    speed: float = Field(1.0, gt=0, description="simulated seconds per wall second")
    stepped: bool = Field(False, description="clock only moves on POST /sim/advance")
    network: Literal["testnet", "mainnet"] = Field(
        "testnet", description="which signatures to accept (a local base URL makes the SDK sign as testnet)"
    )
    coins: list[str] = Field(default_factory=lambda: ["BTC", "ETH", "SOL", "HYPE"])
    simulated_traders: bool = True
    recording: str | None = Field(None, description="path of a recording to replay instead of generating")
    tick_ms: int = Field(100, ge=10, description="wall milliseconds between market steps")
    limits: LimitsSettings = LimitsSettings()


class VenueSettings(BaseModel):
    """Which venue the platform trades on, as whom (`HYPERFOLLOW_VENUE__*`).

    `embedded` talks to the embedded exchange at the `exchange` section's host and port. Mainnet needs
    `live=True` as well: real money is never one typo away. The key is an agent (API wallet) key
    trading for `account_address`, or that account's own key; set it through the environment
    (`HYPERFOLLOW_VENUE__AGENT_KEY`), never in a file that is committed.
    """

    model_config = ConfigDict(hide_input_in_errors=True)  # a malformed key must not land in an error text

    network: Literal["embedded", "testnet", "mainnet"] = "embedded"
    base_url: str | None = Field(None, description="override of the network's URL (None: from `network`)")
    account_address: str | None = Field(None, description="the master account traded for (0x...)")
    agent_key: SecretStr | None = Field(None, description="agent or account private key (0x...)")
    vault_address: str | None = Field(None, description="vault or sub-account traded for, if any")
    live: bool = Field(False, description="must be true to trade on mainnet")


class StoreSettings(BaseModel):
    """Persistence (`HYPERFOLLOW_STORE__URL`): an SQLite file by default, or PostgreSQL for scale-out.

    Examples: `sqlite+aiosqlite:///hyperfollow.db` (relative to the working directory),
    `postgresql+asyncpg://user@127.0.0.1:5432/hyperfollow`.
    """

    url: str = Field("sqlite+aiosqlite:///hyperfollow.db", description="SQLAlchemy async database URL")


class LoggingSettings(BaseModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_output: bool = Field(False, alias="json")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HYPERFOLLOW_", env_nested_delimiter="__", extra="forbid", populate_by_name=True
    )

    exchange: ExchangeSettings = ExchangeSettings()
    venue: VenueSettings = VenueSettings()
    store: StoreSettings = StoreSettings()
    logging: LoggingSettings = LoggingSettings()
