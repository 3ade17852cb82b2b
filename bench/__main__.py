"""Run the benchmark suite: ``python -m bench [module ...]`` (``make bench`` runs all of it).

Every ``bench/bench_*.py`` module exposes ``run() -> list[tuple[name, value, unit]]`` (each value already
the median over the module's repetitions in this run) and may declare ``GOALS = {name: (op, target)}``
with ``op`` one of ``<``, ``<=``, ``>``, ``>=``. All modules run in this one process, in the order below,
and one table is printed: value, unit, goal, and the ratio to the goal (``>= 1x`` means the goal is met;
for "less is better" goals the ratio is goal / value). Arguments pick modules: ``engine`` or
``bench_engine``. The exit status is 1 when a module fails (or, with ``--strict``, a goal is missed).
``--minutes`` sets the run length of the soak modules (those whose ``run`` takes ``minutes``:
``bench_copy_weight``).

``realism`` is run only when named, with its own options and table: ``python -m bench realism --seeds 7 8
--minutes 30`` prints the synthetic market's microstructure figures next to the recorded venue's.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import operator
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from rich import box
from rich.console import Console
from rich.table import Table

ORDER = [
    "bench_engine",
    "bench_signing",
    "bench_roundtrip",
    "bench_ws",
    "bench_market",
    "bench_replay",
    "bench_backtest_copy",
]
SOAK = ["bench_copy_weight"]  # minutes of wall time each: run only when named (python -m bench copy_weight)
OWN_TABLE = {"bench_realism"}  # run only when named; they print their own table and take their own options
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


@dataclass
class Row:
    module: str
    name: str
    value: float
    unit: str
    goal: tuple[str, float] | None


def discover() -> list[str]:
    """bench_* modules next to this file: the known ones in ORDER, then any others alphabetically."""
    found = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    return [m for m in ORDER if m in found] + [m for m in found if m not in ORDER and m not in OWN_TABLE]


def resolve(names: list[str], available: list[str]) -> list[str]:
    chosen = []
    for name in names:
        module = name if name.startswith("bench_") else f"bench_{name}"
        module = module.removesuffix(".py")
        if module not in available:
            raise SystemExit(f"unknown bench module {name!r}; available: {', '.join(available)}")
        chosen.append(module)
    return chosen


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ""
    if hasattr(os, "getloadavg"):
        load = f" | load avg (1m) {os.getloadavg()[0]:.2f}"
    return (f"{platform.python_implementation()} {platform.python_version()} on {platform.system()} "
            f"{platform.machine()} | {os.cpu_count()} CPUs ({usable} usable){' | ' + model if model else ''}"
            f"{load}")  # fmt: skip


def ratio(value: float, goal: tuple[str, float]) -> float:
    """Headroom as a factor: >= 1 meets a "more is better" goal as value / target, else target / value."""
    op, target = goal
    if op in (">", ">="):
        return value / target if target else float("inf")
    return target / value if value > 0 else float("inf")  # at or below zero beats any "less than" goal


def fmt(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def run_module(module_name: str, minutes: float | None = None) -> tuple[list[Row], float]:
    module: ModuleType = importlib.import_module(f"bench.{module_name}")
    goals: dict[str, tuple[str, float]] = getattr(module, "GOALS", {})
    start = time.perf_counter()
    takes_minutes = "minutes" in inspect.signature(module.run).parameters
    results = module.run(minutes=minutes) if takes_minutes and minutes is not None else module.run()
    seconds = time.perf_counter() - start
    short = module_name.removeprefix("bench_")
    return [Row(short, name, float(value), unit, goals.get(name)) for name, value, unit in results], seconds


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and f"bench_{argv[0].removeprefix('bench_')}" in OWN_TABLE:  # its own options and table
        code: int = importlib.import_module(f"bench.bench_{argv[0].removeprefix('bench_')}").main(argv[1:])
        return code
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules to run (default: all), e.g. engine ws")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--minutes", type=float, help="run length of the soak modules (bench_copy_weight)")
    args = parser.parse_args(argv)
    available = discover()
    if any(f"bench_{m.removeprefix('bench_')}" in OWN_TABLE for m in args.modules):
        raise SystemExit("realism runs alone, with its own options: python -m bench realism [--seeds ...]")
    skipped = set(SOAK) | OWN_TABLE
    chosen = resolve(args.modules, available) if args.modules else [m for m in available if m not in skipped]
    console = Console(width=max(170, Console().width))
    console.print(f"[bold]hyperfollow benchmarks[/bold]  {machine()}")
    rows: list[Row] = []
    failures: list[str] = []
    timings: list[str] = []
    t_all = time.perf_counter()
    for name in chosen:
        console.print(f"running {name} ...", style="dim")
        try:
            module_rows, seconds = run_module(name, args.minutes)
        except Exception:
            failures.append(name)
            console.print(f"[red]{name} failed[/red]\n{traceback.format_exc()}")
            continue
        rows += module_rows
        timings.append(f"{name.removeprefix('bench_')} {seconds:.1f}s")

    table = Table(title="medians over the repetitions of this run", title_justify="left", box=box.SIMPLE_HEAD)
    for column, justify in (("module", "left"), ("figure", "left"), ("value", "right"), ("unit", "left"),
                            ("goal", "left"), ("vs goal", "right")):  # fmt: skip
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    missed = 0
    for row in rows:
        goal_text = vs_goal = ""
        if row.goal is not None:
            op, target = row.goal
            met = OPS[op](row.value, target)
            missed += not met
            goal_text = f"{op} {fmt(target)}"
            style, verdict = ("green", "ok") if met else ("red", "MISSED")
            vs_goal = f"[{style}]{ratio(row.value, row.goal):.2f}x {verdict}"
        table.add_row(row.module, row.name, fmt(row.value), row.unit, goal_text, vs_goal)
    console.print(table)
    console.print(f"total {time.perf_counter() - t_all:.1f}s ({', '.join(timings)})")
    if failures:
        console.print(f"[red]failed modules: {', '.join(failures)}[/red]")
    if missed:
        console.print(f"[yellow]{missed} goal(s) missed[/yellow]")
    return 1 if failures or (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
