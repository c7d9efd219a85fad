"""The plotly tearsheet (workbench.tearsheets): each panel checked against an independent
computation on the real sample data, the quantstats defects of issue 13 (yearly bars under
the wrong years, months outside the data shown as 0.00, a run without trades crashing)
pinned down, and the HTML checked to be offline and self-contained."""

from __future__ import annotations

import re
import socket

import numpy as np
import pandas as pd
import plotly.offline
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.risk.var import historical_var
from workbench.strategy import metrics
from workbench.strategy.result import BacktestResult
from workbench.tearsheets import (
    FIGURE_KEYS,
    ROLLING_WINDOW,
    aligned_benchmark,
    tearsheet_figures,
    tearsheet_html,
    tearsheet_tables,
)

GOOG = wb.load_prices("GOOG")
SPX = wb.load_prices("SPX")["Close"]


@pytest.fixture(scope="module")
def goog_run() -> BacktestResult:
    return wb.backtest("sma_crossover", GOOG, store=None)


@pytest.fixture(scope="module")
def no_trades() -> BacktestResult:
    return wb.backtest("sma_crossover", GOOG.loc["2008-01-01":"2008-02-15"], store=None)


@pytest.fixture(scope="module")
def pair_run() -> tuple[BacktestResult, pd.DataFrame]:
    panel = wb.load_prices(["SPX", "IXIC"], progress=False)
    return wb.backtest("pairs", panel, store=None), panel


def _spx_on(index: pd.DatetimeIndex) -> pd.Series:
    """SPX closes carried forward onto ``index`` (the independent benchmark)."""
    return SPX.reindex(SPX.index.union(index)).ffill().reindex(index)


def _by_period_from_levels(level: pd.Series, keys: list) -> pd.Series:
    """Period return = last level of the period / last level of the previous one - 1,
    the first period from the first level (an equity-level computation, not returns)."""
    last = level.groupby(keys).last()
    prev = last.shift(1)
    prev.iloc[0] = level.iloc[0]
    return last / prev - 1.0


# -- yearly: the quantstats defect --------------------------------------------------------
def test_yearly_bars_stand_at_their_own_calendar_years_on_goog(goog_run) -> None:
    fig = tearsheet_figures(goog_run, "SPX")["yearly"]
    eq = goog_run.equity
    expected = _by_period_from_levels(eq, [eq.index.year])
    strategy, bench = fig.data
    assert list(strategy.x) == [int(y) for y in expected.index] == list(range(2004, 2014))
    np.testing.assert_allclose(strategy.y, expected.to_numpy(), rtol=1e-12)
    spx = _spx_on(eq.index)
    np.testing.assert_allclose(bench.y, _by_period_from_levels(spx, [spx.index.year]).to_numpy(), rtol=1e-10)
    assert list(bench.x) == list(strategy.x)
    assert fig.layout.xaxis.type == "category"  # one label per bar, never fewer
    assert strategy.text[list(strategy.x).index(2008)] == f"{expected.loc[2008] * 100:.1f} %"
    table = tearsheet_tables(goog_run, "SPX")["yearly"]
    np.testing.assert_allclose(table["strategy"].to_numpy(), expected.to_numpy(), rtol=1e-12)


# -- monthly: blank outside the data, compounded inside -----------------------------------
def test_monthly_heatmap_is_blank_outside_the_data_and_compounded_inside(goog_run) -> None:
    heat = tearsheet_figures(goog_run)["monthly"].data[0]
    z = np.asarray(heat.z, dtype="float64")
    years = [int(y) for y in heat.y]
    assert years == list(range(2004, 2014)) and z.shape == (10, 12)
    eq = goog_run.equity
    expected = _by_period_from_levels(eq, [eq.index.year, eq.index.month])
    has_bars = {(y, mth) for y, mth in zip(eq.index.year, eq.index.month, strict=True)}
    for i, year in enumerate(years):
        for j in range(12):
            if (year, j + 1) in has_bars:
                assert z[i, j] == pytest.approx(expected.loc[(year, j + 1)], rel=1e-10, abs=1e-15)
                assert heat.text[i][j].endswith(" %")
            else:
                assert np.isnan(z[i, j]) and heat.text[i][j] == "", f"{year}-{j + 1:02d} is outside the data"
    assert np.isnan(z[0, :7]).all() and np.isnan(z[-1, 3:]).all()  # GOOG: 2004-08-19 .. 2013-03-01
    assert z[1, 2] == 0.0  # March 2005: in the data, out of the market: a real 0, not a blank
    table = tearsheet_tables(goog_run)["monthly"]
    np.testing.assert_array_equal(table.to_numpy(), z)


