"""Drawdowns against a hand-computed curve and against workbench.strategy.metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.errors import ParameterError
from workbench.risk.drawdown import (
    EPISODE_COLUMNS,
    DrawdownDuration,
    current_drawdown,
    drawdown_duration,
    drawdown_episodes,
    drawdown_table,
    max_drawdown,
    underwater,
)
from workbench.strategy import metrics

IDX = pd.date_range("2024-01-01", periods=8, freq="D", tz="UTC")
# peak 120 (bar 1) -> trough 60 (bar 3) -> recovered (bar 4); new peak 130 (bar 5) -> 65 (bar 6), not back
EQ = pd.Series([100.0, 120.0, 90.0, 60.0, 120.0, 130.0, 65.0, 100.0], index=IDX)


def test_underwater_current_and_max_by_hand() -> None:
    assert underwater(EQ).tolist() == pytest.approx([0, 0, -0.25, -0.5, 0, 0, -0.5, 100 / 130 - 1])
    assert current_drawdown(EQ) == pytest.approx(100 / 130 - 1)
    assert max_drawdown(EQ) == -0.5


def test_episodes_by_hand() -> None:
    ep = drawdown_episodes(EQ)
    assert list(ep.columns) == EPISODE_COLUMNS
    first, second = ep.iloc[0], ep.iloc[1]
    assert (first["peak"], first["trough"], first["recovery"]) == (IDX[1], IDX[3], IDX[4])
    assert (first["depth"], first["bars_to_trough"], first["bars"], first["recovered"]) == (-0.5, 2, 3, True)
    assert first["duration"] == pd.Timedelta(days=3)
    assert (second["peak"], second["trough"], second["recovery"]) == (IDX[5], IDX[6], None)
    assert (second["bars"], second["duration"], second["recovered"]) == (2, pd.Timedelta(days=2), False)
    assert (second["peak_value"], second["trough_value"]) == (130.0, 65.0)


def test_table_worst_first_ties_earlier_first_and_top() -> None:
    t = drawdown_table(EQ, top=5)
    assert list(t.index) == [1, 2] and t.index.name == "rank"
    assert t["peak"].tolist() == [IDX[1], IDX[5]]  # equal depth -0.5: the earlier first
    assert len(drawdown_table(EQ, top=1)) == 1
    eq = pd.Series([100.0, 90.0, 100.0, 70.0, 100.0, 95.0], index=IDX[:6])
    assert drawdown_table(eq)["depth"].tolist() == pytest.approx([-0.3, -0.1, -0.05])


def test_durations_in_bars_and_time_can_come_from_different_episodes() -> None:
    # episode 1: 2 bars over an 8-day gap (9 days); episode 2: 5 bars on consecutive days
    idx = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-11",
                          "2024-01-12", "2024-01-13", "2024-01-14", "2024-01-15", "2024-01-16"], utc=True)  # fmt: skip
    eq = pd.Series([10.0, 11.0, 9.0, 12.0, 11.0, 10.0, 10.0, 11.0, 12.0], index=idx)
    d = drawdown_duration(eq)
    assert d == DrawdownDuration(bars=5, time=pd.Timedelta(days=9))
    eq2 = pd.Series([10.0, 11.0, 9.0, 9.5, 12.0, 11.0, 11.5, 12.0, 12.0], index=idx)
    assert drawdown_duration(eq2) == DrawdownDuration(bars=3, time=pd.Timedelta(days=10))
    assert drawdown_duration(pd.Series([1.0, 2.0, 3.0], index=IDX[:3])) == DrawdownDuration(0, pd.Timedelta(0))


@pytest.fixture(scope="module")
def result():
    return wb.backtest("sma_crossover", "GOOG", {"fast": 10, "slow": 30}, commission=0.001)


def test_agrees_with_strategy_metrics_on_a_backtest(result) -> None:
    assert max_drawdown(result) == metrics.max_drawdown(result.equity)
    assert underwater(result).to_numpy() == pytest.approx(metrics.drawdown(result.equity).to_numpy())
    assert drawdown_duration(result).time == metrics.max_drawdown_duration(result.equity)
    t = drawdown_table(result, top=3)
    assert t["depth"].iloc[0] == pytest.approx(metrics.max_drawdown(result.equity))
    assert t["depth"].is_monotonic_increasing


@given(st.lists(st.floats(-0.2, 0.2, allow_nan=False), min_size=2, max_size=60))
@settings(max_examples=80, deadline=None)
def test_properties_against_metrics(rets: list[float]) -> None:
    eq = pd.Series(100 * np.cumprod(1 + np.array(rets)), index=pd.date_range("2020-01-01", periods=len(rets), tz="UTC"))
    assert max_drawdown(eq) == pytest.approx(metrics.max_drawdown(eq), abs=1e-15)
    assert drawdown_duration(eq).time == metrics.max_drawdown_duration(eq)
    ep = drawdown_episodes(eq)
    assert (ep["depth"] < 0).all()
    assert (ep["bars"] >= ep["bars_to_trough"]).all() and (ep["bars_to_trough"] >= 1).all()
    assert ep["recovered"].iloc[:-1].all() if len(ep) else True  # only the last can be open
    if len(ep):
        assert math.isclose(ep["depth"].min(), max_drawdown(eq), abs_tol=1e-15)


@pytest.mark.parametrize(
    ("equity", "match"),
    [
        (pd.Series([1.0, np.nan], index=IDX[:2]), "finite"),
        (pd.Series([0.0, 1.0], index=IDX[:2]), "start > 0"),
        (pd.Series([], dtype=float, index=IDX[:0]), "empty"),
        (pd.Series([1.0, 2.0]), "DatetimeIndex"),
        (pd.Series([1.0, 2.0], index=IDX[:2][::-1]), "time order"),
        ([1.0, 2.0], "must be a Series"),
    ],
)
def test_bad_equity(equity, match) -> None:
    with pytest.raises(ParameterError, match=match):
        underwater(equity)


def test_bad_top() -> None:
    with pytest.raises(ParameterError, match="top must be"):
        drawdown_table(EQ, top=0)
