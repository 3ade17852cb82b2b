"""Execution: how an order reaches the venue (taker IOC, or maker post-only with a watchdog and fallback)."""
