"""Backtests: replay recorded or synthetic markets through the same trading code on a simulated clock,
then measure the run (``metrics``) and write its report (``report``)."""
