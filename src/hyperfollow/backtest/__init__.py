"""Backtests: the replay loop, its latency models, metrics and reports."""
