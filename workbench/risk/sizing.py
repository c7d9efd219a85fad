"""Risk-based sizing policies: how much to trade so that a trade risks what it should.

Each is a :class:`~workbench.trading.sizing.Sizer` (usable by every engine that takes the
spec's ``size=``) or builds one:

- :class:`FixedFractional` risks ``risk`` of current equity on a trade whose stop is
  ``stop`` below (or above) the entry: quantity = risk × equity / (stop × price ×
  multiplier), in whole lots, never more than the cash (or, for a short, the equity) pays
  for. Pair it with the same ``stop_loss`` on the strategy's target.
- :func:`kelly_from_trades` and :func:`kelly_from_returns` give the Kelly fraction of
  equity, scaled by ``fraction`` (0.5 = "half Kelly") and capped at ``cap``, as a
  :class:`~workbench.trading.sizing.PercentOfEquity` (so the vectorized engine runs it
  too). Conventions: from trades, the binary-bet Kelly f* = W − (1 − W) / R with W the
  share of winning trades and R = mean win / |mean loss| (Kelly 1956; Thorp 2006); from
  returns, the continuous-time f* = μ / σ² of per-period simple returns (sample mean and
  variance, ddof = 1, no risk-free rate). No edge (f* <= 0) is a ParameterError, not a
  zero position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.trading.sizing import AllEquity, CostFn, PercentOfEquity
from workbench.trading.values import Instrument

__all__ = ["FixedFractional", "kelly_fraction", "kelly_from_trades", "kelly_from_returns"]


def _fraction(owner: str, field: str, value: object, upper: float = 1.0) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and 0 < value <= upper
    if not ok:
        raise ParameterError(f"{owner}: {field} must be in (0, {upper:g}], got {field}={value!r}")
    return float(value)


@dataclass(frozen=True, kw_only=True, slots=True)
class FixedFractional:
    """Risk ``risk`` of equity per trade to a stop ``stop`` away (both fractions)."""

    risk: float
    stop: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "risk", _fraction("FixedFractional", "risk", self.risk))
        object.__setattr__(self, "stop", _fraction("FixedFractional", "stop", self.stop))

    def size(self, price: float, equity: float, cash: float, instrument: Instrument, cost: CostFn) -> float:
        if equity <= 0 or price <= 0:
            return 0.0
        wanted = instrument.round_lots(self.risk * equity / (self.stop * price * instrument.multiplier))
        return min(wanted, AllEquity().size(price, equity, cash, instrument, cost))


def kelly_fraction(win_rate: float, payoff: float) -> float:
    """Binary-bet Kelly: f* = W − (1 − W) / R (W in [0, 1], R = mean win / |mean loss| > 0).

    >>> round(kelly_fraction(0.55, 1.0), 10)
    0.1
    """
    if not (isinstance(win_rate, int | float) and 0 <= win_rate <= 1):
        raise ParameterError(f"win_rate must be in [0, 1], got win_rate={win_rate!r}")
    if not (isinstance(payoff, int | float) and math.isfinite(payoff) and payoff > 0):
        raise ParameterError(f"payoff must be a finite number > 0, got payoff={payoff!r}")
    return float(win_rate - (1.0 - win_rate) / payoff)


def _sized(f: float, fraction: float, cap: float, source: str) -> PercentOfEquity:
    fraction = _fraction("Kelly", "fraction", fraction)
    cap = _fraction("Kelly", "cap", cap)
    if not f > 0:
        raise ParameterError(f"no edge: the Kelly fraction from {source} is {f:.4g} <= 0 (do not size up a losing bet)")
    return PercentOfEquity(fraction=min(f * fraction, cap))


def kelly_from_trades(trades: pd.DataFrame, fraction: float = 0.5, cap: float = 1.0) -> PercentOfEquity:
    """Kelly sizing from closed trades (a result's ``trades``: their ``pnl``)."""
    pnl = pd.Series(trades["pnl"], dtype="float64").dropna()
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    if len(wins) == 0 or len(losses) == 0:
        raise ParameterError(f"Kelly from trades needs winning and losing trades, got {len(wins)} and {len(losses)}")
    f = kelly_fraction(len(wins) / len(pnl), float(wins.mean()) / abs(float(losses.mean())))
    return _sized(f, fraction, cap, f"{len(pnl)} trades")


def kelly_from_returns(returns: pd.Series | np.ndarray, fraction: float = 0.5, cap: float = 1.0) -> PercentOfEquity:
    """Kelly sizing f* = μ / σ² from per-period simple returns."""
    r = pd.Series(np.asarray(returns, dtype="float64")).dropna()
    if len(r) < 2:
        raise ParameterError(f"Kelly from returns needs at least 2 returns, got {len(r)}")
    var = float(r.var(ddof=1))
    if not var > 0:
        raise ParameterError("Kelly from returns needs returns that vary (variance 0)")
    return _sized(float(r.mean()) / var, fraction, cap, f"{len(r)} returns")
