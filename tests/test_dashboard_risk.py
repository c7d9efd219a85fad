"""The risk review dashboard (workbench/dashboards/risk.py, notebooks/dashboard_risk.ipynb).

Kernel level: RiskReview on a temporary store, each control changed as the page would
change it, every figure and table checked against numbers computed here by hand (numpy,
scipy, pandas); forged front-end messages refused. Browser: the notebook served by Voila in
Debian's Chromium, each control changed in the page, 0 external requests, screenshots.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from hypothesis.extra import numpy as hnp
from scipy import stats

import workbench as wb
from tests._dashboards import (
    needs_chromium,
    open_page,
    plot_data,
    screenshot,
    serve,
    wait_generation,
)
from workbench.dashboards import risk as rd
from workbench.errors import ParameterError

ROOT = Path(__file__).resolve().parents[1]
FOUR = ["GOOG", "SPX", "IXIC", "WTI"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three runs: the sample (SPX, with a risk profile), a four-asset book and a GOOG run (no profile)."""
    s = wb.SQLiteStore(tmp_path_factory.mktemp("risk") / "s.sqlite")
    runs = {
        "sample": wb.backtest("sma_crossover", "SPX", {"fast": 20, "slow": 100}, commission=0.001,
                              risk=rd.sample_profile(), store=s),
        "book": wb.backtest("xs_momentum", FOUR, cash=1e6, store=s),
        "goog": wb.backtest("sma_crossover", "GOOG", {"fast": 10, "slow": 30}, store=s),
    }  # fmt: skip
    return s, runs


@pytest.fixture(autouse=True)
def shown(monkeypatch):
    """Figures the dashboard draws, by output widget (outside a kernel, plotly would print them)."""
    drawn: list = []
    monkeypatch.setattr(rd, "show_figure", lambda out, fig: drawn.append((out, fig)))
    return drawn


def _stamps(x) -> list[pd.Timestamp]:
    return list(pd.to_datetime(pd.Series(x), utc=True))


def review(store, name: str) -> rd.RiskReview:
    s, runs = store
    return rd.RiskReview(s, run_id=runs[name].run_id)


def _trace(fig, prefix: str):
    return next(t for t in fig.data if (t.name or "").startswith(prefix))


def _hist_var_by_hand(window: np.ndarray, c: float) -> float:
    k = max(1, math.ceil(round(len(window) * (1 - c), 9)))
    return -np.sort(window)[k - 1]


def _state(d: rd.RiskReview) -> str:
    return d.status.widget.value.split("data-state='")[1].split("'")[0]


# -- runs ----------------------------------------------------------------------------------------
def test_run_dropdown_lists_backtests_newest_first_labelled_with_strategy_symbols_range_and_id(store):
    d = review(store, "sample")
    labels, keys = zip(*d.run.options, strict=True)
    _, runs = store
    assert list(keys) == [runs["goog"].run_id, runs["book"].run_id, runs["sample"].run_id]
    assert labels[1] == f"CrossSectionalMomentum · GOOG,SPX,IXIC,WTI · 2004-08-19..2013-03-01 · {runs['book'].run_id}"
    assert d.run.value == runs["sample"].run_id and _state(d) == "ready"


def test_refresh_lists_a_new_run_and_keeps_the_run_under_review(tmp_path):
    s = wb.SQLiteStore(tmp_path / "r.sqlite")
    first = wb.backtest("sma_crossover", "GOOG", {"fast": 10, "slow": 30}, store=s)
    d = rd.RiskReview(s)
    draws = dict(d.draws)
    later = wb.backtest("sma_crossover", "GOOG", {"fast": 5, "slow": 50}, store=s)
    d.refresh.click()
    assert [k for _, k in d.run.options] == [later.run_id, first.run_id]
    assert d.run.value == first.run_id and d.draws == draws and _state(d) == "ready"


