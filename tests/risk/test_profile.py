"""The RiskProfile enforced before every order: denials name the limit, reducing orders
always pass, the drawdown rule changes the trading state at the first close past it, and
no order that breaches a limit is ever filled (Hypothesis), on every strategy kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.risk.limits import (
    LongOnly,
    MaxGrossLeverage,
    MaxNetLeverage,
    MaxOrderNotional,
    MaxOrderQuantity,
    MaxOrdersPerDay,
    MaxPositionWeight,
)
from workbench.risk.profile import DrawdownAction, RiskLevel, RiskProfile

GOOG = wb.load_prices("GOOG")
PAIR = wb.load_prices(["SPX", "IXIC"], progress=False)


def test_a_denied_order_names_the_limit_and_never_reaches_the_broker() -> None:
    r = wb.backtest("sma_crossover", GOOG, risk=RiskProfile(limits=(MaxOrderNotional(limit=20_000),)))
    denied = r.orders[r.orders["status"] == "DENIED"]
    assert len(denied) and denied["reason"].str.startswith("risk: MaxOrderNotional: order notional").all()
    assert not set(denied["order_id"]) & set(r.fills["order_id"]), "a denied order has no fill"
    log = r.risk.events
    assert list(log.loc[log["event"] == "RiskCheckFailed", "order_id"]) == list(denied["order_id"])
    assert (log["limit"] == "MaxOrderNotional").all() and (log["value"] > log["threshold"]).all()
    assert r.risk.denied == len(denied) and r.risk.passed == len(r.orders) - len(denied)
    assert r.risk.level == "CRITICAL"


def test_without_a_breach_the_profile_changes_nothing() -> None:
    free = wb.backtest("sma_crossover", GOOG, commission=0.001)
    loose = wb.backtest("sma_crossover", GOOG, commission=0.001, risk=RiskProfile(limits=(MaxGrossLeverage(limit=1.0), LongOnly())))
    pd.testing.assert_frame_equal(free.fills, loose.fills)
    assert free.equity.equals(loose.equity) and loose.risk.denied == 0 and len(loose.risk.events) == 0
    assert loose.risk.level in ("HIGH", "CRITICAL") or RiskLevel[loose.risk.level] <= RiskLevel.HIGH
    assert free.id != loose.id, "the profile is part of the spec"


def test_reducing_orders_always_pass() -> None:
    """A tiny quantity cap denies entries bigger than it, never the exit of a position."""
    r = wb.backtest("sma_crossover", GOOG, size=10, risk=RiskProfile(limits=(MaxOrderQuantity(limit=10),)))
    assert r.risk.denied == 0 and len(r.fills) > 10
    tight = wb.backtest("sma_crossover", GOOG, size=11, risk=RiskProfile(limits=(MaxOrderQuantity(limit=10),)))
    assert len(tight.fills) == 0 and tight.risk.denied == len(tight.orders)


def test_the_drawdown_rule_changes_state_at_the_first_close_past_it() -> None:
    profile = RiskProfile(max_drawdown=0.2)
    r = wb.backtest("sma_crossover", GOOG, {"fast": 5, "slow": 20}, risk=profile)
    eq = r.equity
    first = eq.index[int(np.argmax((eq <= eq.cummax() * 0.8).to_numpy()))]
    change = r.risk.events[r.risk.events["event"] == "TradingStateChanged"]
    assert list(change["ts"]) == [first] and r.risk.state == "REDUCING_ONLY"
    after = r.orders[r.orders["placed"] > first]
    entries = after[after["tag"] == "entry"]
    assert (entries["status"] == "DENIED").all() and len(entries)
    assert not (after[after["tag"] == "exit"]["status"] == "DENIED").any(), "exits still pass"
    halted = wb.backtest("sma_crossover", GOOG, {"fast": 5, "slow": 20},
                         risk=RiskProfile(max_drawdown=0.2, drawdown_action=DrawdownAction.HALT))  # fmt: skip
    assert halted.risk.state == "HALTED"
    assert (halted.orders[halted.orders["placed"] > first]["status"] == "DENIED").all()


def test_every_strategy_kind_goes_through_the_profile() -> None:
    pairs = wb.backtest("pairs", PAIR, risk=RiskProfile(limits=(MaxPositionWeight(limit=0.3),)))
    assert pairs.risk.denied > 0 and (pairs.orders.loc[pairs.orders["status"] == "DENIED", "reason"].str.contains("MaxPositionWeight")).all()

    class Daily(wb.BarStrategy):
        def on_bar(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.i % 5 == 0:
                ctx.buy(1, tag="daily")

    bar = wb.backtest(Daily(), GOOG, cash=1e6, risk=RiskProfile(limits=(MaxOrderQuantity(limit=100), MaxGrossLeverage(limit=0.05))))
    assert bar.risk.denied > 0 and bar.risk.passed > 0
    assert (bar.orders.loc[bar.orders["status"] == "DENIED", "reason"].str.contains("MaxGrossLeverage")).all()


def test_orders_per_day_are_counted_by_utc_date() -> None:
    class Twice(wb.BarStrategy):
        def on_bar(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.i in (100, 200):
                ctx.buy(1, tag="first")
                ctx.buy(1, tag="second")

    r = wb.backtest(Twice(), GOOG, risk=RiskProfile(limits=(MaxOrdersPerDay(limit=1),)))
    assert list(r.orders["status"]) == ["FILLED", "DENIED", "FILLED", "DENIED"]


def test_drift_over_a_cap_is_logged_as_a_breach() -> None:
    r = wb.backtest("sma_crossover", GOOG, size=0.5, risk=RiskProfile(limits=(MaxPositionWeight(limit=0.6),)))
    breaches = r.risk.events[r.risk.events["event"] == "LimitBreached"]
    assert len(breaches) and (breaches["value"] > 0.6).all() and r.risk.denied == 0
    held = r.positions * GOOG["Close"]
    weight = (held.abs() / r.equity).to_numpy()
    over = weight > 0.6 * (1 + 1e-9)
    starts = GOOG.index[np.flatnonzero(over & ~np.concatenate(([False], over[:-1])))]
    assert list(breaches["ts"]) == list(starts), "one breach per episode, at its first close"


def test_risk_events_reach_the_bus() -> None:
    bus, seen = wb.EventBus(), []
    bus.subscribe(wb.trading.events.Event, lambda e: seen.append(type(e).__name__))
    wb.backtest("sma_crossover", GOOG, bus=bus, risk=RiskProfile(limits=(MaxOrderNotional(limit=20_000),)))
    assert {"RiskCheckPassed", "RiskCheckFailed", "OrderDenied"} <= set(seen)


def test_the_vectorized_engine_refuses_a_drawdown_rule_by_name() -> None:
    """Order-level limits run on both engines (tests/risk/test_vectorized_risk.py); the
    drawdown rule acts between orders, inside vectorbt's loop."""
    with pytest.raises(wb.ParameterError, match="vectorized engine cannot reproduce a risk profile with max_drawdown"):
        wb.backtest("sma_crossover", GOOG, engine="vectorized", risk=RiskProfile(limits=(LongOnly(),), max_drawdown=0.1))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MaxOrderNotional(limit=0), "MaxOrderNotional: limit must be a finite number > 0, got limit=0"),
        (lambda: MaxOrdersPerDay(limit=1.5), "MaxOrdersPerDay: limit must be an int >= 1"),
        (lambda: RiskProfile(max_drawdown=1.5), "max_drawdown must be a fraction in \\(0, 1\\)"),
        (lambda: RiskProfile(limits=(LongOnly,)), "each limit must be a limit instance"),
        (lambda: wb.make_spec("sma_crossover", risk="tight"), "risk must be a RiskProfile"),
    ],
)
def test_bad_limits_are_parameter_errors(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(wb.ParameterError, match=message):
        make()


LIMITS = st.one_of(
    st.floats(2_000, 60_000).map(lambda v: MaxOrderNotional(limit=v)),
    st.integers(5, 200).map(lambda v: MaxOrderQuantity(limit=float(v))),
    st.floats(0.2, 1.0).map(lambda v: MaxPositionWeight(limit=v)),
    st.floats(0.2, 1.0).map(lambda v: MaxGrossLeverage(limit=v)),
    st.floats(0.2, 1.0).map(lambda v: MaxNetLeverage(limit=v)),
    st.just(LongOnly()),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(limits=st.lists(LIMITS, min_size=1, max_size=4), fast=st.integers(3, 15), short=st.booleans(),
       size=st.sampled_from(["all", 0.5, 20]))  # fmt: skip
def test_no_filled_order_breaches_a_limit(limits, fast, short, size) -> None:  # type: ignore[no-untyped-def]
    """Checked at the order's expected price (the open it fills at: no slippage here), with
    the account as it stood: an order that opens or adds passes only within every limit."""
    r = wb.backtest("sma_crossover", GOOG, {"fast": fast, "slow": fast * 3, "allow_short": short}, size=size,
                    risk=RiskProfile(limits=tuple(limits)))  # fmt: skip
    fills = r.fills.set_index("order_id")
    q = 0.0
    cash = 10_000.0
    for o in r.orders.itertuples():
        if o.status != "FILLED":
            continue
        f = fills.loc[o.order_id]
        signed = f["quantity"] * (1 if f["side"] == "BUY" else -1)
        q0, q1 = q, q + signed
        equity = cash + q0 * f["price"]
        adds = not (abs(q1) <= abs(q0) + 1e-12 and q0 * q1 >= 0)
        if adds:
            for lim in limits:
                if isinstance(lim, MaxOrderNotional):
                    assert f["quantity"] * f["price"] <= lim.limit * (1 + 1e-9)
                elif isinstance(lim, MaxOrderQuantity):
                    assert f["quantity"] <= lim.limit
                elif isinstance(lim, MaxPositionWeight | MaxGrossLeverage | MaxNetLeverage):
                    assert abs(q1 * f["price"]) / equity <= lim.limit * (1 + 1e-9)
                elif isinstance(lim, LongOnly):
                    assert q1 >= 0
        cash -= signed * f["price"] + f["fee"]
        q = q1
