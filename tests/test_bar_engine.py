"""The per-bar callback engine: same answers as the signal engine for the same rule,
protective exits (stop-loss, take-profit, trailing stop), explicit orders of every type,
the pre-trade check hook, and parameter grids."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.adapters import indicators as ta
from workbench.strategy.base import check_int


@dataclass(frozen=True, kw_only=True)
class SmaBar(wb.BarStrategy):
    fast: int = 10
    slow: int = 30
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None

    def validate(self):
        check_int("fast", self.fast, 2)

    def init(self, prices):
        return ta.sma(prices["Close"], self.fast).to_numpy(), ta.sma(prices["Close"], self.slow).to_numpy()

    def on_bar(self, ctx):
        fast, slow = ctx.data
        if np.isnan(slow[ctx.i]):
            return
        want = 1 if fast[ctx.i] > slow[ctx.i] else 0
        if want != ctx.state.get("want", 0):
            ctx.state["want"] = want
            ctx.target(want, stop_loss=self.stop_loss, take_profit=self.take_profit,
                       trailing_stop=self.trailing_stop)  # fmt: skip


def test_callback_strategy_equals_the_signal_strategy(goog):
    a = wb.backtest(SmaBar(), goog, commission=0.001)
    b = wb.backtest("sma_crossover", goog, commission=0.001)
    pd.testing.assert_frame_equal(a.fills, b.fills)
    pd.testing.assert_frame_equal(a.trades, b.trades)
    np.testing.assert_array_equal(a.equity.to_numpy(), b.equity.to_numpy())


def _exits(result, tag):
    o = result.orders
    return o[(o["tag"] == tag) & (o["status"] == "FILLED")]


def test_stop_loss_exits_at_the_stop_and_cancels_its_sibling(goog):
    r = wb.backtest(SmaBar(stop_loss=0.05, take_profit=0.20), goog, commission=0.001)
    stops = _exits(r, "stop-loss")
    assert len(stops) >= 5
    fills = r.fills.set_index("order_id")
    for _, o in stops.iterrows():
        entry = r.fills[(r.fills["ts"] < o["updated"]) & (r.fills["side"] == "BUY")].iloc[-1]
        assert o["stop_price"] == r.spec.instruments[0].round_price(entry["price"] * 0.95)  # on the tick grid
        bar = goog.loc[o["updated"]]
        px = fills.loc[o["order_id"], "price"]
        assert px == pytest.approx(min(bar["Open"], o["stop_price"]))  # gap-through fills at the open
        assert bar["Low"] <= o["stop_price"] or bar["Open"] <= o["stop_price"]
    # one-cancels-other: every filled protective exit left no working sibling behind
    working = r.orders[r.orders["status"].isin(["ACCEPTED", "PENDING"])]
    assert len(working) <= 2  # only the protection of a position still open at the end
    cancelled = r.orders[(r.orders["tag"] == "take-profit") & (r.orders["status"] == "CANCELLED")]
    assert cancelled["reason"].str.contains("one-cancels-other|superseded").all()


def test_take_profit_exits_at_the_limit(goog):
    r = wb.backtest(SmaBar(take_profit=0.08), goog)
    tps = _exits(r, "take-profit")
    assert len(tps) >= 3
    for _, o in tps.iterrows():
        bar = goog.loc[o["updated"]]
        assert o["avg_fill_price"] >= o["limit_price"] - 1e-9
        assert bar["High"] >= o["limit_price"]


def test_trailing_stop_only_ratchets_up(goog):
    r = wb.backtest(SmaBar(trailing_stop=0.05), goog)
    trail = r.orders[r.orders["tag"] == "trailing-stop"]
    assert (trail["status"] == "FILLED").sum() >= 3
    # a raised stop is replaced by a higher one, never a lower one
    raised = 0
    for (_, a), (_, b) in zip(trail.iloc[:-1].iterrows(), trail.iloc[1:].iterrows(), strict=True):
        if a["reason"] == "trailing stop raised":
            assert b["stop_price"] > a["stop_price"]
            raised += 1
    assert raised > 20
    for _, o in trail[trail["status"] == "FILLED"].iterrows():
        placed = goog.index.get_loc(o["placed"])
        filled = goog.index.get_loc(o["updated"])
        assert filled > placed  # never on the bar that set it
    wb.check_lookahead(SmaBar(trailing_stop=0.05), goog, sample=16)  # each run is a backtest


@dataclass(frozen=True, kw_only=True)
class Orders(wb.BarStrategy):
    """Places one order of each type/TIF on fixed bars, to see each one handled."""

    def on_bar(self, ctx):
        i, c, tick = ctx.i, ctx.price, ctx.round_price
        plan = {
            100: dict(side="buy", quantity=5, order_type="limit", limit_price=tick(c * 0.97), time_in_force="gtc", tag="limit-gtc"),
            200: dict(side="buy", quantity=5, order_type="limit", limit_price=tick(c * 0.5), time_in_force="day", tag="limit-day"),
            300: dict(side="sell", quantity=5, order_type="stop", stop_price=tick(c * 0.97), time_in_force="gtc", tag="stop"),
            400: dict(side="buy", quantity=5, order_type="stop_limit", stop_price=tick(c * 1.01), limit_price=tick(c * 1.03), tag="stop-limit"),
            500: dict(side="buy", quantity=5, order_type="market", time_in_force="ioc", tag="ioc"),
            600: dict(side="buy", quantity=10_000, order_type="market", time_in_force="fok", tag="fok-too-big"),
        }  # fmt: skip
        if i in plan:
            ctx.order(**plan[i])


def test_every_order_type_and_time_in_force(goog):
    r = wb.backtest(Orders(), goog, cash=100_000)
    o = r.orders.set_index("tag")
    assert o.loc["limit-gtc", "status"] == "FILLED" and o.loc["limit-gtc", "avg_fill_price"] <= o.loc["limit-gtc", "limit_price"]
    assert o.loc["limit-day", "status"] == "EXPIRED"
    assert o.loc["stop", "status"] == "FILLED"
    assert o.loc["stop-limit", "status"] in ("FILLED", "ACCEPTED")
    assert o.loc["ioc", "status"] == "FILLED"
    assert o.loc["fok-too-big", "status"] == "REJECTED" and "buying power" in o.loc["fok-too-big", "reason"]


def test_pre_trade_check_hook_vetoes_orders(goog):
    seen = []

    def max_notional(order, portfolio, price):
        seen.append(order.order_id)
        return f"notional {order.quantity * price:,.0f} > limit 5,000" if order.quantity * price > 5_000 else ""

    r = wb.backtest("sma_crossover", goog, pre_trade_check=max_notional)
    assert seen and (r.orders["status"] == "REJECTED").all()
    assert r.orders["reason"].str.startswith("pre-trade check: notional").all()
    assert r.stats["n_trades"] == 0 and r.equity.iloc[-1] == 10_000
    ok = wb.backtest("sma_crossover", goog, size=10, pre_trade_check=max_notional)
    assert ok.stats["n_trades"] > 0
    with pytest.raises(wb.ParameterError, match="vectorized engine cannot reproduce a pre-trade check hook"):
        wb.backtest("sma_crossover", goog, engine="vectorized", pre_trade_check=max_notional)
    with pytest.raises(wb.ParameterError, match="per-bar callback"):
        wb.backtest(SmaBar(), goog, engine="vectorized")


def test_bad_protective_fraction_names_the_value(goog):
    with pytest.raises(wb.ParameterError, match="stop_loss must be a fraction in \\(0, 1\\), got stop_loss=1.5"):
        wb.backtest(SmaBar(stop_loss=1.5), goog)


def test_grid_search_rows_equal_single_backtests(goog):
    grid = {"fast": [5, 10, 20], "slow": [10, 30, 50]}
    top = wb.grid_search("sma_crossover", goog, grid, commission=0.001)
    assert top.attrs["combinations"] == 7 and top.attrs["skipped"] == 2  # fast >= slow
    assert top["sharpe"].is_monotonic_decreasing
    ev = wb.grid_search("sma_crossover", goog, grid, commission=0.001, engine="event")
    for _, row in top.iterrows():
        r = wb.backtest("sma_crossover", goog, {"fast": int(row.fast), "slow": int(row.slow)}, commission=0.001)
        for k in wb.research.optimize.GRID_METRICS:
            assert row[k] == pytest.approx(r.stats[k], rel=1e-9), k
    pd.testing.assert_frame_equal(top, ev, check_dtype=False, rtol=1e-9)
    with pytest.raises(wb.ParameterError, match="sort_by must be one of"):
        wb.grid_search("sma_crossover", goog, grid, sort_by="alpha")
