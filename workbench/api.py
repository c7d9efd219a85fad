"""Use cases the notebooks call: load prices, run a backtest."""

from __future__ import annotations

import math
import numbers
import platform
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from workbench.data import instrument_for, load_prices
from workbench.engines import vectorized
from workbench.engines.bars import run_bars
from workbench.engines.event import run_targets, run_weights
from workbench.errors import ParameterError, UnknownSymbolError
from workbench.market import validate_ohlcv
from workbench.strategies import BUILTINS
from workbench.strategy.base import FunctionStrategy, Strategy
from workbench.strategy.metrics import (
    check_periods_per_year,
    check_risk_free_rate,
    returns_from_equity,
    summary,
)
from workbench.strategy.result import BacktestResult, spec_id
from workbench.trading.broker import PreTradeCheck
from workbench.trading.costs import CommissionModel, SlippageModel, commission_from, slippage_from
from workbench.trading.enums import CostBasisMethod, FillTiming
from workbench.trading.events import EventBus
from workbench.trading.sizing import sizer_from
from workbench.trading.values import Instrument

__all__ = ["backtest", "STRATEGIES", "ENGINES", "resolve_strategy"]

STRATEGIES: dict[str, type[Strategy]] = dict(BUILTINS)
ENGINES = ("event", "vectorized")


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


def _versions(engine: str, strat: Strategy) -> dict[str, str]:
    from workbench.adapters.indicators import talib_version

    out = {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
           "ta-lib": talib_version}  # fmt: skip
    try:
        out["workbench"] = metadata.version("workbench")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
        out["workbench"] = "unknown"
    if engine == "vectorized":
        from workbench.engines.vectorized import vbt_engine, vbt_version

        out["vectorbt"] = f"{vbt_version()} ({vbt_engine()})"
    if type(strat).__module__.endswith(".ml"):
        out["scikit-learn"] = metadata.version("scikit-learn")
    return out


MAX_CASH = 1e15  # a plausibility bound on starting cash (see _cash)


