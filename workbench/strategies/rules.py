"""Entry/exit rules → a held state, for strategies whose exits differ from their entries."""

from __future__ import annotations

import numpy as np

__all__ = ["hold_state"]


def hold_state(
    enter_long: np.ndarray,
    exit_long: np.ndarray,
    enter_short: np.ndarray | None = None,
    exit_short: np.ndarray | None = None,
) -> np.ndarray:
    """+1 / 0 / -1 per bar from boolean rule arrays evaluated at each close.

    Flat: an entry rule opens (long wins if both fire). Long: ``exit_long`` goes flat, and
    ``enter_short`` reverses. Short mirrors that. A bar's state depends only on rules up
    to that bar, so the result cannot look ahead.
    """
    n = len(enter_long)
    es = np.zeros(n, bool) if enter_short is None else enter_short
    xs = np.zeros(n, bool) if exit_short is None else exit_short
    out = np.zeros(n)
    s = 0.0
    for i in range(n):
        if s == 0.0:
            s = 1.0 if enter_long[i] else (-1.0 if es[i] else 0.0)
        elif s > 0:
            s = -1.0 if es[i] else (0.0 if exit_long[i] else 1.0)
        else:
            s = 1.0 if enter_long[i] else (0.0 if xs[i] else -1.0)
        out[i] = s
    return out
