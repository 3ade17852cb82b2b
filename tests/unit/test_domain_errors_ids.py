"""The venue-error table and deterministic cloids."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyperfollow.domain import errors
from hyperfollow.domain.ids import cloid_for, is_cloid


@pytest.mark.parametrize(
    ("text", "cls"),
    [
        (
            "Post only order would have immediately matched, bbo was 1891.3@1891.4. asset=1",
            errors.PostOnlyWouldCross,
        ),
        ("Insufficient margin to place order. asset=15", errors.InsufficientMargin),
        ("Order must have minimum value of $10. asset=0", errors.MinNotional),
        ("Order must have minimum value of 10 USDC.", errors.MinNotional),
        ("Reduce only order would increase position. asset=3", errors.ReduceOnlyWouldIncrease),
        ("Price must be divisible by tick size. asset=1", errors.InvalidPrice),
        ("Order has invalid size.", errors.InvalidSize),
        ("Order was never placed, already canceled, or filled. asset=1", errors.OrderNotFound),
        ("Order could not immediately match against any resting orders. asset=0", errors.IocNotFilled),
        ("Invalid leverage value. Max leverage is 50.", errors.LeverageRejected),
        ("User or API Wallet 0xabc does not exist.", errors.AuthRejected),
        ("Invalid nonce: duplicate nonce 1700000000000", errors.NonceRejected),
        (
            "Too many cumulative requests sent (10001 > 10000) for cumulative volume traded",
            errors.RateLimited,
        ),
    ],
)
def test_venue_texts_map_to_their_class(text: str, cls: type[errors.VenueRejected]) -> None:
    err = errors.rejection_for(text, cloid="0x" + "0" * 32)
    assert type(err) is cls
    assert err.text == text
    assert err.cloid == "0x" + "0" * 32


def test_unknown_text_is_a_plain_rejection_never_transient() -> None:
    err = errors.rejection_for("Something new the venue says")
    assert type(err) is errors.VenueRejected
    assert not isinstance(err, errors.TransientError)
    assert errors.strip_asset_suffix("Insufficient margin to place order. asset=15") == (
        "Insufficient margin to place order."
    )


@given(st.lists(st.one_of(st.text(max_size=20), st.integers()), min_size=1, max_size=5))
def test_cloid_is_deterministic_and_well_formed(parts: list[str | int]) -> None:
    cloid = cloid_for(*parts)
    assert cloid == cloid_for(*parts)
    assert is_cloid(cloid)


def test_cloid_parts_do_not_run_together() -> None:
    assert cloid_for("ab", "c") != cloid_for("a", "bc")
    assert cloid_for(1, 23) != cloid_for(12, 3)
    with pytest.raises(ValueError, match="at least one"):
        cloid_for()
