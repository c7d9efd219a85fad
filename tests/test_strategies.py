"""The strategy context: validated frozen parameters, lifecycle, Signals, TA-Lib warm-up,
each built-in's rules on the real sample data, and the look-ahead guard."""

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import talib

import workbench as wb
from workbench.adapters import indicators as ta
from workbench.strategies import BUILTINS
from workbench.strategy.base import LEGAL_TRANSITIONS, StrategyStatus, check_int


# -- parameters -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "params", "message"),
    [
        (wb.SMACrossover, {"fast": 50, "slow": 20}, "fast must be < slow, got fast=50, slow=20"),
        (wb.SMACrossover, {"fast": 1}, "fast must be >= 2, got fast=1"),
        (wb.EMACrossover, {"slow": 2.5}, "slow must be an integer, got slow=2.5"),
        (wb.TimeSeriesMomentum, {"lookback": 1}, "lookback must be >= 2, got lookback=1"),
        (wb.CrossSectionalMomentum, {"top_k": 0}, "top_k must be >= 1, got top_k=0"),
        (wb.MeanReversion, {"oversold": 80}, "oversold must be < overbought"),
        (wb.MeanReversion, {"k": -1.0}, "k must be in (0, 10], got k=-1.0"),
        (wb.PairsTrading, {"exit_z": 3.0}, "exit_z must be < entry_z, got exit_z=3.0, entry_z=2.0"),
        (wb.CrossVenueArbitrage, {"entry_bps": 0}, "entry_bps must be in (0, 10000], got entry_bps=0"),
        (wb.MLClassifier, {"model": "xgboost"}, "model must be 'logistic' or 'forest', got model='xgboost'"),
        (wb.MLClassifier, {"threshold": 1.5}, "threshold must be in [0.5, 1], got threshold=1.5"),
        (wb.SMACrossover, {"allow_short": "yes"}, "allow_short must be True or False, got allow_short='yes'"),
    ],
)
def test_bad_parameters_fail_naming_the_parameter(cls, params, message):
    with pytest.raises(wb.ParameterError) as err:
        cls(**params)
    assert message in str(err.value)


def test_parameters_are_frozen_and_hashable():
    s = wb.SMACrossover(fast=5, slow=20)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.fast = 6  # type: ignore[misc]
    assert s.params == {"fast": 5, "slow": 20, "allow_short": False}
    assert s.spec_id == wb.SMACrossover(fast=5, slow=20).spec_id != wb.SMACrossover(fast=6, slow=20).spec_id


def test_backtest_resolves_names_and_reports_unknown_ones(goog):
    assert set(wb.STRATEGIES) == set(BUILTINS) and len(BUILTINS) == 11
    with pytest.raises(wb.ParameterError, match="unknown strategy 'turtle'"):
        wb.backtest("turtle", goog)
    with pytest.raises(wb.ParameterError, match="SMACrossover"):
        wb.backtest("sma_crossover", goog, {"fastest": 3})


# -- lifecycle ------------------------------------------------------------------------
def test_lifecycle_draft_testing_live_paused_with_events():
    s = wb.SMACrossover()
    assert s.status is StrategyStatus.DRAFT
    with pytest.raises(wb.StrategyStateError, match="cannot go from DRAFT to LIVE"):
        s.go_live()
    s.start_testing(ts="2024-01-02", reason="backtest passed review")
    s.go_live(ts="2024-01-03")
    s.pause(ts="2024-01-04", reason="drawdown limit")
    s.go_live(ts="2024-01-05", reason="resumed")
    assert s.status is StrategyStatus.LIVE
    assert [(e.old.name, e.new.name) for e in s.events] == [
        ("DRAFT", "TESTING"), ("TESTING", "LIVE"), ("LIVE", "PAUSED"), ("PAUSED", "LIVE")
    ]
    assert s.events[2].reason == "drawdown limit" and s.events[0].spec_id == s.spec_id
    assert str(s.events[1].ts) == "2024-01-03 00:00:00"
    # the lifecycle is not a parameter and does not change the spec
    assert "status" not in s.params and s == wb.SMACrossover()
    for old, allowed in LEGAL_TRANSITIONS.items():
        assert old not in allowed


# -- signals --------------------------------------------------------------------------
def test_signals_carry_symbol_action_strength_confidence(goog):
    s = wb.SMACrossover(allow_short=True)
    sig = s.signals(goog, "GOOG")
    assert list(sig.columns) == ["ts", "symbol", "action", "strength", "confidence", "target"]
    assert set(sig["action"]) == {"BUY", "SELL"}
    assert (sig["strength"] == 1.0).all() and (sig["confidence"] == 1.0).all()
    target = s.target(goog)
    changes = target[target.diff().fillna(target) != 0]
    assert list(sig["ts"]) == list(changes.index)
    with pytest.raises(wb.ParameterError, match="strength must be in \\[0, 1\\]"):
        wb.Signal(pd.Timestamp("2024-01-02", tz="UTC"), "GOOG", wb.Action.BUY, 1.5)


