"""The risk layer: guarded positions (holdings with exit policy and state) and trading state events.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hyperfollow.store.types import Money

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# frozen copies of the table definitions as of this revision (tables.py may move on; this may not)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "risk_holdings",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(42), nullable=False),
        sa.Column("coin", sa.String(32), nullable=False),
        sa.Column("size", Money(), nullable=False),
        sa.Column("entry_price", Money(), nullable=False),
        sa.Column("leverage", Money(), nullable=False),
        sa.Column("liquidation_price", Money(), nullable=True),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_risk_holdings"),
        sa.UniqueConstraint("account", "coin", name="uq_risk_holdings_account_coin"),
    )
    op.create_table(
        "risk_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(42), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=False),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(48), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_risk_events"),
    )
    op.create_index("ix_risk_events_account_time", "risk_events", ["account", "time_ms"])


def downgrade() -> None:
    op.drop_index("ix_risk_events_account_time", table_name="risk_events")
    op.drop_table("risk_events")
    op.drop_table("risk_holdings")
