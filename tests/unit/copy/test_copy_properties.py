"""Hypothesis properties of mirror decisions over random fills, positions and settings: closes never exceed
our position, sizes are lots, opens are never under $10, cloids are stable, reverse of reverse is identity."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from copy_helpers import BTC, ETH, FOLLOWER, HYPE, LEADER, SOL, TSLA, D, fill
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from hyperfollow.copy.fills import Action, parse_direction, reversed_fill
from hyperfollow.copy.mirror import decide_mirror
from hyperfollow.copy.model import Decision, ExecutionStyle, FollowSettings, intents, skips
from hyperfollow.domain.model import Fill, Side
from hyperfollow.domain.rules import Instrument, Rounding, price_is_valid, quantize_price, size_is_valid

# --------------------------------------------------------------------------- properties

COINS = [BTC, ETH, SOL, HYPE, TSLA]
DIRS = ["Open Long", "Open Short", "Close Long", "Close Short", "Long > Short", "Short > Long"]


@st.composite
def fills_and_state(draw: st.DrawFn) -> tuple[Fill, Instrument, Decimal, Decimal, FollowSettings]:
    inst = draw(st.sampled_from(COINS))
    lot = inst.lot
    direction = draw(st.sampled_from(DIRS))
    lots = st.integers(min_value=1, max_value=10**6)
    a, b = draw(lots) * lot, draw(lots) * lot
    d = parse_direction(direction)
    if d.action is Action.OPEN:
        start, size = (draw(st.sampled_from([0, 1])) * a) * d.sign, b
    elif d.action is Action.CLOSE:
        start, size = max(a, b) * d.sign, min(a, b)
    else:
        start, size = a * d.sign, a + b
    price = Decimal(draw(st.integers(min_value=1, max_value=99_999))).scaleb(draw(st.integers(-3, 1)))
    mark = price * (1 + Decimal(draw(st.integers(min_value=-300, max_value=300))) / 10_000)
    mark = quantize_price(inst, mark, Rounding.NEAREST)
    ours = draw(st.integers(min_value=-(10**6), max_value=10**6)) * lot
    settings = FollowSettings(
        reverse=draw(st.booleans()),
        copy_ratio=Decimal(draw(st.integers(1, 400))) / 100,
        max_order_usd=draw(st.none() | st.integers(1, 100_000).map(Decimal)),
        budget_usd=draw(st.none() | st.integers(1, 1_000_000).map(Decimal)),
        follow_adds=draw(st.booleans()),
        opens_only=draw(st.booleans()),
        execution=draw(st.sampled_from(list(ExecutionStyle))),
    )
    f = fill(inst.coin, direction, str(size), str(start), str(price), tid=draw(st.integers(1, 2**60)))
    return f, inst, mark, ours, settings


def run(case: tuple[Fill, Instrument, Decimal, Decimal, FollowSettings], **kw: object) -> Decision:
    f, inst, mark, ours, settings = case
    args: dict[str, object] = {"leader_equity": D(250_000), "follower_equity": D(20_000)}
    args.update(kw)
    return decide_mirror(
        f,
        follower_position=ours,
        mark=mark,
        instrument=inst,
        settings=settings,
        follower=FOLLOWER,
        leader=LEADER,
        **args,  # type: ignore[arg-type]
    )


@hsettings(max_examples=300)
@given(fills_and_state())
def test_properties_of_every_decision(
    case: tuple[Fill, Instrument, Decimal, Decimal, FollowSettings],
) -> None:
    _f, inst, mark, ours, settings = case
    decision = run(case)
    position = ours
    for it in intents(decision):
        assert size_is_valid(inst, it.size)  # always whole lots
        assert price_is_valid(inst, it.limit_price)
        if it.reduce_only:  # a close never exceeds our position, never crosses zero
            assert position != 0
            assert it.size <= abs(position)
            assert it.side is Side.of(position < 0)
        else:  # an open is never below $10 at any price the venue or the book will see
            assert it.size * min(it.mark, it.limit_price) >= 10
            if settings.max_order_usd is not None:
                assert it.size * mark <= settings.max_order_usd
        position += it.size if it.side is Side.BUY else -it.size
    cloids = [it.cloid for it in intents(decision)]
    assert len(set(cloids)) == len(cloids)
    assert run(case) == decision  # same inputs, same decision, same cloids


@given(fills_and_state())
def test_reverse_of_reverse_is_identity(
    case: tuple[Fill, Instrument, Decimal, Decimal, FollowSettings],
) -> None:
    f, inst, mark, ours, settings = case
    assert reversed_fill(reversed_fill(f)) == f
    twice = replace(settings, reverse=not settings.reverse)
    # reverse copying a fill == straight copying the reversed fill: the same intents, cloids included
    straight = run((reversed_fill(f), inst, mark, ours, twice))
    assert intents(run(case)) == intents(straight)
    assert [s.reason for s in skips(run(case))] == [s.reason for s in skips(straight)]
