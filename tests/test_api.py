import pandas as pd
import pytest

import workbench as wb
from workbench.errors import ParameterError


def test_bad_strategy_parameters_name_the_value():
    with pytest.raises(ParameterError, match="fast must be < slow, got fast=50, slow=20"):
        wb.backtest("sma_crossover", "GOOG", {"fast": 50, "slow": 20})
    with pytest.raises(ParameterError, match="unknown strategy 'nope'"):
        wb.backtest("nope", "GOOG")
    with pytest.raises(ParameterError, match="cash must be > 0"):
        wb.backtest("sma_crossover", "GOOG", cash=0)


def test_same_inputs_give_byte_identical_backtests():
    a = wb.backtest("sma_crossover", "SPX", {"fast": 20, "slow": 50}, commission=0.001)
    b = wb.backtest("sma_crossover", "SPX", {"fast": 20, "slow": 50}, commission=0.001)
    for name, frame in a.to_frames().items():
        assert frame.to_csv().encode() == b.to_frames()[name].to_csv().encode(), name
    assert a.id == b.id


def test_no_fill_on_or_before_its_signal_bar_on_real_data():
    r = wb.backtest("sma_crossover", "IXIC", {"fast": 10, "slow": 30, "allow_short": True}, commission=0.001)
    placed = r.orders.set_index("order_id")["placed"]
    prices = wb.load_prices("IXIC")
    for f in r.fills.itertuples():
        assert f.ts > placed[f.order_id]
        assert prices.loc[f.ts, "Low"] <= f.price <= prices.loc[f.ts, "High"]
        assert f.price == prices.loc[f.ts, "Open"]


def test_truncating_the_data_leaves_earlier_results_unchanged():
    prices = wb.load_prices("GOOG")
    full = wb.backtest("sma_crossover", prices, {"fast": 10, "slow": 30})
    cut = prices.index[1000]
    part = wb.backtest("sma_crossover", prices.loc[:cut], {"fast": 10, "slow": 30})
    pd.testing.assert_series_equal(part.equity, full.equity.loc[:cut])


def test_short_selling_and_signal_close_option():
    r = wb.backtest("sma_crossover", "GOOG", {"fast": 10, "slow": 30, "allow_short": True},
                    fill_timing="signal_close", commission=0.0)
    assert set(r.trades["side"]) == {"LONG", "SHORT"}
    prices = wb.load_prices("GOOG")
    placed = r.orders.set_index("order_id")["placed"]
    for f in r.fills.itertuples():
        assert f.ts == placed[f.order_id] and f.price == prices.loc[f.ts, "Close"]


def test_sizing_options_respect_lots():
    fixed = wb.backtest("sma_crossover", "GOOG", size=5)
    assert set(fixed.fills["quantity"]) == {5.0}
    half = wb.backtest("sma_crossover", "GOOG", size=0.5)
    first = half.fills.iloc[0]
    assert first["quantity"] == int(5_000 // first["price"])
    btc = wb.backtest("sma_crossover", "BTCUSD", {"fast": 2, "slow": 6})
    assert (btc.fills["quantity"] % 1 != 0).any()  # fractional BTC, multiples of 1e-8


def test_event_bus_sees_the_backtest_events():
    bus, seen = wb.EventBus(), []
    from workbench.trading.events import TradeClosed

    bus.subscribe(TradeClosed, seen.append)
    r = wb.backtest("sma_crossover", "GOOG", bus=bus)
    assert len(seen) == r.stats["n_trades"]
