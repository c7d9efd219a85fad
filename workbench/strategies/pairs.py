"""Pairs trading on a rolling hedge ratio and the z-score of the spread."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.strategies.rules import hold_state
from workbench.strategy.base import PortfolioStrategy, check_float, check_int, panel_field
from workbench.strategy.indicators import indicators

__all__ = ["PairsTrading"]


@dataclass(frozen=True, kw_only=True)
class PairsTrading(PortfolioStrategy):
    """Statistical arbitrage between two related instruments (e.g. SPX vs IXIC).

    Rules, with y the panel's first symbol and x its second, at each close:

    - hedge ratio β_t: rolling OLS slope of log y on log x over ``window`` bars
      (TA-Lib ``CORREL`` × ``STDDEV`` ratio);
    - spread s_t = log y_t − β_t log x_t; z_t = (s_t − mean) / std of the last
      ``z_window`` spreads (TA-Lib ``SMA`` / ``STDDEV``);
    - z > ``entry_z``: short the spread (short y, long β of x); z < −``entry_z``: long
      the spread; exit when |z| < ``exit_z``; a jump through the other band reverses;
    - weights on entry: y gets ±1/(1+|β|), x gets ∓β/(1+|β|) (gross 1, β-hedged in
      value); rows between entries and exits are NaN (hold the units).

    Warm-up: window − 1 + z_window − 1 bars.
    """

    window: int = 60
    z_window: int = 20
    entry_z: float = 2.0
    exit_z: float = 0.5

    def validate(self) -> None:
        check_int("window", self.window, 3)
        check_int("z_window", self.z_window, 2)
        check_float("entry_z", self.entry_z, 0.0, 10.0, open_low=True)
        check_float("exit_z", self.exit_z, 0.0, 10.0)
        if self.exit_z >= self.entry_z:
            raise ParameterError(f"exit_z must be < entry_z, got exit_z={self.exit_z}, entry_z={self.entry_z}")

    @property
    def warmup(self) -> int:
        return self.window - 1 + self.z_window - 1

    def zscore(self, panel: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        """(z-score, hedge ratio) per bar; NaN during the warm-up."""
        close = panel_field(panel, "Close")
        if close.shape[1] != 2:
            raise ParameterError(f"pairs trading needs exactly 2 symbols, got {list(close.columns)}")
        ly, lx, ta = np.log(close.iloc[:, 0]), np.log(close.iloc[:, 1]), indicators()
        beta = ta.hedge_ratio(ly, lx, self.window)
        spread = ly - beta * lx
        first = int(np.argmax(spread.notna().to_numpy())) if spread.notna().any() else len(spread)
        z = pd.Series(np.nan, index=close.index)
        if len(spread) - first >= self.z_window:
            tail = spread.iloc[first:]
            mean, sd = ta.sma(tail, self.z_window), ta.stddev(tail, self.z_window)
            with np.errstate(divide="ignore", invalid="ignore"):
                z.iloc[first:] = np.where(sd > 0, (tail - mean) / sd, np.nan)
        return z, beta

    def weights(self, panel: pd.DataFrame) -> pd.DataFrame:
        z, beta = self.zscore(panel)
        zz = z.to_numpy()
        ready = ~np.isnan(zz)
        with np.errstate(invalid="ignore"):
            state = hold_state(
                ready & (zz < -self.entry_z), ready & (np.abs(zz) < self.exit_z),
                ready & (zz > self.entry_z), ready & (np.abs(zz) < self.exit_z),
            )  # fmt: skip
        prev = np.concatenate(([0.0], state[:-1]))
        b = beta.to_numpy()
        cols = list(panel_field(panel, "Close").columns)
        out = np.full((len(state), 2), np.nan)
        change = state != prev
        scale = 1.0 + np.abs(b[change])
        out[change, 0] = state[change] / scale
        out[change, 1] = -state[change] * b[change] / scale
        return pd.DataFrame(out, index=z.index, columns=cols)
