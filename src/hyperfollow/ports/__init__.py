"""What the rest of hyperfollow asks of a venue: one Protocol per role, domain types in and out."""

from hyperfollow.ports.venue import AccountState, LeaderFeed, MarketData, OrderGateway, Venue

__all__ = ["AccountState", "LeaderFeed", "MarketData", "OrderGateway", "Venue"]
