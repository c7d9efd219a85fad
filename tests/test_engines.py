"""Two engines, one spec: every built-in strategy both engines express agrees fill for fill,
trade for trade, and in equity (1e-9 relative without costs, 1e-6 with), on the real
sample data."""

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.trading.costs import FixedBps, FixedPerOrder, PerShare, VolumeShare

NO_COSTS: dict = {}
COSTS = {"commission": 0.001, "slippage": FixedBps(bps=5)}

SIGNAL_CASES = [
    ("sma_crossover", {}),
    ("sma_crossover", {"fast": 20, "slow": 50, "allow_short": True}),
    ("ema_crossover", {"allow_short": True}),
    ("ts_momentum", {"lookback": 63, "allow_short": True}),
    ("mean_reversion", {"allow_short": True}),
    ("ml_classifier", {"retrain": 126}),
]


@pytest.mark.parametrize("costs", [NO_COSTS, COSTS], ids=["no-costs", "costs"])
@pytest.mark.parametrize(("name", "params"), SIGNAL_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SIGNAL_CASES)])
def test_signal_strategies_agree_on_both_engines(goog, name, params, costs):
    cmp = wb.compare_engines(name, goog, params, **costs)
    cmp.raise_if_different()
    assert cmp.tolerance == (1e-6 if costs else 1e-9)
    assert len(cmp.event.trades) >= 5, "a cross-check over no trades proves nothing"
    # trade lists identical on the keys the issue names
    cols = ["entry_time", "exit_time", "side", "quantity", "entry_price", "exit_price"]
    a, b = cmp.event.trades[cols], cmp.vectorized.trades[cols]
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), rtol=cmp.tolerance)


@pytest.mark.parametrize("costs", [NO_COSTS, {"commission": 0.0005}], ids=["no-costs", "commission"])
@pytest.mark.parametrize("case", ["xs_momentum", "pairs", "arbitrage"])
def test_portfolio_strategies_agree_on_both_engines(case, costs, four, pair, venues):
    panel = {"xs_momentum": four, "pairs": pair, "arbitrage": venues}[case]
    cmp = wb.compare_engines(case, panel, **costs)
    cmp.raise_if_different()
    assert len(cmp.event.fills) >= 20
    assert isinstance(cmp.event.positions, pd.DataFrame)
    np.testing.assert_array_equal(cmp.event.positions.to_numpy(), cmp.vectorized.positions.to_numpy())


@pytest.mark.parametrize("size", ["all", 10, 0.5])
def test_sizing_policies_agree(goog, size):
    wb.compare_engines("sma_crossover", goog, commission=0.002, size=size).raise_if_different()


def test_fixed_fee_and_signal_close_agree(goog):
    wb.compare_engines("sma_crossover", goog, commission=FixedPerOrder(amount=1.0),
                       fill_timing="signal_close").raise_if_different()  # fmt: skip


def test_compare_engines_reports_a_real_difference(goog):
    # a per-share fee exists only on the event engine: the vectorized engine must refuse it...
    with pytest.raises(wb.ParameterError, match="cannot reproduce commission"):
        wb.backtest("sma_crossover", goog, engine="vectorized", commission=PerShare(rate=0.01))
    with pytest.raises(wb.ParameterError, match="cannot reproduce slippage"):
        wb.backtest("sma_crossover", goog, engine="vectorized", slippage=VolumeShare(volume_limit=0.1))
    # ... and a genuine disagreement is reported, not hidden
    cmp = wb.compare_engines("sma_crossover", goog, commission=0.001)
    cmp.vectorized.fills.loc[3, "price"] *= 1.01
    from workbench.research.compare import _diff_table

    assert any("fills[3] price" in d for d in _diff_table("fills", cmp.event.fills, cmp.vectorized.fills, 1e-9))


def test_results_have_the_same_shape_and_spec(goog):
    cmp = wb.compare_engines("sma_crossover", goog, commission=0.001)
    ev, vz = cmp.event, cmp.vectorized
    for name in ("orders", "fills", "trades"):
        assert list(getattr(ev, name).columns) == list(getattr(vz, name).columns), name
    assert list(ev.stats.index) == list(vz.stats.index)
    for key, value in ev.stats.items():
        if isinstance(value, float):
            assert vz.stats[key] == pytest.approx(value, rel=1e-9, nan_ok=True), key
        else:
            assert vz.stats[key] == value, key
    assert ev.spec.engine == "event" and vz.spec.engine == "vectorized"
    assert ev.id == vz.id == ev.spec.id, "the spec id names the experiment, not the engine"
    assert ev.run_id != vz.run_id, "a run is the spec on one engine"
    assert vz.versions["vectorbt"].startswith("1.2")
    assert "ta-lib" in ev.versions
    assert len(ev.spec.data.sha256) == 64
    assert ev.spec.fill_timing is wb.FillTiming.NEXT_OPEN


def test_defaults_fill_at_next_open_in_whole_units(goog):
    r = wb.backtest("sma_crossover", goog, engine="vectorized", commission=0.001)
    fills = r.fills.set_index("ts")
    assert (fills["quantity"] == fills["quantity"].round()).all()
    np.testing.assert_array_equal(fills["price"].to_numpy(), goog.loc[fills.index, "Open"].to_numpy())
    placed = pd.DatetimeIndex(r.orders["placed"])
    assert (placed < pd.DatetimeIndex(r.orders["updated"])).all()


def test_fractional_instrument_trades_fractions():
    btc = wb.load_prices("BTCUSD")
    cmp = wb.compare_engines("sma_crossover", btc, {"fast": 3, "slow": 12}, commission=0.001)
    cmp.raise_if_different()
    assert (cmp.event.fills["quantity"] % 1 != 0).any()


def test_unknown_engine_and_wrong_input_shapes(goog, pair):
    with pytest.raises(wb.ParameterError, match="engine must be one of"):
        wb.backtest("sma_crossover", goog, engine="zipline")
    with pytest.raises(wb.ParameterError, match="needs a \\(symbol, field\\) panel"):
        wb.backtest("pairs", goog)
    with pytest.raises(wb.ParameterError, match="trades one instrument"):
        wb.backtest("sma_crossover", pair)
