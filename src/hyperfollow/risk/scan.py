"""The monitor's core: every open position as a NumPy structure of arrays, scanned in one vectorised pass.

Money stays exact. Each position's truth is Decimal (size, entry, leverage, :class:`ExitPolicy`,
:class:`ExitState`) and is kept beside the arrays; the arrays hold float64 *mirrors* of the few thresholds
the scan compares marks against, written whenever the truth changes:

* ``exit_px``: the mark at which a full close fires (the tighter of the hard stop, the ratcheted
  trailing / break-even stop and the liquidation buffer's trigger; ``exits.native_stop_price`` and
  ``exits.liquidation_trigger_price``);
* ``tp_px``: the mark at which the next take-profit tier fires;
* ``ratchet_px``: the mark at which the trailing watermark is worth updating (the activation price, or
  the watermark moved by ``ratchet_step_pct``);
* ``deadline``: entry time + max holding time (int64 ms, exact).

Floats only pre-filter: every threshold is widened by a relative tolerance (1e-9, far above the float
error of a few ulps) so that the scan never misses a position :func:`exits.evaluate` would act on;
each candidate is then re-checked exactly by :func:`exits.evaluate` on the Decimal mid
(:meth:`PositionBook.check`), and only that decides. Positions are kept from our own fills
(:meth:`PositionBook.on_fill`) and the mids stream (:meth:`PositionBook.set_marks`), never polled per
account. Slots are swap-removed, so indices move: keep keys, not indices, across calls that change the book.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from hyperfollow.domain.model import Side
from hyperfollow.risk.exits import (
    ExitAction,
    ExitPolicy,
    ExitState,
    evaluate,
    liquidation_trigger_price,
    native_stop_price,
    take_profit_price,
)

F64 = npt.NDArray[np.float64]
TOLERANCE = 1e-9  # relative widening of every float threshold: no false negatives (see module docstring)
NO_DEADLINE = np.iinfo(np.int64).max

# flags() bits
EXIT = 1  # a full-close threshold (stop, trailing, break-even, liquidation buffer) is reached
TAKE_PROFIT = 2  # the next take-profit tier is reached
RATCHET = 4  # the trailing watermark moved enough to re-evaluate (and maybe move the native stop)
TIME = 8  # the time stop is due
LIQ_ALERT = 16  # within the book's liquidation alert distance (an alert; not an exit rule)
MARGIN_ALERT = 32  # the account's margin use is over the book's alert level

Key = tuple[str, str]  # (account, coin)


@dataclass(slots=True)
class Holding:
    """One position's exact truth (Decimal) and its exit policy and state. Read-only outside the book:
    change a position through :meth:`PositionBook.upsert` / :meth:`PositionBook.on_fill`, which rewrite
    its float mirrors."""

    account: str
    coin: str
    size: Decimal  # signed: > 0 long, < 0 short
    entry_price: Decimal
    leverage: Decimal
    policy: ExitPolicy
    state: ExitState
    liquidation_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ExitDecision:
    """The exact outcome for one scan candidate: closes to make, the native stop's level after the
    evaluation, and the scan's flags (alerts included)."""

    account: str
    coin: str
    actions: tuple[ExitAction, ...]
    native_stop: Decimal | None
    flags: int


class _Arrays:
    """Growable parallel arrays (capacity doubles: O(1) amortised appends)."""

    FLOATS = ("side", "size", "entry", "leverage", "exit_px", "tp_px", "ratchet_px", "liq")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.f = {name: np.full(capacity, np.nan) for name in self.FLOATS}
        self.coin = np.zeros(capacity, dtype=np.int64)
        self.account = np.zeros(capacity, dtype=np.int64)
        self.deadline = np.full(capacity, NO_DEADLINE, dtype=np.int64)

    def grow(self) -> None:
        extra = self.capacity
        for name, arr in self.f.items():
            self.f[name] = np.concatenate([arr, np.full(extra, np.nan)])
        self.coin = np.concatenate([self.coin, np.zeros(extra, dtype=np.int64)])
        self.account = np.concatenate([self.account, np.zeros(extra, dtype=np.int64)])
        self.deadline = np.concatenate([self.deadline, np.full(extra, NO_DEADLINE, dtype=np.int64)])
        self.capacity += extra

    def move(self, src: int, dst: int) -> None:
        for arr in self.f.values():
            arr[dst] = arr[src]
        self.coin[dst] = self.coin[src]
        self.account[dst] = self.account[src]
        self.deadline[dst] = self.deadline[src]


