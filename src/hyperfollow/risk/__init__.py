"""Risk: exit policies, the pre-trade gate and circuit breakers, exactly-once close, monitors, reconciliation."""
