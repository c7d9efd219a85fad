"""The RiskReport of a backtest: its tables follow wb.risk's functions exactly, and its
figures show what the tables say (the exceptions, the holdings, the stress P&L)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import workbench as wb
from workbench.risk_report import RiskReport

PAIR = wb.load_prices(["SPX", "IXIC"], progress=False)


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
    assert set(figs) == {"var", "exposure", "stress", "underwater", "correlation"}
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
