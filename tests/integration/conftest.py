"""Integration fixtures: the embedded exchange served over HTTP/WS, driven by the official SDK.

* ``venue`` -- one stepped exchange per test module, without simulated traders (nobody else trades,
  and the book only moves when a test says so). Tests sharing it use their own wallets and do not
  move prices or the clock.
* ``make_venue`` / ``fresh_venue`` -- an exchange owned by one test (price shocks, clock moves,
  special limits).
* ``trader`` -- a $10,000 wallet with a deterministic key (named after the test) and an SDK ``Info``
  and ``Exchange`` bound to the module's venue. ``Venue.trader(name)`` makes more;
  ``Venue.ws_info()`` gives an ``Info`` with its WebSocket open, disconnected at teardown.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import hyperliquid.exchange as sdk_exchange
import pytest
from support import NEXT_NONCE, Trader, Venue, serve_venue

from hyperfollow.exchange.server import ServerLimits


@pytest.fixture(scope="session", autouse=True)
def _unique_sdk_nonces() -> Iterator[None]:
    """The SDK signs with nonce = wall-clock ms, so two actions of one signer within a millisecond
    collide (research note, section 8). Give it a strictly increasing ms counter instead -- the
    client practice the venue recommends -- so no test trips over a nonce it did not mean to reuse."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sdk_exchange, "get_timestamp_ms", NEXT_NONCE)
        yield


@pytest.fixture(scope="module")
def venue() -> Iterator[Venue]:
    """One stepped exchange per module."""
    with serve_venue() as v:
        yield v


@pytest.fixture
def make_venue() -> Iterator[Callable[..., Venue]]:
    """Factory for exchanges owned by one test (stopped at teardown)."""
    with contextlib.ExitStack() as stack:

        def make(
            limits: ServerLimits | None = None, perp_dexs: list[str] | None = None, **kwargs: Any
        ) -> Venue:
            return stack.enter_context(serve_venue(limits, perp_dexs, **kwargs))

        yield make


@pytest.fixture
def fresh_venue(make_venue: Callable[..., Venue]) -> Venue:
    """A stepped exchange owned by this test alone."""
    return make_venue()


@pytest.fixture
def trader(venue: Venue, request: pytest.FixtureRequest) -> Trader:
    """A wallet funded with $10,000 on the module's venue, named after the test."""
    return venue.trader(request.node.nodeid)
