"""The risk profile on the vectorized engine: the order-level limits are enforced by
replaying vectorbt's runs through the event engine's own RiskMonitor, so both engines
fill the same orders and write the same risk log; what the replay cannot express exactly
is refused by name. A cash account whose equity reaches zero is called and liquidated on
both engines alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.errors import ParameterError
from workbench.risk.limits import (
    LongOnly,
    MaxGrossLeverage,
    MaxNetLeverage,
    MaxOrderNotional,
    MaxOrderQuantity,
    MaxOrdersPerDay,
    MaxPositionWeight,
)

GOOG = wb.load_prices("GOOG")
LONG_SHORT = {"fast": 10, "slow": 30, "allow_short": True}
PROFILES = {
    "long-only and a quantity cap": (LongOnly(), MaxOrderQuantity(limit=60)),
    "position weight": (MaxPositionWeight(limit=0.5),),
    "orders per day, long-only": (MaxOrdersPerDay(limit=1), LongOnly()),
    "order notional": (MaxOrderNotional(limit=6_000),),
    "leverage": (MaxGrossLeverage(limit=0.55), MaxNetLeverage(limit=0.5)),
}


def always_short(prices: pd.DataFrame) -> pd.Series:
    return pd.Series(-1.0, index=prices.index)


@pytest.mark.parametrize("fill_timing", ["next_open", "signal_close"])
@pytest.mark.parametrize("size", ["all", 20])
@pytest.mark.parametrize("name", list(PROFILES))
def test_both_engines_fill_and_log_the_same(name: str, size: object, fill_timing: str) -> None:
    c = wb.compare_engines("sma_crossover", GOOG, LONG_SHORT, risk=wb.RiskProfile(limits=PROFILES[name]), size=size,
                           cash=10_000, commission=0.001, slippage=wb.FixedBps(bps=2), fill_timing=fill_timing)  # fmt: skip
    assert c.ok, c.report()
    assert "risk log" in c.compared
    ev, vz = c.event.risk, c.vectorized.risk
    assert ev is not None and vz is not None
    assert (ev.passed, ev.denied, ev.reduced) == (vz.passed, vz.denied, vz.reduced)
    pd.testing.assert_frame_equal(ev.events, vz.events, check_exact=False, rtol=1e-9)


def test_the_profiles_above_do_bite() -> None:
    """The comparisons are not of empty logs: each profile denies or cuts orders here."""
    for name, limits in PROFILES.items():
        r = wb.backtest("sma_crossover", GOOG, LONG_SHORT, risk=wb.RiskProfile(limits=limits), size=20,
                        engine="vectorized", commission=0.001)  # fmt: skip
        assert r.risk.denied + r.risk.reduced > 0, name


def test_denied_orders_are_in_the_orders_table_with_the_log_s_ids() -> None:
    r = wb.backtest("sma_crossover", GOOG, LONG_SHORT, risk=wb.RiskProfile(limits=(MaxOrderNotional(limit=6_000),)),
                    size=20, engine="vectorized")  # fmt: skip
    denied = r.orders[r.orders["status"] == "DENIED"]
    log = r.risk.events[r.risk.events["event"] == "RiskCheckFailed"]
    cut = log["detail"].str.contains("cut to the closing")
    assert len(denied) == r.risk.denied > 0 and cut.sum() == r.risk.reduced > 0
    assert list(denied["order_id"]) == list(log.loc[~cut, "order_id"])
    reversed_ = r.orders.set_index("order_id").loc[log.loc[cut, "order_id"]]
    assert (reversed_["status"] == "FILLED").all(), "a reversal over the cap keeps its closing leg"
    assert denied["reason"].str.startswith("risk: MaxOrderNotional").all()
    assert set(r.fills["order_id"]).isdisjoint(denied["order_id"]), "a denied order never fills"
    ids = r.orders["order_id"].str.slice(2).astype(int)
    assert list(ids) == list(range(1, len(ids) + 1)), "one id per order placed, as on the event engine"


def test_long_only_cuts_a_reversal_to_its_closing_leg_on_both_engines() -> None:
    c = wb.compare_engines("sma_crossover", GOOG, LONG_SHORT, risk=wb.RiskProfile(limits=(LongOnly(),)))
    assert c.ok, c.report()
    assert (c.vectorized.positions >= 0).all()
    assert c.vectorized.risk.reduced > 0 and c.vectorized.risk.denied == 0  # only reversals: never flat -> short


@pytest.mark.parametrize("execution", [
    {"size": 40},
    {"size": "all"},
    {"size": 40, "commission": 0.001, "slippage": wb.FixedBps(bps=3)},
    {"size": 40, "fill_timing": "signal_close"},
])  # fmt: skip
def test_a_cash_short_through_a_rally_is_called_alike(execution: dict) -> None:
    c = wb.compare_engines(always_short, GOOG, cash=5_000, **execution)
    assert c.ok, c.report()
    vz = c.vectorized
    assert list(vz.risk.events["event"]) == ["MarginCallTriggered", "PositionLiquidated", "TradingStateChanged"]
    call = vz.risk.events["ts"].iloc[0]
    assert (vz.equity.loc[:call].iloc[:-1] > 0).all() and vz.risk.state == "HALTED"
    after = vz.positions.index > call
    assert (vz.positions[after] == 0).all(), "flat from the next open on"
    assert (vz.equity[after] == vz.equity[after].iloc[0]).all(), "nothing trades after the liquidation"
    liq = vz.orders[vz.orders["tag"] == "liquidation"]
    assert len(liq) == 1 and liq["order_id"].iloc[0] == vz.risk.events["order_id"].iloc[1]


def test_a_short_larger_than_equity_is_rejected_on_both_engines() -> None:
    """vectorbt would sell short whatever it is asked; the cash account forbids a short
    worth more than equity, so the replay rejects it as the broker does."""
    c = wb.compare_engines("sma_crossover", GOOG, LONG_SHORT, size=100, cash=10_000)
    assert c.ok, c.report()
    assert len(c.vectorized.fills) == 0
    rejected = c.vectorized.orders[c.vectorized.orders["status"] == "REJECTED"]
    assert len(rejected) == len(c.event.orders[c.event.orders["status"] == "REJECTED"]) > 0


class _Custom:
    name = "Custom"

    def assess(self, p):  # type: ignore[no-untyped-def]
        return 0.0, None

    def check(self, p):  # type: ignore[no-untyped-def]
        return None


@pytest.mark.parametrize(("profile", "named"), [
    (wb.RiskProfile(limits=(LongOnly(),), max_drawdown=0.2), "max_drawdown=0.2"),
    (wb.RiskProfile(limits=(_Custom(),)), "_Custom"),
])  # fmt: skip
def test_what_the_replay_cannot_express_is_refused_by_name(profile: wb.RiskProfile, named: str) -> None:
    with pytest.raises(ParameterError, match=named):
        wb.backtest("sma_crossover", GOOG, risk=profile, engine="vectorized")


def test_a_profile_on_a_weights_strategy_is_refused_by_name() -> None:
    pair = wb.load_prices(["SPX", "IXIC"], progress=False)

    class Half(wb.PortfolioStrategy):
        def weights(self, panel):  # type: ignore[no-untyped-def]
            return pd.DataFrame(0.5, index=panel.index, columns=["SPX", "IXIC"])

    with pytest.raises(ParameterError, match="weights strategy"):
        wb.backtest(Half(), pair, risk=wb.RiskProfile(limits=(LongOnly(),)), engine="vectorized")


SLICE = GOOG.iloc[:400]


@st.composite
def targets(draw: st.DrawFn) -> pd.Series:
    cuts = sorted(draw(st.lists(st.integers(1, len(SLICE) - 1), min_size=1, max_size=12, unique=True)))
    values = draw(st.lists(st.sampled_from([-1.0, 0.0, 1.0]), min_size=len(cuts) + 1, max_size=len(cuts) + 1))
    out = np.empty(len(SLICE))
    for v, a, b in zip(values, [0, *cuts], [*cuts, len(SLICE)], strict=True):
        out[a:b] = v
    return pd.Series(out, index=SLICE.index)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=targets(), qty_cap=st.integers(10, 80), notional_cap=st.floats(1_000, 12_000), long_only=st.booleans(),
       weight_cap=st.floats(0.2, 1.2), size=st.sampled_from(["all", 15, 40]))  # fmt: skip
def test_no_order_past_a_limit_fills_and_the_logs_agree(target: pd.Series, qty_cap: int, notional_cap: float,
                                                        long_only: bool, weight_cap: float, size: object) -> None:  # fmt: skip
    limits = (MaxOrderQuantity(limit=qty_cap), MaxOrderNotional(limit=notional_cap), MaxPositionWeight(limit=weight_cap))
    profile = wb.RiskProfile(limits=(*limits, LongOnly()) if long_only else limits)
    c = wb.compare_engines(lambda prices: target, SLICE, risk=profile, size=size, cash=10_000, commission=0.001)
    assert c.ok, c.report()
    for r in (c.event, c.vectorized):
        fills = r.fills.merge(r.orders[["order_id", "placed"]], on="order_id")
        opens = SLICE["Open"].reindex(fills["ts"]).to_numpy()
        before = r.positions.shift(1, fill_value=0.0).reindex(fills["ts"]).to_numpy()
        signed = np.where(fills["side"] == "BUY", 1.0, -1.0) * fills["quantity"].to_numpy()
        adds = np.abs(before + signed) > np.abs(before) + 1e-9  # reducing orders are never blocked
        assert (fills["quantity"].to_numpy()[adds] <= qty_cap).all()
        assert (fills["quantity"].to_numpy()[adds] * opens[adds] <= notional_cap * (1 + 1e-12)).all()
        if long_only:
            assert (r.positions >= 0).all()


GRID = {"fast": [5, 20], "slow": [50, 200], "allow_short": [True]}


@pytest.mark.parametrize("execution", [
    {"size": 20, "risk": wb.RiskProfile(limits=(MaxOrderNotional(limit=6_000), LongOnly()))},
    {"size": 40, "cash": 4_500},  # fixed shorts worth more than equity: the account rejects them
    {"size": "all", "cash": 5_000},
])  # fmt: skip
def test_a_grid_search_agrees_with_the_event_engine(execution: dict) -> None:
    keys = ["fast", "slow"]
    vz = wb.grid_search("sma_crossover", GOOG.iloc[:1200], GRID, progress=False, **execution).sort_values(keys)
    ev = wb.grid_search("sma_crossover", GOOG.iloc[:1200], GRID, progress=False, engine="event", **execution).sort_values(keys)
    np.testing.assert_allclose(vz["final_equity"], ev["final_equity"], rtol=1e-9)
    assert list(vz["n_trades"]) == list(ev["n_trades"])


def test_a_weights_short_through_a_rally_is_called_alike() -> None:
    pair = wb.load_prices(["SPX", "IXIC"], progress=False).loc["2002-10-01":]  # IXIC +150% by late 2006

    class ShortIXIC(wb.PortfolioStrategy):
        def weights(self, panel):  # type: ignore[no-untyped-def]
            w = pd.DataFrame(np.nan, index=panel.index, columns=["SPX", "IXIC"])
            w.iloc[0] = [0.0, -1.0]
            return w

    c = wb.compare_engines(ShortIXIC(), pair, cash=10_000)
    assert c.ok, c.report()
    vz = c.vectorized
    call = vz.risk.events["ts"].iloc[0]
    assert vz.risk.state == "HALTED" and (vz.positions.loc[vz.positions.index > call] == 0).all().all()
    assert vz.equity.min() > -100, "without the call vectorbt ran on to about -45,000"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(qty=st.integers(5, 60), start=st.integers(0, 1500), cash=st.floats(2_000, 20_000))
def test_a_margin_call_always_precedes_negative_equity_on_the_vectorized_engine(qty: int, start: int, cash: float) -> None:
    prices = GOOG.iloc[start : start + 600]
    r = wb.backtest(always_short, prices, size=qty, cash=cash, engine="vectorized")
    negative = r.equity[r.equity < 0]
    calls = [] if r.risk is None else list(r.risk.events.loc[r.risk.events["event"] == "MarginCallTriggered", "ts"])
    if len(negative):
        assert calls and calls[0] <= negative.index[0]
    if calls:
        assert (r.positions[r.positions.index > calls[0] + pd.Timedelta(days=5)] == 0).all()


@pytest.mark.parametrize("name", ["order notional", "long-only and a quantity cap"])
def test_the_replay_from_vectorbt_s_state_gives_what_the_carried_account_gave(name: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The one-pass path (account carried by the broker's rules, one vectorbt run) and the
    fallback (decisions from vectorbt's own state, one run per correction) agree."""
    from workbench.engines.vector_risk import SignalWalk

    kw = {"risk": wb.RiskProfile(limits=PROFILES[name]), "size": 20, "commission": 0.001, "engine": "vectorized"}
    carried = wb.backtest("sma_crossover", GOOG, LONG_SHORT, **kw)
    monkeypatch.setattr(SignalWalk, "_carried", lambda self: None)
    replayed = wb.backtest("sma_crossover", GOOG, LONG_SHORT, **kw)
    pd.testing.assert_frame_equal(carried.fills, replayed.fills)
    pd.testing.assert_frame_equal(carried.orders, replayed.orders)
    pd.testing.assert_frame_equal(carried.risk.events, replayed.risk.events)
    assert replayed.native.value().shape == carried.native.value().shape


@pytest.mark.parametrize("size", [wb.VolatilityTarget(target=0.2), wb.ATRRisk(risk=0.02)])
def test_bar_bound_sizers_run_under_a_profile_on_both_engines(size: object) -> None:
    c = wb.compare_engines("sma_crossover", GOOG, LONG_SHORT, size=size, commission=0.001,
                           risk=wb.RiskProfile(limits=(MaxPositionWeight(limit=0.3), LongOnly())))  # fmt: skip
    assert c.ok, c.report()
    assert c.vectorized.risk.denied > 0
