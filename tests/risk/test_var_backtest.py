"""VaR backtests against MATLAB's varbacktest documentation example and scipy closed forms."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from workbench.errors import ParameterError
from workbench.risk.var_backtest import (
    backtest_var,
    christoffersen_conditional_coverage,
    christoffersen_independence,
    kupiec_pof,
    traffic_light,
    var_exceptions,
)


def matlab_hits() -> np.ndarray:
    """An exception series with the counts of MATLAB's example (EquityIndex vs Normal95).

    MathWorks, Risk Management Toolbox, ``varbacktest`` pages ``summary``, ``pof``, ``cci``,
    ``cc``, ``tl``: 1043 observations, 57 failures, first failure at 58, N00 = 932,
    N10 = 53, N01 = 53, N11 = 4. Every statistic of those tests depends only on the counts,
    so 49 single and 4 double failures spaced apart reproduce them without the data file.
    """
    hits, pos = np.zeros(1043, dtype=bool), 57
    for run in [2] * 4 + [1] * 49:
        hits[pos : pos + run] = True
        pos += run + 17
    return hits


def test_matlab_varbacktest_example():
    hits = matlab_hits()
    assert hits.sum() == 57 and np.argmax(hits) + 1 == 58
    pof = kupiec_pof(hits, 0.95)
    assert pof.statistic == pytest.approx(0.46147, abs=1e-5)
    assert pof.p_value == pytest.approx(0.49694, abs=1e-5)
    cci = christoffersen_independence(hits)
    assert cci.transitions == (932, 53, 53, 4)
    assert cci.statistic == pytest.approx(0.25866, abs=1e-5)
    assert cci.p_value == pytest.approx(0.61104, abs=1e-5)
    cc = christoffersen_conditional_coverage(hits, 0.95)
    assert cc.statistic == pytest.approx(0.72013, abs=1e-5)
    assert cc.p_value == pytest.approx(0.69763, abs=1e-5)
    tl = traffic_light(hits, confidence=0.95)
    assert tl.zone == "green"
    assert tl.probability == pytest.approx(0.77913, abs=1e-5)
    assert tl.type1 == pytest.approx(0.26396, abs=1e-5)
    assert not pof.rejected(0.99) and not cc.rejected()


def test_pof_closed_form():
    hits = np.zeros(250, dtype=bool)
    hits[[10, 50, 90, 130, 170, 210, 240]] = True  # 7 of 250 at 99%
    n, x, p = 250, 7, 0.01
    lr = -2 * ((n - x) * math.log(1 - p) + x * math.log(p) - (n - x) * math.log(1 - x / n) - x * math.log(x / n))
    got = kupiec_pof(hits, 0.99)
    assert got.statistic == pytest.approx(lr, abs=1e-10)
    assert got.p_value == pytest.approx(stats.chi2.sf(lr, 1), abs=1e-12)
    # no exceptions: 0 ln 0 = 0
    zero = kupiec_pof(np.zeros(250, dtype=bool), 0.99)
    assert zero.statistic == pytest.approx(-2 * 250 * math.log(0.99), abs=1e-10)


def test_independence_closed_form_with_clusters():
    hits = np.array([0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 0] * 10, dtype=bool)
    got = christoffersen_independence(hits)
    n00, n01, n10, n11 = got.transitions
    assert n00 + n01 + n10 + n11 == len(hits) - 1
    p0, p1, p = n01 / (n00 + n01), n11 / (n10 + n11), (n01 + n11) / (len(hits) - 1)
    ll0 = (n00 + n10) * math.log(1 - p) + (n01 + n11) * math.log(p)
    ll1 = n00 * math.log(1 - p0) + n01 * math.log(p0) + n10 * math.log(1 - p1) + n11 * math.log(p1)
    assert got.statistic == pytest.approx(-2 * (ll0 - ll1), abs=1e-10)
    assert got.rejected()  # clustered exceptions


def test_basel_zones_and_plus_factors():
    expected = {0: ("green", 0.0), 4: ("green", 0.0), 5: ("yellow", 0.40), 6: ("yellow", 0.50),
                7: ("yellow", 0.65), 8: ("yellow", 0.75), 9: ("yellow", 0.85), 10: ("red", 1.0),
                25: ("red", 1.0)}
    for x, (zone, plus) in expected.items():
        tl = traffic_light(x, 250, 0.99)
        assert (tl.zone, tl.plus_factor) == (zone, plus)
        assert tl.probability == pytest.approx(stats.binom.cdf(x, 250, 0.01), abs=1e-12)
    # Basel (1996) Table 1 cumulative probabilities, to the published 0.01%
    for x, pct in {0: 8.11, 4: 89.22, 5: 95.88, 9: 99.97, 10: 99.99}.items():
        assert 100 * traffic_light(x, 250, 0.99).probability == pytest.approx(pct, abs=0.005)
    assert math.isnan(traffic_light(6, 500, 0.99).plus_factor)
    with pytest.raises(ParameterError, match="exceptions <= observations"):
        traffic_light(300, 250)


def test_exceptions_are_strict_and_aligned():
    idx = pd.date_range("2024-01-01", periods=5, freq="D")
    r = pd.Series([-0.02, -0.01, 0.0, -0.03, np.nan], index=idx)
    var = pd.Series([0.01, 0.01, 0.01, 0.02, 0.02], index=idx)
    hits = var_exceptions(r, var)
    assert hits.tolist() == [True, False, False, True]  # a loss equal to VaR is not an exception
    assert var_exceptions(r, 0.015).tolist() == [True, False, False, True]
    with pytest.raises(ParameterError, match="4 values for 5 returns"):
        var_exceptions(r, np.ones(4))


def test_backtest_var_bundle():
    rng = np.random.default_rng(0)
    r = pd.Series(rng.standard_normal(1000) * 0.01)
    var = pd.Series(stats.norm.ppf(0.99) * 0.01, index=r.index)
    bt = backtest_var(r, var, 0.99)
    assert bt.pof.exceptions == int(bt.exceptions.sum()) == bt.traffic_light.exceptions
    assert bt.conditional_coverage.statistic == pytest.approx(bt.pof.statistic + bt.independence.statistic)