def _cash(value: object) -> float:
    """Starting cash: a finite number in (0, :data:`MAX_CASH`] (else a ParameterError).

    A string, True or NaN is no amount. Above 1e15 (a quadrillion: ~10x world GDP) it is
    a typo, and float64 equity steps by 1/8 of a unit, no longer a cent: near 1e308,
    sizing ``cash / price`` lots overflowed (a raw OverflowError before this bound). The
    bound is checked before any float conversion, which a huge int would overflow too.
    """
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ParameterError(f"cash must be > 0 and finite, got cash={value!r}")
    if value > MAX_CASH and value != math.inf:  # inf keeps its "finite" message below
        raise ParameterError(f"cash must be <= {MAX_CASH:g} (MAX_CASH, a plausibility bound), got cash={value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ParameterError(f"cash must be > 0 and finite, got cash={value!r}")
    return v


def _symbol_instrument(symbol: str) -> Instrument:
    try:
        return instrument_for(symbol)
    except UnknownSymbolError:
        return Instrument(ticker=symbol.replace("@", "-"), exchange="USER")


def _prepare(strat: Strategy, prices: pd.DataFrame | str | list[str]) -> tuple[pd.DataFrame, list[str]]:
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


def _data_id(prices: pd.DataFrame, symbols: list[str]) -> dict[str, Any]:
    from workbench.adapters.store import content_hash

    frames = [prices] if len(symbols) == 1 and not isinstance(prices.columns, pd.MultiIndex) else [prices[s] for s in symbols]
    hashes = [content_hash(f[["Open", "High", "Low", "Close", "Volume"]]) for f in frames]
    return {
        "symbols": symbols,
        "start": str(prices.index[0]),
        "end": str(prices.index[-1]),
        "bars": len(prices),
        "sha256": hashes[0] if len(hashes) == 1 else spec_id({"sha256": hashes}),
        "source": prices.attrs.get("source", "user"),
    }


def backtest(
    strategy: str | type[Strategy] | Strategy,
    prices: pd.DataFrame | str | list[str],
    params: dict[str, Any] | None = None,
    *,
    cash: float = 10_000.0,
    commission: float | CommissionModel | None = 0.0,
    slippage: SlippageModel | None = None,
    size: object = "all",
    fill_timing: FillTiming | str = FillTiming.NEXT_OPEN,
    cost_basis: CostBasisMethod | str = CostBasisMethod.FIFO,
    engine: str = "event",
    instrument: Instrument | None = None,
    risk_free_rate: float = 0.0,
    periods_per_year: float | None = None,
    bus: EventBus | None = None,
    pre_trade_check: PreTradeCheck | None = None,
) -> BacktestResult:
    """Run ``strategy`` over OHLCV bars on the event-driven or the vectorized engine.

    Every argument is validated before prices are loaded: a bad value (``commission=nan``,
    ``cash="1e4"``, ``risk_free_rate=-2``...) is a :class:`ParameterError` naming it. A
    strategy whose output breaks its contract (a target outside -1/0/1, NaN or infinite
    weights) fails the same way on both engines (:func:`~workbench.engines.event.check_target`,
    :func:`~workbench.engines.event.check_weights`).

    Parameters
    ----------
    strategy : str, Strategy class or instance
        A built-in name (``wb.STRATEGIES``: ``"sma_crossover"``, ``"pairs"``...), a class
        (``params`` fill its fields) or an instance.
    prices : DataFrame, str or list of str
        OHLCV bars (validated here) or a sample symbol for a signal strategy; a
        ``(symbol, field)`` panel or a list of symbols for a portfolio strategy.
    cash : float
        Starting cash in the instruments' currency; finite, > 0 and <= 1e15 (``MAX_CASH``).
    commission : float or CommissionModel
        A number is a fraction of notional per fill (0.001 = 10 bps).
    slippage : SlippageModel, optional
        Default: none. ``wb.FixedBps(bps=5)`` moves every fill 5 bps against you.
    risk_free_rate : float
        Annual, for the Sharpe ratio; finite and > -1.
    periods_per_year : float, optional
        Annualisation factor (default: from the bar spacing); finite and > 0.
    size : "all", float in (0, 1], int, or Sizer
        Signal strategies: all equity in whole lots (default), a fraction of equity, or a
        fixed quantity. Portfolio strategies size from their weights.
    fill_timing : FillTiming
        Market orders fill at the next bar's open (default) or the signal bar's close.
    cost_basis : CostBasisMethod
        FIFO (default), LIFO or AVERAGE lot matching (event engine trades).
    engine : {"event", "vectorized"}
        The event-driven engine on the trading domain, or vectorbt
        (:mod:`workbench.engines.vectorized`). :func:`compare_engines` runs both.
        Per-bar callback strategies (:class:`BarStrategy`) run on the event engine only.
    pre_trade_check : callable, optional
        Event engine: ``check(order, portfolio, expected_price) -> reason``; a non-empty
        reason rejects the order (where risk limits plug in).

    Returns
    -------
    BacktestResult
        The same shape from both engines; ``spec`` records strategy, params, data hash,
        costs, engine and library versions.

    >>> import workbench as wb
    >>> r = wb.backtest("sma_crossover", "GOOG", {"fast": 10, "slow": 30}, commission=0.001)
    >>> r.stats["n_trades"] > 0
    True
    """
    strat = resolve_strategy(strategy, params)
    if engine not in ENGINES:
        raise ParameterError(f"engine must be one of {ENGINES}, got {engine!r}")
    # every argument is checked before any data is loaded or any engine runs
    cash = _cash(cash)
    comm = commission_from(commission)
    slip = slippage_from(slippage)
    sizer = sizer_from(size)
    risk_free_rate = check_risk_free_rate(risk_free_rate)
    if periods_per_year is not None:
        periods_per_year = check_periods_per_year(periods_per_year)
    timing = FillTiming.parse(fill_timing)
    basis = CostBasisMethod.parse(cost_basis)
    prices, symbols = _prepare(strat, prices)
    costs = {"cash": cash, "commission": comm, "slippage": slip, "fill_timing": timing}

    if engine == "vectorized" and (pre_trade_check is not None or strat.kind == "bar"):
        what = "a pre-trade check hook" if pre_trade_check is not None else "a per-bar callback strategy"
        raise ParameterError(f"the vectorized engine cannot run {what}; use engine='event'")
    hooks = {"bus": bus, "pre_trade_check": pre_trade_check}
    if strat.kind == "weights":
        instruments = [_symbol_instrument(s) for s in symbols]
        weights = strat.weights(prices)
        if engine == "event":
            run: Any = run_weights(prices, weights, instruments, cost_basis=basis, **hooks, **costs)
        else:
            run = vectorized.run_weights(prices, weights, instruments, cost_basis=basis, **costs)
    else:
        if instrument is None:
            instrument = _symbol_instrument(symbols[0])
        instruments = [instrument]
        if strat.kind == "bar":
            if timing is not FillTiming.NEXT_OPEN:
                raise ParameterError("a per-bar callback strategy fills at the next open; fill_timing must be NEXT_OPEN")
            run = run_bars(prices, strat, instrument, sizer=sizer, cost_basis=basis, cash=cash,  # type: ignore[arg-type]
                           commission=comm, slippage=slip, **hooks)  # fmt: skip
        elif engine == "event":
            target = strat.target(prices)
            run = run_targets(prices, target, instrument, sizer=sizer, cost_basis=basis, **hooks, **costs)
        else:
            target = strat.target(prices)
            run = vectorized.run_signals(prices, target, instrument, sizer=sizer, **costs)
    if engine == "event":
        orders, fills, trades = run.broker.orders_frame(), run.broker.fills_frame(), run.portfolio.trades_frame()
    else:
        orders, fills, trades = run.orders, run.fills, run.trades
    stats = summary(run.equity, trades["pnl"], cash, periods_per_year, risk_free_rate,
                    positions=run.positions, fills=fills)  # fmt: skip
    spec: dict[str, Any] = {
        "strategy": strat.name,
        "params": strat.params,
        "symbol": symbols[0] if len(symbols) == 1 else symbols,
        "instrument": [i.symbol for i in instruments] if len(instruments) > 1 else instruments[0].symbol,
        "data": _data_id(prices, symbols),
        "cash": cash,
        "commission": repr(comm),
        "slippage": repr(slip),
        "size": repr(sizer) if strat.kind == "signal" else "target weights",
        "fill_timing": timing.name,
        "cost_basis": basis.name,
        "engine": engine,
        "versions": _versions(engine, strat),
    }
    spec["id"] = spec_id({k: v for k, v in spec.items() if k not in ("versions", "engine")})
    return BacktestResult(
        equity=run.equity,
        returns=returns_from_equity(run.equity),
        orders=orders,
        fills=fills,
        trades=trades,
        positions=run.positions,
        stats=stats,
        spec=spec,
    )
