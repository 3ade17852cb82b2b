"""Copy trading, in-process: a leader fill to our signed order body.

The 2,576 real leader fills of ``../shared/fixtures/real/copytrader_audit_202607`` (five accounts, 34 coins
incl. HIP-3), in time order, each through the whole decision path of one follower: ``decide_mirror``
(equity ratio 0.37 of a $100,000 leader, taker, 0.5 % slippage cap; the follower's position is tracked as if
every intent filled), then for each intent the exact order wire (``gateway.order_wire``: grid rounding,
strings) and the signed ``/exchange`` body (``fanout.order_body``: our EIP-712 signer, the follower's own
nonce). Timed per fill with ``perf_counter_ns`` from the fill object to the last signed body; figures over
the fills that produced at least one order (p50 / p99 / max), and the same for the decision alone. The
instruments' size decimals are inferred from the recorded sizes (the 2026 ``meta`` is not recorded), marks
are the fills' own prices. Nothing is sent: this is what happens before the first byte goes out.
"""

from __future__ import annotations

import gzip
import json
import time
from decimal import Decimal
from pathlib import Path

from eth_utils.crypto import keccak

from bench._stats import median, percentile
from hyperfollow.adapters.hyperliquid import parse
from hyperfollow.adapters.hyperliquid.fanout import FollowerSigner, order_body
from hyperfollow.adapters.hyperliquid.gateway import order_wire
from hyperfollow.adapters.hyperliquid.nonce import NonceSource
from hyperfollow.copy.mirror import decide_mirror
from hyperfollow.copy.model import CopyIntent, FollowSettings
from hyperfollow.domain.model import Fill
from hyperfollow.domain.rules import Instrument

AUDIT = Path(__file__).resolve().parents[2] / "shared/fixtures/real/copytrader_audit_202607"
LEADER_EQUITY = Decimal(100_000)
FOLLOWER_EQUITY = Decimal(37_000)
REPEATS = 5
FOLLOWER = "0x" + "f0" * 20

GOALS = {"leader fill -> signed order body, p99": ("<", 1.0)}


def _fills() -> list[Fill]:
    doc = json.loads(gzip.decompress((AUDIT / "exchange_leader_fills.json.gz").read_bytes()))
    fills = [parse.fill(f"0x{i:040x}", raw) for i, q in enumerate(doc["queries"]) for raw in q["fills"]]
    fills.sort(key=lambda f: (f.time_ms, f.tid or 0))
    return fills


def _instruments(fills: list[Fill]) -> dict[str, Instrument]:
    decimals: dict[str, int] = {}
    for f in fills:
        exp = f.size.normalize().as_tuple().exponent
        assert isinstance(exp, int)
        decimals[f.coin] = max(decimals.get(f.coin, 0), -exp if exp < 0 else 0)
    out = {}
    for i, coin in enumerate(sorted(decimals)):
        hip3 = ":" in coin
        asset = 110_000 + i if hip3 else i
        out[coin] = Instrument(
            coin, asset, min(decimals[coin], 5), 10, only_isolated=hip3, dex="xyz" if hip3 else ""
        )
    return out


def _run(fills: list[Fill], insts: dict[str, Instrument]) -> tuple[list[float], list[float]]:
    settings = FollowSettings(slippage_cap_pct=Decimal("0.5"), drift_guard_pct=Decimal(100))
    signer = FollowerSigner(keccak(text="hyperfollow bench copy follower"), nonces=NonceSource())
    positions: dict[tuple[str, str], Decimal] = {}
    totals: list[float] = []
    decisions: list[float] = []
    for fill in fills:
        key = (fill.address, fill.coin)
        inst = insts[fill.coin]
        t0 = time.perf_counter_ns()
        decision = decide_mirror(
            fill,
            leader_equity=LEADER_EQUITY,
            follower_equity=FOLLOWER_EQUITY,
            follower_position=positions.get(key, Decimal(0)),
            mark=fill.price,
            instrument=inst,
            settings=settings,
            follower=FOLLOWER,
            leader=fill.address,
        )
        t1 = time.perf_counter_ns()
        intents = [d for d in decision if isinstance(d, CopyIntent)]
        for intent in intents:
            wire = order_wire(inst, intent.to_order(), intent.cloid)
            order_body(signer, [wire], is_mainnet=False)
        t2 = time.perf_counter_ns()
        for intent in intents:
            positions[key] = positions.get(key, Decimal(0)) + (
                intent.size if intent.side.is_buy else -intent.size
            )
        if intents:
            totals.append((t2 - t0) / 1e6)
            decisions.append((t1 - t0) / 1e6)
    return totals, decisions


def run() -> list[tuple[str, float, str]]:
    fills = _fills()
    insts = _instruments(fills)
    runs = [_run(fills, insts) for _ in range(REPEATS)]
    n = len(runs[0][0])
    return [
        ("leader fill -> signed order body, p50", median([percentile(t, 50) for t, _ in runs]), "ms"),
        ("leader fill -> signed order body, p99", median([percentile(t, 99) for t, _ in runs]), "ms"),
        ("leader fill -> signed order body, max", median([max(t) for t, _ in runs]), "ms"),
        ("of which the decision (decide_mirror), p50", median([percentile(d, 50) for _, d in runs]), "ms"),
        ("of which the decision (decide_mirror), p99", median([percentile(d, 99) for _, d in runs]), "ms"),
        ("real leader fills copied", float(n), f"of {len(fills)} (others skipped)"),
    ]


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:45s} {value:10.3f} {unit}")
