"""Parameter grids: every combination of a strategy's parameters, ranked by a metric.

``grid_search`` runs the combinations through vectorbt **in chunks** (one column per
combination, at most ``chunk`` columns per call) on the vectorized engine, or one
backtest each on the event engine, with a progress bar. Both rank by the same metrics
under the conventions of :mod:`workbench.strategy.metrics` (simple returns, ``ddof=1``,
rf = 0, annualised with the calendar's periods per year); the tests check grid rows
against single backtests. Combinations the strategy rejects (e.g. fast >= slow) are
skipped and counted in ``result.attrs["skipped"]``.

Bounded sweeps (a grid of 90,000 combinations used to hold ~230 KB per combination at
once and run out of memory):

- **Memory cap.** ``memory_limit_mb`` (default :data:`DEFAULT_MEMORY_LIMIT_MB`) bounds the
  sweep's working memory, above what the process already holds (prices, libraries).
  The chunk size is the cap over :func:`combo_bytes`, a measured per-combination
  estimate from the number of bars (target column, vectorbt's signal, price, order
  record, cash/asset/value arrays, the equity column and the metric temporaries).
  Combinations are generated lazily (``itertools.product``), each chunk's targets are
  computed, simulated and reduced to stats rows, then dropped: only the stats rows (a
  few numbers per combination) are kept. Chunking does not change a single bit of the
  results (the tests compare against one call). Each chunk is freed before the next
  (vectorbt's Portfolio is cyclic garbage: see :func:`~workbench.engines.rebalance.frozen_heap`). Measured with
  ``bench/bench_sweep.py``: the added peak stays at about 0.7 of the cap.
- **Size limit.** More than ``max_combinations`` (default :data:`DEFAULT_MAX_COMBINATIONS`,
  or ``WORKBENCH_MAX_COMBINATIONS``) raises :class:`SweepTooLargeError` before anything
  is computed: a big sweep is something to ask for explicitly.
- **Grid values** must be non-empty lists (or tuples, ranges, 1-D arrays) without
  duplicates: ``{"fast": 10}`` or ``{"fast": "abc"}`` is a :class:`ParameterError`
  naming the parameter, not a ``TypeError`` or three values ``"a", "b", "c"``.
"""

from __future__ import annotations

import gc
import itertools
import math
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench.api import (
    bind,
    check_keywords,
    engine_for,
    make_spec,
    prepare_prices,
    resolve_strategy,
    run,
)
from workbench.engines.rebalance import frozen_heap
from workbench.errors import ParameterError, SweepTooLargeError
from workbench.research.tasks import InProcess, TaskRunner, check_picklable, resolve_runner
from workbench.strategy.base import Strategy
from workbench.strategy.engine import NO_HOOKS, check_supported
from workbench.strategy.metrics import periods_per_year
from workbench.strategy.spec import BacktestSpec
from workbench.trading.sizing import FixedQuantity

__all__ = [
    "grid_search", "GRID_METRICS", "count_combinations", "combo_bytes", "chunk_size",
    "DEFAULT_MEMORY_LIMIT_MB", "DEFAULT_MAX_COMBINATIONS", "MAX_COMBINATIONS_ENV",
]  # fmt: skip

GRID_METRICS = ["total_return", "cagr", "annual_volatility", "sharpe", "max_drawdown", "n_trades", "final_equity"]

DEFAULT_MEMORY_LIMIT_MB = 256
DEFAULT_MAX_COMBINATIONS = 100_000
MAX_COMBINATIONS_ENV = "WORKBENCH_MAX_COMBINATIONS"
# Peak bytes per bar per combination of a chunk (targets + one vectorbt call + metrics),
# measured with ru_maxrss (vectorbt 1.2, Rust engine; 2,148 and 50,000 bars): ~105 B
# without slippage, ~115 B with FixedBps (priced fills), i.e. ~14 float64 arrays (vectorbt's
# order records alone are 56 B). 160 B (20 arrays) leaves room for the allocator.
BYTES_PER_BAR = 160
BYTES_PER_COMBO = 2_048  # Python objects per combination: its Strategy, params, stats row
EVENT_BATCH = 32  # event engine: backtests between two progress updates
_SEQUENCES = (list, tuple, range, np.ndarray, pd.Index, pd.Series)


def _check_values(name: str, values: Any) -> None:
    """One grid entry must be a non-empty ordered sequence: a scalar or a string is a
    mistake (``"abc"`` is iterable but is not three values)."""
    flat = not isinstance(values, np.ndarray) or values.ndim == 1
    if isinstance(values, str | bytes) or not isinstance(values, _SEQUENCES) or not flat:
        raise ParameterError(
            f"grid values must be lists: {name}={values!r}; write {name}=[{values!r}] for one value "
            f"or e.g. {name}=range(5, 30) for several"
        )
    if _length(values) == 0:
        raise ParameterError(f"grid values must not be empty: {name}={values!r}")


