"""Order ownership: the registry of whose each cloid is."""

from __future__ import annotations

import pytest

from hyperfollow.core.orders import OrderOwners, Owner, OwnershipConflict

COPY_A = Owner("copy", "0xleader_a")
COPY_B = Owner("copy", "0xleader_b")
STOP = Owner("risk", "stop")
C1, C2, C3 = "0x" + "a1" * 16, "0x" + "b2" * 16, "0x" + "c3" * 16


def test_a_claimed_cloid_is_owned_until_released() -> None:
    owners = OrderOwners()
    assert not owners.owns(C1)
    assert owners.owner_of(C1) is None
    owners.claim(C1, COPY_A)
    assert owners.owns(C1)
    assert owners.owner_of(C1) == COPY_A
    assert C1 in owners
    assert owners.release(C1) == COPY_A
    assert not owners.owns(C1)
    assert owners.release(C1) is None  # twice: nothing left
    assert len(owners) == 0


def test_cloids_compare_in_lower_case_and_none_is_nobodys() -> None:
    owners = OrderOwners([(C1.upper().replace("0X", "0x"), STOP)])
    assert owners.owner_of(C1) == STOP
    assert owners.owns(C1.upper())
    assert not owners.owns(None)
    assert owners.owner_of(None) is None
    assert owners.cloids() == {C1}


def test_a_cloid_has_one_owner() -> None:
    owners = OrderOwners()
    owners.claim(C1, COPY_A)
    owners.claim(C1, COPY_A)  # again, same owner: a no-op
    with pytest.raises(OwnershipConflict):
        owners.claim(C1, COPY_B)
    with pytest.raises(OwnershipConflict):
        owners.claim(C1, STOP)
    assert owners.owner_of(C1) == COPY_A
    assert owners.release(C1, STOP) is None  # only its owner releases it when one is named
    assert owners.owner_of(C1) == COPY_A
    assert owners.release(C1, COPY_A) == COPY_A


def test_cloids_by_strategy_and_sub_key() -> None:
    owners = OrderOwners()
    owners.claim_all([C1, C2], COPY_A)
    owners.claim(C3, STOP)
    assert owners.cloids("copy") == {C1, C2}
    assert owners.cloids("copy", "0xleader_b") == set()
    assert owners.cloids("risk", "stop") == {C3}
    assert owners.cloids() == {C1, C2, C3}
    assert list(owners.items()) == [(C1, COPY_A), (C2, COPY_A), (C3, STOP)]
    assert (str(COPY_A), str(Owner("manual"))) == ("copy:0xleader_a", "manual")
