"""Capital allocation (issue 12 §3) against numpy closed forms, scipy SLSQP, skfolio fitted
directly, and a numpy/scipy re-implementation of skfolio's HRP; invariants by Hypothesis.

Tolerances: 1e-6 for closed forms (and HRP, which has no solver), 1e-5 for the convex
programs against a reference; the Hypothesis invariants of the convex programs use 1e-4,
their observed precision on ill-conditioned random windows (worst ~2e-5 over 600 draws).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.cluster import hierarchy as sch
from scipy.optimize import minimize
from scipy.spatial.distance import squareform

from workbench.errors import ParameterError
from workbench.research.allocation import (
    ALLOCATION_CONVENTIONS,
    ALLOCATORS,
    allocate,
    risk_contributions,
)

SOLVED = ("equal_risk_contribution", "min_variance", "max_sharpe")
EXACT = ("equal_weight", "inverse_volatility", "hrp")
TIGHT = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12}  # direct skfolio fits


@pytest.fixture(scope="module")
def daily(four: pd.DataFrame) -> pd.DataFrame:
    """GOOG/SPX/IXIC/WTI close-to-close simple returns, 2010-2012 (754 days)."""
    close = four.xs("Close", axis=1, level="field")
    return close.pct_change().dropna().loc["2010":"2012"]


# --------------------------------------------------------------------------- references


def slsqp(objective, n: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """scipy SLSQP over the bounded simplex, best of an equal-weight and n corner-ish starts."""
    starts = [np.full(n, 1.0 / n)] + [0.5 * np.eye(n)[i] + 0.5 / n for i in range(n)]
    budget = {"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(n)}
    best = None
    for x0 in starts:
        x0 = np.clip(x0, lo, hi)
        res = minimize(objective, x0, method="SLSQP", bounds=[(lo, hi)] * n,
                       constraints=[budget], options={"ftol": 1e-16, "maxiter": 2000})
        if best is None or res.fun < best.fun:
            best = res
    return best.x


def moments(r: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    x = r.to_numpy()
    return x.mean(axis=0), np.cov(x, rowvar=False, ddof=1)


def skfolio_prior():
    from skfolio.moments import EmpiricalCovariance, EmpiricalMu
    from skfolio.prior import EmpiricalPrior

    return EmpiricalPrior(mu_estimator=EmpiricalMu(), covariance_estimator=EmpiricalCovariance(ddof=1))


def skfolio_hrp():
    """skfolio's HRP built here from scratch with the settings the module says it pins."""
    from skfolio.cluster import HierarchicalClustering, LinkageMethod
    from skfolio.distance import PearsonDistance
    from skfolio.measures import RiskMeasure
    from skfolio.optimization import HierarchicalRiskParity
    from skfolio.seriation import HierarchicalSeriation

    return HierarchicalRiskParity(
        risk_measure=RiskMeasure.VARIANCE,
        prior_estimator=skfolio_prior(),
        distance_estimator=PearsonDistance(),
        seriation_estimator=HierarchicalSeriation(
            hierarchical_clustering_estimator=HierarchicalClustering(linkage_method=LinkageMethod.WARD),
            optimal_ordering=True,
        ),
    )


def erc_newton(cov: np.ndarray) -> np.ndarray:
    """Equal risk contribution by Newton on Spinu's convex form, independent of skfolio.

    Minimise ``0.5 y'Cy - sum(log y) / n`` over y > 0 (C the covariance over its trace):
    the gradient vanishes where ``y_i (Cy)_i = 1/n`` for all i, so ``y / sum(y)`` has equal
    risk contributions.
    """
    c = cov / np.trace(cov)
    n = c.shape[0]
    y = 1.0 / np.sqrt(np.diag(c))

    def f(v: np.ndarray) -> float:
        return 0.5 * v @ c @ v - np.log(v).sum() / n

    for _ in range(200):
        grad = c @ y - 1.0 / (n * y)
        if np.abs(grad * y).max() < 1e-15:
            break
        step = np.linalg.solve(c + np.diag(1.0 / (n * y**2)), grad)
        t = 1.0
        while np.any(y - t * step <= 0) or f(y - t * step) > f(y):
            t /= 2.0
            if t < 1e-12:
                break
        y = y - t * step
    return y / y.sum()


