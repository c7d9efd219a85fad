"""Momentum: time-series (own past return) and cross-sectional (top-k rotation)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.strategy.base import (
    PortfolioStrategy,
    Strategy,
    check_bool,
    check_float,
    check_int,
    panel_field,
)
from workbench.strategy.indicators import indicators

__all__ = ["TimeSeriesMomentum", "CrossSectionalMomentum"]


@dataclass(frozen=True, kw_only=True)
class TimeSeriesMomentum(Strategy):
    """Time-series momentum on one instrument (TA-Lib ``ROCR``).

    Rules: at each close, the return over the last ``lookback`` bars r = C_t / C_{t-L} - 1.
    Long while r > ``threshold``; short while r < -``threshold`` when ``allow_short``;
    flat otherwise. Warm-up: ``lookback`` bars.
    """

    lookback: int = 63
    threshold: float = 0.0
    allow_short: bool = False

    def validate(self) -> None:
        check_int("lookback", self.lookback, 2)
        check_float("threshold", self.threshold, 0.0, 1.0)
        check_bool("allow_short", self.allow_short)

    @property
    def warmup(self) -> int:
        return self.lookback

    def target(self, prices: pd.DataFrame) -> pd.Series:
        r = indicators().roc(prices["Close"], self.lookback).to_numpy()
        low = np.where(r < -self.threshold, -1.0, 0.0) if self.allow_short else 0.0
        out = np.where(np.isnan(r), 0.0, np.where(r > self.threshold, 1.0, low))
        return pd.Series(out, index=prices.index, name="target")


@dataclass(frozen=True, kw_only=True)
class CrossSectionalMomentum(PortfolioStrategy):
    """Cross-sectional momentum: hold the ``top_k`` best performers, rebalanced regularly.

    Rules: every ``rebalance`` bars (counted from the first bar with a complete
    ``lookback`` window), rank the symbols by their ``lookback``-bar return (TA-Lib
    ``ROCR``) and hold the ``top_k`` best at equal weight 1/top_k. With
    ``absolute=True`` (dual momentum) a selected symbol whose return is not positive is
    replaced by cash. Ties rank by column order. Rows between rebalances are NaN (hold).
    """

    lookback: int = 63
    top_k: int = 2
    rebalance: int = 21
    absolute: bool = True

    def validate(self) -> None:
        check_int("lookback", self.lookback, 2)
        check_int("top_k", self.top_k, 1)
        check_int("rebalance", self.rebalance, 1)
        check_bool("absolute", self.absolute)

    @property
    def warmup(self) -> int:
        return self.lookback

    def weights(self, panel: pd.DataFrame) -> pd.DataFrame:
        close = panel_field(panel, "Close")
        if self.top_k > close.shape[1]:
            raise ParameterError(f"top_k must be <= the number of symbols ({close.shape[1]}), got top_k={self.top_k}")
        ta = indicators()
        r = np.column_stack([ta.roc(close[c], self.lookback).to_numpy() for c in close.columns])
        out = np.full(r.shape, np.nan)
        for i in range(self.lookback, len(r), self.rebalance):
            order = np.argsort(-r[i], kind="stable")[: self.top_k]
            w = np.zeros(r.shape[1])
            w[order] = 1.0 / self.top_k
            if self.absolute:
                w[r[i] <= 0] = 0.0
            out[i] = w
        return pd.DataFrame(out, index=close.index, columns=close.columns)