def _widen(level: Decimal | None, *, long: bool, towards_mark_fires: bool) -> float:
    """Float mirror of a Decimal threshold, widened so the float test fires no later than the exact one.

    ``towards_mark_fires``: a long's stop fires at or below the level (widen up), a take-profit at or above
    (widen down); a short mirrors both."""
    if level is None:
        return np.nan
    up = long if towards_mark_fires else not long
    return float(level) * (1.0 + TOLERANCE if up else 1.0 - TOLERANCE)


class PositionBook:
    """All open positions as a structure of arrays, plus the exact :class:`Holding` behind each slot.

    ``ratchet_step_pct``: a trailing watermark is re-evaluated when the mark beats it by this % (0 = every
    new best price; a small step saves Decimal work in trends, at the cost of a watermark up to that step
    behind the best mark). ``liq_alert_pct`` / ``margin_use_alert``: book-wide alerts (flags only).
    """

    def __init__(
        self,
        *,
        capacity: int = 1024,
        ratchet_step_pct: float = 0.0,
        liq_alert_pct: float | None = None,
        margin_use_alert: float | None = None,
    ) -> None:
        self._a = _Arrays(max(capacity, 1))
        self._n = 0
        self._holdings: list[Holding] = []
        self._slot: dict[Key, int] = {}
        self._coins: dict[str, int] = {}
        self._marks = np.full(16, np.nan)
        self._mids: dict[str, Decimal] = {}
        self._accounts: dict[str, int] = {}
        self._equity = np.full(16, np.nan)
        self.ratchet_step = ratchet_step_pct / 100.0
        self.liq_alert = None if liq_alert_pct is None else liq_alert_pct / 100.0
        self.margin_use_alert = margin_use_alert

    # ------------------------------------------------------------------ indices

    def __len__(self) -> int:
        return self._n

    def __contains__(self, key: object) -> bool:
        return key in self._slot

    def slot(self, account: str, coin: str) -> int | None:
        """The current index of (account, coin), or ``None``."""
        return self._slot.get((account, coin))

    def holding(self, index: int) -> Holding:
        """The exact truth at ``index``."""
        if not 0 <= index < self._n:
            raise IndexError(index)
        return self._holdings[index]

    def get(self, account: str, coin: str) -> Holding | None:
        """The holding for (account, coin), or ``None`` when flat."""
        i = self._slot.get((account, coin))
        return None if i is None else self._holdings[i]

    def _coin_index(self, coin: str) -> int:
        i = self._coins.get(coin)
        if i is None:
            i = self._coins[coin] = len(self._coins)
            if i >= len(self._marks):
                self._marks = np.concatenate([self._marks, np.full(len(self._marks), np.nan)])
        return i

    def _account_index(self, account: str) -> int:
        i = self._accounts.get(account)
        if i is None:
            i = self._accounts[account] = len(self._accounts)
            if i >= len(self._equity):
                self._equity = np.concatenate([self._equity, np.full(len(self._equity), np.nan)])
        return i

    # ------------------------------------------------------------------ inputs

    def set_marks(self, mids: Mapping[str, Decimal | str]) -> None:
        """Record mids (the venue's exact strings or Decimals); positions read them by one gather per scan."""
        for coin, mid in mids.items():
            value = mid if isinstance(mid, Decimal) else Decimal(mid)
            self._mids[coin] = value
            i = self._coin_index(coin)  # first: it may grow (replace) the array
            self._marks[i] = float(value)

    def mark(self, coin: str) -> Decimal | None:
        """The last exact mid of ``coin``."""
        return self._mids.get(coin)

    def set_equity(self, account: str, equity: Decimal) -> None:
        """An account's equity, for the margin-use alert."""
        i = self._account_index(account)  # first: it may grow (replace) the array
        self._equity[i] = float(equity)

    def upsert(self, holding: Holding) -> int:
        """Add or replace the position of (holding.account, holding.coin); returns its index. O(1) amortised.
        A zero size removes it (and returns -1)."""
        key = (holding.account, holding.coin)
        if holding.size == 0:
            self.remove(holding.account, holding.coin)
            return -1
        i = self._slot.get(key)
        if i is None:
            if self._n == self._a.capacity:
                self._a.grow()
            i = self._n
            self._n += 1
            self._slot[key] = i
            self._holdings.append(holding)
        else:
            self._holdings[i] = holding
        self._sync(i)
        return i

    def remove(self, account: str, coin: str) -> bool:
        """Drop (account, coin): the last slot moves into its place (swap-remove). False when absent."""
        i = self._slot.pop((account, coin), None)
        if i is None:
            return False
        last = self._n - 1
        moved = self._holdings.pop()
        if i != last:
            self._holdings[i] = moved
            self._slot[(moved.account, moved.coin)] = i
            self._a.move(last, i)
        self._n = last
        return True

    def on_fill(
        self,
        account: str,
        coin: str,
        *,
        side: Side,
        size: Decimal,
        price: Decimal,
        time_ms: int,
        leverage: Decimal | int | None = None,
        policy: ExitPolicy | None = None,
    ) -> Holding | None:
        """Apply one of our fills exactly: open (fresh exit state), add (volume-weighted entry, state kept),
        reduce (entry kept), close (removed) or flip (a fresh position at the fill price). Returns the
        holding after the fill, ``None`` when flat. ``leverage`` is needed to open (else the old one)."""
        old = self.get(account, coin)
        delta = size if side is Side.BUY else -size
        before = old.size if old else Decimal(0)
        after = before + delta
        if after == 0:
            self.remove(account, coin)
            return None
        lev = Decimal(leverage) if leverage is not None else (old.leverage if old else None)
        if lev is None:
            raise ValueError(f"leverage is needed to open {account} {coin}")
        pol = policy or (old.policy if old else ExitPolicy())
        if old is None or before * after < 0:  # open or flip
            holding = Holding(account, coin, after, price, lev, pol, ExitState(entry_time_ms=time_ms))
        elif abs(after) > abs(before):  # add
            entry = (before * old.entry_price + delta * price) / after
            holding = Holding(account, coin, after, entry, lev, pol, old.state, old.liquidation_price)
        else:  # reduce
            holding = Holding(
                account, coin, after, old.entry_price, lev, pol, old.state, old.liquidation_price
            )
        self.upsert(holding)
        return holding

    def set_liquidation_price(self, account: str, coin: str, price: Decimal | None) -> None:
        """The venue's liquidation price for a position (from an account snapshot)."""
        i = self._slot.get((account, coin))
        if i is not None:
            self._holdings[i].liquidation_price = price
            self._sync(i)

    # ------------------------------------------------------------------ mirrors

    def _sync(self, i: int) -> None:
        """Rewrite slot ``i``'s float mirrors from its exact holding."""
        h = self._holdings[i]
        a, f = self._a, self._a.f
        long = h.size > 0
        a.coin[i] = self._coin_index(h.coin)
        a.account[i] = self._account_index(h.account)
        f["side"][i] = 1.0 if long else -1.0
        f["size"][i] = float(abs(h.size))
        f["entry"][i] = float(h.entry_price)
        f["leverage"][i] = float(h.leverage)
        f["liq"][i] = np.nan if h.liquidation_price is None else float(h.liquidation_price)
        pos = {"size": h.size, "entry_price": h.entry_price, "leverage": h.leverage}
        stop = native_stop_price(h.policy, h.state, **pos)
        liq = liquidation_trigger_price(h.policy, size=h.size, liquidation_price=h.liquidation_price)
        levels = [x for x in (stop, liq) if x is not None]
        exit_level = (max(levels) if long else min(levels)) if levels else None
        f["exit_px"][i] = _widen(exit_level, long=long, towards_mark_fires=True)
        tiers = h.policy.take_profit_tiers
        nxt = next((t for k, t in enumerate(tiers) if k not in h.state.tiers_fired), None)
        tp = None if nxt is None else take_profit_price(nxt, **pos)
        f["tp_px"][i] = _widen(tp, long=long, towards_mark_fires=False)
        f["ratchet_px"][i] = self._ratchet_level(h, long)
        hold = h.policy.max_holding_ms
        a.deadline[i] = NO_DEADLINE if hold is None else h.state.entry_time_ms + hold

    def _ratchet_level(self, h: Holding, long: bool) -> float:
        policy, wm = h.policy, h.state.watermark
        if policy.trailing_retrace_pct is None:
            return np.nan
        if wm is None:  # not active yet: the activation price
            move = float(policy.trailing_activation_pct) / 100.0
            level = float(h.entry_price) * (1.0 + move if long else 1.0 - move)
            return level * (1.0 - TOLERANCE if long else 1.0 + TOLERANCE)
        # Narrowed, not widened: a mark equal to the watermark changes nothing, and flagging it would make a
        # position sitting at its best price a candidate on every scan. Missing an improvement under 1e-9 is
        # harmless: a watermark update is never a close by itself (the mark cannot cross the stop it raises).
        step = self.ratchet_step + TOLERANCE
        return float(wm) * (1.0 + step if long else 1.0 - step)

    # ------------------------------------------------------------------ scan

    def _marks_now(self) -> F64:
        marks: F64 = self._marks[self._a.coin[: self._n]]  # the one gather: per-coin mids -> per position
        return marks

    def scan(self, now_ms: int) -> npt.NDArray[np.intp]:
        """Indices of the positions that need attention (any :meth:`flags` bit), ascending. Vectorised;
        positions of coins without a mark are skipped (stale data is the gate's business)."""
        n, f = self._n, self._a.f
        sm = (
            self._marks_now() * f["side"][:n]
        )  # side x mark: a long's "<=" and a short's ">=" become one "<="
        need = sm <= f["side"][:n] * f["exit_px"][:n]
        need |= sm >= f["side"][:n] * f["tp_px"][:n]
        need |= sm >= f["side"][:n] * f["ratchet_px"][:n]
        need |= self._a.deadline[:n] <= now_ms
        alerts = self._alerts()
        if alerts is not None:
            need |= alerts != 0
        return np.flatnonzero(need)

    def flags(self, now_ms: int) -> npt.NDArray[np.uint8]:
        """Per position, the bits (EXIT, TAKE_PROFIT, RATCHET, TIME, LIQ_ALERT, MARGIN_ALERT) that fired."""
        n, f = self._n, self._a.f
        side = f["side"][:n]
        sm = self._marks_now() * side
        out = np.zeros(n, dtype=np.uint8)
        out[sm <= side * f["exit_px"][:n]] |= EXIT
        out[sm >= side * f["tp_px"][:n]] |= TAKE_PROFIT
        out[sm >= side * f["ratchet_px"][:n]] |= RATCHET
        out[self._a.deadline[:n] <= now_ms] |= TIME
        alerts = self._alerts()
        if alerts is not None:
            out |= alerts
        return out

    def _alerts(self) -> npt.NDArray[np.uint8] | None:
        if self.liq_alert is None and self.margin_use_alert is None:
            return None
        n, f = self._n, self._a.f
        marks = self._marks_now()
        out = np.zeros(n, dtype=np.uint8)
        if self.liq_alert is not None:
            out[np.abs(marks - f["liq"][:n]) <= self.liq_alert * marks] |= LIQ_ALERT
        if self.margin_use_alert is not None:
            use = self.margin_use()
            out[use[self._a.account[:n]] > self.margin_use_alert] |= MARGIN_ALERT
        return out

    def roe_pct(self) -> F64:
        """ROE % per position at the current marks (float, for monitoring): move % x leverage x side."""
        n, f = self._n, self._a.f
        roe: F64 = (self._marks_now() / f["entry"][:n] - 1.0) * 100.0 * f["leverage"][:n] * f["side"][:n]
        return roe

    def margin_use(self) -> F64:
        """Per account index: initial margin at the current marks (size x mark / leverage) / equity."""
        n, f = self._n, self._a.f
        margin = f["size"][:n] * self._marks_now() / f["leverage"][:n]
        per_account = np.bincount(self._a.account[:n], weights=margin, minlength=len(self._accounts))
        with np.errstate(divide="ignore", invalid="ignore"):
            use: F64 = per_account / self._equity[: len(per_account)]
        return use

    # ------------------------------------------------------------------ exact re-check

    def check(self, now_ms: int) -> list[ExitDecision]:
        """Scan, then re-check every candidate exactly with :func:`exits.evaluate` on its Decimal mid;
        updates the exit states (watermarks, tiers fired, ratcheted stops) and the float mirrors.

        Returns one decision per candidate with closes, an alert, or a changed native stop. Closing is the
        caller's (exactly-once close); the book changes size only on our fills (:meth:`on_fill`)."""
        every = self.flags(now_ms)
        indices = np.flatnonzero(every)
        bits = every[indices]
        out: list[ExitDecision] = []
        for i, flag in zip(indices.tolist(), bits.tolist(), strict=True):
            h = self._holdings[i]
            mark = self._mids[h.coin]
            pos = {"size": h.size, "entry_price": h.entry_price, "leverage": h.leverage}
            old_stop = native_stop_price(h.policy, h.state, **pos)
            state, actions = evaluate(
                h.policy, h.state, mark=mark, now_ms=now_ms, liquidation_price=h.liquidation_price, **pos
            )
            new_stop = native_stop_price(h.policy, state, **pos)
            if state != h.state:
                h.state = state
                self._sync(i)
            if actions or flag & (LIQ_ALERT | MARGIN_ALERT) or new_stop != old_stop:
                out.append(ExitDecision(h.account, h.coin, tuple(actions), new_stop, int(flag)))
        return out
