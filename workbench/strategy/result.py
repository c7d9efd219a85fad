"""The result of a backtest, whatever engine produced it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from workbench.risk.monitor import RiskLog
from workbench.strategy.ids import stable_id
from workbench.strategy.metrics import STAT_CONVENTIONS
from workbench.strategy.spec import BacktestSpec

__all__ = ["BacktestResult"]


@dataclass(kw_only=True, eq=False)
class BacktestResult:
    """Equity, returns, orders, fills, trades, positions and stats of one backtest.

    ``equity`` is marked at each bar's close; ``positions`` is the signed quantity held
    at each close; ``trades`` lists closed trades (P&L net of allocated fees); ``stats``
    follows :data:`workbench.strategy.metrics.STAT_CONVENTIONS`; ``spec`` is the
    :class:`~workbench.strategy.spec.BacktestSpec` that produced it (bound to the data)
    and ``id`` is its id; ``versions`` lists the libraries that computed it; ``native`` is
    the engine's own object (the broker, or vectorbt's Portfolio), not stored; ``hooks``
    describes a pre-trade check that ran (part of :attr:`run_id`; a bus only watches);
    ``risk`` is the risk log when the spec has a risk profile.
    """

    equity: pd.Series
    returns: pd.Series
    orders: pd.DataFrame
    fills: pd.DataFrame
    trades: pd.DataFrame
    positions: pd.Series | pd.DataFrame
    stats: pd.Series
    spec: BacktestSpec
    versions: dict[str, str] = field(default_factory=dict)
    hooks: dict[str, Any] = field(default_factory=dict)
    risk: RiskLog | None = None
    conventions: dict[str, str] = field(default_factory=lambda: dict(STAT_CONVENTIONS))
    native: Any = field(default=None, repr=False)

    @property
    def id(self) -> str:
        """The spec's id: the same experiment on either engine has the same id."""
        return self.spec.id

    @property
    def run_id(self) -> str:
        """This run: the spec, the engine, the library versions and any pre-trade check
        (it changes what fills), as a store's key."""
        return stable_id({"spec": self.spec.to_dict(), "versions": self.versions, "hooks": self.hooks})

    @property
    def engine(self) -> str:
        return self.spec.engine

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"<BacktestResult {self.spec.label} [{self.spec.engine}]: total_return="
            f"{s['total_return']:.2%}, sharpe={s['sharpe']:.2f}, max_drawdown="
            f"{s['max_drawdown']:.2%}, trades={s['n_trades']}>"
        )

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """Every table of the result, for saving or byte-level comparison."""
        positions = self.positions.to_frame() if isinstance(self.positions, pd.Series) else self.positions
        return {
            "equity": self.equity.to_frame(),
            "positions": positions,
            "orders": self.orders,
            "fills": self.fills,
            "trades": self.trades,
            "stats": self.stats.astype(str).to_frame(),
        }
