"""The venue's errors in three families, and the one table that maps its error text onto them.

* ``VenueRejected``: the venue looked at the request and said no. Never retried as is. Specific
  subclasses let callers react (a post-only that would cross can be re-priced; a reduce-only that
  would increase means our record of the position is wrong).
* ``TransientError``: the request did not get through (429, 5xx, connection refused, a garbled
  body). Safe to retry with backoff: the venue did not act on it.
* ``OutcomeUnknown``: the request may or may not have been acted on (a timeout after sending).
  Never resent blindly: look the order up by its cloid first.

Venue error strings often end in `` asset=N``; matching is on the stable prefix.
"""

from __future__ import annotations

import re


class VenueError(Exception):
    """Base of every error a venue port raises."""


class VenueRejected(VenueError):
    """The venue refused the request; ``text`` is its own words."""

    def __init__(self, text: str, *, cloid: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.cloid = cloid


class PostOnlyWouldCross(VenueRejected):
    pass


class InsufficientMargin(VenueRejected):
    pass


class MinNotional(VenueRejected):
    pass


class ReduceOnlyWouldIncrease(VenueRejected):
    pass


class InvalidPrice(VenueRejected):
    pass


class InvalidSize(VenueRejected):
    pass


class OrderNotFound(VenueRejected):
    pass


class IocNotFilled(VenueRejected):
    """An IOC found nothing to trade against (not a failure of ours: the book moved)."""


class UnknownInstrument(VenueRejected):
    pass


class TradingHalted(VenueRejected):
    pass


class DuplicateCloid(VenueRejected):
    pass


class LeverageRejected(VenueRejected):
    pass


class AuthRejected(VenueRejected):
    """The signer is not allowed to act (unknown wallet, expired agent, agent moving funds)."""


class NonceRejected(VenueRejected):
    """Duplicate, too low or too high: our nonce clock is wrong. Not retried blindly."""


class RateLimited(VenueRejected):
    """The address action budget is used up (not the per-IP 429, which is transient)."""


class TransientError(VenueError):
    """Nothing happened on the venue; retry with backoff."""

    def __init__(self, text: str, *, status: int | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.status = status


class OutcomeUnknown(VenueError):
    """The request was sent but its outcome is unknown; resolve by ``orderStatus`` on ``cloid``."""

    def __init__(self, text: str, *, cloids: tuple[str, ...] = ()) -> None:
        super().__init__(text)
        self.text = text
        self.cloids = cloids


# Venue text (prefix, case-sensitive as the venue writes it) -> the error class. Order matters only
# where one prefix starts another.
_TABLE: tuple[tuple[str, type[VenueRejected]], ...] = (
    ("Post only order would have immediately matched", PostOnlyWouldCross),
    ("Insufficient margin", InsufficientMargin),
    ("Insufficient spot balance", InsufficientMargin),
    ("Order must have minimum value", MinNotional),
    ("Reduce only order would increase position", ReduceOnlyWouldIncrease),
    ("Price must be divisible by tick size", InvalidPrice),
    ("Order has invalid price", InvalidPrice),
    ("Invalid TP/SL price", InvalidPrice),
    ("Order price cannot be more than", InvalidPrice),
    ("Order price too far from oracle", InvalidPrice),
    ("Order has invalid size", InvalidSize),
    ("Order has zero size", InvalidSize),
    ("Order was never placed, already canceled, or filled", OrderNotFound),
    ("Cannot modify canceled or filled order", OrderNotFound),
    ("Order could not immediately match", IocNotFilled),
    ("No liquidity available for market order", IocNotFilled),
    ("Invalid asset", UnknownInstrument),
    ("Trading is halted", TradingHalted),
    ("Duplicate cloid", DuplicateCloid),
    ("Invalid leverage", LeverageRejected),
    ("Cannot switch leverage type with open position", LeverageRejected),
    ("Cross margin is not allowed", LeverageRejected),
    ("Cannot decrease leverage", LeverageRejected),
    ("Order would cause position to exceed margin tier", LeverageRejected),
    ("User or API Wallet", AuthRejected),
    ("Must deposit before performing actions", AuthRejected),
    ("Vault not registered", AuthRejected),
    ("Mainnet and testnet require different signature", AuthRejected),
    ("Agent", AuthRejected),
    ("Invalid nonce", NonceRejected),
    ("Too many cumulative requests", RateLimited),
)

_ASSET_SUFFIX = re.compile(r"\s*asset=\d+\s*$")


def rejection_for(text: str, *, cloid: str | None = None) -> VenueRejected:
    """The typed rejection for one of the venue's error texts (unknown texts: plain ``VenueRejected``)."""
    for prefix, cls in _TABLE:
        if text.startswith(prefix):
            return cls(text, cloid=cloid)
    if "nonce" in text.lower():
        return NonceRejected(text, cloid=cloid)
    return VenueRejected(text, cloid=cloid)


def strip_asset_suffix(text: str) -> str:
    """``"Insufficient margin to place order. asset=15"`` -> ``"Insufficient margin to place order."``."""
    return _ASSET_SUFFIX.sub("", text)
