"""Suite-wide collection rules: the ``shared_data`` group (see ``tests/shared_data.py``)."""

from __future__ import annotations

import os

import pytest

from shared_data import SHARED_FIXTURES, shared_available

_NOT_RUN: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "shared_data: reads ../shared/fixtures (recorded data we may not redistribute)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if shared_available():
        return
    marked = [item for item in items if item.get_closest_marker("shared_data")]
    if not marked:
        return
    if os.environ.get("HYPERFOLLOW_REQUIRE_SHARED") == "1":
        raise pytest.UsageError(
            f"HYPERFOLLOW_REQUIRE_SHARED=1 but {SHARED_FIXTURES} does not exist: {len(marked)} tests need it"
        )
    keep = [item for item in items if not item.get_closest_marker("shared_data")]
    config.hook.pytest_deselected(items=marked)
    items[:] = keep
    _NOT_RUN.append(
        f"{len(marked)} tests on recorded data not run: {SHARED_FIXTURES} is not here "
        "(those recordings are not ours to redistribute; CI runs them)"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _NOT_RUN:
        terminalreporter.write_line(line)