# -- drawdowns ----------------------------------------------------------------------------
def _episodes_by_hand(equity: pd.Series) -> list[dict]:
    values, stamps = equity.to_numpy().tolist(), list(equity.index)
    out, peak_i, trough_i = [], 0, None
    for i in range(1, len(values)):
        if values[i] >= values[peak_i]:
            if trough_i is not None:
                out.append({"start": stamps[peak_i], "trough": stamps[trough_i], "end": stamps[i],
                            "depth": values[trough_i] / values[peak_i] - 1, "bars": i - peak_i})  # fmt: skip
                trough_i = None
            peak_i = i
        elif trough_i is None or values[i] < values[trough_i]:
            trough_i = i
    if trough_i is not None:
        out.append({"start": stamps[peak_i], "trough": stamps[trough_i], "end": "open",
                    "depth": values[trough_i] / values[peak_i] - 1, "bars": len(values) - 1 - peak_i})  # fmt: skip
    return sorted(out, key=lambda e: e["depth"])[:5]


def test_drawdown_table_matches_a_hand_computation_and_is_shaded(goog_run, pair_run) -> None:
    for result in (goog_run, pair_run[0]):
        table = tearsheet_tables(result)["drawdowns"]
        expected = _episodes_by_hand(result.equity)
        assert len(table) == len(expected) == 5
        for (_, row), exp in zip(table.iterrows(), expected, strict=True):
            assert (row["start"], row["trough"], row["end"], row["bars"]) == (exp["start"], exp["trough"], exp["end"], exp["bars"])
            assert row["depth"] == pytest.approx(exp["depth"], rel=1e-12)
            end = result.equity.index[-1] if exp["end"] == "open" else exp["end"]
            assert row["length"] == end - exp["start"]
        assert table["depth"].iloc[0] == pytest.approx(result.stats["max_drawdown"], rel=1e-12)
    shaded = tearsheet_figures(goog_run)["drawdown"].layout.shapes
    assert len(shaded) == 5 and pd.Timestamp(shaded[0].x0) == table_start(goog_run)


def table_start(result: BacktestResult) -> pd.Timestamp:
    return pd.Timestamp(_episodes_by_hand(result.equity)[0]["start"])


