"""The ports of the execution model: BacktestSpec, the Engine port and its one Run type,
the Broker port under the event engine, the ExperimentStore port, refusals by name, and
no hidden global state (the garbage collector)."""

from __future__ import annotations

import dataclasses
import gc
import json

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from tests.trading.fakes import FakeBroker
from workbench import api
from workbench.engines.event import EventEngine
from workbench.strategy.engine import NO_HOOKS, Engine, Hooks, Run
from workbench.strategy.ids import ID_HEX_DIGITS
from workbench.trading import MarginAccount, PerShare, Portfolio


@pytest.fixture(scope="module")
def pair() -> pd.DataFrame:
    return wb.load_prices(["SPX", "IXIC"], progress=False)


# -- BacktestSpec -------------------------------------------------------------------------
def test_a_spec_is_a_frozen_validated_value_with_one_id() -> None:
    a = wb.make_spec("sma_crossover", {"fast": 10, "slow": 30}, commission=0.001)
    b = wb.BacktestSpec(strategy=wb.SMACrossover(fast=10, slow=30), commission=wb.PercentOfNotional(rate=0.001))
    assert a == b and a.id == b.id and len(a.id) == ID_HEX_DIGITS
    assert a.commission == wb.PercentOfNotional(rate=0.001), "costs are values, not repr strings"
    assert a.replace(engine="vectorized").id == a.id, "the id names the experiment, not the engine"
    assert a.replace(commission=0.002).id != a.id and a.replace(cash=20_000).id != a.id
    assert len(a.strategy.spec_id) == ID_HEX_DIGITS, "one id function for strategies and specs"
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.cash = 5.0  # type: ignore[misc]
    json.dumps(a.to_dict())  # plain JSON: what a store saves
    assert a.to_dict()["commission"] == {"model": "PercentOfNotional", "rate": 0.001, "minimum": 0.0}


@pytest.mark.parametrize(
    ("execution", "message"),
    [
        ({"cash": -1}, "cash must be > 0"),
        ({"commision": 0.001}, "unknown backtest keyword 'commision'; did you mean 'commission'"),
        ({"engine": "vectorised"}, "engine must be one of"),
        ({"size": 1.5}, "size must be"),
        ({"slippage": 5}, "slippage must be a slippage model"),
        ({"account": "margin"}, "account must be an account policy"),
    ],
)
def test_a_bad_spec_value_is_a_parameter_error_naming_it(execution: dict, message: str) -> None:
    with pytest.raises(wb.ParameterError, match=message):
        wb.make_spec("sma_crossover", **execution)


def test_the_result_carries_the_bound_spec(goog: pd.DataFrame) -> None:
    r = wb.backtest("sma_crossover", goog, {"fast": 10, "slow": 30})
    assert isinstance(r.spec, wb.BacktestSpec) and r.spec.data is not None
    assert r.spec.symbols == ("GOOG",) and r.spec.data.bars == len(goog)
    assert [i.symbol for i in r.spec.instruments] == [wb.instrument_for("GOOG").symbol]
    again = wb.backtest(r.spec, goog)  # a spec runs as it is
    assert again.id == r.id and again.equity.equals(r.equity)


# -- the Engine port ----------------------------------------------------------------------
class BuyAndHold:
    """A hand-written engine: all cash into the first close, nothing else."""

    name = "buy-and-hold"

    def refusal(self, spec: wb.BacktestSpec, hooks: Hooks) -> str:
        return "" if spec.strategy.kind == "signal" else f"a {spec.strategy.kind} strategy"

    def run(self, spec: wb.BacktestSpec, prices: pd.DataFrame, hooks: Hooks) -> Run:
        close = prices["Close"]
        qty = spec.cash // close.iloc[0]
        equity = (spec.cash - qty * close.iloc[0] + qty * close).rename("equity")
        empty = pd.DataFrame(columns=["pnl"])
        return Run(equity=equity, positions=pd.Series(qty, index=close.index), orders=pd.DataFrame(),
                   fills=pd.DataFrame(), trades=empty)  # fmt: skip