def test_ml_signals_carry_the_classifier_probability_as_confidence(goog):
    s = wb.MLClassifier(retrain=126)
    sig = s.signals(goog, "GOOG")
    assert len(sig) > 10
    buys = sig[sig["action"] == "BUY"]
    assert (buys["confidence"] > s.threshold).all()
    assert sig["confidence"].between(0, 1).all() and sig["confidence"].nunique() > 5


def test_portfolio_signals_per_symbol(pair):
    sig = wb.PairsTrading().signals(pair)
    assert set(sig["symbol"]) == {"SPX", "IXIC"}
    first = sig[sig["ts"] == sig["ts"].iloc[0]]
    assert set(first["action"]) == {"BUY", "SELL"}  # one leg long, the other short
    assert (sig["strength"] <= 1).all()


# -- indicators: TA-Lib with explicit warm-up -----------------------------------------
def test_indicators_are_talib_with_nan_until_the_window_is_complete(goog):
    c = goog["Close"]
    np.testing.assert_array_equal(ta.sma(c, 20).to_numpy(), talib.SMA(c.to_numpy(), 20))
    for fn, name, kw in [(ta.sma, "SMA", 20), (ta.ema, "EMA", 20), (ta.rsi, "RSI", 14), (ta.roc, "ROCR", 10)]:
        out = fn(c, kw)
        lb = ta.lookback(name, timeperiod=kw)
        assert out.iloc[:lb].isna().all() and out.iloc[lb:].notna().all(), name
    with pytest.raises(wb.ParameterError, match="missing or non-finite value nan at 2004-08-23"):
        bad = c.copy()
        bad.iloc[2] = np.nan
        ta.sma(bad, 5)
    with pytest.raises(wb.ParameterError, match="window must be an integer >= 2"):
        ta.sma(c, 1)


@pytest.mark.parametrize("name", ["sma_crossover", "ema_crossover", "ts_momentum", "mean_reversion"])
def test_no_signal_before_the_warmup(goog, name):
    s = BUILTINS[name](allow_short=True)
    target = s.target(goog)
    assert (target.iloc[: s.warmup] == 0).all()
    assert (target.iloc[s.warmup :] != 0).any()


# -- each built-in's rules on the real data -------------------------------------------
def test_sma_crossover_rule(goog):
    t = wb.SMACrossover(fast=10, slow=30).target(goog)
    c = goog["Close"]
    expect = (c.rolling(10).mean() > c.rolling(30).mean()).astype(float)
    expect.iloc[:29] = 0.0
    assert (t == expect).mean() > 0.999  # equal except where float noise flips an exact tie
    assert t.iloc[29:].ne(0).sum() > 1000


def test_ts_momentum_rule(goog):
    t = wb.TimeSeriesMomentum(lookback=63, allow_short=True).target(goog)
    r = goog["Close"] / goog["Close"].shift(63) - 1
    np.testing.assert_array_equal(t.iloc[63:], np.sign(r.iloc[63:]))


def test_cross_sectional_rotation_holds_the_top_k(four):
    s = wb.CrossSectionalMomentum(lookback=63, top_k=2, rebalance=21, absolute=False)
    w = s.weights(four)
    rows = w.dropna()
    assert len(rows) == len(range(63, len(four), 21))
    close = four.xs("Close", axis=1, level=1)
    for ts, row in rows.iloc[:10].iterrows():
        i = four.index.get_loc(ts)
        best = (close.iloc[i] / close.iloc[i - 63]).nlargest(2).index
        assert set(row[row > 0].index) == set(best) and row.sum() == pytest.approx(1.0)


def test_mean_reversion_rule(goog):
    s = wb.MeanReversion()
    t = s.target(goog)
    up, mid, lo = ta.bbands(goog["Close"], 20, 2.0)
    rsi = ta.rsi(goog["Close"], 14)
    entries = t[(t == 1) & (t.shift(1, fill_value=0) == 0)].index
    assert len(entries) >= 5
    assert (goog["Close"][entries] < lo[entries]).all() and (rsi[entries] < 30).all()
    exits = t[(t == 0) & (t.shift(1, fill_value=0) == 1)].index
    assert ((goog["Close"][exits] >= mid[exits]) | (rsi[exits] > 70)).all()


def test_pairs_trading_enters_beyond_the_band_and_hedges(pair):
    s = wb.PairsTrading()
    z, beta = s.zscore(pair)
    w = s.weights(pair).dropna()
    entries = w[(w != 0).any(axis=1)]
    assert len(entries) > 20
    for ts, row in entries.iterrows():
        assert abs(z[ts]) > s.entry_z
        assert np.sign(row["SPX"]) == -np.sign(z[ts])  # short y when the spread is rich
        assert row["IXIC"] == pytest.approx(-row["SPX"] * beta[ts])
        assert abs(row).sum() == pytest.approx(1.0)
    exits = w[(w == 0).all(axis=1)]
    assert (z[exits.index].abs() < s.exit_z).all()


