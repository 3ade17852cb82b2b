"""Settings -> the Hyperliquid adapter's configuration, with the refusals a human can act on."""

from __future__ import annotations

from pydantic import ValidationError

from hyperfollow.adapters.hyperliquid.config import (
    MAINNET_API_URL,
    TESTNET_API_URL,
    EndpointConfig,
    HyperliquidConfig,
    is_mainnet_url,
)
from hyperfollow.app.settings import Settings, redact


class VenueConfigError(ValueError):
    """The venue settings cannot be used as they are; the message says which setting to change."""


def venue_base_url(settings: Settings) -> str:
    """The URL the settings point at: the override, else the network's (embedded: the exchange section)."""
    venue = settings.venue
    if venue.base_url:
        return venue.base_url.rstrip("/")
    if venue.network == "mainnet":
        return MAINNET_API_URL
    if venue.network == "testnet":
        return TESTNET_API_URL
    host = settings.exchange.host
    if host in ("0.0.0.0", "::", ""):  # a wildcard bind is reached through loopback
        host = "127.0.0.1"
    return f"http://{host}:{settings.exchange.port}"


def adapter_config(settings: Settings) -> HyperliquidConfig:
    """The adapter configuration for ``settings.venue``; ``VenueConfigError`` says what is missing."""
    venue = settings.venue
    base_url = venue_base_url(settings)
    if (venue.network == "mainnet" or is_mainnet_url(base_url)) and not venue.live:
        raise VenueConfigError(
            "Refusing to trade on mainnet (real money) without confirmation: set "
            "HYPERFOLLOW_VENUE__LIVE=true (settings venue.live = true) to trade live, or choose "
            "HYPERFOLLOW_VENUE__NETWORK=testnet or embedded."
        )
    if not venue.account_address:
        raise VenueConfigError(
            "No trading account: set HYPERFOLLOW_VENUE__ACCOUNT_ADDRESS (venue.account_address) to the "
            "0x address of the account to trade for (the master account, not the agent's address)."
        )
    if venue.agent_key is None or not venue.agent_key.get_secret_value().strip():
        raise VenueConfigError(
            "No signing key: set HYPERFOLLOW_VENUE__AGENT_KEY (venue.agent_key) in the environment to the "
            "private key of an agent (API wallet) the account approved, or to the account's own key."
        )
    try:
        return HyperliquidConfig(
            base_url=base_url,
            account_address=venue.account_address,
            secret_key=venue.agent_key,
            vault_address=venue.vault_address,
        )
    except ValidationError as exc:
        names = {"secret_key": "agent_key", "account_address": "account_address", "base_url": "base_url"}
        problems = "; ".join(
            f"venue.{names.get(str(err['loc'][0]), str(err['loc'][0])) if err['loc'] else '?'}: {err['msg']}"
            for err in exc.errors(include_input=False)
        )
        raise VenueConfigError(redact(f"Invalid venue settings: {problems}")) from None


def endpoint_config(settings: Settings) -> EndpointConfig:
    """Where the venue is, for public reads only (paper trading): no account, no key, no live switch,
    because nothing is ever sent to it."""
    try:
        return EndpointConfig(base_url=venue_base_url(settings))
    except ValidationError:
        raise VenueConfigError("Invalid venue settings: venue.base_url must be an http(s) URL") from None
