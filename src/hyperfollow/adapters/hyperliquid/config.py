"""Configuration of one Hyperliquid connection: where, who trades, who signs, and the client's limits.

Who is who (hyperliquid-api.md 5.4): the *signer* key signs every action. It is either the master
account's own key or an agent (API wallet) the master approved; the venue maps an agent to its master.
``account_address`` is the master account; with ``vault_address`` set, actions are sent for that
vault or sub-account (it goes into the signed envelope) and every query uses the vault's address,
because the venue keeps its state under that address (an agent's own address has no state at all).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

MAINNET_API_URL = "https://api.hyperliquid.xyz"
TESTNET_API_URL = "https://api.hyperliquid-testnet.xyz"
MAINNET_DOMAIN = "hyperliquid.xyz"  # testnet lives on its own domain, hyperliquid-testnet.xyz


def url_host(url: str) -> str:
    """The host a URL points at: lower-case, without port, userinfo or a trailing dot ("" if none)."""
    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return ""
    return host.rstrip(".").lower()


def is_mainnet_url(url: str) -> bool:
    """True for any URL whose host is ``hyperliquid.xyz`` or one of its subdomains (``api.``, ``API.``,
    with a port, userinfo, a path or a trailing dot): that is real money. The testnet host,
    ``api.hyperliquid-testnet.xyz``, is another domain and is not mainnet; so is every other host."""
    host = url_host(url)
    return host == MAINNET_DOMAIN or host.endswith("." + MAINNET_DOMAIN)


def is_address(text: str) -> bool:
    """``0x`` and 40 hex digits."""
    return len(text) == 42 and text.startswith("0x") and all(c in _HEX for c in text[2:])


def is_private_key(text: str) -> bool:
    """64 hex digits, ``0x`` optional (surrounding blanks ignored)."""
    hex_part = text.strip().removeprefix("0x")
    return len(hex_part) == 64 and all(c in _HEX for c in hex_part)


_HEX = frozenset("0123456789abcdefABCDEF")


class EndpointConfig(BaseModel):
    """Where the venue is and how the client talks to it: no account and no key (public reads only)."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)  # keys never in errors

    base_url: str = Field(description="http(s) URL of the venue: mainnet, testnet or the embedded exchange")
    request_timeout_secs: float = Field(10.0, gt=0)
    max_retries: int = Field(4, ge=0, description="retries of a request the venue refused before acting")
    backoff_base_secs: float = Field(0.2, ge=0)
    backoff_cap_secs: float = Field(5.0, ge=0)
    ip_weight_per_min: int = Field(1200, ge=1, description="the venue's REST weight budget per IP")
    max_ws_users: int = Field(10, ge=1, description="distinct users the venue allows in WS user streams")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or not url_host(value):
            # never echo the value: a key pasted into the wrong setting must not reach an error text
            raise ValueError("base_url must be an http:// or https:// URL with a host")
        # The SDK concatenates paths: a trailing slash would post to "//info".
        return value.rstrip("/")

    @property
    def is_mainnet(self) -> bool:
        """Sign for mainnet when the URL's host is mainnet's (``is_mainnet_url``), else for testnet."""
        return is_mainnet_url(self.base_url)

    @property
    def ws_url(self) -> str:
        """``http(s)://host`` -> ``ws(s)://host/ws`` (one port serves REST and WebSocket)."""
        return "ws" + self.base_url[len("http") :] + "/ws"


class HyperliquidConfig(EndpointConfig):
    """One (signer, account, vault) triple on one venue URL, plus the client's retry and rate settings."""

    account_address: str = Field(description="the master account (0x...); queries use the vault when set")
    secret_key: SecretStr = Field(
        description="private key of an agent trading for the master, or the master's"
    )
    vault_address: str | None = Field(
        None, description="vault or sub-account traded for, None for the master"
    )

    @field_validator("secret_key")
    @classmethod
    def _key_shape(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value().strip()
        if not is_private_key(text):
            # never echo the value: it may be a real key with a typo
            raise ValueError("the signing key must be 32 bytes of hex (64 hex digits, 0x optional)")
        return SecretStr(text)

    @field_validator("account_address", "vault_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not is_address(value):
            raise ValueError("not a 0x address of 40 hex digits")  # the value is never echoed
        return value.lower()

    @property
    def query_address(self) -> str:
        """The address whose state we read: the vault/sub-account when trading for one, else the master."""
        return self.vault_address or self.account_address

    def __repr__(self) -> str:  # the key never appears, not even masked
        return (
            f"HyperliquidConfig(base_url={self.base_url!r}, account_address={self.account_address!r}, "
            f"vault_address={self.vault_address!r}, is_mainnet={self.is_mainnet})"
        )

    __str__ = __repr__