def test_any_engine_plugs_into_the_composition_root(goog: pd.DataFrame, pair: pd.DataFrame,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    assert isinstance(BuyAndHold(), Engine)
    assert all(isinstance(e, Engine) for e in wb.ENGINES.values())
    monkeypatch.setitem(api.ENGINES, "buy-and-hold", BuyAndHold())
    r = wb.backtest("sma_crossover", goog, engine="buy-and-hold")
    assert r.spec.engine == "buy-and-hold" and r.equity.iloc[-1] > r.equity.iloc[0]
    with pytest.raises(wb.ParameterError, match="the buy-and-hold engine cannot reproduce a weights strategy"):
        wb.backtest("pairs", pair, engine="buy-and-hold")


class BookingBroker(FakeBroker):
    """The hand-written fake broker, booking its fills into the engine's portfolio."""

    def __init__(self, portfolio: Portfolio) -> None:
        super().__init__(cash=portfolio.cash, currency=portfolio.currency)
        self.portfolio = portfolio

    def on_bar(self, instrument, bar, at_close=False):  # type: ignore[no-untyped-def]
        fills = super().on_bar(instrument, bar, at_close)
        for f in fills:
            self.portfolio.apply(f)
        return fills


def test_the_event_engine_uses_only_the_broker_port(goog: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(api.ENGINES, "event-on-fake", EventEngine(lambda portfolio, spec, hooks: BookingBroker(portfolio)))
    fake = wb.backtest("sma_crossover", goog, {"fast": 10, "slow": 30}, engine="event-on-fake")
    real = wb.backtest("sma_crossover", goog, {"fast": 10, "slow": 30})
    assert isinstance(fake.native, FakeBroker) and len(fake.fills) == len(real.fills) > 10
    cols = ["ts", "side", "quantity", "price"]
    pd.testing.assert_frame_equal(fake.fills[cols], real.fills[cols])
    np.testing.assert_allclose(fake.equity.to_numpy(), real.equity.to_numpy(), rtol=1e-12)
    assert fake.fills["fill_id"].str.startswith("FF-").all()


# -- refusals by name: the engines never disagree silently ----------------------------------
def test_pairs_with_slippage_is_refused_by_name_not_approximated(pair: pd.DataFrame) -> None:
    """The case of the issue: 483 fills on the event engine vs 467 on vectorbt at 1 bp,
    reported as 43 differences and no error. Now the vectorized engine refuses it."""
    with pytest.raises(wb.ParameterError, match=r"vectorized engine cannot reproduce slippage FixedBps\(bps=1.0\) for weight strategies"):
        wb.compare_engines("pairs", pair, slippage=wb.FixedBps(bps=1))
    ev = wb.backtest("pairs", pair, slippage=wb.FixedBps(bps=1))  # the event engine runs it
    for sym in ("SPX", "IXIC"):
        f = ev.fills[ev.fills["symbol"].str.startswith(sym + ".")]
        bars = pair[sym].loc[f["ts"]]
        assert len(f) and (f["price"].to_numpy() <= bars["High"].to_numpy()).all()
        assert (f["price"].to_numpy() >= bars["Low"].to_numpy()).all()
    assert wb.compare_engines("pairs", pair, commission=0.001).ok


@pytest.mark.parametrize(
    ("execution", "feature"),
    [
        ({"commission": PerShare(rate=0.01)}, "commission PerShare"),
        ({"slippage": wb.VolumeShare()}, "slippage VolumeShare"),
        ({"account": MarginAccount(initial_margin=0.5, maintenance_margin=0.25)}, "account MarginAccount"),
    ],
)
def test_the_vectorized_engine_refuses_what_it_cannot_reproduce(goog: pd.DataFrame, execution: dict,
                                                                 feature: str) -> None:  # fmt: skip
    with pytest.raises(wb.ParameterError, match=f"the vectorized engine cannot reproduce {feature}"):
        wb.backtest("sma_crossover", goog, engine="vectorized", **execution)
    wb.backtest("sma_crossover", goog, **execution)  # the event engine expresses all of them


def test_hooks_are_refused_by_the_vectorized_engine(goog: pd.DataFrame) -> None:
    with pytest.raises(wb.ParameterError, match="cannot reproduce an event bus"):
        wb.backtest("sma_crossover", goog, engine="vectorized", bus=wb.EventBus())


def test_a_margin_account_lets_the_event_engine_lever_up(goog: pd.DataFrame) -> None:
    kw = {"cash": 3_000, "size": 20}  # 20 GOOG shares cost 1,000 to 16,000 over the sample
    cash = wb.backtest("sma_crossover", goog, **kw)
    margin = wb.backtest("sma_crossover", goog, **kw, account=MarginAccount(initial_margin=0.5, maintenance_margin=0.25))
    rejected = [int((r.orders["status"] == "REJECTED").sum()) for r in (cash, margin)]
    assert rejected[0] > rejected[1], rejected
    assert margin.equity.iloc[-1] > 2 * cash.equity.iloc[-1], "leverage let it trade from the start"
    big = wb.backtest("sma_crossover", goog, cash=3_000, size=60, account=MarginAccount(0.5, 0.25))
    assert big.orders["reason"].str.contains("x initial margin 0.5").any()


# -- the ExperimentStore port ---------------------------------------------------------------
def test_a_memory_store_keeps_runs_by_run_id_and_spec_id(goog: pd.DataFrame) -> None:
    store = wb.MemoryStore()
    assert isinstance(store, wb.ExperimentStore)
    ev = wb.backtest("sma_crossover", goog, store=store)
    vz = wb.backtest("sma_crossover", goog, engine="vectorized", store=store)
    assert store.runs() == [ev.run_id, vz.run_id] and store.runs(ev.id) == [ev.run_id, vz.run_id] and ev.id == vz.id
    assert store.load(ev.id).spec.engine == "vectorized", "a spec id loads its latest run"
    assert store.save(ev) == ev.run_id and store.runs() == [vz.run_id, ev.run_id], "saved again: the latest, kept once"
    loaded = store.load(ev.run_id)
    assert loaded.spec == ev.spec and loaded.equity.equals(ev.equity) and loaded.fills.equals(ev.fills)
    assert loaded.native is None, "engine objects are not stored"
    loaded.equity.iloc[0] = -1.0
    assert store.load(ev.run_id).equity.equals(ev.equity), "a loaded copy cannot change the store"
    assert store.load(ev.id).spec.engine == "event"
    with pytest.raises(wb.RunNotFoundError, match="no stored run has run id or spec id 'nope'"):
        store.load("nope")


# -- no hidden global state -----------------------------------------------------------------
def test_user_code_never_runs_with_the_collector_off(goog: pd.DataFrame) -> None:
    seen: list[bool] = []

    class Probe(wb.BarStrategy):
        def on_bar(self, ctx):  # type: ignore[no-untyped-def]
            seen.append(gc.isenabled())
            if ctx.i == 100:
                ctx.target(1)

    wb.backtest(Probe(), goog)
    bus = wb.EventBus()
    bus.subscribe(wb.trading.events.Event, lambda e: seen.append(gc.isenabled()))
    wb.backtest("sma_crossover", goog, bus=bus)
    wb.backtest("sma_crossover", goog, pre_trade_check=lambda o, p, px: seen.append(gc.isenabled()) or "")
    assert len(seen) > len(goog) and all(seen)
    assert gc.isenabled()


def test_the_engine_loop_pauses_the_collector_and_restores_it_on_error(goog: pd.DataFrame,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from workbench.engines import event

    states: list[bool] = []
    real = event.rebalance_to_target

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        states.append(gc.isenabled())
        raise RuntimeError("boom")

    monkeypatch.setattr(event, "rebalance_to_target", failing)
    with pytest.raises(RuntimeError, match="boom"):
        wb.backtest("sma_crossover", goog)
    assert states == [False] and gc.isenabled(), "paused inside the engine's own loop, restored after"
    monkeypatch.setattr(event, "rebalance_to_target", real)
    gc.disable()
    try:
        wb.backtest("sma_crossover", goog)
        assert not gc.isenabled(), "a caller's own choice is left as it was"
    finally:
        gc.enable()


def test_run_uses_no_hooks_by_default() -> None:
    assert not NO_HOOKS.any and Hooks(bus=wb.EventBus()).any


def test_limit_and_stop_prices_must_be_on_the_tick_grid(goog: pd.DataFrame) -> None:
    class OffTick(wb.BarStrategy):
        def on_bar(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.i == 50:
                ctx.buy(1, order_type="limit", limit_price=ctx.price * 0.97)

    with pytest.raises(wb.ParameterError, match=r"limit_price must be a multiple of tick size 0.01 for GOOG"):
        wb.backtest(OffTick(), goog)

    class OnTick(wb.BarStrategy):
        def on_bar(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.i == 50:
                ctx.buy(1, order_type="limit", limit_price=ctx.round_price(ctx.price * 0.97))

    assert len(wb.backtest(OnTick(), goog).orders) == 1
