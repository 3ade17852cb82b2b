"""structlog configuration. Secrets never reach a log line: values of sensitive keys are redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SENSITIVE = (
    "secret", "private_key", "privkey", "password", "api_key", "agent_key", "signature", "mnemonic",
)  # fmt: skip


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now (a test runner may swap and close the one we started with)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        try:
            return sys.stderr.isatty()
        except (AttributeError, ValueError):  # replaced by an object without it, or closed
            return False


def redact_secrets(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: replace the value of any key that looks sensitive."""
    for key in list(event):
        if any(word in key.lower() for word in _SENSITIVE):
            event[key] = "***"
    return event


def configure_logging(level: str = "INFO", json_output: bool = False, colors: bool | None = None) -> None:
    """Configure structlog once for the process (stderr, ISO timestamps, bound context).

    Colour codes only when stderr is a terminal (``colors=None``): a file, a pipe or CI gets plain text.
    """
    if colors is None:
        colors = _CurrentStderr().isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=colors)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,  # a re-configuration (tests, a second command) reaches every logger
    )
