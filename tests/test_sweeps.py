"""Bounded sweeps (issue 9): chunked grids, the combination limit, grid-value errors.

Memory is checked through the chunking contract, not by timing or RSS: the chunk size
derived from the cap keeps the estimated bytes per vectorbt call within it, and the
calls (recorded by wrapping ``run_signal_grid``) are exactly ``ceil(n / chunk)``, each at
most ``chunk`` columns, with targets computed per chunk. ``bench/bench_sweep.py``
measures the real peak RSS.
"""

from __future__ import annotations

import gc
import math

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.engines import vectorized
from workbench.errors import SweepTooLargeError
from workbench.research import optimize

GRID = {"fast": [3, 5, 8, 13, 21], "slow": [10, 20, 35, 50], "allow_short": [False, True]}


@pytest.fixture
def calls(monkeypatch):
    """Every run_signal_grid call's targets shape, in order (the real function still runs)."""
    shapes: list[tuple[int, int]] = []
    real = vectorized.run_signal_grid

    def recording(prices, targets, *args):
        shapes.append(targets.shape)
        return real(prices, targets, *args)

    monkeypatch.setattr(vectorized, "run_signal_grid", recording)
    return shapes


def test_chunked_rows_equal_one_call_exactly(goog, calls, capsys):
    kw = dict(commission=0.001, slippage=wb.FixedBps(bps=5))
    one = wb.grid_search("sma_crossover", goog, GRID, memory_limit_mb=None, **kw)
    assert one.attrs["vectorbt_calls"] == 1 and calls == [(len(goog), 34)]
    tiny = 3 * optimize.combo_bytes(len(goog)) / 2**20  # three combinations per call
    many = wb.grid_search("sma_crossover", goog, GRID, memory_limit_mb=tiny, progress=True, **kw)
    assert many.attrs["chunk_size"] == 3 and many.attrs["vectorbt_calls"] == 12 == len(calls) - 1
    pd.testing.assert_frame_equal(one, many, check_exact=True)  # values and dtypes, bit for bit
    assert {k: one.attrs[k] for k in ("combinations", "skipped")} == {"combinations": 34, "skipped": 6}
    assert "grid (vectorbt, 3 per call)" in capsys.readouterr().err  # the progress bar


def test_chunk_size_keeps_the_estimate_within_the_cap():
    for bars in (100, 2_148, 50_000, 1_000_000):
        for cap in (1, 64, 256, 4096):
            chunk = optimize.chunk_size(bars, cap)
            assert chunk * optimize.combo_bytes(bars) <= cap * 2**20 or chunk == 1
            assert (chunk + 1) * optimize.combo_bytes(bars) > cap * 2**20  # and uses it
    assert optimize.chunk_size(2_148) == optimize.chunk_size(2_148, optimize.DEFAULT_MEMORY_LIMIT_MB) > 500
    assert optimize.chunk_size(10_000_000, 1) == 1  # never below one combination


def test_calls_are_ceil_n_over_chunk_with_targets_per_chunk(goog, calls, monkeypatch):
    built, resolved = [], []
    real_resolve = optimize.resolve_strategy

    def counting(strategy, params):
        resolved.append(params)
        return real_resolve(strategy, params)

    def rule(prices, window):
        built.append(window)
        return (prices["Close"] > prices["Close"].rolling(window).mean()).astype(float)

    monkeypatch.setattr(optimize, "resolve_strategy", counting)
    seen = []
    real_grid = vectorized.run_signal_grid
    monkeypatch.setattr(vectorized, "run_signal_grid",
                        lambda p, t, *a: seen.append((len(built), len(resolved))) or real_grid(p, t, *a))  # fmt: skip
    cap = 7.5 * optimize.combo_bytes(len(goog)) / 2**20
    out = wb.grid_search(rule, goog, {"window": list(range(2, 102))}, memory_limit_mb=cap)
    chunk = optimize.chunk_size(len(goog), cap)
    assert chunk == 7 and out.attrs["chunk_size"] == 7 and len(out) == 100
    assert len(calls) == math.ceil(100 / chunk) == out.attrs["vectorbt_calls"]
    assert [c for _, c in calls] == [7] * 14 + [2] and {r for r, _ in calls} == {len(goog)}
    # lazily: at each call, exactly the combinations and targets of the chunks so far
    cumulative = list(np.cumsum([c for _, c in calls]))
    assert seen == [(n, n) for n in cumulative]


