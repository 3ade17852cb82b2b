"""Paper accounts in the store: the state is replaced, fills are appended, finished orders upserted by oid;
integers (micro-USD, ticks, lots, 50-bit trade ids) come back exact."""

from __future__ import annotations

from collections.abc import Callable

from hyperfollow.store.paper import StorePaperLedger
from hyperfollow.store.unit import Store


def _fill(tid: int, fee: int) -> list[object]:
    return [
        "0xabc",
        1,
        True,
        350_020,
        30_000,
        1_700_000_000_000,
        0,
        "Open Long",
        0,
        7,
        True,
        fee,
        tid,
        None,
        None,
    ]


async def test_saves_replace_the_state_and_append_the_history(
    store: Store, new_address: Callable[[], str]
) -> None:
    ledger = StorePaperLedger(store)
    address = new_address()
    assert await ledger.load(address) is None
    big = 2**62 + 1  # beyond a float's exact range: JSON must keep it an integer
    await ledger.save(
        address, {"usdc": big, "n": 1}, [_fill(2**49 + 3, 4725)], [{"oid": 7, "status": "open"}], 1
    )
    await ledger.save(address, {"usdc": 5, "n": 2}, [_fill(11, -150)], [{"oid": 7, "status": "filled"}], 2)
    saved = await ledger.load(address.upper().replace("0X", "0x"))
    assert saved is not None
    assert saved.state == {"usdc": 5, "n": 2}
    assert saved.fills == [_fill(2**49 + 3, 4725), _fill(11, -150)]
    assert saved.orders == [{"oid": 7, "status": "filled"}]
    await ledger.save(address, {"usdc": big}, [], [], 3)
    again = await ledger.load(address)
    assert again is not None
    assert again.state == {"usdc": big}
    assert len(again.fills) == 2
