"""One fill-price rule (slip, never past the limit, clamp into [low, high]) for every engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.trading.costs import Bar, FixedBps, NoSlippage, fill_price, fill_prices
from workbench.trading.enums import Side

BAR = Bar(ts=pd.Timestamp("2024-01-02", tz="UTC"), open=100.0, high=100.02, low=99.0, close=99.5, volume=1e6)


def test_a_buy_slipped_above_the_high_fills_at_the_high_and_a_sell_below_the_low_at_the_low():
    assert fill_price(FixedBps(bps=5), Side.BUY, 100.0, 1, BAR) == 100.02
    assert fill_price(FixedBps(bps=5), Side.SELL, 99.0, 1, BAR) == 99.0
    assert fill_price(FixedBps(bps=1), Side.BUY, 100.0, 1, BAR) == 100.0 * (1 + 1e-4)


def test_the_limit_price_caps_the_slip():
    assert fill_price(FixedBps(bps=50), Side.BUY, 99.5, 1, BAR, limit=99.6) == 99.6
    assert fill_price(FixedBps(bps=50), Side.SELL, 99.5, 1, BAR, limit=99.4) == 99.4
    assert fill_price(NoSlippage(), Side.BUY, 99.5, 1, BAR, limit=99.6) == 99.5


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(1, 1e4), st.floats(0, 0.05), st.floats(0, 0.05), st.booleans()), min_size=1,
                max_size=30), st.floats(0, 200))  # fmt: skip
def test_the_array_rule_is_the_scalar_rule_bit_for_bit(rows, bps):
    base = np.array([r[0] for r in rows])
    high, low = base * (1 + np.array([r[1] for r in rows])), base * (1 - np.array([r[2] for r in rows]))
    buy = np.array([r[3] for r in rows])
    arr = fill_prices(base, bps, buy, low, high)
    for i in range(len(rows)):
        bar = Bar(ts=BAR.ts, open=base[i], high=high[i], low=low[i], close=base[i], volume=1.0)
        side = Side.BUY if buy[i] else Side.SELL
        assert arr[i] == fill_price(FixedBps(bps=bps), side, base[i], 1, bar)


def test_signal_strategies_agree_with_slippage_that_clamps(goog):
    cmp = wb.compare_engines("sma_crossover", goog, {"fast": 5, "slow": 20}, slippage=FixedBps(bps=50))
    assert cmp.ok, cmp.report()


@settings(max_examples=5, deadline=None)
@given(st.floats(0.01, 50))
def test_weight_strategies_with_slippage_are_refused_by_name_on_the_vectorized_engine(pair, bps):
    """Before: pairs at 1 bp gave 483 fills on the event engine and 467 on vectorbt, silently."""
    with pytest.raises(wb.ParameterError, match="cannot reproduce slippage .* for weight strategies"):
        wb.compare_engines("pairs", pair, slippage=FixedBps(bps=bps))
    with pytest.raises(wb.ParameterError, match="use engine='event'"):
        wb.backtest("pairs", pair, engine="vectorized", slippage=FixedBps(bps=bps))
    assert wb.backtest("pairs", pair, slippage=FixedBps(bps=bps)).stats["n_trades"] > 0  # the event engine runs it
