"""Leader health that survives a restart: one row per leader (blacklist end, paused, peak equity).

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hyperfollow.store.types import Money

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# a frozen copy of the table definition as of this revision (tables.py may move on; this may not)


def upgrade() -> None:
    op.create_table(
        "leader_status",
        sa.Column("leader", sa.String(42), nullable=False),
        sa.Column("blacklisted_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("peak_equity", Money(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("leader", name="pk_leader_status"),
    )


def downgrade() -> None:
    op.drop_table("leader_status")
