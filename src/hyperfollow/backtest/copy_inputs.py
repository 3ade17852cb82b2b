"""What a copy backtest derives from a leader's fill history before anything trades: the coins' rules (and
the embedded exchange's listing of them), the leader's orders, and the leader's own result.

**Rules.** A coin the embedded exchange lists keeps its listing. Any other recorded coin is listed with its
venue rules from a recorded ``meta`` (``hyperfollow download fills`` saves ``<out>.meta.json``: ``{"perpDexs":
[...], "meta": {dex: meta}}``; a bare ``meta`` answer or a list of them works too), else inferred from the
fills: ``szDecimals`` = the most decimals any recorded size has (so every recorded size is a whole number of
lots), lowered if the recorded grid prices (5 significant figures; the UI export's "Price Improved" rows
carry averages off the grid) have more than ``6 - szDecimals`` decimals; max leverage
``INFERRED_MAX_LEVERAGE``; a ``dex:NAME`` coin is a HIP-3 coin (isolated margin only, as the venue's builder
dexes are). ``CoinRules.source`` says which: ``listed``, ``meta`` or ``inferred``.

**Orders.** The recorded fills in position order, grouped per order: consecutive fills of one coin with the
same order id and side (a sweep of several levels is one order). Each ``LeaderOrder`` carries the
position the recording says it started from and ended at, its size-weighted price and its last price.

**The leader's result** (``leader_result``): ``leader_return_pct`` = (sum of the recorded ``closedPnl`` -
sum of the recorded fees) / ``base_usd`` x 100: realised PnL net of fees over the recording, on a stated
notional base. The default base is the leader's peak gross notional over the recording (the sum over coins
of |position| x its last recorded price, the position held before the first fill included): the equity of
a leader trading at 1x at its busiest. The same base funds the leader's account in the run, so our equity
ratio to it is the one stated.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from hyperfollow.domain.model import Fill, Side
from hyperfollow.domain.rules import MAX_SIG_FIGS, PERP_MAX_DECIMALS
from hyperfollow.exchange.universe import Universe
from hyperfollow.recordings.source import RecordingError, load_json

INFERRED_MAX_LEVERAGE = 10  # a coin whose rules are inferred: a common alt listing (mainnet: 3 to 50)
MIN_LEADER_BASE_USD = Decimal(1000)

RulesSource = Literal["listed", "meta", "inferred"]


@dataclass(frozen=True, slots=True)
class CoinRules:
    """One recorded coin's venue rules and where they came from."""

    coin: str
    sz_decimals: int
    max_leverage: int
    hip3: bool
    source: RulesSource

    def describe(self) -> str:
        kind = "HIP-3 (isolated only)" if self.hip3 else "main dex"
        return f"{self.source}: szDecimals {self.sz_decimals}, max leverage {self.max_leverage}x, {kind}"


# --------------------------------------------------------------------------- rules and the listing


def _decimals(x: Decimal) -> int:
    exponent = x.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def infer_rules(coin: str, fills: Iterable[Fill]) -> CoinRules:
    """Rules from the fills' decimals (see the module docstring)."""
    sz_dec = px_dec = 0
    for f in fills:
        sz_dec = max(sz_dec, _decimals(f.size), _decimals(f.start_position))
        if len(f.price.normalize().as_tuple().digits) <= MAX_SIG_FIGS:  # a price on the venue's grid
            px_dec = max(px_dec, _decimals(f.price))
    sz_dec = max(0, min(sz_dec, PERP_MAX_DECIMALS - px_dec))
    return CoinRules(coin, sz_dec, INFERRED_MAX_LEVERAGE, ":" in coin, "inferred")


def read_meta(path: str | Path) -> dict[str, Mapping[str, Any]]:
    """Each perp's ``universe`` entry from a recorded meta file, by coin name."""
    path = Path(path)
    doc = load_json(path)
    metas: list[Any]
    if isinstance(doc, Mapping) and isinstance(doc.get("meta"), Mapping):
        metas = list(doc["meta"].values())
    elif isinstance(doc, Mapping) and "universe" in doc:
        metas = [doc]
    elif isinstance(doc, list):
        metas = doc
    else:
        raise RecordingError(path, None, "not a meta file: expected {perpDexs, meta} or a meta answer")
    out: dict[str, Mapping[str, Any]] = {}
    for meta in metas:
        if not isinstance(meta, Mapping) or not isinstance(meta.get("universe"), list):
            raise RecordingError(path, None, "a meta without a 'universe' list")
        for entry in meta["universe"]:
            if isinstance(entry, Mapping) and "name" in entry and "szDecimals" in entry:
                out[str(entry["name"])] = entry
    return out


