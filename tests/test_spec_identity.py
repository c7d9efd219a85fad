"""Review fixes of the execution model: ids that cover what computes a run, refusals that
fire before anything runs, and keyword handling. Each case was a silent wrong answer."""

from __future__ import annotations

import functools
import gc
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench import api
from workbench.strategy import indicators as port
from workbench.trading import FixedPerOrder, Instrument, PercentOfNotional


def _rule(window: int):
    return lambda p: (p["Close"] > p["Close"].rolling(window).mean()).astype(float)


def test_redefined_user_code_gets_a_new_id(goog: pd.DataFrame) -> None:
    a = wb.backtest(lambda p: (p["Close"] > p["Close"].rolling(20).mean()).astype(float), goog)
    b = wb.backtest(lambda p: (p["Close"] > p["Close"].rolling(200).mean()).astype(float), goog)
    assert a.equity.iloc[-1] != b.equity.iloc[-1] and a.id != b.id and a.run_id != b.run_id
    assert wb.make_spec(_rule(20)).id != wb.make_spec(_rule(50)).id, "closure values are part of the id"

    class Mine(wb.SMACrossover):
        pass

    class Other(wb.SMACrossover):
        def target(self, prices):  # type: ignore[no-untyped-def]
            return -super().target(prices).clip(upper=0)

    assert wb.make_spec(Mine()).id != wb.make_spec(Other()).id != wb.make_spec(wb.SMACrossover()).id


def test_ids_are_the_same_in_a_fresh_process() -> None:
    code = (
        "import functools, workbench as wb\n"
        "class Sizer:\n"
        "    def __init__(self): self.k = 3\n"
        "    def size(self, price, equity, cash, instrument, cost): return 1.0\n"
        "f = functools.partial(lambda p, w: (p['Close'] > p['Close'].rolling(w).mean()).astype(float), w=10)\n"
        "print(wb.make_spec(f).id, wb.make_spec('sma_crossover', size=Sizer()).id)"
    )
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout for _ in range(2)}
    assert len(runs) == 1, runs


def test_equal_specs_have_equal_ids() -> None:
    base = wb.make_spec("sma_crossover", {"fast": 10})
    assert wb.make_spec("sma_crossover", {"fast": np.int64(10)}).id == base.id
    assert wb.make_spec("sma_crossover", {"fast": 10}, commission=PercentOfNotional(rate=0)).id == base.id
    assert wb.make_spec("sma_crossover", {"fast": 10}, slippage=wb.FixedBps(bps=0)).id == base.id
    assert wb.make_spec("sma_crossover", size=1).id == wb.make_spec("sma_crossover", size=wb.FixedQuantity(quantity=1.0)).id


def test_the_instrument_and_a_pre_trade_check_are_part_of_the_run(goog: pd.DataFrame) -> None:
    whole = wb.make_spec("sma_crossover", instrument=Instrument(ticker="GOOG", exchange="NASDAQ"))
    fractional = wb.make_spec("sma_crossover", instrument=Instrument(ticker="GOOG", exchange="NASDAQ", lot_size=0.001))
    assert whole.id != fractional.id
    free = wb.backtest("sma_crossover", goog)
    vetoed = wb.backtest("sma_crossover", goog, pre_trade_check=lambda o, p, px: "no")
    assert vetoed.stats["n_trades"] == 0 < free.stats["n_trades"]
    assert vetoed.id == free.id and vetoed.run_id != free.run_id, "same spec, different run"


def test_a_swapped_indicator_library_is_a_different_run(goog: pd.DataFrame) -> None:
    talib = port.indicators()

    class Shifted:
        def __getattr__(self, name):  # type: ignore[no-untyped-def]
            return getattr(talib, name)

        def sma(self, close, window):  # type: ignore[no-untyped-def]
            return talib.sma(close, window).shift(1)

    before = wb.backtest("sma_crossover", goog)
    previous = port.use_indicators(Shifted())
    try:
        after = wb.backtest("sma_crossover", goog)
    finally:
        port.use_indicators(previous)
    assert "ta-lib" in before.versions and "indicators" in after.versions
    assert before.run_id != after.run_id


def test_grid_search_uses_the_specs_stat_conventions(goog: pd.DataFrame) -> None:
    kw = {"risk_free_rate": 0.05, "periods_per_year": 52}
    row = wb.grid_search("sma_crossover", goog, {"fast": [5], "slow": [20]}, **kw).iloc[0]
    single = wb.backtest("sma_crossover", goog, {"fast": 5, "slow": 20}, **kw).stats
    assert row["sharpe"] == pytest.approx(single["sharpe"], rel=1e-9)
    assert row["annual_volatility"] == pytest.approx(single["annual_volatility"], rel=1e-9)


def test_a_bound_spec_rerun_on_other_data_trades_the_new_symbol(goog: pd.DataFrame) -> None:
    spx = wb.load_prices("SPX")
    old = wb.backtest("sma_crossover", goog).spec
    new = wb.backtest(old, spx)
    fresh = wb.backtest("sma_crossover", spx)
    assert new.spec.symbols == ("SPX",) and new.spec.instruments == fresh.spec.instruments
    assert new.id == fresh.id and set(new.fills["symbol"]) == {fresh.spec.instruments[0].symbol}