def test_empty_store_says_so_then_the_sample_button_runs_stores_and_selects_the_sample(tmp_path):
    s = wb.SQLiteStore(tmp_path / "empty.sqlite")
    d = rd.RiskReview(s)
    assert "No backtest runs to review" in d.html["empty"].value and d.body.layout.display == "none"
    assert d.run.options == () and d.figures == {}
    d.sample.click()
    stored = wb.runs(kind="backtest", store=s)
    assert len(stored) == 1 and d.run.value == stored["run_id"].iloc[0]
    assert d.html["empty"].value == "" and d.body.layout.display is None
    result = wb.load_run(d.run.value, store=s)
    assert result.spec.risk == rd.sample_profile()
    assert f"{len(result.risk.events)} events" in d.html["risk_log"].value
    assert d.draws == dict.fromkeys(["var", "limits", "risk_log", "stress", "exposure", "correlation", "factors"], 1)


def test_with_the_store_off_the_sample_is_reviewed_without_being_stored():
    d = rd.RiskReview(None)
    assert "the experiment store is off" in d.html["empty"].value
    d.sample.click()
    assert d.run.options[0][0].endswith("(not stored)") and _state(d) == "ready"
    assert "VaR backtest" in d.figures["var"].layout.title.text


def test_a_run_whose_prices_cannot_be_loaded_is_one_error_line_and_the_next_run_still_loads(tmp_path):
    s = wb.SQLiteStore(tmp_path / "odd.sqlite")
    good = wb.backtest("sma_crossover", "GOOG", {"fast": 10, "slow": 30}, store=s)
    p = wb.load_prices("GOOG").copy()
    p.attrs = {**p.attrs, "symbol": "ZZZ", "source": "user"}
    odd = wb.backtest("sma_crossover", p, store=s)  # prices a user passed: not in the sample
    d = rd.RiskReview(s, run_id=odd.run_id)
    assert _state(d) == "error" and "ZZZ" in d.status.widget.value and "cannot be loaded offline" in d.status.widget.value
    assert d.body.layout.display == "none"  # no other run's figures under this run's name
    d.run.set_state({"index": [k for _, k in d.run.options].index(good.run_id)})
    assert _state(d) == "ready" and d.body.layout.display is None


# -- VaR and its backtest --------------------------------------------------------------------------
def test_historical_rolling_var_is_the_order_statistic_of_the_window_before_and_exceptions_count_by_hand(store):
    d = review(store, "goog")
    r = store[1]["goog"].returns.dropna().to_numpy()
    fig = d.figures["var"]
    line = -np.asarray(_trace(fig, "-VaR").y, dtype=float)
    w = d.window.value
    assert np.isnan(line[:w]).all()
    expect = np.array([_hist_var_by_hand(r[i - w : i], 0.99) for i in range(w, len(r))])
    np.testing.assert_allclose(line[w:], expect, rtol=0, atol=1e-15)
    hits = int((-r[w:] > expect).sum())
    assert len(_trace(fig, "exceptions").x) == hits
    table = d.tables["var_backtest"]
    assert table.loc["Kupiec POF, χ²(1)", "exceptions"] == hits
    assert table.loc["Kupiec POF, χ²(1)", "observations"] == len(r) - w
    # the same line RiskReport draws (the dashboard drives it, it does not re-derive it)
    np.testing.assert_allclose(line, d.report().var_series["var"].to_numpy(), equal_nan=True)


def test_kupiec_and_christoffersen_p_values_match_the_closed_forms(store):
    d = review(store, "sample")
    fig, table = d.figures["var"], d.tables["var_backtest"]
    var = -np.asarray(_trace(fig, "-VaR").y, dtype=float)
    r = np.asarray(_trace(fig, "return").y, dtype=float)
    ok = ~np.isnan(var)
    hit = (-r[ok] > var[ok]).astype(int)
    n, x, p = len(hit), hit.sum(), 0.01
    lr = -2 * ((n - x) * np.log(1 - p) + x * np.log(p) - (n - x) * np.log(1 - x / n) - x * np.log(x / n))
    assert table.loc["Kupiec POF, χ²(1)", "statistic"] == pytest.approx(lr, rel=1e-10)
    assert table.loc["Kupiec POF, χ²(1)", "p_value"] == pytest.approx(stats.chi2.sf(lr, 1), rel=1e-9)
    a, b = hit[:-1], hit[1:]
    n00, n01, n10, n11 = (((a == i) & (b == j)).sum() for i in (0, 1) for j in (0, 1))
    pi0, pi1, pi = n01 / (n00 + n01), n11 / (n10 + n11), (n01 + n11) / (n - 1)

    def ll(k, m, q):
        return (m - k) * np.log(1 - q) + (k * np.log(q) if k else 0.0)

    lr_ind = -2 * (ll(n01 + n11, n - 1, pi) - ll(n01, n00 + n01, pi0) - ll(n11, n10 + n11, pi1))
    assert table.loc["Christoffersen independence, χ²(1)", "statistic"] == pytest.approx(lr_ind, rel=1e-9)
    cc = table.loc["Christoffersen conditional coverage, χ²(2)"]
    assert cc["p_value"] == pytest.approx(stats.chi2.sf(lr + lr_ind, 2), rel=1e-9)
    prob = stats.binom.cdf(x, n, p)
    zone = "green" if prob < 0.95 else "yellow" if prob < 0.9999 else "red"
    assert table.loc["Basel traffic light", "verdict"] == zone
    assert table.loc["Basel traffic light", "p_value"] == pytest.approx(prob)


