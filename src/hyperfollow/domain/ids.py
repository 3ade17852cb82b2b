"""Client order ids: deterministic from what caused the order, so a retry or a restart re-derives the
same id and the venue (or our journal) recognises the order instead of placing it twice."""

from __future__ import annotations

import hashlib
import re

_CLOID = re.compile(r"^0x[0-9a-f]{32}$")


def cloid_for(*parts: str | int) -> str:
    """A venue cloid (``0x`` + 32 hex digits, 16 bytes) derived from ``parts``.

    >>> cloid_for("leader-fill", "0xabc", 123, "open") == cloid_for("leader-fill", "0xabc", 123, "open")
    True
    """
    if not parts:
        raise ValueError("a cloid needs at least one part")
    text = "\x1f".join(str(p) for p in parts)
    return "0x" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def is_cloid(text: str) -> bool:
    """True for a well-formed cloid (lower-case hex, as the venue echoes it)."""
    return bool(_CLOID.match(text))
