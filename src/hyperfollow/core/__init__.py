"""The strategy-neutral trading core shared by every strategy: clocks, the event bus, the market-data cache
(``market``) and order ownership (``orders``); next: the order path itself (journal, send, outcome)."""
