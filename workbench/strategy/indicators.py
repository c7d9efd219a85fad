"""The indicator port: the technical indicators strategies compute with, owned by the domain.

Strategies need moving averages, RSI, Bollinger bands and the like, but the library that
computes them (TA-Lib today) is a vendor detail. This module states what strategies may
ask for (:class:`IndicatorLibrary`); an adapter implements it and the composition root
installs it once (``import workbench`` installs the TA-Lib adapter,
:mod:`workbench.adapters.indicators`). A strategy asks :func:`indicators` at the moment it
computes, never at import, so a test or a notebook can swap the library in between.

The contract every implementation keeps (the strategies' warm-up rules rely on it):

- inputs are pandas Series, outputs Series on the same index;
- a value computed from an incomplete window is NaN, never a number;
- an input with a missing or non-finite value raises
  :class:`~workbench.errors.ParameterError` (a window silently restarting after a gap
  would be a different indicator), and so does a window out of range.

>>> import workbench  # the composition root installs TA-Lib
>>> import pandas as pd
>>> indicators().sma(pd.Series([1.0, 2.0, 3.0, 4.0]), 3).tolist()
[nan, nan, 2.0, 3.0]
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import pandas as pd

from workbench.errors import ParameterError, WorkbenchError

__all__ = ["IndicatorLibrary", "NoIndicatorLibraryError", "use_indicators", "indicators"]


@runtime_checkable
class IndicatorLibrary(Protocol):
    """Exactly the indicators the built-in strategies use (a module can implement it)."""

    def sma(self, close: pd.Series, window: int) -> pd.Series:
        """Simple moving average; NaN for the first ``window - 1`` bars."""
        ...

    def ema(self, close: pd.Series, window: int) -> pd.Series:
        """Exponential moving average seeded with the SMA of its first window."""
        ...

    def rsi(self, close: pd.Series, window: int = 14) -> pd.Series:
        """Wilder's RSI in [0, 100]; NaN for the first ``window`` bars."""
        ...

    def bbands(self, close: pd.Series, window: int = 20, k: float = 2.0) -> tuple[pd.Series, pd.Series, pd.Series]:
        """Bollinger bands (upper, middle, lower): SMA ± k population standard deviations."""
        ...

    def roc(self, close: pd.Series, window: int) -> pd.Series:
        """Rate of change over ``window`` bars as a fraction (C_t / C_{t-window} - 1)."""
        ...

    def stddev(self, close: pd.Series, window: int) -> pd.Series:
        """Rolling population standard deviation."""
        ...

    def natr(self, high: pd.Series, low: pd.Series, close: pd.Series, window: int = 14) -> pd.Series:
        """Normalised average true range, in percent of the close."""
        ...

    def macd(self, close: pd.Series, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.Series:
        """MACD histogram (MACD line minus its signal line)."""
        ...

    def hedge_ratio(self, y: pd.Series, x: pd.Series, window: int) -> pd.Series:
        """Rolling OLS slope of ``y`` on ``x`` over ``window`` bars."""
        ...


class NoIndicatorLibraryError(WorkbenchError, RuntimeError):
    """A strategy asked for indicators before the composition root installed a library."""


_library: IndicatorLibrary | None = None


def use_indicators(lib: IndicatorLibrary) -> IndicatorLibrary | None:
    """Install ``lib`` as the indicator library; returns the one it replaces (to restore it).

    Checked here rather than at first use, so a library missing a function fails where it
    is installed, not deep inside a backtest.
    """
    missing = [name for name in _protocol_members() if not callable(getattr(lib, name, None))]
    if missing:
        raise ParameterError(f"{lib!r} is not an IndicatorLibrary: missing {', '.join(missing)}")
    global _library
    previous, _library = _library, lib
    return previous


def indicators() -> IndicatorLibrary:
    """The installed indicator library; a typed error (not an AttributeError on None) if none is."""
    if _library is None:
        raise NoIndicatorLibraryError(
            "no indicator library is installed: import workbench (it installs TA-Lib) or call "
            "workbench.strategy.indicators.use_indicators(lib) first"
        )
    return _library


def _protocol_members() -> list[str]:
    return sorted(n for n, v in vars(IndicatorLibrary).items() if callable(v) and not n.startswith("_"))
