"""Request bodies signed by the official SDK: ``tests/fixtures/hl-captured`` (see its index.json).

Captured by this project with hyperliquid-python-sdk 0.24.0 and the SDK's public test key (index.json says
how); every clone has them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared_data import vendored

CAPTURED_DIR = vendored("hl-captured")


def load_capture(name: str) -> dict[str, Any]:
    """One captured body by file stem, e.g. ``load_capture("order_limit_alo")``."""
    body: dict[str, Any] = json.loads((CAPTURED_DIR / f"{name}.json").read_text())
    return body


def all_captures() -> list[tuple[str, dict[str, Any]]]:
    """Every capture listed in index.json, sorted by name."""
    index = json.loads((CAPTURED_DIR / "index.json").read_text())
    return [
        (name, load_capture(Path(entry["file"]).stem)) for name, entry in sorted(index["captures"].items())
    ]
