"""The RiskReport of a backtest: its tables follow wb.risk's functions exactly, and its
figures show what the tables say (the exceptions, the holdings, the stress P&L)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import workbench as wb
from workbench.risk.monitor import RISK_LOG_COLUMNS
from workbench.risk_report import EVENT_STYLES, RiskReport

PAIR = wb.load_prices(["SPX", "IXIC"], progress=False)
GOOG = wb.load_prices("GOOG")
FF3_CSV = Path(__file__).resolve().parents[1] / "data" / "sample" / "ff3_monthly.csv"


def test_the_report_of_a_portfolio_backtest() -> None:
    r = wb.backtest("pairs", PAIR)
    rep = RiskReport.of(r, PAIR)
    rets = r.returns.dropna()
    assert rep.var.loc["historical", "var"] == wb.risk.historical_var(rets, 0.99).value
    assert rep.var.loc["normal", "es"] == wb.risk.normal_var(rets, 0.99).expected_shortfall
    expected = wb.risk.backtest_var(rets, wb.risk.rolling_historical_var(rets, 250, 0.99).shift(1), 0.99)
    assert rep.var_backtest.loc["pof", "exceptions"] == int(expected.exceptions.sum())
    assert rep.var_backtest.loc["pof", "p_value"] == expected.pof.p_value
    figs = rep.figures()
    assert set(figs) == {"var", "exposure", "stress", "underwater", "correlation", "factors", "risk_log"}
    exceptions = figs["var"].data[2]
    assert len(exceptions.x) == int(expected.exceptions.sum()), "every exception is marked"
    last = r.positions.iloc[-1].rename(lambda s: s.split(".")[0])
    pd.testing.assert_series_equal(rep.positions["quantity"].sort_index(), last.sort_index(), check_names=False)
    assert list(rep.stress.index) == list(wb.risk.SCENARIOS)
    assert list(rep.correlation.columns) in (["SPX", "IXIC"], ["IXIC", "SPX"])
    np.testing.assert_allclose(rep.underwater.to_numpy(), (r.equity / r.equity.cummax() - 1).to_numpy())


def test_a_single_instrument_report_has_no_heatmap() -> None:
    goog = wb.load_prices("GOOG")
    rep = RiskReport.of(wb.backtest("sma_crossover", goog), goog)
    assert rep.correlation is None and "correlation" not in rep.figures()
    assert isinstance(rep.drawdowns, pd.DataFrame) and len(rep.drawdowns) <= 5
    assert wb.risk_report.RiskReport is RiskReport, "reachable from the package"


# -- factor exposures ------------------------------------------------------------------------


def _ff3_by_hand() -> pd.DataFrame:
    """The sample file read without the workbench: percent -> decimal, YYYYMM -> month."""
    raw = pd.read_csv(FF3_CSV)
    out = raw.drop(columns="Date") / 100.0
    out.index = pd.PeriodIndex(raw["Date"].astype(str), freq="M")
    return out


def _monthly_by_hand(returns: pd.Series) -> pd.Series:
    r = returns.dropna()
    grown = (1.0 + r).groupby(r.index.tz_convert(None).to_period("M")).prod() - 1.0
    return grown.iloc[1:-1]  # the partial first and last months


@pytest.mark.parametrize("name", ["pairs", "xs_momentum"])
def test_the_factor_table_is_ols_of_monthly_excess_returns_on_ff3(name: str) -> None:
    prices = PAIR if name == "pairs" else wb.load_prices(["SPX", "IXIC", "GOOG", "WTI"], progress=False)
    r = wb.backtest(name, prices)
    rep = RiskReport.of(r, prices)
    data = pd.concat([_monthly_by_hand(r.returns).rename("r"), _ff3_by_hand()], axis=1, join="inner").dropna()
    y = data["r"] - data["RF"]
    x = sm.add_constant(data[["Mkt-RF", "SMB", "HML"]])
    ols = sm.OLS(y, x).fit()
    terms = ["alpha", "Mkt-RF", "SMB", "HML"]
    assert list(rep.factors.index) == terms and list(rep.factors.columns) == ["beta", "se", "t", "p"]
    np.testing.assert_allclose(rep.factors["beta"].to_numpy(), ols.params.to_numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rep.factors["t"].to_numpy(), ols.tvalues.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(rep.factors["se"].to_numpy(), ols.bse.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(rep.factors["p"].to_numpy(), ols.pvalues.to_numpy(), rtol=1e-8, atol=1e-14)
    lstsq, *_ = np.linalg.lstsq(x.to_numpy(), y.to_numpy(), rcond=None)
    np.testing.assert_allclose(rep.factors["beta"].to_numpy(), lstsq, rtol=1e-10, atol=1e-12)
    assert rep.factor_fit["r_squared"] == pytest.approx(ols.rsquared, rel=1e-10)
    assert rep.factor_fit["months"] == int(ols.nobs) == len(data)
    assert rep.factor_fit["start"].strftime("%Y-%m") == str(data.index[0])
    assert rep.factor_fit["end"].strftime("%Y-%m") == str(data.index[-1])
    bars = rep.figures()["factors"].data[0]
    assert list(bars.x) == terms[1:] and np.allclose(bars.y, ols.params.iloc[1:])
    np.testing.assert_allclose(bars.error_y.array, 1.96 * ols.bse.iloc[1:].to_numpy())


def test_returns_outside_the_factor_data_give_a_note_not_an_exception() -> None:
    btc = wb.load_prices("BTCUSD").loc["2019-01-01":]  # the factors end in 2018-11
    rep = RiskReport.of(wb.backtest(lambda p: pd.Series(1.0, index=p.index), btc), btc, window=24)
    assert rep.factors.empty and rep.factor_fit["months"] == 0 and np.isnan(rep.factor_fit["r_squared"])
    note = next(n for n in rep.notes if n.startswith("factor exposures"))
    assert "2019-02 .. 2024-12" in note and "1926-07 .. 2018-11" in note and "got 0" in note
    fig = rep.figures()["factors"]
    assert len(fig.data) == 0 and fig.layout.annotations[0].text == note


def test_given_factors_are_used_as_they_are() -> None:
    r = wb.backtest("pairs", PAIR)
    market = wb.load_series("ff3_monthly")[["Mkt-RF", "RF"]]
    rep = RiskReport.of(r, PAIR, factors=market)
    fit = wb.risk.factor_exposures(r.returns, market)
    assert list(rep.factors.index) == ["alpha", "Mkt-RF"] and rep.factor_fit["factors"] == "factors="
    np.testing.assert_array_equal(rep.factors["beta"].to_numpy(), fit.table["coef"].to_numpy())


# -- the risk log ----------------------------------------------------------------------------


def always_short(prices: pd.DataFrame) -> pd.Series:
    return pd.Series(-1.0, index=prices.index)


@pytest.mark.parametrize(
    "run",
    [
        {"strategy": "sma_crossover", "params": {"allow_short": True},
         "risk": wb.RiskProfile(limits=(wb.LongOnly(),), max_drawdown=0.25)},  # denials, a state change
        {"strategy": always_short, "size": 40, "cash": 5_000, "account": wb.MarginAccount(0.5, 0.3)},  # a margin call
    ],
    ids=["profile", "margin-call"],
)  # fmt: skip
def test_the_risk_log_table_is_the_runs_risk_log(run: dict) -> None:
    run = dict(run)
    r = wb.backtest(run.pop("strategy"), GOOG, **run)
    rep = RiskReport.of(r, GOOG)
    pd.testing.assert_frame_equal(rep.risk_log, r.risk.events)
    counts = r.risk.events["event"].value_counts()
    s = rep.risk_summary
    assert (s["state"], s["level"], s["passed"], s["denied"], s["reduced"]) == (
        r.risk.state, r.risk.level, r.risk.passed, r.risk.denied, r.risk.reduced)
    assert s["events"] == len(r.risk.events) and all(s[k] == counts.get(k, 0) for k in EVENT_STYLES)
    fig = rep.figures()["risk_log"]
    traces = {t.name.split(" (")[0]: t for t in fig.data[1:]}
    assert set(traces) == set(counts.index), "one trace per kind of event in the log"
    for kind, trace in traces.items():
        stamps = r.risk.events.loc[r.risk.events["event"] == kind, "ts"]
        assert len(trace.x) == counts[kind]
        np.testing.assert_allclose(trace.y, r.equity.loc[stamps].to_numpy())  # on the equity curve at its close
    assert not any(n.startswith("risk log") for n in rep.notes)


def test_a_run_without_a_profile_says_no_risk_profile() -> None:
    r = wb.backtest("sma_crossover", GOOG)
    assert r.risk is None
    rep = RiskReport.of(r, GOOG)
    assert rep.risk_log.empty and list(rep.risk_log.columns) == RISK_LOG_COLUMNS
    assert rep.risk_summary["state"] == "no risk profile" and rep.risk_summary["events"] == 0
    assert any("no risk profile" in n for n in rep.notes)
    fig = rep.figures()["risk_log"]
    assert len(fig.data) == 1 and fig.layout.annotations[0].text == "no risk profile"
    assert fig.layout.title.text.startswith("risk log: no risk profile")
