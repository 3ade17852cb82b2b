"""One typed settings tree (`HYPERFOLLOW_` prefix, `__` between nested sections).

Example: `HYPERFOLLOW_EXCHANGE__PORT=9000`. Each component receives only its own section.
Units are in field names (`_ms`, `_secs`, `_pct`, `_usd`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hyperfollow.adapters.hyperliquid.config import is_address, is_private_key, url_host

ENV_PREFIX = "HYPERFOLLOW_"
# 60+ hex digits in a row: a private key (64), perhaps with a typo; never shown in a message
_KEY_SHAPED = re.compile(r"(?:0x)?[0-9a-fA-F]{60,}")
_HIDDEN = "<hidden: shaped like a private key>"


class SettingsError(ValueError):
    """Settings that cannot be used; the message names where each bad value came from."""


def looks_like_key(value: object) -> bool:
    """A value that could be a private key (64 hex digits, 0x optional, give or take a typo)."""
    return isinstance(value, str) and _KEY_SHAPED.search(value) is not None


def shown(value: object) -> str:
    """``repr(value)`` for a message, unless it looks like a private key."""
    return _HIDDEN if looks_like_key(value) else repr(value)


def redact(text: str) -> str:
    """``text`` with every key-shaped run replaced (the last line of defence of an error message)."""
    return _KEY_SHAPED.sub(_HIDDEN, text)


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

    # The checks below never put the value in their message: a key pasted into the wrong setting (or a
    # key with a typo) must not be printed back.
    @field_validator("account_address", "vault_address", "base_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("account_address", "vault_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not is_address(value.strip()):
            raise ValueError("must be a 0x address of 40 hex digits")
        return value.strip().lower()

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip().startswith(("http://", "https://")) or not url_host(value):
            raise ValueError("must be an http:// or https:// URL with a host")
        return value.strip()

    @field_validator("agent_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not is_private_key(value.get_secret_value()):
            raise ValueError("must be a private key: 64 hex digits, 0x optional")
        return value


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
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        populate_by_name=True,
        hide_input_in_errors=True,
    )

    exchange: ExchangeSettings = ExchangeSettings()
    venue: VenueSettings = VenueSettings()
    store: StoreSettings = StoreSettings()
    logging: LoggingSettings = LoggingSettings()


def env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable of a settings location: ``("venue", "network")`` ->
    ``HYPERFOLLOW_VENUE__NETWORK``."""
    return ENV_PREFIX + "__".join(str(part).upper() for part in loc)


def _problems(exc: ValidationError, where: Any) -> str:
    """One ``where: what`` per error, from pydantic's error list without its ``input_value``."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = tuple(err["loc"])
        parts.append(f"{where(loc)}: {err['msg'].removeprefix('Value error, ')}")
    return redact("; ".join(parts))


def load_settings() -> Settings:
    """``Settings()`` from the environment; ``SettingsError`` names the variable of each bad value."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(f"Invalid settings: {_problems(exc, env_name)}") from None


def merge_venue(
    env: VenueSettings, file_values: Mapping[str, str], source: str, *, live: bool
) -> VenueSettings:
    """The venue section from the follow file's ``[venue]`` and the environment: a setting given in the
    environment wins over the file's. ``live`` comes from the command line only. An invalid value is
    named by where it came from (``HYPERFOLLOW_VENUE__X`` or ``<file>: [venue] x``)."""
    from_env = {name: getattr(env, name) for name in env.model_fields_set}
    merged: dict[str, Any] = {**env.model_dump(), **file_values, **from_env, "live": live}

    def where(loc: tuple[int | str, ...]) -> str:
        name = str(loc[0]) if loc else "?"
        if name in from_env:
            return env_name(("venue", *loc))
        if name in file_values:
            return f"{source}: [venue] {'.'.join(map(str, loc))}"
        return f"venue.{name}"

    try:
        return VenueSettings.model_validate(merged)
    except ValidationError as exc:
        raise SettingsError(f"Invalid venue settings: {_problems(exc, where)}") from None
