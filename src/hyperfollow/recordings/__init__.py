"""Recorded market data as files hold it: the container formats (websocket captures, candle files, CSV,
JSON arrays), streamed in bounded memory, shared by the embedded exchange's replay and the backtests.

This package sits just above ``domain`` (it builds domain values and imports nothing else of ours), so
both the exchange and the backtests may use it. It knows the layouts of the files, not the venue's wire:
each consumer decodes a frame's data with its own parser.
"""

from hyperfollow.recordings.source import RecordingError

__all__ = ["RecordingError"]
