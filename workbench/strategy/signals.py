"""Signals: what a strategy wants, as records a reviewer can read.

A :class:`Signal` is decided at a bar's close: ``action`` says which way the holding
moves (BUY raises the target exposure, SELL lowers it; EXIT goes flat), ``strength`` in
[0, 1] is the size of the new target exposure as a fraction of equity, and
``confidence`` in [0, 1] is the strategy's own certainty (1 unless the strategy gives
one, e.g. a classifier's probability).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.errors import ParameterError

__all__ = ["Action", "Signal", "SIGNAL_COLUMNS", "signals_from_targets", "signals_from_weights"]

SIGNAL_COLUMNS = ["ts", "symbol", "action", "strength", "confidence", "target"]


class Action(enum.Enum):
    BUY = "buy"
    SELL = "sell"
    EXIT = "exit"


@dataclass(frozen=True, slots=True)
class Signal:
    ts: pd.Timestamp
    symbol: str
    action: Action
    strength: float
    confidence: float = 1.0

    def __post_init__(self) -> None:
        for name in ("strength", "confidence"):
            v = getattr(self, name)
            if not (np.isfinite(v) and 0.0 <= v <= 1.0):
                raise ParameterError(f"Signal {name} must be in [0, 1], got {name}={v!r} at {self.ts}")


def _rows(ts: pd.Index, sym: str, new: np.ndarray, old: np.ndarray, conf: np.ndarray) -> list[dict]:
    rows = []
    for t, n, o, c in zip(ts, new, old, conf, strict=True):
        action = Action.EXIT if n == 0 else (Action.BUY if n > o else Action.SELL)
        sig = Signal(t, sym, action, float(min(abs(n), 1.0)), float(c))
        rows.append({"ts": sig.ts, "symbol": sym, "action": sig.action.name,
                     "strength": sig.strength, "confidence": sig.confidence, "target": float(n)})  # fmt: skip
    return rows


def signals_from_targets(target: pd.Series, symbol: str, confidence: pd.Series | None = None) -> pd.DataFrame:
    """One Signal per change of a target exposure series."""
    t = target.to_numpy(dtype="float64")
    prev = np.concatenate(([0.0], t[:-1]))
    at = np.flatnonzero(t != prev)
    conf = np.ones(len(t)) if confidence is None else np.clip(confidence.to_numpy(dtype="float64"), 0, 1)
    conf = np.where(np.isfinite(conf), conf, 1.0)
    rows = _rows(target.index[at], symbol, t[at], prev[at], conf[at])
    return pd.DataFrame(rows, columns=SIGNAL_COLUMNS)


def signals_from_weights(weights: pd.DataFrame) -> pd.DataFrame:
    """One Signal per symbol and rebalance where its target weight changes."""
    w = weights.ffill().fillna(0.0)
    frames = [signals_from_targets(w[c], str(c)) for c in w.columns]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SIGNAL_COLUMNS)
    return out.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)
