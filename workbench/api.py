"""The composition root: use cases the notebooks call, wired to engines, brokers and stores.

``backtest`` builds a :class:`~workbench.strategy.spec.BacktestSpec` (:func:`make_spec`),
picks the :class:`~workbench.strategy.engine.Engine` it names, asks it whether it can
reproduce the spec exactly, binds the spec to validated bars and runs it (:func:`run`).
Every other use case (``compare_engines``, ``grid_search``, the look-ahead guard, the
notebooks) goes through the same two functions.
"""

from __future__ import annotations

import difflib
import platform
import time
import warnings
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from workbench.adapters import indicators as talib_indicators
from workbench.config import store_path
from workbench.data import instrument_for, load_prices
from workbench.engines.event import EventEngine
from workbench.engines.vectorized import VectorizedEngine
from workbench.errors import ParameterError, UnknownSymbolError
from workbench.market import validate_ohlcv
from workbench.risk.events import LimitBreached
from workbench.risk.monitor import drift_breaches
from workbench.strategies import BUILTINS
from workbench.strategy.base import FunctionStrategy, Strategy
from workbench.strategy.engine import NO_HOOKS, Engine, Hooks, check_supported
from workbench.strategy.ids import describe, stable_id
from workbench.strategy.indicators import indicators
from workbench.strategy.metrics import returns_from_equity, summary
from workbench.strategy.result import BacktestResult
from workbench.strategy.spec import BacktestSpec, DataId
from workbench.strategy.store import ExperimentStore
from workbench.trading.broker import PreTradeCheck
from workbench.trading.events import EventBus
from workbench.trading.sizing import FixedQuantity
from workbench.trading.values import Instrument

__all__ = ["backtest", "run", "make_spec", "check_keywords", "SubscriberWarning", "prepare_prices", "bind", "engine_for", "resolve_strategy",
           "STRATEGIES", "ENGINES", "EXECUTION_KEYWORDS"]  # fmt: skip

STRATEGIES: dict[str, type[Strategy]] = dict(BUILTINS)
ENGINES: dict[str, Engine] = {"event": EventEngine(), "vectorized": VectorizedEngine()}

#: The keywords every use case accepts for the spec (``size`` is the spec's ``sizer``,
#: ``instrument`` its one instrument).
EXECUTION_KEYWORDS = ("cash", "commission", "slippage", "size", "fill_timing", "cost_basis", "account", "risk",
                      "engine", "instrument", "risk_free_rate", "periods_per_year")  # fmt: skip


def resolve_strategy(strategy: str | type[Strategy] | Strategy, params: dict[str, Any] | None) -> Strategy:
    """A Strategy instance from a name, a class or an instance (+ params)."""
    params = dict(params or {})
    if isinstance(strategy, FunctionStrategy):
        return FunctionStrategy(fn=strategy.fn, kwargs=tuple(sorted({**strategy.params, **params}.items())))
    if isinstance(strategy, Strategy):
        if params:
            return type(strategy)(**{**strategy.params, **params})
        return strategy
    if isinstance(strategy, str):
        key = strategy.strip().lower()
        if key not in STRATEGIES:
            raise ParameterError(
                f"unknown strategy {strategy!r}; known: {', '.join(sorted(STRATEGIES))}"
            )
        strategy = STRATEGIES[key]
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        try:
            return strategy(**params)
        except TypeError as exc:
            raise ParameterError(f"{strategy.__name__}: {exc}") from None
    if callable(strategy) and not isinstance(strategy, type):
        return FunctionStrategy(fn=strategy, kwargs=tuple(sorted(params.items())))
    raise ParameterError(
        f"strategy must be a name, a Strategy class or instance, or a function, got {strategy!r}"
    )


def make_spec(strategy: str | type[Strategy] | Strategy | BacktestSpec, params: dict[str, Any] | None = None,
              **execution: Any) -> BacktestSpec:  # fmt: skip
    """A validated :class:`BacktestSpec` from a strategy (name, class, instance or function),
    its params and any of :data:`EXECUTION_KEYWORDS`. A spec passed in is returned with
    the given changes. Every value is checked here, before any data is loaded.

    >>> make_spec("sma_crossover", {"fast": 5, "slow": 20}, commission=0.001).label
    "SMACrossover {'fast': 5, 'slow': 20, 'allow_short': False} on unbound data"
    """
    check_keywords(execution, "backtest")
    fields = dict(execution)
    if "size" in fields:
        fields["sizer"] = fields.pop("size")
    if "instrument" in fields:
        inst = fields.pop("instrument")
        fields["instruments"] = () if inst is None else (inst,)
    if isinstance(strategy, BacktestSpec):
        if params:
            fields["strategy"] = resolve_strategy(strategy.strategy, params)
        spec = strategy.replace(**fields) if fields else strategy
    else:
        spec = BacktestSpec(strategy=resolve_strategy(strategy, params), **fields)
    if spec.strategy.kind == "weights" and execution.get("instrument") is not None:
        raise ParameterError(f"instrument= is for a one-instrument strategy; {spec.strategy.name} trades "
                             "one instrument per panel symbol")  # fmt: skip
    engine_for(spec.engine)
    return spec


