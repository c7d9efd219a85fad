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
  ``(1 + rf) ** (1 / ppy) - 1`` and subtracted from each return (default 0). It must be
  finite and > -1, and a given ``ppy`` finite and > 0 (:class:`ParameterError` otherwise).
- **Volatility** is the sample standard deviation (ddof = 1) × √ppy.
- **Sharpe** = mean(excess) / std(excess, ddof=1) × √ppy (the empyrical/quantstats
  convention); NaN when the standard deviation is 0.
- **CAGR** uses calendar time: ``(end / start) ** (365.25 days / elapsed) - 1``.
- **Max drawdown** is the most negative ``equity / running max - 1`` (a fraction ≤ 0).
- **Win rate** is the share of closed trades with net P&L > 0; NaN with no trades.
- **Annual return** (:func:`annual_return`) is the *geometric* per-period convention of
  empyrical/quantstats: ``prod(1 + r) ** (ppy / n) - 1`` over the ``n`` returns. CAGR is
  the calendar-time version; they agree when bars are evenly spaced.
- **Downside risk** = sqrt(mean(min(r - required, 0)²)) × √ppy, the mean over *all*
  returns (empyrical); **Sortino** = mean(r - required) × ppy / downside risk (``inf``
  when no return is below ``required``).
- **Calmar** = annual return / |max drawdown| (NaN without a drawdown).
- **Max drawdown duration** is the longest spell from a peak until equity is back at it
  (or the end of data), in calendar time.
- **Profit factor** = gross profit / gross loss of closed trades (``inf`` without a
  losing trade); **expectancy** = mean net P&L per closed trade, in account currency.
- **Exposure** = share of bars that end with a non-zero position; **turnover** = traded
  notional / mean equity, per year (× ppy / bars).
- **Skewness and kurtosis** are the bias-corrected sample estimators of pandas; kurtosis
  is reported as *excess* kurtosis (normal = 0) and converted to raw (normal = 3) where a
  formula needs it.
- **Probabilistic Sharpe ratio** (Bailey & López de Prado, 2012) = Φ((SR - SR*) √(n-1) /
  √(1 - γ₃ SR + (γ₄ - 1)/4 SR²)), with SR the *per-period* (not annualised) Sharpe, γ₃ the
  skewness, γ₄ the raw kurtosis and SR* the benchmark (0 by default).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

from workbench.errors import ParameterError

__all__ = [
    "check_risk_free_rate",
    "check_periods_per_year",
    "periods_per_year",
    "returns_from_equity",
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe_ratio",
    "drawdown",
    "max_drawdown",
    "win_rate",
    "annual_return",
    "downside_risk",
    "sortino_ratio",
    "calmar_ratio",
    "max_drawdown_duration",
    "profit_factor",
    "expectancy",
    "exposure",
    "turnover",
    "probabilistic_sharpe_ratio",
    "summary",
    "STAT_CONVENTIONS",
]

_DAY_NS = 86_400 * 10**9


def _real(value: object) -> float:
    return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan


def check_risk_free_rate(rf: object) -> float:
    """The annual risk-free rate as a float: finite and > -1 (a fraction, 0.04 = 4%).

    At -1 or below ``(1 + rf) ** (1 / ppy)`` has no real value and NaN turns every Sharpe
    into NaN, so both are a :class:`ParameterError` naming the value instead.
    """
    v = _real(rf)
    if not (math.isfinite(v) and v > -1):
        raise ParameterError(f"risk_free_rate must be a finite annual rate > -1 (0.04 = 4%), got risk_free_rate={rf!r}")
    return v


def check_periods_per_year(ppy: object) -> float:
    """``periods_per_year`` as a float: finite and > 0 (it scales every annualised figure)."""
    v = _real(ppy)
    if not (math.isfinite(v) and v > 0):
        raise ParameterError(f"periods_per_year must be a finite number > 0, got periods_per_year={ppy!r}")
    return v


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
    rf = check_risk_free_rate(rf)
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


def annual_return(returns: pd.Series, ppy: float) -> float:
    """Geometric annualised return: ``prod(1 + r) ** (ppy / n) - 1`` (empyrical)."""
    r = returns.dropna()
    if len(r) < 1:
        return math.nan
    growth = float(np.prod(1.0 + r.to_numpy()))
    if growth <= 0:
        return -1.0
    return growth ** (ppy / len(r)) - 1.0


def downside_risk(returns: pd.Series, ppy: float, required: float = 0.0) -> float:
    """sqrt(mean(min(r - required, 0)²)) × √ppy over all (non-NaN) returns."""
    r = returns.dropna().to_numpy()
    if len(r) < 1:
        return math.nan
    below = np.minimum(r - required, 0.0)
    return float(np.sqrt(np.mean(below**2)) * math.sqrt(ppy))


def sortino_ratio(returns: pd.Series, ppy: float, required: float = 0.0) -> float:
    """mean(r - required) × ppy / downside risk; ``inf`` when nothing is below ``required``."""
    r = returns.dropna()
    if len(r) < 2:
        return math.nan
    mean = float((r - required).mean()) * ppy
    dr = downside_risk(r, ppy, required)
    if dr == 0:
        return math.inf if mean > 0 else (math.nan if mean == 0 else -math.inf)
    return mean / dr


def calmar_ratio(returns: pd.Series, ppy: float) -> float:
    """Annual return / |max drawdown| of the returns compounded from a starting value of 1."""
    r = returns.dropna()
    if len(r) < 2:
        return math.nan
    wealth = (1.0 + r).cumprod().to_numpy()
    mdd = float(np.min(wealth / np.maximum(np.maximum.accumulate(wealth), 1.0) - 1.0))
    return annual_return(r, ppy) / abs(mdd) if mdd < 0 else math.nan


