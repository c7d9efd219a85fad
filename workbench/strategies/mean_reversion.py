"""Mean reversion on Bollinger bands confirmed by RSI."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.strategies.rules import hold_state
from workbench.strategy.base import Strategy, check_bool, check_float, check_int
from workbench.strategy.indicators import indicators

__all__ = ["MeanReversion"]


@dataclass(frozen=True, kw_only=True)
class MeanReversion(Strategy):
    """Buy the dip below the lower Bollinger band, exit at the middle band.

    Rules (TA-Lib ``BBANDS`` over ``window`` bars at ``k`` standard deviations and
    ``RSI`` over ``rsi_window``), at each close:

    - enter long when Close < lower band and RSI < ``oversold``;
    - exit the long when Close >= middle band (the SMA) or RSI > ``overbought``;
    - with ``allow_short``, mirror: short above the upper band with RSI > ``overbought``,
      cover at the middle band or RSI < ``oversold``.

    Warm-up: max(window - 1, rsi_window) bars; no rule fires before both are complete.
    """

    window: int = 20
    k: float = 2.0
    rsi_window: int = 14
    oversold: float = 30.0
    overbought: float = 70.0
    allow_short: bool = False

    def validate(self) -> None:
        check_int("window", self.window, 2)
        check_float("k", self.k, 0.0, 10.0, open_low=True)
        check_int("rsi_window", self.rsi_window, 2)
        check_float("oversold", self.oversold, 0.0, 100.0)
        check_float("overbought", self.overbought, 0.0, 100.0)
        if self.oversold >= self.overbought:
            raise ParameterError(
                f"oversold must be < overbought, got oversold={self.oversold}, overbought={self.overbought}"
            )
        check_bool("allow_short", self.allow_short)

    @property
    def warmup(self) -> int:
        return max(self.window - 1, self.rsi_window)

    def target(self, prices: pd.DataFrame) -> pd.Series:
        close, ta = prices["Close"], indicators()
        up, mid, lo = (b.to_numpy() for b in ta.bbands(close, self.window, self.k))
        rsi = ta.rsi(close, self.rsi_window).to_numpy()
        c = close.to_numpy()
        ready = ~(np.isnan(mid) | np.isnan(rsi))
        with np.errstate(invalid="ignore"):
            enter_long = ready & (c < lo) & (rsi < self.oversold)
            exit_long = ready & ((c >= mid) | (rsi > self.overbought))
            enter_short = ready & (c > up) & (rsi > self.overbought) if self.allow_short else None
            exit_short = ready & ((c <= mid) | (rsi < self.oversold)) if self.allow_short else None
        out = hold_state(enter_long, exit_long, enter_short, exit_short)
        return pd.Series(out, index=prices.index, name="target")
