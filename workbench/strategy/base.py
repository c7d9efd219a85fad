"""Strategies: prices in, target exposure out.

A signal-driven strategy maps an OHLCV frame to a *target* Series on the same index:
+1 (long), 0 (flat) or -1 (short), decided at each bar's close from data up to and
including that bar. The engines turn changes in the target into orders, so a strategy
never sees fills or cash and cannot look ahead by construction (tests truncate the data
and check that earlier targets do not move).

Writing one is a short subclass::

    @dataclass(frozen=True, kw_only=True)
    class Breakout(Strategy):
        window: int = 20
        def target(self, prices):
            high = prices["High"].rolling(self.window).max().shift(1)
            return (prices["Close"] > high).astype(float)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import ParameterError

__all__ = ["Strategy", "SMACrossover"]


@dataclass(frozen=True, kw_only=True)
class Strategy:
    """Base class: frozen, keyword-only parameters validated in ``validate``."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ParameterError` naming the parameter and value when invalid."""

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def params(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def spec_id(self) -> str:
        """Short hash of the canonical JSON of name + params (a natural cache/report key)."""
        blob = json.dumps({"strategy": self.name, "params": self.params}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def warmup(self) -> int:
        """Bars needed before the first signal."""
        return 0

    def target(self, prices: pd.DataFrame) -> pd.Series:
        raise NotImplementedError


def _int_param(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ParameterError(f"{name} must be >= {minimum}, got {name}={value}")
    return int(value)


@dataclass(frozen=True, kw_only=True)
class SMACrossover(Strategy):
    """Simple-moving-average crossover on closes.

    Rules: long while SMA(fast) > SMA(slow) at a bar's close; otherwise flat, or short
    when ``allow_short``. No target is produced from an incomplete window: the first
    ``slow - 1`` bars are flat (the warm-up).

    >>> SMACrossover(fast=50, slow=20)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: fast must be < slow, got fast=50, slow=20
    """

    fast: int = 10
    slow: int = 30
    allow_short: bool = False

    def validate(self) -> None:
        _int_param("fast", self.fast, 2)
        _int_param("slow", self.slow, 2)
        if self.fast >= self.slow:
            raise ParameterError(f"fast must be < slow, got fast={self.fast}, slow={self.slow}")
        if not isinstance(self.allow_short, bool):
            raise ParameterError(f"allow_short must be True or False, got {self.allow_short!r}")

    @property
    def warmup(self) -> int:
        return self.slow - 1

    def target(self, prices: pd.DataFrame) -> pd.Series:
        close = prices["Close"]
        fast = close.rolling(self.fast, min_periods=self.fast).mean()
        slow = close.rolling(self.slow, min_periods=self.slow).mean()
        above = (fast > slow).to_numpy()
        ready = slow.notna().to_numpy()
        low = -1.0 if self.allow_short else 0.0
        out = np.where(ready, np.where(above, 1.0, low), 0.0)
        return pd.Series(out, index=prices.index, name="target")