def test_confidence_changes_the_var_table_and_the_line_and_nothing_else_is_redrawn(store):
    d = review(store, "goog")
    before = dict(d.draws)
    d.confidence.set_state({"index": 0})  # the page picks "95 %"
    assert d.confidence.value == 0.95
    assert {k: v - before[k] for k, v in d.draws.items()} == {**dict.fromkeys(before, 0), "var": 1}
    r = store[1]["goog"].returns.dropna().to_numpy()
    assert d.tables["var"].loc["historical", "var"] == pytest.approx(_hist_var_by_hand(r, 0.95), abs=1e-15)
    mu, sd = r.mean(), r.std(ddof=1)
    assert d.tables["var"].loc["normal", "var"] == pytest.approx(-(mu + sd * stats.norm.ppf(0.05)), rel=1e-12)
    line = -np.asarray(_trace(d.figures["var"], "-VaR 95%").y, dtype=float)
    assert line[-1] == pytest.approx(_hist_var_by_hand(r[-1 - 250 : -1], 0.95), abs=1e-15)
    assert "95%" in d.figures["var"].layout.title.text and "95%" in d.html["var_table"].value


def test_normal_estimator_line_is_mean_and_sigma_of_the_window_before(store):
    d = review(store, "goog")
    d.window.set_state({"value": 120})
    d.estimator.set_state({"index": list(rd.ESTIMATORS).index("normal")})
    assert "normal 99%, window 120" in d.figures["var"].layout.title.text
    r = store[1]["goog"].returns.dropna()
    by_hand = -(r.rolling(120).mean() + r.rolling(120).std(ddof=1) * stats.norm.ppf(0.01)).shift(1)
    by_hand[r.rolling(120).std(ddof=1).shift(1) == 0] = np.nan  # no variation: no forecast
    line = -np.asarray(_trace(d.figures["var"], "-VaR").y, dtype=float)
    assert np.isnan(line[:120]).all()
    np.testing.assert_allclose(line, by_hand.to_numpy(), rtol=1e-9, atol=1e-12, equal_nan=True)


def test_student_t_is_refitted_every_126_bars_by_maximum_likelihood_and_held_between(store):
    r = store[1]["goog"].returns.dropna()
    roll = rd.rolling_var(r, "student_t", 250, 0.99)
    assert roll.refit == rd.REFIT["student_t"] == 126
    x = r.to_numpy()
    for start in (250, 250 + 126 * 3):
        nu, loc, scale = stats.t.fit(x[start - 250 : start])
        expect = -(loc + scale * stats.t.ppf(0.01, nu)) if nu > 1 else np.nan
        block = roll.var.iloc[start : start + 126].to_numpy()
        np.testing.assert_allclose(block, expect, rtol=1e-9)
    assert roll.var.iloc[:250].isna().all()


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, hs.integers(12, 60), elements=hs.floats(-0.2, 0.2)), hs.integers(3, 10),
       hs.sampled_from([0.9, 0.95, 0.99]))  # fmt: skip
def test_historical_rolling_var_is_the_window_order_statistic_for_any_returns(x, window, c):
    roll = rd.rolling_var(pd.Series(x), "historical", window, c)
    assert roll.var.iloc[:window].isna().all()
    for i in range(window, len(x)):
        assert roll.var.iloc[i] == _hist_var_by_hand(x[i - window : i], c)


