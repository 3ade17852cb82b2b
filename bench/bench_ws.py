"""WebSocket fan-out: ``trades`` messages delivered to 100 subscribers of one coin.

The exchange runs in a second process (``python -m bench.bench_ws --serve``: an ``ExchangeServer`` on a
free 127.0.0.1 port, stepped clock, no simulated traders, the market maker's quotes cancelled so the
BTC book is empty). This process opens ``SUBSCRIBERS`` connections with the ``websockets`` client
(no permessage-deflate, as the Hyperliquid SDK's ``websocket-client``), subscribes each to
``{"type": "trades", "coin": "BTC"}`` and counts the ``trades`` messages each one actually receives.

Trades are made on the server by a bench-only route ``POST /bench/trades`` added to the app before it
starts: for each of ``n`` rounds a maker rests a 0.001 BTC order and a taker crosses it with an IOC in
the engine (one trade), then ``hub.flush()`` routes the events exactly as after an ``/exchange``
request, and the generator yields to the event loop. The route answers with each trade's ``tid`` and
the wall time (ns) of its flush.

Figures (median over ``REPEATS``):

* burst: ``BURST`` rounds as fast as the server goes; messages/s = messages received by all clients /
  (last receipt - request sent), and the server's own production rate (rounds/s while generating);
* paced: ``PACED_RATE`` rounds/s for one second; latency = receipt time - flush time per
  (subscriber, trade), p50 and p99 (both processes read the same ``time.time_ns`` clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection, connect

from bench._stats import median, percentile

SUBSCRIBERS = 100
BURST = 1000
PACED_RATE = 200.0
PACED_SECONDS = 1.0
REPEATS = 3
ASSET, COIN = 0, "BTC"
SZ_LOTS = 100  # 0.001 BTC
MAKER = "0x" + "c" * 40
TAKER = "0x" + "d" * 40
ROOT = Path(__file__).resolve().parent.parent
DRAIN_TIMEOUT_S = 30.0


# ------------------------------------------------------------------------------------------ server side


def _serve() -> None:
    """Entry point of the server process: print the base URL, serve until stdin closes."""
    asyncio.run(_serve_async())


async def _serve_async() -> None:
    import structlog
    from aiohttp import web

    from hyperfollow.exchange.embedded import EmbeddedExchange
    from hyperfollow.exchange.engine import OrderSpec
    from hyperfollow.exchange.server import ExchangeServer, ServerLimits, serve

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    exchange = EmbeddedExchange(stepped=True, simulated_traders=False, address_budget=None)
    engine = exchange.engine
    engine.cancel_all(exchange.driver.mm.address)  # an empty book: the bench's trades are the only ones
    for user in (MAKER, TAKER):
        engine.deposit(user, 10_000_000 * 1_000_000)
    mark = engine.marks[ASSET]
    px = mark - mark % 10  # whole dollars: a valid BTC price
    server = ExchangeServer(exchange, ServerLimits(ip_weight_per_min=None, ws_max_users_per_ip=None))

    async def make_trades(request: web.Request) -> web.Response:
        body = await request.json()
        n, rate = int(body["n"]), float(body.get("rate", 0.0))
        tids: list[int] = []
        stamps: list[int] = []
        start = time.perf_counter()
        for i in range(n):
            is_buy = i % 2 == 0
            engine.place(MAKER, OrderSpec(ASSET, is_buy, px, SZ_LOTS, tif="Gtc"))
            status = engine.place(TAKER, OrderSpec(ASSET, not is_buy, px, SZ_LOTS, tif="Ioc"))
            if not (isinstance(status, dict) and "filled" in status):
                return web.json_response({"error": f"round {i} did not trade: {status}"}, status=500)
            tids.append(engine.next_tid)
            stamps.append(time.time_ns())
            server.hub.flush()
            if rate:
                await asyncio.sleep(max(0.0, start + (i + 1) / rate - time.perf_counter()))
            else:
                await asyncio.sleep(0)
        seconds = time.perf_counter() - start
        return web.json_response({"tids": tids, "t_ns": stamps, "seconds": seconds})

    server.app.router.add_post("/bench/trades", make_trades)
    runner, url = await serve(server, "127.0.0.1", 0)
    print(url, flush=True)
    try:
        await asyncio.to_thread(sys.stdin.read)  # the bench closes our stdin (or exits) to stop us
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def server_process() -> Any:
    """Start the server process; yields (base URL, pid); stops it on exit."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_ws", "--serve"],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = ""
        for _ in range(100):  # skip anything else the server may print before its URL
            line = proc.stdout.readline()
            if not line or line.startswith("http://127.0.0.1:"):
                url = line.strip()
                break
        if not url:
            raise RuntimeError("the bench server did not start")
        yield url, proc.pid
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------ client side


