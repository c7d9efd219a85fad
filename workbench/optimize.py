"""Parameter grids: every combination of a strategy's parameters, ranked by a metric.

``grid_search`` runs all combinations in **one** vectorbt call (one column per
combination) on the vectorized engine, or one backtest each on the event engine (with
a progress bar). Both rank by the same metrics under the conventions of
:mod:`workbench.strategy.metrics` (simple returns, ``ddof=1``, rf = 0, annualised with
the calendar's periods per year); the tests check grid rows against single backtests.
Combinations the strategy rejects (e.g. fast >= slow) are skipped and counted in
``result.attrs["skipped"]``.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench.api import _prepare, _symbol_instrument, backtest, resolve_strategy
from workbench.errors import ParameterError
from workbench.strategy.base import Strategy
from workbench.strategy.metrics import periods_per_year
from workbench.trading.costs import NoSlippage, commission_from
from workbench.trading.enums import FillTiming
from workbench.trading.sizing import sizer_from

__all__ = ["grid_search", "GRID_METRICS"]

GRID_METRICS = ["total_return", "cagr", "annual_volatility", "sharpe", "max_drawdown", "n_trades", "final_equity"]


def _combos(strategy: Any, grid: dict[str, list[Any]]) -> tuple[list[Strategy], int]:
    if not grid:
        raise ParameterError("grid must map at least one parameter to a list of values")
    names = list(grid)
    out, skipped = [], 0
    for values in itertools.product(*(list(grid[k]) for k in names)):
        try:
            out.append(resolve_strategy(strategy, dict(zip(names, values, strict=True))))
        except ParameterError:
            skipped += 1
    if not out:
        raise ParameterError(f"no valid combination in the grid {grid}")
    return out, skipped


def _metrics(equity: np.ndarray, index: pd.DatetimeIndex, cash: float, ppy: float) -> dict[str, np.ndarray]:
    """The grid metrics for each column of an equity matrix (conventions as in metrics)."""
    rets = equity[1:] / equity[:-1] - 1.0
    sd = rets.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(sd > 0, rets.mean(axis=0) / sd * math.sqrt(ppy), np.nan)
    growth = equity[-1] / cash
    days = (index[-1] - index[0]).total_seconds() / 86_400
    cagr = np.where(growth > 0, growth ** (365.25 / days) - 1.0, -1.0) if days > 0 else np.full(len(growth), np.nan)
    dd = (equity / np.maximum.accumulate(equity, axis=0) - 1.0).min(axis=0)
    return {"total_return": growth - 1.0, "cagr": cagr, "annual_volatility": sd * math.sqrt(ppy),
            "sharpe": sharpe, "max_drawdown": dd, "final_equity": equity[-1]}  # fmt: skip


def grid_search(
    strategy: str | type[Strategy],
    prices: pd.DataFrame | str,
    grid: dict[str, list[Any]],
    *,
    engine: str = "vectorized",
    sort_by: str = "sharpe",
    cash: float = 10_000.0,
    commission: Any = 0.0,
    slippage: Any = None,
    size: object = "all",
    fill_timing: FillTiming | str = FillTiming.NEXT_OPEN,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Backtest every combination of ``grid`` and rank them by ``sort_by`` (descending).

    >>> import workbench as wb
    >>> top = wb.grid_search("sma_crossover", "GOOG", {"fast": [5, 10], "slow": [20, 50]})
    >>> len(top), list(top.columns[:2])
    (4, ['fast', 'slow'])
    """
    strategies, skipped = _combos(strategy, grid)
    if strategies[0].kind != "signal":
        raise ParameterError("grid_search runs signal strategies (one instrument, target +1/0/-1)")
    if sort_by not in GRID_METRICS:
        raise ParameterError(f"sort_by must be one of {GRID_METRICS}, got {sort_by!r}")
    prices, symbols = _prepare(strategies[0], prices)
    names = list(grid)
    params = pd.DataFrame([{k: s.params[k] for k in names} for s in strategies])
    if engine == "vectorized":
        from workbench.engines.vectorized import run_signal_grid

        targets = np.column_stack([s.target(prices).to_numpy() for s in strategies])
        equity, n_trades = run_signal_grid(
            prices, targets, _symbol_instrument(symbols[0]), cash=float(cash),
            commission=commission_from(commission), slippage=slippage or NoSlippage(),
            sizer=sizer_from(size), fill_timing=FillTiming.parse(fill_timing),
        )  # fmt: skip
        stats = pd.DataFrame(_metrics(equity, prices.index, float(cash), periods_per_year(prices.index)))
        stats["n_trades"] = n_trades
    elif engine == "event":
        rows = []
        show = len(strategies) > 20 if progress is None else progress
        for s in tqdm(strategies, desc="grid (event engine)", unit="combo", disable=not show):
            r = backtest(s, prices, cash=cash, commission=commission, slippage=slippage, size=size,
                         fill_timing=fill_timing)  # fmt: skip
            rows.append({k: r.stats[k] for k in GRID_METRICS})
        stats = pd.DataFrame(rows)
    else:
        raise ParameterError(f"engine must be 'vectorized' or 'event', got {engine!r}")
    out = pd.concat([params, stats[GRID_METRICS]], axis=1)
    out = out.sort_values(sort_by, ascending=False, kind="stable", na_position="last").reset_index(drop=True)
    out.attrs = {"strategy": strategies[0].name, "symbol": symbols[0], "engine": engine,
                 "combinations": len(strategies), "skipped": skipped, "sort_by": sort_by}  # fmt: skip
    return out
