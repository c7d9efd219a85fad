"""Review fixes of the risk profile: a rule meant to cut risk never keeps a position open,
every order is checked at the worst price known for it, orders already working count,
protective exits pass a HALT, adding orders do not outlive a state change, amendments are
checked, and stress windows do not depend on the index's time unit."""

from __future__ import annotations

import pandas as pd
import pytest

import workbench as wb
from workbench.risk.gate import RiskGate
from workbench.risk.monitor import RiskMonitor
from workbench.trading import Bar, Portfolio, SimulatedBroker

GOOG = wb.load_prices("GOOG")


def test_reducing_only_cuts_a_reversal_to_its_closing_leg() -> None:
    r = wb.backtest("sma_crossover", GOOG, {"fast": 5, "slow": 20, "allow_short": True},
                    risk=wb.RiskProfile(max_drawdown=0.2))  # fmt: skip
    change = r.risk.events.loc[r.risk.events["event"] == "TradingStateChanged", "ts"].iloc[0]
    after = r.orders[r.orders["placed"] >= change]  # decided at the close that changed the state, or later
    assert (after.loc[after["tag"] == "entry", "status"] == "DENIED").all(), "no new position"
    assert r.risk.reduced >= 1 and "MarginCallTriggered" not in set(r.risk.events["event"])
    reversals = after[after["tag"] == "reverse"]
    assert len(reversals) and (reversals["status"] == "FILLED").all()
    first = reversals.iloc[0]
    held_before = r.positions.loc[:first["placed"]].iloc[-1]
    assert held_before != 0 and first["filled_quantity"] == abs(held_before), "it closed the position, no more"
    assert (r.positions.loc[first["updated"]:] == 0).all(), "flat from then on: no new side"


def test_long_only_cuts_a_reversal_too() -> None:
    r = wb.backtest("sma_crossover", GOOG, {"allow_short": True}, risk=wb.RiskProfile(limits=(wb.LongOnly(),)))
    assert (r.positions >= 0).all() and r.stats["n_trades"] > 10 and r.risk.denied == 0 and r.risk.reduced > 0


def test_a_buy_stop_is_checked_at_its_stop_price() -> None:
    class StopIn(wb.BarStrategy):
        def on_bar(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.i == 300:
                ctx.buy(20, order_type="stop", stop_price=ctx.round_price(ctx.price * 1.5))

    price = float(GOOG["Close"].iloc[300])
    limit = 20 * price * 1.2  # fine at the mark, breached at the stop
    r = wb.backtest(StopIn(), GOOG, cash=1e6, risk=wb.RiskProfile(limits=(wb.MaxOrderNotional(limit=limit),)))
    assert list(r.orders["status"]) == ["DENIED"] and "MaxOrderNotional" in r.orders["reason"].iloc[0]


def test_orders_already_working_count_against_a_limit() -> None:
    class TwoExits(wb.BarStrategy):
        def on_bar(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.i == 10:
                ctx.buy(10)
            if ctx.i == 20:
                ctx.sell(10, tag="exit")
                ctx.sell(10, tag="second exit")

    r = wb.backtest(TwoExits(), GOOG, account=wb.MarginAccount(0.5, 0.25), risk=wb.RiskProfile(limits=(wb.LongOnly(),)))
    status = r.orders.set_index("tag")["status"]
    assert status["exit"] == "FILLED" and status["second exit"] == "DENIED" and (r.positions >= 0).all()


def test_protective_exits_pass_a_halt_and_adding_orders_are_cancelled_at_it() -> None:
    class Trail(wb.BarStrategy):
        def on_bar(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.i == 5:
                ctx.target(1, trailing_stop=0.5)
            if ctx.i == 6:
                ctx.buy(1, order_type="limit", limit_price=ctx.round_price(ctx.price * 0.3), tag="dip buy")

    r = wb.backtest(Trail(), GOOG, size=0.5, risk=wb.RiskProfile(max_drawdown=0.15, drawdown_action=wb.DrawdownAction.HALT))
    assert r.risk.state == "HALTED"
    change = r.risk.events.loc[r.risk.events["event"] == "TradingStateChanged", "ts"].iloc[0]
    trail = r.orders[(r.orders["tag"] == "trailing-stop") & (r.orders["placed"] > change)]
    assert len(trail) and not (trail["status"] == "DENIED").any(), "the trailing stop keeps being raised"
    dip = r.orders[r.orders["tag"] == "dip buy"].iloc[0]
    assert dip["status"] == "CANCELLED" and dip["reason"] == "risk: trading is HALTED"


def test_an_amendment_that_adds_quantity_is_checked() -> None:
    inst = wb.instrument_for("GOOG")
    book = Portfolio(100_000)
    book.mark(inst.symbol, 100.0)
    monitor = RiskMonitor(wb.RiskProfile(limits=(wb.MaxOrderQuantity(limit=10),)))
    gate = RiskGate(SimulatedBroker(book), book, monitor, lambda i: 100.0)
    ts = pd.Timestamp("2020-01-02", tz="UTC")
    order = gate.place(inst, "BUY", 5, ts, order_type="limit", limit_price=99.0)
    assert gate.modify(order, ts, quantity=1_000).quantity == 5, "refused: left as it was"
    assert gate.modify(order, ts, quantity=8).quantity == 8
    gate.on_bar(inst, Bar(ts + pd.Timedelta(days=1), 98.0, 99.0, 97.0, 98.0, 1e6))
    assert book.quantity(inst) == 8 and monitor.denied == 1


def test_orders_per_day_never_hold_back_an_exit() -> None:
    class Busy(wb.BarStrategy):
        def on_bar(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.i == 10:
                ctx.buy(5)
            if ctx.i == 11:
                ctx.buy(1, tag="more")
                ctx.sell(5, tag="out")

    r = wb.backtest(Busy(), GOOG, risk=wb.RiskProfile(limits=(wb.MaxOrdersPerDay(limit=1),)))
    status = r.orders.set_index("tag")["status"]
    assert status["more"] == "FILLED" and status["out"] == "FILLED"


def test_stress_windows_do_not_depend_on_the_index_unit() -> None:
    monthly = wb.load_prices("BTCUSD")["Close"]
    micro = monthly.copy()
    micro.index = micro.index.as_unit("us")
    a = wb.risk.window_returns(monthly.to_frame("BTCUSD"), "2018-09-15", "2018-10-15")
    b = wb.risk.window_returns(micro.to_frame("BTCUSD"), "2018-09-15", "2018-10-15")
    pd.testing.assert_series_equal(a["return"], b["return"])
    late = wb.risk.window_returns(GOOG, "2008-09-01", "2030-01-01")
    assert late["missing"].iloc[0].startswith("the data ends at 2013-03")


def test_a_profile_needs_a_tuple_of_limits() -> None:
    with pytest.raises(wb.ParameterError, match="limits must be a tuple of limits"):
        wb.RiskProfile(limits=wb.LongOnly())
