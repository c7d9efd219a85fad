"""Per-sleeve attribution of a multi-strategy book's backtest: P&L, costs, turnover, risk.

The account holds one net position per symbol; several sleeves may want it. Each bar's
P&L of a symbol is split in two, each part to the sleeves that caused it:

- **holding P&L** ``q_{t-1}·(C_t - C_{t-1})·m``: the position held over the bar, split by
  each sleeve's share of the target that position was built for (``c_k·W_k,s`` over
  ``Σ_j c_j·W_j,s`` at the decision before it). Shares may be negative or above 1 when
  sleeves oppose each other (+0.5 and -0.25 net to 0.25: shares 2 and -1), which is the
  P&L each sleeve would have made on its own part of the position.
- **trading P&L and fees** ``Σ_fills q_f·(C_t - p_f)·m - fee``: the bar's fills, split by
  each sleeve's share of the change of target that caused them; a fill with no change of
  target (a periodic rebalance back to weights after drift) is split by holding shares.

What no sleeve wanted (a residue of lot rounding, a position whose target nets to zero
across sleeves) is ``unattributed``; financing or anything else moving equity beyond the
positions' P&L is ``other``. Every row sums to the equity change exactly (tested).

Conventions: P&L in the account's currency; ``return_contribution`` is P&L over the
starting cash; **turnover** is one-way, annualised: ``½ Σ_t Σ_s |Δ(c_k·W_k,s)|`` of target
weights (drift not counted) times periods-per-year over bars; **component VaR** is the
delta-normal 99 % one-bar VaR of the book's realised returns decomposed by sleeve (Euler,
:func:`workbench.risk.var.delta_normal_var` on each sleeve's P&L over the previous
equity, from the first allocation on: the flat warm-up is not a sample of the book's
risk): the components sum to the VaR of their total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.risk.var import delta_normal_var
from workbench.strategy.base import panel_field
from workbench.strategy.metrics import periods_per_year
from workbench.strategy.result import BacktestResult
from workbench.trading.enums import FillTiming

__all__ = ["Attribution", "attribution"]

UNATTRIBUTED, OTHER = "unattributed", "other"
_EPS = 1e-12


@dataclass
class Attribution:
    """A book's P&L, fees, turnover and risk by sleeve (module notes)."""

    pnl: pd.DataFrame  # bars × (sleeves, unattributed, other): currency, net of fees; rows sum to Δequity
    fees: pd.DataFrame  # bars × (sleeves, unattributed): fees paid (positive)
    summary: pd.DataFrame  # one row per sleeve: pnl, fees, return_contribution, turnover, component_var...
    capital: pd.DataFrame  # bars × sleeves: the capital weights in force

    def figure(self) -> Any:
        """Cumulative P&L of each sleeve beside the book's (plotly)."""
        import plotly.graph_objects as go

        cum = self.pnl.cumsum()
        fig = go.Figure([go.Scatter(x=cum.index, y=cum[c], name=c) for c in cum.columns if cum[c].abs().max() > 0])
        fig.add_trace(go.Scatter(x=cum.index, y=cum.sum(axis=1), name="book", line={"width": 3, "color": "black"}))
        fig.update_layout(title="Cumulative P&L by sleeve (net of fees)", yaxis_title="P&L", hovermode="x unified")
        return fig


def _shares(parts: np.ndarray) -> np.ndarray:
    """sleeves × bars × symbols contributions → each sleeve's share of their sum (NaN: none)."""
    total = parts.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(total) > _EPS, parts / total, np.nan)


def _lagged(a: np.ndarray, k: int) -> np.ndarray:
    """``a`` shifted ``k`` bars later along axis 1 (zeros before)."""
    if k == 0:
        return a
    out = np.zeros_like(a)
    out[:, k:] = a[:, :-k]
    return out


def _column(symbol: str, symbols: list[str]) -> int:
    """The panel column of a fill's or a position's symbol ("GOOG.SAMPLE" is GOOG's)."""
    for name in (symbol, symbol.split(".")[0]):
        if name in symbols:
            return symbols.index(name)
    raise ParameterError(f"attribution: {symbol!r} is not a symbol of the panel {symbols}")


