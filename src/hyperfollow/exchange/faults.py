"""Fault switches of the embedded exchange: the failures a venue client must survive, on demand.

A ``FaultPlan`` holds the active faults. Tests drive it in-process (``server.faults.add(...)``, from
any thread); operators through ``POST/GET/DELETE /sim/faults``. The HTTP server asks it, for every
``POST /info`` and ``POST /exchange``, whether a fault takes that request (``take``), and the WS
writer whether the venue is silent (``ws_silenced``).

Fault objects (JSON), each validated strictly (an unknown key is an error, not ignored):

* ``{"type": "httpStatus", "path": "/info"|"/exchange", "status": 429|500|502|503|504, "count": n,
  "body": text?}``: the next n requests to the path are answered with that status before anything
  is processed.
* ``{"type": "malformed", "path": ..., "count": n, "apply": bool}``: HTTP 200 whose body is not JSON;
  ``apply`` processes the request first (the action happened, the client cannot know).
* ``{"type": "hang", "path": ..., "count": n, "apply": bool, "seconds": s}``: no response for s
  seconds (default 30), then the connection is closed; ``apply`` processes the request first.
* ``{"type": "dropWs", "abrupt": bool}``: every WebSocket closes now (``abrupt``: no close frame).
* ``{"type": "wsSilence", "seconds": s}``: WebSockets stay open but nothing is sent for s seconds.
* ``{"type": "clockJump", "ms": x}``: the venue clock leaps forward x ms, at most a day
  (``MAX_CLOCK_JUMP_MS``; the market's next step catches the whole gap up).
* ``{"type": "clear"}``: every fault ends (including a running silence).

``count`` may be omitted (or null): the fault then applies to every request until cleared.
Times of ``hang`` and ``wsSilence`` are wall-clock seconds, whatever the simulated clock does.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)

PATHS = ("/info", "/exchange")
STATUSES = (429, 500, 502, 503, 504)
MAX_SECONDS = 3600.0
DEFAULT_HANG_SECONDS = 30.0
MAX_CLOCK_JUMP_MS = 86_400_000  # a day: the market catches up the whole gap at its next step

# Keys each fault type accepts (besides "type"); anything else is a typo worth a 400.
_KEYS: dict[str, frozenset[str]] = {
    "httpStatus": frozenset({"path", "status", "count", "body"}),
    "malformed": frozenset({"path", "count", "apply"}),
    "hang": frozenset({"path", "count", "apply", "seconds"}),
    "dropWs": frozenset({"abrupt"}),
    "wsSilence": frozenset({"seconds"}),
    "clockJump": frozenset({"ms"}),
    "clear": frozenset(),
}
HTTP_TYPES = frozenset({"httpStatus", "malformed", "hang"})


class FaultError(ValueError):
    """A fault object that does not validate: the text says what is wrong (HTTP 400)."""


@dataclass
class Fault:
    """One request-level fault (``httpStatus``, ``malformed`` or ``hang``) and its remaining count."""

    id: int
    type: str
    path: str
    remaining: int | None  # None: until cleared
    status: int = 200
    body: str | None = None
    apply: bool = False
    seconds: float = DEFAULT_HANG_SECONDS

    def describe(self) -> dict[str, Any]:
        """The fault as ``GET /sim/faults`` lists it."""
        out: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "path": self.path,
            "remaining": self.remaining,
        }
        if self.type == "httpStatus":
            out["status"] = self.status
            if self.body is not None:
                out["body"] = self.body
        else:
            out["apply"] = self.apply
        if self.type == "hang":
            out["seconds"] = self.seconds
        return out


class FaultPlan:
    """The active faults, shared by the server's event loop and test threads (every method locks).

    ``drop_ws(abrupt) -> closed connections`` and ``jump_clock(ms) -> new time`` carry out the
    instant faults; the server passes functions that run them on its own loop.
    """

    def __init__(
        self,
        drop_ws: Callable[[bool], int] | None = None,
        jump_clock: Callable[[int], int] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._drop_ws = drop_ws
        self._jump_clock = jump_clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._silent_until: float | None = None
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ control

    def add(self, spec: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Validate one fault object or a list (all or nothing), then apply them in order.

        Returns one description per fault: request faults as listed by ``active``, instant ones with
        their outcome (``dropped`` connections, new clock ``time``...). Raises ``FaultError``.
        """
        specs = spec if isinstance(spec, list) else [spec]
        if not specs:
            raise FaultError("expected a fault object or a non-empty list of them")
        checked = [_validate(item, i if isinstance(spec, list) else None) for i, item in enumerate(specs)]
        return [self._apply(item) for item in checked]

    def clear(self) -> int:
        """End every fault (a running WS silence too); returns how many were active."""
        with self._lock:
            n = len(self._faults) + (1 if self._silence_left() > 0 else 0)
            self._faults.clear()
            self._silent_until = None
        log.info("fault.cleared", faults=n)
        return n

    def active(self) -> list[dict[str, Any]]:
        """The faults still in force, with their remaining counts (or seconds of silence)."""
        with self._lock:
            out = [f.describe() for f in self._faults]
            left = self._silence_left()
        if left > 0:
            out.append({"type": "wsSilence", "remainingSeconds": round(left, 3)})
        return out

    # ------------------------------------------------------------------ queried by the server

    def take(self, path: str) -> Fault | None:
        """The fault that takes this request to ``path`` (the oldest matching one), if any.

        Spends one of its count (and forgets it when spent); returns a copy, so the caller acts on
        it while tests keep adding or clearing.
        """
        with self._lock:
            fault = next((f for f in self._faults if f.path == path), None)
            if fault is None:
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
            taken = Fault(**vars(fault))
        log.info(
            "fault.applied",
            type=taken.type,
            path=path,
            remaining=taken.remaining,
            **({"status": taken.status} if taken.type == "httpStatus" else {"apply": taken.apply}),
        )
        return taken

    def ws_silenced(self) -> bool:
        """True while a ``wsSilence`` runs: the server then sends nothing on any WebSocket."""
        with self._lock:
            return self._silence_left() > 0

    # ------------------------------------------------------------------ internals

    def _silence_left(self) -> float:
        if self._silent_until is None:
            return 0.0
        left = self._silent_until - self._monotonic()
        if left <= 0:
            self._silent_until = None
            return 0.0
        return left

    def _apply(self, item: dict[str, Any]) -> dict[str, Any]:
        kind = item["type"]
        if kind in HTTP_TYPES:
            with self._lock:
                fault = Fault(
                    id=next(self._ids),
                    type=kind,
                    path=item["path"],
                    remaining=item.get("count"),
                    status=item.get("status", 200),
                    body=item.get("body"),
                    apply=item.get("apply", False),
                    seconds=float(item.get("seconds", DEFAULT_HANG_SECONDS)),
                )
                self._faults.append(fault)
            log.info("fault.added", **fault.describe())
            return fault.describe()
        if kind == "clear":
            return {"type": "clear", "cleared": self.clear()}
        if kind == "wsSilence":
            seconds = float(item["seconds"])
            with self._lock:
                until = self._monotonic() + seconds
                self._silent_until = max(until, self._silent_until or until)  # overlapping: the later end
            log.info("fault.applied", type=kind, path="/ws", remaining=None, seconds=seconds)
            return {"type": kind, "seconds": seconds}
        if kind == "dropWs":
            abrupt = bool(item.get("abrupt", False))
            dropped = self._drop_ws(abrupt) if self._drop_ws is not None else 0
            log.info("fault.applied", type=kind, path="/ws", remaining=None, abrupt=abrupt, dropped=dropped)
            return {"type": kind, "abrupt": abrupt, "dropped": dropped}
        # clockJump (the only type left after validation)
        if self._jump_clock is None:
            raise FaultError("this fault plan has no clock to jump")
        now = self._jump_clock(item["ms"])
        log.info("fault.applied", type=kind, path=None, remaining=None, ms=item["ms"], time=now)
        return {"type": kind, "ms": item["ms"], "time": now}


