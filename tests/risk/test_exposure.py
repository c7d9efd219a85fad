"""Exposure, concentration, beta and factor loadings, each against a hand or independent computation."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import workbench as wb
from workbench.errors import InsufficientHistoryError, ParameterError
from workbench.risk.exposure import (
    asset_returns,
    benchmark_beta,
    book,
    book_exposure,
    close_prices,
    concentration,
    exposure_by,
    factor_exposures,
    holdings_returns,
    monthly_returns,
)
from workbench.trading import AssetClass, Instrument

IDX = pd.date_range("2024-01-01", periods=3, tz="UTC")
CLOSES = pd.DataFrame({"A": [9.0, 9.5, 10.0], "B": [21.0, 19.0, 20.0], "C": [4.0, 5.0, 5.0]}, index=IDX)


@pytest.fixture(scope="module")
def pair() -> pd.DataFrame:
    return wb.load_prices(["SPX", "IXIC"], progress=False)


def test_book_marks_values_and_weights_by_hand() -> None:
    b = book({"A": 10, "B": -5, "C": 20}, CLOSES, equity=200.0, asset_classes={"A": "equity"})
    assert b.value.tolist() == [100.0, -100.0, 100.0]  # 10 x 10, -5 x 20, 20 x 5
    assert b.positions["weight"].tolist() == [0.5, -0.5, 0.5]
    assert b.positions["asset_class"].tolist() == ["EQUITY", "UNKNOWN", "UNKNOWN"]
    assert b.asof == IDX[-1]


def test_book_marks_at_last_close_on_or_before_at_and_shows_stale_marks() -> None:
    closes = CLOSES.copy()
    closes.loc[IDX[-1], "A"] = np.nan
    b = book({"A": 1, "B": 1}, closes, at=IDX[-1])
    assert b.positions.loc["A", "price"] == 9.5 and b.positions.loc["A", "marked_at"] == IDX[1]
    assert book({"A": 1}, CLOSES, at="2024-01-01").positions.loc["A", "price"] == 9.0


def test_equity_defaults_to_net_value_and_is_refused_when_not_positive() -> None:
    assert book({"A": 10, "C": 20}, CLOSES).equity == 200.0
    with pytest.raises(ParameterError, match="pass equity="):
        book({"A": 10, "B": -5}, CLOSES)
    with pytest.raises(ParameterError, match="equity must be > 0"):
        book({"A": 1}, CLOSES, equity=-1.0)


@pytest.mark.parametrize(
    ("holdings", "prices", "match"),
    [
        ({"Z": 1}, CLOSES, "'Z' has no prices"),
        ({"A": math.nan}, CLOSES, "finite number"),
        ({"A": 1}, CLOSES.tz_localize(None), "naive"),
        ([("A", 1)], CLOSES, "mapping or Series"),
        ({"A": 1}, [1, 2], "prices must be"),
    ],
)
def test_bad_inputs_are_parameter_errors(holdings, prices, match) -> None:
    with pytest.raises(ParameterError, match=match):
        book(holdings, prices)


def test_before_first_close_is_refused() -> None:
    with pytest.raises(ParameterError, match="no close on or before"):
        book({"A": 1}, CLOSES, at="2023-12-31")


def test_exposure_long_short_gross_net_by_hand() -> None:
    e = book_exposure(book({"A": 10, "B": -5, "C": 20}, CLOSES, equity=400.0))
    assert (e["long"], e["short"], e["gross"], e["net"]) == (200.0, -100.0, 300.0, 100.0)
    assert (e["gross_frac"], e["net_frac"], e["short_frac"]) == (0.75, 0.25, -0.25)
    assert (e["n_long"], e["n_short"]) == (2, 1)


def test_exposure_by_asset_class_and_asset() -> None:
    b = book({"A": 10, "B": -5, "C": 20}, CLOSES, equity=400.0,
             asset_classes={"A": AssetClass.EQUITY, "B": "EQUITY", "C": "FX"})  # fmt: skip
    by = exposure_by(b)
    assert by.loc["EQUITY", ["long", "short", "gross", "net"]].tolist() == [100.0, -100.0, 200.0, 0.0]
    assert by.loc["FX", "gross_frac"] == 0.25
    per = exposure_by(b, by="asset")
    assert per["net"].to_dict() == {"A": 100.0, "B": -100.0, "C": 100.0}
    with pytest.raises(ParameterError, match="by must be"):
        exposure_by(b, by="sector")


def test_concentration_by_hand() -> None:
    c = concentration(pd.Series({"a": 60.0, "b": -30.0, "c": 10.0, "flat": 0.0}), top_n=2)
    assert c["hhi"] == pytest.approx(0.36 + 0.09 + 0.01)
    assert c["effective_n"] == pytest.approx(1 / 0.46)
    assert c["top_n_weight"] == pytest.approx(0.9)
    assert c["n"] == 3  # the flat position is not counted
    assert math.isnan(concentration({"a": 0.0})["hhi"])
    with pytest.raises(ParameterError, match="top_n"):
        concentration({"a": 1.0}, top_n=0)


values = st.lists(st.floats(-1e6, 1e6, allow_nan=False).filter(lambda x: abs(x) > 1e-3), min_size=1, max_size=12)


@given(values)
@settings(max_examples=60, deadline=None)
def test_concentration_bounds(vals: list[float]) -> None:
    c = concentration(pd.Series(vals, index=[f"s{i}" for i in range(len(vals))]))
    n = len(vals)
    assert 1 / n - 1e-12 <= c["hhi"] <= 1 + 1e-12
    assert 1 - 1e-9 <= c["effective_n"] <= n + 1e-9


@given(values)
@settings(max_examples=60, deadline=None)
def test_gross_at_least_abs_net(vals: list[float]) -> None:
    closes = pd.DataFrame({f"s{i}": [1.0] for i in range(len(vals))}, index=IDX[:1])
    e = book_exposure(book({f"s{i}": v for i, v in enumerate(vals)}, closes, equity=1.0))
    assert e["gross"] >= abs(e["net"]) - 1e-9 * e["gross"]
    assert e["gross"] == pytest.approx(e["long"] - e["short"])


def test_panel_input_reads_closes_and_asset_classes(pair: pd.DataFrame) -> None:
    b = book({"SPX": 1, "IXIC": -1}, pair, equity=1e4)
    assert b.positions.loc["SPX", "price"] == pair[("SPX", "Close")].iloc[-1]
    assert set(b.positions["asset_class"]) == {"INDEX"}
    assert list(close_prices(pair).columns) == ["SPX", "IXIC"]


def test_book_from_a_backtest_result() -> None:
    r = wb.backtest("sma_crossover", "GOOG", {"fast": 10, "slow": 30})
    goog = wb.load_prices("GOOG")
    b = book(r, goog)
    assert b.quantity["GOOG"] == r.positions.iloc[-1]
    assert b.equity == r.equity.iloc[-1] and b.asof == r.equity.index[-1]
    assert b.positions.loc["GOOG", "asset_class"] == "EQUITY"
    mid = r.equity.index[1000]
    assert book(r, goog, at=mid).equity == r.equity.loc[mid]


def test_duck_typed_result_uses_instrument_multiplier() -> None:
    inst = Instrument(ticker="A", exchange="X", asset_class="FUTURE", multiplier=50.0)
    fake = SimpleNamespace(positions=pd.DataFrame({"A.X": [0.0, 2.0, 3.0]}, index=IDX),
                           equity=pd.Series([1e4, 1e4, 2e4], index=IDX), spec=SimpleNamespace(instruments=(inst,)))  # fmt: skip
    b = book(fake, CLOSES)
    assert b.value["A"] == 3 * 10.0 * 50.0 and b.equity == 2e4
    assert b.positions.loc["A", "asset_class"] == "FUTURE"


def test_asset_returns_skip_gaps() -> None:
    closes = pd.DataFrame({"A": [1.0, np.nan, 2.0], "B": [1.0, 1.1, 1.21]}, index=IDX)
    r = asset_returns(closes)
    assert math.isnan(r.loc[IDX[1], "A"]) and r.loc[IDX[2], "A"] == 1.0
    assert r["B"].tolist() == pytest.approx([0.1, 0.1])


def test_holdings_returns_by_hand() -> None:
    b = book({"A": 10, "B": -5}, CLOSES, equity=100.0)  # values 100 and -100
    r = holdings_returns(b, CLOSES)
    ra, rb = CLOSES["A"].pct_change().iloc[1:], CLOSES["B"].pct_change().iloc[1:]
    assert r.tolist() == pytest.approx((ra * 1.0 - rb * 1.0).tolist())


def test_beta_and_correlation_match_linregress(pair: pd.DataFrame) -> None:
    rets = asset_returns(pair)
    spx, ixic = rets["SPX"], rets["IXIC"].iloc[5:]  # different spans: aligned on common dates
    out = benchmark_beta(ixic, spx)
    ref = stats.linregress(spx.loc[ixic.index].to_numpy(), ixic.to_numpy())
    assert out["beta"] == pytest.approx(ref.slope, rel=1e-10)
    assert out["correlation"] == pytest.approx(ref.rvalue, rel=1e-10)
    assert out["alpha"] == pytest.approx(ref.intercept, abs=1e-12)
    assert out["n_obs"] == len(ixic) and out["start"] == ixic.index[0]


def test_beta_needs_common_dates_and_a_moving_benchmark() -> None:
    a = pd.Series([0.01, 0.02], index=IDX[:2])
    with pytest.raises(InsufficientHistoryError, match=">= 3 common dates, got 2"):
        benchmark_beta(a, a)
    with pytest.raises(ParameterError, match="constant"):
        benchmark_beta(pd.Series([0.1, 0.2, 0.3], index=IDX), pd.Series([0.0, 0.0, 0.0], index=IDX))


def test_monthly_compounding_drops_edge_months() -> None:
    idx = pd.to_datetime(["2024-01-30", "2024-02-01", "2024-02-15", "2024-03-01", "2024-04-02"], utc=True)
    m = monthly_returns(pd.Series([0.5, 0.1, 0.2, -0.1, 0.3], index=idx))
    assert list(m.index) == list(pd.to_datetime(["2024-02-01", "2024-03-01"], utc=True))
    assert m.tolist() == pytest.approx([1.1 * 1.2 - 1, -0.1])
    already = pd.Series([0.01, 0.02], index=pd.to_datetime(["2024-01-01", "2024-02-01"], utc=True))
    assert monthly_returns(already).tolist() == [0.01, 0.02]


@pytest.fixture(scope="module")
def spx_monthly() -> tuple[pd.Series, pd.DataFrame]:
    spx = wb.load_prices("SPX")["Close"]
    return monthly_returns(spx.pct_change().dropna()), wb.load_series("ff3_monthly")


def test_one_factor_fit_matches_linregress(spx_monthly) -> None:
    r, ff = spx_monthly
    fit = factor_exposures(r, ff[["Mkt-RF", "RF"]])
    data = pd.concat([r, ff], axis=1, join="inner").dropna()
    ref = stats.linregress(data["Mkt-RF"], data["returns"] - data["RF"])
    t = fit.table
    assert t.loc["Mkt-RF", "coef"] == pytest.approx(ref.slope, rel=1e-10)
    assert t.loc["Mkt-RF", "se"] == pytest.approx(ref.stderr, rel=1e-8)
    assert t.loc["alpha", "coef"] == pytest.approx(ref.intercept, abs=1e-12)
    assert t.loc["alpha", "se"] == pytest.approx(ref.intercept_stderr, rel=1e-8)
    assert t.loc["Mkt-RF", "p"] == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)
    assert fit.r_squared == pytest.approx(ref.rvalue**2, rel=1e-10)
    assert fit.n_obs == len(data)


def test_three_factor_fit_matches_normal_equations_and_statsmodels(spx_monthly) -> None:
    r, ff = spx_monthly
    fit = factor_exposures(r, ff)
    data = pd.concat([r, ff], axis=1, join="inner").dropna()
    y = (data["returns"] - data["RF"]).to_numpy()
    x = np.column_stack([np.ones(len(y)), data[["Mkt-RF", "SMB", "HML"]].to_numpy()])
    coef = np.linalg.solve(x.T @ x, x.T @ y)  # normal equations, not lstsq
    assert fit.table["coef"].to_numpy() == pytest.approx(coef, rel=1e-8, abs=1e-12)
    sm = pytest.importorskip("statsmodels.api")
    ols = sm.OLS(y, x).fit()
    assert fit.table["se"].to_numpy() == pytest.approx(ols.bse, rel=1e-8)
    assert fit.table["t"].to_numpy() == pytest.approx(ols.tvalues, rel=1e-8)
    assert fit.r_squared == pytest.approx(ols.rsquared, rel=1e-10)
    # the S&P 500 is the market: beta near 1, a tight fit
    assert 0.9 < fit.table.loc["Mkt-RF", "coef"] < 1.1 and fit.r_squared > 0.9
    assert fit.start == pd.Timestamp("1999-02-01", tz="UTC") and fit.end == pd.Timestamp("2018-11-01", tz="UTC")


def test_factor_fit_errors(spx_monthly) -> None:
    r, ff = spx_monthly
    with pytest.raises(ParameterError, match="rf='rf'"):
        factor_exposures(r, ff, rf="rf")
    with pytest.raises(InsufficientHistoryError, match="need >= 5 common months"):
        factor_exposures(r.iloc[:3], ff)
    collinear = ff.assign(SMB2=ff["SMB"] * 2)
    with pytest.raises(ParameterError, match="collinear"):
        factor_exposures(r, collinear)
