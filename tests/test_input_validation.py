"""Backtest arguments and strategy outputs (issue 9): a bad value is a ParameterError naming
the argument and the value, checked once before any engine runs, and a strategy that breaks
its contract fails identically on both engines."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.engines.vectorized import run_signal_grid
from workbench.errors import ParameterError
from workbench.strategy import metrics
from workbench.trading import FixedBps, Instrument, NoCommission, NoSlippage
from workbench.trading.sizing import AllEquity

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("value", [NAN, INF, -0.001, 1.5, True, "0.001"])
def test_commission_must_be_a_finite_fraction(goog: pd.DataFrame, value: object) -> None:
    with pytest.raises(ParameterError, match=rf"commission must be a fraction of notional.*got commission={re.escape(repr(value))}"):
        wb.backtest("sma_crossover", goog, commission=value)


@pytest.mark.parametrize("bps", [NAN, -1.0, INF, "5"])
def test_slippage_bps_must_be_finite_and_non_negative(bps: object) -> None:
    with pytest.raises(ParameterError, match=rf"FixedBps: bps must be a finite number >= 0, got bps={re.escape(repr(bps))}"):
        FixedBps(bps=bps)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [5, NAN, "5bps"])
def test_slippage_must_be_a_model(goog: pd.DataFrame, value: object) -> None:
    with pytest.raises(ParameterError, match=rf"slippage must be a slippage model.*got slippage={re.escape(repr(value))}"):
        wb.backtest("sma_crossover", goog, slippage=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("rf", [NAN, -2.0, -1.0, INF, "0.02"])
def test_the_risk_free_rate_must_be_finite_and_above_minus_one(goog: pd.DataFrame, rf: object) -> None:
    msg = rf"risk_free_rate must be a finite annual rate > -1.*got risk_free_rate={re.escape(repr(rf))}"
    with pytest.raises(ParameterError, match=msg):
        wb.backtest("sma_crossover", goog, risk_free_rate=rf)  # type: ignore[arg-type]
    returns = pd.Series([0.01, -0.02, 0.03])
    with pytest.raises(ParameterError, match=msg):
        metrics.sharpe_ratio(returns, 252, rf)  # type: ignore[arg-type]


@pytest.mark.parametrize("ppy", [NAN, 0, -252, INF])
def test_periods_per_year_must_be_positive(goog: pd.DataFrame, ppy: float) -> None:
    with pytest.raises(ParameterError, match=rf"periods_per_year must be a finite number > 0, got periods_per_year={re.escape(repr(ppy))}"):
        wb.backtest("sma_crossover", goog, periods_per_year=ppy)


@pytest.mark.parametrize("cash", [NAN, INF, 0, -100.0, "10000", True, None])
def test_cash_must_be_a_finite_positive_number(goog: pd.DataFrame, cash: object) -> None:
    with pytest.raises(ParameterError, match=rf"cash must be > 0 and finite, got cash={re.escape(repr(cash))}"):
        wb.backtest("sma_crossover", goog, cash=cash)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [NAN, np.float64("nan"), 0, 1.5, True, None])
def test_size_must_be_all_a_fraction_or_a_quantity(goog: pd.DataFrame, size: object) -> None:
    with pytest.raises(ParameterError, match=rf"size must be 'all'.*got size={re.escape(repr(size))}"):
        wb.backtest("sma_crossover", goog, size=size)


def test_arguments_are_checked_before_any_data_is_loaded() -> None:
    with pytest.raises(ParameterError, match="commission="):  # not UnknownSymbolError for NOPE
        wb.backtest("sma_crossover", "NOPE", commission=NAN)


def _constant(value: float):  # noqa: ANN202 - a plain strategy function
    def rule(prices: pd.DataFrame) -> pd.Series:
        return pd.Series(value, index=prices.index).where(np.arange(len(prices)) >= 100, 0.0)

    return rule


def _shifted(prices: pd.DataFrame) -> pd.Series:
    return pd.Series(1.0, index=prices.index + pd.Timedelta("1h"))


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        (_constant(NAN), r"target values must be -1, 0 or 1; got nan at {ts}"),
        (_constant(2.0), r"target values must be -1, 0 or 1; got 2.0 at {ts}"),
        (_constant(-INF), r"target values must be -1, 0 or 1; got -inf at {ts}"),
        (_constant(0.5), r"target values must be -1, 0 or 1; got 0.5 at {ts}"),
        (_shifted, r"target must have exactly the index of the prices"),
    ],
)
def test_a_bad_strategy_output_fails_identically_on_both_engines(goog: pd.DataFrame, strategy: object,
                                                                  message: str) -> None:  # fmt: skip
    errors = {}
    message = message.format(ts=re.escape(str(goog.index[100])))
    for engine in wb.ENGINES:
        with pytest.raises(ParameterError, match=message) as info:
            wb.backtest(strategy, goog, engine=engine)
        errors[engine] = (type(info.value), str(info.value))
    assert errors["event"] == errors["vectorized"]


def test_infinite_weights_fail_identically_on_both_engines(pair: pd.DataFrame) -> None:
    class Inf(wb.PortfolioStrategy):
        def weights(self, panel: pd.DataFrame) -> pd.DataFrame:
            w = pd.DataFrame(0.5, index=panel.index, columns=["SPX", "IXIC"])
            w.iloc[10, 0] = INF
            return w

    messages = set()
    for engine in wb.ENGINES:
        with pytest.raises(ParameterError, match=r"finite weight .*'SPX': inf") as info:
            wb.backtest(Inf(), pair, engine=engine)
        messages.add(str(info.value))
    assert len(messages) == 1


def test_the_vectorized_grid_checks_targets_like_the_engines(goog: pd.DataFrame) -> None:
    targets = np.zeros((len(goog), 3))
    targets[50, 2] = math.nan
    spec = wb.BacktestSpec(strategy=wb.SMACrossover(), cash=10_000.0, commission=NoCommission(),
                           slippage=NoSlippage(), sizer=AllEquity())  # fmt: skip
    with pytest.raises(ParameterError, match=re.escape(f"got nan at {goog.index[50]}")):
        run_signal_grid(goog, targets, Instrument(ticker="GOOG", exchange="X"), spec)
