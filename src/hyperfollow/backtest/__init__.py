"""Backtests: replay recorded or synthetic markets through the same trading code on a simulated clock
(``replay``: the loop and its latency models; ``data``: loaders for what users have), then measure the run
(``metrics``) and write its report (``report``)."""