# -- benchmark alignment ------------------------------------------------------------------
def test_benchmark_in_every_form_aligns_on_the_results_bars(goog_run) -> None:
    idx = goog_run.equity.index
    expected = _spx_on(idx).pct_change()
    as_symbol = aligned_benchmark("SPX", idx)
    np.testing.assert_allclose(as_symbol.to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert np.isnan(as_symbol.iloc[0])  # the first bar has no return
    as_returns = aligned_benchmark(SPX.pct_change().dropna().rename("spx"), idx)
    np.testing.assert_allclose(as_returns.to_numpy()[1:], expected.to_numpy()[1:], rtol=1e-10)
    weekly = idx[::5]
    w = aligned_benchmark(SPX.pct_change().dropna(), weekly)  # returns compound between the bars
    assert w.iloc[3] == pytest.approx(SPX.loc[weekly[3]] / SPX.loc[weekly[2]] - 1, rel=1e-10)
    naive = SPX.tz_localize(None)  # a naive index is read as UTC
    np.testing.assert_allclose(aligned_benchmark(naive, idx).to_numpy(), expected.to_numpy(), rtol=1e-12)
    late = aligned_benchmark(SPX.loc["2010-01-04":], idx)  # not started yet: NaN, not 0
    assert late.loc[:"2010-01-04"].isna().all() and late.loc["2010-01-05":].notna().all()
    own = aligned_benchmark(goog_run, idx)
    np.testing.assert_allclose(own.to_numpy()[1:], goog_run.returns.to_numpy(), rtol=1e-12)
    with pytest.raises(wb.ParameterError, match="benchmark must be a returns or price Series"):
        aligned_benchmark(3.5, idx)
    with pytest.raises(wb.ParameterError, match=r"must be > -1, got min=-1.5"):
        aligned_benchmark(pd.Series([0.01, -1.5], index=idx[:2]), idx)
    with pytest.raises(wb.ParameterError, match="does not cover"):
        aligned_benchmark(SPX.loc[:"2003-12-31"], idx)


def test_equity_figure_draws_growth_of_one_with_a_log_option(goog_run) -> None:
    figs = tearsheet_figures(goog_run, SPX, log_scale=True)
    strat, bench = figs["equity"].data
    assert figs["equity"].layout.yaxis.type == "log"
    assert strat.y[0] == 1.0 and strat.y[-1] == pytest.approx(1 + goog_run.stats["total_return"], rel=1e-12)
    spx = _spx_on(goog_run.equity.index)
    np.testing.assert_allclose(bench.y, (spx / spx.iloc[0]).to_numpy(), rtol=1e-10)
    assert tearsheet_figures(goog_run)["equity"].layout.yaxis.type == "linear"
    with pytest.raises(wb.ParameterError, match="log_scale must be True or False, got log_scale='yes'"):
        tearsheet_figures(goog_run, log_scale="yes")
    with pytest.raises(wb.ParameterError, match="result must be a BacktestResult, got DataFrame"):
        tearsheet_figures(GOOG)


# -- rolling, distribution, trades --------------------------------------------------------
def test_rolling_and_distribution_use_the_metrics_and_var_conventions(goog_run) -> None:
    figs = tearsheet_figures(goog_run)
    rets = goog_run.returns.dropna()
    sharpe, vol = figs["rolling"].data
    assert len(sharpe.y) == len(rets) - ROLLING_WINDOW + 1
    for end in (ROLLING_WINDOW, 700, len(rets)):
        window = rets.iloc[end - ROLLING_WINDOW : end]
        k = end - ROLLING_WINDOW
        assert pd.Timestamp(sharpe.x[k]) == window.index[-1]
        assert sharpe.y[k] == pytest.approx(metrics.sharpe_ratio(window, 252.0), rel=1e-9)
        assert vol.y[k] == pytest.approx(metrics.annual_volatility(window, 252.0), rel=1e-9)
    lines = sorted(s.x0 for s in figs["distribution"].layout.shapes)
    assert lines == pytest.approx(sorted(-historical_var(rets, c).value for c in (0.95, 0.99)), rel=1e-12)
    assert len(figs["distribution"].data[0].x) == len(rets)


def test_trades_figure_shows_each_trade_and_the_running_total(pair_run) -> None:
    result, _ = pair_run
    fig = tearsheet_figures(result)["trades"]
    bars, cumulative = fig.data
    np.testing.assert_allclose(bars.y, result.trades["pnl"].to_numpy())
    np.testing.assert_allclose(cumulative.y, np.cumsum(result.trades["pnl"].to_numpy()))
    assert set(tearsheet_figures(result, "SPX")) == set(FIGURE_KEYS)


# -- a run without trades -----------------------------------------------------------------
def test_a_run_without_trades_gives_every_figure_and_the_html(no_trades, tmp_path) -> None:
    assert no_trades.stats["n_trades"] == 0
    figs = tearsheet_figures(no_trades, "SPX")
    assert tuple(figs) == FIGURE_KEYS
    trades = figs["trades"]
    assert len(trades.data) == 0 and "no trades" in trades.layout.annotations[0].text
    assert "no drawdown" in figs["drawdown"].layout.annotations[0].text
    assert f"fewer than {ROLLING_WINDOW}" in figs["rolling"].layout.annotations[0].text
    tables = tearsheet_tables(no_trades, "SPX")
    assert tables["open_position"].empty and tables["drawdowns"].empty
    assert tables["stats"].loc["win_rate", "value"] == "n/a"
    path = tearsheet_html(no_trades, tmp_path / "none.html", benchmark="SPX")
    assert "no trades" in path.read_text()


# -- the HTML -----------------------------------------------------------------------------
def test_html_is_self_contained_offline_and_titled(goog_run, tmp_path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise OSError("network access attempted while writing a tearsheet")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    path = tearsheet_html(goog_run, tmp_path / "out" / "goog.html", benchmark="SPX", title="GOOG <SMA> review")
    text = path.read_text(encoding="utf-8")
    bundle = plotly.offline.get_plotlyjs()
    banner = bundle.splitlines()[1]  # "* plotly.js v4.1.1"
    assert "plotly.js v" in banner and text.count(banner) == 1 and text.count(bundle) == 1
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I), "no script is fetched from anywhere"
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']?https?:", text, re.I)
    outside = text.replace(bundle, "")
    assert "plotly cloud" not in outside.lower() and "edit chart" not in outside.lower()
    configs = re.findall(r'\{"displaylogo": false, "showLink": false[^}]*\}', outside)
    assert len(configs) == len(FIGURE_KEYS) == outside.count("Plotly.newPlot(")
    assert "<title>GOOG &lt;SMA&gt; review</title>" in text
    assert "584 days" in text and "open" in text
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # atomic: no temporary left
    with pytest.raises(wb.ParameterError, match="path must be a str or Path, got int"):
        tearsheet_html(goog_run, 3)


# -- tables for people --------------------------------------------------------------------
def test_stats_are_formatted_for_people_with_their_conventions(goog_run) -> None:
    stats = tearsheet_tables(goog_run, "SPX")["stats"]
    s = goog_run.stats
    assert s["max_drawdown_duration"] == pd.Timedelta(days=584)
    assert stats.loc["max_drawdown_duration", "value"] == "584 days"
    assert stats.loc["total_return", "value"] == f"{s['total_return'] * 100:.1f} %"
    assert stats.loc["max_drawdown", "value"] == f"{s['max_drawdown'] * 100:.1f} %"
    assert stats.loc["sharpe", "value"] == f"{s['sharpe']:.2f}"
    assert stats.loc["n_trades", "value"] == "33" and stats.loc["start", "value"] == "2004-08-19"
    for key, convention in metrics.STAT_CONVENTIONS.items():
        assert stats.loc[key, "convention"] == convention
    spx = _spx_on(goog_run.equity.index)
    assert stats.loc["total_return", "benchmark"] == f"{(spx.iloc[-1] / spx.iloc[0] - 1) * 100:.1f} %"
    assert stats.loc["n_trades", "benchmark"] == ""


def test_open_position_is_marked_at_the_last_close(goog_run, pair_run) -> None:
    last_buy = goog_run.fills.iloc[-1]
    assert last_buy["side"] == "BUY" and goog_run.positions.iloc[-1] == last_buy["quantity"]
    close = float(GOOG["Close"].iloc[-1])
    row = tearsheet_tables(goog_run, prices=GOOG)["open_position"].iloc[0]
    assert (row["symbol"], row["quantity"], row["entry"], row["mark"]) == ("GOOG.SAMPLE", 98.0, last_buy["price"], close)
    assert row["unrealised_pnl"] == pytest.approx(98.0 * (close - last_buy["price"]), rel=1e-12)
    implied = tearsheet_tables(goog_run)["open_position"].iloc[0]  # no prices: equity - cash
    assert implied["mark"] == pytest.approx(close, rel=1e-9) and implied["mark_source"].startswith("implied")
    result, panel = pair_run
    table = tearsheet_tables(result, prices=panel)["open_position"]
    held = result.positions.iloc[-1]
    assert list(table["symbol"]) == [s for s, q in held.items() if q != 0]
    for _, r in table.iterrows():
        assert r["mark"] == float(panel[r["symbol"].split(".")[0]]["Close"].iloc[-1])


# -- property: the yearly and monthly tables compound to the total return -------------------
def _result_from_returns(returns: pd.Series, spec) -> BacktestResult:
    equity = pd.concat([pd.Series([10_000.0], index=[returns.index[0] - pd.Timedelta(days=1)]),
                        10_000.0 * (1 + returns).cumprod()]).rename("equity")  # fmt: skip
    empty = pd.DataFrame()
    trades = pd.DataFrame(columns=["symbol", "pnl", "exit_time"])
    stats = metrics.summary(equity, pd.Series(dtype="float64"), 10_000.0)
    return BacktestResult(equity=equity, returns=metrics.returns_from_equity(equity), orders=empty,
                          fills=pd.DataFrame(columns=["fill_id", "order_id", "symbol", "side", "quantity", "price", "fee", "ts"]),
                          trades=trades, positions=pd.Series(0.0, index=equity.index, name="X.SIM"), stats=stats,
                          spec=spec)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    rets=st.lists(st.floats(-0.2, 0.2, allow_nan=False), min_size=2, max_size=700),
    start=st.dates(min_value=pd.Timestamp("1995-01-01").date(), max_value=pd.Timestamp("2030-01-01").date()),
)
def test_yearly_and_monthly_tables_compound_to_the_total_return(no_trades, rets, start) -> None:
    idx = pd.bdate_range(start, periods=len(rets), tz="UTC")
    result = _result_from_returns(pd.Series(rets, index=idx), no_trades.spec)
    tables = tearsheet_tables(result)
    total = result.stats["total_return"]
    assert np.prod(1 + tables["yearly"]["strategy"].dropna()) - 1 == pytest.approx(total, rel=1e-9, abs=1e-12)
    months = tables["monthly"].to_numpy().ravel()
    assert np.prod(1 + months[~np.isnan(months)]) - 1 == pytest.approx(total, rel=1e-9, abs=1e-12)
    years = sorted(set(result.equity.index[1:].year))
    assert list(tearsheet_figures(result)["yearly"].data[0].x) == list(range(years[0], years[-1] + 1))


