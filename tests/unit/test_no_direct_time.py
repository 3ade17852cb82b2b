"""Nothing in the trading packages reads time or waits except through the ``Clock`` port.

Copy trading, risk, execution and the core run unchanged on a simulated clock (backtests) and a live one,
so none of them may touch real time: no ``time.time``/``time_ns``/``monotonic``/``perf_counter``/``sleep``,
no ``asyncio.sleep``/``wait_for``/``timeout``, no ``datetime.now``/``utcnow``/``today``, no event loop
``time()``/``call_later``. Passing one as a value counts too (``sleep=asyncio.sleep`` as a default). Only
``core/clock.py``, where ``LiveClock`` lives, may. The check parses the source (ast), aliases included.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import hyperfollow

PACKAGE = Path(hyperfollow.__file__).parent
CHECKED = ("copy", "risk", "execution", "core", "strategies", "smart_money", "signals")
REQUIRED = ("copy", "risk", "execution", "core")
ALLOWED = {PACKAGE / "core" / "clock.py"}

_TIME = ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "sleep")
FORBIDDEN = frozenset(
    {
        *(f"time.{n}" for n in _TIME),
        *(f"asyncio.{n}" for n in ("sleep", "wait_for", "timeout", "timeout_at")),
        *(f"datetime.datetime.{n}" for n in ("now", "utcnow", "today")),
        "datetime.date.today",
    }
)
LOOP_GETTERS = frozenset({"asyncio.get_running_loop", "asyncio.get_event_loop"})
LOOP_TIMERS = frozenset({"time", "call_later", "call_at"})


@dataclass(frozen=True)
class Hit:
    line: int
    what: str


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """``a.b.c`` with its first name resolved through the module's imports, or None."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, aliases)
        return None if base is None else f"{base}.{node.attr}"
    return None


def direct_time(source: str) -> list[Hit]:
    """Every place ``source`` reads real time or waits on it."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}  # local name -> what it is ("t" -> "time", "dt" -> "datetime.datetime")
    hits: list[Hit] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                aliases[a.asname or a.name] = full
                if full in FORBIDDEN:
                    hits.append(Hit(node.lineno, f"from {node.module} import {a.name}"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = _dotted(node, aliases)
        if name in FORBIDDEN:
            hits.append(Hit(node.lineno, name))
        if (
            node.attr in LOOP_TIMERS
            and isinstance(node.value, ast.Call)
            and _dotted(node.value.func, aliases) in LOOP_GETTERS
        ):
            hits.append(Hit(node.lineno, f"event loop .{node.attr}"))
    return sorted(set(hits), key=lambda h: (h.line, h.what))


def test_the_trading_packages_are_where_the_check_looks() -> None:
    for name in REQUIRED:  # a rename must not empty the check silently
        assert (PACKAGE / name / "__init__.py").exists(), f"hyperfollow.{name} moved: update this test"


@pytest.mark.parametrize("package", [p for p in CHECKED if (PACKAGE / p).is_dir()])
def test_trading_packages_read_time_only_through_the_clock(package: str) -> None:
    offences = [
        f"{path.relative_to(PACKAGE.parent)}:{hit.line}: {hit.what}"
        for path in sorted((PACKAGE / package).rglob("*.py"))
        if path not in ALLOWED
        for hit in direct_time(path.read_text())
    ]
    assert offences == [], "direct time in the trading packages (use the Clock port):\n" + "\n".join(offences)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import time\nx = time.time()", ["time.time"]),
        ("import time as t\nx = t.monotonic_ns()", ["time.monotonic_ns"]),
        ("from time import perf_counter as pc\nx = pc()", ["from time import perf_counter"]),
        ("import asyncio\nasync def f(sleep=asyncio.sleep): await sleep(1)", ["asyncio.sleep"]),
        ("import asyncio as aio\nasync def f(x): await aio.wait_for(x, 1)", ["asyncio.wait_for"]),
        ("from asyncio import sleep\n", ["from asyncio import sleep"]),
        ("import datetime\nx = datetime.datetime.now()", ["datetime.datetime.now"]),
        ("from datetime import datetime as dt\nx = dt.utcnow()", ["datetime.datetime.utcnow"]),
        ("from datetime import date\nx = date.today()", ["datetime.date.today"]),
        ("import asyncio\nx = asyncio.get_running_loop().time()", ["event loop .time"]),
        # what stays allowed: the clock's own methods, durations, parsing a given time
        ("async def f(clock):\n    await clock.sleep(1)\n    return clock.now_ms()", []),
        ("import asyncio\nx = asyncio.get_running_loop().create_future()", []),
        ("from datetime import datetime, timedelta\nx = datetime.fromtimestamp(0) + timedelta(1)", []),
        ("import time\nx = time.strftime('%Y')", []),
    ],
)
def test_the_check_finds_every_spelling(source: str, expected: list[str]) -> None:
    assert [h.what for h in direct_time(source)] == expected
