"""Correlation of asset returns: the matrix, rolling pairs, and a cluster order for heatmaps.

Conventions
-----------
- **Returns** are a DataFrame of per-bar simple returns, one column per asset (e.g.
  ``asset_returns(prices)`` from :mod:`workbench.risk.exposure`).
- **Correlation matrix** (:func:`correlation_matrix`): Pearson by default (``method=
  "spearman"`` or ``"kendall"`` on request). By default only the dates on which *every*
  asset has a return are used (listwise deletion), so the matrix is one sample and
  positive semi-definite; ``pairwise=True`` uses each pair's common dates instead (more
  data, but the matrix need not be PSD). Fewer than ``min_obs`` (default 3) dates is an
  :class:`~workbench.errors.InsufficientHistoryError`.
- **Rolling correlation** (:func:`rolling_correlation`): Pearson over a trailing window of
  ``window`` bars (default 63, about a quarter of trading days) on the dates both series
  have; a value needs a full window, so the first ``window - 1`` are NaN. The value at bar
  t uses bars t - window + 1 .. t (no look-ahead).
- **Clustering** (:func:`cluster_order`): distance d = sqrt(0.5 × (1 − ρ)) (0 for ρ = 1,
  1 for ρ = −1; a metric: the Euclidean distance between standardised series, scaled),
  agglomerated with ``scipy.cluster.hierarchy.linkage`` (``method="average"``, UPGMA, by
  default) and leaves in scipy's optimal order (``optimal_ordering=True``: adjacent
  leaves as similar as possible, deterministic). ρ is clipped to [−1, 1] against round-off.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from workbench.errors import InsufficientHistoryError, ParameterError

__all__ = [
    "correlation_matrix",
    "rolling_correlation",
    "correlation_distance",
    "correlation_linkage",
    "cluster_order",
    "clustered",
    "LINKAGE_METHODS",
]

LINKAGE_METHODS = ("single", "complete", "average", "weighted", "centroid", "median", "ward")
_CORR_METHODS = ("pearson", "spearman", "kendall")


def _frame(returns: object) -> pd.DataFrame:
    if not isinstance(returns, pd.DataFrame):
        raise ParameterError(f"returns must be a DataFrame (one column per asset), got {type(returns).__name__}")
    if returns.shape[1] < 2:
        raise ParameterError(f"a correlation matrix needs >= 2 assets, got {returns.shape[1]}")
    return returns.astype("float64")


def _count(value: object, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ParameterError(f"{name} must be an integer >= {low}, got {name}={value!r}")
    return int(value)


def correlation_matrix(returns: pd.DataFrame, *, method: str = "pearson", pairwise: bool = False,
                       min_obs: int = 3) -> pd.DataFrame:  # fmt: skip
    """The correlation matrix of ``returns`` (module conventions).

    >>> r = pd.DataFrame({"a": [0.01, -0.02, 0.03], "b": [0.02, -0.04, 0.06]})
    >>> correlation_matrix(r).round(12).values.tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    if method not in _CORR_METHODS:
        raise ParameterError(f"method must be one of {', '.join(_CORR_METHODS)}, got method={method!r}")
    n_min = _count(min_obs, "min_obs", 2)
    r = _frame(returns)
    if not pairwise:
        r = r.dropna(how="any")
        if len(r) < n_min:
            raise InsufficientHistoryError(f"correlation needs >= {n_min} dates on which every asset has a "
                                           f"return, got {len(r)} (try pairwise=True)")  # fmt: skip
    return r.corr(method=method, min_periods=n_min)


def rolling_correlation(a: pd.Series, b: pd.Series, window: int = 63) -> pd.Series:
    """Trailing ``window``-bar Pearson correlation of two return series on common dates."""
    w = _count(window, "window", 2)
    for name, s in (("a", a), ("b", b)):
        if not isinstance(s, pd.Series):
            raise ParameterError(f"{name} must be a Series of returns, got {type(s).__name__}")
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna().astype("float64")
    return both["a"].rolling(w, min_periods=w).corr(both["b"]).rename(f"corr_{w}")


def correlation_distance(corr: pd.DataFrame) -> pd.DataFrame:
    """sqrt(0.5 × (1 − ρ)) for a square, symmetric correlation matrix without NaN."""
    if not isinstance(corr, pd.DataFrame) or corr.shape[0] != corr.shape[1] or corr.shape[0] < 2:
        raise ParameterError(f"corr must be a square DataFrame of >= 2 assets, got shape {getattr(corr, 'shape', None)}")
    if list(corr.index) != list(corr.columns):
        raise ParameterError("corr must have the same labels, in the same order, on both axes")
    rho = corr.to_numpy(dtype="float64")
    if np.isnan(rho).any():
        i, j = np.argwhere(np.isnan(rho))[0]
        raise ParameterError(f"corr has NaN at ({corr.index[i]!r}, {corr.columns[j]!r}): a constant or "
                             "too-short series; drop it before clustering")  # fmt: skip
    if not np.allclose(rho, rho.T, atol=1e-10):
        raise ParameterError("corr must be symmetric")
    d = np.sqrt(0.5 * (1.0 - np.clip(rho, -1.0, 1.0)))
    np.fill_diagonal(d, 0.0)
    return pd.DataFrame(d, index=corr.index, columns=corr.columns)


def correlation_linkage(corr: pd.DataFrame, method: str = "average") -> np.ndarray:
    """scipy's linkage matrix of the correlation distance (for a dendrogram)."""
    if method not in LINKAGE_METHODS:
        raise ParameterError(f"method must be one of {', '.join(LINKAGE_METHODS)}, got method={method!r}")
    d = correlation_distance(corr).to_numpy()
    condensed = squareform((d + d.T) / 2.0, checks=False)
    return hierarchy.linkage(condensed, method=method, optimal_ordering=True)


def cluster_order(corr: pd.DataFrame, method: str = "average") -> list[str]:
    """Asset labels in hierarchical-cluster leaf order (draw the heatmap in this order).

    >>> c = pd.DataFrame([[1, 0.9, 0.0], [0.9, 1, 0.1], [0.0, 0.1, 1]], index=list("abc"), columns=list("abc"))
    >>> cluster_order(c.loc[list("acb"), list("acb")])
    ['c', 'b', 'a']
    """
    leaves = hierarchy.leaves_list(correlation_linkage(corr, method))
    return [corr.index[i] for i in leaves]


def clustered(corr: pd.DataFrame, method: str = "average") -> pd.DataFrame:
    """``corr`` with rows and columns reordered by :func:`cluster_order`."""
    order = cluster_order(corr, method)
    return corr.loc[order, order]
