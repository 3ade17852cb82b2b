"""One supervised WebSocket connection to Hyperliquid's ``/ws``: connect, (re)subscribe, heartbeat,
staleness, reconnect with capped exponential backoff and jitter.

The connection keeps the *desired* set of subscriptions; on every (re)connect it sends them all again,
and ``add``/``remove`` while connected send ``subscribe``/``unsubscribe`` at once. Frames are decoded
with ``parse.decode_frame`` and handed to the owner (``ConnListener``) as ``(channel, raw data)``;
``pong``, ``subscriptionResponse`` and ``error`` frames are handled here. A frame the owner cannot
parse is logged as ``stream.bad_frame`` and skipped: nothing a venue sends may kill the supervisor.

Liveness (venue quirk: the server closes a connection that has *sent* nothing for 60 s, so we send
``{"method":"ping"}`` every ``heartbeat_secs``; it answers ``{"channel":"pong"}``):

* dead: nothing at all received for ``heartbeat_secs + pong_timeout_secs`` -> reconnect;
* stale (only while the connection carries market data): no data frame for ``stale_after_secs`` ->
  the owner hears ``on_stale`` (once per episode, connected or not), and a connected socket is dropped
  and re-opened; the first data frame afterwards gives ``on_fresh``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Mapping
from typing import Any, Protocol

import msgspec
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from hyperfollow.adapters.hyperliquid import parse

log = structlog.get_logger(__name__)

MARKET_TYPES = frozenset({"l2Book", "trades", "bbo", "allMids", "candle", "activeAssetCtx"})
_GREETING = "Websocket connection established."  # a plain-text frame the real venue sends on connect
_PING = '{"method":"ping"}'
_MAX_FRAME = 32 * 1024 * 1024  # a userFills snapshot carries up to 2,000 fills


class ConnListener(Protocol):
    """What a connection tells its owner. Called on the event loop; must not block."""

    def on_frame(self, conn: WsConnection, channel: str, data: msgspec.Raw) -> None: ...

    def on_connected(self, conn: WsConnection, reconnect: bool) -> None: ...

    def on_disconnected(self, conn: WsConnection, reason: str) -> None: ...

    def on_stale(self, conn: WsConnection, silent_secs: float) -> None: ...

    def on_fresh(self, conn: WsConnection) -> None: ...


def sub_key(sub: Mapping[str, Any]) -> str:
    """A canonical text key of a subscription object."""
    return json.dumps(sub, sort_keys=True, separators=(",", ":"))


class WsConnection:
    """A self-healing socket carrying a set of subscriptions; ``start`` it, ``close`` it."""

    def __init__(
        self,
        url: str,
        name: str,
        listener: ConnListener,
        *,
        heartbeat_secs: float = 20.0,
        stale_after_secs: float = 10.0,
        pong_timeout_secs: float = 10.0,
        backoff_initial_secs: float = 0.25,
        backoff_max_secs: float = 30.0,
        open_timeout_secs: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self.name = name
        self._listener = listener
        self._heartbeat = heartbeat_secs
        self._stale_after = stale_after_secs
        self._pong_timeout = pong_timeout_secs
        self._backoff_initial = backoff_initial_secs
        self._backoff_max = backoff_max_secs
        self._open_timeout = open_timeout_secs
        self._rng = rng or random.Random()
        self._subs: dict[str, dict[str, Any]] = {}
        self._ws: ClientConnection | None = None
        self._outbox: asyncio.Queue[str] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._drop_reason: str | None = None
        self._connected_at = 0.0
        self._last_rx = time.monotonic()
        self._last_data = time.monotonic()
        self._stale = False
        self.connects = 0
        self.frames = 0

    # ------------------------------------------------------------------ subscriptions

    @property
    def subscriptions(self) -> list[dict[str, Any]]:
        return list(self._subs.values())

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def carries_market_data(self) -> bool:
        return any(s.get("type") in MARKET_TYPES for s in self._subs.values())

    def add(self, sub: dict[str, Any]) -> None:
        """Subscribe (now if connected, else on connect); a subscription already held is a no-op."""
        key = sub_key(sub)
        if key in self._subs:
            return
        if not self.carries_market_data and sub.get("type") in MARKET_TYPES:
            self._last_data = time.monotonic()  # staleness counts from when market data was first asked
        self._subs[key] = sub
        self._send({"method": "subscribe", "subscription": sub})

    def remove(self, sub: dict[str, Any]) -> None:
        if self._subs.pop(sub_key(sub), None) is not None:
            self._send({"method": "unsubscribe", "subscription": sub})

    def _send(self, message: dict[str, Any]) -> None:
        if self._outbox is not None:
            self._outbox.put_nowait(json.dumps(message, separators=(",", ":")))

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(), name=f"ws-{self.name}"),
                asyncio.create_task(self._watch(), name=f"ws-watch-{self.name}"),
            ]

    async def close(self) -> None:
        """Stop for good: tasks cancelled, socket closed."""
        self._closing = True
        ws = self._ws
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1.0)
            self._abort(ws)

    def drop(self, reason: str) -> None:
        """Cut the socket as the network would (no close handshake); the connection then reconnects."""
        ws = self._ws
        if ws is not None:
            self._drop_reason = reason
            self._abort(ws)

    @staticmethod
    def _abort(ws: ClientConnection) -> None:
        transport = getattr(ws, "transport", None)
        if transport is not None:
            transport.abort()

    def _backoff(self, attempt: int) -> float:
        """Capped exponential backoff with jitter (half to full of the step, so clients spread out)."""
        step = min(self._backoff_max, self._backoff_initial * (2.0 ** min(attempt, 30)))
        return step * (0.5 + self._rng.random() / 2)

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                ws = await connect(
                    self.url,
                    open_timeout=self._open_timeout,
                    ping_interval=None,  # the venue wants application pings, sent by _pinger
                    close_timeout=1,
                    max_size=_MAX_FRAME,
                )
            except Exception as exc:  # refused, reset, timed out, bad handshake: all mean try again later
                delay = self._backoff(attempt)
                attempt += 1
                log.warning(
                    "stream.connect_failed", conn=self.name, error=repr(exc), retry_in=round(delay, 3)
                )
                await asyncio.sleep(delay)
                continue
            got_frames = await self._serve(ws)
            if self.closing:
                return
            attempt = 0 if got_frames else attempt + 1
            await asyncio.sleep(self._backoff(attempt))

    async def _serve(self, ws: ClientConnection) -> bool:
        """One socket's life; True when it delivered any frame (then backoff starts over)."""
        frames_before = self.frames
        reconnect = self.connects > 0
        self.connects += 1
        self._drop_reason = None
        self._connected_at = self._last_rx = time.monotonic()
        outbox: asyncio.Queue[str] = asyncio.Queue()
        for sub in self._subs.values():
            outbox.put_nowait(json.dumps({"method": "subscribe", "subscription": sub}, separators=(",", ":")))
        self._ws, self._outbox = ws, outbox
        writer = asyncio.create_task(self._writer(ws, outbox))
        pinger = asyncio.create_task(self._pinger(outbox))
        reason = "closed"
        try:
            log.info("stream.reconnected" if reconnect else "stream.connected", conn=self.name, url=self.url)
            self._listener.on_connected(self, reconnect)
            reason = await self._read(ws)
        finally:
            self._ws, self._outbox = None, None
            for task in (writer, pinger):
                task.cancel()
            self._abort(ws)
        if not self._closing:
            log.warning("stream.disconnected", conn=self.name, reason=reason)
            self._listener.on_disconnected(self, reason)
        return self.frames > frames_before

    async def _writer(self, ws: ClientConnection, outbox: asyncio.Queue[str]) -> None:
        with contextlib.suppress(ConnectionClosed, OSError):
            while True:
                await ws.send(await outbox.get())

    async def _pinger(self, outbox: asyncio.Queue[str]) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            outbox.put_nowait(_PING)

    async def _read(self, ws: ClientConnection) -> str:
        try:
            async for message in ws:
                self._on_message(message)
        except ConnectionClosed as exc:
            return self._drop_reason or f"connection lost: {exc}"
        except Exception as exc:  # a bug of ours must cost a reconnect, not the stream
            log.exception("stream.read_failed", conn=self.name)
            return f"read failed: {exc!r}"
        return self._drop_reason or "closed by the venue"

    def _on_message(self, message: str | bytes) -> None:
        now = time.monotonic()
        self._last_rx = now
        self.frames += 1
        try:
            channel, data = parse.decode_frame(message)
        except (ValueError, TypeError):
            if message != _GREETING:
                log.warning("stream.bad_frame", conn=self.name, frame=str(message)[:200])
            return
        if channel == "pong" or channel == "subscriptionResponse":
            return
        if channel == "error":
            log.warning(
                "stream.venue_error", conn=self.name, error=bytes(data).decode(errors="replace")[:300]
            )
            return
        self._last_data = now
        if self._stale:
            self._stale = False
            log.info("stream.fresh", conn=self.name)
            self._listener.on_fresh(self)
        try:
            self._listener.on_frame(self, channel, data)
        except Exception as exc:  # a frame we cannot read is skipped, never fatal
            log.warning("stream.bad_frame", conn=self.name, channel=channel, error=repr(exc)[:200])

    async def _watch(self) -> None:
        tick = max(0.01, min(1.0, self._stale_after / 5, self._heartbeat / 5))
        while not self._closing:
            await asyncio.sleep(tick)
            self.check(time.monotonic())

    def check(self, now: float) -> None:
        """Staleness and liveness rules (run by the watchdog every tick)."""
        if self.carries_market_data:
            silent = now - self._last_data
            if silent > self._stale_after and not self._stale:
                self._stale = True
                log.warning("stream.stale", conn=self.name, silent_secs=round(silent, 3))
                self._listener.on_stale(self, silent)
            if self._ws is not None and now - max(self._last_data, self._connected_at) > self._stale_after:
                self.drop(f"stale: no market data for {self._stale_after}s")
                return
        if self._ws is not None and now - self._last_rx > self._heartbeat + self._pong_timeout:
            self.drop(f"dead: nothing received for {self._heartbeat + self._pong_timeout}s")
