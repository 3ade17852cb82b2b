"""The vectorised monitor scan: book upkeep (fills, swap-remove, growth) and agreement with the exact
``exits.evaluate`` on random books of thousands of positions: no false negatives, and along a price path
the book's exit states stay identical to a reference that evaluates every position at every step."""

from __future__ import annotations

import random
from decimal import Decimal

import numpy as np
import pytest

from hyperfollow.domain.model import Side
from hyperfollow.risk.exits import ExitPolicy, ExitReason, ExitState, TakeProfitTier, evaluate
from hyperfollow.risk.scan import (
    EXIT,
    LIQ_ALERT,
    MARGIN_ALERT,
    RATCHET,
    TAKE_PROFIT,
    TIME,
    Holding,
    PositionBook,
)

D = Decimal
HOUR = 3_600_000
COINS = ["BTC", "ETH", "SOL", "HYPE", "DOGE"]


def holding(
    account: str = "a",
    coin: str = "BTC",
    size: str = "1",
    entry: str = "100",
    leverage: int = 1,
    policy: ExitPolicy | None = None,
    state: ExitState | None = None,
    liq: str | None = None,
) -> Holding:
    return Holding(
        account,
        coin,
        D(size),
        D(entry),
        D(leverage),
        policy or ExitPolicy(),
        state or ExitState(0),
        None if liq is None else D(liq),
    )


# --------------------------------------------------------------------------- upkeep


def test_swap_remove_keeps_keys_and_mirrors_consistent() -> None:
    book = PositionBook(capacity=2)  # grows twice
    for k in range(5):
        book.upsert(holding(account=f"a{k}", entry=str(100 + k)))
    assert len(book) == 5
    assert book.remove("a1", "BTC")
    assert not book.remove("a1", "BTC")
    assert len(book) == 4
    assert book.slot("a1", "BTC") is None
    assert book.slot("a4", "BTC") == 1  # the last slot moved into the hole
    assert book.holding(1).entry_price == D(104)
    book.set_marks({"BTC": "104"})
    roe = book.roe_pct()
    assert roe[1] == pytest.approx(0.0)  # the float mirrors moved with it
    assert roe[0] == pytest.approx(4.0)
    with pytest.raises(IndexError):
        book.holding(4)


def test_on_fill_open_add_reduce_flip_close() -> None:
    book = PositionBook()
    h = book.on_fill("a", "ETH", side=Side.BUY, size=D(2), price=D(100), time_ms=10, leverage=5)
    assert h is not None
    assert (h.size, h.entry_price, h.state.entry_time_ms) == (D(2), D(100), 10)
    h = book.on_fill("a", "ETH", side=Side.BUY, size=D(2), price=D(110), time_ms=20)
    assert h is not None
    assert (h.size, h.entry_price, h.state.entry_time_ms, h.leverage) == (D(4), D(105), 10, D(5))
    h = book.on_fill("a", "ETH", side=Side.SELL, size=D(1), price=D(120), time_ms=30)
    assert h is not None
    assert (h.size, h.entry_price) == (D(3), D(105))
    h = book.on_fill("a", "ETH", side=Side.SELL, size=D(5), price=D(90), time_ms=40)
    assert h is not None
    assert (h.size, h.entry_price, h.state.entry_time_ms) == (D(-2), D(90), 40)
    assert book.on_fill("a", "ETH", side=Side.BUY, size=D(2), price=D(95), time_ms=50) is None
    assert len(book) == 0
    with pytest.raises(ValueError, match="leverage"):
        book.on_fill("a", "ETH", side=Side.BUY, size=D(1), price=D(1), time_ms=60)