def test_rolling_var_refuses_an_unknown_estimator_and_a_bad_refit():
    with pytest.raises(ParameterError, match=r"rolling_var: estimator must be one of .*got estimator='garch'"):
        rd.rolling_var(pd.Series([0.01, 0.02, -0.01]), "garch", 2, 0.99)
    with pytest.raises(ParameterError, match="refit must be a whole number of bars >= 1, got refit=0"):
        rd.rolling_var(pd.Series([0.01, 0.02, -0.01]), "normal", 2, 0.99, refit=0)


# -- limits ---------------------------------------------------------------------------------------------
def _by_hand_measures(result, tickers):
    closes = pd.DataFrame({t: wb.load_prices(t)["Close"] for t in tickers}).reindex(result.positions.index).ffill()
    pos = result.positions.to_frame() if isinstance(result.positions, pd.Series) else result.positions
    values = pd.DataFrame(pos.to_numpy() * closes.to_numpy(), index=pos.index)
    eq = result.equity
    gross = values.abs().sum(axis=1)
    return gross / eq, values.abs().max(axis=1) / eq, eq


def test_limit_usage_on_the_path_matches_positions_times_closes_and_breaches_start_each_episode(store):
    d = review(store, "book")
    result = store[1]["book"]
    gross, weight, eq = _by_hand_measures(result, FOUR)
    table = d.tables["limits"]
    assert table.loc["MaxGrossLeverage", "peak"] == pytest.approx(gross.max(), rel=1e-12)
    assert table.loc["MaxPositionWeight", "peak"] == pytest.approx(weight.max(), rel=1e-12)
    dd = eq / eq.cummax() - 1
    assert table.loc["max_drawdown", "peak"] == pytest.approx(-dd.min(), rel=1e-12)
    line = _trace(d.figures["limits"], "MaxGrossLeverage 1").y
    np.testing.assert_allclose(line, gross.to_numpy() / 1.0, rtol=1e-12)
    # the reviewer tightens gross leverage to 60% of equity: breaches at each episode's first close
    d.gross.set_state({"value": 0.6})
    over = (gross > 0.6 * (1 + 1e-9)).to_numpy()
    starts = gross.index[over & ~np.concatenate(([False], over[:-1]))]
    marks = _trace(d.figures["limits"], "MaxGrossLeverage breaches")
    assert _stamps(marks.x) == list(starts) and len(starts) > 0
    assert d.tables["limits"].loc["MaxGrossLeverage", "bars_over"] == over.sum()
    assert d.tables["limits"].loc["MaxGrossLeverage", "episodes"] == len(starts)
    # drawdown limit: every episode at or beyond it (the RiskMonitor's rule)
    d.drawdown.set_state({"value": 0.15})
    hit = (dd <= -0.15 + 1e-12).to_numpy()
    dd_starts = dd.index[hit & ~np.concatenate(([False], hit[:-1]))]
    assert _stamps(_trace(d.figures["limits"], "max_drawdown breaches").x) == list(dd_starts)


def test_the_limit_boxes_start_from_the_runs_own_profile(store):
    d = review(store, "sample")
    assert (d.gross.value, d.drawdown.value) == (1.0, 0.3)  # MaxGrossLeverage(1.0), max_drawdown=0.3
    assert (d.weight.value, d.hhi.value) == (1.0, 1.0)  # not in the profile: the defaults
    d.run.value = store[1]["goog"].run_id
    assert d.drawdown.value == 0.2


def test_the_limit_set_is_the_domains_own_limits_and_names_a_bad_value():
    profile = rd.limit_profile(1.5, 0.4, 0.5, 0.25)
    assert [type(lim).__name__ for lim in profile.limits] == ["MaxGrossLeverage", "MaxPositionWeight", "MaxHHI"]
    with pytest.raises(ParameterError, match=r"MaxGrossLeverage: limit must be a finite number > 0, got limit=0"):
        rd.limit_profile(0, 0.4, 0.5, 0.25)
    with pytest.raises(ParameterError, match=r"max_drawdown must be a fraction in \(0, 1\), got max_drawdown=1.5"):
        rd.limit_profile(1.0, 0.4, 0.5, 1.5)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, hs.tuples(hs.integers(2, 12), hs.integers(1, 4)), elements=hs.floats(-1e4, 1e4)),
       hs.floats(1e3, 1e5))  # fmt: skip
