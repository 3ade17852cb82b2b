"""The risk layer's records: the positions the risk service guards (``risk_holdings``) and the trading
state changes of each account (``risk_events``).

A holding is stored with its :class:`ExitPolicy` and :class:`ExitState` as JSON dicts in which every
Decimal is its exact string (``"0.1"`` stays ``"0.1"``, ``"1E+1"`` stays ``"1E+1"``), so what comes back
equals what went in on SQLite and PostgreSQL alike; ``policy_to_json`` / ``state_to_json`` and their
inverses are the one spelling. After a restart the risk service is handed ``HoldingRepository.all()`` as
``restore=`` and reconciles it against the venue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from hyperfollow.risk.breakers import StateChange
from hyperfollow.risk.exits import ExitPolicy, ExitReason, ExitState, TakeProfitTier
from hyperfollow.risk.gate import TradingState
from hyperfollow.risk.scan import Holding
from hyperfollow.store.sql import rowcount, upsert_insert
from hyperfollow.store.tables import RiskEventRow, RiskHoldingRow

# ---------------------------------------------------------------------- JSON (exact)


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _undec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _req(value: Any) -> Decimal:
    return Decimal(str(value))


def policy_to_json(policy: ExitPolicy) -> dict[str, Any]:
    """``policy`` as a JSON dict (Decimals as exact strings)."""
    return {
        "stop_loss_roe_pct": _dec(policy.stop_loss_roe_pct),
        "stop_loss_price_pct": _dec(policy.stop_loss_price_pct),
        "take_profit_tiers": [
            {"trigger_roe_pct": str(t.trigger_roe_pct), "close_fraction": str(t.close_fraction)}
            for t in policy.take_profit_tiers
        ],
        "trailing_activation_pct": str(policy.trailing_activation_pct),
        "trailing_retrace_pct": _dec(policy.trailing_retrace_pct),
        "max_holding_ms": policy.max_holding_ms,
        "break_even_after_tier": policy.break_even_after_tier,
        "break_even_offset_pct": str(policy.break_even_offset_pct),
        "liquidation_buffer_pct": _dec(policy.liquidation_buffer_pct),
    }


def policy_from_json(data: Mapping[str, Any]) -> ExitPolicy:
    """The inverse of :func:`policy_to_json`."""
    return ExitPolicy(
        stop_loss_roe_pct=_undec(data["stop_loss_roe_pct"]),
        stop_loss_price_pct=_undec(data["stop_loss_price_pct"]),
        take_profit_tiers=tuple(
            TakeProfitTier(_req(t["trigger_roe_pct"]), _req(t["close_fraction"]))
            for t in data["take_profit_tiers"]
        ),
        trailing_activation_pct=_req(data["trailing_activation_pct"]),
        trailing_retrace_pct=_undec(data["trailing_retrace_pct"]),
        max_holding_ms=_int(data["max_holding_ms"]),
        break_even_after_tier=None
        if data["break_even_after_tier"] is None
        else int(data["break_even_after_tier"]),
        break_even_offset_pct=_req(data["break_even_offset_pct"]),
        liquidation_buffer_pct=_undec(data["liquidation_buffer_pct"]),
    )


def state_to_json(state: ExitState) -> dict[str, Any]:
    """``state`` as a JSON dict (Decimals as exact strings, fired tiers sorted)."""
    return {
        "entry_time_ms": state.entry_time_ms,
        "watermark": _dec(state.watermark),
        "stop_price": _dec(state.stop_price),
        "stop_reason": None if state.stop_reason is None else state.stop_reason.value,
        "tiers_fired": sorted(state.tiers_fired),
    }


def state_from_json(data: Mapping[str, Any]) -> ExitState:
    """The inverse of :func:`state_to_json`."""
    reason = data["stop_reason"]
    return ExitState(
        entry_time_ms=int(data["entry_time_ms"]),
        watermark=_undec(data["watermark"]),
        stop_price=_undec(data["stop_price"]),
        stop_reason=None if reason is None else ExitReason(reason),
        tiers_fired=frozenset(int(t) for t in data["tiers_fired"]),
    )


# ---------------------------------------------------------------------- holdings


def _holding(row: RiskHoldingRow) -> Holding:
    return Holding(
        account=row.account,
        coin=row.coin,
        size=row.size,
        entry_price=row.entry_price,
        leverage=row.leverage,
        policy=policy_from_json(row.policy),
        state=state_from_json(row.state),
        liquidation_price=row.liquidation_price,
    )


class HoldingRepository:
    """The risk service's guarded positions, one per (account, coin), in the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def put(self, holding: Holding, *, now_ms: int) -> None:
        """Store ``holding`` (insert or replace the account's record for its coin). A zero size removes it."""
        if holding.size == 0:
            await self.remove(holding.account, holding.coin)
            return
        values = {
            "size": holding.size,
            "entry_price": holding.entry_price,
            "leverage": holding.leverage,
            "liquidation_price": holding.liquidation_price,
            "policy": policy_to_json(holding.policy),
            "state": state_to_json(holding.state),
            "updated_ms": now_ms,
        }
        stmt = upsert_insert(self._session, RiskHoldingRow).values(
            account=holding.account.lower(), coin=holding.coin, **values
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["account", "coin"], set_={k: getattr(stmt.excluded, k) for k in values}
        )
        await self._session.execute(stmt)

    async def remove(self, account: str, coin: str) -> bool:
        """Drop the record of (account, coin); False when there was none."""
        result = await self._session.execute(
            delete(RiskHoldingRow).where(
                RiskHoldingRow.account == account.lower(), RiskHoldingRow.coin == coin
            )
        )
        return rowcount(result) > 0

    async def get(self, account: str, coin: str) -> Holding | None:
        """The record of (account, coin), or ``None``."""
        row = await self._session.scalar(
            select(RiskHoldingRow)
            .where(RiskHoldingRow.account == account.lower(), RiskHoldingRow.coin == coin)
            .execution_options(populate_existing=True)
        )
        return None if row is None else _holding(row)

    async def all(self, account: str | None = None) -> list[Holding]:
        """Every record (of ``account``), by account then coin."""
        stmt = select(RiskHoldingRow)
        if account is not None:
            stmt = stmt.where(RiskHoldingRow.account == account.lower())
        rows = await self._session.scalars(
            stmt.order_by(RiskHoldingRow.account, RiskHoldingRow.coin).execution_options(
                populate_existing=True
            )
        )
        return [_holding(r) for r in rows]

    async def replace_account(self, account: str, holdings: list[Holding], *, now_ms: int) -> None:
        """Make ``holdings`` the account's whole set: each is put, records of other coins are removed."""
        account = account.lower()
        keep = {h.coin for h in holdings if h.size != 0}
        stmt = delete(RiskHoldingRow).where(RiskHoldingRow.account == account)
        if keep:
            stmt = stmt.where(RiskHoldingRow.coin.not_in(sorted(keep)))
        await self._session.execute(stmt)
        for h in holdings:
            if h.account.lower() != account:
                raise ValueError(f"holding of {h.account} in the set of {account}")
            await self.put(h, now_ms=now_ms)


