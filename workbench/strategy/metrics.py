"""Performance metrics with stated conventions.

Conventions (used by every function here unless a parameter overrides them)
---------------------------------------------------------------------------
- **Returns** are simple per-bar returns of the equity curve, ``equity.pct_change()``;
  the leading NaN (the first bar has no previous value) is dropped, never filled with 0.
- **Periods per year** (``ppy``) come from the bar spacing (:func:`periods_per_year`):
  252 for daily bars of an exchange calendar (no weekend bars), 365 for daily bars of a
  24/7 market, 52 weekly, 12 monthly; intraday bars multiply bars-per-day (median) by
  252 or 365 (365 only when there are Saturday bars: FX opens on Sunday evening but is
  not a 24/7 market).
- **Risk-free rate** ``rf`` is an annual rate, converted per period as
  ``(1 + rf) ** (1 / ppy) - 1`` and subtracted from each return (default 0).
- **Volatility** is the sample standard deviation (ddof = 1) × √ppy.
- **Sharpe** = mean(excess) / std(excess, ddof=1) × √ppy (the empyrical/quantstats
  convention); NaN when the standard deviation is 0.
- **CAGR** uses calendar time: ``(end / start) ** (365.25 days / elapsed) - 1``.
- **Max drawdown** is the most negative ``equity / running max - 1`` (a fraction ≤ 0).
- **Win rate** is the share of closed trades with net P&L > 0; NaN with no trades.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = [
    "periods_per_year",
    "returns_from_equity",
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe_ratio",
    "drawdown",
    "max_drawdown",
    "win_rate",
    "summary",
    "STAT_CONVENTIONS",
]

_DAY_NS = 86_400 * 10**9


def periods_per_year(index: pd.DatetimeIndex) -> float:
    """Bars per year implied by the spacing of ``index`` (see module conventions).

    >>> periods_per_year(pd.bdate_range("2020-01-01", periods=30, tz="UTC"))
    252.0
    """
    if len(index) < 3:
        return 252.0
    step = float(np.median(np.diff(index.as_unit("ns").asi8)))
    # Saturday bars mark a 24/7 market; FX opens on Sunday evening but never trades Saturday.
    weekend = bool((index.day_of_week == 5).any())
    if step >= 27 * _DAY_NS:
        return 12.0
    if step >= 6 * _DAY_NS:
        return 52.0
    if step >= 0.9 * _DAY_NS:
        return 365.0 if weekend else 252.0
    per_day = float(pd.Series(index.normalize()).value_counts().median())
    return per_day * (365.0 if weekend else 252.0)


def returns_from_equity(equity: pd.Series) -> pd.Series:
    return equity.pct_change().iloc[1:].rename("returns")


def total_return(equity: pd.Series, initial: float | None = None) -> float:
    base = float(equity.iloc[0]) if initial is None else float(initial)
    return float(equity.iloc[-1]) / base - 1.0


def cagr(equity: pd.Series, initial: float | None = None) -> float:
    days = (equity.index[-1] - equity.index[0]).total_seconds() / 86_400
    if days <= 0:
        return math.nan
    growth = 1.0 + total_return(equity, initial)
    if growth <= 0:
        return -1.0
    return growth ** (365.25 / days) - 1.0


def annual_volatility(returns: pd.Series, ppy: float) -> float:
    r = returns.dropna()
    return float(r.std(ddof=1) * math.sqrt(ppy)) if len(r) > 1 else math.nan


def sharpe_ratio(returns: pd.Series, ppy: float, rf: float = 0.0) -> float:
    r = returns.dropna()
    if len(r) < 2:
        return math.nan
    excess = r - ((1.0 + rf) ** (1.0 / ppy) - 1.0)
    sd = float(excess.std(ddof=1))
    if sd == 0 or not math.isfinite(sd):
        return math.nan
    return float(excess.mean() / sd * math.sqrt(ppy))


def drawdown(equity: pd.Series) -> pd.Series:
    """Fractional drawdown from the running peak (≤ 0)."""
    return (equity / equity.cummax() - 1.0).rename("drawdown")


def max_drawdown(equity: pd.Series) -> float:
    return float(drawdown(equity).min())


def win_rate(trade_pnl: pd.Series) -> float:
    return float((trade_pnl > 0).mean()) if len(trade_pnl) else math.nan


STAT_CONVENTIONS: dict[str, str] = {
    "total_return": "final equity / starting cash - 1",
    "cagr": "calendar time: (final / start) ** (365.25 / days) - 1",
    "annual_volatility": "std(per-bar simple returns, ddof=1) * sqrt(periods_per_year)",
    "sharpe": "mean(excess) / std(excess, ddof=1) * sqrt(periods_per_year); rf annual, "
    "compounded to per-bar",
    "max_drawdown": "min(equity / running max - 1), a fraction <= 0",
    "n_trades": "closed trades (a partial close counts as its own trade)",
    "win_rate": "share of closed trades with P&L net of fees > 0",
    "periods_per_year": "252 exchange daily, 365 24/7 daily, 52 weekly, 12 monthly; "
    "intraday: bars per day x 252 or 365",
    "risk_free_rate": "annual rate used for Sharpe",
}


def summary(
    equity: pd.Series,
    trade_pnl: pd.Series,
    initial: float,
    ppy: float | None = None,
    rf: float = 0.0,
) -> pd.Series:
    """The headline statistics of a backtest; see :data:`STAT_CONVENTIONS`."""
    ppy = periods_per_year(equity.index) if ppy is None else float(ppy)
    rets = returns_from_equity(equity)
    return pd.Series(
        {
            "start": equity.index[0],
            "end": equity.index[-1],
            "final_equity": float(equity.iloc[-1]),
            "total_return": total_return(equity, initial),
            "cagr": cagr(equity, initial),
            "annual_volatility": annual_volatility(rets, ppy),
            "sharpe": sharpe_ratio(rets, ppy, rf),
            "max_drawdown": max_drawdown(equity),
            "n_trades": int(len(trade_pnl)),
            "win_rate": win_rate(trade_pnl),
            "periods_per_year": ppy,
            "risk_free_rate": rf,
        },
        dtype=object,
        name="stats",
    )