def test_arbitrage_trades_only_when_the_gap_beats_costs(venues):
    s = wb.CrossVenueArbitrage(entry_bps=10, exit_bps=2, cost_bps=8)
    g = s.gap_bps(venues)
    w = s.weights(venues).dropna()
    opened = w[(w != 0).any(axis=1)]
    assert len(opened) > 20
    assert (g[opened.index].abs() > 18).all()
    rich_a = opened[g[opened.index] > 0]
    assert (rich_a.iloc[:, 0] < 0).all() and (rich_a.iloc[:, 1] > 0).all()  # sell the dear venue
    r = wb.backtest(s, venues, commission=0.0002)
    assert r.stats["n_trades"] > 20 and r.stats["total_return"] > 0


def test_ml_classifier_is_walk_forward(goog):
    s = wb.MLClassifier(retrain=63, min_train=250)
    p = s.probability(goog)
    first = p.first_valid_index()
    assert goog.index.get_loc(first) >= 250 + 33  # features warm-up + minimum training rows
    # refits happen on the retrain grid counted from the first fit: refit dates do not move
    # when later data is removed, and a model never sees a label from its own segment
    cut = goog.iloc[: goog.index.get_loc(first) + 100]
    np.testing.assert_array_equal(s.probability(cut).to_numpy(), p.iloc[: len(cut)].to_numpy())


# -- look-ahead guard -----------------------------------------------------------------
LOOKAHEAD_CASES = [
    ("sma_crossover", "goog", {"allow_short": True}),
    ("ema_crossover", "goog", {}),
    ("ts_momentum", "goog", {}),
    ("mean_reversion", "goog", {"allow_short": True}),
    ("ml_classifier", "goog", {"retrain": 126}),
    ("xs_momentum", "four", {}),
    ("pairs", "pair", {}),
    ("arbitrage", "venues", {}),
]


@pytest.mark.parametrize(("name", "data", "params"), LOOKAHEAD_CASES, ids=[c[0] for c in LOOKAHEAD_CASES])
def test_every_builtin_passes_the_lookahead_guard(request, name, data, params):
    prices = request.getfixturevalue(data)
    sample = 8 if name == "ml_classifier" else 64  # the ML strategy refits on every run
    assert wb.check_lookahead(name, prices, params, cuts=6, sample=sample, commission=0.001) >= 5


@dataclass(frozen=True, kw_only=True)
class PeekAhead(wb.Strategy):
    """Cheats: goes long today when tomorrow's close is higher."""

    def target(self, prices):
        return (prices["Close"].shift(-1) > prices["Close"]).astype(float)


@dataclass(frozen=True, kw_only=True)
class CenteredSmooth(wb.Strategy):
    """Subtle cheat: a centred rolling mean uses bars after t."""

    window: int = 11

    def validate(self):
        check_int("window", self.window, 3)

    def target(self, prices):
        smooth = prices["Close"].rolling(self.window, center=True, min_periods=1).mean()
        return (prices["Close"] > smooth).astype(float)


@pytest.mark.parametrize("cheat", [PeekAhead(), CenteredSmooth()])
def test_a_lookahead_strategy_is_caught(goog, cheat):
    with pytest.raises(wb.LookAheadError, match="looks ahead: its decision at"):
        wb.check_lookahead(cheat, goog)
    if isinstance(cheat, PeekAhead):  # it would have looked too good to be true
        assert wb.backtest(cheat, goog).stats["sharpe"] > 2


def test_readme_example_strategy_is_a_short_subclass(goog):
    @dataclass(frozen=True, kw_only=True)
    class Breakout(wb.Strategy):
        window: int = 20

        def validate(self):
            check_int("window", self.window, 2)

        @property
        def warmup(self):
            return self.window

        def target(self, prices):
            high = prices["High"].rolling(self.window).max().shift(1)
            return (prices["Close"] > high).astype(float)

    wb.check_lookahead(Breakout(), goog)
    wb.compare_engines(Breakout(), goog, commission=0.001).raise_if_different()
    with pytest.raises(wb.ParameterError, match="window must be >= 2, got window=1"):
        Breakout(window=1)


def breakout(prices, window=20):
    """A strategy as a plain function: long above the prior ``window``-bar high."""
    high = prices["High"].rolling(window).max().shift(1)
    return (prices["Close"] > high).astype(float)


def test_a_plain_function_is_a_strategy(goog):
    r = wb.backtest(breakout, goog, {"window": 50}, commission=0.001)
    assert r.spec.strategy.name.endswith("breakout") and r.spec.params == {"window": 50}
    assert r.stats["n_trades"] > 10
    wb.compare_engines(breakout, goog, {"window": 50}, commission=0.001).raise_if_different()
    wb.check_lookahead(breakout, goog, {"window": 50})
    top = wb.grid_search(breakout, goog, {"window": [10, 20, 50]})
    assert sorted(top["window"]) == [10, 20, 50]
    with pytest.raises(wb.ParameterError, match="must return a pandas Series"):
        wb.backtest(lambda prices: 1.0, goog)
