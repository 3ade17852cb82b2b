"""Loaders for the recorded data users have: market data (websocket captures, CSV books, tapes and BBO,
candles), leader fill histories and leaderboard snapshots. Streaming where the data can be long."""
