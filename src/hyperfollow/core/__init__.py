"""The strategy-neutral trading core: the event bus, clocks, the market cache and the order path."""