def test_scan_flags_each_rule() -> None:
    book = PositionBook()
    book.upsert(holding("stop", policy=ExitPolicy(stop_loss_roe_pct=None, stop_loss_price_pct=D(5))))
    book.upsert(holding("short-stop", size="-1", policy=ExitPolicy(stop_loss_price_pct=D(5))))
    tiers = (TakeProfitTier(D(4), D("0.5")),)
    book.upsert(holding("tp", policy=ExitPolicy(take_profit_tiers=tiers)))
    book.upsert(holding("time", policy=ExitPolicy(max_holding_ms=72 * HOUR)))
    book.upsert(holding("trail", policy=ExitPolicy(trailing_retrace_pct=D(8), trailing_activation_pct=D(3))))
    book.upsert(holding("quiet"))
    book.upsert(holding("no-mark", coin="ETH", policy=ExitPolicy(stop_loss_price_pct=D(1))))
    book.set_marks({"BTC": "95"})
    assert [book.holding(i).account for i in book.scan(0)] == ["stop"]
    book.set_marks({"BTC": "105"})
    flags = book.flags(73 * HOUR)
    got = {book.holding(i).account: int(flags[i]) for i in range(len(book)) if flags[i]}
    assert got == {"short-stop": EXIT, "tp": TAKE_PROFIT, "time": TIME, "trail": RATCHET}
    assert [book.holding(i).account for i in book.scan(71 * HOUR)] == ["short-stop", "tp", "trail"]


def test_check_reevaluates_exactly_and_moves_the_trailing_stop() -> None:
    book = PositionBook()
    policy = ExitPolicy(stop_loss_roe_pct=None, stop_loss_price_pct=D(5), trailing_retrace_pct=D(8))
    book.upsert(holding(policy=policy))
    book.set_marks({"BTC": "100"})
    assert book.check(0) == []  # activated (a candidate), but the trailing 92 is under the hard 95: no news
    assert book.holding(0).state.watermark == D(100)
    book.set_marks({"BTC": "115"})
    assert [(d.actions, d.native_stop) for d in book.check(0)] == [((), D("105.8"))]
    book.set_marks({"BTC": "112"})
    assert book.check(0) == []  # nothing to do: not a candidate
    book.set_marks({"BTC": "105.8"})
    (decision,) = book.check(0)
    assert [a.reason for a in decision.actions] == [ExitReason.TRAILING_STOP]
    assert decision.flags & EXIT


def test_alerts_liquidation_distance_and_margin_use() -> None:
    book = PositionBook(liq_alert_pct=5.0, margin_use_alert=0.5)
    book.upsert(holding("near-liq", liq="97"))
    book.upsert(holding("far", liq="50"))
    book.upsert(holding("heavy", coin="ETH", size="12", leverage=2))
    book.set_equity("near-liq", D(1000))
    book.set_equity("far", D(1000))
    book.set_equity("heavy", D(1000))
    book.set_marks({"BTC": "100", "ETH": "100"})
    flags = book.flags(0)
    assert [int(x) for x in flags] == [LIQ_ALERT, 0, MARGIN_ALERT]
    assert book.margin_use().tolist() == pytest.approx([0.1, 0.1, 0.6])  # 12 x 100 / 2 / 1000
    decisions = book.check(0)
    assert [(d.account, d.actions, d.flags) for d in decisions] == [
        ("near-liq", (), LIQ_ALERT),
        ("heavy", (), MARGIN_ALERT),
    ]


# --------------------------------------------------------------------------- agreement with evaluate()


def random_policy(rng: random.Random) -> ExitPolicy:
    """Small integer grids, so marks land exactly on thresholds often (the float tolerance is exercised)."""
    n = rng.choice([0, 0, 1, 2, 3])
    triggers = sorted(rng.sample(range(1, 40), n))
    tiers = tuple(TakeProfitTier(D(t), D(rng.choice([25, 50, 100])) / 100) for t in triggers)
    return ExitPolicy(
        stop_loss_roe_pct=rng.choice([None, D(15), D(rng.randint(1, 30))]),
        stop_loss_price_pct=rng.choice([None, None, D(rng.randint(1, 10))]),
        take_profit_tiers=tiers,
        trailing_activation_pct=D(rng.choice([0, 0, 2, 5])),
        trailing_retrace_pct=rng.choice([None, None, D(rng.randint(1, 10))]),
        max_holding_ms=rng.choice([None, None, rng.randint(1, 100) * HOUR]),
        break_even_after_tier=rng.choice([None, rng.randint(1, n)]) if n else None,
        liquidation_buffer_pct=rng.choice([None, None, None, D(rng.randint(1, 10))]),
    )


