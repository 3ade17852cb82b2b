"""The trading core, shared by every strategy: clocks (and, next, the market cache, order path and bus)."""
