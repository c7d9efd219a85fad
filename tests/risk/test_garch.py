"""GARCH(1,1) filtered historical simulation vs a reconstruction from the fitted parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import workbench as wb
from workbench.adapters.garch import fit_garch, garch_var
from workbench.errors import ParameterError
from workbench.risk.var import historical_var


@pytest.fixture(scope="module")
def spx():
    return wb.load_prices("SPX")["Close"].pct_change().dropna()


@pytest.fixture(scope="module", params=["normal", "t"])
def fitted(request, spx):
    return fit_garch(spx, dist=request.param)


def reconstruct(returns, fit):
    """σ_t and σ_{T+1} from (μ, ω, α, β) alone, with arch's backcast (EWMA 0.94 of 75)."""
    y = returns.to_numpy() * fit.scale
    mu, omega = fit.mu * fit.scale, fit.omega * fit.scale**2
    w = 0.94 ** np.arange(75)
    backcast = float(np.sum(w / w.sum() * (y - y.mean())[:75] ** 2))
    eps = y - mu
    s2 = np.empty(len(y))
    s2[0] = omega + (fit.alpha + fit.beta) * backcast
    for t in range(1, len(y)):
        s2[t] = omega + fit.alpha * eps[t - 1] ** 2 + fit.beta * s2[t - 1]
    nxt = math.sqrt(omega + fit.alpha * eps[-1] ** 2 + fit.beta * s2[-1])
    return np.sqrt(s2) / fit.scale, eps / np.sqrt(s2), nxt / fit.scale


def test_fit_is_a_stationary_garch(fitted):
    assert fitted.omega > 0 and fitted.alpha > 0 and fitted.beta > 0 and fitted.alpha + fitted.beta < 1


def test_fhs_matches_reconstruction(spx, fitted):
    sigma, z, nxt = reconstruct(spx, fitted)
    assert np.allclose(fitted.sigma.to_numpy(), sigma, rtol=0, atol=1e-12)
    assert fitted.sigma_next == pytest.approx(nxt, abs=1e-12)
    for conv in ("inverted_cdf", "linear"):
        got = garch_var(spx, 0.99, fit=fitted, convention=conv)
        zr = historical_var(z, 0.99, convention=conv)
        assert got.value == pytest.approx(-fitted.mu + nxt * zr.value, abs=1e-10)
        assert got.expected_shortfall == pytest.approx(-fitted.mu + nxt * zr.expected_shortfall, abs=1e-10)
        # independent order statistic of the standardised residuals
        k = math.ceil(round(len(z) * 0.01, 9))
        if conv == "inverted_cdf":
            assert got.value == pytest.approx(-fitted.mu - nxt * np.sort(z)[k - 1], abs=1e-10)


def test_parametric_matches_closed_form(spx, fitted):
    _, _, nxt = reconstruct(spx, fitted)
    got = garch_var(spx, 0.975, method="parametric", fit=fitted)
    if fitted.dist == "normal":
        q = stats.norm.ppf(0.025)
    else:
        q = stats.t.ppf(0.025, fitted.nu) * math.sqrt((fitted.nu - 2) / fitted.nu)
    assert got.value == pytest.approx(-(fitted.mu + nxt * q), abs=1e-10)
    assert got.expected_shortfall >= got.value


def test_horizon_and_arguments(spx, fitted):
    one = garch_var(spx, 0.99, fit=fitted)
    ten = garch_var(spx, 0.99, 10, scaling="sqrt_time", fit=fitted)
    assert ten.value == pytest.approx(one.value * math.sqrt(10), abs=1e-12)
    with pytest.raises(ParameterError, match="needs scaling='sqrt_time'"):
        garch_var(spx, 0.99, 10, fit=fitted)
    with pytest.raises(ParameterError, match="method must be one of"):
        garch_var(spx, method="evt", fit=fitted)
    with pytest.raises(ParameterError, match="dist must be one of"):
        fit_garch(spx, dist="skewt")
