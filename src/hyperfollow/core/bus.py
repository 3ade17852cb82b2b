"""The event bus: typed, immutable events fanned out to subscribers by type.

Every event carries two times, in integer nanoseconds since the epoch: ``ts_event``, when the venue
says it happened, and ``ts_init``, when we received or made it. Subscribing to a type delivers that type
and its subclasses (subscribe to ``Event`` for everything).

Two kinds of subscriber:

* **handlers** (``Bus.on``) are called inline, in subscription order, by whoever publishes: the
  synchronous fast path of a backtest loop and of a process's own trading components. A handler that
  raises propagates to the publisher; a slow handler slows the publisher, so never give one to a client;
* **subscriptions** (``Bus.subscribe``) own a bounded queue, read with ``await sub.get()`` or
  ``async for event in sub``. Each states what happens when its queue is full:

  - ``Overflow.DROP_OLDEST``: the oldest queued event is dropped and counted in ``sub.dropped``, and
    publishing goes on at once. For UI and web clients: a slow or stalled reader never holds anyone up;
  - ``Overflow.BLOCK``: backpressure. ``await bus.publish(event)`` waits until the reader makes room, so
    a trading component gets every event, in publish order; ``bus.publish_nowait`` refuses with
    ``Backpressure`` instead (delivering to nobody) when such a queue is full.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from enum import Enum
from typing import Any, Generic, TypeVar

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every bus event: immutable, venue time and receive time in integer ns."""

    ts_event: int
    ts_init: int


E = TypeVar("E", bound=Event)


class Overflow(Enum):
    """What a full subscriber queue does with the next event."""

    DROP_OLDEST = "drop_oldest"
    BLOCK = "block"


class Backpressure(RuntimeError):
    """``publish_nowait`` met a full ``BLOCK`` queue: nothing was delivered; ``await publish`` instead."""


class SubscriptionClosed(Exception):
    """The subscription was closed and every event queued before that has been read."""


