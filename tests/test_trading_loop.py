"""The trading loop on the paper broker: replay equals the backtest, restarts lose nothing,
the deploy rule, pausing, settlements and refusals (issue 14)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.adapters.eventlog import SQLiteEventLog
from workbench.errors import ParameterError, StrategyStateError
from workbench.risk.limits import LongOnly, MaxGrossLeverage, MaxOrderQuantity, MaxPositionWeight
from workbench.risk.profile import RiskProfile
from workbench.strategies import BUILTINS, SMACrossover
from workbench.strategy.store import RunNotFoundError
from workbench.trade import approve, deploy, notify_to_file, trade
from workbench.trading.eventlog import EventLogConflict, MemoryEventLog
from workbench.trading.venue import client_order_id

FILL_COLUMNS = ["side", "quantity", "price", "fee", "ts"]


@pytest.fixture(scope="module")
def goog_short(goog: pd.DataFrame) -> pd.DataFrame:
    out = goog.iloc[:600].copy()
    out.attrs.update(goog.attrs)
    return out


def _testing(name: str, params: dict | None = None) -> wb.Strategy:
    strategy = BUILTINS[name](**(params or {}))
    strategy.start_testing()
    return strategy


def _replay(name: str, prices, params: dict | None = None, log=None, session: str = "s", **kw):
    """The stored backtest and the paper session of the same spec on the same bars."""
    store = wb.MemoryStore()
    result = wb.backtest(name, prices, params, store=store, **kw)
    sess = trade(_testing(name, params), prices, approval=approve(result, by="risk desk"), store=store,
                 log=log or MemoryEventLog(), session=session, **kw)  # fmt: skip
    return result, sess


def assert_same(result, sess) -> None:
    """Fill for fill (side, quantity, price, fee, time) and the equity curve, exactly."""
    bf, lf = result.fills.reset_index(drop=True), sess.fills.reset_index(drop=True)
    assert len(bf) == len(lf) > 0
    pd.testing.assert_frame_equal(bf[FILL_COLUMNS], lf[FILL_COLUMNS])
    np.testing.assert_array_equal(result.equity.to_numpy(), sess.equity.to_numpy())
    assert list(result.equity.index) == list(sess.equity.index)


# -- replay = backtest ---------------------------------------------------------------------
@pytest.mark.parametrize(("name", "params", "kw"), [
    ("sma_crossover", {"fast": 10, "slow": 30}, {"commission": 0.001}),
    ("sma_crossover", {"fast": 5, "slow": 20}, {"commission": 0.001, "fill_timing": "SIGNAL_CLOSE",
                                                "slippage": wb.FixedBps(bps=5), "size": 0.5}),
    ("ema_crossover", None, {"commission": 0.0005}),
    ("sma_crossover", {"fast": 5, "slow": 20, "allow_short": True},
     {"risk": RiskProfile(limits=(MaxPositionWeight(limit=0.6), MaxGrossLeverage(limit=1.0)),
                          max_drawdown=0.1, drawdown_action="HALT"), "size": 0.5}),
    ("sma_crossover", {"fast": 5, "slow": 20}, {"risk": RiskProfile(max_drawdown=0.05)}),  # REDUCE: denials
])  # fmt: skip
def test_replay_through_the_loop_equals_the_backtest(goog_short, name, params, kw):
    result, sess = _replay(name, goog_short, params, **kw)
    assert_same(result, sess)
    if result.risk is not None:
        assert sess.loop.monitor.state.value == result.risk.state
        denied = int((result.orders["status"] == "DENIED").sum())
        assert denied == int((sess.orders["status"] == "DENIED").sum())


def test_replay_of_a_portfolio_strategy_equals_the_backtest(four):
    panel = four.iloc[:500]
    result, sess = _replay("xs_momentum", panel, None, commission=0.001)
    assert_same(result, sess)
    assert list(result.positions.columns) == [i.symbol for i in sess.loop.instruments]
    last = {i.symbol: sess.loop.portfolio.quantity(i) for i in sess.loop.instruments}
    assert last == result.positions.iloc[-1].to_dict()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fast=st.integers(2, 15), gap=st.integers(1, 30), bps=st.floats(0, 30), close=st.booleans(),
       short=st.booleans())  # fmt: skip
def test_replay_equals_backtest_for_any_parameters(goog_short, fast, gap, bps, close, short):
    kw = {"commission": bps / 1e4, "fill_timing": "SIGNAL_CLOSE" if close else "NEXT_OPEN"}
    params = {"fast": fast, "slow": fast + gap, "allow_short": short}
    result, sess = _replay("sma_crossover", goog_short.iloc[:300], params, **kw)
    if len(result.fills):
        assert_same(result, sess)
    else:
        assert sess.fills.empty


# -- restarts --------------------------------------------------------------------------------
class Crash(Exception):
    """Stands in for the process dying at a fault point (the loop object is thrown away)."""


POINTS = ["bar_logged", "intent_logged", "submitted", "fills_received", "step_logged"]


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("nth", [1, 7])
def test_a_crash_at_any_point_then_a_restart_reproduces_the_uninterrupted_run(goog_short, tmp_path, point, nth):
    params, kw = {"fast": 5, "slow": 20}, {"commission": 0.001}
    reference, _ = _replay("sma_crossover", goog_short, params, **kw)
    log = SQLiteEventLog(tmp_path / "log.sqlite")
    seen = {"n": 0}

    def faults(p: str) -> None:
        if p == point:
            seen["n"] += 1
            if seen["n"] == nth:
                raise Crash(p)

    store = wb.MemoryStore()
    store.save(reference)
    with pytest.raises(Crash):
        trade(_testing("sma_crossover", params), goog_short, approval=approve(reference, by="r"), store=store,
              log=log, session="s", faults=faults, **kw)  # fmt: skip
    resumed = trade(_testing("sma_crossover", params), goog_short, approval=approve(reference, by="r"),
                    store=store, log=SQLiteEventLog(tmp_path / "log.sqlite"), session="s", **kw)  # fmt: skip
    assert_same(reference, resumed)
    assert resumed.loop.reconciliations[0].ok and not resumed.loop.reconciliations[0].problems()
    records = log.read("s")
    keys = [r.key for r in records]
    assert len(keys) == len(set(keys))
    assert [r.seq for r in records] == list(range(len(records)))
    intents = [r.data["client_id"] for r in records if r.kind == "intent"]
    assert len(intents) == len(set(intents)) == len(reference.orders)


def test_resuming_in_pieces_equals_one_run(goog_short, tmp_path):
    params = {"fast": 5, "slow": 20}
    reference, _ = _replay("sma_crossover", goog_short, params)
    store = wb.MemoryStore()
    store.save(reference)
    log = SQLiteEventLog(tmp_path / "log.sqlite")
    for _ in range(5):
        sess = trade(_testing("sma_crossover", params), goog_short, approval=approve(reference, by="r"),
                     store=store, log=log, session="pieces", max_steps=137)  # fmt: skip
    assert sess.loop.steps == len(goog_short)
    assert_same(reference, sess)
    assert sess.steps_run == len(goog_short) - 4 * 137


def test_a_session_refuses_another_strategy_or_other_bars(goog_short):
    log = MemoryEventLog()
    _replay("sma_crossover", goog_short.iloc[:200], {"fast": 5, "slow": 20}, log=log, session="x")
    with pytest.raises(ParameterError, match="was started with SMACrossover"):
        _replay("sma_crossover", goog_short.iloc[:200], {"fast": 6, "slow": 20}, log=log, session="x")
    longer = goog_short.iloc[:260].copy()
    longer.attrs.update(goog_short.attrs)
    _, sess = _replay("sma_crossover", longer, {"fast": 5, "slow": 20}, log=log, session="x")
    assert sess.steps_run == 60  # resumed after its last logged bar: the log is what the session knows
    logged = next(r for r in log.read("x") if r.kind == "bar")
    with pytest.raises(EventLogConflict, match=re.escape(logged.key)):  # a replay that would log another bar there stops
        log.append("x", [type(logged)(kind="bar", key=logged.key, ts=logged.ts, data={"bars": [[1, 1, 1, 1, 1]]})])


# -- the deploy rule -----------------------------------------------------------------------------
def test_deploy_needs_testing_an_approval_of_a_stored_run_and_the_same_profile(goog_short):
    store = wb.MemoryStore()
    result = wb.backtest("sma_crossover", goog_short, {"fast": 5, "slow": 20}, store=store)
    spec = result.spec
    draft = SMACrossover(fast=5, slow=20)
    with pytest.raises(StrategyStateError, match="only a TESTING strategy"):
        deploy(spec.replace(strategy=draft), approve(result, by="r"), store)
    testing = _testing("sma_crossover", {"fast": 5, "slow": 20})
    with pytest.raises(StrategyStateError, match="no risk approval"):
        deploy(spec.replace(strategy=testing), None, store)
    with pytest.raises(StrategyStateError, match="approval is for strategy id"):
        deploy(spec.replace(strategy=_testing("sma_crossover", {"fast": 6, "slow": 20})), approve(result, by="r"), store)
    with pytest.raises(StrategyStateError, match="under risk profile"):
        deploy(spec.replace(strategy=testing, risk=RiskProfile(limits=(LongOnly(),))), approve(result, by="r"), store)
    with pytest.raises(RunNotFoundError):
        deploy(spec.replace(strategy=testing), approve(result, by="r"), wb.MemoryStore())
    with pytest.raises(ParameterError, match="approved_by"):
        approve(result, by=" ")
    session_run = result.__class__(**{**result.__dict__, "spec": spec.replace(engine="paper")})
    store.save(session_run)
    with pytest.raises(StrategyStateError, match="trading session, not a backtest"):
        deploy(spec.replace(strategy=testing), approve(session_run, by="r"), store)
    deploy(spec.replace(strategy=testing), approve(result, by="r"), store)
    assert testing.status is wb.StrategyStatus.LIVE
    assert "risk approval by r" in testing.events[-1].reason
    deploy(spec.replace(strategy=testing), None, store)  # LIVE stays LIVE under its approved profile
    with pytest.raises(StrategyStateError, match="went live under risk profile None"):
        deploy(spec.replace(strategy=testing, risk=RiskProfile(limits=(LongOnly(),))), None, store)


def test_the_loop_refuses_what_it_cannot_run(goog_short):
    store = wb.MemoryStore()
    with pytest.raises(ParameterError, match="FLATTEN"):
        _replay("sma_crossover", goog_short.iloc[:100], None, risk=RiskProfile(max_drawdown=0.1, drawdown_action="FLATTEN"))
    with pytest.raises(ParameterError, match="cash account"):
        _replay("sma_crossover", goog_short.iloc[:100], None, account=wb.MarginAccount(initial_margin=0.5, maintenance_margin=0.25))
    with pytest.raises(ParameterError, match="broker must be"):
        r = wb.backtest("sma_crossover", goog_short.iloc[:100], store=store)
        trade(_testing("sma_crossover"), goog_short.iloc[:100], approval=approve(r, by="r"), store=store,
              log=MemoryEventLog(), broker="ib")  # fmt: skip


# -- lifecycle: pause -------------------------------------------------------------------------------
@pytest.mark.parametrize("on_pause", ["cancel", "keep"])
def test_pausing_cancels_or_keeps_working_orders_and_stops_deciding(goog_short, on_pause):
    kw = {"slippage": wb.VolumeShare(volume_limit=1e-5, price_impact=0.0), "cash": 1e6}  # orders fill over many bars
    store = wb.MemoryStore()
    result = wb.backtest("sma_crossover", goog_short, {"fast": 5, "slow": 20}, store=store, **kw)
    strategy = _testing("sma_crossover", {"fast": 5, "slow": 20})
    sess = trade(strategy, goog_short, approval=approve(result, by="r"), store=store,
                 log=MemoryEventLog(), session="p", on_pause=on_pause, max_steps=60, **kw)  # fmt: skip
    loop = sess.loop
    working = [o for o in loop.venue.open_orders]
    assert working, "a volume-capped order is still working after 60 bars"
    decisions = sum(1 for r in loop.log.read("p") if r.kind == "decision")
    loop.pause(reason="review")
    assert strategy.status is wb.StrategyStatus.PAUSED
    assert all(o.is_terminal for o in working) == (on_pause == "cancel")
    loop.run()
    assert sum(1 for r in loop.log.read("p") if r.kind == "decision") == decisions  # no new decisions
    status = [r for r in loop.log.read("p") if r.kind == "status"]
    assert status[-1].data["new"] == "PAUSED"
    if on_pause == "keep":
        assert len(sess.fills) > len([f for f in sess.fills.itertuples() if f.ts <= goog_short.index[59]])


# -- end of day ---------------------------------------------------------------------------------------
def test_settlements_each_day_sum_to_the_equity_change_and_are_notified(goog_short, tmp_path):
    path = tmp_path / "notifications.log"
    store = wb.MemoryStore()
    prices = goog_short.iloc[:120]
    result = wb.backtest("sma_crossover", prices, {"fast": 5, "slow": 20}, store=store)
    sess = trade(_testing("sma_crossover", {"fast": 5, "slow": 20}), prices, approval=approve(result, by="r"),
                 store=store, log=MemoryEventLog(), notify=notify_to_file(path))  # fmt: skip
    snaps = sess.settlements
    assert len(snaps) == len(prices) - 1  # each day settles when the next one starts
    assert sum(s["pnl"] for s in snaps) == pytest.approx(result.equity.iloc[-2] - result.spec.cash, rel=1e-12)
    assert [s["equity"] for s in snaps] == pytest.approx(result.equity.iloc[:-1].tolist(), rel=1e-12)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["day"] for x in lines] == [s["day"] for s in snaps]


# -- client order ids ----------------------------------------------------------------------------------
def test_client_order_ids_are_deterministic_short_and_distinct():
    t = pd.Timestamp("2024-01-02", tz="UTC")
    a = client_order_id("sess|abc", "", t, 1)
    assert a == client_order_id("sess|abc", "", pd.Timestamp("2024-01-02"), 1)  # naive = UTC
    others = {client_order_id("sess|abc", "", t, 2), client_order_id("sess|abd", "", t, 1),
              client_order_id("sess|abc", "", t + pd.Timedelta("1D"), 1)}  # fmt: skip
    assert a not in others and len(others) == 3
    assert len(a) <= 32 and a.replace("-", "").isalnum()


def test_a_session_is_a_run_with_the_backtests_tables_and_stats(goog_short):
    result, sess = _replay("sma_crossover", goog_short, {"fast": 5, "slow": 20}, commission=0.001)
    run = sess.result()
    assert run.spec.engine == "paper" and run.spec.strategy is sess.loop.spec.strategy
    assert run.spec.data.sha256 == result.spec.data.sha256 and run.run_id != result.run_id
    pd.testing.assert_series_equal(run.positions, result.positions)
    pd.testing.assert_series_equal(run.stats, result.stats)
    store = wb.MemoryStore()
    assert store.load(sess.save(store)).stats.equals(result.stats)


@pytest.mark.parametrize("nth", [1, 3])  # the intents that follow a denied leg of their rebalance
def test_a_restart_inside_a_rebalance_with_denied_legs_reuses_no_order_id(four, tmp_path, nth):
    """A portfolio rebalance whose buy legs the profile denies: a crash after a later leg's
    intent, then a restart, numbers the re-executed orders after the denied ones (a reused
    id would take the denial's event on the next restart)."""
    panel = four.iloc[:400]
    kw = {"commission": 0.001, "risk": RiskProfile(limits=(MaxOrderQuantity(limit=20),))}
    reference, _ = _replay("xs_momentum", panel, None, **kw)
    assert (reference.orders["status"] == "DENIED").any()
    store = wb.MemoryStore()
    store.save(reference)
    seen = {"n": 0}

    def faults(p: str) -> None:
        if p == "intent_logged":
            seen["n"] += 1
            if seen["n"] == nth:
                raise Crash(p)

    log = SQLiteEventLog(tmp_path / "log.sqlite")
    run = dict(approval=approve(reference, by="r"), store=store, log=log, session="w", **kw)
    with pytest.raises(Crash):
        trade(_testing("xs_momentum"), panel, faults=faults, **run)
    trade(_testing("xs_momentum"), panel, max_steps=1, **run)  # a second restart reads the first one's records
    resumed = trade(_testing("xs_momentum"), panel, **run)
    assert_same(reference, resumed)
    records = log.read("w")
    intents = [r.data["client_id"] for r in records if r.kind == "intent"]
    denied = [r.data["order_id"] for r in records if r.kind == "event" and r.data["type"] == "OrderDenied"]
    assert len(set(intents)) == len(intents) and not set(intents) & set(denied)
    statuses = resumed.loop.restored_orders
    assert not any(o.status.name == "DENIED" for o in statuses.values())
