"""Persistence: SQLAlchemy 2 async tables, repositories and Alembic migrations (SQLite or PostgreSQL)."""