def _from_meta(coin: str, entry: Mapping[str, Any]) -> CoinRules:
    isolated = bool(entry.get("onlyIsolated")) or entry.get("marginMode") in ("strictIsolated", "noCross")
    return CoinRules(
        coin, int(entry["szDecimals"]), int(entry.get("maxLeverage", 1)), ":" in coin or isolated, "meta"
    )


def coin_rules(
    fills: Sequence[Fill], meta: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, CoinRules]:
    """Every recorded coin's rules: listed, from ``meta``, else inferred (sorted by coin)."""
    listed = Universe().by_coin
    by_coin: dict[str, list[Fill]] = {}
    for f in fills:
        by_coin.setdefault(f.coin, []).append(f)
    out: dict[str, CoinRules] = {}
    for coin in sorted(by_coin):
        inst = listed.get(coin)
        if inst is not None and not inst.is_spot and not inst.is_delisted:
            out[coin] = CoinRules(coin, inst.sz_decimals, inst.max_leverage, bool(inst.dex), "listed")
        elif meta is not None and coin in meta:
            out[coin] = _from_meta(coin, meta[coin])
        else:
            out[coin] = infer_rules(coin, by_coin[coin])
    return out


def _entry(rules: CoinRules) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "szDecimals": rules.sz_decimals,
        "name": rules.coin,
        "maxLeverage": rules.max_leverage,
        "marginTableId": rules.max_leverage,
    }
    if rules.hip3:
        entry["onlyIsolated"] = True
        entry["marginMode"] = "strictIsolated"
    return entry