def check_keywords(execution: dict[str, Any], where: str, own: tuple[str, ...] = ()) -> None:
    """Refuse a keyword that is neither a spec field nor one of ``where``'s own, with the
    closest known one as a hint (``tolerence`` -> ``tolerance``, ``comission`` ->
    ``commission``)."""
    known = (*own, *EXECUTION_KEYWORDS)
    unknown = sorted(set(execution) - set(known))
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
        raise ParameterError(f"unknown {where} keyword {unknown[0]!r}{hint}")


def engine_for(name: str) -> Engine:
    if name not in ENGINES:
        raise ParameterError(f"engine must be one of {tuple(ENGINES)}, got {name!r}")
    return ENGINES[name]


def versions(engine: str, strat: Strategy) -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
           **_indicator_version()}  # fmt: skip
    try:
        out["workbench"] = metadata.version("workbench")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
        out["workbench"] = "unknown"
    if engine == "vectorized":
        from workbench.engines.vectorized import vbt_engine, vbt_version

        out["vectorbt"] = f"{vbt_version()} ({vbt_engine()})"
    for lib in strat.libraries:
        out[lib] = metadata.version(lib)
    return out


def _indicator_version() -> dict[str, str]:
    """The indicator library the strategies computed with: TA-Lib's version for the
    default one, else the library's name and a fingerprint of its code (a swapped library
    is a different run)."""
    lib = indicators()
    if lib is talib_indicators:
        return {"ta-lib": talib_indicators.talib_version}
    return {"indicators": stable_id(describe(lib))}


def symbol_instrument(symbol: str) -> Instrument:
    try:
        return instrument_for(symbol)
    except UnknownSymbolError:
        return Instrument(ticker=symbol.replace("@", "-"), exchange="USER")


