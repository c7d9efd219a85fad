"""Tearsheets: quantstats HTML written offline against a local benchmark, and the plotly
figures (equity with drawdown, fills on price, monthly returns heatmap)."""

import socket

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.adapters.tearsheet import benchmark_returns, quantstats_html
from workbench.plots import equity_figure, monthly_heatmap_figure, monthly_returns, trades_figure


@pytest.fixture(scope="module")
def result():
    return wb.backtest("sma_crossover", "SPX", {"fast": 20, "slow": 100}, commission=0.001)


def test_quantstats_html_is_written_offline_with_a_local_benchmark(result, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted while writing a tearsheet")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    path = quantstats_html(result, tmp_path / "out" / "spx.html", benchmark="SPX")
    html = path.read_text()
    assert path.stat().st_size > 100_000
    assert "SPX" in html and "Benchmark" in html  # the benchmark column is there
    assert 'href="https://qtpylib.io' not in html  # the favicon fetch on open is removed
    assert not list(path.parent.glob(".*"))  # atomic write left no temporary file


def test_benchmark_returns_align_to_the_strategy_bars(result):
    spx = wb.load_prices("SPX")["Close"]
    r = benchmark_returns("SPX", result.equity.index)
    np.testing.assert_allclose(r.dropna().to_numpy(), spx.pct_change().dropna().to_numpy())
    weekly = result.equity.index[::5]
    rw = benchmark_returns(spx, weekly)
    assert rw.iloc[1] == pytest.approx(spx.loc[weekly[1]] / spx.loc[weekly[0]] - 1)
    assert benchmark_returns(result, weekly).iloc[1] == pytest.approx(
        result.equity.loc[weekly[1]] / result.equity.loc[weekly[0]] - 1)
    with pytest.raises(wb.ParameterError, match="benchmark must be a price Series"):
        benchmark_returns(3.5, weekly)


def test_monthly_returns_compound_to_the_total_return(result):
    table = monthly_returns(result)
    months = table.drop(columns="year").stack()
    assert (1 + months).prod() - 1 == pytest.approx(result.stats["total_return"], rel=1e-10)
    assert (1 + table["year"]).prod() - 1 == pytest.approx(result.stats["total_return"], rel=1e-10)
    jan_2008 = result.equity["2008-01"]
    dec_2007 = result.equity["2007-12"].iloc[-1]
    assert table.loc[2008, 1] == pytest.approx(jan_2008.iloc[-1] / dec_2007 - 1)


def test_figures(result):
    fig = monthly_heatmap_figure(result)
    assert list(fig.data[0].x)[-1] == "Year" and len(fig.data[0].x) == 13
    assert len(fig.data[0].y) == len(monthly_returns(result))
    eq = equity_figure(result)
    assert len(eq.data) == 2 and eq.data[1].y.max() <= 0  # drawdown is never positive
    tf = trades_figure(wb.load_prices("SPX"), result)
    assert len(tf.data[1].x) == (result.fills["side"] == "BUY").sum()
    panel = wb.load_prices(["SPX", "IXIC"], progress=False)
    pr = wb.backtest("pairs", panel)
    tp = trades_figure(panel, pr, symbol="IXIC")
    n = len(tp.data[1].x) + len(tp.data[2].x)
    assert n == (pr.fills["symbol"].astype(str).str.startswith("IXIC")).sum() and "IXIC" in tp.layout.title.text
    assert isinstance(pd.Timestamp(tp.data[1].x[0]), pd.Timestamp)


def test_the_callers_matplotlib_backend_is_restored(result, tmp_path):
    """A notebook's inline backend must survive writing a tearsheet (issue 10: no hidden global state)."""
    import matplotlib
    import matplotlib.pyplot as plt

    plt.switch_backend("svg")
    try:
        quantstats_html(result, tmp_path / "t.html")
        assert matplotlib.get_backend().lower() == "svg"
    finally:
        plt.switch_backend("Agg")
