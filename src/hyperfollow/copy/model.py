"""Copy-trading value types: the settings of one follow, and what a decision produces.

A decision (``mirror.decide_mirror``, ``delta.decide_delta``, ``lifecycle.decide_join`` / ``decide_stop``)
is a ``Decision``: a list of ``CopyIntent`` (an order to send, with its deterministic cloid) and ``Skip``
(a copy not taken, with a reason the user can read and the numbers behind it). Everything is frozen and
pure; the async service turns intents into orders and writes both kinds to the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from enum import StrEnum
from typing import Literal, TypeAlias

from hyperfollow.domain.model import OrderRequest, Side, Tif


class SizingMode(StrEnum):
    EQUITY_RATIO = "equity_ratio"  # leader size x (follower equity / leader equity)
    FIXED_MULTIPLIER = "fixed_multiplier"  # leader size x multiplier
    FIXED_NOTIONAL = "fixed_notional"  # notional_usd per copied open, whatever the leader's size


class ExistingPositions(StrEnum):
    """What to do with leader positions that were open before the follow started."""

    IGNORE = "ignore"
    JOIN = "join"  # open our scaled share now, if the mark is within join_price_guard_pct of their entry


class StopAction(StrEnum):
    """What happens to our copied positions when a follow stops."""

    KEEP = "keep"
    CLOSE = "close"


class LeverageMode(StrEnum):
    FOLLOW = "follow"  # the leader's leverage (settings.leverage when unknown)
    FIXED = "fixed"  # settings.leverage
    CAP = "cap"  # the leader's, but never above settings.leverage


class MarginMode(StrEnum):
    CROSS = "cross"
    ISOLATED = "isolated"


class ExecutionStyle(StrEnum):
    TAKER = "taker"  # IOC at the slippage cap
    MAKER = "maker"  # post-only near the touch, then dropped or sent as taker after the timeout


class MakerFallback(StrEnum):
    DROP = "drop"
    TAKER = "taker"


class CopyMode(StrEnum):
    MIRROR = "mirror"  # every leader fill becomes an order
    DELTA = "delta"  # on a schedule, trade the allocation difference


class SkipReason(StrEnum):
    """Why a copy was not taken. The value is what the user reads (skip log, report)."""

    SKIP_MIN_NOTIONAL = "below the $10 minimum order value"
    SKIP_DRIFT = "price drifted from the leader's fill"
    SKIP_JOIN_GUARD = "price too far from the leader's entry to join"
    SKIP_OPENS_ONLY = "copying opens only"
    SKIP_ADDS_OFF = "following adds is off"
    SKIP_REDUCES_OFF = "following reduces is off"
    SKIP_NO_POSITION = "nothing of ours to close"
    SKIP_BUDGET = "leader budget used up"
    SKIP_CAP = "position or order cap reached"
    SKIP_ZERO_SIZE = "size rounds to zero lots"
    SKIP_PREEXISTING = "leader position predates the follow"
    SKIP_COOLDOWN = "coin adjusted too recently"
    SKIP_IN_BAND = "allocation within the band"
    SKIP_STALE_LEADER = "leader snapshot is stale"
    SKIP_UNKNOWN_COIN = "coin not listed"
    SKIP_NO_MARK = "no mark price"
    SKIP_SPOT = "spot fills are not copied"
    SKIP_DELISTED = "coin is delisted"
    SKIP_NO_EQUITY = "an account has no equity"
    SKIP_UNKNOWN_DIR = "fill direction not understood"
    SKIP_BAD_FILL = "fill contradicts its direction"
    SKIP_RISK_GATE = "refused by the risk gate"
    SKIP_LEADER_PAUSED = "leader paused: drawdown beyond the limit"
    SKIP_LEADER_BLACKLISTED = "leader blacklisted after a liquidation"
    SKIP_FLIP_GUARD = "our record disagrees with the venue position"

    @property
    def code(self) -> str:
        """The stable name (``SKIP_MIN_NOTIONAL``) for storage and grouping; the value may be reworded."""
        return self.name


Leg = Literal["close", "open", "adjust"]

_DECIMAL_FIELDS = (
    "multiplier",
    "notional_usd",
    "copy_ratio",
    "budget_usd",
    "max_order_usd",
    "max_position_usd",
    "join_price_guard_pct",
    "drift_guard_pct",
    "slippage_cap_pct",
    "maker_offset_bps",
    "maker_timeout_secs",
    "delta_band_pct",
    "delta_cooldown_secs",
    "delta_interval_secs",
)


@dataclass(frozen=True, slots=True)
class FollowSettings:
    """How one follower copies one leader. Units are in the names (``_usd``, ``_pct``, ``_secs``, ``_bps``).

    Numbers may be given as ``int``, ``str`` or ``float`` (a TOML file gives floats): they are turned into
    ``Decimal`` through their text, so ``0.1`` stays ``Decimal("0.1")``. Invalid values raise ``ValueError``
    naming the field.
    """

    mode: CopyMode = CopyMode.MIRROR
    sizing: SizingMode = SizingMode.EQUITY_RATIO
    multiplier: Decimal = Decimal(1)  # FIXED_MULTIPLIER: our size = leader size x multiplier
    notional_usd: Decimal | None = None  # FIXED_NOTIONAL: USD per copied open (required in that mode)
    copy_ratio: Decimal = Decimal(1)  # applied on top of every sizing mode
    budget_usd: Decimal | None = None  # most notional (at mark) this follow may hold open; None = no cap
    max_order_usd: Decimal | None = None  # largest opening order
    max_position_usd: Decimal | None = None  # largest position per coin
    reverse: bool = False  # invert every signal: the leader's long is our short
    follow_adds: bool = True  # copy increases of an open leader position
    follow_reduces: bool = True  # copy partial closes (full closes are always copied unless opens_only)
    opens_only: bool = False  # copy opens and adds only: exits are the follower's own business
    existing_positions: ExistingPositions = ExistingPositions.IGNORE
    join_price_guard_pct: Decimal = Decimal(1)
    stop_action: StopAction = StopAction.KEEP
    leverage_mode: LeverageMode = LeverageMode.CAP
    leverage: int = 3
    margin_mode: MarginMode = MarginMode.CROSS
    drift_guard_pct: Decimal = Decimal(1)  # skip an open when the mark moved this far against us
    execution: ExecutionStyle = ExecutionStyle.TAKER
    slippage_cap_pct: Decimal = Decimal("0.5")  # worst accepted price: mark +/- this
    maker_offset_bps: Decimal = Decimal(0)  # a maker buy rests this far below the best bid
    maker_timeout_secs: Decimal = Decimal(5)
    maker_fallback: MakerFallback = MakerFallback.TAKER
    delta_band_pct: Decimal = Decimal(5)  # trade when allocations differ by more than this % of equity
    delta_cooldown_secs: Decimal = Decimal(60)
    delta_interval_secs: Decimal = Decimal(30)

    def __post_init__(self) -> None:
        for name, enum in _ENUM_FIELDS.items():
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, enum(value))
            except ValueError:
                allowed = ", ".join(m.value for m in enum)
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}") from None
        for name in _DECIMAL_FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, Decimal):
                object.__setattr__(self, name, _to_decimal(name, value))
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Decimal) and not value.is_finite():
                raise ValueError(f"{f.name} must be a finite number, got {value}")
        self._check_positive("multiplier", "copy_ratio", "slippage_cap_pct", "delta_band_pct")
        self._check_positive("maker_timeout_secs", "delta_interval_secs")
        self._check_positive("notional_usd", "budget_usd", "max_order_usd", "max_position_usd")
        self._check_non_negative("join_price_guard_pct", "drift_guard_pct", "maker_offset_bps")
        self._check_non_negative("delta_cooldown_secs")
        if self.sizing is SizingMode.FIXED_NOTIONAL and self.notional_usd is None:
            raise ValueError("notional_usd is required when sizing is fixed_notional")
        if isinstance(self.leverage, bool) or not isinstance(self.leverage, int) or self.leverage < 1:
            raise ValueError(f"leverage must be a whole number >= 1, got {self.leverage!r}")
        if self.slippage_cap_pct >= 100:
            raise ValueError(f"slippage_cap_pct must be below 100, got {self.slippage_cap_pct}")
        if self.maker_offset_bps >= 10_000:
            raise ValueError(f"maker_offset_bps must be below 10000, got {self.maker_offset_bps}")

    def _check_positive(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")

    def _check_non_negative(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")


_ENUM_FIELDS: dict[str, type[StrEnum]] = {
    "mode": CopyMode,
    "sizing": SizingMode,
    "existing_positions": ExistingPositions,
    "stop_action": StopAction,
    "leverage_mode": LeverageMode,
    "margin_mode": MarginMode,
    "execution": ExecutionStyle,
    "maker_fallback": MakerFallback,
}


def _to_decimal(name: str, value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        return Decimal(str(value).strip())
    except ArithmeticError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None


@dataclass(frozen=True, slots=True)
class CopyIntent:
    """An order a decision wants sent for ``follower`` because of ``leader``.

    ``size`` is on the lot grid. ``limit_price`` is on the price grid and is the worst price accepted
    (the slippage cap from the mark); for the maker style the executor rests the order near the touch and
    never worse than it, and a taker fallback uses it as its limit. ``cloid`` is derived from what caused
    the intent (leader fill or snapshot, follower, leg), so a retry or a restart re-derives it.
    """

    follower: str
    leader: str
    coin: str
    side: Side
    size: Decimal
    reduce_only: bool
    leg: Leg
    limit_price: Decimal
    tif: Tif
    leverage: int
    is_cross: bool
    cloid: str
    reason: str
    fill_key: str = ""  # what caused it: the leader fill's key, "delta:<snapshot ms>", "join:...", "stop:..."
    mark: Decimal = Decimal(0)  # the mark the decision saw

    @property
    def notional_usd(self) -> Decimal:
        """Size at the decision's mark (the limit price when no mark was recorded)."""
        return self.size * (self.mark or self.limit_price)

    def to_order(self) -> OrderRequest:
        """The order to send (already on the venue's grid)."""
        return OrderRequest(
            coin=self.coin,
            side=self.side,
            size=self.size,
            price=self.limit_price,
            tif=self.tif,
            reduce_only=self.reduce_only,
            cloid=self.cloid,
        )


@dataclass(frozen=True, slots=True)
class Skip:
    """A copy not taken: the reason and the numbers behind it (Decimal strings)."""

    follower: str
    leader: str
    coin: str
    reason: SkipReason
    detail: Mapping[str, str] = field(default_factory=dict)
    fill_key: str = ""

    @property
    def text(self) -> str:
        """One readable line: the reason, then the numbers."""
        numbers = ", ".join(f"{k}={v}" for k, v in self.detail.items())
        return f"{self.reason.value} ({numbers})" if numbers else self.reason.value


Decision: TypeAlias = list[CopyIntent | Skip]


def intents(decision: Decision) -> list[CopyIntent]:
    """The intents of a decision, in order."""
    return [d for d in decision if isinstance(d, CopyIntent)]


def skips(decision: Decision) -> list[Skip]:
    """The skips of a decision, in order."""
    return [d for d in decision if isinstance(d, Skip)]


def numbers(**values: Decimal | int | str | None) -> dict[str, str]:
    """Skip detail from named numbers (Decimal text without exponent; None left out)."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = format(value, "f") if isinstance(value, Decimal) else str(value)
    return out
