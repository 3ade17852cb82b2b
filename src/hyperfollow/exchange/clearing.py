"""Clearinghouse operations around the matching engine: leverage and margin changes, the dead
man's switch, hourly funding, liquidation and vault shares. Each returns ``None`` on success or the
venue's text."""

from __future__ import annotations

from typing import Any

from hyperfollow.domain.rules import scaled_to_wire
from hyperfollow.exchange.accounts import (
    Account,
    Position,
    equity_of_shares,
    shares_for_deposit,
    shares_for_withdrawal,
)
from hyperfollow.exchange.engine import Engine, OrderSpec

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
SCHEDULE_CANCEL_MIN_DELAY_MS = 5_000
SCHEDULE_CANCEL_MAX_PER_DAY = 10
FUNDING_INTEREST_8H = 0.0001  # 0.01 % per 8 h
FUNDING_CLAMP = 0.0005
FUNDING_CAP_PER_HOUR = 0.04
LIQUIDATION_SLIPPAGE = 0.5
# Vault rules of the venue's vault docs (not in our research note): a follower's deposit is locked
# for a day (mainnet user vaults), and the leader keeps at least 5 % of the vault.
VAULT_LOCKUP_MS = DAY_MS
VAULT_LEADER_MIN_SHARE_PCT = 5


