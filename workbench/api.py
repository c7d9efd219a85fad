"""Use cases the notebooks call: load prices, run a backtest."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from workbench.data import instrument_for, load_prices
from workbench.engines.event import run_targets
from workbench.errors import ParameterError, UnknownSymbolError
from workbench.market import validate_ohlcv
from workbench.strategy.base import SMACrossover, Strategy
from workbench.strategy.metrics import returns_from_equity, summary
from workbench.strategy.result import BacktestResult, spec_id
from workbench.trading.costs import CommissionModel, NoSlippage, SlippageModel, commission_from
from workbench.trading.enums import CostBasisMethod, FillTiming
from workbench.trading.events import EventBus
from workbench.trading.sizing import sizer_from
from workbench.trading.values import Instrument

__all__ = ["backtest", "STRATEGIES", "resolve_strategy"]

STRATEGIES: dict[str, type[Strategy]] = {
    "sma_crossover": SMACrossover,
}


def resolve_strategy(strategy: str | type[Strategy] | Strategy, params: dict[str, Any] | None) -> Strategy:
    """A Strategy instance from a name, a class or an instance (+ params)."""
    params = dict(params or {})
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
    raise ParameterError(f"strategy must be a name, a Strategy class or instance, got {strategy!r}")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__}
    try:
        out["workbench"] = metadata.version("workbench")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
        out["workbench"] = "unknown"
    return out


def backtest(
    strategy: str | type[Strategy] | Strategy,
    prices: pd.DataFrame | str,
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
) -> BacktestResult:
    """Run ``strategy`` over one instrument's OHLCV bars.

    Parameters
    ----------
    strategy : str, Strategy class or instance
        e.g. ``"sma_crossover"`` or ``SMACrossover``; ``params`` fill its fields.
    prices : DataFrame or str
        OHLCV bars (validated here) or a sample symbol, loaded with :func:`load_prices`.
    cash : float
        Starting cash in the instrument's currency.
    commission : float or CommissionModel
        A number is a fraction of notional per fill (0.001 = 10 bps).
    slippage : SlippageModel, optional
        Default: none.
    size : "all", float in (0, 1], int, or Sizer
        All available equity in whole lots (default), a fraction of equity, or a fixed
        quantity.
    fill_timing : FillTiming
        Market orders fill at the next bar's open (default) or the signal bar's close.
    cost_basis : CostBasisMethod
        FIFO (default), LIFO or AVERAGE lot matching.
    engine : {"event"}
        The event-driven engine on the trading domain (the vectorized engine arrives
        with the strategies issue).

    Returns
    -------
    BacktestResult

    >>> import workbench as wb
    >>> r = wb.backtest("sma_crossover", "GOOG", {"fast": 10, "slow": 30}, commission=0.001)
    >>> r.stats["n_trades"] > 0
    True
    """
    strat = resolve_strategy(strategy, params)
    if isinstance(prices, str):
        prices = load_prices(prices)
    if not isinstance(prices, pd.DataFrame):
        raise ParameterError(f"prices must be an OHLCV DataFrame or a symbol, got {type(prices).__name__}")
    symbol = str(prices.attrs.get("symbol", "ASSET"))
    prices = validate_ohlcv(prices, name=symbol)
    if instrument is None:
        try:
            instrument = instrument_for(symbol)
        except UnknownSymbolError:
            instrument = Instrument(ticker=symbol, exchange="USER")
    if engine != "event":
        raise ParameterError(f"engine must be 'event' (the only engine so far), got {engine!r}")
    cash = float(cash)
    if not (np.isfinite(cash) and cash > 0):
        raise ParameterError(f"cash must be > 0, got {cash!r}")
    comm = commission_from(commission)
    slip = slippage or NoSlippage()
    sizer = sizer_from(size)
    timing = FillTiming.parse(fill_timing)
    basis = CostBasisMethod.parse(cost_basis)

    target = strat.target(prices)
    run = run_targets(
        prices,
        target,
        instrument,
        cash=cash,
        commission=comm,
        slippage=slip,
        sizer=sizer,
        fill_timing=timing,
        cost_basis=basis,
        bus=bus,
    )
    trades = run.portfolio.trades_frame()
    fills = run.broker.fills_frame()
    stats = summary(run.equity, trades["pnl"], cash, periods_per_year, risk_free_rate,
                    positions=run.positions, fills=fills)  # fmt: skip
    spec: dict[str, Any] = {
        "strategy": strat.name,
        "params": strat.params,
        "symbol": symbol,
        "instrument": instrument.symbol,
        "data": {
            "start": str(prices.index[0]),
            "end": str(prices.index[-1]),
            "bars": len(prices),
            "sha256": prices.attrs.get("sha256"),
            "source": prices.attrs.get("source", "user"),
        },
        "cash": cash,
        "commission": repr(comm),
        "slippage": repr(slip),
        "size": repr(sizer),
        "fill_timing": timing.name,
        "cost_basis": basis.name,
        "engine": engine,
        "versions": _versions(),
    }
    spec["id"] = spec_id({k: v for k, v in spec.items() if k != "versions"})
    return BacktestResult(
        equity=run.equity,
        returns=returns_from_equity(run.equity),
        orders=run.broker.orders_frame(),
        fills=fills,
        trades=trades,
        positions=run.positions,
        stats=stats,
        spec=spec,
    )
