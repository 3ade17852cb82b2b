"""Where the tests find recorded data.

Two homes:

- ``tests/fixtures/``: recorded files whose licence lets us ship them (each listed in
  ``tests/fixtures/NOTICE.md`` with its source, commit and licence). Every clone has them.
- ``../shared/fixtures/`` (``HYPERFOLLOW_SHARED`` overrides the ``../shared`` folder): the sets without a
  licence we may redistribute. Tests that read them carry the ``shared_data`` marker. A user's clone has no
  such folder: ``make test`` does not run those tests and says so in one line. CI sets
  ``HYPERFOLLOW_REQUIRE_SHARED=1``, so a missing folder fails the run instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENDORED = REPO / "tests" / "fixtures"
SHARED = Path(os.environ.get("HYPERFOLLOW_SHARED") or REPO.parent / "shared")
SHARED_FIXTURES = SHARED / "fixtures"

shared_data = pytest.mark.shared_data


def vendored(relpath: str) -> Path:
    """A file shipped in ``tests/fixtures`` (missing is a bug in the repository, never skipped)."""
    path = VENDORED / relpath
    if not path.exists():
        raise FileNotFoundError(f"vendored fixture {path} is missing from the repository")
    return path


def shared(relpath: str) -> Path:
    """A file of ``../shared/fixtures``; only tests marked ``shared_data`` may call this."""
    return SHARED_FIXTURES / relpath


def shared_available() -> bool:
    return SHARED_FIXTURES.is_dir()
