"""Opening recorded files: gzip detected by content, text streamed line by line, CSV rows, JSON item by item.

Nothing here reads a whole file into memory: lines and CSV rows come one at a time, and a JSON array is
decoded one item at a time (``ijson``), so a recording of any length streams in bounded memory. Every
problem raises ``RecordingError`` naming the file and where in it (a line, an item).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal, cast

import ijson  # type: ignore[import-untyped]

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_READ_ERRORS = (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile)


class RecordingError(ValueError):
    """Malformed recording: the message names the file and where in it."""

    def __init__(self, path: str | Path, where: str | None, message: str) -> None:
        super().__init__(f"{path}: {where}: {message}" if where else f"{path}: {message}")
        self.path = str(path)
        self.where = where


@contextlib.contextmanager
def open_binary(path: str | Path) -> Iterator[io.BufferedIOBase]:
    """The file's bytes, gunzipped when they start with gzip's magic (whatever the name), BOM skipped."""
    path = Path(path)
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise RecordingError(path, None, f"cannot read: {exc}") from None
    with raw:
        try:
            stream: io.BufferedReader | gzip.GzipFile = raw
            if raw.peek(2)[:2] == _GZIP_MAGIC:
                stream = gzip.GzipFile(fileobj=raw, mode="rb")
            if stream.peek(3)[:3] == _BOM:
                stream.read(3)
        except _READ_ERRORS as exc:
            raise RecordingError(path, None, f"cannot read: {exc}") from None
        yield stream


@contextlib.contextmanager
def open_text(path: str | Path) -> Iterator[IO[str]]:
    """The file as UTF-8 text (see ``open_binary``); newlines are left as they are (CSV needs that)."""
    with open_binary(path) as stream:
        yield io.TextIOWrapper(cast(IO[bytes], stream), encoding="utf-8", newline="")


def lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line without its end)`` for each line, 1-based, blank lines included."""
    lineno = 0
    with open_text(path) as text:
        try:
            for lineno, line in enumerate(text, 1):
                yield lineno, line.rstrip("\r\n")
        except _READ_ERRORS as exc:
            raise RecordingError(path, f"line {lineno + 1}", f"cannot read: {exc}") from None


def first_line(path: str | Path, limit: int = 1 << 20) -> str:
    """The first non-blank line (at most ``limit`` characters of it), stripped; "" for an empty file."""
    with open_text(path) as text:
        try:
            while True:
                line = text.readline(limit)
                if not line:
                    return ""
                if line.strip():
                    return line.strip()
        except _READ_ERRORS as exc:
            raise RecordingError(path, None, f"cannot read: {exc}") from None


def csv_rows(path: str | Path) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of a CSV file with a header; names and values stripped of blanks.

    A row with more or fewer fields than the header raises ``RecordingError`` naming its line.
    """
    with open_text(path) as text:
        reader = csv.DictReader(text, skipinitialspace=True)
        try:
            for row in reader:
                if None in row or any(v is None for v in row.values()):
                    raise RecordingError(path, f"line {reader.line_num}", "wrong number of columns")
                yield reader.line_num, {k.strip(): v.strip() for k, v in row.items()}
        except csv.Error as exc:
            raise RecordingError(path, f"line {reader.line_num}", f"bad CSV: {exc}") from None
        except _READ_ERRORS as exc:
            raise RecordingError(path, f"line {reader.line_num + 1}", f"cannot read: {exc}") from None


def csv_header(path: str | Path) -> list[str]:
    """The header of a CSV file (column names stripped), [] for an empty file."""
    line = first_line(path)
    return [name.strip() for name in next(csv.reader([line]), [])] if line else []


def json_items(path: str | Path, prefix: str = "item", what: str = "item") -> Iterator[tuple[int, Any]]:
    """``(position, value)`` of each element under ``prefix`` (ijson's path: ``item`` is a top-level array's
    element, ``queries.item.fills.item`` a nested one), decoded one at a time. Non-integral numbers come
    as ``Decimal`` (exact), integers as ``int``. Invalid JSON names the ``what`` after the last good one."""
    n = 0
    with open_binary(path) as stream:
        try:
            for n, value in enumerate(ijson.items(stream, prefix, use_float=False), 1):
                yield n, value
        except ijson.JSONError as exc:
            raise RecordingError(path, f"{what} #{n + 1}", f"invalid JSON: {exc}") from None
        except _READ_ERRORS as exc:
            raise RecordingError(path, f"{what} #{n + 1}", f"cannot read: {exc}") from None


def load_json(path: str | Path) -> Any:
    """A whole JSON document (for small nested documents only; numbers as in ``json_items``)."""
    with open_text(path) as text:
        try:
            return json.load(text, parse_float=Decimal)
        except ValueError as exc:
            where = f"line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else None
            raise RecordingError(path, where, f"invalid JSON: {exc}") from None
        except _READ_ERRORS as exc:
            raise RecordingError(path, None, f"cannot read: {exc}") from None


Kind = Literal["ws", "csv", "json"]


def detect(path: str | Path) -> Kind:
    """What a file holds, from its first line: websocket frames (``<local_ns> <json>`` or JSON lines with a
    ``channel``), a JSON document, or CSV with a header."""
    first = first_line(path)
    if first.startswith("["):
        return "json"
    if first.startswith("{"):
        try:
            obj = json.loads(first)
        except ValueError:
            return "json"  # a multi-line JSON document
        return "ws" if isinstance(obj, dict) and "channel" in obj else "json"
    stamp, _, rest = first.partition(" ")
    if stamp.isdigit() and rest.lstrip().startswith("{"):
        return "ws"
    if "," in first and not stamp.isdigit():
        return "csv"
    raise RecordingError(
        path, "line 1", "unrecognised format: expected '<local_ns> <ws json>' lines, JSON lines, candles"
    )
