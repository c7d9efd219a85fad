"""Drawdowns of an equity curve: underwater series, depth, duration and the worst episodes.

Conventions
-----------
- **Equity** is a Series of account values on a DatetimeIndex (or a backtest result, whose
  ``.equity`` is read), in time order, every value finite and the first > 0 (so the running
  peak is > 0). A value below 0 (a margin account blown through) gives a drawdown < -1.
- **Underwater** = equity / running max − 1, a fraction ≤ 0 (the same figure as
  :func:`workbench.strategy.metrics.drawdown`); **max drawdown** is its minimum and
  **current drawdown** its last value.
- An **episode** is a maximal run of bars strictly below the running peak. Its **peak** is
  the last bar at the peak before the run, its **trough** the lowest bar of the run (the
  first, on a tie), its **recovery** the first bar back at or above the peak, or ``None``
  while still underwater. **Depth** = trough / peak − 1.
- **Duration** runs from the peak bar to the recovery bar, or to the last bar when not
  recovered: in **bars** (the number of bar steps, recovery position − peak position) and
  in **calendar time** (recovery stamp − peak stamp), the convention of
  :func:`workbench.strategy.metrics.max_drawdown_duration`. The longest episode in bars
  and the longest in time can differ (weekends and gaps count in time only), so
  :func:`drawdown_duration` reports each maximum on its own.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import ParameterError

__all__ = [
    "DrawdownDuration",
    "underwater",
    "current_drawdown",
    "max_drawdown",
    "drawdown_duration",
    "drawdown_episodes",
    "drawdown_table",
    "EPISODE_COLUMNS",
]

EPISODE_COLUMNS = ["peak", "trough", "recovery", "peak_value", "trough_value", "depth",
                   "bars_to_trough", "bars", "duration", "recovered"]  # fmt: skip


def _equity(equity: Any) -> pd.Series:
    if hasattr(equity, "equity") and hasattr(equity, "spec"):
        equity = equity.equity
    if not isinstance(equity, pd.Series):
        raise ParameterError(f"equity must be a Series (or a backtest result), got {type(equity).__name__}")
    if not isinstance(equity.index, pd.DatetimeIndex):
        raise ParameterError(f"equity must have a DatetimeIndex, got {type(equity.index).__name__}")
    if len(equity) == 0:
        raise ParameterError("equity is empty")
    values = equity.to_numpy(dtype="float64")
    bad = ~np.isfinite(values)
    if bad.any():
        raise ParameterError(f"equity must be finite: {values[bad][0]!r} at {equity.index[int(np.argmax(bad))]}")
    if not values[0] > 0:
        raise ParameterError(f"equity must start > 0 (drawdowns are fractions of a peak), got {values[0]!r} "
                             f"at {equity.index[0]}")  # fmt: skip
    if not equity.index.is_monotonic_increasing:
        raise ParameterError("equity must be in time order (sort its index)")
    return pd.Series(values, index=equity.index, name="equity")


def underwater(equity: Any) -> pd.Series:
    """Equity / running max − 1 at every bar (≤ 0).

    >>> idx = pd.date_range("2024-01-01", periods=4, tz="UTC")
    >>> underwater(pd.Series([100.0, 75.0, 120.0, 90.0], index=idx)).tolist()
    [0.0, -0.25, 0.0, -0.25]
    """
    e = _equity(equity)
    return (e / e.cummax() - 1.0).rename("underwater")


def current_drawdown(equity: Any) -> float:
    """The drawdown at the last bar (0 at a new high)."""
    return float(underwater(equity).iloc[-1])


def max_drawdown(equity: Any) -> float:
    """The deepest drawdown, a fraction ≤ 0."""
    return float(underwater(equity).min())


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) positions of each maximal run strictly below the running peak."""
    below = values < np.maximum.accumulate(values)
    edges = np.diff(np.concatenate([[0], below.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def drawdown_episodes(equity: Any) -> pd.DataFrame:
    """Every episode in time order, with :data:`EPISODE_COLUMNS` (module conventions).

    ``recovery`` is an object column holding a Timestamp or ``None`` (not yet recovered).
    """
    e = _equity(equity)
    v, idx, n = e.to_numpy(), e.index, len(e)
    rows = []
    for first, last in _runs(v):
        peak = first - 1
        trough = first + int(np.argmin(v[first : last + 1]))
        rec = last + 1 if last + 1 < n else None
        end = rec if rec is not None else n - 1
        rows.append({
            "peak": idx[peak], "trough": idx[trough], "recovery": None if rec is None else idx[rec],
            "peak_value": float(v[peak]), "trough_value": float(v[trough]),
            "depth": float(v[trough] / v[peak] - 1.0), "bars_to_trough": trough - peak,
            "bars": end - peak, "duration": idx[end] - idx[peak], "recovered": rec is not None,
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=EPISODE_COLUMNS)
    frame["recovery"] = pd.Series([r["recovery"] for r in rows], dtype=object)  # None, not NaT
    return frame


def drawdown_table(equity: Any, top: int = 5) -> pd.DataFrame:
    """The ``top`` deepest episodes, worst first (ties: the earlier first), numbered from 1.

    >>> idx = pd.date_range("2024-01-01", periods=6, tz="UTC")
    >>> t = drawdown_table(pd.Series([100.0, 75.0, 100.0, 50.0, 80.0, 70.0], index=idx))
    >>> t[["depth", "bars", "recovered"]].values.tolist()
    [[-0.5, 3, False], [-0.25, 2, True]]
    """
    if isinstance(top, bool) or not isinstance(top, numbers.Integral) or top < 1:
        raise ParameterError(f"top must be an integer >= 1, got top={top!r}")
    episodes = drawdown_episodes(equity)
    worst = episodes.sort_values("depth", kind="stable").head(int(top)).reset_index(drop=True)
    worst.index = pd.RangeIndex(1, len(worst) + 1, name="rank")
    return worst


@dataclass(frozen=True)
class DrawdownDuration:
    """The longest episode in bars and, separately, the longest in calendar time."""

    bars: int
    time: pd.Timedelta


def drawdown_duration(equity: Any) -> DrawdownDuration:
    """Longest spell from a peak until recovery (or the last bar), in bars and in time.

    >>> idx = pd.to_datetime(["2024-01-05", "2024-01-08", "2024-01-09"], utc=True)
    >>> drawdown_duration(pd.Series([2.0, 1.0, 2.0], index=idx))
    DrawdownDuration(bars=2, time=Timedelta('4 days 00:00:00'))
    """
    ep = drawdown_episodes(equity)
    if ep.empty:
        return DrawdownDuration(0, pd.Timedelta(0))
    return DrawdownDuration(int(ep["bars"].max()), pd.Timedelta(ep["duration"].max()))
