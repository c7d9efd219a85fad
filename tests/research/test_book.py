"""The multi-strategy book: sleeves, allocation, periodic rebalancing, both engines, attribution."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.research.attribution import OTHER, UNATTRIBUTED, attribution
from workbench.research.book import AssetAllocation, MultiStrategy, Sleeve, rebalance_rows
from workbench.risk.var import delta_normal_var
from workbench.strategies import (
    CrossSectionalMomentum,
    MeanReversion,
    SMACrossover,
    TimeSeriesMomentum,
)
from workbench.strategy.base import FunctionStrategy


def _book(allocation: str = "inverse_volatility", rebalance: int | str = "MS", lookback: int = 126) -> MultiStrategy:
    return MultiStrategy(sleeves=(
        Sleeve(name="trend", strategy=SMACrossover(fast=20, slow=100), symbols=("SPX",)),
        Sleeve(name="reversion", strategy=MeanReversion(), symbols=("GOOG",)),
        Sleeve(name="tsmom", strategy=TimeSeriesMomentum(), symbols=("WTI",)),
        Sleeve(name="rotation", strategy=CrossSectionalMomentum(top_k=1), symbols=("GOOG", "IXIC")),
    ), allocation=allocation, rebalance=rebalance, lookback=lookback)  # fmt: skip


def _flip(prices: pd.DataFrame, sign: float = 1.0) -> pd.Series:
    """Long (or short) on even months, flat on odd ones: a sleeve that trades often."""
    return pd.Series(np.where(prices.index.month % 2 == 0, sign, 0.0), index=prices.index)


def _equity_change(r: wb.BacktestResult) -> pd.Series:
    return r.equity.diff().fillna(r.equity.iloc[0] - r.spec.cash)


# -- the plan -------------------------------------------------------------------------


def test_sleeve_returns_are_yesterdays_weights_times_todays_returns(four) -> None:
    plan = _book().plan(four)
    close = wb.strategy.base.panel_field(four)
    bars = four["SPX"].copy()
    target = SMACrossover(fast=20, slow=100).target(bars)
    expected = target.shift(1).fillna(0.0) * close["SPX"].pct_change().fillna(0.0)
    np.testing.assert_allclose(plan.sleeve_returns["trend"].to_numpy(), expected.to_numpy(), rtol=0, atol=1e-15)
    rot = CrossSectionalMomentum(top_k=1).weights(four[["GOOG", "IXIC"]]).ffill().fillna(0.0)
    exp_rot = (rot.shift(1).fillna(0.0) * close[["GOOG", "IXIC"]].pct_change().fillna(0.0)).sum(axis=1)
    np.testing.assert_allclose(plan.sleeve_returns["rotation"].to_numpy(), exp_rot.to_numpy(), atol=1e-15)


def test_allocations_are_long_only_fully_invested_and_start_after_the_lookback(four) -> None:
    plan = _book(lookback=126).plan(four)
    a = plan.allocations
    assert (a.to_numpy() >= 0).all()
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-9)
    assert a.index[0] == four.index[126]
    assert (plan.capital.iloc[:126].to_numpy() == 0).all()
    assert plan.weights.iloc[:126].isna().all().all(), "flat (no rows) before the first allocation"
    gross = plan.weights.dropna().abs().sum(axis=1)
    assert (gross <= 1 + 1e-9).all()


def test_each_allocation_uses_only_the_window_up_to_its_bar(four) -> None:
    """The inverse-volatility weights of one rebalance, recomputed by hand from its window."""
    plan = _book(lookback=126).plan(four)
    ts = plan.allocations.index[10]
    i = four.index.get_loc(ts)
    window = plan.sleeve_returns.iloc[i - 125 : i + 1]
    sd = window.std(ddof=1)
    inv = (1 / sd[sd > 0]) / (1 / sd[sd > 0]).sum()
    expected = inv.reindex(window.columns).fillna(0.0)
    np.testing.assert_allclose(plan.allocations.loc[ts].to_numpy(), expected.to_numpy(), atol=1e-9)
    truncated = _book(lookback=126).plan(four.iloc[: i + 1])
    pd.testing.assert_series_equal(truncated.allocations.loc[ts], plan.allocations.loc[ts])


def test_book_weights_are_the_capital_weighted_sum_of_the_sleeves(four) -> None:
    plan = _book("equal_weight").plan(four)
    rows = plan.weights.dropna()
    own = {k: w.reindex(columns=list(four.columns.get_level_values(0).unique()), fill_value=0.0)
           for k, w in plan.sleeve_weights.items()}  # fmt: skip
    expected = sum(own.values()) / 4
    np.testing.assert_allclose(rows.to_numpy(), expected.loc[rows.index].to_numpy(), atol=1e-12)


def test_rows_are_emitted_on_every_rebalance_and_every_sleeve_change_only(four) -> None:
    plan = _book(rebalance=21).plan(four)
    emitted = plan.weights.notna().all(axis=1).to_numpy()
    rows = rebalance_rows(four.index, 21, 126)
    assert emitted[rows].all()
    book = sum(plan.contributions.values())
    changed = np.r_[False, (book.diff().abs().to_numpy()[1:] > 1e-12).any(axis=1)]
    others = np.ones(len(four), bool)
    others[rows] = False
    others[:126] = False
    np.testing.assert_array_equal(emitted[others], changed[others])


def test_calendar_rebalance_is_the_first_bar_of_each_period(four) -> None:
    rows = rebalance_rows(four.index, "MS", 0)
    months = four.index[rows].tz_localize(None).to_period("M")
    assert months.is_unique and len(months) == len(four.index.tz_localize(None).to_period("M").unique())
    for r in rows[1:]:
        assert four.index[r].month != four.index[r - 1].month
    weekly = rebalance_rows(four.index, "W-MON", 10)
    assert weekly[0] == 10 and (np.diff(weekly) >= 1).all()
    days = four.index[weekly[1:]].dayofweek
    assert (days == 0).mean() > 0.85, "W-MON: the first bar of each week starting Monday (a holiday moves it)"
    week = four.index.tz_localize(None).to_period("W-SUN")  # weeks ending Sunday: starting Monday
    assert all(week[r] != week[r - 1] for r in weekly[1:]) and week[weekly[1:]].is_unique


# -- both engines ---------------------------------------------------------------------


@pytest.mark.parametrize("allocation", ["inverse_volatility", "equal_risk_contribution", "hrp"])
def test_both_engines_run_the_book_fill_for_fill(four, allocation: str) -> None:
    cmp = wb.compare_engines(_book(allocation), four, commission=0.001)
    assert cmp.ok, cmp.differences
    assert len(cmp.event.fills) > 100


@pytest.mark.parametrize("allocation", ["equal_weight", "min_variance", "max_sharpe"])
def test_asset_allocation_rebalances_periodically_on_both_engines(four, allocation: str) -> None:
    strat = AssetAllocation(allocation=allocation, rebalance=21, lookback=63)
    cmp = wb.compare_engines(strat, four, commission=0.0005)
    assert cmp.ok, cmp.differences
    weights = strat.weights(four)
    np.testing.assert_array_equal(np.flatnonzero(weights.notna().all(axis=1)), rebalance_rows(four.index, 21, 63))
    fills = pd.DatetimeIndex(cmp.event.fills["ts"]).unique()
    assert len(fills) >= 0.5 * len(rebalance_rows(four.index, 21, 63)), "drift is traded back at rebalances"


# -- attribution ----------------------------------------------------------------------


def test_attribution_rows_sum_to_the_equity_change(four) -> None:
    r = wb.backtest(_book(), four, commission=0.001, store=None)
    a = attribution(r, four)
    np.testing.assert_allclose(a.pnl.sum(axis=1).to_numpy(), _equity_change(r).to_numpy(), rtol=0, atol=1e-8)
    assert abs(a.pnl[OTHER]).max() < 1e-6, "cash accounts: every equity change is some position's P&L"
    assert a.summary.loc[["trend", "rotation"], "pnl"].abs().min() > 0
    np.testing.assert_allclose(a.summary["fees"].sum(), r.fills["fee"].sum(), rtol=1e-12)


def test_one_sleeve_owns_all_of_the_book(four) -> None:
    book = MultiStrategy(sleeves=(Sleeve(name="only", strategy=SMACrossover(fast=20, slow=100), symbols=("SPX",)),),
                         lookback=30)  # fmt: skip
    r = wb.backtest(book, four, commission=0.001, store=None)
    a = attribution(r, four)
    np.testing.assert_allclose(a.pnl["only"].sum(), r.equity.iloc[-1] - r.spec.cash, rtol=1e-10)
    assert a.pnl[UNATTRIBUTED].abs().max() < 1e-9


def test_identical_sleeves_split_the_pnl_equally(four) -> None:
    s = SMACrossover(fast=20, slow=100)
    book = MultiStrategy(sleeves=(Sleeve(name="a", strategy=s, symbols=("SPX",)),
                                  Sleeve(name="b", strategy=s, symbols=("SPX",))), lookback=30)  # fmt: skip
    a = attribution(wb.backtest(book, four, commission=0.001, store=None), four)
    np.testing.assert_allclose(a.pnl["a"].to_numpy(), a.pnl["b"].to_numpy(), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(a.summary.loc["a", "component_var"], a.summary.loc["b", "component_var"], rtol=1e-9)


def test_opposing_sleeves_net_out_to_no_position(four) -> None:
    long = FunctionStrategy(fn=_flip, kwargs=(("sign", 1.0),))
    short = FunctionStrategy(fn=_flip, kwargs=(("sign", -1.0),))
    book = MultiStrategy(sleeves=(Sleeve(name="long", strategy=long, symbols=("SPX",)),
                                  Sleeve(name="short", strategy=short, symbols=("SPX",))),
                         allocation="equal_weight", lookback=30)  # fmt: skip
    r = wb.backtest(book, four, store=None)
    assert len(r.fills) == 0
    a = attribution(r, four)
    assert a.pnl.abs().to_numpy().max() == 0


def test_component_var_sums_to_the_books_var_and_turnover_is_by_hand(four) -> None:
    r = wb.backtest(_book(), four, commission=0.001, store=None)
    a = attribution(r, four)
    s = a.summary
    np.testing.assert_allclose(s["component_var"].sum(), s.attrs["var"], rtol=1e-10)
    first = int(np.flatnonzero(a.capital.sum(axis=1).to_numpy() > 0)[0])
    rets = a.pnl.div(r.equity.shift(1).fillna(r.spec.cash), axis=0).iloc[first:]
    assert first == 126, "the VaR sample starts at the first allocation, not in the flat warm-up"
    live = rets.loc[:, rets.std() > 0]
    var = delta_normal_var(pd.Series(1.0, index=live.columns), returns=live, confidence=0.99).value
    np.testing.assert_allclose(s.attrs["var"], var, rtol=1e-12)
    plan = r.spec.strategy.plan(four)
    w = plan.contributions["trend"]
    by_hand = 0.5 * w.diff().abs().sum().sum() * 252 / (len(four) - 1)
    np.testing.assert_allclose(s.loc["trend", "turnover"], by_hand, rtol=1e-9)


# -- the store and the errors -----------------------------------------------------------


def test_a_book_run_is_stored_and_loads_back(four, tmp_path) -> None:
    store = wb.SQLiteStore(tmp_path / "s.sqlite")
    r = wb.backtest(_book("hrp"), four, store=store)
    back = store.load(r.run_id)
    assert back.spec == r.spec
    assert "skfolio" in r.versions, "the solver library is part of the run's identity"
    assert "skfolio" not in wb.backtest(_book("equal_weight"), four, store=None).versions
    pd.testing.assert_series_equal(back.equity, r.equity)


def test_bad_books_are_named() -> None:
    sma = SMACrossover()
    with pytest.raises(wb.ParameterError, match="allocation must be one of"):
        MultiStrategy(sleeves=(Sleeve(name="a", strategy=sma, symbols=("SPX",)),), allocation="kelly")
    with pytest.raises(wb.ParameterError, match="sleeve names must be distinct"):
        MultiStrategy(sleeves=(Sleeve(name="a", strategy=sma, symbols=("SPX",)),
                               Sleeve(name="a", strategy=sma, symbols=("GOOG",))))  # fmt: skip
    with pytest.raises(wb.ParameterError, match="a signal strategy trades one symbol"):
        Sleeve(name="a", strategy=sma, symbols=("SPX", "GOOG"))
    with pytest.raises(wb.ParameterError, match="rebalance must be a number of bars or a positive pandas offset"):
        MultiStrategy(sleeves=(Sleeve(name="a", strategy=sma, symbols=("SPX",)),), rebalance="monthly")
    with pytest.raises(wb.ParameterError, match="sleeves must be a non-empty tuple"):
        MultiStrategy(sleeves=())
    with pytest.raises(wb.ParameterError, match="options must be among"):
        MultiStrategy(sleeves=(Sleeve(name="a", strategy=sma, symbols=("SPX",)),), options=(("gamma", 2.0),))


def test_a_sleeve_symbol_missing_from_the_panel_is_named(pair) -> None:
    book = MultiStrategy(sleeves=(Sleeve(name="a", strategy=SMACrossover(), symbols=("GOOG",)),))
    with pytest.raises(wb.ParameterError, match=r"the panel lacks the sleeves' symbols \['GOOG'\]"):
        wb.backtest(book, pair, store=None)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(allocation=st.sampled_from(["equal_weight", "inverse_volatility", "min_variance", "hrp"]),
       rebalance=st.integers(1, 60), lookback=st.integers(5, 200))  # fmt: skip
def test_any_schedule_keeps_gross_within_one_and_allocations_whole(four, allocation, rebalance, lookback) -> None:
    panel = four.iloc[:600]
    plan = _book(allocation, rebalance, lookback).plan(panel)
    assert (plan.weights.dropna().abs().sum(axis=1) <= 1 + 1e-9).all()
    if len(plan.allocations):
        np.testing.assert_allclose(plan.allocations.sum(axis=1), 1.0, atol=1e-9)
        assert (plan.allocations.to_numpy() >= -1e-12).all()


def test_bounds_hold_when_sleeves_are_flat(four) -> None:
    book = _book("min_variance", rebalance=21, lookback=63)
    capped = MultiStrategy(sleeves=book.sleeves, allocation="min_variance", rebalance=21, lookback=63,
                           options=(("max_weight", 0.4),))  # fmt: skip
    a = capped.plan(four).allocations
    assert (a.to_numpy() <= 0.4 + 1e-9).all()
    sums = a.sum(axis=1)
    capped_rows = ((a == 0) | (np.abs(a - 0.4) < 1e-9)).all(axis=1)
    assert ((np.abs(sums - 1) < 1e-9) | capped_rows).all(), "below 1 only when every moving sleeve is at its cap"
    assert (sums < 1 - 1e-9).any(), "the sample has windows with fewer than 3 moving sleeves: cash"
    floor = MultiStrategy(sleeves=book.sleeves, allocation="hrp", rebalance=21, lookback=63,
                          options={"min_weight": 0.1})  # fmt: skip
    f = floor.plan(four).allocations
    assert (f.to_numpy() >= 0.1 - 1e-9).all()
    np.testing.assert_allclose(f.sum(axis=1), 1.0, atol=1e-9)


def test_max_sharpe_cash_rule_looks_at_the_moving_sleeves_only(four) -> None:
    book = _book("max_sharpe", rebalance=21, lookback=63)
    neg = MultiStrategy(sleeves=book.sleeves, allocation="max_sharpe", rebalance=21, lookback=63,
                        options=(("risk_free_rate", -1e-5),))  # fmt: skip
    a = neg.plan(four).allocations
    sums = a.sum(axis=1)
    assert ((np.abs(sums - 1) < 1e-9) | (sums == 0)).all()


def test_bad_options_schedules_and_sleeve_outputs_are_named(four) -> None:
    sma = SMACrossover()
    one = (Sleeve(name="a", strategy=sma, symbols=("SPX",)),)
    with pytest.raises(wb.ParameterError, match="positive pandas offset alias"):
        MultiStrategy(sleeves=one, rebalance="0D")
    with pytest.raises(wb.ParameterError, match="positive pandas offset alias"):
        AssetAllocation(rebalance="-1MS")
    with pytest.raises(wb.ParameterError, match="options must be among"):
        AssetAllocation(options=(("gamma", 2.0),))
    with pytest.raises(wb.ParameterError, match="max_weight must be in"):
        MultiStrategy(sleeves=one, options=(("max_weight", 7.0),))
    with pytest.raises(wb.ParameterError, match="inverse_volatility is a closed form without bounds"):
        AssetAllocation(allocation="inverse_volatility", options={"max_weight": 0.5})
    nan_rule = FunctionStrategy(fn=_nan_after_100)
    bad = MultiStrategy(sleeves=(Sleeve(name="holey", strategy=nan_rule, symbols=("SPX",)),), lookback=30)
    with pytest.raises(wb.ParameterError, match="sleeve 'holey': target values must be -1, 0 or 1"):
        bad.weights(four)


def _nan_after_100(prices: pd.DataFrame) -> pd.Series:
    out = pd.Series(1.0, index=prices.index)
    out.iloc[100:] = np.nan
    return out


def test_attribution_needs_the_panel_the_run_used(four) -> None:
    r = wb.backtest(_book(), four.iloc[300:], store=None)
    with pytest.raises(wb.ParameterError, match="attribution needs the panel the run used"):
        attribution(r, four)
    with pytest.raises(wb.ParameterError, match="attribution needs the panel the run used"):
        attribution(r, four.iloc[300:][["WTI", "IXIC", "SPX", "GOOG"]])
    a = attribution(r, four.iloc[300:])
    assert a.pnl[UNATTRIBUTED].abs().max() < 1e-9


def test_both_engines_attribute_alike(four) -> None:
    kw = {"commission": 0.001, "store": None}
    e = attribution(wb.backtest(_book(), four, engine="event", **kw), four)
    v = attribution(wb.backtest(_book(), four, engine="vectorized", **kw), four)
    np.testing.assert_allclose(e.pnl.to_numpy(), v.pnl.to_numpy(), rtol=0, atol=1e-6)
