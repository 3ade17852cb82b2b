"""Recorded websocket frames, one a line, in either collector format:

* ``<local_ns> <raw ws json>`` (the hftbacktest collector)::

      1737918843893903000 {"channel":"l2Book","data":{"coin":"BTC","levels":[[..],[..]],"time":1737918843542}}

* JSON lines ``{"received_wall_ns": 1784683656613941900, "channel": "trades", "data": [...]}``.

``frames(path)`` streams ``(line number, WsFrame)``: the local receive time in ns (``None`` when the line
has none), the channel, and the data still encoded (each consumer decodes the channels it wants with its
own parser). Blank lines are skipped; a line that is not a frame raises ``RecordingError`` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from hyperfollow.recordings.source import RecordingError, lines


class WsFrame(msgspec.Struct, frozen=True):
    recv_ns: int | None  # our receive time, epoch ns (None: not recorded)
    channel: str
    data: msgspec.Raw  # the frame's "data", undecoded


class _Frame(msgspec.Struct):
    channel: str
    data: msgspec.Raw = msgspec.Raw(b"null")
    received_wall_ns: Any = None


_decoder = msgspec.json.Decoder(_Frame)


def frames(path: str | Path) -> Iterator[tuple[int, WsFrame]]:
    """Each frame of a capture with its line number (see the module doc)."""
    for lineno, raw in lines(path):
        line = raw.strip()
        if not line:
            continue
        try:
            yield lineno, parse_line(line)
        except ValueError as exc:
            raise RecordingError(path, f"line {lineno}", str(exc)) from None


def parse_line(line: str) -> WsFrame:
    """One capture line as a frame; ``ValueError`` saying what is wrong with it."""
    if line.startswith("{"):
        frame = _decode(line)
        stamp = frame.received_wall_ns
        ok = isinstance(stamp, int) and not isinstance(stamp, bool)
        return WsFrame(stamp if ok else None, frame.channel, frame.data)
    stamp_text, _, rest = line.partition(" ")
    if not stamp_text.isdigit():
        raise ValueError(f"expected '<local_ns> <json>', got {line[:60]!r}")
    frame = _decode(rest)
    return WsFrame(int(stamp_text), frame.channel, frame.data)


def _decode(text: str) -> _Frame:
    try:
        return _decoder.decode(text)
    except msgspec.DecodeError:
        pass
    try:  # the slow path only says what is wrong
        obj = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if "channel" not in obj:
        raise ValueError("not a websocket frame: no 'channel'")
    raise ValueError(f"channel must be a string, got {obj['channel']!r:.40}")
