"""Risk-based sizing policies: how much to trade so that a trade risks what it should.

Each is a :class:`~workbench.trading.sizing.Sizer` (usable by every engine that takes the
spec's ``size=``) or builds one:

- :class:`FixedFractional` risks ``risk`` of current equity on a trade whose stop is
  ``stop`` below (or above) the entry: a position worth risk / stop of equity (capped at
  1), i.e. quantity = risk × equity / (stop × price × multiplier), in whole lots, with
  fees and slippage inside that budget, never more than the cash (or, for a short, the
  equity) pays for. Pair it with the same ``stop_loss`` on the strategy's target.
- :func:`kelly_from_trades` and :func:`kelly_from_returns` give the Kelly fraction of
  equity, scaled by ``fraction`` (0.5 = "half Kelly") and capped at ``cap``, as a
  :class:`~workbench.trading.sizing.PercentOfEquity` (so the vectorized engine runs it
  too). Conventions: from trades, the binary-bet Kelly f* = W − (1 − W) / R with W the
  share of winning trades and R = mean win / |mean loss| (Kelly 1956; Thorp 2006); from
  returns, the continuous-time f* = μ / σ² of per-period simple returns (sample mean and
  variance, ddof = 1, no risk-free rate). No edge (f* <= 0) is a ParameterError, not a
  zero position.
- :class:`VolatilityTarget` and :class:`ATRRisk` size from the price history: each engine
  binds them to the run's bars (``bind(prices)`` → a
  :class:`~workbench.trading.sizing.BarFractions`) and an order decided at bar s spends a
  fraction f_s of equity known at s's close (σ̂ and ATR use bars up to and including s):

  - vol target: f_s = min(cap, target / σ̂_s), σ̂_s the annualised EWMA volatility of
    :func:`ewma_volatility` (simple close-to-close returns, RiskMetrics λ = 0.94);
  - ATR risk: quantity ≈ risk × equity / (k × ATR_s × multiplier), i.e. f_s = min(cap,
    risk × P / (k × ATR_s)) at the order's reference price P, ATR from :func:`wilder_atr`.

  The budget f_s × equity includes fees and slippage (as for PercentOfEquity), so with
  costs the quantity is a little under the formula. Bars inside the warm-up size 0 (no
  position). ``cap`` is at most 1: a sizer does not see the account, and more than 1×
  equity would be rejected by a cash account (vectorbt, too, runs cash accounts only), so
  leverage above 1 on a MarginAccount is not offered here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.trading.sizing import BarFractions, CostFn, PercentOfEquity, _affordable
from workbench.trading.values import Instrument

__all__ = ["FixedFractional", "VolatilityTarget", "ATRRisk", "ewma_volatility", "wilder_atr", "kelly_fraction",
           "kelly_from_trades", "kelly_from_returns"]


def _fraction(owner: str, field: str, value: object, upper: float = 1.0) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and 0 < value <= upper
    if not ok:
        raise ParameterError(f"{owner}: {field} must be in (0, {upper:g}], got {field}={value!r}")
    return float(value)


@dataclass(frozen=True, kw_only=True, slots=True)
class FixedFractional:
    """Risk ``risk`` of equity per trade to a stop ``stop`` away (both fractions)."""

    risk: float
    stop: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "risk", _fraction("FixedFractional", "risk", self.risk))
        object.__setattr__(self, "stop", _fraction("FixedFractional", "stop", self.stop))

    @property
    def fraction(self) -> float:
        """The fraction of equity a position is worth: risk / stop, at most 1 (no leverage)."""
        return min(self.risk / self.stop, 1.0)

    def size(self, price: float, equity: float, cash: float, instrument: Instrument, cost: CostFn) -> float:
        """The whole lots worth ``fraction`` of equity, fees and slippage inside that budget
        (so the loss at the stop, costs included, stays within ``risk`` of equity): what
        :class:`~workbench.trading.sizing.PercentOfEquity` spends, so both engines run it."""
        return _affordable(min(self.fraction * equity, max(equity, 0.0)), price, instrument, cost)


def _positive(owner: str, field: str, value: object) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok:
        raise ParameterError(f"{owner}: {field} must be a finite number > 0, got {field}={value!r}")
    return float(value)


def _count(owner: str, field: str, value: object) -> int:
    if not (isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 1):
        raise ParameterError(f"{owner}: {field} must be an int >= 1, got {field}={value!r}")
    return int(value)


def _decay(owner: str, lam: object) -> float:
    if not (isinstance(lam, int | float) and not isinstance(lam, bool) and 0 < lam < 1):
        raise ParameterError(f"{owner}: lam must be in (0, 1), got lam={lam!r}")
    return float(lam)


def _recursion(x: np.ndarray, keep: float, seed: float) -> np.ndarray:
    """y_t = keep × y_{t-1} + (1 − keep) × x_t from y_{-1} = ``seed``, in C (scipy's lfilter
    runs this exact recursion: one multiply-add per bar, no Python loop)."""
    from scipy.signal import lfilter  # imported on first bind: keeps `import workbench` fast

    if len(x) == 0:
        return np.empty(0)
    y, _ = lfilter([1.0 - keep], [1.0, -keep], x, zi=[keep * seed])
    return np.asarray(y, dtype="float64")


def _column(prices: pd.DataFrame, name: str, owner: str) -> np.ndarray:
    if name not in prices:
        raise ParameterError(f"{owner}: bind needs the OHLCV frame of one instrument, got columns {list(prices.columns)!r}")
    return prices[name].to_numpy(dtype="float64")


def ewma_volatility(close: np.ndarray | pd.Series, lam: float = 0.94, warmup: int = 20,
                    periods_per_year: float = 252.0) -> np.ndarray:  # fmt: skip
    """Annualised EWMA volatility at each close (RiskMetrics recursion, zero mean).

    r_t = C_t / C_{t-1} − 1 (simple returns, t >= 1); seed σ²_w = mean(r_1² .. r_w²) at
    bar w = ``warmup`` (the zero-mean second moment, the same estimator the recursion
    averages); then σ²_t = λ σ²_{t-1} + (1 − λ) r_t². Returns √(σ²_t × periods_per_year),
    NaN for bars t < warmup (fewer than ``warmup`` returns seen). Row t uses closes up to t.

    >>> v = ewma_volatility(np.array([100.0, 101.0, 100.0, 102.0]), warmup=2)
    >>> bool(np.isnan(v[1])), round(float(v[2]), 4)
    (True, 0.158)
    """
    lam, warmup = _decay("ewma_volatility", lam), _count("ewma_volatility", "warmup", warmup)
    periods_per_year = _positive("ewma_volatility", "periods_per_year", periods_per_year)
    c = np.asarray(close, dtype="float64")
    out = np.full(len(c), np.nan)
    if len(c) <= warmup:
        return out
    r2 = np.diff(c) / c[:-1]
    r2 = r2 * r2  # r2[t-1] is r_t²
    seed = float(np.mean(r2[:warmup]))
    out[warmup] = seed
    out[warmup + 1 :] = _recursion(r2[warmup:], lam, seed)
    return np.sqrt(out * periods_per_year)


def wilder_atr(high: np.ndarray | pd.Series, low: np.ndarray | pd.Series, close: np.ndarray | pd.Series,
               window: int = 14) -> np.ndarray:  # fmt: skip
    """Average true range with Wilder's smoothing, as TA-Lib's ``ATR`` computes it.

    TR_t = max(H_t − L_t, |H_t − C_{t-1}|, |L_t − C_{t-1}|) for t >= 1 (bar 0 has no
    previous close and is not used); ATR_n = mean(TR_1 .. TR_n) at bar n = ``window``, then
    ATR_t = ((n − 1) ATR_{t-1} + TR_t) / n. NaN for bars t < window; row t uses bars up to t.
    """
    h, lo, c = (np.asarray(a, dtype="float64") for a in (high, low, close))
    n = _count("wilder_atr", "window", window)
    out = np.full(len(c), np.nan)
    if len(c) <= n:
        return out
    prev = c[:-1]
    tr = np.maximum(h[1:] - lo[1:], np.maximum(np.abs(h[1:] - prev), np.abs(lo[1:] - prev)))  # tr[t-1] is TR_t
    seed = float(np.mean(tr[:n]))
    out[n] = seed
    out[n + 1 :] = _recursion(tr[n:], (n - 1) / n, seed)
    return out


def _unbound(owner: str) -> ParameterError:
    return ParameterError(f"{owner} sizes from the price history: bind it to the run's bars first "
                          f"(sizer.bind(prices); every engine does)")  # fmt: skip


@dataclass(frozen=True, kw_only=True, slots=True)
class VolatilityTarget:
    """Hold ``target`` annualised volatility: f_s = min(cap, target / σ̂_s) of equity.

    σ̂_s is :func:`ewma_volatility` at the signal bar (decay ``lam``, seeded over the first
    ``warmup`` returns, annualised with √``periods_per_year``); signals before the warm-up
    open nothing. ``target`` and σ̂ are annual fractions (0.10 = 10 %).

    >>> VolatilityTarget(target=0.10).lam
    0.94
    """

    target: float
    lam: float = 0.94
    warmup: int = 20
    cap: float = 1.0
    periods_per_year: float = 252.0

    def __post_init__(self) -> None:
        name = "VolatilityTarget"
        object.__setattr__(self, "target", _positive(name, "target", self.target))
        object.__setattr__(self, "lam", _decay(name, self.lam))
        object.__setattr__(self, "warmup", _count(name, "warmup", self.warmup))
        object.__setattr__(self, "cap", _fraction(name, "cap", self.cap))
        object.__setattr__(self, "periods_per_year", _positive(name, "periods_per_year", self.periods_per_year))

    def bind(self, prices: pd.DataFrame) -> BarFractions:
        """The per-bar fractions on these bars (one instrument's OHLCV)."""
        vol = ewma_volatility(_column(prices, "Close", "VolatilityTarget"), self.lam, self.warmup, self.periods_per_year)
        with np.errstate(divide="ignore"):
            scale = self.target / vol  # σ̂ = 0 (flat prices): +inf, i.e. the cap
        scale.flags.writeable = False
        return BarFractions(scale=scale, cap=self.cap, source=repr(self))

    def size(self, price: float, equity: float, cash: float, instrument: Instrument, cost: CostFn) -> float:
        raise _unbound("VolatilityTarget")


@dataclass(frozen=True, kw_only=True, slots=True)
class ATRRisk:
    """Risk ``risk`` of equity to a stop ``k`` ATRs away: quantity = risk × equity /
    (k × ATR_s × multiplier), i.e. f_s = min(cap, risk × P / (k × ATR_s)) of equity at
    the order's reference price P.

    ATR_s is :func:`wilder_atr` over ``window`` bars at the signal bar (price units);
    signals before bar ``window`` open nothing. ``risk`` and ``cap`` are fractions of
    equity, ``k`` a multiple of ATR.
    """

    risk: float
    k: float = 2.0
    window: int = 14
    cap: float = 1.0

    def __post_init__(self) -> None:
        name = "ATRRisk"
        object.__setattr__(self, "risk", _fraction(name, "risk", self.risk))
        object.__setattr__(self, "k", _positive(name, "k", self.k))
        object.__setattr__(self, "window", _count(name, "window", self.window))
        object.__setattr__(self, "cap", _fraction(name, "cap", self.cap))

    def bind(self, prices: pd.DataFrame) -> BarFractions:
        """The per-bar risk per unit of price on these bars (one instrument's OHLCV)."""
        h, lo, c = (_column(prices, k, "ATRRisk") for k in ("High", "Low", "Close"))
        with np.errstate(divide="ignore"):
            scale = self.risk / (self.k * wilder_atr(h, lo, c, self.window))  # ATR = 0: +inf, the cap
        scale.flags.writeable = False
        return BarFractions(scale=scale, cap=self.cap, per_price=True, source=repr(self))

    def size(self, price: float, equity: float, cash: float, instrument: Instrument, cost: CostFn) -> float:
        raise _unbound("ATRRisk")


def kelly_fraction(win_rate: float, payoff: float) -> float:
    """Binary-bet Kelly: f* = W − (1 − W) / R (W in [0, 1], R = mean win / |mean loss| > 0).

    >>> round(kelly_fraction(0.55, 1.0), 10)
    0.1
    """
    if not (isinstance(win_rate, int | float) and 0 <= win_rate <= 1):
        raise ParameterError(f"win_rate must be in [0, 1], got win_rate={win_rate!r}")
    if not (isinstance(payoff, int | float) and math.isfinite(payoff) and payoff > 0):
        raise ParameterError(f"payoff must be a finite number > 0, got payoff={payoff!r}")
    return float(win_rate - (1.0 - win_rate) / payoff)


def _sized(f: float, fraction: float, cap: float, source: str) -> PercentOfEquity:
    fraction = _fraction("Kelly", "fraction", fraction)
    cap = _fraction("Kelly", "cap", cap)
    if not f > 0:
        raise ParameterError(f"no edge: the Kelly fraction from {source} is {f:.4g} <= 0 (do not size up a losing bet)")
    return PercentOfEquity(fraction=min(f * fraction, cap))


def kelly_from_trades(trades: pd.DataFrame, fraction: float = 0.5, cap: float = 1.0) -> PercentOfEquity:
    """Kelly sizing from closed trades (a result's ``trades``: their ``pnl``)."""
    pnl = pd.Series(trades["pnl"], dtype="float64").dropna()
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    if len(wins) == 0 or len(losses) == 0:
        raise ParameterError(f"Kelly from trades needs winning and losing trades, got {len(wins)} and {len(losses)}")
    f = kelly_fraction(len(wins) / len(pnl), float(wins.mean()) / abs(float(losses.mean())))
    return _sized(f, fraction, cap, f"{len(pnl)} trades")


def kelly_from_returns(returns: pd.Series | np.ndarray, fraction: float = 0.5, cap: float = 1.0) -> PercentOfEquity:
    """Kelly sizing f* = μ / σ² from per-period simple returns."""
    r = pd.Series(np.asarray(returns, dtype="float64")).dropna()
    if len(r) < 2:
        raise ParameterError(f"Kelly from returns needs at least 2 returns, got {len(r)}")
    var = float(r.var(ddof=1))
    if not var > 0:
        raise ParameterError("Kelly from returns needs returns that vary (variance 0)")
    return _sized(float(r.mean()) / var, fraction, cap, f"{len(r)} returns")
