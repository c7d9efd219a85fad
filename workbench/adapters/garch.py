"""GARCH(1,1) VaR and ES through the ``arch`` package: filtered historical simulation.

Why an adapter: volatility clusters, so an unconditional VaR (``workbench.risk.var``) is too
low after a shock and too high in calm spells. Filtering the returns by a fitted GARCH
volatility gives i.i.d.-looking standardised residuals whose empirical tail is rescaled by
tomorrow's volatility forecast (Barone-Adesi, Giannopoulos & Vosper 1999; Hull & White 1998).

Conventions
-----------
- **Model**: r_t = μ + ε_t, ε_t = σ_t z_t, σ²_t = ω + α ε²_{t-1} + β σ²_{t-1} (constant mean,
  GARCH(1,1), ``arch_model(mean="Constant", vol="GARCH", p=1, q=1)``), fitted by maximum
  likelihood with ``dist="normal"`` (default) or ``"t"`` (standardised Student-t, ν fitted).
  arch starts the recursion at the backcast (EWMA, λ = 0.94, of the first 75 squared
  demeaned returns).
- **Rescaling**: returns are multiplied by ``scale`` (100: percent) before fitting, which
  keeps ω away from the optimiser's tolerance, and every output is divided back: VaR and
  ES are fractions, like every estimator in ``workbench.risk.var``. ``rescale=False`` is
  passed to arch so it never picks another factor.
- **Forecast**: σ_{T+1} = √(ω + α ε²_T + β σ²_T), the one-step forecast from the last bar.
- **FHS** (``method="fhs"``, default): VaR = -(μ + σ_{T+1} q̂_α(z)), ES = -(μ + σ_{T+1} ·
  tail mean of z), where ẑ_t = ε̂_t/σ̂_t are the standardised residuals and q̂, the tail
  mean, are the historical estimators of ``workbench.risk.var`` (``convention``).
- **Parametric** (``method="parametric"``): the same with the fitted distribution's
  quantile and tail mean of z (unit variance: the t's quantile is t_ν⁻¹(α)·√((ν-2)/ν)).
- **Horizon**: one step; ``scaling="sqrt_time"`` multiplies by √horizon (the rule, not a
  multi-step GARCH forecast); ``scaling="none"`` requires ``horizon=1``.
- **Sign, confidence, inputs** as in ``workbench.risk.var`` (losses positive; NaNs dropped).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import pandas as pd
from scipy import stats

from workbench.errors import ParameterError
from workbench.risk.var import (
    VaRResult,
    as_returns,
    check_confidence,
    check_convention,
    historical_var,
    horizon_factor,
)

__all__ = ["GarchFit", "fit_garch", "garch_var", "GARCH_METHODS"]

GARCH_METHODS = ("fhs", "parametric")
_DISTS = ("normal", "t")


@dataclass(frozen=True)
class GarchFit:
    """A fitted GARCH(1,1), in return units (the ``scale`` already divided out).

    ``std_resid`` are ẑ_t (unit free); ``sigma`` the in-sample σ_t; ``sigma_next`` the
    one-step forecast σ_{T+1}; ``nu`` the t's degrees of freedom (NaN for a normal).
    """

    mu: float
    omega: float
    alpha: float
    beta: float
    nu: float
    dist: str
    sigma: pd.Series
    std_resid: pd.Series
    sigma_next: float
    scale: float


def fit_garch(returns: object, *, dist: str = "normal", scale: float = 100.0) -> GarchFit:
    """Fit the constant-mean GARCH(1,1) of the module conventions to a returns series."""
    from arch import arch_model  # the vendor stays inside this adapter

    if dist not in _DISTS:
        raise ParameterError(f"dist must be one of {_DISTS}, got dist={dist!r}")
    s = float(scale) if isinstance(scale, numbers.Real) and not isinstance(scale, bool) else math.nan
    if not (math.isfinite(s) and s > 0):
        raise ParameterError(f"scale must be a finite number > 0, got scale={scale!r}")
    if isinstance(returns, pd.Series):
        series = returns.dropna().astype("float64")
        as_returns(series, min_obs=100)
    else:
        series = pd.Series(as_returns(returns, min_obs=100))
    res = arch_model(series * s, mean="Constant", vol="GARCH", p=1, q=1, dist=dist, rescale=False).fit(
        disp="off"
    )
    p = res.params
    mu, omega, a, b = (float(p[k]) for k in ("mu", "omega", "alpha[1]", "beta[1]"))
    sigma = res.conditional_volatility
    resid = res.resid
    sigma_next = math.sqrt(omega + a * float(resid.iloc[-1]) ** 2 + b * float(sigma.iloc[-1]) ** 2)
    return GarchFit(
        mu=mu / s,
        omega=omega / s**2,
        alpha=a,
        beta=b,
        nu=float(p["nu"]) if dist == "t" else math.nan,
        dist=dist,
        sigma=(sigma / s).rename("sigma"),
        std_resid=(resid / sigma).rename("std_resid"),
        sigma_next=sigma_next / s,
        scale=s,
    )


def _parametric_tail(fit: GarchFit, alpha: float) -> tuple[float, float]:
    """(-q_α, tail loss mean) of the fitted unit-variance innovation distribution."""
    if fit.dist == "normal":
        z = float(stats.norm.ppf(alpha))
        return -z, float(stats.norm.pdf(z)) / alpha
    nu = fit.nu
    k = math.sqrt((nu - 2.0) / nu)
    t_a = float(stats.t.ppf(alpha, nu))
    return -k * t_a, k * float(stats.t.pdf(t_a, nu)) / alpha * (nu + t_a**2) / (nu - 1.0)


def garch_var(
    returns: object,
    confidence: float = 0.99,
    horizon: int = 1,
    *,
    method: str = "fhs",
    dist: str = "normal",
    convention: str = "inverted_cdf",
    scaling: str = "none",
    scale: float = 100.0,
    fit: GarchFit | None = None,
) -> VaRResult:
    """Next-period GARCH(1,1) VaR and ES (filtered historical simulation by default).

    Pass ``fit`` (from :func:`fit_garch`) to reuse a fitted model across confidences.
    """
    c = check_confidence(confidence)
    if method not in GARCH_METHODS:
        raise ParameterError(f"method must be one of {GARCH_METHODS}, got method={method!r}")
    factor = horizon_factor(horizon, scaling)
    check_convention(convention)
    g = fit if fit is not None else fit_garch(returns, dist=dist, scale=scale)
    if method == "fhs":
        z = historical_var(g.std_resid.to_numpy(), c, convention=convention)
        var_z, es_z = z.value, z.expected_shortfall
    else:
        var_z, es_z = _parametric_tail(g, 1.0 - c)
    var = -g.mu + g.sigma_next * var_z
    es = -g.mu + g.sigma_next * es_z
    params = {"mu": g.mu, "omega": g.omega, "alpha": g.alpha, "beta": g.beta, "nu": g.nu,
              "sigma_next": g.sigma_next, "dist": g.dist, "scale": g.scale}
    label = f"garch11_{method}"
    conv = convention if method == "fhs" else g.dist
    return VaRResult(var * factor, c, int(horizon), label, conv, es * factor, params=params)
