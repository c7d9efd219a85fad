"""The canonical OHLCV schema and its validation.

Schema
------
- Index: a tz-aware UTC :class:`pandas.DatetimeIndex` named ``timestamp``, strictly
  increasing, no duplicates.
- Columns: float64 ``Open, High, Low, Close, Volume`` (in that order).
- **Bar-stamp convention: a bar is labelled by the start of its period.** A daily bar of
  session date D is stamped ``D 00:00 UTC`` and covers that session; an hourly bar stamped
  ``09:00`` covers [09:00, 10:00). A bar's values are known only once it has closed, so a
  signal computed from bar *t* can first trade at bar *t+1* (at its open).
- Volume may be NaN where the source has no volume (close-only series such as WTI spot);
  such series carry ``Open = High = Low = Close``.

Validation (:func:`validate_ohlcv`) raises :class:`~workbench.errors.DataValidationError`
naming the rule and the first offending timestamp.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.errors import DataValidationError, NoDataError

__all__ = ["OHLCV_COLUMNS", "validate_ohlcv"]

OHLCV_COLUMNS = ["Open", "High", "Low", "Close", "Volume"]
_PRICES = ["Open", "High", "Low", "Close"]


def _first_bad(index: pd.Index, mask: np.ndarray) -> object:
    return index[int(np.argmax(mask))]


def validate_ohlcv(frame: pd.DataFrame, name: str = "prices") -> pd.DataFrame:
    """Check ``frame`` against the OHLCV schema; return it (as float64) if it passes.

    Rules, checked in this order: ``non_empty``, ``columns``, ``tz_aware_utc``,
    ``sorted_index``, ``unique_index``, ``finite_prices``, ``positive_prices``,
    ``high_ge_low``, ``open_in_range``, ``close_in_range``, ``non_negative_volume``.

    >>> idx = pd.DatetimeIndex(["2020-01-02"], tz="UTC", name="timestamp")
    >>> df = pd.DataFrame({"Open": [1.0], "High": [2.0], "Low": [0.5], "Close": [1.5],
    ...                    "Volume": [10.0]}, index=idx)
    >>> validate_ohlcv(df).shape
    (1, 5)
    """
    if frame is None or len(frame) == 0:
        raise NoDataError(f"{name}: no bars (an empty frame is never valid data)")
    missing = [c for c in OHLCV_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(
            "columns", f"{name}: missing column(s) {missing}; expected {OHLCV_COLUMNS}"
        )
    idx = frame.index
    if not isinstance(idx, pd.DatetimeIndex):
        raise DataValidationError(
            "tz_aware_utc", f"{name}: index must be a DatetimeIndex, got {type(idx).__name__}"
        )
    if idx.tz is None:
        raise DataValidationError(
            "tz_aware_utc", f"{name}: timestamps are naive; localize them explicitly", idx[0]
        )
    if str(idx.tz) != "UTC":
        raise DataValidationError(
            "tz_aware_utc", f"{name}: timestamps must be UTC, got tz={idx.tz}", idx[0]
        )
    values = idx.asi8
    if len(values) > 1:
        step = np.diff(values)
        if (step < 0).any():
            ts = idx[int(np.argmax(step < 0)) + 1]
            raise DataValidationError("sorted_index", f"{name}: index not sorted at {ts}", ts)
        if (step == 0).any():
            ts = idx[int(np.argmax(step == 0)) + 1]
            raise DataValidationError("unique_index", f"{name}: duplicate timestamp {ts}", ts)
    out = frame[OHLCV_COLUMNS].astype("float64")
    arr = out.to_numpy()
    o, h, lo, c, v = (arr[:, i] for i in range(5))
    prices = arr[:, :4]
    bad = ~np.isfinite(prices).all(axis=1)
    if bad.any():
        ts = _first_bad(idx, bad)
        raise DataValidationError("finite_prices", f"{name}: NaN or infinite price at {ts}", ts)
    bad = (prices <= 0).any(axis=1)
    if bad.any():
        ts = _first_bad(idx, bad)
        raise DataValidationError(
            "positive_prices", f"{name}: zero or negative price at {ts}: {dict(out.loc[ts, _PRICES])}", ts
        )
    bad = h < lo
    if bad.any():
        ts = _first_bad(idx, bad)
        raise DataValidationError(
            "high_ge_low", f"{name}: High {h[bad][0]} < Low {lo[bad][0]} at {ts}", ts
        )
    for col, x, rule in ((0, o, "open_in_range"), (3, c, "close_in_range")):
        bad = (x < lo) | (x > h)
        if bad.any():
            ts = _first_bad(idx, bad)
            raise DataValidationError(
                rule,
                f"{name}: {OHLCV_COLUMNS[col]} {x[bad][0]} outside [Low {lo[bad][0]}, "
                f"High {h[bad][0]}] at {ts}",
                ts,
            )
    bad = v < 0  # NaN volume (unknown) is allowed
    if bad.any():
        ts = _first_bad(idx, bad)
        raise DataValidationError(
            "non_negative_volume", f"{name}: negative volume {v[bad][0]} at {ts}", ts
        )
    return out