def random_state(rng: random.Random, policy: ExitPolicy, long: bool) -> ExitState:
    watermark = D(rng.randint(90, 120)) if policy.trailing and rng.random() < 0.5 else None
    stop = D(rng.randint(80, 120)) if rng.random() < 0.4 else None
    if watermark is not None and policy.trailing_retrace_pct is not None:
        # as evaluate() leaves it: the stop is at least the trailing distance from the watermark
        trail = watermark * (
            1 - policy.trailing_retrace_pct / 100 if long else 1 + policy.trailing_retrace_pct / 100
        )
        stop = trail if stop is None else (max(stop, trail) if long else min(stop, trail))
    fired = frozenset(i for i in range(len(policy.take_profit_tiers)) if rng.random() < 0.3)
    reason = rng.choice([ExitReason.TRAILING_STOP, ExitReason.BREAK_EVEN_STOP]) if stop else None
    return ExitState(rng.randint(0, 50) * HOUR, watermark, stop, reason, fired)


def random_book(rng: random.Random, n: int) -> PositionBook:
    book = PositionBook(capacity=64)
    for k in range(n):
        policy = random_policy(rng)
        long = rng.random() < 0.5
        size = D(rng.randint(1, 10_000)) / 100
        liq = D(rng.randint(50, 95) if long else rng.randint(105, 160)) if rng.random() < 0.3 else None
        book.upsert(
            Holding(
                f"acct{k % 97}",
                f"{COINS[k % len(COINS)]}-{k}",  # one coin per position: each gets its own mark below
                size if long else -size,
                D(rng.randint(90, 110)) + D(rng.choice([0, 0, 5])) / 10,
                D(rng.randint(1, 5)),
                policy,
                random_state(rng, policy, long),
                liq,
            )
        )
    book.set_marks({h.coin: D(rng.randint(80, 125)) for h in (book.holding(i) for i in range(n))})
    return book


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scan_has_no_false_negatives_on_random_books(seed: int) -> None:
    rng = random.Random(seed)
    book = random_book(rng, 3_000)
    now = 60 * HOUR
    candidates = set(book.scan(now).tolist())
    acted = 0
    for i in range(len(book)):
        h = book.holding(i)
        mark = book.mark(h.coin)
        assert mark is not None
        _, actions = evaluate(
            h.policy,
            h.state,
            size=h.size,
            entry_price=h.entry_price,
            mark=mark,
            leverage=h.leverage,
            now_ms=now,
            liquidation_price=h.liquidation_price,
        )
        if actions:
            acted += 1
            assert i in candidates, (h, mark)
    assert acted > 300  # the books are rich enough to mean something
    assert len(candidates) < len(book)  # and the scan does filter


def test_book_states_follow_a_full_reference_along_price_paths() -> None:
    """Every step, the reference evaluates all 2,000 positions exactly; the book evaluates only its scan's
    candidates. Actions and resulting exit states must be identical (sizes never change: no fills)."""
    rng = random.Random(7)
    book = random_book(rng, 2_000)
    reference = {(h.account, h.coin): h.state for h in (book.holding(i) for i in range(len(book)))}
    marks = {coin: book.mark(coin) for _, coin in reference}
    for step in range(12):
        now = step * 10 * HOUR
        marks = {coin: max(D(1), m + D(rng.randint(-6, 6))) for coin, m in marks.items() if m is not None}
        book.set_marks(marks)
        expected = {}
        for key, state in reference.items():
            h = book.get(*key)
            assert h is not None
            new, actions = evaluate(
                h.policy,
                state,
                size=h.size,
                entry_price=h.entry_price,
                mark=marks[key[1]],
                leverage=h.leverage,
                now_ms=now,
                liquidation_price=h.liquidation_price,
            )
            reference[key] = new
            if actions:
                expected[key] = tuple(actions)
        got = {(d.account, d.coin): d.actions for d in book.check(now) if d.actions}
        assert got == expected
        for key, state in reference.items():
            h = book.get(*key)
            assert h is not None
            assert h.state == state, key


def test_scan_matches_flags_and_is_an_index_array() -> None:
    book = random_book(random.Random(11), 1_000)
    idx = book.scan(30 * HOUR)
    assert idx.dtype.kind == "i"
    assert np.array_equal(idx, np.flatnonzero(book.flags(30 * HOUR)))