# ---------------------------------------------------------------------- validation


def _validate(item: Any, index: int | None) -> dict[str, Any]:
    where = "" if index is None else f"fault #{index}: "
    try:
        return _check(item)
    except FaultError as exc:
        raise FaultError(where + str(exc)) from None


def _check(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise FaultError("a fault must be a JSON object")
    kind = item.get("type")
    if kind not in _KEYS:
        raise FaultError(f"unknown fault type {kind!r}; expected one of {', '.join(_KEYS)}")
    unknown = sorted(set(item) - _KEYS[kind] - {"type"})
    if unknown:
        raise FaultError(f"{kind} does not take {', '.join(unknown)}")
    if kind in HTTP_TYPES:
        if item.get("path") not in PATHS:
            raise FaultError(f"{kind} needs a path: /info or /exchange")
        count = item.get("count")
        if count is not None and (not _is_int(count) or count <= 0):
            raise FaultError("count must be a positive integer (omit it for: until cleared)")
        if "apply" in item and not isinstance(item["apply"], bool):
            raise FaultError("apply must be true or false")
    if kind == "httpStatus":
        if not _is_int(item.get("status")) or item["status"] not in STATUSES:
            raise FaultError(f"status must be one of {', '.join(map(str, STATUSES))}")
        if "body" in item and not isinstance(item["body"], str):
            raise FaultError("body must be a string")
    if kind == "hang" and "seconds" in item:
        _seconds(item["seconds"])
    if kind == "wsSilence":
        if "seconds" not in item:
            raise FaultError("wsSilence needs seconds")
        _seconds(item["seconds"])
    if kind == "dropWs" and "abrupt" in item and not isinstance(item["abrupt"], bool):
        raise FaultError("abrupt must be true or false")
    if kind == "clockJump" and (not _is_int(item.get("ms")) or item["ms"] <= 0):
        raise FaultError("clockJump needs ms, a positive integer (the venue clock never runs backwards)")
    if kind == "clockJump" and item["ms"] > MAX_CLOCK_JUMP_MS:
        raise FaultError(f"clockJump ms must be at most {MAX_CLOCK_JUMP_MS:,} (one day)")
    return dict(item)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_SECONDS:
        raise FaultError(f"seconds must be a number in (0, {MAX_SECONDS:g}]")
    return float(value)
