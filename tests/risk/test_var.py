"""VaR/ES estimators against closed forms, independent numpy/scipy computations, the
conventions of four public libraries (transcribed, cited) and Jorion's worked example."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from workbench.errors import ParameterError
from workbench.risk.var import (
    VaRResult,
    cornish_fisher_var,
    delta_normal_var,
    historical_var,
    monte_carlo_var,
    normal_var,
    rolling_historical_var,
    student_t_var,
)

TOL = 1e-10


@pytest.fixture(scope="module")
def rets() -> pd.Series:
    rng = np.random.default_rng(7)
    return pd.Series(0.0003 + 0.01 * rng.standard_t(5, 997), name="r")


# ------------------------------------------------------------- library conventions
# Each reference below is the library's own one-line formula, transcribed (the libraries
# themselves are not dependencies). Losses are positive here, so signs flip where the
# library returns a (negative) return.


def test_riskfolio_var_hist_and_cvar_hist(rets):
    # Riskfolio-Lib riskfolio/src/RiskFunctions.py, VaR_Hist / CVaR_Hist (alpha = 1 - c):
    #   index = int(np.ceil(alpha * len(sorted_a)) - 1); value = -sorted_a[index]
    #   CVaR = -sorted_a[index] - sum(sorted_a[i] - sorted_a[index], i<=index) / (alpha*T)
    alpha, x = 0.05, np.sort(rets.to_numpy())
    index = int(np.ceil(alpha * len(x)) - 1)
    var = -x[index]
    cvar = -x[index] - sum(x[i] - x[index] for i in range(index + 1)) / (alpha * len(x))
    got = historical_var(rets, 0.95, convention="inverted_cdf")
    assert got.value == pytest.approx(var, abs=TOL)
    assert got.expected_shortfall == pytest.approx(cvar, abs=TOL)


def test_skfolio_value_at_risk_and_cvar(rets):
    # skfolio src/skfolio/measures/_measures.py, value_at_risk / cvar (beta = c):
    #   k = (1 - beta) * size; ik = max(0, int(np.ceil(k) - 1)); VaR = -partition[ik]
    #   CVaR = -np.sum(part[:ik]) / k + part[ik] * (ik / k - 1.0)
    beta, x = 0.99, rets.to_numpy()
    k = (1 - beta) * len(x)
    ik = max(0, int(np.ceil(k) - 1))
    part = np.partition(x, ik)
    got = historical_var(rets, beta)  # the default convention
    assert got.value == pytest.approx(-part[ik], abs=TOL)
    assert got.expected_shortfall == pytest.approx(-np.sum(part[:ik]) / k + part[ik] * (ik / k - 1.0), abs=TOL)


def test_integer_tail_count_is_not_pushed_up_by_rounding():
    # n*alpha = 100 * (1 - 0.95) = 5.000000000000004 in floating point: the 5th smallest is
    # the inverse-CDF order statistic (skfolio's ceil(k) picks the 6th here; Riskfolio,
    # given alpha = 0.05 directly, picks the 5th).
    x = np.arange(1.0, 101.0) / -100.0  # -0.01 .. -1.00
    assert historical_var(x, 0.95).value == pytest.approx(0.96, abs=TOL)


def test_empyrical_value_at_risk_and_cvar(rets):
    # empyrical/stats.py: value_at_risk = np.percentile(returns, 100 * cutoff);
    #   conditional_value_at_risk = np.mean(returns[returns <= value_at_risk(...)])
    cutoff, x = 0.05, rets.to_numpy()
    q = np.percentile(x, 100 * cutoff)
    got = historical_var(rets, 0.95, convention="linear")
    assert got.value == pytest.approx(-q, abs=TOL)
    assert got.expected_shortfall == pytest.approx(-np.mean(x[x <= q]), abs=TOL)


def test_quantstats_var_and_cvar(rets):
    # quantstats/stats.py value_at_risk: norm.ppf(1 - confidence, returns.mean(), returns.std())
    # conditional_value_at_risk(method="parametric"): mu - sd * norm.pdf(norm.ppf(a)) / a
    # conditional_value_at_risk(method="historical"): series[series <= series.quantile(a)].mean()
    a = 0.05
    mu, sd = rets.mean(), rets.std()
    par = normal_var(rets, 0.95)
    assert par.value == pytest.approx(-stats.norm.ppf(1 - 0.95, mu, sd), abs=TOL)
    assert par.expected_shortfall == pytest.approx(-(mu - sd * stats.norm.pdf(stats.norm.ppf(a)) / a), abs=TOL)
    hist = historical_var(rets, 0.95, convention="linear")
    assert hist.expected_shortfall == pytest.approx(-rets[rets <= rets.quantile(a)].mean(), abs=TOL)


# ------------------------------------------------------------------ closed forms
def test_normal_closed_form(rets):
    c, mu, sd = 0.99, rets.mean(), rets.std(ddof=1)
    z = stats.norm.ppf(0.01)
    got = normal_var(rets, c)
    assert got.value == pytest.approx(-(mu + sd * z), abs=TOL)
    # ES as the integral of the normal quantile over the tail
    tail, _ = integrate.quad(lambda u: stats.norm.ppf(u, mu, sd), 0, 0.01)
    assert got.expected_shortfall == pytest.approx(-tail / 0.01, abs=1e-9)
    assert normal_var(rets, c, mean=False).value == pytest.approx(-sd * z, abs=TOL)


def test_student_t_given_df_is_variance_matched(rets):
    nu, mu, sd = 5.0, rets.mean(), rets.std(ddof=1)
    scale = sd * math.sqrt((nu - 2) / nu)
    got = student_t_var(rets, 0.99, df=nu)
    assert stats.t.var(nu, scale=scale) == pytest.approx(sd**2, rel=1e-12)
    assert got.value == pytest.approx(-stats.t.ppf(0.01, nu, mu, scale), abs=TOL)
    tail, _ = integrate.quad(lambda u: stats.t.ppf(u, nu, mu, scale), 0, 0.01, limit=200)
    assert got.expected_shortfall == pytest.approx(-tail / 0.01, abs=1e-8)


def test_student_t_fitted_uses_mle(rets):
    nu, loc, scale = stats.t.fit(rets.to_numpy())
    got = student_t_var(rets, 0.975)
    assert got.convention == "t_mle"
    assert got.value == pytest.approx(-stats.t.ppf(0.025, nu, loc, scale), abs=TOL)
    es = -stats.t.expect(lambda v: v, args=(nu,), loc=loc, scale=scale,
                         ub=stats.t.ppf(0.025, nu, loc, scale), conditional=True)
    assert got.expected_shortfall == pytest.approx(es, abs=1e-8)


def test_cornish_fisher_formula():
    # Symmetric sample (sample skewness 0 to rounding) of normal plotting-position quantiles.
    half = stats.norm.ppf((np.arange(1, 201) - 0.5) / 400) * 0.01
    x = np.concatenate([half, -half])
    got = cornish_fisher_var(x, 0.99)
    s, k = got.params["skew"], got.params["excess_kurtosis"]
    assert abs(s) < 1e-12
    assert s == pytest.approx(stats.skew(x, bias=False), abs=1e-12)
    assert k == pytest.approx(stats.kurtosis(x, bias=False), abs=1e-12)
    z = stats.norm.ppf(0.01)
    zcf = z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36
    assert got.value == pytest.approx(-(x.mean() + x.std(ddof=1) * zcf), abs=TOL)
    assert got.expected_shortfall >= got.value


def test_cornish_fisher_matches_normal_on_exact_zero_moment_sample(monkeypatch):
    from workbench.risk import var as var_module

    x = np.random.default_rng(1).standard_normal(500) * 0.01
    monkeypatch.setattr(var_module.pd.Series, "skew", lambda self: 0.0)
    monkeypatch.setattr(var_module.pd.Series, "kurt", lambda self: 0.0)
    cf, nm = cornish_fisher_var(x, 0.99), normal_var(x, 0.99)
    assert cf.value == pytest.approx(nm.value, abs=TOL)
    assert cf.expected_shortfall == pytest.approx(nm.expected_shortfall, abs=1e-9)


def test_cornish_fisher_rejects_non_monotone_expansion():
    x = np.tile([-0.01, 0.01], 100)  # two-point: excess kurtosis about -2
    with pytest.raises(ParameterError, match="not increasing"):
        cornish_fisher_var(x, 0.99)


# -------------------------------------------------------------- horizon and scaling
def test_sqrt_time_scaling_is_explicit(rets):
    one = historical_var(rets, 0.99)
    ten = historical_var(rets, 0.99, 10, scaling="sqrt_time")
    assert ten.value == pytest.approx(one.value * math.sqrt(10), abs=TOL)
    assert ten.expected_shortfall == pytest.approx(one.expected_shortfall * math.sqrt(10), abs=TOL)
    for fn in (historical_var, normal_var, student_t_var, cornish_fisher_var, monte_carlo_var):
        with pytest.raises(ParameterError, match="horizon=10 needs scaling='sqrt_time'"):
            fn(rets, confidence=0.99, horizon=10)


@pytest.mark.parametrize("bad", [0, 1, 99, -0.5, float("nan"), True, "0.99"])
def test_confidence_is_a_probability(rets, bad):
    with pytest.raises(ParameterError, match="confidence must be a probability"):
        historical_var(rets, bad)


def test_inputs_duck_typed_and_checked(rets):
    class Result:  # a BacktestResult look-alike
        returns = rets

    assert historical_var(Result(), 0.99) == historical_var(rets.to_numpy(), 0.99)
    assert float(historical_var(rets, 0.99)) == historical_var(rets, 0.99).value
    with pytest.raises(ParameterError, match="needs portfolio weights"):
        historical_var(pd.DataFrame({"a": rets, "b": rets}))
    with pytest.raises(ParameterError, match="finite"):
        historical_var([0.01, np.inf, -0.02])
    with pytest.raises(ParameterError, match="convention must be one of"):
        historical_var(rets, convention="nearest")
    assert isinstance(historical_var(rets), VaRResult)


# ---------------------------------------------------------------------- rolling
def test_rolling_matches_per_window_estimator():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.standard_normal((300, 3)) * 0.01, columns=list("abc"))
    for conv in ("inverted_cdf", "linear"):
        roll = rolling_historical_var(frame, 250, 0.99, convention=conv)
        assert roll.iloc[:249].isna().all().all()
        for t in (249, 270, 299):
            for col in frame:
                window = frame[col].iloc[t - 249 : t + 1]
                assert roll[col].iloc[t] == pytest.approx(historical_var(window, 0.99, convention=conv).value, abs=TOL)
    lin = rolling_historical_var(frame["a"], 250, 0.99, convention="linear")
    assert np.allclose(lin.dropna(), -frame["a"].rolling(250).quantile(0.01).dropna(), atol=TOL)


# ------------------------------------------------------------------ Monte Carlo
def test_monte_carlo_within_three_standard_errors_of_parametric():
    rng = np.random.default_rng(11)
    cov = np.array([[1.0, 0.3, 0.1], [0.3, 2.0, 0.4], [0.1, 0.4, 1.5]]) * 1e-4
    frame = pd.DataFrame(rng.multivariate_normal([0.0002, 0.0001, 0.0003], cov, 2000), columns=list("xyz"))
    w = np.array([0.5, 0.3, 0.2])
    mc = monte_carlo_var(frame, w, 0.99, n_paths=200_000, seed=5)
    port = frame.to_numpy() @ w
    parametric = -(port.mean() + port.std(ddof=1) * stats.norm.ppf(0.01))
    assert mc.standard_error > 0
    assert abs(mc.value - parametric) < 3 * mc.standard_error
    assert mc.expected_shortfall >= mc.value
    # reproducible by seed; a Generator works too
    assert monte_carlo_var(frame, w, 0.99, n_paths=200_000, seed=5) == mc
    assert monte_carlo_var(frame, w, 0.99, n_paths=1000, seed=np.random.default_rng(5)).value > 0


def test_monte_carlo_weights_checked():
    frame = pd.DataFrame(np.random.default_rng(0).standard_normal((50, 2)), columns=["a", "b"])
    with pytest.raises(ParameterError, match="one weight per asset"):
        monte_carlo_var(frame, [1.0], n_paths=1000)
    with pytest.raises(ParameterError, match="same assets"):
        monte_carlo_var(frame, {"a": 1.0, "c": 0.0}, n_paths=1000)


# ----------------------------------------------------------------- delta-normal
def test_jorion_two_currency_example():
    # Jorion (2007), Value at Risk, 3rd ed., ch. 7: $2m in CAD (vol 5%) and $1m in EUR
    # (vol 12%), uncorrelated, 95% delta-normal VaR. Published (Bionic Turtle's Jorion
    # notes, forum thread "Jorion, Chapter 7: Portfolio Risk: Analytical Methods"):
    # diversified VaR $256.9k, individual VaRs $164.49k (CAD) and $197.38k (EUR),
    # incremental VaR $59.55k (CAD) and $92.45k (EUR).
    cov = pd.DataFrame([[0.05**2, 0.0], [0.0, 0.12**2]], index=["CAD", "EUR"], columns=["CAD", "EUR"])
    res = delta_normal_var(pd.Series({"CAD": 2e6, "EUR": 1e6}), covariance=cov, confidence=0.95)
    assert res.value / 1e3 == pytest.approx(256.9, abs=0.05)
    assert res.standalone["CAD"] / 1e3 == pytest.approx(164.49, abs=0.005)
    assert res.standalone["EUR"] / 1e3 == pytest.approx(197.38, abs=0.005)
    assert res.incremental["CAD"] / 1e3 == pytest.approx(59.55, abs=0.005)
    assert res.incremental["EUR"] / 1e3 == pytest.approx(92.45, abs=0.005)
    # closed forms: sigma_p = sqrt(0.0244) $m; marginal = z (Sigma x)_i / sigma_p
    z, sp = stats.norm.ppf(0.95), math.sqrt(2e6**2 * 0.0025 + 1e6**2 * 0.0144)
    assert res.value == pytest.approx(z * sp, rel=1e-12)
    assert res.marginal["CAD"] == pytest.approx(z * 2e6 * 0.0025 / sp, rel=1e-12)
    assert res.component.sum() == pytest.approx(res.value, rel=1e-12)


def test_delta_normal_from_returns_and_horizon():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.standard_normal((500, 4)) * 0.01, columns=list("abcd"))
    w = pd.Series([0.4, 0.3, -0.2, 0.5], index=list("abcd"))
    one = delta_normal_var(w, returns=frame, confidence=0.99)
    sd = float(np.sqrt(w @ frame.cov() @ w))
    assert one.value == pytest.approx(stats.norm.ppf(0.99) * sd, abs=TOL)
    ten = delta_normal_var(w, returns=frame, confidence=0.99, horizon=10, scaling="sqrt_time")
    assert ten.value == pytest.approx(one.value * math.sqrt(10), abs=TOL)
    # incremental VaR by full revaluation
    rest = w.drop("c")
    without = stats.norm.ppf(0.99) * math.sqrt(rest @ frame[rest.index].cov() @ rest)
    assert one.incremental["c"] == pytest.approx(one.value - without, abs=TOL)
    with pytest.raises(ParameterError, match="exactly one of"):
        delta_normal_var(w)


# ------------------------------------------------------------------- properties
returns_st = st.lists(st.floats(-0.2, 0.2, allow_nan=False), min_size=20, max_size=200).filter(
    lambda v: np.std(v) > 1e-6
)
conf_st = st.floats(0.8, 0.995)


@settings(max_examples=60, deadline=None)
@given(returns_st, conf_st, st.sampled_from(["inverted_cdf", "linear"]))
def test_es_at_least_var(x, c, conv):
    h = historical_var(x, c, convention=conv)
    assert h.expected_shortfall >= h.value - 1e-12
    for r in (normal_var(x, c), student_t_var(x, c, df=4.0)):
        assert r.expected_shortfall >= r.value - 1e-12


@settings(max_examples=60, deadline=None)
@given(returns_st, conf_st, conf_st, st.sampled_from(["inverted_cdf", "linear"]))
def test_var_monotone_in_confidence(x, c1, c2, conv):
    lo, hi = sorted((c1, c2))
    assert historical_var(x, hi, convention=conv).value >= historical_var(x, lo, convention=conv).value - 1e-12
    assert normal_var(x, hi).value >= normal_var(x, lo).value - 1e-12
    assert historical_var(x, hi).expected_shortfall >= historical_var(x, lo).expected_shortfall - 1e-12


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=6).filter(lambda v: max(map(abs, v)) > 1),
    st.integers(0, 2**32 - 1),
)
def test_component_var_sums_to_total(positions, seed):
    k = len(positions)
    a = np.random.default_rng(seed).standard_normal((k, k))
    cov = a @ a.T * 1e-4 + np.eye(k) * 1e-6
    res = delta_normal_var(np.array(positions), covariance=cov, confidence=0.99)
    assert res.component.sum() == pytest.approx(res.value, rel=1e-9)