# ---------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class RiskEventRecord:
    """A stored trading state change; ``detail`` is ``StateChange.to_dict()`` (numbers as exact strings)."""

    account: str
    time_ms: int
    from_state: TradingState
    to_state: TradingState
    reason: str  # the BreakerReason's name, e.g. "DAILY_LOSS"
    detail: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None


def _event(row: RiskEventRow) -> RiskEventRecord:
    return RiskEventRecord(
        account=row.account,
        time_ms=row.time_ms,
        from_state=TradingState(row.from_state),
        to_state=TradingState(row.to_state),
        reason=row.reason,
        detail=dict(row.detail),
        id=row.id,
    )


class RiskEventRepository:
    """The trading state changes of each account, in the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(self, account: str, change: StateChange) -> None:
        """Append ``change`` to the account's events."""
        self._session.add(
            RiskEventRow(
                account=account.lower(),
                time_ms=change.time_ms,
                from_state=change.from_state.value,
                to_state=change.to_state.value,
                reason=change.reason.name,
                detail=change.to_dict(),
            )
        )
        await self._session.flush()

    async def for_account(self, account: str, *, limit: int = 1000) -> list[RiskEventRecord]:
        """The account's most recent ``limit`` events, oldest first."""
        rows = await self._session.scalars(
            select(RiskEventRow)
            .where(RiskEventRow.account == account.lower())
            .order_by(RiskEventRow.time_ms.desc(), RiskEventRow.id.desc())
            .limit(limit)
        )
        return [_event(r) for r in reversed(list(rows))]

    async def latest_state(self, account: str) -> TradingState | None:
        """The state the account's last event moved it to (``None``: never changed, i.e. ACTIVE)."""
        value = await self._session.scalar(
            select(RiskEventRow.to_state)
            .where(RiskEventRow.account == account.lower())
            .order_by(RiskEventRow.time_ms.desc(), RiskEventRow.id.desc())
            .limit(1)
        )
        return None if value is None else TradingState(value)
