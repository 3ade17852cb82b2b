"""HTTP + WebSocket server of the embedded exchange: `POST /info`, `POST /exchange`, `GET /ws` on one
port (as the SDK expects), the operator API under `/sim/`, and `GET /health`.

Error bodies follow what the SDK can parse: 4xx with plain text, business errors as HTTP 200 envelopes.
Bodies and WebSocket frames are read strictly (``parse_json``) and error texts that quote the client are
escaped and bounded, so input of any shape gets a 4xx (or an error frame), never a 500 or a dropped
socket. Long operator work (``/sim/advance``, a market catching up a clock jump) runs in slices that
yield to the event loop.
Fault switches (``faults.py``, ``/sim/faults``) break this on purpose: see ``_with_faults``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import math
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from hyperfollow.domain.weights import exchange_weight, info_weight
from hyperfollow.exchange.embedded import AdminError, EmbeddedExchange
from hyperfollow.exchange.faults import Fault, FaultError, FaultPlan
from hyperfollow.exchange.info import BadRequest, error_text
from hyperfollow.exchange.ratelimit import IpWeightLimiter
from hyperfollow.exchange.ws import Connection, WsHub, error_frame, quote

log = structlog.get_logger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")

# The limiter's 429 body, also what an `httpStatus` 429 fault answers unless it brings its own body.
# (The real venue answers its IP limit with a body of `null`, which the SDK turns into the same
# ClientError(429, None, "null", ...) as this text: status and error code are what a client can use.)
RATE_LIMITED = "Too many requests: the IP's weight budget (1200/min) is spent."
# Default bodies of `httpStatus` faults, as an HTTP front (load balancer) would answer.
FAULT_BODIES = {
    429: RATE_LIMITED,
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class ServerLimits:
    """The venue's limits; ``None`` switches one off (load tests)."""

    ip_weight_per_min: int | None = 1200
    ws_max_users_per_ip: int | None = 10


NOT_JSON = "Failed to parse the request body as JSON"
MAX_DEPTH = 32  # nesting levels of a request body; the venue's deepest request has about ten
SLICE_S = 0.02  # a long operator request yields to the event loop at least this often
_SURROGATE = re.compile("[\ud800-\udfff]")


class NotJson(BadRequest):
    """A body that is not JSON the venue could read; ``reason`` says why, when it is not plain
    syntax."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(NOT_JSON if reason is None else f"{NOT_JSON}: {reason}")
        self.reason = reason


def _no_constant(name: str) -> Any:
    raise NotJson(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotJson("number out of range")
    return value


def parse_json(raw: bytes | str) -> Any:
    """A request body (or WebSocket frame) as the venue's strict JSON reader accepts it: UTF-8,
    no NaN/Infinity, finite numbers, no lone surrogates in strings, at most ``MAX_DEPTH`` levels of
    nesting. Raises ``NotJson`` otherwise, so that no later step meets input it cannot encode,
    recurse through or echo."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except NotJson:
        raise
    except RecursionError:
        raise NotJson(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # syntax, invalid UTF-8, integers of more than 4,300 digits
        raise NotJson() from None
    _check_tree(value)
    return value


def _check_tree(value: Any) -> None:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                raise NotJson("lone surrogate in a string")
        elif isinstance(node, dict | list):
            if depth >= MAX_DEPTH:
                raise NotJson(f"nested deeper than {MAX_DEPTH} levels")
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in items:
                if isinstance(key, str) and _SURROGATE.search(key):
                    raise NotJson("lone surrogate in a string")
                stack.append((child, depth + 1))


def _batch_len(body: Any) -> int:
    """Orders or cancels in an /exchange body (its weight), whatever the body's shape."""
    action = body.get("action") if isinstance(body, dict) else None
    if not isinstance(action, dict):
        return 0
    batch = action.get("orders") or action.get("cancels") or []
    return len(batch) if isinstance(batch, list) else 0


def _kind(body: Any) -> str:
    kind = body.get("type") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) else ""


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")


def _error(status: int, text: str) -> web.Response:
    """A plain-text error that may quote the client: escaped and bounded (``error_text``)."""
    return _text(status, error_text(text))


