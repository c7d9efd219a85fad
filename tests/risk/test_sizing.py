"""Risk-based sizing: fixed fractional risks its fraction to the stop and never more than
cash pays for; Kelly equals its closed forms, scaled and capped, and runs on both engines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import workbench as wb
from workbench.risk.sizing import (
    FixedFractional,
    kelly_fraction,
    kelly_from_returns,
    kelly_from_trades,
)

GOOG = wb.load_prices("GOOG")
INST = wb.instrument_for("GOOG")


def _cost(price: float):  # type: ignore[no-untyped-def]
    return lambda q: q * price


def test_fixed_fractional_risks_its_fraction_to_the_stop() -> None:
    sizer = FixedFractional(risk=0.01, stop=0.05)
    q = sizer.size(100.0, 100_000.0, 100_000.0, INST, _cost(100.0))
    assert q == 200.0, "1% of 100,000 = 1,000 at risk; a 5 on 100 stop risks 5 a share"


@given(risk=st.floats(0.001, 1.0), stop=st.floats(0.001, 1.0), price=st.floats(1.0, 5_000.0),
       equity=st.floats(100.0, 1e7))  # fmt: skip
def test_fixed_fractional_never_exceeds_its_caps(risk: float, stop: float, price: float, equity: float) -> None:
    q = FixedFractional(risk=risk, stop=stop).size(price, equity, equity, INST, _cost(price))
    assert q * stop * price <= risk * equity * (1 + 1e-9), "never risks more than its fraction"
    assert q * price <= equity * (1 + 1e-9), "never buys more than cash pays for"
    assert q == int(q)


def test_fixed_fractional_runs_with_a_matching_stop_on_both_engines() -> None:
    class Entry(wb.BarStrategy):
        def on_bar(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.i % 200 == 50:
                ctx.target(1, stop_loss=0.05)
            elif ctx.i % 200 == 150:
                ctx.target(0)

    r = wb.backtest(Entry(), GOOG, size=FixedFractional(risk=0.02, stop=0.05))
    first = r.fills.iloc[0]
    assert first["quantity"] == int(0.02 * 10_000 / (0.05 * GOOG["Open"].loc[first["ts"]]))
    for costs in ({}, {"commission": 0.001, "slippage": wb.FixedBps(bps=2)}):  # fees inside the budget on both
        c = wb.compare_engines("sma_crossover", GOOG, size=FixedFractional(risk=0.02, stop=0.05), **costs)
        assert c.ok and len(c.vectorized.fills) > 10, c.report()


def test_kelly_closed_forms() -> None:
    assert kelly_fraction(0.6, 1.0) == pytest.approx(0.2)
    assert kelly_fraction(0.5, 2.0) == pytest.approx(0.25)
    trades = pd.DataFrame({"pnl": [10.0, 10.0, 10.0, -5.0, -5.0]})  # W 0.6, R 2: f* = 0.6 - 0.4/2 = 0.4
    assert kelly_from_trades(trades, fraction=1.0).fraction == pytest.approx(0.4)
    assert kelly_from_trades(trades, fraction=0.5).fraction == pytest.approx(0.2)
    assert kelly_from_trades(trades, fraction=1.0, cap=0.25).fraction == 0.25
    rng = np.random.default_rng(3)
    r = rng.normal(0.001, 0.02, 5_000)
    assert kelly_from_returns(r, fraction=1.0, cap=1.0).fraction == pytest.approx(min(r.mean() / r.var(ddof=1), 1.0))
    with pytest.raises(wb.ParameterError, match="no edge"):
        kelly_from_trades(pd.DataFrame({"pnl": [1.0, -5.0, -5.0]}))


def test_kelly_sizing_from_a_backtest_runs_on_both_engines() -> None:
    trades = wb.backtest("sma_crossover", GOOG).trades
    sizer = kelly_from_trades(trades, fraction=0.5)
    cmp = wb.compare_engines("sma_crossover", GOOG, size=sizer)
    assert cmp.ok, cmp.report()
    assert 0 < sizer.fraction <= 1.0