def test_event_engine_rows_match_and_hold_no_strategy_list(goog):
    grid = {"fast": [5, 10], "slow": [20, 30]}
    vec = wb.grid_search("sma_crossover", goog, grid, commission=0.001, memory_limit_mb=0.02)
    ev = wb.grid_search("sma_crossover", goog, grid, commission=0.001, engine="event")
    assert vec.attrs["vectorbt_calls"] == 4 and ev.attrs["vectorbt_calls"] == 0
    pd.testing.assert_frame_equal(vec, ev, check_dtype=False, rtol=1e-9)


def test_a_grid_above_the_limit_fails_before_any_work(monkeypatch):
    huge = {"fast": range(2, 10**9), "slow": range(3, 10**9)}  # ~1e18: counted, never built
    with pytest.raises(SweepTooLargeError) as err:
        wb.grid_search("sma_crossover", "NO_SUCH_SYMBOL", huge)  # prices never loaded
    msg = str(err.value)
    assert "999,999,995,000,000,006 combinations (fast 999,999,998 × slow 999,999,997)" in msg and "limit of 100,000" in msg
    assert "max_combinations=999999995000000006" in msg and isinstance(err.value, wb.ParameterError)
    grid = {"fast": range(2, 402), "slow": range(402, 653)}  # 100,400
    with pytest.raises(SweepTooLargeError, match=r"100,400 combinations \(fast 400 × slow 251\)"):
        wb.grid_search("sma_crossover", "NO_SUCH_SYMBOL", grid)
    monkeypatch.setenv("WORKBENCH_MAX_COMBINATIONS", "3")
    with pytest.raises(SweepTooLargeError, match="above the limit of 3; .*WORKBENCH_MAX_COMBINATIONS"):
        wb.grid_search("sma_crossover", "NO_SUCH_SYMBOL", {"fast": [5, 10], "slow": [20, 50]})
    ok = wb.grid_search("sma_crossover", "GOOG", {"fast": [5, 10], "slow": [20, 50]}, max_combinations=4)
    assert len(ok) == 4  # the explicit argument wins over the environment
    monkeypatch.setenv("WORKBENCH_MAX_COMBINATIONS", "lots")
    with pytest.raises(wb.ParameterError, match="WORKBENCH_MAX_COMBINATIONS must be a positive integer, got 'lots'"):
        wb.grid_search("sma_crossover", "GOOG", {"fast": [5]})


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"fast": 10}, r"grid values must be lists: fast=10; write fast=\[10\]"),
        ({"fast": "abc"}, r"grid values must be lists: fast='abc'"),
        ({"fast": b"ab"}, r"grid values must be lists: fast=b'ab'"),
        ({"fast": {5, 10}}, r"grid values must be lists: fast=\{"),
        ({"fast": (f for f in [5])}, r"grid values must be lists: fast=<generator"),
        ({"fast": np.array([[5, 10]])}, r"grid values must be lists: fast=array"),
        ({"fast": [5, 10], "slow": []}, r"grid values must not be empty: slow=\[\]"),
        ({"fast": [5, 10, 5, 10, 7]}, r"grid values must be distinct: fast repeats \[10, 5\]"),
        ({}, "grid must map at least one parameter"),
        ([("fast", [5])], "grid must map at least one parameter"),
        ({1: [5]}, "grid keys must be parameter names"),
    ],
)
def test_bad_grid_values_name_the_parameter(grid, message):
    with pytest.raises(wb.ParameterError, match=message):
        wb.grid_search("sma_crossover", "NO_SUCH_SYMBOL", grid)