def test_open_position_entry_is_the_cost_basis_of_the_open_lots(no_trades) -> None:
    """Buy 10 @ 100, buy 10 @ 110, sell 5 @ 120: FIFO leaves 5 @ 100 and 10 @ 110."""
    idx = no_trades.equity.index
    fills = pd.DataFrame({"fill_id": ["F1", "F2", "F3"], "order_id": ["O1", "O2", "O3"],
                          "symbol": ["GOOG.SAMPLE"] * 3, "side": ["BUY", "BUY", "SELL"],
                          "quantity": [10.0, 10.0, 5.0], "price": [100.0, 110.0, 120.0], "fee": [1.0, 1.0, 0.5],
                          "ts": list(idx[1:4])})  # fmt: skip
    result = _result_from_returns(no_trades.returns, no_trades.spec)
    result.fills = fills
    result.positions = pd.Series(15.0, index=result.equity.index, name="GOOG.SAMPLE")
    prices = pd.DataFrame({"Close": 130.0}, index=idx)
    row = tearsheet_tables(result, prices=prices)["open_position"].iloc[0]
    assert row["entry"] == pytest.approx((5 * 100 + 10 * 110) / 15, rel=1e-12)
    assert row["unrealised_pnl"] == pytest.approx(5 * 30 + 10 * 20, rel=1e-12)  # gross of fees
    result.positions = pd.Series(14.0, index=result.equity.index, name="GOOG.SAMPLE")  # fills disagree
    assert np.isnan(tearsheet_tables(result, prices=prices)["open_position"].iloc[0]["entry"])
