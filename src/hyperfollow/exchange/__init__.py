"""The embedded Hyperliquid-compatible exchange: matching, clearing, wire protocol, a living market.

It meets the rest of hyperfollow only on the wire (HTTP/WS), or in-process through ``EmbeddedExchange``.
"""