@pytest.mark.parametrize("bad", [0, -5, float("nan"), float("inf"), "256", True])
def test_bad_memory_limit_or_combination_limit(bad):
    with pytest.raises(wb.ParameterError, match="memory_limit_mb must be a number of MiB"):
        wb.grid_search("sma_crossover", "NO_SUCH_SYMBOL", {"fast": [5]}, memory_limit_mb=bad)
    with pytest.raises(wb.ParameterError, match="max_combinations must be a positive integer"):
        wb.grid_search("sma_crossover", "NO_SUCH_SYMBOL", {"fast": [5]}, max_combinations=bad)


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"cash": "1e4"}, "cash must be > 0"), ({"commission": float("nan")}, "commission"),
     ({"slippage": 5}, "slippage must be a slippage model"), ({"size": 0}, "size must be")],
)  # fmt: skip
def test_costs_are_checked_before_prices_are_loaded(kw, message):
    with pytest.raises(wb.ParameterError, match=message):
        wb.grid_search("sma_crossover", "NO_SUCH_SYMBOL", {"fast": [5]}, **kw)


def test_sequences_ranges_and_arrays_are_values_and_none_valid_says_why(goog):
    grid = {"fast": range(5, 11, 5), "slow": np.array([20, 50]), "allow_short": (False,)}
    out = wb.grid_search("sma_crossover", goog, grid)
    assert sorted(zip(out.fast, out.slow, strict=True)) == [(5, 20), (5, 50), (10, 20), (10, 50)]
    assert out["fast"].dtype == np.int64 and out["allow_short"].dtype == bool
    with pytest.raises(wb.ParameterError, match=r"no valid combination in the grid \(2 tried\): .*fast must be < slow"):
        wb.grid_search("sma_crossover", goog, {"fast": [50, 60], "slow": [20]})


def test_the_collector_is_left_as_found(goog):
    grid = {"fast": [5, 10], "slow": [20, 50]}
    wb.grid_search("sma_crossover", goog, grid, memory_limit_mb=0.02)
    assert gc.get_freeze_count() == 0 and gc.isenabled()
    gc.freeze()  # a caller's own freeze (e.g. before forking workers) is not undone
    try:
        wb.grid_search("sma_crossover", goog, grid, memory_limit_mb=0.02)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_astronomical_inputs_are_typed_errors_not_overflows():
    import workbench as wb
    from workbench.errors import ParameterError, SweepTooLargeError

    with pytest.raises(SweepTooLargeError):
        wb.grid_search("sma_crossover", "GOOG", {"fast": range(10**19), "slow": [50]})
    with pytest.raises(ParameterError, match="memory_limit_mb must be"):
        wb.grid_search("sma_crossover", "GOOG", {"fast": [5], "slow": [50]}, memory_limit_mb=1e303)


def test_two_worker_processes_give_the_same_table() -> None:
    """workers=2 runs the same chunks in two spawned processes, collected in order."""
    grid = {"fast": list(range(2, 22)), "slow": list(range(30, 60)), "allow_short": [False, True]}
    one = wb.grid_search("sma_crossover", "GOOG", grid, commission=0.001, memory_limit_mb=1, progress=False)
    two = wb.grid_search("sma_crossover", "GOOG", grid, commission=0.001, memory_limit_mb=1, progress=False, workers=2)
    assert one.attrs["vectorbt_calls"] > 2, "several chunks, so both workers take some"
    pd.testing.assert_frame_equal(one, two)
    same = ("strategy", "symbol", "engine", "combinations", "skipped", "sort_by")
    assert {k: one.attrs[k] for k in same} == {k: two.attrs[k] for k in same}


def test_workers_must_be_a_positive_int_and_the_strategy_rebuildable() -> None:
    with pytest.raises(wb.ParameterError, match="workers must be an int >= 1"):
        wb.grid_search("sma_crossover", "GOOG", {"fast": [5], "slow": [20]}, workers=0)
    with pytest.raises(wb.ParameterError, match="needs objects other processes can rebuild"):
        wb.grid_search(lambda prices, n=1: prices["Close"] * 0, "GOOG", {"n": [1, 2]}, workers=2)
