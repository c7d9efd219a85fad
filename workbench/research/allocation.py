"""Capital allocation: long-only, fully-invested weights across columns (issue 12 §3).

:func:`allocate` turns a window of per-period simple returns (one column per asset or
strategy sleeve) into weights that are >= 0 and sum to 1; :func:`risk_contributions` says
how much of the portfolio variance each column carries. The solvers are skfolio's
(imported on first use: it is slow to import); the closed forms are numpy.

Conventions (also in :data:`ALLOCATION_CONVENTIONS`):

- **Returns** are per-period simple returns, rows = periods, columns = assets. NaN or
  infinite values are rejected, never dropped: a gap is the caller's decision. At least
  two rows are needed.
- **Moments**: the sample mean and the sample covariance with ``ddof=1`` (skfolio
  ``EmpiricalMu`` and ``EmpiricalCovariance(ddof=1, nearest=True)``; ``nearest`` only
  changes a covariance that is not positive definite, e.g. fewer rows than columns).
  Volatility is ``std(ddof=1)``. Nothing is annualised and ``risk_free_rate`` is per
  period, in the returns' own periodicity.
- **Solvers**: erc, min_variance and max_sharpe are skfolio convex programs solved by
  CLARABEL with 1e-10 duality gaps and 1e-8 feasibility, on the returns divided by one
  constant (unit average variance; ``risk_free_rate`` divided too). No weight depends on
  that constant in exact arithmetic; it only keeps the solver well conditioned. Weights
  are then within ~1e-6 of the optimum (~2e-5 on ill-conditioned windows), the
  portfolio variance within ~1e-8 relative. skfolio's "Solution may be inaccurate"
  warning, rare at these settings, is left to reach the caller.
- **Weights** are finally cleaned of solver dust: entries within ``1e-8`` outside the
  bounds are clipped onto them (tiny negatives become 0), then the gap to a sum of 1 is
  spread over the weights in proportion to their room inside the bounds (with the
  default bounds and a sum above 1 that is ``w / sum(w)``). They sum to 1 within 1e-12
  and lie in ``[min_weight, max_weight]`` within 1e-12. A solver answer further than
  1e-8 outside the bounds raises.
- **HRP** follows skfolio 1.12's ``HierarchicalRiskParity``, the *seriated halves*
  variant, with every setting pinned: Pearson angular distance
  ``sqrt(0.5 * (1 - corr))``, Ward linkage on that distance, scipy's optimal leaf
  ordering, then recursive bisection of the *ordered list* into halves (``mid = n // 2``,
  the odd one out goes right), each half weighted by its inverse-variance portfolio's
  variance: ``alpha_left = 1 - v_left / (v_left + v_right)``. It is not the 2016 paper's
  variant (single linkage, unreordered quasi-diagonal order, same halves) nor the
  dendrogram-tree bisection (split at each node's two children); the three give
  different weights on the GOOG/SPX/IXIC/WTI sample (the tests show it).
- **Bounds** ``min_weight``/``max_weight`` apply to every column. equal_weight always
  meets feasible bounds; erc, min_variance, max_sharpe and hrp pass them to skfolio
  (erc with binding bounds is bounded risk budgeting, no longer equal contributions;
  hrp clamps each split factor, skfolio's rule). inverse_volatility is a closed form that
  cannot honour bounds and refuses non-default ones rather than ignore them.
- **One column** gets weight 1.0 under every method.
- **Column order**: permuting the columns permutes the weights for every method except
  possibly hrp: with tied distances scipy's linkage, and so the leaf order that is
  halved, can depend on the input order (no break was seen in 1,200 random
  permutations without ties). The solvers' weights agree to their precision (~1e-5).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import ParameterError, first_line

__all__ = ["ALLOCATORS", "ALLOCATION_CONVENTIONS", "allocate", "risk_contributions"]

ALLOCATORS: tuple[str, ...] = (
    "equal_weight",
    "inverse_volatility",
    "equal_risk_contribution",
    "min_variance",
    "max_sharpe",
    "hrp",
)
"""The allocation methods :func:`allocate` knows, by name."""

ALLOCATION_CONVENTIONS: dict[str, str] = {
    "equal_weight": "w_i = 1/n.",
    "inverse_volatility": (
        "w_i proportional to 1/sigma_i with sigma_i = std(ddof=1) of column i (skfolio "
        "InverseVolatility); refuses non-default bounds."
    ),
    "equal_risk_contribution": (
        "skfolio RiskBudgeting on the variance with equal budgets: every column carries "
        "1/n of w'Sigma w (bounds, when binding, turn it into bounded risk budgeting)."
    ),
    "min_variance": "skfolio MeanRisk minimising w'Sigma w, long-only, fully invested.",
    "max_sharpe": (
        "skfolio MeanRisk maximising (mu'w - rf) / sqrt(w'Sigma w), long-only, with rf "
        "per period; raises when no allowed portfolio has a mean above rf."
    ),
    "hrp": (
        "skfolio HierarchicalRiskParity, seriated-halves variant: Pearson angular distance "
        "sqrt(0.5*(1-corr)), Ward linkage, optimal leaf ordering, recursive halving of "
        "the ordered list with inverse-variance cluster variances (not the 2016 paper's "
        "single linkage, not dendrogram-tree bisection)."
    ),
    "covariance": (
        "sample covariance with ddof=1 (skfolio EmpiricalCovariance(ddof=1, nearest=True)) "
        "and sample mean (EmpiricalMu), not annualised."
    ),
    "returns": (
        "per-period simple returns, rows = periods, columns = assets; NaN/inf rejected, "
        ">= 2 rows."
    ),
    "weights": (
        "solver dust within 1e-8 of the bounds is clipped onto them and the gap to a sum "
        "of 1 spread over the room inside the bounds: sum 1 and bounds within 1e-12."
    ),
}
"""One sentence per method and per shared convention (what a report prints beside weights)."""

_NEEDS_VARIANCE = frozenset(ALLOCATORS) - {"equal_weight"}
_DUST = 1e-8  # how far outside its bounds a solver weight may land and still be clipped
_BOUND_TOL = 1e-12  # n * max_weight == 1 is feasible despite float rounding
# skfolio's CLARABEL defaults (1e-9 gaps on raw daily returns) leave min-variance weights
# ~1e-5 and max-Sharpe weights ~1e-4 from the optimum; 1e-10 gaps on rescaled returns
# (see _solver_input) reach ~1e-6 and rarely end "inaccurate"; 1e-12 often stalls there.
_SOLVER = "CLARABEL"
_SOLVER_PARAMS: dict[str, float] = {
    "tol_gap_abs": 1e-10,
    "tol_gap_rel": 1e-10,
    "tol_feas": 1e-8,  # clarabel default
}


def allocate(
    returns: pd.DataFrame,
    method: str = "equal_weight",
    *,
    risk_free_rate: float = 0.0,
    min_weight: float = 0.0,
    max_weight: float = 1.0,
) -> pd.Series:
    """Long-only, fully-invested weights across the columns of a returns window.

    Parameters
    ----------
    returns
        Per-period simple returns, one column per asset or sleeve, at least two rows, no
        NaN or infinite value.
    method
        One of :data:`ALLOCATORS`; :data:`ALLOCATION_CONVENTIONS` says what each does.
    risk_free_rate
        Per period (daily returns: a daily rate). Only max_sharpe uses it; the other
        methods do not involve the mean.
    min_weight, max_weight
        Bounds on every weight, ``0 <= min_weight <= max_weight <= 1`` with
        ``n * min_weight <= 1 <= n * max_weight``.

    Returns
    -------
    pandas.Series
        Weights indexed by ``returns.columns``, named ``method``, each in
        ``[min_weight, max_weight]`` and summing to 1 (both within 1e-12).

    Raises
    ------
    ParameterError
        An unknown method, a non-DataFrame, fewer than two rows, a NaN or infinite value
        (the message names the column), a constant column for a method that needs its
        variance (any but equal_weight, with two or more columns), infeasible bounds,
        non-default bounds for inverse_volatility, max_sharpe when even the best allowed
        portfolio's mean does not exceed ``risk_free_rate`` (no fallback: the caller
        decides what to hold then), or a window skfolio cannot solve.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"a": [0.01, -0.01, 0.02, 0.0], "b": [0.03, -0.02, 0.01, -0.02]})
    >>> allocate(r, "inverse_volatility").round(4).to_dict()
    {'a': 0.6549, 'b': 0.3451}
    >>> allocate(r, "hrp").round(4).to_dict()
    {'a': 0.7826, 'b': 0.2174}
    """
    _check_method(method)
    x = _returns_matrix(returns, method)
    n = x.shape[1]
    lo, hi = _checked_bounds(n, min_weight, max_weight)
    rf = _checked_rate(risk_free_rate)
    if n == 1:  # fully invested in the only column, whatever the method
        return pd.Series([1.0], index=returns.columns, name=method, dtype=float)
    weights = _finalised(_METHODS[method](x, rf, lo, hi), lo, hi, method)
    return pd.Series(weights, index=returns.columns, name=method, dtype=float)


def risk_contributions(weights: pd.Series, covariance: pd.DataFrame) -> pd.Series:
    """Each column's share of the portfolio variance: ``w_i (Σw)_i / (wᵀΣw)``.

    The shares sum to 1 (Euler's theorem on the 2-homogeneous variance); a negative share
    means the column hedges the rest. ``covariance`` is looked up by the labels of
    ``weights``, so its rows and columns must contain them.

    Raises
    ------
    ParameterError
        A non-Series or non-DataFrame input, missing labels, a non-finite value, an
        asymmetric covariance, or a portfolio variance that is not positive.

    Examples
    --------
    >>> import pandas as pd
    >>> cov = pd.DataFrame([[0.04, 0.0], [0.0, 0.01]], index=["a", "b"], columns=["a", "b"])
    >>> risk_contributions(pd.Series({"a": 1 / 3, "b": 2 / 3}), cov).round(4).to_dict()
    {'a': 0.5, 'b': 0.5}
    """
    w, sigma = _aligned(weights, covariance)
    marginal = sigma @ w
    variance = float(w @ marginal)
    if not variance > 0:
        raise ParameterError(
            f"risk_contributions: portfolio variance w'Σw must be > 0, got {variance!r}"
        )
    return pd.Series(w * marginal / variance, index=weights.index, name="risk_contribution")


# ---------------------------------------------------------------------------- validation


def _check_method(method: object) -> None:
    if method not in ALLOCATORS:
        raise ParameterError(
            f"allocate: method must be one of {', '.join(ALLOCATORS)}, got method={method!r}"
        )


def _returns_matrix(returns: object, method: str) -> np.ndarray:
    """The window as a float matrix, refused if it cannot give the moments ``method`` needs."""
    if not isinstance(returns, pd.DataFrame):
        raise ParameterError(
            f"allocate: returns must be a pandas DataFrame (rows = periods, columns = assets), "
            f"got {type(returns).__name__}"
        )
    rows, cols = returns.shape
    if cols == 0:
        raise ParameterError("allocate: returns must have at least one column, got 0 columns")
    if rows < 2:
        raise ParameterError(f"allocate: returns need at least 2 rows, got {rows} rows")
    try:
        x = returns.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"allocate: returns must be numeric: {first_line(exc)}") from None
    bad = ~np.isfinite(x)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ParameterError(
            f"allocate: returns must be finite (NaN/inf are never dropped), got "
            f"{float(x[i, j])!r} in column {returns.columns[j]!r} at row {returns.index[i]!r}"
        )
    if method in _NEEDS_VARIANCE and cols > 1:
        flat = np.ptp(x, axis=0) == 0
        if flat.any():
            j = int(np.argmax(flat))
            raise ParameterError(
                f"allocate: method={method} needs a positive variance in every column, got "
                f"constant column {returns.columns[j]!r} (value {float(x[0, j])!r})"
            )
    return x


def _checked_bounds(n: int, min_weight: float, max_weight: float) -> tuple[float, float]:
    lo, hi = _real("min_weight", min_weight), _real("max_weight", max_weight)
    if not 0.0 <= lo <= hi <= 1.0:
        raise ParameterError(
            f"allocate: bounds must satisfy 0 <= min_weight <= max_weight <= 1 (long-only), "
            f"got min_weight={min_weight!r}, max_weight={max_weight!r}"
        )
    if n * hi < 1.0 - _BOUND_TOL:
        raise ParameterError(
            f"allocate: n * max_weight must be >= 1 to invest fully, got n={n}, "
            f"max_weight={max_weight!r} (n * max_weight = {n * hi!r})"
        )
    if n * lo > 1.0 + _BOUND_TOL:
        raise ParameterError(
            f"allocate: n * min_weight must be <= 1 to invest fully, got n={n}, "
            f"min_weight={min_weight!r} (n * min_weight = {n * lo!r})"
        )
    return lo, hi


def _checked_rate(risk_free_rate: float) -> float:
    return _real("risk_free_rate", risk_free_rate)


def _real(name: str, value: object) -> float:
    if isinstance(value, bool):
        raise ParameterError(f"allocate: {name} must be a real number, got {name}={value!r}")
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ParameterError(f"allocate: {name} must be a real number, got {name}={value!r}") from None
    if not math.isfinite(out):
        raise ParameterError(f"allocate: {name} must be finite, got {name}={value!r}")
    return out


def _aligned(weights: object, covariance: object) -> tuple[np.ndarray, np.ndarray]:
    """Weights and the covariance block for their labels, as float arrays."""
    if not isinstance(weights, pd.Series):
        raise ParameterError(
            f"risk_contributions: weights must be a pandas Series, got {type(weights).__name__}"
        )
    if not isinstance(covariance, pd.DataFrame):
        raise ParameterError(
            f"risk_contributions: covariance must be a pandas DataFrame, "
            f"got {type(covariance).__name__}"
        )
    labels = weights.index
    missing = [k for k in labels if k not in covariance.index or k not in covariance.columns]
    if missing:
        raise ParameterError(
            f"risk_contributions: covariance must have a row and a column for every weight, "
            f"missing {missing!r}"
        )
    w = weights.to_numpy(dtype=float)
    sigma = covariance.loc[labels, labels].to_numpy(dtype=float)
    if not (np.isfinite(w).all() and np.isfinite(sigma).all()):
        raise ParameterError("risk_contributions: weights and covariance must be finite, got NaN/inf")
    if not np.allclose(sigma, sigma.T, rtol=1e-10, atol=0.0):
        gap = float(np.max(np.abs(sigma - sigma.T)))
        raise ParameterError(
            f"risk_contributions: covariance must be symmetric, got max |Σ - Σᵀ| = {gap!r}"
        )
    return w, sigma


def _finalised(raw: np.ndarray, lo: float, hi: float, method: str) -> np.ndarray:
    """Clip solver dust onto the bounds and renormalise (the module's weights convention).

    The gap to a sum of 1 goes to the weights in proportion to their room (``hi - w`` to
    raise, ``w - lo`` to lower): a plain ``w / sum(w)`` could push a weight at its bound a
    hair outside it. The room always suffices when ``n * lo <= 1 <= n * hi``.
    """
    w = np.asarray(raw, dtype=float).ravel()
    if not np.isfinite(w).all() or w.min() < lo - _DUST or w.max() > hi + _DUST:
        raise ParameterError(
            f"allocate: method={method} returned weights outside [{lo!r}, {hi!r}] by more "
            f"than {_DUST} (solver failure on this window), got {w.tolist()!r}"
        )
    w = np.clip(w, lo, hi)
    gap = 1.0 - w.sum()
    room = hi - w if gap > 0 else w - lo
    if gap != 0.0 and room.sum() > 0:
        w = w + gap * room / room.sum()
    return w


# ------------------------------------------------------------------------------ methods


def _equal_weight(x: np.ndarray, rf: float, lo: float, hi: float) -> np.ndarray:
    # 1/n lies in any feasible [lo, hi]: n * lo <= 1 <= n * hi.
    return np.full(x.shape[1], 1.0 / x.shape[1])


def _inverse_volatility(x: np.ndarray, rf: float, lo: float, hi: float) -> np.ndarray:
    if (lo, hi) != (0.0, 1.0):
        raise ParameterError(
            f"allocate: inverse_volatility is a closed form that cannot honour bounds, got "
            f"min_weight={lo!r}, max_weight={hi!r} (use the defaults 0.0 and 1.0)"
        )
    from skfolio.optimization import InverseVolatility

    return _fitted(InverseVolatility(prior_estimator=_prior()), x, "inverse_volatility")


def _equal_risk_contribution(x: np.ndarray, rf: float, lo: float, hi: float) -> np.ndarray:
    from skfolio.measures import RiskMeasure
    from skfolio.optimization import RiskBudgeting

    model = RiskBudgeting(
        risk_measure=RiskMeasure.VARIANCE,
        risk_budget=np.ones(x.shape[1]),
        prior_estimator=_prior(),
        min_weights=lo,
        max_weights=hi,
        solver=_SOLVER,
        solver_params=dict(_SOLVER_PARAMS),
    )
    return _fitted(model, _solver_input(x)[0], "equal_risk_contribution")


def _min_variance(x: np.ndarray, rf: float, lo: float, hi: float) -> np.ndarray:
    from skfolio.measures import RiskMeasure
    from skfolio.optimization import MeanRisk, ObjectiveFunction

    model = MeanRisk(
        objective_function=ObjectiveFunction.MINIMIZE_RISK,
        risk_measure=RiskMeasure.VARIANCE,
        prior_estimator=_prior(),
        min_weights=lo,
        max_weights=hi,
        solver=_SOLVER,
        solver_params=dict(_SOLVER_PARAMS),
    )
    return _fitted(model, _solver_input(x)[0], "min_variance")


def _max_sharpe(x: np.ndarray, rf: float, lo: float, hi: float) -> np.ndarray:
    best = _best_attainable_mean(x.mean(axis=0), lo, hi)
    if not best > rf:
        raise ParameterError(
            f"allocate: max_sharpe needs a portfolio whose mean return exceeds "
            f"risk_free_rate, got best attainable mean {best!r} <= risk_free_rate={rf!r}"
        )
    from skfolio.measures import RiskMeasure
    from skfolio.optimization import MeanRisk, ObjectiveFunction

    scaled, scale = _solver_input(x)
    # With VARIANCE, skfolio's MAXIMIZE_RATIO maximises (mu'w - rf) / sqrt(w'Sigma w).
    model = MeanRisk(
        objective_function=ObjectiveFunction.MAXIMIZE_RATIO,
        risk_measure=RiskMeasure.VARIANCE,
        risk_free_rate=rf / scale,  # the Sharpe ratio is unchanged when returns and rf scale
        prior_estimator=_prior(),
        min_weights=lo,
        max_weights=hi,
        solver=_SOLVER,
        solver_params=dict(_SOLVER_PARAMS),
    )
    return _fitted(model, scaled, "max_sharpe")


def _hrp(x: np.ndarray, rf: float, lo: float, hi: float) -> np.ndarray:
    return _fitted(_hrp_model(lo, hi), x, "hrp")


_METHODS: dict[str, Callable[[np.ndarray, float, float, float], np.ndarray]] = {
    "equal_weight": _equal_weight,
    "inverse_volatility": _inverse_volatility,
    "equal_risk_contribution": _equal_risk_contribution,
    "min_variance": _min_variance,
    "max_sharpe": _max_sharpe,
    "hrp": _hrp,
}


# ------------------------------------------------------------------------------ skfolio


def _hrp_model(min_weight: float, max_weight: float) -> Any:
    """skfolio's ``HierarchicalRiskParity`` with every setting pinned (see the module doc).

    Pinned so that a change of skfolio default cannot move our numbers: variance risk,
    the empirical prior of :func:`_prior`, Pearson angular distance (``absolute=False,
    power=1``), Ward linkage, optimal leaf ordering, distances from the prior's returns.
    """
    from skfolio.cluster import HierarchicalClustering, LinkageMethod
    from skfolio.distance import PearsonDistance
    from skfolio.measures import RiskMeasure
    from skfolio.optimization import HierarchicalRiskParity
    from skfolio.seriation import HierarchicalSeriation

    return HierarchicalRiskParity(
        risk_measure=RiskMeasure.VARIANCE,
        prior_estimator=_prior(),
        distance_estimator=PearsonDistance(absolute=False, power=1),
        seriation_estimator=HierarchicalSeriation(
            hierarchical_clustering_estimator=HierarchicalClustering(
                max_clusters=None, linkage_method=LinkageMethod.WARD
            ),
            optimal_ordering=True,
        ),
        distance_from_prior=True,
        min_weights=min_weight,
        max_weights=max_weight,
    )


def _prior() -> Any:
    """The pinned moments: sample mean, sample covariance with ddof=1."""
    from skfolio.moments import EmpiricalCovariance, EmpiricalMu
    from skfolio.prior import EmpiricalPrior

    return EmpiricalPrior(
        mu_estimator=EmpiricalMu(),
        covariance_estimator=EmpiricalCovariance(ddof=1, nearest=True),
    )


def _solver_input(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Returns divided by one constant so the average column variance is 1.

    Every solver-based method is invariant to a common positive scale (max_sharpe once rf
    is scaled too), and daily variances of ~1e-4 leave the interior-point solver badly
    conditioned: its tolerances are then met long before the weights are.
    """
    scale = float(np.sqrt(np.mean(np.var(x, axis=0, ddof=1))))
    return x / scale, scale


def _fitted(model: Any, x: np.ndarray, method: str) -> np.ndarray:
    """Fit a skfolio estimator on the bare matrix (labels stay ours) and return its weights."""
    from skfolio.exceptions import OptimizationError

    try:
        model.fit(x)
    except (OptimizationError, ValueError, ArithmeticError) as exc:
        raise ParameterError(
            f"allocate: method={method} could not be solved on this window "
            f"({type(model).__name__}: {first_line(exc)})"
        ) from exc
    return np.asarray(model.weights_, dtype=float)


def _best_attainable_mean(mu: np.ndarray, lo: float, hi: float) -> float:
    """The highest mean a fully-invested portfolio within [lo, hi] can reach (greedy LP)."""
    w = np.full(mu.size, lo)
    left = 1.0 - w.sum()
    for i in np.argsort(-mu, kind="stable"):
        add = min(hi - lo, max(left, 0.0))
        w[i] += add
        left -= add
    return float(mu @ w)