class Subscription(Generic[E]):
    """One reader's bounded queue of events of ``event_type`` (and its subclasses)."""

    def __init__(self, bus: Bus, event_type: type[E], maxsize: int, overflow: Overflow, name: str) -> None:
        if maxsize < 1:
            raise ValueError("a subscription needs a queue of at least one event")
        self.event_type = event_type
        self.maxsize = maxsize
        self.overflow = overflow
        self.name = name
        self.dropped = 0
        """Events dropped because the queue was full (``DROP_OLDEST`` only)."""
        self._items: deque[E] = deque()
        self._nonempty = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._bus: Bus | None = bus
        self._left = False  # the reader closed it: queued events are gone
        self._ended = False  # the bus closed: the reader drains what is queued

    @property
    def closed(self) -> bool:
        return self._left or self._ended

    def qsize(self) -> int:
        """Events waiting to be read."""
        return len(self._items)

    def _full(self) -> bool:
        return len(self._items) >= self.maxsize

    def _offer(self, event: E) -> None:
        """Queue without waiting, dropping the oldest when full (``BLOCK`` callers check for room first)."""
        if self._left:
            return
        items = self._items
        if len(items) >= self.maxsize:
            items.popleft()
            self.dropped += 1
        items.append(event)
        self._nonempty.set()
        if len(items) >= self.maxsize:
            self._room.clear()

    async def _put(self, event: E) -> None:
        """Queue once there is room (backpressure); a reader that left takes nothing more."""
        while self._full() and not self._left:
            await self._room.wait()
        if not self._left:
            self._offer(event)

    async def get(self) -> E:
        """The next event; raises ``SubscriptionClosed`` once closed and drained."""
        items = self._items
        while not items:
            if self._left or self._ended:
                raise SubscriptionClosed(self.name)
            self._nonempty.clear()
            await self._nonempty.wait()
        return self._take()

    def get_nowait(self) -> E:
        """The next queued event; ``LookupError`` when there is none, ``SubscriptionClosed`` at the end."""
        if not self._items:
            if self._left or self._ended:
                raise SubscriptionClosed(self.name)
            raise LookupError(f"no event queued for {self.name!r}")
        return self._take()

    def _take(self) -> E:
        event = self._items.popleft()
        self._room.set()
        return event

    def __aiter__(self) -> AsyncIterator[E]:
        return self

    async def __anext__(self) -> E:
        try:
            return await self.get()
        except SubscriptionClosed:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Leave the bus now: queued events are discarded and publishers waiting on this queue go on."""
        if self._bus is not None:
            self._bus._remove(self)
            self._bus = None
        self._left = True
        self._items.clear()
        self._room.set()
        self._nonempty.set()

    def _end(self) -> None:
        """The bus is closing: no more events; the reader still gets what is queued, then the end."""
        self._bus = None
        self._ended = True
        self._nonempty.set()


class _Route:
    """Who receives one concrete event type, resolved once per type and cached."""

    __slots__ = ("block", "drop", "handlers")

    def __init__(
        self,
        handlers: tuple[Callable[[Any], None], ...],
        drop: tuple[Subscription[Any], ...],
        block: tuple[Subscription[Any], ...],
    ) -> None:
        self.handlers = handlers
        self.drop = drop
        self.block = block


class Bus:
    """Fans events out to handlers and bounded subscriptions by event type."""

    def __init__(self) -> None:
        self._handlers: list[tuple[type[Event], Callable[[Any], None]]] = []
        self._subs: list[Subscription[Any]] = []
        self._routes: dict[type, _Route] = {}
        self._closed = False

    def on(self, event_type: type[E], handler: Callable[[E], None]) -> Callable[[], None]:
        """Call ``handler`` inline for every published ``event_type``; returns the unsubscribe function."""
        entry: tuple[type[Event], Callable[[Any], None]] = (event_type, handler)
        self._handlers.append(entry)
        self._routes.clear()

        def off() -> None:
            if entry in self._handlers:
                self._handlers.remove(entry)
                self._routes.clear()

        return off

    def subscribe(
        self, event_type: type[E], *, maxsize: int, overflow: Overflow, name: str = ""
    ) -> Subscription[E]:
        """A bounded queue of ``event_type`` events with the given overflow policy."""
        if self._closed:
            raise RuntimeError("the bus is closed")
        sub = Subscription(self, event_type, maxsize, overflow, name or event_type.__name__)
        self._subs.append(sub)
        self._routes.clear()
        return sub

    def subscriptions(self) -> list[Subscription[Any]]:
        """The open subscriptions (a UI shows their names, depths and drop counters)."""
        return list(self._subs)

    def _remove(self, sub: Subscription[Any]) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
            self._routes.clear()

    def _route(self, cls: type) -> _Route:
        handlers = tuple(h for t, h in self._handlers if issubclass(cls, t))
        subs = [s for s in self._subs if issubclass(cls, s.event_type)]
        route = _Route(
            handlers,
            tuple(s for s in subs if s.overflow is Overflow.DROP_OLDEST),
            tuple(s for s in subs if s.overflow is Overflow.BLOCK),
        )
        self._routes[cls] = route
        return route

    def publish_nowait(self, event: Event) -> None:
        """Deliver without waiting; ``Backpressure`` (and nothing delivered) if a ``BLOCK`` queue is full."""
        route = self._routes.get(type(event)) or self._route(type(event))
        for sub in route.block:
            if sub._full():
                raise Backpressure(f"subscriber {sub.name!r} is full ({sub.maxsize} events)")
        for handler in route.handlers:
            handler(event)
        for sub in route.drop:
            sub._offer(event)
        for sub in route.block:
            sub._offer(event)

    async def publish(self, event: Event) -> None:
        """Deliver to everyone; waits only while a ``BLOCK`` subscriber's queue is full."""
        route = self._routes.get(type(event)) or self._route(type(event))
        for handler in route.handlers:
            handler(event)
        for sub in route.drop:
            sub._offer(event)
        for sub in route.block:
            if sub._full():
                await sub._put(event)
            else:
                sub._offer(event)

    def close(self) -> None:
        """No more events: every subscription ends once its reader has drained what is queued."""
        self._closed = True
        for sub in self._subs:
            sub._end()
        self._subs.clear()
        self._handlers.clear()
        self._routes.clear()