def _cluster_variance(cov: np.ndarray, ids: np.ndarray) -> float:
    """Variance of the inverse-variance portfolio of one cluster (HRP's cluster risk)."""
    ivp = 1.0 / np.diag(cov)[ids]
    ivp /= ivp.sum()
    return float(ivp @ cov[np.ix_(ids, ids)] @ ivp)


def _split(cov: np.ndarray, w: np.ndarray, left: np.ndarray, right: np.ndarray) -> None:
    v_left, v_right = _cluster_variance(cov, left), _cluster_variance(cov, right)
    alpha = 1.0 - v_left / (v_left + v_right)
    w[left] *= alpha
    w[right] *= 1.0 - alpha


def _linkage(x: np.ndarray, method: str, optimal: bool) -> np.ndarray:
    distance = np.sqrt(np.clip(0.5 * (1.0 - np.corrcoef(x, rowvar=False)), 0.0, 1.0))
    condensed = squareform(distance, checks=False)
    z = sch.linkage(condensed, method=method)
    return sch.optimal_leaf_ordering(z, condensed) if optimal else z


def hrp_halves(x: np.ndarray, method: str = "ward", optimal: bool = True) -> np.ndarray:
    """HRP by halving the leaf order: skfolio's variant (ward, optimal leaf ordering) or,
    with ``method="single", optimal=False``, the 2016 paper's quasi-diagonal order."""
    cov = np.cov(x, rowvar=False, ddof=1)
    w = np.ones(x.shape[1])
    items = [sch.leaves_list(_linkage(x, method, optimal))]
    while items:
        halves = [(c[: len(c) // 2], c[len(c) // 2 :]) for c in items if len(c) > 1]
        for left, right in halves:
            _split(cov, w, left, right)
        items = [part for pair in halves for part in pair]
    return w


def hrp_tree(x: np.ndarray) -> np.ndarray:
    """HRP bisecting the dendrogram itself: each node splits into its two children."""
    cov = np.cov(x, rowvar=False, ddof=1)
    w = np.ones(x.shape[1])
    nodes = [sch.to_tree(_linkage(x, "ward", True))]
    while nodes:
        node = nodes.pop()
        if not node.is_leaf():
            _split(cov, w, np.array(node.left.pre_order()), np.array(node.right.pre_order()))
            nodes += [node.left, node.right]
    return w


@st.composite
def windows(draw, min_cols: int = 2, max_cols: int = 6) -> pd.DataFrame:
    """A random returns window: correlated normal columns of daily-like size and drift."""
    n = draw(st.integers(min_cols, max_cols))
    t = draw(st.integers(n + 5, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mix = np.eye(n) + 0.5 * rng.standard_normal((n, n))
    x = rng.standard_normal((t, n)) @ mix * rng.uniform(0.005, 0.03, n) + rng.normal(0.001, 0.002, n)
    return pd.DataFrame(x, columns=[f"s{i}" for i in range(n)])


# derandomize: solver-tolerance properties must not flake on a window CI happens to draw
PROPS = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def quiet_allocate(r: pd.DataFrame, method: str, **kw) -> pd.Series:
    """allocate, with skfolio's advisory "may be inaccurate" warnings muted (the checks judge)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return allocate(r, method, **kw)


# ------------------------------------------------------------ each method vs its references


def test_equal_weight_sample_matches_numpy_and_skfolio(daily: pd.DataFrame) -> None:
    from skfolio.optimization import EqualWeighted

    w = allocate(daily, "equal_weight")
    assert w.to_numpy() == pytest.approx(np.full(4, 0.25), abs=1e-6)
    assert w.to_numpy() == pytest.approx(EqualWeighted().fit(daily.to_numpy()).weights_, abs=1e-6)
    assert list(w.index) == ["GOOG", "SPX", "IXIC", "WTI"] and w.name == "equal_weight"


def test_inverse_volatility_sample_matches_numpy_and_skfolio(daily: pd.DataFrame) -> None:
    from skfolio.optimization import InverseVolatility

    w = allocate(daily, "inverse_volatility").to_numpy()
    inv = 1.0 / daily.to_numpy().std(axis=0, ddof=1)
    assert w == pytest.approx(inv / inv.sum(), abs=1e-6)
    assert w == pytest.approx(InverseVolatility().fit(daily.to_numpy()).weights_, abs=1e-6)


def test_erc_sample_has_equal_risk_contributions_and_matches_skfolio(daily: pd.DataFrame) -> None:
    from skfolio.measures import RiskMeasure
    from skfolio.optimization import RiskBudgeting

    w = allocate(daily, "equal_risk_contribution")
    _, cov = moments(daily)
    rc = risk_contributions(w, pd.DataFrame(cov, index=daily.columns, columns=daily.columns))
    assert np.abs(rc.to_numpy() - 0.25).max() < 1e-5
    direct = RiskBudgeting(risk_measure=RiskMeasure.VARIANCE, solver_params=TIGHT).fit(daily.to_numpy())
    assert w.to_numpy() == pytest.approx(direct.weights_, abs=1e-5)


def test_min_variance_sample_matches_slsqp_and_skfolio(daily: pd.DataFrame) -> None:
    from skfolio.measures import RiskMeasure
    from skfolio.optimization import MeanRisk

    w = allocate(daily, "min_variance").to_numpy()
    _, cov = moments(daily)
    c = cov / np.trace(cov)  # same argmin, an objective SLSQP's ftol can resolve
    ref = slsqp(lambda v: v @ c @ v, 4)
    # The weights are well conditioned here (a clear optimum), so compare weights at 1e-5.
    assert w == pytest.approx(ref, abs=1e-5)
    direct = MeanRisk(risk_measure=RiskMeasure.VARIANCE, solver_params=TIGHT).fit(daily.to_numpy())
    assert w == pytest.approx(direct.weights_, abs=1e-5)


@pytest.mark.parametrize("rf", [0.0, 2e-4])
def test_max_sharpe_sample_matches_slsqp(daily: pd.DataFrame, rf: float) -> None:
    w = allocate(daily, "max_sharpe", risk_free_rate=rf).to_numpy()
    mu, cov = moments(daily)
    ref = slsqp(lambda v: -(v @ mu - rf) / np.sqrt(v @ cov @ v), 4)
    assert w == pytest.approx(ref, abs=1e-5)


def test_bounded_solvers_sample_match_bounded_slsqp(daily: pd.DataFrame) -> None:
    mu, cov = moments(daily)
    c = cov / np.trace(cov)
    lo, hi = 0.1, 0.4
    mv = allocate(daily, "min_variance", min_weight=lo, max_weight=hi).to_numpy()
    ms = allocate(daily, "max_sharpe", min_weight=lo, max_weight=hi).to_numpy()
    assert mv == pytest.approx(slsqp(lambda v: v @ c @ v, 4, lo, hi), abs=1e-5)
    assert ms == pytest.approx(slsqp(lambda v: -(v @ mu) / np.sqrt(v @ cov @ v), 4, lo, hi), abs=1e-5)
    assert mv.max() == pytest.approx(hi, abs=1e-8)  # the cap binds (unbounded SPX is 0.85)


def test_hrp_sample_matches_skfolio_and_reimplementation(daily: pd.DataFrame) -> None:
    w = allocate(daily, "hrp").to_numpy()
    assert w == pytest.approx(skfolio_hrp().fit(daily.to_numpy()).weights_, abs=1e-6)
    assert w == pytest.approx(hrp_halves(daily.to_numpy()), abs=1e-6)


def test_hrp_variant_on_sample_differs_from_paper_and_tree_variants(daily: pd.DataFrame) -> None:
    """The name matters: the three published HRP variants disagree by > 5 points here."""
    x = daily.to_numpy()
    ours = allocate(daily, "hrp").to_numpy()
    paper = hrp_halves(x, method="single", optimal=False)
    tree = hrp_tree(x)
    assert np.abs(ours - paper).max() > 0.05
    assert np.abs(ours - tree).max() > 0.05
    assert "Ward" in ALLOCATION_CONVENTIONS["hrp"] and "optimal leaf" in ALLOCATION_CONVENTIONS["hrp"]


def test_risk_contributions_hand_formula_sums_to_one(daily: pd.DataFrame) -> None:
    _, cov = moments(daily)
    w = pd.Series([0.1, 0.2, 0.3, 0.4], index=daily.columns)
    frame = pd.DataFrame(cov, index=daily.columns, columns=daily.columns)
    rc = risk_contributions(w, frame.iloc[::-1, ::-1])  # looked up by label, not position
    v = w.to_numpy()
    by_hand = [v[i] * sum(cov[i, j] * v[j] for j in range(4)) for i in range(4)]
    assert rc.to_numpy() == pytest.approx(np.array(by_hand) / (v @ cov @ v), abs=1e-12)
    assert rc.sum() == pytest.approx(1.0, abs=1e-12)
    assert list(rc.index) == list(daily.columns)


@pytest.mark.parametrize("method", ALLOCATORS)
def test_one_column_gets_full_weight_for_every_method(daily: pd.DataFrame, method: str) -> None:
    w = allocate(daily[["SPX"]], method)
    assert w.to_dict() == {"SPX": 1.0} and w.name == method


def test_conventions_cover_every_method_and_the_shared_rules() -> None:
    assert set(ALLOCATORS) | {"covariance", "returns"} <= set(ALLOCATION_CONVENTIONS)
    assert "ddof=1" in ALLOCATION_CONVENTIONS["covariance"]


# ------------------------------------------------------------------ invariants (Hypothesis)


@PROPS
@given(r=windows(), method=st.sampled_from(ALLOCATORS), data=st.data())
def test_weights_long_only_fully_invested_and_bounded(r: pd.DataFrame, method: str, data) -> None:
    n = r.shape[1]
    bounded = method != "inverse_volatility" and data.draw(st.booleans())
    lo = data.draw(st.floats(0.0, 1.0 / n)) if bounded else 0.0
    hi = data.draw(st.floats(1.0 / n, 1.0)) if bounded else 1.0
    try:
        w = quiet_allocate(r, method, min_weight=lo, max_weight=hi)
    except ParameterError as exc:  # the one refusal a valid window can earn
        assert method == "max_sharpe" and "exceeds risk_free_rate" in str(exc)
        return
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert (w >= lo - 1e-12).all() and (w <= hi + 1e-12).all() and (w >= 0).all()
    assert list(w.index) == list(r.columns)


@PROPS
@given(r=windows(min_cols=3), method=st.sampled_from([m for m in ALLOCATORS if m != "hrp"]),
       data=st.data())
def test_permuting_columns_permutes_weights(r: pd.DataFrame, method: str, data) -> None:
    """All methods but HRP, whose leaf order may flip with the input order (see module doc)."""
    perm = data.draw(st.permutations(list(r.columns)))
    try:
        w = quiet_allocate(r, method)
    except ParameterError:
        assert method == "max_sharpe"
        return
    wp = quiet_allocate(r[perm], method)
    tol = 1e-4 if method in SOLVED else 1e-12
    assert wp.to_numpy() == pytest.approx(w[perm].to_numpy(), abs=tol)


@PROPS
@given(r=windows(), method=st.sampled_from(["equal_weight", "inverse_volatility",
                                            "equal_risk_contribution", "min_variance", "hrp"]),
       scale=st.floats(0.05, 20.0))
def test_scaling_returns_leaves_weights_unchanged(r: pd.DataFrame, method: str, scale: float) -> None:
    tol = 1e-4 if method in SOLVED else 1e-12
    assert quiet_allocate(r * scale, method).to_numpy() == pytest.approx(
        quiet_allocate(r, method).to_numpy(), abs=tol
    )


@PROPS
@given(r=windows())
def test_random_windows_match_references(r: pd.DataFrame) -> None:
    """HRP = the re-implementation (1e-6); ERC = a Newton solve (1e-5) and, for two columns,
    inverse volatility (its closed form at any correlation); min variance = SLSQP (1e-5).

    Weights are compared, not risk contributions or objectives: they stay well
    conditioned on these windows (min variance: worst 7e-6 over 500), whereas a hedged
    pair (portfolio variance 1 % of the columns') multiplies a 5e-7 weight error into a
    2e-5 contribution error, and the ~1e-9 the interior point leaves on weights SLSQP puts
    at 0 costs up to 2e-7 of the min-variance objective."""
    n = r.shape[1]
    _, cov = moments(r)
    assert quiet_allocate(r, "hrp").to_numpy() == pytest.approx(hrp_halves(r.to_numpy()), abs=1e-6)
    erc = quiet_allocate(r, "equal_risk_contribution").to_numpy()
    # random windows can be ill-conditioned: interior-point weights within 2e-5 of the Newton
    # solve there (1e-5 on the sample data, tested above against skfolio itself)
    assert erc == pytest.approx(erc_newton(cov), abs=2e-5)
    if n == 2:
        inv = 1.0 / np.sqrt(np.diag(cov))
        assert erc == pytest.approx(inv / inv.sum(), abs=1e-5)
    c = cov / np.trace(cov)
    mv = quiet_allocate(r, "min_variance").to_numpy()
    assert mv == pytest.approx(slsqp(lambda v: v @ c @ v, n), abs=2e-5)


# -------------------------------------------------------------------------------- errors


def _with(daily: pd.DataFrame, col: str, value: float) -> pd.DataFrame:
    out = daily.copy()
    out.iloc[5, out.columns.get_loc(col)] = value
    return out


@pytest.mark.parametrize(
    ("make", "kwargs", "needle"),
    [
        (lambda d: d, {"method": "risk_parity"}, "method='risk_parity'"),
        (lambda d: d, {"method": "risk_parity"}, "equal_weight, inverse_volatility"),
        (lambda d: d.iloc[:1], {}, "got 1 rows"),
        (lambda d: d.iloc[:, :0], {}, "got 0 columns"),
        (lambda d: _with(d, "IXIC", np.nan), {}, "nan in column 'IXIC'"),
        (lambda d: _with(d, "WTI", np.inf), {"method": "hrp"}, "inf in column 'WTI'"),
        (lambda d: d.to_numpy(), {}, "got ndarray"),
        (lambda d: d["SPX"], {}, "got Series"),
        (lambda d: d.assign(SPX="n/a"), {}, "must be numeric"),
        (lambda d: d, {"max_weight": 0.2}, "max_weight=0.2"),
        (lambda d: d, {"min_weight": 0.3}, "min_weight=0.3"),
        (lambda d: d, {"min_weight": -0.1}, "min_weight=-0.1"),
        (lambda d: d, {"min_weight": 0.2, "max_weight": 0.1}, "max_weight=0.1"),
        (lambda d: d, {"max_weight": float("nan")}, "max_weight=nan"),
        (lambda d: d, {"method": "inverse_volatility", "max_weight": 0.5}, "max_weight=0.5"),
        (lambda d: d, {"method": "max_sharpe", "risk_free_rate": 0.01}, "risk_free_rate=0.01"),
        (lambda d: d, {"method": "max_sharpe", "risk_free_rate": float("inf")}, "risk_free_rate=inf"),
    ],
)
def test_bad_input_raises_parameter_error_naming_the_value(daily, make, kwargs, needle) -> None:
    with pytest.raises(ParameterError) as err:
        allocate(make(daily), **kwargs)
    assert needle in str(err.value)


@pytest.mark.parametrize("method", sorted(set(ALLOCATORS) - {"equal_weight"}))
def test_constant_column_raises_for_methods_that_need_variance(daily, method: str) -> None:
    flat = daily.assign(WTI=0.001)
    with pytest.raises(ParameterError, match=r"constant column 'WTI' \(value 0.001\)"):
        allocate(flat, method)
    assert allocate(flat, "equal_weight").to_numpy() == pytest.approx(np.full(4, 0.25))


def test_max_sharpe_when_bounds_force_a_loser_raises(daily: pd.DataFrame) -> None:
    losers = daily.assign(SPX=-daily["SPX"].abs(), IXIC=-daily["IXIC"].abs())
    allocate(losers, "max_sharpe")  # GOOG/WTI still beat rf = 0
    with pytest.raises(ParameterError, match="best attainable mean"):
        allocate(losers.assign(GOOG=-losers["GOOG"].abs(), WTI=-losers["WTI"].abs()), "max_sharpe")


def test_risk_contributions_bad_input_raises(daily: pd.DataFrame) -> None:
    _, cov = moments(daily)
    frame = pd.DataFrame(cov, index=daily.columns, columns=daily.columns)
    with pytest.raises(ParameterError, match=r"missing \['BTC'\]"):
        risk_contributions(pd.Series({"SPX": 0.5, "BTC": 0.5}), frame)
    with pytest.raises(ParameterError, match="must be > 0, got 0.0"):
        risk_contributions(pd.Series(0.0, index=daily.columns), frame)
    with pytest.raises(ParameterError, match="got dict"):
        risk_contributions({"SPX": 1.0}, frame)  # type: ignore[arg-type]
