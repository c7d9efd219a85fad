"""Correlation matrix, rolling correlation and cluster order against numpy/scipy directly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

import workbench as wb
from workbench.errors import InsufficientHistoryError, ParameterError
from workbench.risk.correlation import (
    cluster_order,
    clustered,
    correlation_distance,
    correlation_linkage,
    correlation_matrix,
    rolling_correlation,
)
from workbench.risk.exposure import asset_returns


@pytest.fixture(scope="module")
def rets() -> pd.DataFrame:
    prices = wb.load_prices(["SPX", "WTI", "IXIC", "GOOG"], progress=False)
    return asset_returns(prices)


def test_matrix_matches_numpy_corrcoef(rets: pd.DataFrame) -> None:
    c = correlation_matrix(rets)
    ref = np.corrcoef(rets.dropna().to_numpy().T)
    assert c.to_numpy() == pytest.approx(ref, rel=1e-12)
    assert list(c.index) == list(rets.columns)
    assert np.linalg.eigvalsh(c.to_numpy()).min() > -1e-12  # PSD (listwise)


def test_listwise_vs_pairwise() -> None:
    idx = pd.date_range("2024-01-01", periods=6, tz="UTC")
    r = pd.DataFrame({"a": [0.01, 0.02, -0.01, 0.03, 0.0, 0.01],
                      "b": [0.02, 0.01, -0.02, 0.01, np.nan, np.nan],
                      "c": [0.0, 0.01, 0.02, -0.01, 0.02, 0.03]}, index=idx)  # fmt: skip
    listwise = correlation_matrix(r)
    pairwise = correlation_matrix(r, pairwise=True)
    assert listwise.loc["a", "c"] == pytest.approx(np.corrcoef(r["a"][:4], r["c"][:4])[0, 1])
    assert pairwise.loc["a", "c"] == pytest.approx(np.corrcoef(r["a"], r["c"])[0, 1])
    with pytest.raises(InsufficientHistoryError, match="got 4"):
        correlation_matrix(r, min_obs=5)


def test_spearman_on_request(rets: pd.DataFrame) -> None:
    from scipy.stats import spearmanr

    sub = rets[["SPX", "WTI"]].dropna()
    c = correlation_matrix(sub, method="spearman")
    assert c.loc["SPX", "WTI"] == pytest.approx(spearmanr(sub["SPX"], sub["WTI"]).statistic, rel=1e-10)
    with pytest.raises(ParameterError, match="method must be"):
        correlation_matrix(sub, method="distance")


def test_rolling_correlation_window(rets: pd.DataFrame) -> None:
    a, b = rets["SPX"], rets["IXIC"].iloc[10:]
    roll = rolling_correlation(a, b, window=20)
    assert roll.index[0] == b.index[0] and roll.iloc[:19].isna().all() and roll.iloc[19:].notna().all()
    t = 500
    window_a, window_b = a.loc[b.index].iloc[t - 19 : t + 1], b.iloc[t - 19 : t + 1]
    assert roll.iloc[t] == pytest.approx(np.corrcoef(window_a, window_b)[0, 1], rel=1e-9)
    with pytest.raises(ParameterError, match="window must be"):
        rolling_correlation(a, b, window=1)


def test_distance_formula() -> None:
    c = pd.DataFrame([[1.0, -1.0, 0.5], [-1.0, 1.0, 0.0], [0.5, 0.0, 1.0]], index=list("xyz"), columns=list("xyz"))
    d = correlation_distance(c)
    assert d.loc["x", "y"] == 1.0 and d.loc["x", "z"] == pytest.approx(0.5) and d.loc["y", "z"] == pytest.approx(0.5**0.5)
    assert (np.diag(d) == 0).all()


def test_cluster_order_matches_scipy_and_groups_the_indices(rets: pd.DataFrame) -> None:
    c = correlation_matrix(rets)
    d = np.sqrt(0.5 * (1 - c.to_numpy()))
    np.fill_diagonal(d, 0)
    z = hierarchy.linkage(squareform(d, checks=False), method="average", optimal_ordering=True)
    assert correlation_linkage(c) == pytest.approx(z)
    order = cluster_order(c)
    assert order == [c.index[i] for i in hierarchy.leaves_list(z)]
    assert sorted(order) == sorted(c.index)
    # the two equity indices are the closest pair: adjacent in the order, and merged first
    assert abs(order.index("SPX") - order.index("IXIC")) == 1
    assert {int(z[0, 0]), int(z[0, 1])} == {list(c.index).index("SPX"), list(c.index).index("IXIC")}
    m = clustered(c)
    assert list(m.index) == order == list(m.columns)
    assert m.loc["SPX", "WTI"] == c.loc["SPX", "WTI"]


@pytest.mark.parametrize(
    ("corr", "match"),
    [
        (pd.DataFrame([[1.0, np.nan], [np.nan, 1.0]], index=list("ab"), columns=list("ab")), "NaN"),
        (pd.DataFrame([[1.0, 0.2], [0.3, 1.0]], index=list("ab"), columns=list("ab")), "symmetric"),
        (pd.DataFrame([[1.0, 0.2]], index=list("a"), columns=list("ab")), "square"),
        (pd.DataFrame([[1.0, 0.2], [0.2, 1.0]], index=list("ab"), columns=list("ba")), "same labels"),
    ],
)
def test_bad_matrices(corr: pd.DataFrame, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        cluster_order(corr)


def test_bad_linkage_method() -> None:
    c = pd.DataFrame([[1.0, 0.2], [0.2, 1.0]], index=list("ab"), columns=list("ab"))
    with pytest.raises(ParameterError, match="method must be"):
        cluster_order(c, method="upgma")
