"""The clocks: ``SimClock`` (virtual time, driven), ``LiveClock`` (wall and asyncio) and ``every``."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from hyperfollow.core.clock import LiveClock, SimClock, every
from hyperfollow.ports.clock import Clock

START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
WEEK_SECS = 7 * 86_400


def test_both_clocks_are_clocks() -> None:
    clocks: list[Clock] = [LiveClock(), SimClock()]  # mypy checks the Protocol; this the runtime shape
    for clock in clocks:
        assert isinstance(clock.now_ns(), int)
        assert isinstance(clock.now_ms(), int)


def test_sim_clock_reads_its_start_and_does_not_move_by_itself() -> None:
    clock = SimClock(start_ms=START_MS)
    assert (clock.now_ms(), clock.now_ns(), clock.monotonic()) == (START_MS, START_MS * 1_000_000, 0.0)
    time.sleep(0.01)
    assert clock.now_ms() == START_MS
    assert SimClock(123_456_789).now_ms() == 123


async def test_sleep_waits_until_time_is_driven_past_its_deadline() -> None:
    clock = SimClock(start_ms=START_MS)
    woke: list[int] = []

    async def sleeper() -> None:
        await clock.sleep(5)
        woke.append(clock.now_ms())

    task = asyncio.ensure_future(sleeper())
    for _ in range(10):
        await asyncio.sleep(0)
    assert woke == []  # real time passing does nothing
    await clock.advance(4.999)
    assert woke == []
    assert clock.now_ms() == START_MS + 4_999
    await clock.advance(0.001)
    assert woke == [START_MS + 5_000]  # woken at its deadline, not later
    assert task.done()


async def test_run_until_fires_deadlines_set_on_the_way_and_stops_at_the_target() -> None:
    clock = SimClock()
    seen: list[float] = []

    async def loop() -> None:
        while True:
            await clock.sleep(1.5)
            seen.append(clock.monotonic())

    task = asyncio.ensure_future(loop())
    await asyncio.sleep(0)
    await clock.run_until(10 * 1_000_000_000)
    assert seen == [1.5, 3.0, 4.5, 6.0, 7.5, 9.0]
    assert clock.monotonic() == 10.0
    assert clock.next_deadline_ns() == 10_500_000_000
    task.cancel()
    with pytest.raises(ValueError, match="backwards"):
        await clock.run_until(0)


async def test_equal_deadlines_fire_in_the_order_they_were_set() -> None:
    clock = SimClock()
    order: list[str] = []

    async def sleeper(name: str, secs: float) -> None:
        await clock.sleep(secs)
        order.append(name)

    tasks = [asyncio.ensure_future(sleeper(n, s)) for n, s in [("c", 2), ("a", 1), ("b", 1), ("d", 2)]]
    await asyncio.sleep(0)  # every task has set its deadline: c, a, b, d
    clock.call_later(1, lambda: order.append("timer@1"))  # set after a and b
    clock.call_later(2, lambda: order.append("timer@2"))  # after c and d
    await clock.advance(5)
    assert order == ["a", "b", "timer@1", "c", "d", "timer@2"]
    assert all(t.done() for t in tasks)


async def test_a_woken_task_runs_to_its_next_wait_before_the_next_deadline_fires() -> None:
    """Tasks woken at t run (through queues and locks) until all wait again; only then does t+1 fire."""
    clock = SimClock()
    log: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()

    async def producer() -> None:
        await clock.sleep(1)
        for i in range(3):
            await queue.put(i)
            await asyncio.sleep(0)

    async def consumer() -> None:
        for _ in range(3):
            item = await queue.get()
            log.append(f"got {item} at {clock.monotonic()}")

    async def late() -> None:
        await clock.sleep(1.000000001)
        log.append(f"late at {clock.monotonic()}")

    tasks = [asyncio.ensure_future(c) for c in (producer(), consumer(), late())]
    await clock.advance(2)
    assert log == ["got 0 at 1.0", "got 1 at 1.0", "got 2 at 1.0", "late at 1.000000001"]
    await asyncio.gather(*tasks)


async def test_a_cancelled_sleep_and_a_cancelled_timer_never_fire() -> None:
    clock = SimClock()
    fired: list[str] = []

    async def sleeper() -> None:
        await clock.sleep(1)
        fired.append("sleeper")

    task = asyncio.ensure_future(sleeper())
    await asyncio.sleep(0)
    timer = clock.call_later(1, lambda: fired.append("timer"))
    kept = clock.call_later(2, lambda: fired.append("kept"))
    task.cancel()
    timer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.next_deadline_ns() == 2_000_000_000  # the cancelled ones are not deadlines any more
    await clock.advance(3)
    assert fired == ["kept"]
    kept.cancel()  # after it ran: harmless
    assert clock.next_deadline_ns() is None


async def test_wait_for_times_out_on_simulated_time_and_cancels_what_it_waited_on() -> None:
    clock = SimClock()
    never: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        await clock.run(clock.wait_for(never, 30))
    assert never.cancelled()
    assert clock.monotonic() == 30.0

    async def answer() -> int:
        await clock.sleep(1)
        return 42

    assert await clock.run(clock.wait_for(answer(), 30)) == 42
    assert clock.monotonic() == 31.0  # it returned when the answer came, not at the timeout
    assert clock.next_deadline_ns() is None  # its timeout timer is gone
    assert await clock.wait_for(asyncio.sleep(0, result=7), None) == 7


async def test_run_drives_time_to_each_deadline_until_the_work_is_done() -> None:
    clock = SimClock(start_ms=START_MS)

    async def work() -> int:
        await clock.sleep(3600)
        await clock.sleep(0.25)
        return clock.now_ms()

    assert await clock.run(work()) == START_MS + 3_600_250
    assert clock.now_ms() == START_MS + 3_600_250  # time stops where the work ended


async def test_auto_drive_waits_for_a_timer_set_later() -> None:
    """With nothing scheduled the drive parks; a deadline set afterwards (after real I/O, say) wakes it."""
    clock = SimClock()
    started = asyncio.Event()
    done: list[float] = []

    async def later() -> None:
        await started.wait()
        await clock.sleep(10)
        done.append(clock.monotonic())

    task = asyncio.ensure_future(later())
    async with clock.auto():
        for _ in range(5):
            await asyncio.sleep(0)
        assert clock.monotonic() == 0.0  # nothing to jump to
        started.set()
        await task
    assert done == [10.0]


async def test_one_drive_at_a_time() -> None:
    clock = SimClock()
    async with clock.auto():
        with pytest.raises(RuntimeError, match="already"):
            await clock.advance(1)


async def test_a_week_of_one_second_ticks_replays_on_a_sim_clock() -> None:
    clock = SimClock(start_ms=START_MS)
    ticks: list[int] = []

    async def loop() -> None:
        async for k in every(clock, 1.0):
            ticks.append(k)

    task = asyncio.ensure_future(loop())
    await asyncio.sleep(0)
    await clock.advance(WEEK_SECS)
    task.cancel()
    assert len(ticks) == WEEK_SECS
    assert ticks[0] == 1
    assert ticks[-1] == WEEK_SECS
    assert clock.now_ms() == START_MS + WEEK_SECS * 1000


async def test_loops_of_different_periods_interleave_exactly() -> None:
    """Time jumps straight to a lone sleeper's deadline, but never past another task's (nor to an equal one
    set earlier: that one goes first)."""
    clock = SimClock()
    seen: list[tuple[str, float]] = []

    async def loop(name: str, period: float) -> None:
        async for _ in every(clock, period):
            seen.append((name, clock.monotonic()))

    tasks = [asyncio.ensure_future(loop("a", 1.0)), asyncio.ensure_future(loop("b", 1.5))]

    async def stop_at(secs: float) -> None:
        await clock.sleep(secs)
        tasks[0].cancel()  # set at 0, before "a" set its tick of 5 s: it goes first

    tasks.append(asyncio.ensure_future(stop_at(5)))
    await asyncio.sleep(0)
    await clock.advance(6)
    tasks[1].cancel()
    assert seen == [
        ("a", 1.0), ("b", 1.5), ("a", 2.0), ("b", 3.0), ("a", 3.0), ("a", 4.0), ("b", 4.5), ("b", 6.0),
    ]  # fmt: skip


async def test_a_lone_loop_jumping_through_time_still_lets_the_outside_in() -> None:
    """Between its jumps the event loop still turns: a socket that becomes readable (found only by the loop's
    poll) is seen while a lone loop races through simulated time."""
    clock = SimClock()
    arrived = asyncio.Event()
    loop = asyncio.get_running_loop()
    ticks = [0]

    async def ticker() -> None:
        async for k in every(clock, 1.0):
            ticks[0] = k

    ours, theirs = socket.socketpair()
    loop.add_reader(ours, arrived.set)
    try:
        async with clock.auto():
            task = asyncio.ensure_future(ticker())
            threading.Timer(0.01, theirs.send, (b"x",)).start()
            await arrived.wait()  # never returns if the ticker keeps the loop to itself
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task  # still ticking when the outside came in
    finally:
        loop.remove_reader(ours)
        ours.close()
        theirs.close()
    assert ticks[0] > 0
    assert clock.monotonic() >= ticks[0]


async def test_every_is_drift_free_and_skips_the_ticks_a_slow_body_missed() -> None:
    clock = SimClock()
    seen: list[tuple[int, float]] = []

    async def loop() -> None:
        async for k in every(clock, 0.1):
            seen.append((k, clock.monotonic()))
            if k == 3:
                await clock.sleep(0.25)  # overruns two periods and a half

    task = asyncio.ensure_future(loop())
    await asyncio.sleep(0)
    await clock.advance(1.0)
    task.cancel()
    ks = [k for k, _ in seen]
    assert ks == [1, 2, 3, 6, 7, 8, 9, 10]  # 4 and 5 missed, no burst; 6 on its own schedule
    assert [round(t, 9) for _, t in seen] == [0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9, 1.0]
    with pytest.raises(ValueError, match="positive"):
        await anext(every(clock, 0))


async def test_live_clock_reads_wall_time_and_sleeps_for_real() -> None:
    clock = LiveClock()
    before = time.time_ns()
    start = clock.monotonic()
    await clock.sleep(0.02)
    assert clock.monotonic() - start >= 0.015
    assert before <= clock.now_ns() <= time.time_ns()
    assert abs(clock.now_ms() - time.time_ns() // 1_000_000) <= 1_000
    fired = asyncio.Event()
    clock.call_later(0.01, fired.set)
    await asyncio.wait_for(fired.wait(), 5)
    cancelled: list[int] = []
    clock.call_later(0.01, lambda: cancelled.append(1)).cancel()
    await clock.sleep(0.03)
    assert cancelled == []
    with pytest.raises(TimeoutError):
        await clock.wait_for(asyncio.Event().wait(), 0.01)


async def test_live_clock_takes_its_epoch_from_a_given_source() -> None:
    """The demo's clock: the venue's accelerated epoch time; monotonic time and sleeps stay real."""
    venue_ms = [START_MS]
    clock = LiveClock(wall_ms=lambda: venue_ms[0])
    assert (clock.now_ms(), clock.now_ns()) == (START_MS, START_MS * 1_000_000)
    venue_ms[0] += 60_000
    assert clock.now_ms() == START_MS + 60_000
    assert abs(clock.monotonic() - time.monotonic()) < 1