@dataclass
class Subscriber:
    ws: ClientConnection
    received: dict[int, int] = field(default_factory=dict)  # tid -> receipt time, ns
    messages: int = 0
    expected: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if msg.get("channel") != "trades":
                continue
            now = time.time_ns()
            self.messages += 1
            for trade in msg["data"]:
                self.received[trade["tid"]] = now
            if self.messages >= self.expected:
                self.done.set()

    def expect(self, n: int) -> None:
        self.received.clear()
        self.messages, self.expected = 0, n
        self.done.clear()


async def _subscribe(url: str) -> Subscriber:
    ws = await connect(url, compression=None, proxy=None, max_queue=None, ping_interval=None)
    await ws.send(json.dumps({"method": "subscribe", "subscription": {"type": "trades", "coin": COIN}}))
    answer = json.loads(await ws.recv())
    if answer.get("channel") != "subscriptionResponse":
        raise RuntimeError(f"subscription refused: {answer}")
    return Subscriber(ws)


@dataclass
class Round:
    seconds: float  # request sent -> last message received by the last subscriber
    messages: int  # received by all subscribers together
    server_rounds_per_s: float
    latencies_ms: list[float]
    client_cpu_s: float
    server_cpu_s: float | None


async def _one_round(
    http: aiohttp.ClientSession, base: str, subs: list[Subscriber], n: int, rate: float, pid: int
) -> Round:
    for sub in subs:
        sub.expect(n)
    cpu0, srv0 = time.process_time(), _cpu_seconds(pid)
    t0 = time.perf_counter()
    async with http.post(base + "/bench/trades", json={"n": n, "rate": rate}) as response:
        made = await response.json()
    if "error" in made:
        raise RuntimeError(made["error"])
    with contextlib.suppress(TimeoutError):  # on a timeout, count what did arrive
        await asyncio.wait_for(asyncio.gather(*(s.done.wait() for s in subs)), DRAIN_TIMEOUT_S)
    seconds = time.perf_counter() - t0
    cpu1, srv1 = time.process_time(), _cpu_seconds(pid)
    emitted = dict(zip(made["tids"], made["t_ns"], strict=True))
    latencies = [(t - emitted[tid]) / 1e6 for s in subs for tid, t in s.received.items() if tid in emitted]
    return Round(
        seconds=seconds,
        messages=sum(s.messages for s in subs),
        server_rounds_per_s=n / made["seconds"],
        latencies_ms=latencies,
        client_cpu_s=cpu1 - cpu0,
        server_cpu_s=None if srv0 is None or srv1 is None else srv1 - srv0,
    )


async def _bench(base: str, pid: int) -> list[tuple[str, float, str]]:
    ws_url = base.replace("http://", "ws://") + "/ws"
    subs = list(await asyncio.gather(*(_subscribe(ws_url) for _ in range(SUBSCRIBERS))))
    readers = [asyncio.create_task(s.read()) for s in subs]
    try:
        async with aiohttp.ClientSession() as http:
            await _one_round(http, base, subs, 50, 0.0, pid)  # warm-up
            bursts = [await _one_round(http, base, subs, BURST, 0.0, pid) for _ in range(REPEATS)]
            n_paced = int(PACED_RATE * PACED_SECONDS)
            paced = [await _one_round(http, base, subs, n_paced, PACED_RATE, pid) for _ in range(REPEATS)]
    finally:
        for sub in subs:
            await sub.ws.close()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    expected = SUBSCRIBERS * BURST
    delivered = min(r.messages for r in bursts) / expected
    rate = median([r.messages / r.seconds for r in bursts])
    produced = median([r.server_rounds_per_s for r in bursts])
    client_cpu = median([100 * r.client_cpu_s / r.seconds for r in bursts])
    paced_name = f"ws paced {PACED_RATE:.0f} trades/s"
    rows = [
        (f"ws fan-out to {SUBSCRIBERS} subs (burst)", rate, "msgs/s received"),
        ("ws burst: delivered / expected (worst run)", 100 * delivered, f"% of {expected:,} msgs"),
        ("ws burst: server trade+flush rounds", produced, "msgs/s per sub"),
        ("ws burst: latency p50 (queueing)", median([percentile(r.latencies_ms, 50) for r in bursts]), "ms"),
        ("ws burst: client process CPU", client_cpu, "% of 1 core"),
    ]
    server_cpu = [r.server_cpu_s for r in bursts]
    if all(s is not None for s in server_cpu):
        busy = median([100 * (s or 0.0) / r.seconds for s, r in zip(server_cpu, bursts, strict=True)])
        rows.append(("ws burst: server process CPU", busy, "% of 1 core"))
    rows.append((f"{paced_name}: latency p50", median([percentile(r.latencies_ms, 50) for r in paced]), "ms"))
    rows.append((f"{paced_name}: latency p99", median([percentile(r.latencies_ms, 99) for r in paced]), "ms"))
    return rows


def run() -> list[tuple[str, float, str]]:
    with server_process() as (base, pid):
        return asyncio.run(_bench(base, pid))


if __name__ == "__main__":
    if "--serve" in sys.argv[1:]:
        _serve()
    else:
        for name, value, unit in run():
            print(f"{name:48s} {value:12,.2f} {unit}")
