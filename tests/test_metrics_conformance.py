"""Metrics against empyrical's published test fixtures and quantstats on the same returns.

The fixture series and expected values are those of empyrical's ``tests/test_stats.py``
(``mixed_returns``, ``positive_returns``, ``negative_returns``, ``weekly_returns``,
``monthly_returns``), checked to 8 decimal places as empyrical does. empyrical passes the
annualisation factor explicitly (DAILY = 252, WEEKLY = 52, MONTHLY = 12), so these tests
pass ``ppy`` the same way; the workbench infers it from the calendar elsewhere.

Two conventions differ, and the tests say where:

- **Leading NaN.** empyrical's ``annual_return`` (and so ``calmar_ratio``) counts the NaN
  of ``mixed_returns`` as a period of zero return (n = 9); the workbench never has that
  NaN (``returns_from_equity`` drops it) and its mean-based metrics skip NaN. The
  geometric metrics are therefore compared on ``returns.fillna(0)``, which is how
  empyrical reads the series.
- **Sortino on weekly/monthly data.** empyrical's fixture annualises the *downside risk*
  inside ``sortino_ratio`` with the daily factor (252) whatever ``period`` is, while the
  mean uses the period's factor. The workbench uses one ``ppy`` for both, so for weekly
  and monthly series ours × √(ppy/252) equals the fixture.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import quantstats as qs

import workbench as wb
from workbench.strategy import metrics as m

D = pd.date_range("2000-1-30", periods=9, freq="D")
MIXED = pd.Series(np.array([np.nan, 1.0, 10.0, -4.0, 2.0, 3.0, 2.0, 1.0, -10.0]) / 100, index=D)
POSITIVE = pd.Series(np.array([1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]) / 100, index=D)
NEGATIVE = pd.Series(np.array([0.0, -6.0, -7.0, -1.0, -9.0, -2.0, -6.0, -8.0, -5.0]) / 100, index=D)
VALUES = np.array([0.0, 1.0, 10.0, -4.0, 2.0, 3.0, 2.0, 1.0, -10.0]) / 100
WEEKLY = pd.Series(VALUES, index=pd.date_range("2000-1-30", periods=9, freq="W"))
MONTHLY = pd.Series(VALUES, index=pd.date_range("2000-1-30", periods=9, freq="ME"))


def close(a: float, b: float) -> None:
    assert a == pytest.approx(b, abs=1e-8) or (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize(("returns", "ppy", "expected"), [(MIXED, 252, 1.9135925373194231),
                         (WEEKLY, 52, 0.24690830513998208), (MONTHLY, 12, 0.052242061386048144)])  # fmt: skip
def test_annual_return_matches_empyrical(returns: pd.Series, ppy: int, expected: float) -> None:
    close(m.annual_return(returns.fillna(0.0), ppy), expected)  # empyrical's leading-NaN convention
    if returns.isna().any():
        assert m.annual_return(returns, ppy) == pytest.approx((1 + returns.dropna()).prod() ** (ppy / 8) - 1)


@pytest.mark.parametrize(("returns", "ppy", "expected"), [(MIXED, 252, 0.9136465399704637),
                         (WEEKLY, 52, 0.38851569394870583), (MONTHLY, 12, 0.18663690238892558)])  # fmt: skip
def test_annual_volatility_matches_empyrical(returns: pd.Series, ppy: int, expected: float) -> None:
    close(m.annual_volatility(returns, ppy), expected)


@pytest.mark.parametrize(("returns", "expected"), [(MIXED, 1.7238613961706866), (POSITIVE, 52.915026221291804),
                                                   (NEGATIVE, -24.406808633910085)])  # fmt: skip
def test_sharpe_matches_empyrical(returns: pd.Series, expected: float) -> None:
    close(m.sharpe_ratio(returns, 252), expected)


@pytest.mark.parametrize(("returns", "expected"), [(MIXED, -0.1), (POSITIVE, 0.0), (NEGATIVE, -0.36590730349873601)])
def test_max_drawdown_matches_empyrical(returns: pd.Series, expected: float) -> None:
    equity = pd.concat([pd.Series([1.0]), (1 + returns.fillna(0)).cumprod().reset_index(drop=True)])
    close(m.max_drawdown(equity), expected)  # empyrical compounds from a starting value of 1


@pytest.mark.parametrize(("returns", "ppy", "expected"), [(MIXED, 252, 19.135925373194233),
                         (WEEKLY, 52, 2.4690830513998208), (MONTHLY, 12, 0.52242061386048144)])  # fmt: skip
def test_calmar_matches_empyrical(returns: pd.Series, ppy: int, expected: float) -> None:
    close(m.calmar_ratio(returns.fillna(0.0), ppy), expected)


@pytest.mark.parametrize(("returns", "required", "ppy", "expected"), [
    (MIXED, 0.0, 252, 0.60448325038829653), (MIXED, 0.1, 252, 1.7161730681956295),
    (WEEKLY, 0.0, 52, 0.25888650451930134), (WEEKLY, 0.1, 52, 0.7733045971672482),
    (MONTHLY, 0.0, 12, 0.1243650540411842), (MONTHLY, 0.1, 12, 0.37148351242013422)])  # fmt: skip
def test_downside_risk_matches_empyrical(returns: pd.Series, required: float, ppy: int, expected: float) -> None:
    close(m.downside_risk(returns, ppy, required), expected)


@pytest.mark.parametrize(("returns", "ppy", "expected"), [
    (MIXED, 252, 2.605531251673693), (POSITIVE, 252, math.inf), (NEGATIVE, 252, -13.532743075043401),
    (WEEKLY, 52, 0.50690062680370862), (MONTHLY, 12, 0.11697706772393276)])  # fmt: skip
def test_sortino_matches_empyrical(returns: pd.Series, ppy: int, expected: float) -> None:
    # the fixture annualises the downside risk with 252 for every period (module docstring)
    close(m.sortino_ratio(returns, ppy) * math.sqrt(ppy / 252), expected)


@pytest.fixture(scope="module")
def spx_returns() -> pd.Series:
    result = wb.backtest("sma_crossover", "SPX", {"fast": 20, "slow": 50}, commission=0.001)
    r = result.returns.copy()
    r.index = r.index.tz_localize(None)
    return r


def test_sortino_and_moments_match_quantstats(spx_returns: pd.Series) -> None:
    r = spx_returns
    assert m.sortino_ratio(r, 252) == pytest.approx(qs.stats.sortino(r, periods=252), rel=1e-9)
    assert float(r.skew()) == pytest.approx(qs.stats.skew(r), rel=1e-12)
    assert float(r.kurt()) == pytest.approx(qs.stats.kurtosis(r), rel=1e-12)  # both EXCESS kurtosis


def test_calmar_differs_from_quantstats_by_the_annualisation_convention(spx_returns: pd.Series) -> None:
    r = spx_returns
    # quantstats divides its calendar CAGR by |max dd|; empyrical (and we) the per-period
    # geometric annual return. Same drawdown, different numerator:
    ours = m.calmar_ratio(r, 252)
    mdd = abs(qs.stats.max_drawdown(r))
    assert ours == pytest.approx(m.annual_return(r, 252) / mdd, rel=1e-12)
    assert qs.stats.calmar(r, periods=252) == pytest.approx(qs.stats.cagr(r, periods=252) / mdd, rel=1e-12)


def test_probabilistic_sharpe_ratio_formula_and_quantstats(spx_returns: pd.Series) -> None:
    from statistics import NormalDist

    r = spx_returns
    n, sr = len(r), r.mean() / r.std(ddof=1)
    g3, g4 = r.skew(), r.kurt() + 3  # raw kurtosis
    expected = NormalDist().cdf(sr * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2))
    assert m.probabilistic_sharpe_ratio(r) == pytest.approx(expected, rel=1e-12)
    # quantstats 0.0.86 uses the same estimator (per-period SR, raw kurtosis = excess + 3)
    assert qs.stats.probabilistic_sharpe_ratio(r, periods=252) == pytest.approx(m.probabilistic_sharpe_ratio(r), rel=1e-12)


def test_trade_and_drawdown_statistics_hand_computed() -> None:
    pnl = pd.Series([100.0, -50.0, 30.0, -20.0])
    assert m.profit_factor(pnl) == pytest.approx(130 / 70)
    assert m.expectancy(pnl) == pytest.approx(15.0)
    assert m.profit_factor(pd.Series([5.0])) == math.inf and math.isnan(m.profit_factor(pd.Series([], dtype=float)))
    idx = pd.date_range("2024-01-01", periods=7, freq="D", tz="UTC")
    eq = pd.Series([100.0, 110, 105, 111, 100, 101, 102], index=idx)
    assert m.max_drawdown_duration(eq) == pd.Timedelta(days=3)  # peak 01-04, still under at the end 01-07
    assert m.exposure(pd.Series([0.0, 1.0, 1.0, 0.0])) == 0.5
    fills = pd.DataFrame({"quantity": [10.0, 10.0], "price": [100.0, 110.0]})
    assert m.turnover(fills, pd.Series([1000.0] * 4), 252) == pytest.approx(2100 / 1000 * 252 / 4)


def test_backtest_stats_carry_every_metric_with_its_convention() -> None:
    result = wb.backtest("sma_crossover", "GOOG", {"fast": 10, "slow": 30})
    for key in ("annual_return", "sortino", "calmar", "max_drawdown_duration", "profit_factor", "expectancy",
                "exposure", "turnover", "skew", "kurtosis", "psr"):  # fmt: skip
        assert key in result.stats.index and key in m.STAT_CONVENTIONS
    trades = result.trades["pnl"]
    assert result.stats["profit_factor"] == pytest.approx(trades[trades > 0].sum() / -trades[trades < 0].sum())
    assert 0 < result.stats["exposure"] < 1 and 0 <= result.stats["psr"] <= 1