def _length(values: Any) -> int:
    """``len(values)``; a range longer than sys.maxsize has no len() but a size nonetheless."""
    try:
        return len(values)
    except OverflowError:
        return (values.stop - values.start + values.step - (1 if values.step > 0 else -1)) // values.step


def _check_duplicates(name: str, values: Any) -> None:
    """A repeated value would run (and rank) the same combination twice."""
    seen, dupes = set(), []
    for v in values:
        try:
            if v in seen:
                dupes.append(v)
            seen.add(v)
        except TypeError:  # unhashable values: not checked
            return
    if dupes:
        raise ParameterError(f"grid values must be distinct: {name} repeats {sorted(set(dupes), key=repr)!r}")


def count_combinations(grid: dict[str, Any]) -> int:
    """How many combinations ``grid`` spans, from the lengths alone (nothing is built)."""
    if not isinstance(grid, dict) or not grid:
        raise ParameterError(f"grid must map at least one parameter to a list of values, got {grid!r}")
    for name, values in grid.items():
        if not isinstance(name, str):
            raise ParameterError(f"grid keys must be parameter names (str), got {name!r}")
        _check_values(name, values)
    return math.prod(_length(v) for v in grid.values())


def _combination_limit(max_combinations: int | None) -> int:
    """The explicit argument, else ``WORKBENCH_MAX_COMBINATIONS``, else the default."""
    value: Any = max_combinations
    source = "max_combinations"
    if value is None and os.environ.get(MAX_COMBINATIONS_ENV, "").strip():
        source, raw = MAX_COMBINATIONS_ENV, os.environ[MAX_COMBINATIONS_ENV].strip()
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            raise ParameterError(f"{MAX_COMBINATIONS_ENV} must be a positive integer, got {raw!r}") from None
    if value is None:
        return DEFAULT_MAX_COMBINATIONS
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ParameterError(f"{source} must be a positive integer, got {value!r}")
    return int(value)


def _check_size(grid: dict[str, Any], max_combinations: int | None) -> int:
    """Refuse a sweep above the limit before any work, saying how to allow it."""
    n = count_combinations(grid)
    limit = _combination_limit(max_combinations)
    if n > limit:
        shape = " × ".join(f"{k} {_length(v):,}" for k, v in grid.items())
        raise SweepTooLargeError(
            f"the grid has {n:,} combinations ({shape}), above the limit of {limit:,}; "
            f"pass max_combinations={n} (or set {MAX_COMBINATIONS_ENV}) to run it, or use a coarser grid"
        )
    for name, values in grid.items():
        _check_duplicates(name, values)
    return n


def combo_bytes(n_bars: int) -> int:
    """Estimated peak bytes one combination adds to a vectorbt grid call over ``n_bars``."""
    return BYTES_PER_BAR * int(n_bars) + BYTES_PER_COMBO


MAX_MEMORY_LIMIT_MB = 2**30  # 1 PiB: far above any machine, far below float overflow


def _check_cap(memory_limit_mb: object) -> None:
    if memory_limit_mb is not None and (
        isinstance(memory_limit_mb, bool)
        or not isinstance(memory_limit_mb, int | float)
        or not (math.isfinite(memory_limit_mb) and 0 < memory_limit_mb <= MAX_MEMORY_LIMIT_MB)
    ):
        raise ParameterError(
            f"memory_limit_mb must be a number of MiB in (0, {MAX_MEMORY_LIMIT_MB:,}] or None, got {memory_limit_mb!r}"
        )


