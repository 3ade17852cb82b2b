"""hyperfollow: copy-trading, risk and strategies for Hyperliquid perpetuals."""

__version__ = "0.1.0"