def _add_table(meta: dict[str, Any], lev: int) -> None:
    tables = meta.setdefault("marginTables", [])
    if all(t[0] != lev for t in tables):
        tables.append([lev, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": lev}]}])
        tables.sort(key=lambda t: t[0])


def universe_for(rules: Mapping[str, CoinRules]) -> Universe:
    """The embedded exchange's default listing plus every recorded coin it does not list (main-dex coins
    after its last entry, HIP-3 coins on their dex, a dex it does not know added after its own)."""
    base = Universe()
    metas = copy.deepcopy(base.metas)
    dexs = copy.deepcopy(base.dexs)
    known = {d["name"] for d in dexs[1:]}
    for r in rules.values():
        if r.source == "listed":
            continue
        dex = r.coin.split(":", 1)[0] if ":" in r.coin else ""
        if dex and dex not in known:
            template = dict(dexs[1])
            template.update(name=dex, fullName=f"{dex} (listed for a backtest)")
            dexs.append(template)
            metas[dex] = {"universe": [], "marginTables": [], "collateralToken": 0}
            known.add(dex)
        metas[dex]["universe"].append(_entry(r))
        _add_table(metas[dex], r.max_leverage)
    return Universe(metas=metas, spot=copy.deepcopy(base.spot), dexs=dexs)


# --------------------------------------------------------------------------- the leader's orders


@dataclass(frozen=True, slots=True)
class LeaderOrder:
    """One recorded order of the leader: its fills (position order), the position before and after."""

    index: int
    coin: str
    side: Side
    fills: tuple[Fill, ...]

    @property
    def time_ms(self) -> int:
        return self.fills[0].time_ms

    @property
    def start(self) -> Decimal:
        return self.fills[0].start_position

    @property
    def end(self) -> Decimal:
        last = self.fills[-1]
        return last.start_position + last.signed_size

    @property
    def size(self) -> Decimal:
        return sum((f.size for f in self.fills), Decimal(0))

    @property
    def avg_price(self) -> Decimal:
        return sum((f.price * f.size for f in self.fills), Decimal(0)) / self.size

    @property
    def last_price(self) -> Decimal:
        return self.fills[-1].price


def leader_orders(fills: Sequence[Fill]) -> list[LeaderOrder]:
    """The fills grouped per order (see the module docstring), ordered by their first fill."""
    groups: list[list[Fill]] = []
    open_group: dict[str, int] = {}  # coin -> index of its latest group
    for f in fills:
        i = open_group.get(f.coin)
        head = groups[i][0] if i is not None else None
        if i is not None and head is not None and (head.oid, head.side) == (f.oid, f.side):
            groups[i].append(f)
        else:
            open_group[f.coin] = len(groups)
            groups.append([f])
    return [LeaderOrder(n, g[0].coin, g[0].side, tuple(g)) for n, g in enumerate(groups)]


# --------------------------------------------------------------------------- the leader's result


@dataclass(frozen=True, slots=True)
class LeaderResult:
    """The leader's own figures over the recording (see the module docstring)."""

    base_usd: Decimal
    closed_pnl_usd: Decimal
    fees_usd: Decimal
    equity: tuple[tuple[int, Decimal], ...]  # base + realised PnL net of fees, after each order

    @property
    def net_usd(self) -> Decimal:
        return self.closed_pnl_usd - self.fees_usd

    @property
    def return_pct(self) -> Decimal:
        return self.net_usd / self.base_usd * 100


def peak_gross_notional(orders: Sequence[LeaderOrder]) -> Decimal:
    """The largest sum over coins of |position| x last recorded price, the starting positions included."""
    position: dict[str, Decimal] = {}
    price: dict[str, Decimal] = {}
    for o in orders:
        if o.coin not in position:
            position[o.coin] = o.start
            price[o.coin] = o.fills[0].price
    peak = sum((abs(position[c]) * price[c] for c in position), Decimal(0))
    for o in orders:
        position[o.coin], price[o.coin] = o.end, o.last_price
        peak = max(peak, sum((abs(position[c]) * price[c] for c in position), Decimal(0)))
    return peak


def leader_result(orders: Sequence[LeaderOrder], base_usd: Decimal | None = None) -> LeaderResult:
    """The leader's realised PnL net of fees on ``base_usd`` (default: the peak gross notional, at least
    ``MIN_LEADER_BASE_USD``)."""
    if base_usd is None:
        base_usd = max(MIN_LEADER_BASE_USD, peak_gross_notional(orders).quantize(Decimal(1)))
    if base_usd <= 0:
        raise ValueError(f"the leader's base must be positive, got {base_usd}")
    pnl = fees = Decimal(0)
    equity: list[tuple[int, Decimal]] = [(orders[0].time_ms, base_usd)] if orders else []
    for o in orders:
        pnl += sum((f.closed_pnl for f in o.fills), Decimal(0))
        fees += sum((f.fee for f in o.fills), Decimal(0))
        equity.append((o.time_ms, base_usd + pnl - fees))
    return LeaderResult(base_usd, pnl, fees, tuple(equity))


def meta_path_for(fills_path: str | Path) -> Path | None:
    """``<fills>.meta.json`` beside a fill file, when it exists (what the download command writes)."""
    path = Path(fills_path)
    candidate = path.with_name(path.name + ".meta.json")
    return candidate if candidate.is_file() else None


def dump_rules(rules: Mapping[str, CoinRules]) -> str:
    """The rules as one line of JSON per coin source (for the report's meta)."""
    return json.dumps({c: r.describe() for c, r in sorted(rules.items())}, sort_keys=True)


def price_points(paths: Iterable[str | Path]) -> dict[str, list[tuple[int, Decimal]]]:
    """``(ms, price)`` per coin from market files (``data.market.market_events``: candles, trades, books,
    BBO), each at the time it became known: a print's and a book's time, a candle's close (its close)."""
    from hyperfollow.backtest.data.market import market_events
    from hyperfollow.domain.model import Candle, L2Book, Trade

    out: dict[str, list[tuple[int, Decimal]]] = {}
    for path in paths:
        for event in market_events(path):
            item = event.item
            price: Decimal | None
            if isinstance(item, Candle):
                price = item.close
            elif isinstance(item, Trade):
                price = item.price
            elif isinstance(item, L2Book):
                price = item.mid
            else:
                price = (item.bid.price + item.ask.price) / 2 if item.bid and item.ask else None
            if price is not None and price > 0:
                out.setdefault(item.coin, []).append((event.venue_ms, price))
    return {coin: sorted(points, key=lambda p: p[0]) for coin, points in sorted(out.items())}


def price_files(path: str | Path) -> list[Path]:
    """``path`` itself, or the files of a folder (sorted; hidden files left out)."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    return [path]