def chunk_size(n_bars: int, memory_limit_mb: float | None = DEFAULT_MEMORY_LIMIT_MB) -> int:
    """Combinations per vectorbt call so that their estimated peak stays within the cap
    (at least one: a single combination over very many bars can exceed a tiny cap).
    ``None`` means no cap: the whole grid in one call."""
    _check_cap(memory_limit_mb)
    if memory_limit_mb is None:
        return 2**62
    return max(1, int(memory_limit_mb * 2**20) // combo_bytes(n_bars))


class _Combos:
    """The grid's combinations in product order, built one at a time (never all at once).

    Iterating yields ``(position in the product, Strategy)`` for the combinations the
    strategy accepts; rejected ones (its ``validate`` raised) are counted in ``skipped``
    and ``consumed`` counts every combination looked at (for the progress bar). The first
    valid one is built on construction: its kind and prices are needed before a chunk.
    """

    def __init__(self, strategy: Any, grid: dict[str, Any]) -> None:
        self.names = list(grid)
        self.consumed = self.skipped = 0
        self._reason = ""
        stream = self._valid(strategy, grid)
        head = next(stream, None)
        if head is None:
            raise ParameterError(f"no valid combination in the grid ({self.consumed:,} tried): {self._reason}")
        self.first = head[1]
        self._stream = itertools.chain([head], stream)

    def _valid(self, strategy: Any, grid: dict[str, Any]) -> Iterator[tuple[int, Strategy]]:
        for pos, values in enumerate(itertools.product(*grid.values())):
            self.consumed += 1
            params = dict(zip(self.names, values, strict=True))
            try:
                strat = resolve_strategy(strategy, params)
            except ParameterError as exc:
                self.skipped += 1
                self._reason = self._reason or f"e.g. {params} was rejected: {exc}"
                continue
            yield pos, strat

    def chunks(self, size: int) -> Iterator[list[tuple[int, Strategy]]]:
        while chunk := list(itertools.islice(self._stream, size)):
            yield chunk


def _metrics(equity: np.ndarray, index: pd.DatetimeIndex, cash: float, ppy: float, rf: float = 0.0) -> dict[str, np.ndarray]:
    """The grid metrics for each column of an equity matrix (conventions as in metrics:
    the Sharpe ratio of returns in excess of ``rf`` compounded down to one period).

    Reduced along contiguous rows of the transpose, so that each combination's sums are
    bit-identical whatever the number of columns (chunk size) beside it.
    """
    eq = np.ascontiguousarray(equity.T)
    rets = eq[:, 1:] / eq[:, :-1] - 1.0
    sd = rets.std(axis=1, ddof=1)
    excess = rets - ((1.0 + rf) ** (1.0 / ppy) - 1.0) if rf else rets
    sd_excess = excess.std(axis=1, ddof=1) if rf else sd
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(sd_excess > 0, excess.mean(axis=1) / sd_excess * math.sqrt(ppy), np.nan)
    del excess
    del rets
    growth = eq[:, -1] / cash
    days = (index[-1] - index[0]).total_seconds() / 86_400
    with np.errstate(invalid="ignore"):  # a column that lost everything (replaced by its single run after)
        cagr = np.where(growth > 0, growth ** (365.25 / days) - 1.0, -1.0) if days > 0 else np.full(len(growth), np.nan)
    dd = (eq / np.maximum.accumulate(eq, axis=1) - 1.0).min(axis=1)
    return {"total_return": growth - 1.0, "cagr": cagr, "annual_volatility": sd * math.sqrt(ppy),
            "sharpe": sharpe, "max_drawdown": dd, "final_equity": eq[:, -1].copy()}  # fmt: skip


Runner = Callable[[list[Strategy]], dict[str, np.ndarray]]


def _vector_runner(prices: pd.DataFrame, spec: BacktestSpec) -> Runner:
    """One vectorbt call per chunk: its targets are filled column by column into one
    matrix (no list of Series beside it) and reduced to metrics before the next chunk."""
    from workbench.engines import vectorized  # looked up per call: tests wrap run_signal_grid

    vectorized.vbt_version()  # import vectorbt (seconds, once) before the sweep freezes the heap
    ppy = spec.periods_per_year or periods_per_year(prices.index)

    def run_chunk(strategies: list[Strategy]) -> dict[str, np.ndarray]:
        equity, n_trades = _vector_equity(prices, spec, strategies, trades=True)
        return {**_metrics(equity, prices.index, spec.cash, ppy, spec.risk_free_rate), "n_trades": n_trades}

    return run_chunk


def _vector_equity(prices: pd.DataFrame, spec: BacktestSpec, strategies: list[Strategy],
                   trades: bool = False) -> Any:  # fmt: skip
    """Equity (bars × strategies) of many signal strategies in one vectorbt call, with the
    closed-trade counts when ``trades``. A column vectorbt cannot reproduce alone (a margin
    call; a fixed short worth more than equity, which the account rejects) is replaced by
    its single run, which replays both as the event engine does."""
    from workbench.engines import vectorized

    targets = np.empty((len(prices), len(strategies)))
    for j, s in enumerate(strategies):
        targets[:, j] = s.target(prices).to_numpy(dtype="float64")
    equity, n_trades = vectorized.run_signal_grid(prices, targets, spec.instruments[0], spec)
    n_trades = np.asarray(n_trades)
    single = (equity <= 0).any(axis=0)
    if isinstance(spec.sizer, FixedQuantity):
        single |= (targets < 0).any(axis=0)
    del targets
    if single.any():
        equity = equity.copy()  # vectorbt's array is read-only
    for j in np.flatnonzero(single):
        r = run(spec.replace(strategy=strategies[j]), prices)
        equity[:, j] = r.equity.to_numpy()
        n_trades[j] = r.stats["n_trades"]
    return (equity, n_trades) if trades else equity


def _spec_equity(prices: pd.DataFrame, spec: BacktestSpec, strategies: list[Strategy]) -> tuple[np.ndarray, np.ndarray]:
    """(equity (bars × strategies), closed-trade counts), one backtest each on the spec's engine."""
    runs = [run(spec.replace(strategy=s), prices) for s in strategies]
    return np.column_stack([r.equity.to_numpy() for r in runs]), np.array([r.stats["n_trades"] for r in runs])


def _spec_runner(prices: pd.DataFrame, spec: BacktestSpec) -> Runner:
    """One backtest per combination on the spec's engine (the vectorized engine's single
    runs replay a risk profile and margin calls); only its metric values are kept."""

    def run_chunk(strategies: list[Strategy]) -> dict[str, np.ndarray]:
        rows = [[run(spec.replace(strategy=s), prices).stats[k] for k in GRID_METRICS] for s in strategies]
        return {k: np.array([r[i] for r in rows]) for i, k in enumerate(GRID_METRICS)}

    return run_chunk


def _table(grid: dict[str, Any], positions: np.ndarray, stats: dict[str, np.ndarray]) -> pd.DataFrame:
    """Parameter columns rebuilt from product positions, beside the stats: a column's dtype
    follows the grid's values, not how the sweep was chunked."""
    where = np.unravel_index(positions, [len(v) for v in grid.values()])
    params = {k: pd.Series(list(v)).iloc[i].to_numpy() for (k, v), i in zip(grid.items(), where, strict=True)}
    return pd.DataFrame({**params, **{k: stats[k] for k in GRID_METRICS}})


def _sweep(combos: _Combos, runner: Runner, size: int, total: int, show: bool, desc: str) -> tuple[np.ndarray, dict, int]:
    """Run the chunks, keeping only their stats rows and freeing each chunk before the
    next; a progress bar over combinations, advanced once per chunk."""
    positions, parts, calls = [], [], 0
    with frozen_heap(), tqdm(total=total, desc=desc, unit="combo", disable=not show) as bar:
        for chunk in combos.chunks(size):
            parts.append(runner([s for _, s in chunk]))
            positions.append(np.fromiter((p for p, _ in chunk), dtype=np.int64, count=len(chunk)))
            calls += 1
            del chunk
            gc.collect()
            bar.update(combos.consumed - bar.n)
    stats = {k: np.concatenate([p[k] for p in parts]) for k in GRID_METRICS}
    return np.concatenate(positions), stats, calls


def _prepare_chunks(shared: tuple[bool, pd.DataFrame, BacktestSpec]) -> Runner:
    """A worker's chunk runner (bound once per worker by the task runner)."""
    vector, prices, spec = shared
    return _vector_runner(prices, spec) if vector else _spec_runner(prices, spec)


def balanced_chunk(chunk: int, total: int, workers: int) -> int:
    """At most ``chunk`` per call, in a number of chunks that is a multiple of ``workers``
    (13 chunks on 2 workers leave one idle for the last; 14 smaller ones do not)."""
    calls = math.ceil(total / chunk)
    return max(1, math.ceil(total / (workers * math.ceil(calls / workers))))


def _sweep_on(runner: TaskRunner, combos: _Combos, shared: tuple, size: int, total: int, show: bool,
              desc: str) -> tuple[np.ndarray, dict, int]:  # fmt: skip
    """:func:`_sweep` on a task runner (local processes or Dask): the same chunks, their
    results collected in submission order, so the table is identical to one process's."""
    check_picklable("a sweep on workers", shared[2], combos.first)
    positions, consumed, parts = [], [], []

    def chunks() -> Iterator[list[Strategy]]:
        for chunk in combos.chunks(size):
            positions.append(np.fromiter((p for p, _ in chunk), dtype=np.int64, count=len(chunk)))
            consumed.append(combos.consumed)
            yield [s for _, s in chunk]

    with tqdm(total=total, desc=desc, unit="combo", disable=not show) as bar:
        for part in runner.map(_prepare_chunks, shared, chunks()):
            parts.append(part)
            bar.update(consumed[len(parts) - 1] - bar.n)
    stats = {k: np.concatenate([p[k] for p in parts]) for k in GRID_METRICS}
    return np.concatenate(positions), stats, len(parts)


def grid_search(
    strategy: str | type[Strategy] | Strategy | BacktestSpec,
    prices: pd.DataFrame | str,
    grid: dict[str, list[Any]],
    *,
    sort_by: str = "sharpe",
    progress: bool | None = None,
    memory_limit_mb: float | None = DEFAULT_MEMORY_LIMIT_MB,
    max_combinations: int | None = None,
    workers: int = 1,
    cluster: Any = None,
    **execution: Any,
) -> pd.DataFrame:
    """Backtest every combination of ``grid`` and rank them by ``sort_by`` (descending).

    ``strategy`` is a name, class or function, or a whole :class:`BacktestSpec` (its
    strategy's type is varied); ``execution`` holds the spec's fields as for
    ``wb.backtest`` (cash, commission, slippage, size, fill_timing...); ``engine``
    defaults to ``"vectorized"`` here (a spec keeps its own). Every combination runs the
    same spec with its own parameters.

    ``grid`` maps parameter names to lists (tuples, ranges, 1-D arrays) of values.
    ``memory_limit_mb`` caps the vectorized sweep's working memory (MiB; ``None``: the
    whole grid in one vectorbt call); the chunk size is ``attrs["chunk_size"]``.
    Grids above ``max_combinations`` (default 100,000, or ``WORKBENCH_MAX_COMBINATIONS``)
    raise :class:`SweepTooLargeError` before any work. ``progress`` shows a progress bar
    (default: when there is more than one chunk). ``workers`` > 1 runs the vectorized
    chunks in that many processes (``spawn``: each imports vectorbt once, ~5 s);
    ``cluster`` runs them on Dask (a ``distributed.Client``, a scheduler address, or any
    :class:`~workbench.research.tasks.TaskRunner`). Either way the same chunks run and
    come back in the same order, so the table is identical to one process's.

    >>> import workbench as wb
    >>> top = wb.grid_search("sma_crossover", "GOOG", {"fast": [5, 10], "slow": [20, 50]})
    >>> len(top), list(top.columns[:2])
    (4, ['fast', 'slow'])
    """
    total = _check_size(grid, max_combinations)
    _check_cap(memory_limit_mb)
    check_keywords(execution, "grid_search", ("sort_by", "progress", "memory_limit_mb", "max_combinations", "workers",
                                              "cluster"))  # fmt: skip
    runner = resolve_runner(workers, cluster)
    if sort_by not in GRID_METRICS:
        raise ParameterError(f"sort_by must be one of {GRID_METRICS}, got {sort_by!r}")
    base = strategy if isinstance(strategy, BacktestSpec) else None
    if base is None:
        execution.setdefault("engine", "vectorized")
    combos = _Combos(base.strategy if base else strategy, grid)
    spec = make_spec(base.replace(strategy=combos.first) if base else combos.first, **execution)
    if combos.first.kind != "signal":
        raise ParameterError("grid_search runs signal strategies (one instrument, target +1/0/-1)")
    prices, symbols = prepare_prices(combos.first, prices)
    spec = bind(spec, prices, symbols)
    engine = spec.engine
    check_supported(engine_for(engine), spec, NO_HOOKS)
    vector = engine == "vectorized"
    if vector and spec.risk is None:
        chunk = chunk_size(len(prices), memory_limit_mb)
    else:  # a risk profile is checked order by order: one run per combination
        chunk, vector = EVENT_BATCH, False
    desc = f"grid (vectorbt, {min(chunk, total):,} per call)" if vector else f"grid ({engine} engine, one run each)"
    show = total > (chunk if vector else 20) if progress is None else progress
    try:
        if isinstance(runner, InProcess):
            positions, stats, calls = _sweep(combos, _prepare_chunks((vector, prices, spec)), chunk, total, show, desc)
        else:
            chunk = balanced_chunk(chunk, total, runner.workers)
            positions, stats, calls = _sweep_on(runner, combos, (vector, prices, spec), chunk, total, show,
                                                f"{desc}, {runner!r}")  # fmt: skip
    finally:
        if runner is not cluster:  # opened here (from an address): closed here
            getattr(runner, "close", lambda: None)()
    out = _table(grid, positions, stats)
    out = out.sort_values(sort_by, ascending=False, kind="stable", na_position="last").reset_index(drop=True)
    out.attrs = {"strategy": combos.first.name, "symbol": symbols[0], "engine": engine,
                 "combinations": len(positions), "skipped": combos.skipped, "sort_by": sort_by,
                 "chunk_size": min(chunk, total) if vector else 1, "vectorbt_calls": calls if vector else 0}  # fmt: skip
    return out