def prepare_prices(strat: Strategy, prices: pd.DataFrame | str | list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Validated bars: one OHLCV frame (signal strategies) or a (symbol, field) panel."""
    if isinstance(prices, str | list | tuple):
        if strat.kind == "weights" and isinstance(prices, str):
            raise ParameterError(f"{strat.name} trades several symbols: pass a panel or a list of symbols")
        prices = load_prices(prices if strat.kind == "weights" else prices, progress=False)
    if not isinstance(prices, pd.DataFrame):
        raise ParameterError(f"prices must be an OHLCV DataFrame, a panel or symbols, got {type(prices).__name__}")
    if strat.kind == "weights":
        if not isinstance(prices.columns, pd.MultiIndex):
            raise ParameterError(f"{strat.name} needs a (symbol, field) panel, e.g. wb.load_prices(['SPX', 'IXIC'])")
        symbols = [str(s) for s in dict.fromkeys(prices.columns.get_level_values(0))]
        for sym in symbols:
            sub = prices[sym]
            if sub[["Open", "High", "Low", "Close"]].isna().any().any():
                raise ParameterError(f"panel symbol {sym} has gaps; load it with align='intersection' or 'ffill'")
            validate_ohlcv(sub, name=sym)
        return prices, symbols
    if isinstance(prices.columns, pd.MultiIndex):
        raise ParameterError(f"{strat.name} trades one instrument: pass one OHLCV frame, not a panel")
    symbol = str(prices.attrs.get("symbol", "ASSET"))
    return validate_ohlcv(prices, name=symbol), [symbol]


def data_id(prices: pd.DataFrame, symbols: list[str]) -> DataId:
    """The bars' identity: span, length and the SHA-256 of their OHLCV values."""
    from workbench.adapters.store import content_hash

    frames = [prices] if len(symbols) == 1 and not isinstance(prices.columns, pd.MultiIndex) else [prices[s] for s in symbols]
    hashes = [content_hash(f[["Open", "High", "Low", "Close", "Volume"]]) for f in frames]
    return DataId(
        symbols=tuple(symbols),
        start=str(prices.index[0]),
        end=str(prices.index[-1]),
        bars=len(prices),
        sha256=hashes[0] if len(hashes) == 1 else stable_id({"sha256": hashes}),
        source=str(prices.attrs.get("source", "user")),
    )


def bind(spec: BacktestSpec, prices: pd.DataFrame, symbols: list[str]) -> BacktestSpec:
    """``spec`` on these validated bars: their data id and one instrument per symbol.

    A signal strategy keeps the instrument the spec names, unless the spec was bound to
    other symbols before (a result's spec rerun on new data trades the new symbol). A
    fixed quantity must be a whole number of the instrument's lots (checked here, before
    anything runs, not at the first order).
    """
    instruments = spec.instruments
    rebound = spec.data is not None and spec.data.symbols != tuple(symbols)
    if spec.strategy.kind == "weights" or not instruments or rebound:
        instruments = tuple(symbol_instrument(s) for s in symbols)
    sizer = spec.sizer
    if spec.strategy.kind != "weights" and isinstance(sizer, FixedQuantity):
        inst = instruments[0]
        if not inst.is_lot_multiple(sizer.quantity):
            raise ParameterError(f"size {sizer.quantity:g} is not a multiple of lot size {inst.lot_size:g} "
                                 f"of {inst.symbol}")  # fmt: skip
    return spec.bind(data_id(prices, symbols), instruments)


def default_store() -> ExperimentStore | None:
    """The configured experiment store (``WORKBENCH_STORE``, see
    :func:`workbench.config.store_path`), one per file and process; None when off."""
    path = store_path()
    if path is None:
        return None
    from workbench.adapters.experiments import SQLiteStore

    key = str(path.resolve())
    if key not in _STORES:
        _STORES[key] = SQLiteStore(path)
    return _STORES[key]


_STORES: dict[str, ExperimentStore] = {}
#: ``store="default"``: the configured store (:func:`default_store`)
DEFAULT_STORE = "default"


def resolve_store(store: ExperimentStore | str | None) -> ExperimentStore | None:
    """``"default"`` -> :func:`default_store`; None -> no store; a store as it is."""
    if isinstance(store, str):
        if store != DEFAULT_STORE:
            raise ParameterError(f"store must be an ExperimentStore, None or {DEFAULT_STORE!r}, got store={store!r}")
        return default_store()
    return store


def run(spec: BacktestSpec, prices: pd.DataFrame | str | list[str], *, hooks: Hooks = NO_HOOKS,
        store: ExperimentStore | str | None = None) -> BacktestResult:  # fmt: skip
    """Run ``spec`` on ``prices`` with the engine it names; keep it in ``store`` if given
    (``"default"``: the configured store), a failure too (status ``failed``, with the error).

    The engine's :meth:`~workbench.strategy.engine.Engine.refusal` is checked before the
    data is loaded and again once the instruments are known, so a spec an engine cannot
    reproduce exactly is a :class:`ParameterError` naming the feature, never a silent
    approximation.
    """
    store = resolve_store(store)
    engine = engine_for(spec.engine)
    check_supported(engine, spec, hooks)
    frame, symbols = prepare_prices(spec.strategy, prices)
    spec = bind(spec, frame, symbols)
    check_supported(engine, spec, hooks)
    started = time.perf_counter()
    try:
        result = _run_bound(engine, spec, frame, hooks)
    except Exception as e:
        if store is not None:
            store.record_failure(spec, e, seconds=time.perf_counter() - started)
        raise
    if store is not None:
        store.save(result, seconds=time.perf_counter() - started)
    return result


def _run_bound(engine: Engine, spec: BacktestSpec, frame: pd.DataFrame, hooks: Hooks) -> BacktestResult:
    failed = 0 if hooks.bus is None else hooks.bus.failed
    out = engine.run(spec, frame, hooks)
    if hooks.bus is not None and hooks.bus.failed > failed:
        _warn_subscribers(hooks.bus, hooks.bus.failed - failed)
    stats = summary(out.equity, out.trades["pnl"], spec.cash, spec.periods_per_year, spec.risk_free_rate,
                    positions=out.positions, fills=out.fills)  # fmt: skip
    drift = [] if spec.risk is None else _drift(spec, frame, out.positions, out.equity)
    risk = None if out.risk is None else out.risk.result(drift)
    result = BacktestResult(
        equity=out.equity, returns=returns_from_equity(out.equity), orders=out.orders, fills=out.fills,
        trades=out.trades, positions=out.positions, stats=stats, spec=spec,
        versions=versions(engine.name, spec.strategy), native=out.native,
        hooks={} if hooks.pre_trade_check is None else {"pre_trade_check": describe(hooks.pre_trade_check)},
        risk=risk,
    )  # fmt: skip
    return result


def _drift(spec: BacktestSpec, prices: pd.DataFrame, positions: pd.Series | pd.DataFrame,
           equity: pd.Series) -> list[LimitBreached]:  # fmt: skip
    """Caps exceeded at a close by price moves alone (position values from the curves)."""
    if isinstance(prices.columns, pd.MultiIndex):
        close = pd.DataFrame({i.symbol: prices[(s, "Close")].to_numpy() for s, i in zip(spec.symbols, spec.instruments, strict=True)},
                             index=prices.index)  # fmt: skip
    else:
        close = pd.DataFrame({spec.instruments[0].symbol: prices["Close"].to_numpy()}, index=prices.index)
    qty = positions.to_frame() if isinstance(positions, pd.Series) else positions
    mult = np.array([i.multiplier for i in spec.instruments])
    values = pd.DataFrame(qty.to_numpy() * close.to_numpy() * mult, index=prices.index)
    return drift_breaches(spec.risk, values, equity)  # type: ignore[arg-type]


def _warn_subscribers(bus: EventBus, n: int) -> None:
    """Subscribers are isolated (a failing one never breaks matching), so say once, after
    the run, that some failed: silence would hide a broken logger or monitor."""
    first = bus.failures[-min(n, len(bus.failures))] if bus.failures else None
    what = f"; first: {first.handler}: {first.error}" if first is not None else ""
    warnings.warn(f"{n} event subscriber call(s) failed during the backtest{what} (see bus.failures)",
                  SubscriberWarning, stacklevel=3)  # fmt: skip


class SubscriberWarning(UserWarning):
    """Event subscribers raised during a run (they were isolated; the run is complete)."""


def backtest(
    strategy: str | type[Strategy] | Strategy | BacktestSpec,
    prices: pd.DataFrame | str | list[str],
    params: dict[str, Any] | None = None,
    *,
    bus: EventBus | None = None,
    pre_trade_check: PreTradeCheck | None = None,
    store: ExperimentStore | str | None = DEFAULT_STORE,
    **execution: Any,
) -> BacktestResult:
    """Run ``strategy`` over OHLCV bars on the event-driven or the vectorized engine.

    Every argument is validated before prices are loaded: a bad value (``commission=nan``,
    ``cash="1e4"``, ``risk_free_rate=-2``, a misspelt keyword...) is a
    :class:`ParameterError` naming it. A strategy whose output breaks its contract (a
    target outside -1/0/1, NaN or infinite weights) fails the same way on both engines
    (:mod:`workbench.strategy.targets`).

    Parameters
    ----------
    strategy : str, Strategy class or instance, function, or BacktestSpec
        A built-in name (``wb.STRATEGIES``: ``"sma_crossover"``, ``"pairs"``...), a class
        (``params`` fill its fields), an instance, or a whole spec (:func:`make_spec`).
    prices : DataFrame, str or list of str
        OHLCV bars (validated here) or a sample symbol for a signal strategy; a
        ``(symbol, field)`` panel or a list of symbols for a portfolio strategy.
    bus : EventBus, optional
        Event engine: receives every order, position and trade event.
    pre_trade_check : callable, optional
        Event engine: ``check(order, portfolio, expected_price) -> reason``; a non-empty
        reason rejects the order (where risk limits plug in).
    store : ExperimentStore, optional
        Where the run is kept: by default the configured SQLite store (``WORKBENCH_STORE``,
        default ``data/experiments.sqlite``; ``off`` keeps nothing), or any store
        (``wb.MemoryStore()``, ``wb.SQLiteStore(path)``); None keeps nothing. A run that
        raises is kept too, as a failure naming the error.
    **execution
        The spec's fields (:class:`BacktestSpec`):

        - ``cash`` (10,000): finite, > 0 and <= 1e15;
        - ``commission``: a number is a fraction of notional per fill (0.001 = 10 bps), or
          a model (``wb.PerShare(rate=0.005)``...);
        - ``slippage``: ``wb.FixedBps(bps=5)`` moves every fill 5 bps against you, then
          clamps it into the bar's [low, high];
        - ``size`` ("all"): all equity in whole lots, a fraction of equity in (0, 1], an
          int quantity, or a Sizer (signal strategies; portfolio strategies size from
          their weights);
        - ``fill_timing`` (NEXT_OPEN) or SIGNAL_CLOSE; ``cost_basis`` (FIFO), LIFO or AVERAGE;
        - ``account``: ``wb.CashAccount()`` (default) or ``wb.MarginAccount(...)``;
        - ``engine``: ``"event"`` (the domain model, every strategy kind) or
          ``"vectorized"`` (vectorbt; refuses by name what it cannot reproduce exactly);
        - ``instrument``: the traded Instrument of a signal strategy;
        - ``risk_free_rate`` (annual, > -1) and ``periods_per_year`` (default from the
          bar spacing) for the stats.

    Returns
    -------
    BacktestResult
        The same shape from every engine; ``result.spec`` is the bound spec and
        ``result.id`` its id.

    >>> import workbench as wb
    >>> r = wb.backtest("sma_crossover", "GOOG", {"fast": 10, "slow": 30}, commission=0.001)
    >>> r.stats["n_trades"] > 0
    True
    """
    spec = make_spec(strategy, params, **execution)
    return run(spec, prices, hooks=Hooks(bus=bus, pre_trade_check=pre_trade_check), store=store)
