"""Persistence: SQLAlchemy 2 async tables, repositories and Alembic migrations (SQLite or PostgreSQL).

Entry points: ``Store`` (``unit.py``) for transactions with every repository, ``migrate`` /
``migrate_async`` (``migrate.py``) to bring a database to the latest schema.
"""

from hyperfollow.store.cursors import LeaderCursor
from hyperfollow.store.fills import RecordedFill
from hyperfollow.store.follows import FollowRecord
from hyperfollow.store.journal import JournalEntry, JournalState
from hyperfollow.store.migrate import downgrade_async, migrate, migrate_async
from hyperfollow.store.positions import PositionRecord
from hyperfollow.store.skips import SkipRecord
from hyperfollow.store.unit import Store, UnitOfWork

__all__ = [
    "FollowRecord",
    "JournalEntry",
    "JournalState",
    "LeaderCursor",
    "PositionRecord",
    "RecordedFill",
    "SkipRecord",
    "Store",
    "UnitOfWork",
    "downgrade_async",
    "migrate",
    "migrate_async",
]