def max_drawdown_duration(equity: pd.Series) -> pd.Timedelta:
    """The longest time from a peak until equity is back at it (or the data ends).

    >>> idx = pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC")
    >>> max_drawdown_duration(pd.Series([1.0, 2.0, 1.5, 2.0, 1.0], index=idx))
    Timedelta('2 days 00:00:00')
    """
    values = equity.to_numpy(dtype="float64")
    if len(values) < 2:
        return pd.Timedelta(0)
    peak = np.maximum.accumulate(values)
    underwater = values < peak
    # index of the latest peak at or before each bar
    peak_pos = np.maximum.accumulate(np.where(underwater, 0, np.arange(len(values))))
    ns = equity.index.as_unit("ns").asi8
    recovered = np.flatnonzero(~underwater[1:] & underwater[:-1]) + 1  # first bar back at the peak
    spells = ns[recovered] - ns[peak_pos[recovered - 1]]
    if underwater[-1]:
        spells = np.append(spells, ns[-1] - ns[peak_pos[-1]])
    return pd.Timedelta(int(spells.max()), "ns") if len(spells) else pd.Timedelta(0)


def profit_factor(trade_pnl: pd.Series) -> float:
    """Gross profit / gross loss of closed trades; ``inf`` with no loss, NaN with no trades."""
    pnl = trade_pnl.dropna()
    if len(pnl) == 0:
        return math.nan
    gain, loss = float(pnl[pnl > 0].sum()), float(-pnl[pnl < 0].sum())
    if loss == 0:
        return math.inf if gain > 0 else math.nan
    return gain / loss


def expectancy(trade_pnl: pd.Series) -> float:
    """Mean net P&L per closed trade (account currency); NaN with no trades."""
    pnl = trade_pnl.dropna()
    return float(pnl.mean()) if len(pnl) else math.nan


def exposure(positions: pd.Series | pd.DataFrame) -> float:
    """Share of bars that end with a non-zero position (in any symbol, for a panel)."""
    nz = positions.to_numpy() != 0
    if nz.ndim == 2:
        nz = nz.any(axis=1)
    return float(nz.mean()) if len(positions) else math.nan


def turnover(fills: pd.DataFrame, equity: pd.Series, ppy: float) -> float:
    """Traded notional / mean equity, per year (× ppy / number of bars)."""
    if len(equity) == 0:
        return math.nan
    notional = float((fills["quantity"].abs() * fills["price"]).sum()) if len(fills) else 0.0
    return notional / float(equity.mean()) * ppy / len(equity)


def probabilistic_sharpe_ratio(returns: pd.Series, benchmark_sr: float = 0.0) -> float:
    """P(true per-period Sharpe > ``benchmark_sr``) given skewness and kurtosis (see module)."""
    from statistics import NormalDist

    r = returns.dropna()
    n = len(r)
    if n < 4:
        return math.nan
    sd = float(r.std(ddof=1))
    if sd == 0:
        return math.nan
    sr = float(r.mean()) / sd
    skew = float(r.skew())
    raw_kurt = float(r.kurt()) + 3.0  # pandas gives excess kurtosis
    var = 1.0 - skew * sr + (raw_kurt - 1.0) / 4.0 * sr**2
    if var <= 0:
        return math.nan
    return NormalDist().cdf((sr - benchmark_sr) * math.sqrt(n - 1) / math.sqrt(var))


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
    "annual_return": "geometric: prod(1 + r) ** (periods_per_year / n) - 1",
    "sortino": "mean(r) * ppy / (sqrt(mean(min(r, 0)^2)) * sqrt(ppy)); required return 0",
    "calmar": "annual_return / |max_drawdown|",
    "max_drawdown_duration": "longest time from a peak until equity is back at it (or the data ends)",
    "profit_factor": "gross profit / gross loss of closed trades (net of fees)",
    "expectancy": "mean net P&L per closed trade, account currency",
    "exposure": "share of bars ending with a non-zero position",
    "turnover": "traded notional / mean equity, per year",
    "skew": "bias-corrected sample skewness of per-bar returns",
    "kurtosis": "bias-corrected sample EXCESS kurtosis of per-bar returns (normal = 0)",
    "psr": "probabilistic Sharpe ratio vs SR* = 0, per-period SR, Bailey & Lopez de Prado (2012)",
}


def summary(
    equity: pd.Series,
    trade_pnl: pd.Series,
    initial: float,
    ppy: float | None = None,
    rf: float = 0.0,
    positions: pd.Series | pd.DataFrame | None = None,
    fills: pd.DataFrame | None = None,
) -> pd.Series:
    """The headline statistics of a backtest; see :data:`STAT_CONVENTIONS`."""
    ppy = periods_per_year(equity.index) if ppy is None else check_periods_per_year(ppy)
    rf = check_risk_free_rate(rf)
    rets = returns_from_equity(equity)
    extra = {
        "annual_return": annual_return(rets, ppy),
        "sortino": sortino_ratio(rets, ppy),
        "calmar": calmar_ratio(rets, ppy),
        "max_drawdown_duration": max_drawdown_duration(equity),
        "profit_factor": profit_factor(trade_pnl),
        "expectancy": expectancy(trade_pnl),
        "exposure": exposure(positions) if positions is not None else math.nan,
        "turnover": turnover(fills, equity, ppy) if fills is not None else math.nan,
        "skew": float(rets.skew()) if len(rets) > 2 else math.nan,
        "kurtosis": float(rets.kurt()) if len(rets) > 3 else math.nan,
        "psr": probabilistic_sharpe_ratio(rets),
    }
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
            **extra,
            "periods_per_year": ppy,
            "risk_free_rate": rf,
        },
        dtype=object,
        name="stats",
    )
