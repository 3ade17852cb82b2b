"""The contract suite's ``harness`` fixture: each test runs once per venue implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from harness import HARNESSES, Harness


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async with HARNESSES[request.param]() as h:
        yield h
