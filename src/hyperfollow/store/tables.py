"""The tables (SQLAlchemy 2 typed ORM). The repositories convert rows to and from domain values.

Addresses are stored lower-case ``0x`` hex; times are venue epoch milliseconds (``*_ms``); money is
:class:`~hyperfollow.store.types.Money` (exact Decimal on both SQLite and PostgreSQL). The schema is
created by the Alembic migrations in ``migrations/versions``, never by ``create_all`` outside tests:
a change here needs a new migration.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from hyperfollow.store.types import Money

# one naming convention so that constraint names are the same on SQLite and PostgreSQL (migrations)
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# an auto-increment key that is BIGINT on PostgreSQL and SQLite's INTEGER PRIMARY KEY (the rowid)
BigId = BigInteger().with_variant(Integer(), "sqlite")

ADDRESS = 42
COIN = 32


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class FollowRow(Base):
    """A follower following a leader, with the copy settings (``FollowSettings`` as a JSON dict)."""

    __tablename__ = "follows"
    __table_args__ = (UniqueConstraint("follower", "leader", name="uq_follows_follower_leader"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    follower: Mapped[str] = mapped_column(String(ADDRESS))
    leader: Mapped[str] = mapped_column(String(ADDRESS))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    stopped_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    stop_action: Mapped[str | None] = mapped_column(String(16), nullable=True)  # "keep" | "close"


class JournalRow(Base):
    """One order we decided to send: the intent is committed before sending, the outcome after."""

    __tablename__ = "order_journal"
    __table_args__ = (
        Index("ix_order_journal_follower_state", "follower", "state"),
        Index("ix_order_journal_source", "follower", "leader", "source_fill_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    cloid: Mapped[str] = mapped_column(String(34), unique=True)
    follower: Mapped[str] = mapped_column(String(ADDRESS))
    leader: Mapped[str | None] = mapped_column(String(ADDRESS), nullable=True)
    coin: Mapped[str] = mapped_column(String(COIN))
    side: Mapped[str] = mapped_column(String(1))  # Side value: "B" buys, "A" sells
    size: Mapped[Decimal] = mapped_column(Money)
    limit_price: Mapped[Decimal] = mapped_column(Money)
    reduce_only: Mapped[bool] = mapped_column(Boolean)
    tif: Mapped[str] = mapped_column(String(8))  # Tif value: "Ioc", "Alo", "Gtc"
    leg: Mapped[str] = mapped_column(String(32))  # "open", "close", "flip-close", "flip-open", "sync", ...
    source_fill_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    oid: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    filled_size: Mapped[Decimal] = mapped_column(Money)
    avg_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class FillRow(Base):
    """One of a follower's venue fills, recorded once; ``leader`` is whose copy caused it (if known)."""

    __tablename__ = "fills"
    __table_args__ = (
        # fill_key is "tid:<tid>", or for fills from before trade ids the (hash, oid, px, sz, start) tuple
        UniqueConstraint("address", "fill_key", name="uq_fills_address_fill_key"),
        Index("ix_fills_address_time", "address", "time_ms"),
        Index("ix_fills_cloid", "cloid"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(String(ADDRESS))
    fill_key: Mapped[str] = mapped_column(Text)
    tid: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    coin: Mapped[str] = mapped_column(String(COIN))
    side: Mapped[str] = mapped_column(String(1))
    price: Mapped[Decimal] = mapped_column(Money)
    size: Mapped[Decimal] = mapped_column(Money)
    time_ms: Mapped[int] = mapped_column(BigInteger)
    start_position: Mapped[Decimal] = mapped_column(Money)
    dir: Mapped[str] = mapped_column(String(32))
    closed_pnl: Mapped[Decimal] = mapped_column(Money)
    fee: Mapped[Decimal] = mapped_column(Money)
    fee_token: Mapped[str] = mapped_column(String(16))
    builder_fee: Mapped[Decimal] = mapped_column(Money)
    oid: Mapped[int] = mapped_column(BigInteger)
    cloid: Mapped[str | None] = mapped_column(String(34), nullable=True)
    hash: Mapped[str] = mapped_column(String(66))
    crossed: Mapped[bool] = mapped_column(Boolean)
    liquidation: Mapped[bool] = mapped_column(Boolean)
    liquidated_user: Mapped[str | None] = mapped_column(String(ADDRESS), nullable=True)
    leader: Mapped[str | None] = mapped_column(String(ADDRESS), nullable=True)


class LeaderCursorRow(Base):
    """The last leader fill a follower's follow has seen: where backfill resumes after a restart."""

    __tablename__ = "leader_cursor"

    follower: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    leader: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    last_time_ms: Mapped[int] = mapped_column(BigInteger)
    last_fill_key: Mapped[str] = mapped_column(Text)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class PositionRow(Base):
    """The part of a follower's position in a coin attributed to one leader (signed size)."""

    __tablename__ = "positions"

    follower: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    coin: Mapped[str] = mapped_column(String(COIN), primary_key=True)
    leader: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    size: Mapped[Decimal] = mapped_column(Money)
    entry_notional: Mapped[Decimal] = mapped_column(Money)
    realized_pnl: Mapped[Decimal] = mapped_column(Money)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class SkipRow(Base):
    """A copy not taken: why, and the numbers behind the decision."""

    __tablename__ = "skips"
    __table_args__ = (
        # the same leader fill skipped again after a restart is one skip, not two
        UniqueConstraint("follower", "leader", "source_fill_key", "reason", name="uq_skips_source"),
        Index("ix_skips_follower_time", "follower", "time_ms"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    follower: Mapped[str] = mapped_column(String(ADDRESS))
    leader: Mapped[str] = mapped_column(String(ADDRESS))
    coin: Mapped[str] = mapped_column(String(COIN))
    reason: Mapped[str] = mapped_column(String(48))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    source_fill_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    time_ms: Mapped[int] = mapped_column(BigInteger)


class RiskHoldingRow(Base):
    """A position the risk service guards: its exact numbers, exit policy and exit state (JSON with the
    Decimals as strings, see ``store/risk.py``). What a restarted risk service restores and reconciles."""

    __tablename__ = "risk_holdings"
    __table_args__ = (UniqueConstraint("account", "coin", name="uq_risk_holdings_account_coin"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(ADDRESS))
    coin: Mapped[str] = mapped_column(String(COIN))
    size: Mapped[Decimal] = mapped_column(Money)
    entry_price: Mapped[Decimal] = mapped_column(Money)
    leverage: Mapped[Decimal] = mapped_column(Money)
    liquidation_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class RiskEventRow(Base):
    """One trading state change of an account (a circuit breaker, the kill switch, a reset)."""

    __tablename__ = "risk_events"
    __table_args__ = (Index("ix_risk_events_account_time", "account", "time_ms"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(ADDRESS))
    time_ms: Mapped[int] = mapped_column(BigInteger)
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(48))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)  # StateChange.to_dict()


class LeaderStatusRow(Base):
    """A leader's health as the copy engine judged it: blacklisted (liquidated) until, paused (drawdown), and
    the peak equity the drawdown is measured from. Kept so that a restart does not forget a blacklist."""

    __tablename__ = "leader_status"

    leader: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    blacklisted_until_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    paused: Mapped[bool] = mapped_column(Boolean)
    peak_equity: Mapped[Decimal] = mapped_column(Money)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


ALL_TABLES = [
    FollowRow.__table__,
    JournalRow.__table__,
    FillRow.__table__,
    LeaderCursorRow.__table__,
    PositionRow.__table__,
    SkipRow.__table__,
    RiskHoldingRow.__table__,
    RiskEventRow.__table__,
    LeaderStatusRow.__table__,
]


class PaperAccountRow(Base):
    """A simulated (paper) account's current state: balance, positions, open orders, counters (JSON)."""

    __tablename__ = "paper_accounts"

    address: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class PaperRecordRow(Base):
    """A paper account's history, appended: each fill (``ref`` its trade id) and each finished order
    (``ref`` its order id, replaced if the order is recorded again)."""

    __tablename__ = "paper_records"
    __table_args__ = (UniqueConstraint("address", "kind", "ref", name="uq_paper_records_address_kind_ref"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(String(ADDRESS))
    kind: Mapped[str] = mapped_column(String(8))  # "fill" | "order"
    ref: Mapped[int] = mapped_column(BigInteger)
    doc: Mapped[Any] = mapped_column(JSON)
