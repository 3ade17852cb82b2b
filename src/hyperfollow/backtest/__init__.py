"""Backtests: recorded data, the replay loop on a simulated clock, models, metrics and reports."""