def _fill_pnl(result: BacktestResult, symbols: list[str], close: pd.DataFrame, mult: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(trading P&L before fees, fees), bars × symbols, from the fills."""
    trade, fees = np.zeros(close.shape), np.zeros(close.shape)
    f = result.fills
    if len(f):
        rows = close.index.get_indexer(pd.DatetimeIndex(f["ts"]))
        if (rows < 0).any():
            raise ParameterError(f"attribution: a fill at {f['ts'].iloc[int(np.argmax(rows < 0))]} is not a bar of the prices")
        cols = np.array([_column(str(s), symbols) for s in f["symbol"]])
        signed = np.where(f["side"].astype(str).str.upper().str.endswith("BUY"), 1.0, -1.0) * f["quantity"].to_numpy(float)
        c = close.to_numpy()[rows, cols]
        np.add.at(trade, (rows, cols), signed * (c - f["price"].to_numpy(float)) * mult[cols])
        np.add.at(fees, (rows, cols), f["fee"].to_numpy(float))
    return trade, fees


def _same_data(result: BacktestResult, prices: pd.DataFrame) -> None:
    """The panel must be the one the run used (same symbols in order, bars and SHA-256):
    the plan is rebuilt from it, and another panel would be split by another plan."""
    from workbench.api import data_id

    symbols = [str(s) for s in dict.fromkeys(prices.columns.get_level_values(0))] \
        if isinstance(prices.columns, pd.MultiIndex) else []  # fmt: skip
    if not symbols:
        raise ParameterError("attribution needs the (symbol, field) panel the book ran on")
    ran, given = result.spec.data, data_id(prices, symbols)
    if ran is not None and (ran.symbols, ran.bars, ran.sha256) != (given.symbols, given.bars, given.sha256):
        raise ParameterError(f"attribution needs the panel the run used: it ran on {list(ran.symbols)}, "
                             f"{ran.bars} bars {ran.start} .. {ran.end}; got {symbols}, {given.bars} bars "
                             f"{given.start} .. {given.end}")  # fmt: skip


def attribution(result: BacktestResult, prices: pd.DataFrame, *, confidence: float = 0.99) -> Attribution:
    """Split a :class:`~workbench.research.book.MultiStrategy` (or AssetAllocation)
    backtest into its sleeves (module notes); ``prices`` is the panel it ran on."""
    strategy = result.spec.strategy
    if not hasattr(strategy, "plan"):
        raise ParameterError(f"attribution needs a MultiStrategy or AssetAllocation backtest, got {strategy.name}")
    _same_data(result, prices)
    plan = strategy.plan(prices)
    close = panel_field(prices, "Close")
    symbols = list(close.columns)
    names = list(plan.contributions)
    parts = np.stack([plan.contributions[n][symbols].to_numpy() for n in names])
    lag = 0 if result.spec.fill_timing == FillTiming.SIGNAL_CLOSE else 1
    order = [_column(inst.symbol, symbols) for inst in result.spec.instruments]
    mult = np.ones(len(symbols))
    mult[order] = [inst.multiplier for inst in result.spec.instruments]
    pos = result.positions.to_frame() if isinstance(result.positions, pd.Series) else result.positions
    q = np.zeros(close.shape)
    for col in pos.columns:
        q[:, _column(str(col), symbols)] = pos[col].to_numpy(dtype="float64")
    held = np.vstack([np.zeros((1, q.shape[1])), q[:-1]])
    c = close.to_numpy()
    hold_pnl = held * np.vstack([np.zeros((1, c.shape[1])), np.diff(c, axis=0)]) * mult
    trade_pnl, fees = _fill_pnl(result, symbols, close, mult)
    hold_share = _shares(_lagged(parts, lag + 1))  # the target q_{t-1} was traded towards
    change = parts - _lagged(parts, 1)
    move_share = _shares(_lagged(change, lag))  # the change of target the bar's fills carry out
    now_share = _shares(_lagged(parts, lag))
    move_share = np.where(np.isnan(move_share), now_share, move_share)
    move_share = np.where(np.isnan(move_share), hold_share, move_share)

    def split(x: np.ndarray, share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mine = np.nan_to_num(share * x[None], nan=0.0).sum(axis=2)
        rest = np.where(np.isnan(share[0]), x, 0.0).sum(axis=1)
        return mine, rest

    h, h_rest = split(hold_pnl, hold_share)
    t, t_rest = split(trade_pnl - fees, move_share)
    fee_k, fee_rest = split(fees, move_share)
    pnl = pd.DataFrame((h + t).T, index=close.index, columns=names)
    pnl[UNATTRIBUTED] = h_rest + t_rest
    pnl[OTHER] = result.equity.diff().fillna(result.equity.iloc[0] - result.spec.cash).to_numpy() - pnl.sum(axis=1)
    fee_frame = pd.DataFrame(fee_k.T, index=close.index, columns=names).assign(**{UNATTRIBUTED: fee_rest})
    summary = _summary(pnl, fee_frame, change, names, result, plan.capital, confidence)
    return Attribution(pnl, fee_frame, summary, plan.capital)


def _summary(pnl: pd.DataFrame, fees: pd.DataFrame, change: np.ndarray, names: list[str], result: BacktestResult,
             capital: pd.DataFrame, confidence: float) -> pd.DataFrame:  # fmt: skip
    ppy = result.spec.periods_per_year or periods_per_year(pnl.index)
    total = pnl.to_numpy().sum()
    prev = result.equity.shift(1).fillna(result.spec.cash)
    invested = np.flatnonzero(capital.sum(axis=1).to_numpy() > 0)
    rets = pnl.div(prev, axis=0).iloc[invested[0] if len(invested) else len(pnl):]  # not the flat warm-up
    live = [c for c in rets.columns if rets[c].std(ddof=1) > 0]
    comp = pd.Series(0.0, index=rets.columns)
    var_total = np.nan
    if live:
        pv = delta_normal_var(pd.Series(1.0, index=live), returns=rets[live], confidence=confidence)
        comp[live] = pv.component
        var_total = pv.value
    out = pd.DataFrame(index=pd.Index([*names, UNATTRIBUTED, OTHER], name="sleeve"))
    out["pnl"] = pnl.sum()
    out["fees"] = fees.sum().reindex(out.index).fillna(0.0)
    out["return_contribution"] = out["pnl"] / result.spec.cash
    out["pnl_share"] = out["pnl"] / total if total else np.nan
    turnover = 0.5 * np.abs(change).sum(axis=(1, 2)) * ppy / max(len(pnl) - 1, 1)
    out["turnover"] = pd.Series(turnover, index=names).reindex(out.index)
    out["mean_capital"] = capital.mean().reindex(out.index)
    out["component_var"] = comp.reindex(out.index)
    out["var_share"] = out["component_var"] / var_total if np.isfinite(var_total) and var_total else np.nan
    out.attrs = {"var": var_total, "confidence": confidence, "periods_per_year": ppy}
    return out