def test_path_measures_are_consistent_for_any_book(values, cash):
    idx = pd.date_range("2020-01-01", periods=len(values), tz="UTC")
    v = pd.DataFrame(values, index=idx)
    eq = pd.Series(cash + np.arange(len(values)) * 10.0, index=idx)
    m = rd.path_measures(v, eq)
    a = np.abs(values)
    n = (a > 0).sum(axis=1)
    assert np.all(m["position_weight"] <= m["gross_leverage"] + 1e-12)
    assert np.all(m["gross_leverage"] <= np.maximum(n, 1) * m["position_weight"] + 1e-12)
    invested = n > 0
    assert np.all((m["hhi"][invested] >= 1 / n[invested] - 1e-12) & (m["hhi"][invested] <= 1 + 1e-12))
    assert np.all(m["hhi"][~invested] == 0)
    assert np.all((m["drawdown"] >= 0) & (m["drawdown"] < 1))


# -- risk log, stress, correlation, factors ------------------------------------------------------------
def test_risk_log_shows_the_runs_events_or_says_there_is_no_profile(store):
    d = review(store, "sample")
    log = store[1]["sample"].risk.events
    counts = log["event"].value_counts()
    fig = d.figures["risk_log"]
    for kind, n in counts.items():
        assert len(_trace(fig, f"{kind} (").x) == n
    assert f"{counts.get('RiskCheckFailed', 0)} denied" in d.html["risk_log"].value
    d.run.value = store[1]["goog"].run_id
    assert "no risk profile on this run" in d.html["risk_log"].value
    assert d.figures["risk_log"].layout.annotations[0].text == "no risk profile"


def test_stress_is_the_holdings_times_each_windows_return_by_hand(store):
    d = review(store, "sample")
    result = store[1]["sample"]
    spx = wb.load_prices("SPX")["Close"]
    assert [o[1] for o in d.holdings.options][0] == "last"
    held_at = d.holdings.options[-1][1]
    assert float(result.positions.iloc[-1]) == 0 and d.holdings.value == held_at  # flat at the end: the last held book
    assert "the last bar that held a position" in d.html["stress_table"].value
    at = pd.Timestamp(held_at)
    qty = float(result.positions.loc[:at].iloc[-1])
    assert qty > 0
    equity = float(result.equity.loc[:at].iloc[-1])
    base = spx.loc[: pd.Timestamp("2008-09-01", tz="UTC") - pd.Timedelta(days=1)].iloc[-1]
    end = spx.loc[: pd.Timestamp("2009-03-09 23:59", tz="UTC")].iloc[-1]
    pnl = qty * spx.loc[:at].iloc[-1] * (end / base - 1)
    assert d.tables["stress"].loc["GFC", "pnl"] == pytest.approx(pnl, rel=1e-12)
    assert d.tables["stress"].loc["GFC", "pnl_frac"] == pytest.approx(pnl / equity, rel=1e-12)
    assert f"at {at:%Y-%m-%d}" in d.figures["stress"].layout.title.text
    d.holdings.set_state({"index": 0})  # the page picks the last bar itself
    assert "the book is flat at this date" in d.html["stress_table"].value
    assert (d.tables["stress"]["pnl"] == 0).all() and "2018-12-31" in d.figures["stress"].layout.title.text


def _by_hand_corr(symbols, end, window):
    rets = pd.concat({s: (c := wb.load_prices(s)["Close"]) / c.shift(1) - 1 for s in symbols}, axis=1, sort=True)
    rets = rets.loc[:end].dropna(how="any").tail(window)
    return rets.corr()


def test_correlation_is_pearson_of_the_last_common_dates_and_follows_symbols_and_window(store):
    d = review(store, "sample")
    end = store[1]["sample"].equity.index[-1]
    assert d.corr_symbols.value == ("SPX", "IXIC", "VIX", "WTI")  # the run's asset and the series covering its window
    c = d.tables["correlation"]
    pd.testing.assert_frame_equal(c, _by_hand_corr(c.columns, end, 250).loc[c.index, c.columns], rtol=1e-12)
    d.corr_symbols.set_state({"index": [list(d.corr_symbols.options).index(s) for s in ("GOOG", "SPX", "IXIC")]})
    c = d.tables["correlation"]
    assert sorted(c.columns) == ["GOOG", "IXIC", "SPX"]  # GOOG ends in 2013: the common dates end there
    pd.testing.assert_frame_equal(c, _by_hand_corr(c.columns, end, 250).loc[c.index, c.columns], rtol=1e-12)
    d.corr_window.set_state({"value": 60})
    c = d.tables["correlation"]
    pd.testing.assert_frame_equal(c, _by_hand_corr(c.columns, end, 60).loc[c.index, c.columns], rtol=1e-12)
    assert "60 common dates" in d.figures["correlation"].layout.title.text
    d.corr_symbols.set_state({"index": [0]})
    assert "at least 2 symbols" in d.figures["correlation"].layout.annotations[0].text


