"""Risk: exit policies, the pre-trade gate and breakers, exactly-once close, monitors, reconciliation."""
