"""Paper trading: the real venue's market data and leader feeds (read-only), and a simulated account
whose fills follow the real books and prints, persisted so that a run stops and resumes: ``PaperVenue``."""

from hyperfollow.adapters.paper.venue import MODELS, PaperVenue, paper_address

__all__ = ["MODELS", "PaperVenue", "paper_address"]
