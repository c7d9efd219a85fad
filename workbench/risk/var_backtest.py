"""VaR backtests: exceptions, Kupiec POF, Christoffersen tests and the Basel traffic light.

Conventions
-----------
- **Exception**: a period whose loss *exceeds* the VaR, ``-return > VaR`` (strict, as in
  MATLAB ``varbacktest``: a loss equal to the VaR is not a failure). VaR is a positive
  loss fraction (``workbench.risk.var``), aligned with the return it is tested against:
  the forecast made at the close of t-1 sits on row t (shift a rolling estimate by one).
  Rows where the return or the VaR is NaN are dropped, not counted.
- **Kupiec POF** (Kupiec 1995): with x exceptions in N periods, p = 1 - confidence and
  p̂ = x/N, LR_pof = -2 ln[(1-p)^(N-x) p^x / ((1-p̂)^(N-x) p̂^x)], χ²(1) under H₀
  (0·ln 0 = 0).
- **Christoffersen independence** (Christoffersen 1998): n_ij counts periods in state i
  followed by state j (1 = exception) over the N-1 consecutive pairs; π₀ = n01/(n00+n01),
  π₁ = n11/(n10+n11), π = (n01+n11)/(N-1); LR_ind = -2 ln[(1-π)^(n00+n10) π^(n01+n11) /
  ((1-π₀)^n00 π₀^n01 (1-π₁)^n10 π₁^n11)], χ²(1). **Conditional coverage**
  LR_cc = LR_pof + LR_ind, χ²(2) (MATLAB ``cc``).
- **Traffic light** (Basel Committee 1996, "Supervisory framework for the use of
  backtesting"): zone by the binomial probability of *that many or fewer* exceptions,
  P(X ≤ x): green < 0.95 ≤ yellow < 0.9999 ≤ red (MATLAB ``tl``). For 250 days at 99%
  this is green 0–4, yellow 5–9, red ≥ 10, with plus factors 0.00 (green), 0.40, 0.50,
  0.65, 0.75, 0.85 (5–9 exceptions) and 1.00 (red); the plus factor is NaN for any other
  sample size or confidence (the Basel table covers only that case).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

from workbench.errors import ParameterError
from workbench.risk.var import check_confidence

__all__ = [
    "LRTest",
    "TrafficLight",
    "VaRBacktest",
    "var_exceptions",
    "kupiec_pof",
    "christoffersen_independence",
    "christoffersen_conditional_coverage",
    "traffic_light",
    "backtest_var",
    "BASEL_PLUS_FACTORS",
]

# Basel (1996) Table 2: exceptions in 250 days at 99% -> plus factor (yellow zone).
BASEL_PLUS_FACTORS: dict[int, float] = {5: 0.40, 6: 0.50, 7: 0.65, 8: 0.75, 9: 0.85}


@dataclass(frozen=True)
class LRTest:
    """A likelihood-ratio backtest: statistic, χ² p-value and the counts it came from.

    ``transitions`` is (n00, n01, n10, n11) for the Christoffersen tests, else None.
    """

    test: str
    statistic: float
    p_value: float
    dof: int
    observations: int
    exceptions: int
    transitions: tuple[int, int, int, int] | None = None

    def rejected(self, test_level: float = 0.95) -> bool:
        """True when H₀ (a correct VaR model) is rejected at ``test_level`` (0.95 = 5% size)."""
        return self.p_value < 1.0 - check_confidence(test_level)


@dataclass(frozen=True)
class TrafficLight:
    """Basel zone; ``probability`` = P(X ≤ x), ``type1`` = P(X ≥ x) under a correct model."""

    zone: str
    plus_factor: float
    exceptions: int
    observations: int
    confidence: float
    probability: float
    type1: float


@dataclass(frozen=True)
class VaRBacktest:
    """Every backtest of one VaR series at once."""

    exceptions: pd.Series
    pof: LRTest
    independence: LRTest
    conditional_coverage: LRTest
    traffic_light: TrafficLight


def _series(x: object, name: str) -> pd.Series:
    if hasattr(x, "returns") and not isinstance(x, (pd.Series, pd.DataFrame, np.ndarray)):
        x = x.returns
    if isinstance(x, pd.Series):
        return x.astype("float64")
    arr = np.asarray(x, dtype="float64")
    if arr.ndim != 1:
        raise ParameterError(f"{name} must be 1-D, got shape {arr.shape}")
    return pd.Series(arr)


def var_exceptions(returns: object, var: object) -> pd.Series:
    """Boolean series: True where the loss exceeded the VaR (``-return > var``).

    ``var`` may be a scalar, an aligned array, or a Series (aligned on the index).
    """
    r = _series(returns, "returns")
    if isinstance(var, numbers.Real) and not isinstance(var, bool):
        v = pd.Series(float(var), index=r.index)
    else:
        v = _series(var, "var")
        if not isinstance(var, pd.Series):
            if len(v) != len(r):
                raise ParameterError(f"var has {len(v)} values for {len(r)} returns")
            v.index = r.index
    both = pd.concat([r, v], axis=1, join="inner").dropna()
    if np.isinf(both.to_numpy()).any():
        raise ParameterError("returns and VaR must be finite: found ±inf")
    return (-both.iloc[:, 0] > both.iloc[:, 1]).rename("exception")


def _hits(exceptions: object) -> np.ndarray:
    arr = np.asarray(exceptions)
    if arr.ndim != 1 or len(arr) == 0:
        raise ParameterError(f"exceptions must be a non-empty 1-D series, got shape {arr.shape}")
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise ParameterError("exceptions must be booleans (or 0/1)")
        arr = arr.astype(bool)
    return arr


def _loglik(failures: float, total: float, p: float) -> float:
    """ln[(1-p)^(total-failures) p^failures] with 0·ln 0 = 0."""
    return float(special.xlogy(total - failures, 1.0 - p) + special.xlogy(failures, p))


def kupiec_pof(exceptions: object, confidence: float = 0.99) -> LRTest:
    """Kupiec (1995) proportion-of-failures LR test of unconditional coverage."""
    c = check_confidence(confidence)
    hits = _hits(exceptions)
    n, x = len(hits), int(hits.sum())
    lr = max(-2.0 * (_loglik(x, n, 1.0 - c) - _loglik(x, n, x / n)), 0.0)
    return LRTest("pof", lr, float(stats.chi2.sf(lr, 1)), 1, n, x)


def christoffersen_independence(exceptions: object) -> LRTest:
    """Christoffersen (1998) LR test that an exception does not make the next more likely."""
    hits = _hits(exceptions)
    if len(hits) < 2:
        raise ParameterError(f"the independence test needs at least 2 periods, got {len(hits)}")
    prev, nxt = hits[:-1], hits[1:]
    n00 = int(np.sum(~prev & ~nxt))
    n01 = int(np.sum(~prev & nxt))
    n10 = int(np.sum(prev & ~nxt))
    n11 = int(np.sum(prev & nxt))
    pi0 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi1 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pi = (n01 + n11) / (len(hits) - 1)
    restricted = _loglik(n01 + n11, len(hits) - 1, pi)
    unrestricted = _loglik(n01, n00 + n01, pi0) + _loglik(n11, n10 + n11, pi1)
    lr = max(-2.0 * (restricted - unrestricted), 0.0)
    return LRTest("independence", lr, float(stats.chi2.sf(lr, 1)), 1, len(hits), int(hits.sum()),
                  (n00, n01, n10, n11))


def christoffersen_conditional_coverage(exceptions: object, confidence: float = 0.99) -> LRTest:
    """Christoffersen (1998) joint test of coverage and independence: LR_pof + LR_ind, χ²(2)."""
    pof = kupiec_pof(exceptions, confidence)
    ind = christoffersen_independence(exceptions)
    lr = pof.statistic + ind.statistic
    return LRTest("conditional_coverage", lr, float(stats.chi2.sf(lr, 2)), 2, pof.observations,
                  pof.exceptions, ind.transitions)


def traffic_light(exceptions: int | object, observations: int | None = None, confidence: float = 0.99) -> TrafficLight:
    """Basel traffic-light zone and plus factor for a count of exceptions (or an exception series).

    >>> traffic_light(6, 250, 0.99).zone, traffic_light(6, 250, 0.99).plus_factor
    ('yellow', 0.5)
    """
    c = check_confidence(confidence)
    if isinstance(exceptions, numbers.Integral) and not isinstance(exceptions, bool):
        x = int(exceptions)
        n = observations
    else:
        hits = _hits(exceptions)
        x, n = int(hits.sum()), len(hits) if observations is None else observations
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1 or not 0 <= x <= n:
        raise ParameterError(f"need 0 <= exceptions <= observations with observations >= 1, got {x} of {n!r}")
    p = 1.0 - c
    prob = float(stats.binom.cdf(x, n, p))
    type1 = float(stats.binom.sf(x - 1, n, p))
    zone = "green" if prob < 0.95 else "yellow" if prob < 0.9999 else "red"
    basel = n == 250 and math.isclose(c, 0.99)
    plus = {"green": 0.0, "red": 1.0}.get(zone, BASEL_PLUS_FACTORS.get(x, math.nan)) if basel else math.nan
    return TrafficLight(zone, plus, x, int(n), c, prob, type1)


def backtest_var(returns: object, var: object, confidence: float = 0.99) -> VaRBacktest:
    """Exceptions, POF, independence, conditional coverage and traffic light of one VaR series."""
    hits = var_exceptions(returns, var)
    values = hits.to_numpy()
    return VaRBacktest(
        exceptions=hits,
        pof=kupiec_pof(values, confidence),
        independence=christoffersen_independence(values),
        conditional_coverage=christoffersen_conditional_coverage(values, confidence),
        traffic_light=traffic_light(values, confidence=confidence),
    )
