"""The contract of a strategy's output, checked once for every engine.

A signal strategy's target holds -1, 0 or 1 on exactly the prices' index; a portfolio
strategy's weights are rows that are all NaN (hold) or all finite with gross <= 1. Both
engines and the grid call these functions, so a bad strategy fails with the same message
whichever engine runs it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.errors import ParameterError

__all__ = ["check_target", "check_weights"]


def check_target(target: pd.Series | np.ndarray, index: pd.Index) -> np.ndarray:
    """Validate a target exposure: the prices' index and only -1, 0 or 1 (NaN, 2.0, inf are
    errors). Both engines call this one function (one column per strategy for a grid), so
    a bad strategy fails with the same message whichever engine runs it."""
    if isinstance(target, pd.Series) and not target.index.equals(index):
        raise ParameterError("target must have exactly the index of the prices")
    tgt = np.asarray(target, dtype="float64")
    if len(tgt) != len(index):
        raise ParameterError(f"target has {len(tgt)} rows for {len(index)} bars of prices")
    ok = (tgt == 0) | (tgt == 1) | (tgt == -1)  # NaN equals nothing
    if not ok.all():
        bad = ~ok
        row = bad if bad.ndim == 1 else bad.any(axis=1)
        i = int(np.argmax(row))
        value = tgt[i] if tgt.ndim == 1 else tgt[i][bad[i]][0]
        raise ParameterError(f"target values must be -1, 0 or 1; got {float(value)!r} at {index[i]}")
    return tgt



def check_weights(weights: pd.DataFrame, index: pd.Index, symbols: list[str]) -> np.ndarray:
    """Validate a target-weight frame: rows all NaN (hold) or all finite, gross <= 1."""
    if not weights.index.equals(index):
        raise ParameterError("weights must have exactly the index of the prices")
    if [str(c) for c in weights.columns] != symbols:
        raise ParameterError(f"weights columns {list(weights.columns)} must be the panel symbols {symbols}")
    w = weights.to_numpy(dtype="float64")
    nan = np.isnan(w)
    partial = nan.any(axis=1) & ~nan.all(axis=1)
    bad = partial | np.isinf(w).any(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise ParameterError(
            f"a rebalance row must give every symbol a finite weight (0 to exit) or be all NaN "
            f"(hold); got {dict(zip(symbols, w[i].tolist(), strict=True))} at {index[i]}"
        )
    # float dust (|w| < 1e-12, e.g. 1 - 1 computed in floating point) means 0: otherwise a
    # "flat" target leaves a lot behind through a floor of 8988.999999999998
    w = np.where(np.abs(w) < 1e-12, 0.0, w)
    gross = np.nansum(np.abs(w), axis=1)
    if (gross > 1 + 1e-9).any():
        i = int(np.argmax(gross > 1 + 1e-9))
        raise ParameterError(f"gross weight must be <= 1, got {gross[i]:.6g} at {index[i]}")
    return w
