"""The loaders stream: memory stays bounded whatever the length of the file."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

from hyperfollow.backtest.data.market import market_events

BOOK = '{{"channel":"l2Book","data":{{"coin":"BTC","time":{t},"levels":[[{bids}],[{asks}]]}}}}'


def _capture(path: Path, mb: int) -> int:
    """A gzip'd capture of 20-level books that decompresses to about ``mb`` MB; returns its line count."""
    bids = ",".join(f'{{"px":"{100000 - i}.0","sz":"1.{i:05d}","n":{i + 1}}}' for i in range(20))
    asks = ",".join(f'{{"px":"{100001 + i}.0","sz":"2.{i:05d}","n":{i + 1}}}' for i in range(20))
    line_len = len(BOOK.format(t=1737918843542, bids=bids, asks=asks)) + 21
    n = mb * 1_000_000 // line_len
    with gzip.open(path, "wt", compresslevel=1) as out:
        for k in range(n):
            out.write(
                f"{1737918843893903000 + k} " + BOOK.format(t=1737918843542 + k, bids=bids, asks=asks) + "\n"
            )
    return n


def _peak(path: Path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        count = sum(1 for _ in market_events(path))
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_capture_streams_in_bounded_memory(tmp_path: Path) -> None:
    small, large = tmp_path / "small.gz", tmp_path / "large.gz"
    n_small, n_large = _capture(small, 2), _capture(large, 20)
    count_small, peak_small = _peak(small)
    count_large, peak_large = _peak(large)
    assert (count_small, count_large) == (n_small, n_large)
    # ten times the data, the same memory: nothing grows with the file
    assert peak_large < 2 * 1024 * 1024
    assert peak_large < peak_small + 256 * 1024
