"""Metrics against hand-computed values and quantstats on the same returns."""

import math

import numpy as np
import pandas as pd
import pytest
import quantstats as qs

import workbench as wb
from workbench.strategy import metrics as m


def test_periods_per_year_by_calendar():
    assert m.periods_per_year(wb.load_prices("GOOG").index) == 252.0  # exchange daily
    assert m.periods_per_year(pd.date_range("2024-01-01", periods=50, freq="D", tz="UTC")) == 365.0  # 24/7
    assert m.periods_per_year(wb.load_prices("BTCUSD").index) == 12.0
    assert m.periods_per_year(wb.load_prices("EURUSD").index) == 24 * 252.0


def test_sharpe_and_volatility_hand_computed():
    r = pd.Series([0.01, -0.02, 0.03, 0.0])
    mean, sd = r.mean(), r.std(ddof=1)
    assert m.sharpe_ratio(r, 252) == pytest.approx(mean / sd * math.sqrt(252))
    assert m.annual_volatility(r, 252) == pytest.approx(sd * math.sqrt(252))
    assert math.isnan(m.sharpe_ratio(pd.Series([0.01, 0.01, 0.01]), 252))


def test_max_drawdown_and_cagr_hand_computed():
    idx = pd.date_range("2020-01-01", periods=4, freq="D", tz="UTC")
    eq = pd.Series([100.0, 120.0, 90.0, 130.0], index=idx)
    assert m.max_drawdown(eq) == pytest.approx(90 / 120 - 1)
    assert m.cagr(eq) == pytest.approx(1.3 ** (365.25 / 3) - 1)


def test_metrics_match_quantstats_on_the_same_returns():
    result = wb.backtest("sma_crossover", "SPX", {"fast": 20, "slow": 50}, commission=0.001)
    r = result.returns
    r_naive = r.copy()
    r_naive.index = r_naive.index.tz_localize(None)
    assert m.sharpe_ratio(r, 252) == pytest.approx(qs.stats.sharpe(r_naive, periods=252), rel=1e-9)
    assert m.annual_volatility(r, 252) == pytest.approx(qs.stats.volatility(r_naive, periods=252), rel=1e-9)
    assert result.stats["max_drawdown"] == pytest.approx(qs.stats.max_drawdown(r_naive), rel=1e-9)
    # quantstats' total return compounds the returns; ours is final equity / cash - 1
    assert result.stats["total_return"] == pytest.approx(qs.stats.comp(r_naive), rel=1e-9)
    assert np.isfinite(result.stats["cagr"])
