"""The strategy-neutral trading core shared by every strategy: clocks, the event bus (next: the market
cache and the order path)."""
