"""Validated notebook parameters: the cell after ``parameters`` turns them into a
:class:`~workbench.strategy.spec.BacktestSpec`, which every later cell runs.

A bad parameter fails at once with the parameter's name and value, before any work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from workbench.api import make_spec
from workbench.data import sample_symbols
from workbench.errors import ParameterError
from workbench.strategies import SMACrossover
from workbench.strategy.spec import BacktestSpec
from workbench.trading.values import utc_timestamp

__all__ = ["BacktestParams"]


def _opt_date(name: str, value: object) -> pd.Timestamp | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None  # an empty notebook parameter means "no bound"
    return utc_timestamp(value, name, ParameterError)


@dataclass(frozen=True, kw_only=True)
class BacktestParams:
    """Parameters of the backtest runbook.

    >>> params = BacktestParams(symbol="GOOG", fast=10, slow=30, cash=10_000, commission=0.001)
    >>> params.strategy
    SMACrossover(fast=10, slow=30, allow_short=False)
    >>> params.spec.commission
    PercentOfNotional(rate=0.001, minimum=0.0)
    """

    symbol: str = "GOOG"
    fast: int = 10
    slow: int = 30
    cash: float = 10_000.0
    commission: float = 0.001
    start: Any = None
    end: Any = None
    allow_short: bool = False
    check_engines: bool = True
    tearsheet: bool = True

    def __post_init__(self) -> None:
        for name in ("allow_short", "check_engines", "tearsheet"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(f"{name} must be True or False, got {name}={getattr(self, name)!r}")
        if not isinstance(self.symbol, str) or self.symbol.upper() not in sample_symbols():
            raise ParameterError(
                f"symbol must be one of {', '.join(sample_symbols())}; got symbol={self.symbol!r}"
            )
        object.__setattr__(self, "symbol", self.symbol.upper())
        if isinstance(self.cash, bool) or not isinstance(self.cash, int | float) or not (math.isfinite(self.cash) and self.cash > 0):
            raise ParameterError(f"cash must be a number > 0, got cash={self.cash!r}")
        c = self.commission
        if isinstance(c, bool) or not isinstance(c, int | float) or not (0 <= c < 0.1):
            raise ParameterError(
                f"commission is a fraction of notional in [0, 0.1) (0.001 = 10 bps), got commission={c!r}"
            )
        start, end = _opt_date("start", self.start), _opt_date("end", self.end)
        if start is not None and end is not None and start >= end:
            raise ParameterError(f"start must be before end, got start={start}, end={end}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        self.strategy  # noqa: B018 - validates fast/slow now

    @property
    def strategy(self) -> SMACrossover:
        return SMACrossover(fast=self.fast, slow=self.slow, allow_short=self.allow_short)

    @property
    def spec(self) -> BacktestSpec:
        """The backtest these parameters describe (event engine; the runbook's cross-check
        replaces the engine)."""
        return make_spec(self.strategy, cash=float(self.cash), commission=float(self.commission))
