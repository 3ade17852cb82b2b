"""The paper fill models on hand-made books and prints (ticks and lots)."""

from __future__ import annotations

from hyperfollow.adapters.paper.models import Level, Resting, consume, maker_fills, walk


def test_a_taker_walks_levels_at_their_sizes_up_to_its_limit() -> None:
    asks = [Level(100, 5), Level(101, 5), Level(103, 50)]
    assert walk(asks, True, 102, 8) == [(100, 5), (101, 3)]
    assert walk(asks, True, 102, 20) == [(100, 5), (101, 5)]  # 103 is beyond the limit
    assert walk(asks, True, 99, 20) == []
    bids = [Level(99, 2), Level(98, 10)]
    assert walk(bids, False, 98, 5) == [(99, 2), (98, 3)]


def test_what_a_taker_took_is_gone_until_the_next_snapshot() -> None:
    asks = [Level(100, 5), Level(101, 5)]
    consume(asks, walk(asks, True, 101, 7))
    assert asks == [Level(101, 3)]
    assert walk(asks, True, 101, 7) == [(101, 3)]


def test_a_maker_waits_for_the_queue_ahead_at_its_price() -> None:
    bid = Resting(oid=1, is_buy=True, px=100, sz=4, ahead=10)
    fills, queues = maker_fills([bid], taker_is_buy=False, print_px=100, print_sz=6)
    assert (fills, queues) == ([], {1: 4})
    fills, queues = maker_fills([Resting(1, True, 100, 4, 4)], False, 100, 6)
    assert (fills, queues) == ([(1, 2)], {1: 0})


def test_prints_on_the_same_side_or_beyond_the_price_do_not_fill() -> None:
    bid = Resting(1, True, 100, 4, 0)
    assert maker_fills([bid], taker_is_buy=True, print_px=100, print_sz=9) == ([], {})  # a buyer lifts asks
    assert maker_fills([bid], taker_is_buy=False, print_px=101, print_sz=9) == ([], {})  # sold above our bid


def test_a_print_through_the_price_fills_without_a_queue_and_is_shared_once() -> None:
    better = Resting(2, True, 101, 3, 50)
    ours = Resting(1, True, 100, 4, 0)
    fills, queues = maker_fills([ours, better], taker_is_buy=False, print_px=99, print_sz=5)
    assert fills == [(2, 3), (1, 2)]  # best price first; 5 lots shared out
    assert queues == {2: 0, 1: 0}