@pytest.mark.parametrize(
    ("symbol", "execution", "message"),
    [
        ("GOOG", {"size": wb.FixedQuantity(quantity=1.5)}, "size 1.5 is not a multiple of lot size 1"),
        ("BTCUSD", {"size": 0.5, "engine": "vectorized"}, "cannot reproduce sizing PercentOfEquity.* on a fractional-lot instrument"),
    ],
)
def test_specs_no_engine_reproduces_exactly_are_refused_before_running(symbol: str, execution: dict, message: str) -> None:
    with pytest.raises(wb.ParameterError, match=message):
        wb.backtest("sma_crossover", symbol, **execution)


def test_subclassed_models_are_user_code(goog: pd.DataFrame) -> None:
    class Half(wb.AllEquity):
        def size(self, price, equity, cash, instrument, cost):  # type: ignore[no-untyped-def]
            seen.append(gc.isenabled())
            return super().size(price, equity / 2, cash, instrument, cost)

    seen: list[bool] = []
    with pytest.raises(wb.ParameterError, match="cannot reproduce sizing"):
        wb.backtest("sma_crossover", goog, size=Half(), engine="vectorized")
    wb.backtest("sma_crossover", goog, size=Half())
    assert seen and all(seen), "a user's sizer runs with the collector on"


def test_a_weights_strategy_on_fractional_lots_is_refused_by_vectorbt(monkeypatch: pytest.MonkeyPatch) -> None:
    panel = wb.load_prices(["SPX", "IXIC"], progress=False)
    monkeypatch.setattr(api, "symbol_instrument", lambda s: Instrument(ticker=s, exchange="X", lot_size=1e-8))
    with pytest.raises(wb.ParameterError, match="weights strategy on fractional-lot instruments"):
        wb.compare_engines("pairs", panel, commission=0.001)
    r = wb.backtest("pairs", panel, commission=0.001)
    held = np.abs(r.positions.to_numpy())
    assert not ((held > 0) & (held < 1e-6)).any(), "a zero weight closes the whole position: no dust"


def test_a_reversal_pays_a_fixed_fee_once(goog: pd.DataFrame) -> None:
    cmp = wb.compare_engines("sma_crossover", goog, {"allow_short": True}, commission=FixedPerOrder(amount=5))
    assert cmp.ok, cmp.report()


def test_hooks_are_checked_before_any_data_is_loaded() -> None:
    with pytest.raises(wb.ParameterError, match="pre_trade_check must be a function"):
        wb.backtest("sma_crossover", "NO-SUCH-SYMBOL", pre_trade_check=5)
    with pytest.raises(wb.ParameterError, match="bus must be an EventBus"):
        wb.backtest("sma_crossover", "NO-SUCH-SYMBOL", bus="x")


def test_a_stored_run_needs_no_pickling(goog: pd.DataFrame) -> None:
    import threading

    class Locked(wb.AllEquity):
        lock = threading.Lock()

    store = wb.MemoryStore()
    r = wb.backtest("sma_crossover", goog, size=Locked(), store=store)
    assert store.load(r.run_id).equity.equals(r.equity)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: wb.check_lookahead("sma_crossover", "GOOG", cut=3), "unknown check_lookahead keyword 'cut'; did you mean 'cuts'"),
        (lambda: wb.compare_engines("sma_crossover", "GOOG", tolerence=1e-6), "did you mean 'tolerance'"),
        (lambda: wb.grid_search("sma_crossover", "GOOG", {"fast": [5]}, sortby="cagr"), "did you mean 'sort_by'"),
        (lambda: wb.backtest("pairs", ["SPX", "IXIC"], instrument=Instrument(ticker="SPX", exchange="X")),
         "instrument= is for a one-instrument strategy"),
    ],
)
def test_keywords_are_checked_with_a_hint(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(wb.ParameterError, match=message):
        call()


def test_grid_search_takes_a_spec(goog: pd.DataFrame) -> None:
    spec = wb.make_spec("sma_crossover", commission=0.001, engine="vectorized")
    out = wb.grid_search(spec, goog, {"fast": [5, 10], "slow": [30]})
    single = wb.backtest(spec, goog, {"fast": 10, "slow": 30})
    row = out.set_index("fast").loc[10]
    assert row["total_return"] == pytest.approx(single.stats["total_return"], rel=1e-9)


def test_functools_partial_strategies_are_named_by_their_function() -> None:
    spec = wb.make_spec(functools.partial(_rule, 20)())
    assert spec.strategy.name.endswith("_rule.<locals>.<lambda>")


def test_a_lazy_module_with_a_missing_extra_is_an_attribute_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real = builtins.__import__

    def no_widgets(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name.startswith("ipywidgets"):
            raise ImportError("no ipywidgets here", name="ipywidgets")
        return real(name, *args, **kwargs)

    for loaded in [m for m in sys.modules if m == "workbench.dashboards" or m.startswith("workbench.dashboards.")]:
        monkeypatch.delitem(sys.modules, loaded)  # the package and its submodules (widgets.py imports ipywidgets)
    monkeypatch.delitem(wb.__dict__, "dashboards", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_widgets)
    assert not hasattr(wb, "dashboards")
    with pytest.raises(AttributeError, match=r"wb.dashboards needs ipywidgets: pip install 'workbench\[notebooks\]'"):
        wb.dashboards  # noqa: B018


def test_failing_subscribers_are_reported_once_after_the_run(goog: pd.DataFrame) -> None:
    bus = wb.EventBus()
    bus.subscribe(wb.trading.events.OrderFilled, lambda e: e.no_such_field)
    with pytest.warns(api.SubscriberWarning, match=r"event subscriber call\(s\) failed during the backtest; first: .*AttributeError"):
        r = wb.backtest("sma_crossover", goog, bus=bus)
    assert bus.failed == len(r.fills) > 0, "each fill's event failed in the subscriber, the run completed"
