"""The result of a backtest, whatever engine produced it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from workbench.strategy.metrics import STAT_CONVENTIONS

__all__ = ["BacktestResult", "spec_id"]


def spec_id(spec: dict[str, Any]) -> str:
    """Hash of the spec's canonical JSON: a natural cache and report key."""
    blob = json.dumps(spec, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(kw_only=True)
class BacktestResult:
    """Equity, returns, orders, fills, trades, positions and stats of one backtest.

    ``equity`` is marked at each bar's close; ``positions`` is the signed quantity held
    at each close; ``trades`` lists closed trades (P&L net of allocated fees); ``stats``
    follows :data:`workbench.strategy.metrics.STAT_CONVENTIONS`; ``spec`` records
    everything that produced the result (strategy, params, data hash, costs, engine,
    library versions) and ``spec["id"]`` hashes it.
    """

    equity: pd.Series
    returns: pd.Series
    orders: pd.DataFrame
    fills: pd.DataFrame
    trades: pd.DataFrame
    positions: pd.Series
    stats: pd.Series
    spec: dict[str, Any]
    conventions: dict[str, str] = field(default_factory=lambda: dict(STAT_CONVENTIONS))

    @property
    def id(self) -> str:
        return str(self.spec["id"])

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"<BacktestResult {self.spec.get('strategy')} {self.spec.get('params')} on "
            f"{self.spec.get('symbol')} [{self.spec.get('engine')}]: total_return="
            f"{s['total_return']:.2%}, sharpe={s['sharpe']:.2f}, max_drawdown="
            f"{s['max_drawdown']:.2%}, trades={s['n_trades']}>"
        )

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """Every table of the result, for saving or byte-level comparison."""
        return {
            "equity": self.equity.to_frame(),
            "positions": self.positions.to_frame(),
            "orders": self.orders,
            "fills": self.fills,
            "trades": self.trades,
            "stats": self.stats.astype(str).to_frame(),
        }
