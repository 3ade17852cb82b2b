"""Hyperliquid venue adapter over the official SDK (real venue or the embedded exchange)."""
