"""The initial schema: follows, order journal, fills, leader cursors, positions, skip log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hyperfollow.store.types import Money

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# frozen copies of the table definitions as of this revision (tables.py may move on; this may not)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _address(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(42), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "follows",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        _address("follower"),
        _address("leader"),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("stopped_ms", sa.BigInteger(), nullable=True),
        sa.Column("stop_action", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_follows"),
        sa.UniqueConstraint("follower", "leader", name="uq_follows_follower_leader"),
    )
    op.create_table(
        "order_journal",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("cloid", sa.String(34), nullable=False),
        _address("follower"),
        _address("leader", nullable=True),
        sa.Column("coin", sa.String(32), nullable=False),
        sa.Column("side", sa.String(1), nullable=False),
        sa.Column("size", Money(), nullable=False),
        sa.Column("limit_price", Money(), nullable=False),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("tif", sa.String(8), nullable=False),
        sa.Column("leg", sa.String(32), nullable=False),
        sa.Column("source_fill_key", sa.Text(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("oid", sa.BigInteger(), nullable=True),
        sa.Column("filled_size", Money(), nullable=False),
        sa.Column("avg_price", Money(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_order_journal"),
        sa.UniqueConstraint("cloid", name="uq_order_journal_cloid"),
    )
    op.create_index("ix_order_journal_follower_state", "order_journal", ["follower", "state"])
    op.create_index("ix_order_journal_source", "order_journal", ["follower", "leader", "source_fill_key"])
    op.create_table(
        "fills",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        _address("address"),
        sa.Column("fill_key", sa.Text(), nullable=False),
        sa.Column("tid", sa.BigInteger(), nullable=True),
        sa.Column("coin", sa.String(32), nullable=False),
        sa.Column("side", sa.String(1), nullable=False),
        sa.Column("price", Money(), nullable=False),
        sa.Column("size", Money(), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("start_position", Money(), nullable=False),
        sa.Column("dir", sa.String(32), nullable=False),
        sa.Column("closed_pnl", Money(), nullable=False),
        sa.Column("fee", Money(), nullable=False),
        sa.Column("fee_token", sa.String(16), nullable=False),
        sa.Column("builder_fee", Money(), nullable=False),
        sa.Column("oid", sa.BigInteger(), nullable=False),
        sa.Column("cloid", sa.String(34), nullable=True),
        sa.Column("hash", sa.String(66), nullable=False),
        sa.Column("crossed", sa.Boolean(), nullable=False),
        sa.Column("liquidation", sa.Boolean(), nullable=False),
        _address("liquidated_user", nullable=True),
        _address("leader", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_fills"),
        sa.UniqueConstraint("address", "fill_key", name="uq_fills_address_fill_key"),
    )
    op.create_index("ix_fills_address_time", "fills", ["address", "time_ms"])
    op.create_index("ix_fills_cloid", "fills", ["cloid"])
    op.create_table(
        "leader_cursor",
        _address("follower"),
        _address("leader"),
        sa.Column("last_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_fill_key", sa.Text(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("follower", "leader", name="pk_leader_cursor"),
    )
    op.create_table(
        "positions",
        _address("follower"),
        sa.Column("coin", sa.String(32), nullable=False),
        _address("leader"),
        sa.Column("size", Money(), nullable=False),
        sa.Column("entry_notional", Money(), nullable=False),
        sa.Column("realized_pnl", Money(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("follower", "coin", "leader", name="pk_positions"),
    )
    op.create_table(
        "skips",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        _address("follower"),
        _address("leader"),
        sa.Column("coin", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(48), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("source_fill_key", sa.Text(), nullable=True),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_skips"),
        sa.UniqueConstraint("follower", "leader", "source_fill_key", "reason", name="uq_skips_source"),
    )
    op.create_index("ix_skips_follower_time", "skips", ["follower", "time_ms"])


def downgrade() -> None:
    op.drop_index("ix_skips_follower_time", table_name="skips")
    op.drop_table("skips")
    op.drop_table("positions")
    op.drop_table("leader_cursor")
    op.drop_index("ix_fills_cloid", table_name="fills")
    op.drop_index("ix_fills_address_time", table_name="fills")
    op.drop_table("fills")
    op.drop_index("ix_order_journal_source", table_name="order_journal")
    op.drop_index("ix_order_journal_follower_state", table_name="order_journal")
    op.drop_table("order_journal")
    op.drop_table("follows")
