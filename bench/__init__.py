"""Speed suites: ``python -m bench.<module>``; each module exposes ``run()``."""
