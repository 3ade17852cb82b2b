"""Paper accounts: the simulated account's state, and its fills and finished orders.

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# a frozen copy of the table definitions as of this revision (tables.py may move on; this may not)


def upgrade() -> None:
    op.create_table(
        "paper_accounts",
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("address", name="pk_paper_accounts"),
    )
    op.create_table(
        "paper_records",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("ref", sa.BigInteger(), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_paper_records"),
        sa.UniqueConstraint("address", "kind", "ref", name="uq_paper_records_address_kind_ref"),
    )


def downgrade() -> None:
    op.drop_table("paper_records")
    op.drop_table("paper_accounts")
