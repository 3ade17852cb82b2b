"""What the rest of hyperfollow asks of a venue and of time: one Protocol per role, domain types."""

from hyperfollow.ports.clock import Clock, Timer
from hyperfollow.ports.venue import AccountState, LeaderFeed, MarketData, OrderGateway, Venue

__all__ = ["AccountState", "Clock", "LeaderFeed", "MarketData", "OrderGateway", "Timer", "Venue"]