def _json(payload: Any) -> web.Response:
    return web.Response(body=json.dumps(payload, separators=(",", ":")), content_type="application/json")


def _garbled(response: web.StreamResponse | None) -> bytes:
    """A body that is not JSON: the first half of the real answer (a cut-off envelope), or of a
    typical envelope when the request was not processed."""
    real = response.body if isinstance(response, web.Response) else None
    text = real if isinstance(real, bytes) and real else b'{"status":"ok","response":{"type":"default"}}'
    cut = text[: max(1, len(text) // 2)]
    try:  # a short prefix of a bare number can still parse
        json.loads(cut)
    except ValueError:
        return cut
    return b"<html><body>upstream connect error</body></html>"[: max(2, len(cut))]


class _SilenceableConnection(Connection):
    """A WS connection that loses what is pushed while a ``wsSilence`` fault runs.

    Frames are lost, not delayed (as on a dead link): a fill pushed meanwhile never arrives (the
    client must recover it from /info), missed book snapshots are not replayed, and a JSON ping gets
    no pong. Dropped when pushed (so a test knows a frame is gone once the push happened) and checked
    again when sent (nothing queued before the silence leaks out during it).
    """

    def __init__(self, ip: str, send: Callable[[str], Any], faults: FaultPlan) -> None:
        super().__init__(ip, send)
        self.faults = faults

    def push(self, text: str) -> None:
        if not self.faults.ws_silenced():
            super().push(text)


class ExchangeServer:
    """aiohttp application around an ``EmbeddedExchange``."""

    def __init__(
        self, exchange: EmbeddedExchange, limits: ServerLimits | None = None, tick_ms: int = 100
    ) -> None:
        self.exchange = exchange
        self.limits = limits or ServerLimits()
        self.tick_ms = tick_ms
        exchange.engine.outbox = []
        self.hub = WsHub(exchange.engine, exchange.info_api, self.limits.ws_max_users_per_ip)
        self.limiter = IpWeightLimiter(self.limits.ip_weight_per_min or 0)
        self.app = web.Application(middlewares=[self._normalize_path])
        self.faults = FaultPlan(drop_ws=self.drop_websockets, jump_clock=self._jump_clock)
        self.app.add_routes(
            [
                web.post("/info", self.handle_info),
                web.post("/exchange", self.handle_exchange),
                web.get("/ws", self.handle_ws),
                web.get("/health", self.handle_health),
                web.post("/sim/fund", self.handle_fund),
                web.post("/sim/price", self.handle_price),
                web.post("/sim/advance", self.handle_advance),
                web.post("/sim/vault", self.handle_vault),
                web.get("/sim/traders", self.handle_traders),
                web.post("/sim/faults", self.handle_add_faults),
                web.get("/sim/faults", self.handle_list_faults),
                web.delete("/sim/faults", self.handle_clear_faults),
            ]
        )
        self.app.on_startup.append(self._start_ticker)
        self.app.on_shutdown.append(self._release_hangs)
        self.app.on_shutdown.append(self._close_websockets)
        self.app.on_cleanup.append(self._stop_ticker)
        self._ticker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: dict[web.WebSocketResponse, web.Request] = {}
        self._closing: set[asyncio.Task[Any]] = set()
        self._release: asyncio.Event | None = None
        self._advancing = asyncio.Lock()
        self.hanging = 0  # requests held by a `hang` fault right now

    @web.middleware
    async def _normalize_path(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A base URL with a trailing slash makes the SDK post to `//info`: serve it anyway."""
        if request.path.startswith("//"):
            request = request.clone(rel_url=request.rel_url.with_path("/" + request.path.lstrip("/")))
            match = await self.app.router.resolve(request)
            handler = match.handler
        return await self._with_faults(request, handler)

    # ------------------------------------------------------------------ faults

    async def _with_faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Let an active fault take a venue request (`POST /info`, `POST /exchange`).

        Faults come after path normalisation and before everything else, the IP rate limiter
        included: a fault that refuses a request refuses it unseen, so it spends no weight; one that
        ``apply``-s runs the ordinary handler, limiter and all.
        """
        if request.method != "POST" or request.path not in ("/info", "/exchange"):
            return await handler(request)
        fault = self.faults.take(request.path)
        if fault is None:
            return await handler(request)
        if fault.apply:
            response = await handler(request)
        else:
            await request.read()  # consume the body, as a server that looked at it would
            response = None
        if fault.type == "httpStatus":
            return _text(fault.status, fault.body if fault.body is not None else FAULT_BODIES[fault.status])
        if fault.type == "malformed":
            return web.Response(status=200, body=_garbled(response), content_type="application/json")
        return await self._hang(request, fault)

    async def _hang(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        """Hold the request ``fault.seconds`` (without blocking the loop), then close the connection
        without a response: to the client, a request that never came back."""
        self.hanging += 1
        try:
            if self._release is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._release.wait(), fault.seconds)
        finally:
            self.hanging -= 1
        if request.transport is not None:
            request.transport.close()
        # aiohttp fails to write this on the closed transport and drops it (a ConnectionError it expects)
        return web.Response(status=204)

    async def _release_hangs(self, _app: web.Application) -> None:
        """At shutdown, end the hangs at once (aiohttp would otherwise wait for their handlers)."""
        if self._release is not None:
            self._release.set()

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop (from any thread) and return its result: how a test reads
        the exchange's state between requests without racing the server."""
        return self._on_loop(fn)

    def _on_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop and return its result: directly when called there (or
        before the server started), through ``call_soon_threadsafe`` from any other thread."""
        loop = self._loop
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if loop is None or current is loop or not loop.is_running():
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except Exception as exc:  # handed to the calling thread
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(timeout=10)

    def drop_websockets(self, abrupt: bool = False) -> int:
        """Close every WebSocket now (any thread); returns how many. ``abrupt`` drops the TCP
        connection without a close frame, as a dead network would; otherwise a normal close
        (1001 going away), as a venue restart would."""
        return self._on_loop(lambda: self._drop_all(abrupt))

    def _drop_all(self, abrupt: bool) -> int:
        sockets = list(self._sockets.items())
        for ws, request in sockets:
            if abrupt:
                if request.transport is not None:
                    request.transport.abort()
            else:
                task = asyncio.ensure_future(ws.close(code=WSCloseCode.GOING_AWAY, message=b"Fault: dropWs"))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        return len(sockets)

    def _jump_clock(self, ms: int) -> int:
        return self._on_loop(lambda: self.exchange.clock.jump(ms))

    async def handle_add_faults(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            applied = self.faults.add(body)
        except (BadRequest, FaultError) as exc:
            return _error(400, str(exc))
        return _json({"status": "ok", "applied": applied, "active": self.faults.active()})

    async def handle_list_faults(self, request: web.Request) -> web.Response:
        return _json(self.faults.active())

    async def handle_clear_faults(self, request: web.Request) -> web.Response:
        return _json({"status": "ok", "cleared": self.faults.clear()})

    # ------------------------------------------------------------------ market ticker

    async def _start_ticker(self, _app: web.Application) -> None:
        self._loop = asyncio.get_running_loop()
        self._release = asyncio.Event()
        self._ticker = asyncio.create_task(self._tick_loop())

    async def _stop_ticker(self, _app: web.Application) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker

    async def _close_websockets(self, _app: web.Application) -> None:
        """Say goodbye to WS clients: aiohttp's shutdown otherwise waits for their handlers to end."""
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"Server shutdown")

    async def _tick_loop(self) -> None:
        while True:
            try:
                if not self.exchange.clock.stepped:
                    await self._sliced(self.exchange.step_slices())
                self.hub.flush(market_step=True)
            except Exception:  # the market must keep running; a bug is logged, not fatal
                log.exception("exchange.step_failed")
            await asyncio.sleep(self.tick_ms / 1000)

    # ------------------------------------------------------------------ venue API

    def _ip(self, request: web.Request) -> str:
        return request.remote or "unknown"

    def _allow(self, ip: str, weight: int) -> bool:
        return self.limits.ip_weight_per_min is None or self.limiter.try_spend(ip, weight)

    async def _body(self, request: web.Request) -> Any:
        return parse_json(await request.read())

    async def handle_info(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            if not self._allow(self._ip(request), info_weight(_kind(body))):
                return _text(429, RATE_LIMITED)
            result = self.exchange.info(body)
        except BadRequest as exc:
            return _error(422, str(exc))
        return _json(result)

    async def handle_exchange(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            if not self._allow(self._ip(request), exchange_weight(_batch_len(body))):
                return _text(429, RATE_LIMITED)
            result = self.exchange.exchange(body)
        except BadRequest as exc:
            return _error(422, str(exc))
        finally:
            self.hub.flush()
        return _json(result)

    async def handle_ws(self, request: web.Request) -> web.WebSocketResponse:
        # autoping off: protocol pings are answered below, so that a `wsSilence` can withhold pongs
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=1 << 20, autoping=False)
        await ws.prepare(request)

        async def send(text: str) -> None:
            if not self.faults.ws_silenced():
                await ws.send_str(text)

        conn = _SilenceableConnection(self._ip(request), send, self.faults)
        writer = asyncio.create_task(conn.writer())
        self._sockets[ws] = request
        try:
            async for msg in ws:
                if msg.type == WSMsgType.PING and not self.faults.ws_silenced():
                    await ws.pong(msg.data)
                if msg.type != WSMsgType.TEXT:
                    continue
                self._on_ws_message(conn, msg.data)
        finally:
            self._sockets.pop(ws, None)
            self.hub.drop(conn)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await writer
        return ws

    def _on_ws_message(self, conn: Connection, text: str) -> None:
        """One client frame. Whatever it holds, the answer is a frame and the connection stays open
        (a frame that breaks the handler is logged and answered with an error frame)."""
        try:
            self._ws_dispatch(conn, text)
        except Exception:
            log.exception("ws.message_failed")
            conn.push(error_frame("Internal error while handling the message"))

    def _ws_dispatch(self, conn: Connection, text: str) -> None:
        try:
            msg = parse_json(text)
        except NotJson as exc:
            conn.push(error_frame("Invalid JSON" + (f": {exc.reason}" if exc.reason else "")))
            return
        method = msg.get("method") if isinstance(msg, dict) else None
        if method == "ping":
            conn.push('{"channel":"pong"}')
        elif method == "subscribe":
            self.hub.subscribe(conn, msg.get("subscription"))
        elif method == "unsubscribe":
            self.hub.unsubscribe(conn, msg.get("subscription"))
        elif method == "post":
            conn.push(self._ws_post(conn.ip, msg))
            self.hub.flush()
        else:
            conn.push(error_frame(f"Unknown method: {quote(msg)}"))

    def _ws_post(self, ip: str, msg: dict[str, Any]) -> str:
        """The frame answering a `post`: an info request or a signed action, served as over REST
        and spending the same per-IP weight (the address budget is the action's own)."""
        post_id = msg.get("id")
        if isinstance(post_id, bool) or not isinstance(post_id, int) or not 0 <= post_id < 2**64:
            return error_frame("Invalid post: id must be a non-negative integer")
        request = msg.get("request")
        if not isinstance(request, dict):
            request = {}
        response = self._ws_post_response(ip, request.get("type"), request.get("payload"))
        return json.dumps(
            {"channel": "post", "data": {"id": post_id, "response": response}}, separators=(",", ":")
        )

    def _ws_post_response(self, ip: str, kind: Any, payload: Any) -> dict[str, Any]:
        limited = {"type": "error", "payload": RATE_LIMITED}
        try:
            if kind == "info":
                if not self._allow(ip, info_weight(_kind(payload))):
                    return limited
                data = self.exchange.info(payload)
                return {"type": "info", "payload": {"type": _kind(payload), "data": data}}
            if kind == "action":
                if not self._allow(ip, exchange_weight(_batch_len(payload))):
                    return limited
                return {"type": "action", "payload": self.exchange.exchange(payload)}
        except BadRequest as exc:
            return {"type": "error", "payload": error_text(str(exc))}
        return {"type": "error", "payload": "request type must be info or action"}

    # ------------------------------------------------------------------ operator API

    async def _admin(self, request: web.Request, action: Callable[[dict[str, Any]], Any]) -> web.Response:
        try:
            body = await self._body(request)
            if not isinstance(body, dict):
                raise AdminError("the body must be a JSON object")
            result = action(body)
        except (BadRequest, AdminError) as exc:
            return _error(400, str(exc))
        self.hub.flush(market_step=True)
        return _json(result)

    async def handle_fund(self, request: web.Request) -> web.Response:
        def fund(b: dict[str, Any]) -> Any:
            balance = self.exchange.fund(b.get("user"), b.get("usd"))
            return {"status": "ok", "user": str(b["user"]).lower(), "usdc": f"{balance / 1e6:.6f}"}

        return await self._admin(request, fund)

    async def handle_price(self, request: web.Request) -> web.Response:
        def price(b: dict[str, Any]) -> Any:
            self.exchange.set_price(b.get("coin"), b.get("px"))
            return {
                "status": "ok",
                "coin": b["coin"],
                "mid": self.exchange.info(
                    {"type": "allMids", "dex": b["coin"].split(":")[0] if ":" in b["coin"] else ""}
                ).get(b["coin"]),
            }

        return await self._admin(request, price)

    async def handle_advance(self, request: web.Request) -> web.Response:
        """Advance the stepped clock, a market step per second, yielding to the event loop every
        ``SLICE_S`` (other requests are served meanwhile); advances run one after another."""
        try:
            body = await self._body(request)
            if not isinstance(body, dict):
                raise AdminError("the body must be a JSON object")
            ms = self.exchange.check_advance(body.get("ms"))
        except (BadRequest, AdminError) as exc:
            return _error(400, str(exc))
        async with self._advancing:
            await self._sliced(self.exchange.advance_steps(ms))
        self.hub.flush(market_step=True)
        return _json({"status": "ok", "time": self.exchange.clock.now_ms()})

    async def _sliced(self, work: Iterator[None]) -> None:
        """Run ``work`` to the end, yielding to the event loop whenever a slice took ``SLICE_S``. What the
        engine emitted is routed at every yield, so a long advance never piles up its events (a simulated
        day of the market's quotes and prints would be gigabytes held until the end)."""
        started = time.monotonic()
        for _ in work:
            if time.monotonic() - started >= SLICE_S:
                self.hub.flush()
                await asyncio.sleep(0)
                started = time.monotonic()

    async def handle_vault(self, request: web.Request) -> web.Response:
        return await self._admin(
            request,
            lambda b: {"status": "ok", "vault": self.exchange.create_vault(b.get("leader"), b.get("usd"))},
        )

    async def handle_traders(self, request: web.Request) -> web.Response:
        return _json(self.exchange.traders())

    async def handle_health(self, request: web.Request) -> web.Response:
        return _json(
            {"status": "ok", "time": self.exchange.clock.now_ms(), "stepped": self.exchange.clock.stepped}
        )


# ---------------------------------------------------------------------- running it


async def serve(server: ExchangeServer, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Start listening; returns the runner and the base URL (port 0 picks a free port)."""
    runner = web.AppRunner(server.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1] if runner.addresses else port
    return runner, f"http://{host}:{bound_port}"


@contextlib.contextmanager
def running_in_thread(
    exchange: EmbeddedExchange,
    limits: ServerLimits | None = None,
    host: str = "127.0.0.1",
    tick_ms: int = 100,
) -> Iterator[tuple[str, ExchangeServer]]:
    """Serve on a free port from a background thread (for blocking clients such as the SDK).

    Yields (base_url, server); the server stops when the block exits.
    """
    loop = asyncio.new_event_loop()
    server = ExchangeServer(exchange, limits, tick_ms)
    started: dict[str, Any] = {}
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        started["runner"], started["url"] = loop.run_until_complete(serve(server, host, 0))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="embedded-exchange", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the embedded exchange did not start")
    try:
        yield started["url"], server
    finally:
        asyncio.run_coroutine_threadsafe(started["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
