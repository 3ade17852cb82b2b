"""An in-process stream: an async iterator over a queue that the simulated venue fills synchronously.

The venue pushes into a ``Feed`` while it drains the engine (always from the event loop's thread, never
across threads), and a consumer ``async for``-s over it. Nothing here sleeps or polls: ``__anext__``
returns at once when something is queued and otherwise waits for the next push (or for ``close``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Feed(Generic[T]):
    """A single-consumer queue exposed as an ``AsyncIterator``; ``close`` ends the iteration."""

    def __init__(self, on_close: Callable[[Feed[T]], None] | None = None) -> None:
        self._items: deque[T] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._on_close = on_close

    @property
    def closed(self) -> bool:
        return self._closed

    def push(self, item: T) -> None:
        """Queue one item (ignored once closed)."""
        if self._closed:
            return
        self._items.append(item)
        self._ready.set()

    def extend(self, items: Iterable[T]) -> None:
        for item in items:
            self.push(item)

    def pending(self) -> int:
        """Items queued and not yet consumed."""
        return len(self._items)

    def drain(self) -> list[T]:
        """Take everything queued now, without waiting (backtests and tests step, then drain)."""
        items = list(self._items)
        self._items.clear()
        return items

    def close(self) -> None:
        """End the stream: queued items are still delivered, then ``StopAsyncIteration``."""
        if self._closed:
            return
        self._closed = True
        self._ready.set()
        if self._on_close is not None:
            self._on_close(self)

    def __aiter__(self) -> Feed[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    async def aclose(self) -> None:
        """Unsubscribe (what ``contextlib.aclosing`` and async generators' users call)."""
        self.close()
