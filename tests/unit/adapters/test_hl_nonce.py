"""Per-signer nonces: unique and increasing under threads, and across a clock that steps back."""

from __future__ import annotations

import threading

from structlog.testing import capture_logs

from hyperfollow.adapters.hyperliquid.nonce import NonceSource, nonce_source_for, wall_ms


def test_nonces_are_unique_and_increasing_across_threads() -> None:
    source = NonceSource(clock=lambda: 1_700_000_000_000)  # a frozen clock: every nonce must count up
    per_thread: list[list[int]] = [[] for _ in range(8)]

    def work(out: list[int]) -> None:
        for _ in range(500):
            out.append(source.next())

    threads = [threading.Thread(target=work, args=(out,)) for out in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [n for out in per_thread for n in out]
    assert len(set(every)) == len(every) == 4000
    assert min(every) == 1_700_000_000_000
    assert max(every) == 1_700_000_000_000 + 3999
    for out in per_thread:
        assert out == sorted(out)
    assert source.last == max(every)


def test_nonce_follows_the_wall_clock_when_it_is_ahead() -> None:
    times = iter([1000, 1005, 1005, 2000])
    source = NonceSource(clock=lambda: next(times))
    assert [source.next() for _ in range(4)] == [1000, 1005, 1006, 2000]


def test_clock_jump_back_never_moves_the_nonce_back_and_is_logged_once() -> None:
    times = iter([5000, 5001, 3000, 3001, 3002, 5100, 4000])
    source = NonceSource(clock=lambda: next(times))
    with capture_logs() as logs:
        nonces = [source.next() for _ in range(7)]
    assert nonces == [5000, 5001, 5002, 5003, 5004, 5100, 5101]
    jumps = [e for e in logs if e["event"] == "nonce.clock_jump_back"]
    # two jumps back (5001 -> 3000 and 5100 -> 4000): one event each, none while catching up
    assert [(e["wall_ms"], e["previous_wall_ms"]) for e in jumps] == [(3000, 5001), (4000, 5100)]


def test_wall_ms_is_epoch_milliseconds() -> None:
    assert 1_600_000_000_000 < wall_ms() < 4_000_000_000_000


def test_one_source_per_signer_in_the_process() -> None:
    a = nonce_source_for("0x" + "AA" * 20)
    assert nonce_source_for("0x" + "aa" * 20) is a
    assert nonce_source_for("0x" + "bb" * 20) is not a
