"""Cross-venue arbitrage: one asset quoted on two venues, traded when the gap beats costs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.strategies.rules import hold_state
from workbench.strategy.base import PortfolioStrategy, check_float, panel_field

__all__ = ["CrossVenueArbitrage"]


@dataclass(frozen=True, kw_only=True)
class CrossVenueArbitrage(PortfolioStrategy):
    """Buy the cheap venue and sell the dear one when their quotes diverge.

    Rules, with A the panel's first symbol and B its second (the same asset on two
    venues), at each close: gap g_t = Close_A / Close_B − 1 in basis points.

    - net edge = |g| − ``cost_bps`` (the round trip's commission and slippage on both
      legs); when it exceeds ``entry_bps``: g > 0 → short A, long B; g < 0 → long A,
      short B, each leg 1/2 of equity;
    - exit both legs when |g| < ``exit_bps`` (the venues have converged).

    No warm-up: the rule uses only the current bar. The edge is a convergence bet, not
    riskless: the legs fill at the next bar's open like every other order.
    """

    entry_bps: float = 10.0
    exit_bps: float = 2.0
    cost_bps: float = 8.0

    def validate(self) -> None:
        check_float("entry_bps", self.entry_bps, 0.0, 10_000.0, open_low=True)
        check_float("exit_bps", self.exit_bps, 0.0, 10_000.0)
        check_float("cost_bps", self.cost_bps, 0.0, 10_000.0)
        if self.exit_bps >= self.entry_bps + self.cost_bps:
            raise ParameterError(
                f"exit_bps must be < entry_bps + cost_bps, got exit_bps={self.exit_bps}, "
                f"entry_bps={self.entry_bps}, cost_bps={self.cost_bps}"
            )

    def gap_bps(self, panel: pd.DataFrame) -> pd.Series:
        close = panel_field(panel, "Close")
        if close.shape[1] != 2:
            raise ParameterError(f"arbitrage needs exactly 2 venues, got {list(close.columns)}")
        return (close.iloc[:, 0] / close.iloc[:, 1] - 1.0) * 1e4

    def weights(self, panel: pd.DataFrame) -> pd.DataFrame:
        g = self.gap_bps(panel).to_numpy()
        edge = np.abs(g) - self.cost_bps
        enter = edge > self.entry_bps
        converged = np.abs(g) < self.exit_bps
        state = hold_state(enter & (g < 0), converged, enter & (g > 0), converged)
        prev = np.concatenate(([0.0], state[:-1]))
        change = state != prev
        out = np.full((len(g), 2), np.nan)
        out[change, 0] = 0.5 * state[change]
        out[change, 1] = -0.5 * state[change]
        return pd.DataFrame(out, index=panel.index, columns=list(panel_field(panel).columns))
