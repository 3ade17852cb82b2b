"""Request bodies signed by the official SDK: `../shared/fixtures/hl-captured` (see its index.json).

CI checks the project out with `../shared` beside it, so a missing directory is a failure, not a skip.
`HL_CAPTURED_DIR` points elsewhere when needed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CAPTURED_DIR = Path(
    os.environ.get("HL_CAPTURED_DIR")
    or Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "hl-captured"
)


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
