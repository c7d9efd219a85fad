"""The RiskProfile: an account's limits and drawdown rule, as one frozen value.

A profile is part of a :class:`~workbench.strategy.spec.BacktestSpec` (it changes what
fills, so it is part of the spec's id). Its runtime state — the trading state, the risk
log, the running peak — lives in a :class:`~workbench.risk.monitor.RiskMonitor`, one per
run, so the same profile can be reused across runs and engines.

Trading states (as in nautilus_trader's RiskEngine):

- ``ACTIVE``: every order is checked against the limits;
- ``REDUCING_ONLY``: in addition, only orders that bring a position closer to flat pass;
- ``HALTED``: every order is denied.

Risk levels summarise how much of its most used limit an order would use: LOW below 50%,
MEDIUM from 50%, HIGH from 80%, CRITICAL at 100% or more (a denial).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from workbench.errors import ParameterError
from workbench.risk.limits import Limit

__all__ = ["RiskProfile", "TradingState", "RiskLevel", "DrawdownAction"]


class TradingState(enum.Enum):
    ACTIVE = "ACTIVE"
    REDUCING_ONLY = "REDUCING_ONLY"
    HALTED = "HALTED"


class DrawdownAction(enum.Enum):
    """What a drawdown past the limit does: stop new entries, stop all trading, or stop all
    trading and close every position."""

    REDUCE = "REDUCE"  # -> REDUCING_ONLY
    HALT = "HALT"  # -> HALTED
    FLATTEN = "FLATTEN"  # -> HALTED, every position closed at the next bar's open


class RiskLevel(enum.IntEnum):
    LOW = 0
    MEDIUM = 1
    HIGH = 2
    CRITICAL = 3

    @classmethod
    def of_usage(cls, usage: float) -> RiskLevel:
        """The level of a limit usage (1.0 = at the threshold): <0.5, <0.8, <1, >=1."""
        if not math.isfinite(usage) or usage >= 1.0:
            return cls.CRITICAL
        return cls.HIGH if usage >= 0.8 else cls.MEDIUM if usage >= 0.5 else cls.LOW


@dataclass(frozen=True, kw_only=True)
class RiskProfile:
    """Limits every order must pass, and a drawdown rule.

    Parameters
    ----------
    limits : tuple of Limit
        E.g. ``(MaxPositionWeight(limit=0.5), MaxGrossLeverage(limit=1.0), LongOnly())``.
    max_drawdown : float, optional
        A fraction in (0, 1): once equity at a close is this far below its running peak
        (closes since the start), the account moves to ``drawdown_action``'s state from
        the next bar on, for the rest of the run.
    drawdown_action : DrawdownAction
        ``REDUCE`` (default: exits pass, entries are denied), ``HALT`` (every order is
        denied but the engine's protective exits) or ``FLATTEN``: HALTED at that close, and
        every position is closed with market orders at the next bar's open (tag
        ``"liquidation"``, as after a margin call; logged as ``PositionLiquidated`` with the
        drawdown as their cause).

    >>> from workbench.risk.limits import MaxOrderQuantity
    >>> RiskProfile(limits=(MaxOrderQuantity(limit=100),), max_drawdown=0.2).max_drawdown
    0.2
    """

    limits: tuple[Limit, ...] = ()
    max_drawdown: float | None = None
    drawdown_action: DrawdownAction = DrawdownAction.REDUCE

    def __post_init__(self) -> None:
        if not isinstance(self.limits, tuple | list):
            raise ParameterError(f"RiskProfile: limits must be a tuple of limits, e.g. (LongOnly(),), got limits={self.limits!r}")
        limits = tuple(self.limits)
        for lim in limits:
            if isinstance(lim, type) or not callable(getattr(lim, "check", None)):
                raise ParameterError(f"RiskProfile: each limit must be a limit instance, e.g. LongOnly(), got {lim!r}")
        object.__setattr__(self, "limits", limits)
        dd = self.max_drawdown
        if dd is not None and (isinstance(dd, bool) or not isinstance(dd, int | float) or not 0 < dd < 1):
            raise ParameterError(f"RiskProfile: max_drawdown must be a fraction in (0, 1), got max_drawdown={dd!r}")
        try:
            object.__setattr__(self, "drawdown_action", DrawdownAction(getattr(self.drawdown_action, "value", self.drawdown_action)))
        except ValueError:
            raise ParameterError(f"RiskProfile: drawdown_action must be REDUCE, HALT or FLATTEN, got {self.drawdown_action!r}") from None

    @property
    def names(self) -> list[str]:
        return [lim.name for lim in self.limits]
