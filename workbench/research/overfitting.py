"""Overfitting statistics: how much to believe the best of many backtests (issue 12).

Pure numpy/scipy functions, no I/O. Conventions shared by every function here:

- **Sharpe ratios are per period** (per bar: daily returns give a daily SR), never
  annualised, unless a name says ``annual``: ``SR = mean(r) / std(r, ddof=1)`` on simple
  returns, risk-free rate 0 (pass excess returns to use another). An annualised SR over
  ``ppy`` periods a year converts as ``SR_annual / sqrt(ppy)``; a variance of annualised
  SRs as ``V_annual / ppy``.
- **Skewness γ₃ and kurtosis γ₄ are population moments** as in Bailey & López de Prado
  (2012): ``γ₃ = m₃ / m₂^1.5``, ``γ₄ = m₄ / m₂²`` with ``m_k = mean((r - mean(r))**k)``
  (``scipy.stats.skew(bias=True)``, ``scipy.stats.kurtosis(fisher=False, bias=True)``).
  γ₄ is **non-excess** kurtosis: 3 for a normal distribution.
- **NaN or infinite inputs are rejected** (:class:`~workbench.errors.ParameterError`),
  never dropped silently: a gap in a return series is the caller's decision.

References
----------
- PSR, MinTRL: D. H. Bailey & M. López de Prado (2012), "The Sharpe Ratio Efficient
  Frontier", Journal of Risk 15(2).
- DSR, expected maximum Sharpe: D. H. Bailey & M. López de Prado (2014), "The Deflated
  Sharpe Ratio: Correcting for Selection Bias, Backtest Overfitting and Non-Normality",
  Journal of Portfolio Management 40(5).
- MinBTL: D. H. Bailey, J. M. Borwein, M. López de Prado & Q. J. Zhu (2014),
  "Pseudo-Mathematics and Financial Charlatanism: The Effects of Backtest Overfitting on
  Out-of-Sample Performance", Notices of the AMS 61(5).
- PBO by CSCV: D. H. Bailey, J. M. Borwein, M. López de Prado & Q. J. Zhu (2017),
  "The Probability of Backtest Overfitting", Journal of Computational Finance 20(4)
  (working paper 2015).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from workbench.errors import ParameterError

__all__ = [
    "EULER_MASCHERONI",
    "SharpeMoments",
    "sharpe_moments",
    "probabilistic_sharpe_ratio",
    "expected_max_sharpe",
    "deflated_sharpe_ratio",
    "min_track_record_length",
    "min_backtest_length",
    "CSCVResult",
    "pbo_cscv",
    "MAX_CSCV_BLOCKS",
]

EULER_MASCHERONI = 0.5772156649015329
"""γ, the Euler–Mascheroni constant of the expected-maximum approximation."""

MAX_CSCV_BLOCKS = 24
"""Largest S for CSCV: C(24, 12) = 2,704,156 combinations, all enumerated."""

# CSCV evaluates combinations x trials in steps of about this many cells (each temporary
# array ~4 MB), so the working memory stays flat whatever N and C(S, S/2) are.
_CHUNK_CELLS = 2**19
_METRICS = ("sharpe", "mean")


# --------------------------------------------------------------------------- helpers


def _finite(name: str, value: object) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a real number, got {name}={value!r}") from None
    if not math.isfinite(x):
        raise ParameterError(f"{name} must be finite, got {name}={value!r}")
    return x


def _check_kurt(kurt: float) -> None:
    # The most common slip is passing excess kurtosis (0 for a normal): γ₄ >= 1 always.
    if kurt < 1.0:
        raise ParameterError(
            f"kurt is non-excess kurtosis (3 for a normal) and must be >= 1, got kurt={kurt}"
        )


def _sr_variance_term(sr: float, skew: float, kurt: float) -> float:
    """``1 − γ₃·SR + (γ₄ − 1)/4·SR²``: (n − 1) × the variance of the SR estimator."""
    term = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    if term <= 0.0:
        raise ParameterError(
            "1 - skew*sr + (kurt-1)/4*sr**2 must be > 0 (the Sharpe estimator's variance), "
            f"got {term} for sr={sr}, skew={skew}, kurt={kurt}"
        )
    return term


def _std_normal_max(n_trials: int) -> float:
    """Approximate E[max] of ``n_trials`` iid standard normals (Bailey & López de Prado 2014).

    ``(1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e))``; 0 for a single trial (no selection).
    """
    if n_trials == 1:
        return 0.0
    g = EULER_MASCHERONI
    return float(
        (1.0 - g) * stats.norm.ppf(1.0 - 1.0 / n_trials)
        + g * stats.norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    )


def _n_trials(value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"n_trials must be an integer >= {minimum}, got n_trials={value!r}")
    return int(value)


# --------------------------------------------------------------------------- PSR


@dataclass(frozen=True, kw_only=True)
class SharpeMoments:
    """The four numbers PSR, DSR and MinTRL need from a return series (module conventions)."""

    sr: float
    n: int
    skew: float
    kurt: float


def sharpe_moments(returns: ArrayLike) -> SharpeMoments:
    """Per-period Sharpe (ddof=1), length, population skewness and non-excess kurtosis.

    >>> m = sharpe_moments([0.01, -0.02, 0.03, 0.0, 0.01])
    >>> m.n, round(m.sr, 6), round(m.kurt, 6)
    (5, 0.330289, 2.268595)
    """
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1:
        raise ParameterError(f"returns must be one-dimensional, got shape {r.shape}")
    if r.size < 3:
        raise ParameterError(f"returns needs at least 3 observations, got {r.size}")
    if not np.isfinite(r).all():
        bad = int(np.flatnonzero(~np.isfinite(r))[0])
        raise ParameterError(f"returns must be finite (no NaN/inf), got {r[bad]} at position {bad}")
    sd = float(r.std(ddof=1))
    if sd == 0.0:
        raise ParameterError("returns must not be constant (std = 0 leaves the Sharpe ratio undefined)")
    return SharpeMoments(
        sr=float(r.mean()) / sd,
        n=int(r.size),
        skew=float(stats.skew(r, bias=True)),
        kurt=float(stats.kurtosis(r, fisher=False, bias=True)),
    )


def _moments(
    returns: ArrayLike | None, sr: object, n: object, skew: object, kurt: object
) -> SharpeMoments:
    given = [v is not None for v in (sr, n, skew, kurt)]
    if returns is not None:
        if any(given):
            raise ParameterError("pass either returns or (sr, n, skew, kurt), not both")
        return sharpe_moments(returns)
    if not all(given):
        raise ParameterError("pass returns, or all of sr, n, skew and kurt")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ParameterError(f"n (number of observations) must be an integer >= 2, got n={n!r}")
    return SharpeMoments(
        sr=_finite("sr", sr), n=int(n), skew=_finite("skew", skew), kurt=_finite("kurt", kurt)
    )


def probabilistic_sharpe_ratio(
    returns: ArrayLike | None = None,
    *,
    sr: float | None = None,
    n: int | None = None,
    skew: float | None = None,
    kurt: float | None = None,
    sr_benchmark: float = 0.0,
) -> float:
    """Probability that the true Sharpe ratio exceeds ``sr_benchmark`` (PSR).

    Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier":

        PSR(SR*) = Φ( (SR̂ − SR*)·√(n − 1) / √(1 − γ₃·SR̂ + (γ₄ − 1)/4·SR̂²) )

    Give either a return series (moments estimated with the module's conventions: SR
    with ddof=1, population skewness, non-excess kurtosis) or the four numbers ``sr``
    (per period), ``n`` (observations), ``skew`` and ``kurt`` (non-excess: 3 = normal).
    ``sr_benchmark`` is per period too. The normal approximation of the SR estimator is
    asymptotic (the paper's derivation, after Mertens 2002): trust it for n in the tens
    or more and IID returns. PSR(0) rises with SR̂ only while γ₃·SR̂ < 2 (dz/dSR̂ ∝
    1 − γ₃·SR̂/2), which per-period Sharpe ratios of real strategies always satisfy.

    >>> round(probabilistic_sharpe_ratio(sr=0.1, n=250, skew=0.0, kurt=3.0), 6)
    0.942261
    """
    m = _moments(returns, sr, n, skew, kurt)
    _check_kurt(m.kurt)
    bench = _finite("sr_benchmark", sr_benchmark)
    term = _sr_variance_term(m.sr, m.skew, m.kurt)
    z = (m.sr - bench) * math.sqrt(m.n - 1) / math.sqrt(term)
    return float(stats.norm.cdf(z))


# --------------------------------------------------------------------------- DSR


def expected_max_sharpe(n_trials: int, var: float) -> float:
    """Expected maximum of ``n_trials`` Sharpe ratios whose true value is 0 (SR*₀ of the DSR).

    Bailey & López de Prado (2014), eq. for SR*₀ (from extreme value theory):

        SR*₀ = √V · ((1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e)))

    with γ the Euler–Mascheroni constant and V the variance of the trials' SR estimates,
    in the units of the Sharpe ratios compared (per period for the DSR). The approximation
    is meant for N ≫ 1; a single trial has no selection, so N = 1 gives 0.

    >>> round(expected_max_sharpe(100, 0.5), 4)  # annualised V = 1/2 (the paper's example)
    1.7894
    """
    N = _n_trials(n_trials)
    v = _finite("var", var)
    if v < 0.0:
        raise ParameterError(f"var (variance of the trials' Sharpe ratios) must be >= 0, got var={var}")
    return math.sqrt(v) * _std_normal_max(N)


def deflated_sharpe_ratio(
    sr: float,
    n: int,
    skew: float,
    kurt: float,
    *,
    trials_sr: ArrayLike | None = None,
    n_trials: int | None = None,
    var_trials: float | None = None,
) -> float:
    """PSR of the selected strategy against the expected maximum SR of all trials (DSR).

    Bailey & López de Prado (2014), "The Deflated Sharpe Ratio": DSR = PSR(SR*₀) with
    SR*₀ = :func:`expected_max_sharpe` (N, V). ``sr``, ``n``, ``skew``, ``kurt`` describe
    the selected strategy (module conventions: per-period SR, non-excess kurtosis). The
    trials are given either as ``trials_sr`` (the per-period SR of every trial, the
    selected one included: N = its length, V = its sample variance, **ddof = 1**) or as
    ``n_trials`` and ``var_trials`` (V in per-period units: a variance of annualised SRs
    divided by the periods per year).

    >>> round(deflated_sharpe_ratio(2.5 / 250**0.5, 1250, -3.0, 10.0,
    ...                             n_trials=100, var_trials=0.5 / 250), 4)
    0.9004
    """
    if trials_sr is not None:
        if n_trials is not None or var_trials is not None:
            raise ParameterError("pass either trials_sr or (n_trials, var_trials), not both")
        t = np.asarray(trials_sr, dtype=float).ravel()
        if t.size < 2:
            raise ParameterError(f"trials_sr needs at least 2 trials, got {t.size}")
        if not np.isfinite(t).all():
            raise ParameterError("trials_sr must be finite (no NaN/inf)")
        N, V = int(t.size), float(t.var(ddof=1))
    else:
        if n_trials is None or var_trials is None:
            raise ParameterError("pass trials_sr, or both n_trials and var_trials")
        N, V = _n_trials(n_trials), _finite("var_trials", var_trials)
    sr0 = expected_max_sharpe(N, V)
    return probabilistic_sharpe_ratio(sr=sr, n=n, skew=skew, kurt=kurt, sr_benchmark=sr0)


# --------------------------------------------------------------------------- MinTRL, MinBTL


def min_track_record_length(
    sr: float, skew: float, kurt: float, sr_benchmark: float = 0.0, confidence: float = 0.95
) -> float:
    """Observations needed for PSR(``sr_benchmark``) to reach ``confidence`` (MinTRL).

    Bailey & López de Prado (2012):

        MinTRL = 1 + (1 − γ₃·SR + (γ₄ − 1)/4·SR²) · (Z_α / (SR − SR*))²

    with Z_α = Φ⁻¹(confidence). In periods of ``sr`` (daily SR → days); not rounded up.
    A Sharpe ratio at or below the benchmark never gets there: ``math.inf``.

    >>> round(min_track_record_length(0.1, 0.0, 3.0), 4)
    272.9071
    """
    s, g3, g4 = _finite("sr", sr), _finite("skew", skew), _finite("kurt", kurt)
    bench, conf = _finite("sr_benchmark", sr_benchmark), _finite("confidence", confidence)
    if not 0.0 < conf < 1.0:
        raise ParameterError(f"confidence must be in (0, 1), got confidence={confidence}")
    _check_kurt(g4)
    term = _sr_variance_term(s, g3, g4)
    if s <= bench:
        return math.inf
    z = float(stats.norm.ppf(conf))
    return 1.0 + term * (z / (s - bench)) ** 2


def min_backtest_length(n_trials: int, target_sharpe_annual: float) -> float:
    """Years of data below which N skill-less trials are expected to show ``target`` (MinBTL).

    Bailey, Borwein, López de Prado & Zhu (2014), "Pseudo-Mathematics and Financial
    Charlatanism", the exact form before their upper bound 2·ln(N)/E[max]²:

        MinBTL = ( ((1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e))) / E[max_N] )²

    where E[max_N] = ``target_sharpe_annual`` is the annualised SR the best of N trials
    (true SR 0, IID normal returns, so an annualised SR estimated over y years has
    variance ≈ 1/y) should not reach by chance. In years; needs N >= 2.

    >>> round(min_backtest_length(45, 1.0), 4)  # "no more than 45 trials on 5 years"
    4.9981
    """
    N = _n_trials(n_trials, minimum=2)
    target = _finite("target_sharpe_annual", target_sharpe_annual)
    if target <= 0.0:
        raise ParameterError(
            f"target_sharpe_annual must be > 0, got target_sharpe_annual={target_sharpe_annual}"
        )
    return (_std_normal_max(N) / target) ** 2


# --------------------------------------------------------------------------- PBO (CSCV)


@dataclass(frozen=True, kw_only=True, eq=False)
class CSCVResult:
    """Probability of Backtest Overfitting and what it was computed from.

    One entry per combination c (in ``itertools.combinations(range(S), S // 2)`` order,
    the IS blocks): ``logits`` λ_c, ``best_trial`` (column chosen in-sample),
    ``is_performance`` and ``oos_performance`` (the chosen trial's metric in and out of
    sample: the IS-vs-OOS scatter).
    """

    pbo: float  # share of combinations with λ <= 0 (the IS-best is at or below the OOS median)
    prob_oos_loss: float  # share of combinations whose IS-best trial has OOS metric < 0
    logits: np.ndarray
    best_trial: np.ndarray
    is_performance: np.ndarray
    oos_performance: np.ndarray
    n_blocks: int  # S
    block_size: int  # rows per block
    dropped_rows: int  # the oldest T mod S rows, left out so all blocks are equal
    metric: str

    @property
    def n_combinations(self) -> int:
        return int(self.logits.size)


def _check_performance(performance: ArrayLike, S: object, metric: object) -> tuple[np.ndarray, int]:
    x = np.asarray(performance, dtype=float)
    if x.ndim != 2:
        raise ParameterError(f"performance must be 2-D (T bars x N trials), got shape {x.shape}")
    T, N = x.shape
    if N < 2:
        raise ParameterError(f"performance needs at least 2 trials (columns), got N={N}")
    if isinstance(S, bool) or not isinstance(S, (int, np.integer)):
        raise ParameterError(f"S must be an even integer, got S={S!r}")
    if S < 2 or S % 2:
        raise ParameterError(f"S must be an even integer >= 2, got S={S}")
    if S > MAX_CSCV_BLOCKS:
        raise ParameterError(f"S must be <= {MAX_CSCV_BLOCKS} (C(S, S/2) combinations), got S={S}")
    if S > T:
        raise ParameterError(f"S must be <= T (one bar per block at least), got S={S}, T={T}")
    if (T // S) * (S // 2) < 2:
        raise ParameterError(
            f"each half-sample needs >= 2 bars for a standard deviation, got S={S}, T={T}"
        )
    if metric not in _METRICS:
        raise ParameterError(f"metric must be one of {_METRICS}, got metric={metric!r}")
    if not np.isfinite(x).all():
        row, col = (int(i[0]) for i in np.nonzero(~np.isfinite(x)))
        raise ParameterError(
            f"performance must be finite (no NaN/inf), got {x[row, col]} at row {row}, column {col}"
        )
    return x, int(S)


def _block_sums(x: np.ndarray, S: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Per-block Σr and Σr² (S × N each), one block at a time: one pass, no copy of x."""
    T, N = x.shape
    m = T // S
    drop = T - m * S
    s1, s2 = np.empty((S, N)), np.empty((S, N))
    for b in range(S):
        blk = x[drop + b * m : drop + (b + 1) * m]
        s1[b] = blk.sum(axis=0)
        s2[b] = np.einsum("ij,ij->j", blk, blk)
    return s1, s2, m, drop


def _metric_from_sums(s1: np.ndarray, s2: np.ndarray, length: int, metric: str) -> np.ndarray:
    """Mean or Sharpe (ddof=1) of a half-sample from its Σr, Σr² and length.

    A trial constant over the half (std 0) gets Sharpe ±inf by the sign of its mean, 0 if
    the mean is 0 too: the limit of a vanishing risk.
    """
    mean = s1 / length
    if metric == "mean":
        return mean
    sd = s1 * mean  # in place from here: this runs on every chunk of combinations
    np.subtract(s2, sd, out=sd)
    np.maximum(sd, 0.0, out=sd)  # cancellation can dip below 0
    sd /= length - 1
    np.sqrt(sd, out=sd)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = mean / sd
    flat = sd == 0.0
    if flat.any():
        m = mean[flat]
        out[flat] = np.where(m > 0, np.inf, np.where(m < 0, -np.inf, 0.0))
    return out


def _combination_chunks(S: int, n_trials: int) -> Iterator[np.ndarray]:
    """IS membership rows (k × S, 0/1) for every C(S, S/2) combination, k × N <= ``_CHUNK_CELLS``."""
    combos = itertools.combinations(range(S), S // 2)
    step = max(1, _CHUNK_CELLS // n_trials)
    while chunk := list(itertools.islice(combos, step)):
        rows = np.zeros((len(chunk), S))
        rows[np.repeat(np.arange(len(chunk)), S // 2), np.asarray(chunk).ravel()] = 1.0
        yield rows


def _relative_rank(values: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """ω̄ = rank / (N + 1) of each row's ``chosen`` value among the row (average rank on ties).

    Rank 1 is the worst of N, so ω̄ ∈ (0, 1) and its logit is finite.
    """
    pick = values[np.arange(values.shape[0]), chosen][:, None]
    below = (values < pick).sum(axis=1)
    ties = (values == pick).sum(axis=1)  # includes the chosen trial itself
    return (below + (ties + 1) / 2.0) / (values.shape[1] + 1)


def pbo_cscv(performance: ArrayLike, S: int = 16, metric: str = "sharpe") -> CSCVResult:
    """Probability of Backtest Overfitting by combinatorially symmetric cross-validation.

    Bailey, Borwein, López de Prado & Zhu (2017), "The Probability of Backtest
    Overfitting". ``performance`` is T bars × N trials of per-bar returns (one column
    per parameter set). The rows are cut into S equal blocks of ``T // S`` bars in time
    order; the **oldest ``T mod S`` rows are dropped** so every block has the same length.
    For each of the C(S, S/2) ways to choose S/2 blocks as in-sample (IS; the other half
    is out-of-sample, OOS), the trial with the best IS ``metric`` is picked (the lowest
    column index on a tie), its relative rank ω̄ among all N trials OOS is taken
    (average rank on ties), and λ = ln(ω̄ / (1 − ω̄)). PBO = share of λ <= 0.

    ``metric``: ``"sharpe"`` (per-bar mean / std with ddof=1 over the half-sample) or
    ``"mean"`` (per-bar mean return). Bounded memory: Σr and Σr² per block and trial
    (S × N arrays) are computed in one pass, and each combination's metric comes from
    summing its blocks' sums (a 0/1 membership matrix times the block sums,
    a few hundred combinations at a time); no sub-matrix of ``performance`` is built.

    >>> rng = np.random.default_rng(0)
    >>> res = pbo_cscv(rng.standard_normal((200, 10)), S=4)
    >>> res.n_combinations, 0.0 <= res.pbo <= 1.0
    (6, True)
    """
    x, S = _check_performance(performance, S, metric)
    s1, s2, m, drop = _block_sums(x, S)
    half = m * (S // 2)
    logits, best, is_perf, oos_perf = [], [], [], []
    for rows in _combination_chunks(S, x.shape[1]):
        is_metric = _metric_from_sums(rows @ s1, rows @ s2, half, metric)
        oos_metric = _metric_from_sums((1.0 - rows) @ s1, (1.0 - rows) @ s2, half, metric)
        chosen = np.argmax(is_metric, axis=1)
        omega = _relative_rank(oos_metric, chosen)
        idx = np.arange(rows.shape[0])
        logits.append(np.log(omega / (1.0 - omega)))
        best.append(chosen)
        is_perf.append(is_metric[idx, chosen])
        oos_perf.append(oos_metric[idx, chosen])
    lam, oos = np.concatenate(logits), np.concatenate(oos_perf)
    return CSCVResult(
        pbo=float(np.mean(lam <= 0.0)),
        prob_oos_loss=float(np.mean(oos < 0.0)),
        logits=lam,
        best_trial=np.concatenate(best),
        is_performance=np.concatenate(is_perf),
        oos_performance=oos,
        n_blocks=S,
        block_size=m,
        dropped_rows=drop,
        metric=str(metric),
    )
