"""Value at Risk and Expected Shortfall with stated conventions.

Conventions (every estimator here unless a parameter overrides them)
--------------------------------------------------------------------
- **Sign**: VaR and ES are *losses*, positive fractions of value (0.023 = a 2.3% loss).
  They are not clipped at 0: a return distribution whose tail quantile is a gain gives a
  negative VaR. Positions given in currency (``delta_normal_var``) give currency losses.
- **Confidence** ``c`` is the probability of *not* exceeding the VaR (0.99 = 99% VaR);
  the tail probability is ``α = 1 - c``. It must be a finite number in (0, 1).
- **Input** is a returns ``pd.Series``, a 1-D array, or anything with a ``.returns``
  attribute (a backtest result, duck-typed); NaNs are dropped, ±inf is an error. Portfolio
  estimators take a returns ``DataFrame`` (one column per asset) and a position vector.
- **Horizon** is in periods of the input returns (days for daily returns). The one-period
  estimate is scaled only on request: ``scaling="sqrt_time"`` multiplies the one-period VaR
  and ES by √horizon (the square-root-of-time rule, mean included; exact only for
  zero-mean i.i.d. normal returns); ``scaling="none"`` (default) requires ``horizon=1``,
  so a multi-period figure is never produced silently. Every estimator here allows both.
- **Historical order statistic** (``convention``):

  * ``"inverted_cdf"`` (default): VaR = -x₍k₎, the k-th smallest return with
    k = ⌈n·α⌉ (the inverse of the empirical CDF; Hyndman & Fan type 1). ES is the
    Acerbi–Tasche (2002) tail mean ``-(Σ_{i<k} x₍i₎ + (n·α - k + 1)·x₍k₎) / (n·α)``.
    Riskfolio-Lib ``VaR_Hist``/``CVaR_Hist`` and skfolio ``value_at_risk``/``cvar`` use
    this. n·α is rounded to 9 decimals before the ceiling, so 1 - 0.95 =
    0.050000000000000044 counts as 0.05 (skfolio, computing 1 - β, does not).
  * ``"linear"``: VaR = -(numpy/pandas default linear-interpolated quantile at α, type 7);
    ES = -mean(returns ≤ that quantile). empyrical ``value_at_risk`` /
    ``conditional_value_at_risk`` and quantstats ``cvar(method="historical")`` use this.

- **Moments**: mean is the sample mean; σ the sample standard deviation (ddof = 1);
  skewness and excess kurtosis are the bias-corrected sample estimators of pandas (as in
  ``workbench.strategy.metrics``). ``mean=False`` centres the parametric estimators at 0
  (Jorion's "relative" VaR).
- **Normal**: VaR = -(μ + σ·z_α), ES = -μ + σ·φ(z_α)/α with z_α = Φ⁻¹(α) (quantstats
  ``value_at_risk`` and its parametric ``cvar`` up to sign).
- **Student-t**: fitted by maximum likelihood (``scipy.stats.t.fit``: ν, location and
  scale as fitted), or with a given ν > 2 and the *variance-matched* scale
  s = σ·√((ν - 2)/ν) about the sample mean, so the t has the sample variance.
  VaR = -(m + s·t_ν⁻¹(α)); ES = -m + s·f_ν(t_α)/α·(ν + t_α²)/(ν - 1) (needs ν > 1).
- **Cornish–Fisher**: z_cf = z + (z² - 1)S/6 + (z³ - 3z)K/24 - (2z³ - 5z)S²/36 with S the
  skewness and K the excess kurtosis; VaR = -(μ + σ·z_cf), which equals the normal VaR when
  S = K = 0. ES is -(μ + σ·mean of z_cf over the tail u ∈ (0, α)), by quadrature; the
  expansion must increase through the tail, checked on z ∈ [z_α - 4, z_α] (else
  :class:`ParameterError`: e.g. strongly negative excess kurtosis), which is what makes
  ES ≥ VaR.
- **Monte Carlo**: multivariate normal with the sample mean and covariance (ddof = 1),
  drawn from a seeded ``numpy.random.Generator`` through the Cholesky factor; VaR/ES are
  the historical estimators (``convention``) on the simulated portfolio returns. The
  standard error is distribution-free: the half-width of the binomial order-statistic 95%
  interval of the quantile divided by Φ⁻¹(0.975).
- **Delta-normal portfolio** (zero mean, Jorion 2007 ch. 7): VaR = z·√(xᵀΣx) with
  z = Φ⁻¹(c); marginal VaRᵢ = z·(Σx)ᵢ/σ_p; component VaRᵢ = xᵢ·marginalᵢ (they sum to the
  total: Euler); incremental VaRᵢ = VaR(x) - VaR(x without position i) (full revaluation).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import integrate, stats

from workbench.errors import ParameterError

__all__ = [
    "VaRResult",
    "PortfolioVaR",
    "CONVENTIONS",
    "SCALINGS",
    "check_confidence",
    "as_returns",
    "horizon_factor",
    "check_convention",
    "historical_var",
    "rolling_historical_var",
    "normal_var",
    "student_t_var",
    "cornish_fisher_var",
    "monte_carlo_var",
    "delta_normal_var",
]

CONVENTIONS = ("inverted_cdf", "linear")
SCALINGS = ("none", "sqrt_time")
_Z975 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class VaRResult:
    """A VaR estimate (a positive loss fraction) with the terms it was computed under.

    ``expected_shortfall`` is the ES at the same confidence and horizon (≥ ``value``);
    ``standard_error`` is set by simulation estimators (NaN otherwise). ``float(result)``
    is the VaR.
    """

    value: float
    confidence: float
    horizon: int
    method: str
    convention: str
    expected_shortfall: float = math.nan
    standard_error: float = math.nan
    params: dict = field(default_factory=dict, compare=False)

    def __float__(self) -> float:
        return self.value


@dataclass(frozen=True)
class PortfolioVaR:
    """Delta-normal portfolio VaR and its decomposition (units of the positions).

    ``component`` sums to ``value``; ``marginal`` is ∂VaR/∂xᵢ; ``incremental`` is the
    VaR change from removing position i entirely.
    """

    value: float
    confidence: float
    horizon: int
    marginal: pd.Series
    component: pd.Series
    incremental: pd.Series
    standalone: pd.Series

    def __float__(self) -> float:
        return self.value


# ----------------------------------------------------------------------------- inputs
def check_confidence(confidence: object) -> float:
    """``confidence`` as a float in (0, 1): 0.99 for a 99% VaR (not 99, not 0.01)."""
    v = float(confidence) if isinstance(confidence, numbers.Real) and not isinstance(confidence, bool) else math.nan
    if not (math.isfinite(v) and 0.0 < v < 1.0):
        raise ParameterError(f"confidence must be a probability in (0, 1) such as 0.99, got confidence={confidence!r}")
    return v


def horizon_factor(horizon: object, scaling: object) -> float:
    """The factor a one-period VaR/ES is multiplied by: √horizon (``"sqrt_time"``) or 1.

    ``scaling="none"`` with ``horizon > 1`` is a :class:`ParameterError`: a multi-period
    figure is only ever produced by asking for the rule by name.
    """
    if scaling not in SCALINGS:
        raise ParameterError(f"scaling must be one of {SCALINGS}, got scaling={scaling!r}")
    if isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral) or horizon < 1:
        raise ParameterError(f"horizon must be a whole number of periods >= 1, got horizon={horizon!r}")
    if scaling == "none" and horizon != 1:
        raise ParameterError(
            f"horizon={horizon} needs scaling='sqrt_time' (VaR x sqrt(horizon)); scaling='none' "
            "only gives one-period figures (or pass horizon-period returns with horizon=1)"
        )
    return math.sqrt(int(horizon))


def check_convention(convention: object) -> str:
    """``convention`` if it is one of :data:`CONVENTIONS` (see module conventions)."""
    if convention not in CONVENTIONS:
        raise ParameterError(f"convention must be one of {CONVENTIONS}, got convention={convention!r}")
    return str(convention)


def as_returns(returns: object, min_obs: int = 2) -> np.ndarray:
    """A 1-D float array of returns, NaNs dropped (see module conventions for inputs)."""
    if hasattr(returns, "returns") and not isinstance(returns, (pd.Series, pd.DataFrame, np.ndarray)):
        returns = returns.returns
    if isinstance(returns, pd.DataFrame):
        raise ParameterError(
            f"a returns DataFrame ({returns.shape[1]} columns) needs portfolio weights: "
            "use monte_carlo_var or delta_normal_var, or pass one column"
        )
    arr = np.asarray(returns, dtype="float64")
    if arr.ndim != 1:
        raise ParameterError(f"returns must be 1-D, got an array of shape {arr.shape}")
    arr = arr[~np.isnan(arr)]
    if not np.isfinite(arr).all():
        raise ParameterError("returns must be finite: found ±inf")
    if len(arr) < min_obs:
        raise ParameterError(f"need at least {min_obs} non-NaN returns, got {len(arr)}")
    return arr


def _tail_rank(n: int, alpha: float) -> tuple[int, float]:
    """(k, n·α): VaR is the k-th smallest of n (k = ⌈n·α⌉, n·α rounded to 9 decimals)."""
    na = round(n * alpha, 9)
    return max(1, math.ceil(na)), na


# ------------------------------------------------------------------------- historical
def _hist_var_es(x: np.ndarray, alpha: float, convention: str) -> tuple[float, float]:
    if convention == "linear":
        q = float(np.quantile(x, alpha))
        return -q, -float(x[x <= q].mean())
    k, na = _tail_rank(len(x), alpha)
    part = np.partition(x, k - 1)
    xk = float(part[k - 1])
    es = -(float(part[: k - 1].sum()) + (na - k + 1) * xk) / na
    return -xk, es


def historical_var(
    returns: object,
    confidence: float = 0.99,
    horizon: int = 1,
    *,
    convention: str = "inverted_cdf",
    scaling: str = "none",
) -> VaRResult:
    """Historical-simulation VaR and ES: order statistics of the observed returns.

    >>> r = pd.Series([-0.05, -0.03, -0.02, 0.0, 0.01, 0.01, 0.02, 0.02, 0.03, 0.04])
    >>> historical_var(r, 0.9).value
    0.05
    >>> round(historical_var(r, 0.8).expected_shortfall, 6)
    0.04
    """
    c = check_confidence(confidence)
    factor = horizon_factor(horizon, scaling)
    conv = check_convention(convention)
    x = as_returns(returns)
    var, es = _hist_var_es(x, 1.0 - c, conv)
    return VaRResult(var * factor, c, int(horizon), "historical", conv, es * factor, params={"n": len(x)})


def rolling_historical_var(
    returns: pd.Series | pd.DataFrame,
    window: int = 250,
    confidence: float = 0.99,
    *,
    convention: str = "inverted_cdf",
) -> pd.Series | pd.DataFrame:
    """One-period historical VaR over each trailing ``window`` of returns (NaN before it).

    The value at row t uses returns t-window+1 … t *inclusive*; shift it by one row to
    get the forecast for t+1 that a backtest compares with the return at t+1. NaN returns
    are not allowed inside a window (the window length is the sample size).
    """
    c = check_confidence(confidence)
    conv = check_convention(convention)
    if isinstance(window, bool) or not isinstance(window, numbers.Integral) or window < 2:
        raise ParameterError(f"window must be a whole number >= 2, got window={window!r}")
    frame = returns.to_frame() if isinstance(returns, pd.Series) else returns
    values = frame.to_numpy(dtype="float64")
    out = np.full(values.shape, np.nan)
    if len(values) >= window:
        alpha = 1.0 - c
        k, _ = _tail_rank(window, alpha)
        for j in range(values.shape[1]):
            windows = np.lib.stride_tricks.sliding_window_view(values[:, j], window)
            if conv == "linear":
                q = np.quantile(windows, alpha, axis=1)
            else:
                q = np.partition(windows, k - 1, axis=1)[:, k - 1]
            out[window - 1 :, j] = -q
    result = pd.DataFrame(out, index=frame.index, columns=frame.columns)
    return result.iloc[:, 0].rename(returns.name) if isinstance(returns, pd.Series) else result


# ------------------------------------------------------------------------- parametric
def _moments(x: np.ndarray, mean: bool) -> tuple[float, float]:
    sd = float(x.std(ddof=1))
    if not sd > 0:
        raise ParameterError(f"parametric VaR needs returns that vary: sample std is {sd!r}")
    return (float(x.mean()) if mean else 0.0), sd


def normal_var(
    returns: object,
    confidence: float = 0.99,
    horizon: int = 1,
    *,
    mean: bool = True,
    scaling: str = "none",
) -> VaRResult:
    """Parametric normal VaR and ES from the sample mean and standard deviation."""
    c = check_confidence(confidence)
    factor = horizon_factor(horizon, scaling)
    mu, sd = _moments(as_returns(returns), mean)
    alpha = 1.0 - c
    z = float(stats.norm.ppf(alpha))
    var = -(mu + sd * z)
    es = -mu + sd * float(stats.norm.pdf(z)) / alpha
    return VaRResult(var * factor, c, int(horizon), "normal", "normal", es * factor, params={"mu": mu, "sigma": sd})


def student_t_var(
    returns: object,
    confidence: float = 0.99,
    horizon: int = 1,
    *,
    df: float | None = None,
    mean: bool = True,
    scaling: str = "none",
) -> VaRResult:
    """Student-t VaR and ES: ML fit (``df=None``) or given ν with the variance-matched scale."""
    c = check_confidence(confidence)
    factor = horizon_factor(horizon, scaling)
    x = as_returns(returns, min_obs=3)
    if df is None:
        nu, loc, scale = (float(v) for v in stats.t.fit(x))
        if not mean:
            loc = 0.0
        conv = "t_mle"
    else:
        nu = float(df) if isinstance(df, numbers.Real) and not isinstance(df, bool) else math.nan
        if not (math.isfinite(nu) and nu > 2):
            raise ParameterError(f"df must be a finite number > 2 (the t needs a variance to match), got df={df!r}")
        loc, sd = _moments(x, mean)
        scale = sd * math.sqrt((nu - 2.0) / nu)
        conv = "t_variance_matched"
    if not nu > 1:
        raise ParameterError(f"the fitted t has df={nu!r} <= 1: it has no mean, so no expected shortfall")
    alpha = 1.0 - c
    t_a = float(stats.t.ppf(alpha, nu))
    var = -(loc + scale * t_a)
    es = -loc + scale * float(stats.t.pdf(t_a, nu)) / alpha * (nu + t_a**2) / (nu - 1.0)
    params = {"df": nu, "loc": loc, "scale": scale}
    return VaRResult(var * factor, c, int(horizon), "student_t", conv, es * factor, params=params)


def _cf_quantile(z: np.ndarray | float, s: float, k: float) -> np.ndarray | float:
    return z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36


def cornish_fisher_var(
    returns: object,
    confidence: float = 0.99,
    horizon: int = 1,
    *,
    mean: bool = True,
    scaling: str = "none",
) -> VaRResult:
    """Cornish–Fisher (modified) VaR: the normal quantile corrected for skew and kurtosis."""
    c = check_confidence(confidence)
    factor = horizon_factor(horizon, scaling)
    x = as_returns(returns, min_obs=4)
    mu, sd = _moments(x, mean)
    s, k = float(pd.Series(x).skew()), float(pd.Series(x).kurt())
    alpha = 1.0 - c
    z = float(stats.norm.ppf(alpha))
    grid = np.linspace(z - 4.0, z, 401)  # down to u ≈ 1e-10 for α = 0.01
    if np.any(np.diff(_cf_quantile(grid, s, k)) <= 0):
        raise ParameterError(
            f"the Cornish-Fisher expansion is not increasing through the {alpha:g} tail for "
            f"skew={s:.4g}, excess kurtosis={k:.4g}: its quantiles are not a distribution's; "
            "use historical_var or student_t_var"
        )
    var = -(mu + sd * float(_cf_quantile(z, s, k)))
    tail_mean, _ = integrate.quad(lambda u: _cf_quantile(stats.norm.ppf(u), s, k), 0.0, alpha, limit=200)
    es = -(mu + sd * tail_mean / alpha)
    params = {"mu": mu, "sigma": sd, "skew": s, "excess_kurtosis": k}
    return VaRResult(var * factor, c, int(horizon), "cornish_fisher", "cornish_fisher", es * factor, params=params)


# ------------------------------------------------------------------------ portfolios
def _frame_and_weights(returns: object, weights: object) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    if hasattr(returns, "returns") and not isinstance(returns, (pd.Series, pd.DataFrame, np.ndarray)):
        returns = returns.returns
    if isinstance(returns, pd.Series) or (isinstance(returns, np.ndarray) and returns.ndim == 1):
        returns = pd.DataFrame({"returns": np.asarray(returns, dtype="float64")})
    frame = pd.DataFrame(returns).dropna()
    if len(frame) < 2:
        raise ParameterError(f"need at least 2 rows of returns without NaN, got {len(frame)}")
    if weights is None:
        if frame.shape[1] != 1:
            raise ParameterError(f"weights are required for {frame.shape[1]} assets")
        weights = [1.0]
    w = _weights(weights, frame.columns)
    return frame.to_numpy(dtype="float64"), w, frame.columns


def _weights(weights: object, columns: pd.Index) -> np.ndarray:
    if isinstance(weights, (pd.Series, dict)):
        s = pd.Series(weights, dtype="float64")
        missing = set(columns) - set(s.index) | set(s.index) - set(columns)
        if missing:
            raise ParameterError(f"weights and returns must name the same assets; unmatched: {sorted(map(str, missing))}")
        w = s.reindex(columns).to_numpy()
    else:
        w = np.asarray(weights, dtype="float64").ravel()
    if len(w) != len(columns):
        raise ParameterError(f"need one weight per asset: {len(columns)} assets, got {len(w)} weights")
    if not np.isfinite(w).all():
        raise ParameterError(f"weights must be finite, got {w.tolist()}")
    return w


def monte_carlo_var(
    returns: object,
    weights: object = None,
    confidence: float = 0.99,
    horizon: int = 1,
    *,
    n_paths: int = 100_000,
    seed: int | np.random.Generator = 0,
    convention: str = "inverted_cdf",
    scaling: str = "none",
) -> VaRResult:
    """Monte Carlo VaR/ES of a linear portfolio under a multivariate normal fitted to returns.

    ``weights`` are portfolio fractions (or values: the VaR is then in those units), one
    per column; omit them for a single returns series. The result carries the standard
    error of the simulated VaR.
    """
    c = check_confidence(confidence)
    factor = horizon_factor(horizon, scaling)
    conv = check_convention(convention)
    if isinstance(n_paths, bool) or not isinstance(n_paths, numbers.Integral) or n_paths < 100:
        raise ParameterError(f"n_paths must be a whole number >= 100, got n_paths={n_paths!r}")
    values, w, _ = _frame_and_weights(returns, weights)
    mu = values.mean(axis=0)
    cov = np.atleast_2d(np.cov(values, rowvar=False, ddof=1))
    chol = _cholesky(cov)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    draws = rng.standard_normal((int(n_paths), len(w)))
    simulated = draws @ (chol.T @ w) + float(mu @ w)  # (z Lᵀ + μ) w without the n×k product
    alpha = 1.0 - c
    var, es = _hist_var_es(simulated, alpha, conv)
    se = _quantile_standard_error(simulated, alpha)
    return VaRResult(var * factor, c, int(horizon), "monte_carlo", conv, es * factor, se * factor,
                     params={"n_paths": int(n_paths)})


def _cholesky(cov: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:  # singular (e.g. a duplicated asset): a symmetric root
        vals, vecs = np.linalg.eigh(cov)
        return vecs * np.sqrt(np.clip(vals, 0.0, None))


def _quantile_standard_error(x: np.ndarray, alpha: float) -> float:
    """Half-width of the binomial order-statistic 95% interval of the α-quantile / 1.96."""
    n = len(x)
    k, _ = _tail_rank(n, alpha)
    d = math.ceil(_Z975 * math.sqrt(n * alpha * (1.0 - alpha)))
    lo, hi = max(k - 1 - d, 0), min(k - 1 + d, n - 1)
    part = np.partition(x, (lo, hi))
    return float(part[hi] - part[lo]) / (2.0 * _Z975)


def delta_normal_var(
    positions: object,
    *,
    returns: pd.DataFrame | None = None,
    covariance: pd.DataFrame | np.ndarray | None = None,
    confidence: float = 0.99,
    horizon: int = 1,
    scaling: str = "none",
) -> PortfolioVaR:
    """Delta-normal VaR of a linear portfolio with marginal, component and incremental VaR.

    ``positions`` are values (currency) or weights per asset; give the per-period
    ``covariance`` of asset returns, or ``returns`` to use their sample covariance (ddof=1).
    """
    c = check_confidence(confidence)
    factor = horizon_factor(horizon, scaling)
    if (returns is None) == (covariance is None):
        raise ParameterError("give exactly one of returns= or covariance=")
    if returns is not None:
        frame = pd.DataFrame(returns).dropna()
        cov = frame.cov(ddof=1)
    else:
        cov = covariance if isinstance(covariance, pd.DataFrame) else pd.DataFrame(np.atleast_2d(covariance))
    sigma = cov.to_numpy(dtype="float64")
    if sigma.shape[0] != sigma.shape[1] or not np.allclose(sigma, sigma.T):
        raise ParameterError(f"covariance must be a symmetric square matrix, got shape {sigma.shape}")
    names = cov.columns if isinstance(positions, (pd.Series, dict)) or returns is not None or isinstance(covariance, pd.DataFrame) else pd.RangeIndex(len(sigma))
    x = _weights(positions, pd.Index(names))
    z = float(stats.norm.ppf(c)) * factor
    sx = sigma @ x
    sd = math.sqrt(max(float(x @ sx), 0.0))
    if sd == 0:
        raise ParameterError("the portfolio has zero variance: marginal VaR is undefined")
    total = z * sd
    marginal = z * sx / sd
    without = np.array([z * math.sqrt(max(float(x @ sx) - 2 * x[i] * sx[i] + x[i] ** 2 * sigma[i, i], 0.0))
                        for i in range(len(x))])
    standalone = z * np.abs(x) * np.sqrt(np.diag(sigma))
    idx = pd.Index(names)
    return PortfolioVaR(
        value=total,
        confidence=c,
        horizon=int(horizon),
        marginal=pd.Series(marginal, index=idx, name="marginal_var"),
        component=pd.Series(x * marginal, index=idx, name="component_var"),
        incremental=pd.Series(total - without, index=idx, name="incremental_var"),
        standalone=pd.Series(standalone, index=idx, name="standalone_var"),
    )
