"""Technical indicators through TA-Lib, with the warm-up made explicit.

Every function takes pandas Series (one per input: close, or high/low/close) and returns
Series on the same index. The first ``lookback`` values are NaN: TA-Lib's own lookback
(``talib.abstract.Function(name).lookback``) is the number of bars before the window is
complete, so **no value is ever computed from an incomplete window**. Strategies treat a
NaN indicator as "not ready" and stay flat.

Inputs must be free of NaN: TA-Lib would silently restart its windows after a gap, so a
gap raises :class:`~workbench.errors.ParameterError` naming the first missing timestamp.
Align panels with ``align="intersection"`` or ``"ffill"`` before computing indicators.

This module is the TA-Lib implementation of the domain's indicator port
(:class:`workbench.strategy.indicators.IndicatorLibrary`); :func:`install` makes it the one
the strategies use, and ``import workbench`` calls it.

>>> import pandas as pd
>>> s = pd.Series([1.0, 2.0, 3.0, 4.0])
>>> sma(s, 3).tolist()
[nan, nan, 2.0, 3.0]
>>> lookback("SMA", timeperiod=3)
2
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import talib
from talib import abstract

from workbench.errors import ParameterError
from workbench.strategy.indicators import IndicatorLibrary, use_indicators

__all__ = [
    "lookback", "sma", "ema", "rsi", "bbands", "roc", "stddev", "natr", "adx",
    "macd", "correl", "hedge_ratio", "talib_version", "install",
]  # fmt: skip

talib_version: str = talib.__version__


def lookback(name: str, **params: float) -> int:
    """Bars TA-Lib needs before its first complete value of ``name`` with ``params``."""
    fn = abstract.Function(name)
    if params:
        fn.set_parameters(params)
    return int(fn.lookback)


def _arr(x: pd.Series, what: str) -> np.ndarray:
    if not isinstance(x, pd.Series):
        raise ParameterError(f"{what} must be a pandas Series, got {type(x).__name__}")
    a = x.to_numpy(dtype="float64")
    bad = ~np.isfinite(a)
    if bad.any():
        i = int(np.argmax(bad))
        raise ParameterError(
            f"indicator input {what!r} has a missing or non-finite value {float(a[i])!r} at "
            f"{x.index[i]}; TA-Lib would restart its window there (align or fill first)"
        )
    return a


TALIB_MAX_PERIOD = 100_000  # TA-Lib's own ceiling (it answers TA_BAD_PARAM above it)


def _window(name: str, value: int, minimum: int = 2) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value > TALIB_MAX_PERIOD:
        raise ParameterError(f"{name} must be <= {TALIB_MAX_PERIOD:,} (TA-Lib's limit), got {value!r}")
    return int(value)


def _out(values: np.ndarray, like: pd.Series, name: str) -> pd.Series:
    return pd.Series(values, index=like.index, name=name)


def sma(close: pd.Series, window: int) -> pd.Series:
    """Simple moving average; NaN for the first ``window - 1`` bars."""
    return _out(talib.SMA(_arr(close, "close"), _window("window", window)), close, f"sma_{window}")


def ema(close: pd.Series, window: int) -> pd.Series:
    """Exponential moving average (TA-Lib seeds it with the SMA of the first window)."""
    return _out(talib.EMA(_arr(close, "close"), _window("window", window)), close, f"ema_{window}")


def rsi(close: pd.Series, window: int = 14) -> pd.Series:
    """Wilder's RSI in [0, 100]; NaN for the first ``window`` bars."""
    return _out(talib.RSI(_arr(close, "close"), _window("window", window)), close, f"rsi_{window}")


def bbands(close: pd.Series, window: int = 20, k: float = 2.0) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Bollinger bands (upper, middle, lower): SMA ± k population standard deviations."""
    if not (np.isfinite(k) and k > 0):
        raise ParameterError(f"k must be > 0, got {k!r}")
    up, mid, lo = talib.BBANDS(_arr(close, "close"), _window("window", window), float(k), float(k), 0)
    return _out(up, close, "bb_upper"), _out(mid, close, "bb_middle"), _out(lo, close, "bb_lower")


def roc(close: pd.Series, window: int) -> pd.Series:
    """Rate of change over ``window`` bars as a fraction (TA-Lib ROCR - 1)."""
    return _out(talib.ROCR(_arr(close, "close"), _window("window", window, 1)) - 1.0, close, f"roc_{window}")


def stddev(close: pd.Series, window: int) -> pd.Series:
    """Rolling population standard deviation."""
    return _out(talib.STDDEV(_arr(close, "close"), _window("window", window), 1.0), close, f"std_{window}")


def natr(high: pd.Series, low: pd.Series, close: pd.Series, window: int = 14) -> pd.Series:
    """Normalised average true range, in percent of the close."""
    out = talib.NATR(_arr(high, "high"), _arr(low, "low"), _arr(close, "close"), _window("window", window))
    return _out(out, close, f"natr_{window}")


def adx(high: pd.Series, low: pd.Series, close: pd.Series, window: int = 14) -> pd.Series:
    """Average directional index."""
    out = talib.ADX(_arr(high, "high"), _arr(low, "low"), _arr(close, "close"), _window("window", window))
    return _out(out, close, f"adx_{window}")


def macd(close: pd.Series, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.Series:
    """MACD histogram (MACD line minus its signal line)."""
    _, _, hist = talib.MACD(_arr(close, "close"), _window("fast", fast), _window("slow", slow), _window("signal", signal, 1))
    return _out(hist, close, "macd_hist")


def correl(x: pd.Series, y: pd.Series, window: int) -> pd.Series:
    """Rolling Pearson correlation of ``x`` and ``y``."""
    return _out(talib.CORREL(_arr(x, "x"), _arr(y, "y"), _window("window", window)), x, f"correl_{window}")


def hedge_ratio(y: pd.Series, x: pd.Series, window: int) -> pd.Series:
    """Rolling OLS slope of ``y`` on ``x``: correlation × std(y) / std(x), all TA-Lib."""
    c = correl(x, y, window).to_numpy()
    sx, sy = stddev(x, window).to_numpy(), stddev(y, window).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(sx > 0, c * sy / sx, np.nan)
    return _out(beta, y, f"beta_{window}")


def install() -> IndicatorLibrary | None:
    """Make this module the strategies' indicator library; returns the one it replaces.

    The module itself is the implementation (its functions are the port's), so the
    numbers are TA-Lib's exactly, whichever way a strategy reaches them.
    """
    return use_indicators(sys.modules[__name__])
