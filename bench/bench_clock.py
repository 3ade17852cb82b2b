"""The simulated clock: how fast loops on ``SimClock`` replay simulated time.

* ``a week of every(1 s), one loop``: one ``core.clock.every(clock, 1.0)`` loop driven through 7 days
  (604,800 ticks) by ``clock.advance``; wall seconds, median of 3 fresh runs. The tick count is checked.
* ``one loop, µs per tick``: the same figure per tick.
* ``10 loops of 1-10 s for a day``: ten ``every`` loops with periods 1, 2, ..., 10 s through one simulated
  day (253,062 ticks in all, interleaved: the drive turns the event loop between them); ticks per wall
  second, median of 3.
"""

from __future__ import annotations

import asyncio
import time

from bench._stats import median
from hyperfollow.core.clock import SimClock, every

WEEK_SECS = 7 * 86_400
DAY_SECS = 86_400
RUNS = 3

GOALS = {"a week of every(1 s), one loop": ("<", 1.0)}


async def _replay(periods: list[float], secs: int) -> tuple[int, float]:
    clock = SimClock(start_ms=1_767_225_600_000)
    ticks = [0]

    async def loop(period: float) -> None:
        async for _ in every(clock, period):
            ticks[0] += 1

    tasks = [asyncio.ensure_future(loop(p)) for p in periods]
    await asyncio.sleep(0)
    started = time.perf_counter()
    await clock.advance(secs)
    elapsed = time.perf_counter() - started
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return ticks[0], elapsed


def run() -> list[tuple[str, float, str]]:
    week = [asyncio.run(_replay([1.0], WEEK_SECS)) for _ in range(RUNS)]
    assert all(n == WEEK_SECS for n, _ in week), week
    ten = [float(p) for p in range(1, 11)]
    day = [asyncio.run(_replay(ten, DAY_SECS)) for _ in range(RUNS)]
    expected = sum(DAY_SECS // int(p) for p in ten)
    assert all(n == expected for n, _ in day), (day, expected)
    week_secs = median([t for _, t in week])
    return [
        ("a week of every(1 s), one loop", week_secs, "s"),
        ("one loop, µs per tick", week_secs / WEEK_SECS * 1e6, "µs"),
        ("10 loops of 1-10 s for a day", expected / median([t for _, t in day]), "ticks/s"),
    ]


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name}: {value:,.3f} {unit}")
