"""Moving-average crossovers (trend following) on TA-Lib averages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.strategy.base import Strategy, check_bool, check_int
from workbench.strategy.indicators import indicators

__all__ = ["SMACrossover", "EMACrossover", "crossover_target"]


def crossover_target(fast: pd.Series, slow: pd.Series, allow_short: bool) -> pd.Series:
    """+1 while fast > slow, else 0 (or -1 with shorts); 0 until both are complete."""
    ready = (fast.notna() & slow.notna()).to_numpy()
    above = (fast > slow).to_numpy()
    low = -1.0 if allow_short else 0.0
    return pd.Series(np.where(ready, np.where(above, 1.0, low), 0.0), index=fast.index, name="target")


@dataclass(frozen=True, kw_only=True)
class SMACrossover(Strategy):
    """Simple-moving-average crossover on closes (TA-Lib ``SMA``).

    Rules: long while SMA(fast) > SMA(slow) at a bar's close; otherwise flat, or short
    when ``allow_short``. Warm-up: no target before SMA(slow) is complete (``slow - 1``
    bars), so the first ``slow - 1`` bars are flat.

    >>> SMACrossover(fast=50, slow=20)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: fast must be < slow, got fast=50, slow=20
    """

    fast: int = 10
    slow: int = 30
    allow_short: bool = False

    def validate(self) -> None:
        check_int("fast", self.fast, 2)
        check_int("slow", self.slow, 2)
        if self.fast >= self.slow:
            raise ParameterError(f"fast must be < slow, got fast={self.fast}, slow={self.slow}")
        check_bool("allow_short", self.allow_short)

    @property
    def warmup(self) -> int:
        return self.slow - 1

    def average(self, close: pd.Series, window: int) -> pd.Series:
        return indicators().sma(close, window)

    def target(self, prices: pd.DataFrame) -> pd.Series:
        close = prices["Close"]
        return crossover_target(self.average(close, self.fast), self.average(close, self.slow), self.allow_short)


@dataclass(frozen=True, kw_only=True)
class EMACrossover(SMACrossover):
    """Exponential-moving-average crossover (TA-Lib ``EMA``, seeded with the SMA of its
    first window). Same rules and warm-up as :class:`SMACrossover`."""

    fast: int = 12
    slow: int = 26

    def average(self, close: pd.Series, window: int) -> pd.Series:
        return indicators().ema(close, window)