def test_an_hourly_run_is_not_correlated_with_daily_series(tmp_path):
    s = wb.SQLiteStore(tmp_path / "h.sqlite")
    wb.backtest("sma_crossover", "EURUSD", {"fast": 10, "slow": 40}, store=s)
    d = rd.RiskReview(s)
    assert _state(d) == "ready" and d.corr_symbols.options == ("EURUSD",)
    assert "at least 2 symbols" in d.figures["correlation"].layout.annotations[0].text


def test_factor_loadings_are_ols_of_monthly_excess_returns_by_hand(store):
    d = review(store, "book")
    r = store[1]["book"].returns.dropna()
    month = r.index.tz_convert("UTC").tz_localize(None).to_period("M")
    m = (1 + r).groupby(month).prod() - 1
    m = m.iloc[1:-1]
    m.index = m.index.to_timestamp().tz_localize("UTC")
    ff = wb.load_series("ff3_monthly")
    both = ff.join(m.rename("r"), how="inner")
    X = np.column_stack([np.ones(len(both)), both[["Mkt-RF", "SMB", "HML"]].to_numpy()])
    beta = np.linalg.lstsq(X, (both["r"] - both["RF"]).to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(d.tables["factors"]["beta"].to_numpy(), beta, rtol=1e-9)
    assert "factor exposures" in d.figures["factors"].layout.title.text


# -- the page may only send what a user could ------------------------------------------------------------
def test_forged_messages_to_every_input_widget_are_refused_and_the_dashboard_keeps_working(store):
    d = review(store, "book")
    forged = {
        d.run: [{"index": 99}, {"index": None}, {"_options_labels": ["<script>"]}],
        d.confidence: [{"index": 5}, {"index": "0"}],
        d.estimator: [{"index": -1}, {"disabled": True}],
        d.window: [{"value": 10**9}, {"value": 2.5}, {"value": "250"}],
        d.gross: [{"value": float("nan")}, {"value": -1.0}, {"value": True}],
        d.weight: [{"value": float("inf")}],
        d.hhi: [{"value": 1.5}],
        d.drawdown: [{"value": 0.0}, {"value": 1.0}],
        d.holdings: [{"index": 3}],
        d.corr_symbols: [{"index": [0, 0]}, {"index": [99]}, {"index": 1}],
        d.corr_window: [{"value": 5}],
    }
    before = {w: w.value for w in forged}
    draws = dict(d.draws)
    for w, messages in forged.items():
        for msg in messages:
            w.set_state(msg)
        assert w.rejected == len(messages) and w.value == before[w]
    assert d.draws == draws and _state(d) == "ready"
    d.gross.set_state({"value": 0.5})  # a real change still works
    assert _state(d) == "ready" and d.draws["limits"] == draws["limits"] + 1
    assert "MaxGrossLeverage 0.5" in [t.name for t in d.figures["limits"].data]


def test_store_text_is_escaped_in_the_tables():
    frame = pd.DataFrame({"detail": ["<img src=x onerror=alert(1)>"]}, index=pd.Index(["<b>"], name="k"))
    out = rd.html_table(frame)
    assert "<img" not in out and "&lt;img src=x" in out and "&lt;b&gt;" in out


# -- in the browser ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    path = tmp_path_factory.mktemp("risk-browser") / "s.sqlite"
    wb.backtest("xs_momentum", FOUR, cash=1e6, store=wb.SQLiteStore(path))
    with serve(ROOT / "notebooks" / "dashboard_risk.ipynb", env={"WORKBENCH_STORE": str(path)}) as server:  # no pre-heat: Voila 0.5.13 can truncate a pre-rendered page
        yield server.url


def _numbers(page, title: str) -> dict[str, list]:
    """Each trace's y (a heatmap's z) as plotly.js decoded it, by trace type:name. ``plot_data`` reads
    ``el.data``, where a numpy array is still plotly.py's base64 ``{dtype, bdata}``; ``_fullData`` holds
    the numbers."""
    return page.evaluate(
        "(t) => { for (const el of document.querySelectorAll('.js-plotly-plot')) {"
        "  if (!String(el.layout.title.text || '').includes(t)) continue;"
        "  return Object.fromEntries(el._fullData.map(d => [d.type + ':' + (d.name || ''),"
        "    Array.from(d.z || d.y || [], v => (v && v.length !== undefined) ? Array.from(v) : v)])); }"
        "  return null; }", title)  # fmt: skip


def _var_line(page):
    found = _numbers(page, "VaR backtest")
    key = next(k for k in found if k.startswith("scatter:-VaR"))
    return {"name": key.removeprefix("scatter:"), "y": found[key]}


def _browser(fn):
    for mark in needs_chromium:  # the browser marker, and a skip when Debian's chromium is absent
        fn = mark(fn)
    return fn


@_browser
def test_page_each_control_changes_what_it_should_with_no_external_request(chromium, page_url):
    page = open_page(chromium, page_url)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=120_000)
    gen = wait_generation(page, 0)
    assert "no risk profile on this run" in page.locator(".wb-risk-log").inner_text()
    assert _var_line(page)["name"] == "-VaR 99%"
    screenshot(page, "dashboard_risk-first")

    page.locator(".wb-confidence button", has_text="95 %").click()
    gen = wait_generation(page, gen)
    assert _var_line(page)["name"] == "-VaR 95%"

    before = _var_line(page)["y"]
    page.locator(".wb-estimator select").select_option("normal")
    gen = wait_generation(page, gen)
    assert _var_line(page)["y"] != before and "normal" in " ".join(t for t in page.evaluate(
        "() => Array.from(document.querySelectorAll('.js-plotly-plot'), e => e.layout.title.text)"))

    box = page.locator(".wb-window input")
    box.fill("120")
    box.press("Enter")
    gen = wait_generation(page, gen)
    y = _var_line(page)["y"]
    assert all(v is None or v != v for v in y[:120]) and y[120] == y[120] and y[120] is not None

    names = [t["name"] for t in plot_data(page, "limit usage")]
    assert not any(n.startswith("MaxGrossLeverage breaches") for n in names)
    box = page.locator(".wb-gross input")
    box.fill("0.6")
    box.press("Enter")
    gen = wait_generation(page, gen)
    names = [t["name"] for t in plot_data(page, "limit usage")]
    assert "MaxGrossLeverage 0.6" in names and any(n.startswith("MaxGrossLeverage breaches") for n in names)
    screenshot(page, "dashboard_risk-limits")

    assert sorted(plot_data(page, "correlation of returns")[0]["x"]) == sorted(FOUR)  # the run's own assets
    page.locator(".wb-corr-symbols select").select_option(["SPX", "IXIC"])
    gen = wait_generation(page, gen)
    assert sorted(plot_data(page, "correlation of returns")[0]["x"]) == ["IXIC", "SPX"]
    (z,) = _numbers(page, "correlation of returns").values()
    assert len(z) == 2 and len(z[0]) == 2

    first_run = page.locator(".wb-run select").input_value()
    page.locator(".wb-sample").click()
    gen = wait_generation(page, gen)
    assert page.locator(".wb-run select").input_value() != first_run
    assert "Risk log" in page.locator(".wb-risk-log").inner_text()
    assert "no risk profile" not in page.locator(".wb-risk-log").inner_text()
    assert page.locator(".wb-holdings select option").count() == 2
    stress_before = _numbers(page, "stress on current holdings")
    page.locator(".wb-holdings select").select_option(index=0)  # from the last book held to the (flat) last bar
    gen = wait_generation(page, gen)
    assert _numbers(page, "stress on current holdings") != stress_before
    screenshot(page, "dashboard_risk-sample")

    page.locator(".wb-run select").select_option(first_run)
    gen = wait_generation(page, gen)
    assert "no risk profile on this run" in page.locator(".wb-risk-log").inner_text()
    assert page.external == [] and page.errors == []
    page.close()
