"""The venue ports in-process over the embedded exchange's core (unit tests, backtests): ``SimVenue``."""

from hyperfollow.adapters.sim.feed import Feed
from hyperfollow.adapters.sim.hub import SimHub
from hyperfollow.adapters.sim.venue import SimVenue

__all__ = ["Feed", "SimHub", "SimVenue"]