def update_leverage(engine: Engine, user: str, asset: int, is_cross: bool, leverage: int) -> str | None:
    inst = engine.insts.get(asset)
    if inst is None or inst.is_spot:
        return "Invalid asset."
    if not 1 <= leverage <= inst.max_leverage:
        return f"Invalid leverage value. Max leverage is {inst.max_leverage}."
    if is_cross and inst.only_isolated:
        return "Cross margin is not allowed for this asset."
    acct = engine.account(user)
    pos = acct.positions.get(asset)
    if pos is not None and pos.szi:
        if pos.is_cross != is_cross:
            return "Cannot switch leverage type with open position."
        mark = engine.marks[asset]
        if not is_cross:
            need = -(-pos.value(mark) // leverage)
            if pos.margin + pos.upnl(mark) < need and leverage < pos.leverage:
                return "Insufficient margin to decrease leverage."
        elif leverage < pos.leverage:
            extra = -(-pos.value(mark) // leverage) - -(-pos.value(mark) // pos.leverage)
            if extra > engine._available(acct):
                return "Insufficient margin to decrease leverage."
        pos.leverage = leverage
    acct.leverage[asset] = (is_cross, leverage)
    return None


def update_isolated_margin(engine: Engine, user: str, asset: int, ntli: int) -> str | None:
    """Add (ntli > 0) or remove (ntli < 0) micro-USD of margin on an isolated position."""
    inst = engine.insts.get(asset)
    acct = engine.accounts.get(user)
    pos = acct.positions.get(asset) if acct else None
    if inst is None or acct is None or pos is None or pos.szi == 0 or pos.is_cross:
        return "Cannot update margin for an asset without an isolated position."
    if ntli > 0:
        if ntli > engine._available(acct):
            return "Insufficient margin to add."
    else:
        mark = engine.marks[asset]
        need = -(-pos.value(mark) // pos.leverage)
        if inst.only_isolated or pos.margin + pos.upnl(mark) + ntli < need:
            return "Insufficient margin to remove."
    pos.margin += ntli
    acct.usdc -= ntli
    return None


def schedule_cancel(engine: Engine, user: str, time_ms: int | None) -> str | None:
    """Set (or, with ``None``, unset) the dead man's switch: all open orders cancelled at ``time_ms``."""
    acct = engine.account(user)
    now = engine.now()
    if time_ms is None:
        acct.schedule_cancel_ms = None
        return None
    if time_ms < now + SCHEDULE_CANCEL_MIN_DELAY_MS:
        return "Scheduled cancel time too early, must be at least 5 seconds from now."
    # The daily cap counts firings, not settings: a client refreshing its deadline as a heartbeat
    # may do so any number of times (SDK docstring: "once the time comes ... a trigger count will be
    # incremented. The max number of triggers per day is 10").
    if acct.schedule_cancel_count.get(now // DAY_MS, 0) >= SCHEDULE_CANCEL_MAX_PER_DAY:
        return "Too many scheduled cancels today."
    acct.schedule_cancel_ms = time_ms
    return None


def run_due(engine: Engine) -> None:
    """Everything time-driven: scheduled cancels, funding on the hour, liquidations."""
    now = engine.now()
    for acct in engine.accounts.values():
        if acct.schedule_cancel_ms is not None and now >= acct.schedule_cancel_ms:
            acct.schedule_cancel_ms = None
            day = now // DAY_MS
            acct.schedule_cancel_count = {day: acct.schedule_cancel_count.get(day, 0) + 1}
            engine.cancel_all(acct.user, "scheduledCancel")
    while now >= engine.next_funding_ms:
        apply_funding(engine, engine.next_funding_ms)
        engine.next_funding_ms += HOUR_MS
    liquidate_underwater(engine)


def funding_rate(engine: Engine, asset: int) -> float:
    """Hourly rate: (premium + clamp(interest - premium, +-0.05 %)) / 8, capped at 4 %/h."""
    oracle = engine.oracles.get(asset)
    mid = engine.mid(asset)
    if not oracle or mid is None:
        return 0.0
    premium = (mid - oracle) / oracle
    rate = (premium + min(max(FUNDING_INTEREST_8H - premium, -FUNDING_CLAMP), FUNDING_CLAMP)) / 8
    return max(-FUNDING_CAP_PER_HOUR, min(FUNDING_CAP_PER_HOUR, rate))


def apply_funding(engine: Engine, ts_ms: int) -> None:
    rates = {a: funding_rate(engine, a) for a in engine.marks if not engine.insts[a].is_spot}
    for asset, rate in rates.items():
        inst = engine.insts[asset]
        engine.funding_history[asset].append(
            {
                "coin": inst.coin,
                "fundingRate": f"{rate:.10f}".rstrip("0"),
                "premium": f"{rate * 8:.10f}".rstrip("0"),
                "time": ts_ms,
            }
        )
    for acct in engine.accounts.values():
        for asset, pos in acct.positions.items():
            if pos.szi == 0 or asset not in rates:
                continue
            payment = round(pos.szi * engine.oracles.get(asset, engine.marks[asset]) * rates[asset])
            _pay_funding(engine, acct.user, pos, payment, rates[asset], ts_ms)


def _pay_funding(engine: Engine, user: str, pos: Position, payment: int, rate: float, ts_ms: int) -> None:
    acct = engine.accounts[user]
    if pos.is_cross:
        acct.usdc -= payment
    else:
        pos.margin -= payment
    pos.funding_all += payment
    pos.funding_open += payment
    pos.funding_change += payment
    inst = engine.insts[pos.asset]
    item = {
        "time": ts_ms,
        "coin": inst.coin,
        "usdc": scaled_to_wire(-payment, 6),
        "szi": engine.sz_wire(inst, pos.szi),
        "fundingRate": f"{rate:.10f}".rstrip("0"),
        "nSamples": None,
    }
    acct.fundings.append(item)
    engine.emit("user", user, {"funding": item})


def liquidate_underwater(engine: Engine) -> None:
    """Close positions whose margin no longer covers maintenance: cross as a whole, isolated one by one."""
    insts, marks = engine.insts, engine.marks
    for acct in list(engine.accounts.values()):
        if not acct.positions:
            continue
        open_positions = [p for p in acct.positions.values() if p.szi]
        if not open_positions:
            continue
        value, ntl, _, maint = acct.cross_summary(marks, insts)
        if ntl and value < maint:
            _liquidate(engine, acct.user, [p for p in open_positions if p.is_cross], value)
        for pos in open_positions:
            if not pos.is_cross and pos.szi:
                mark = marks[pos.asset]
                if acct.isolated_equity(pos, mark) < pos.value(mark) // (2 * insts[pos.asset].max_leverage):
                    _liquidate(engine, acct.user, [pos], acct.isolated_equity(pos, mark))


def _liquidate(engine: Engine, user: str, positions: list[Position], account_value: int) -> None:
    acct = engine.accounts[user]
    engine.cancel_all(user, "liquidatedCanceled")
    ntl = sum(p.value(engine.marks[p.asset]) for p in positions)
    for pos in positions:
        inst = engine.insts[pos.asset]
        mark = engine.marks[pos.asset]
        is_buy = pos.szi < 0
        px = engine._round_px(
            inst, mark * (1 + LIQUIDATION_SLIPPAGE if is_buy else 1 - LIQUIDATION_SLIPPAGE), up=is_buy
        )
        spec = OrderSpec(pos.asset, is_buy, px, abs(pos.szi), reduce_only=True, tif="LiquidationMarket")
        order = engine._new_order(user, spec, "na")
        cross_balance = acct.usdc
        engine._execute(inst, order)
        if pos.szi:  # not enough liquidity: the backstop takes the rest at the mark
            _backstop(engine, acct.user, pos, mark)
        if not pos.is_cross and acct.usdc < cross_balance:  # an isolated position loses at most its
            acct.usdc = cross_balance  # margin: the insurance fund covers a gap beyond it
    if acct.usdc < 0:  # the insurance fund covers a negative balance
        acct.usdc = 0
    event: dict[str, Any] = {
        "liquidation": {
            "lid": engine.next_tid,
            "liquidator": "0x" + "0" * 40,
            "liquidated_user": user,
            "liquidated_ntl_pos": scaled_to_wire(ntl, 6),
            "liquidated_account_value": scaled_to_wire(account_value, 6),
        }
    }
    engine.emit("user", user, event)


def _backstop(engine: Engine, user: str, pos: Position, mark: int) -> None:
    inst = engine.insts[pos.asset]
    acct = engine.accounts[user]
    acct.apply_fill(inst, pos.szi < 0, mark, abs(pos.szi), 0)


# ---------------------------------------------------------------------- vaults


def plan_vault_transfer(engine: Engine, vault: Account, user: str, is_deposit: bool, usd: int) -> int | str:
    """The change in ``user``'s shares of ``vault`` a transfer of ``usd`` micro-USD makes (minted > 0,
    burned < 0), or the refusal. A withdrawal is bounded by the user's own equity in the vault, waits
    out the user's lock-up, and leaves the leader its minimum share. Changes nothing."""
    total = sum(vault.vault_shares.values())
    equity = vault.total_value(engine.marks)
    if is_deposit:
        minted = shares_for_deposit(total, equity, usd)
        if not minted:
            return "Vault has no equity to deposit into." if minted is None else "Deposit amount too small."
        return minted
    shares = vault.vault_shares.get(user, 0)
    own = equity_of_shares(shares, total, equity)
    if usd > own:
        return f"Insufficient vault equity for withdrawal: {scaled_to_wire(own, 6)} USDC withdrawable."
    locked_until = vault.vault_locked_until.get(user, 0)
    if user != vault.leader and engine.now() < locked_until:
        return f"Vault deposit is locked until {locked_until}."
    burned = shares_for_withdrawal(usd, shares, total, equity)
    rest_total, rest_own = total - burned, shares - burned
    if user == vault.leader and rest_total and rest_own * 100 < rest_total * VAULT_LEADER_MIN_SHARE_PCT:
        return f"Vault leader must keep at least {VAULT_LEADER_MIN_SHARE_PCT}% of the vault."
    return -burned


def book_vault_shares(vault: Account, user: str, delta: int, now: int, lockup_ms: int) -> None:
    """Apply a planned share change; a follower's deposit (re)starts its lock-up, the leader has none."""
    shares = vault.vault_shares.get(user, 0) + delta
    if shares > 0:
        vault.vault_shares[user] = shares
        if delta > 0:
            vault.vault_locked_until[user] = now + (0 if user == vault.leader else lockup_ms)
    else:
        vault.vault_shares.pop(user, None)
        vault.vault_locked_until.pop(user, None)


def holds_elsewhere(engine: Engine, user: str) -> bool:
    """Whether ``user`` leads a vault or sub-account or owns vault shares: money that is its own but
    not in its balance."""
    return any(a.leader == user or user in a.vault_shares for a in engine.accounts.values())


def vault_equities(engine: Engine, user: str) -> list[dict[str, Any]]:
    """``userVaultEquities``: the user's equity in each vault it holds shares of."""
    rows: list[dict[str, Any]] = []
    for vault in engine.accounts.values():
        shares = vault.vault_shares.get(user, 0) if vault.is_vault else 0
        if shares:
            total = sum(vault.vault_shares.values())
            own = equity_of_shares(shares, total, vault.total_value(engine.marks))
            rows.append(
                {
                    "vaultAddress": vault.user,
                    "equity": scaled_to_wire(own, 6),
                    "lockedUntilTimestamp": vault.vault_locked_until.get(user, 0),
                }
            )
    return rows
