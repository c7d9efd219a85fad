"""Sweeps, searches and bootstraps on a Dask LocalCluster equal the local run, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.research.tasks import InProcess, ProcessPool, resolve_runner, task_seeds

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes (spawned: they import workbench themselves)."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=40)  # fmt: skip
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _prepare_unseeded(shared):
    """A task that draws from fresh OS entropy: only an impure submit runs it twice."""
    return lambda item: float(np.random.default_rng().random())


def _prepare_seeded(shared):
    scale = shared
    return lambda task: scale * np.random.default_rng(task[1]).random(task[0])


def _prepare_pid(shared):
    import os

    return lambda item: os.getpid()


def test_identical_random_tasks_are_not_merged(client) -> None:
    """Dask's default pure=True would hash identical calls into one key and one result."""
    runner = wb.DaskRunner(client)
    out = list(runner.map(_prepare_unseeded, None, [0] * 6))
    assert len(set(out)) == 6
    pure = client.map(lambda _: float(np.random.default_rng().random()), [0] * 6)  # the trap, for contrast
    assert len(set(client.gather(pure))) == 1


def test_per_task_seeds_give_the_local_result_in_task_order(client) -> None:
    tasks = list(zip([3, 1, 4, 1, 5, 9, 2, 6], task_seeds(7, 8), strict=True))
    local = list(InProcess().map(_prepare_seeded, 2.0, tasks))
    remote = list(wb.DaskRunner(client).map(_prepare_seeded, 2.0, tasks))
    assert len(remote) == 8
    for a, b in zip(local, remote, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(local[1], local[3]), "equal sizes, different seeds: different draws"


def test_tasks_run_on_both_workers(client) -> None:
    pids = set(wb.DaskRunner(client).map(_prepare_pid, None, range(40)))
    assert len(pids) == 2


def test_grid_search_on_the_cluster_equals_one_process(client) -> None:
    grid = {"fast": list(range(2, 22)), "slow": list(range(30, 60)), "allow_short": [False, True]}
    one = wb.grid_search("sma_crossover", "GOOG", grid, commission=0.001, memory_limit_mb=1, progress=False)
    dask = wb.grid_search("sma_crossover", "GOOG", grid, commission=0.001, memory_limit_mb=1, progress=False,
                          cluster=client)  # fmt: skip
    assert one.attrs["vectorbt_calls"] > 4
    pd.testing.assert_frame_equal(one, dask)
    same = ("strategy", "symbol", "engine", "combinations", "skipped", "sort_by")
    assert {k: one.attrs[k] for k in same} == {k: dask.attrs[k] for k in same}


def test_grid_search_by_scheduler_address(client) -> None:
    grid = {"fast": [5, 10, 20], "slow": [50, 100]}
    one = wb.grid_search("sma_crossover", "GOOG", grid, progress=False)
    addr = wb.grid_search("sma_crossover", "GOOG", grid, progress=False, cluster=client.scheduler.address)
    pd.testing.assert_frame_equal(one, addr)


def test_event_engine_sweep_on_the_cluster(client) -> None:
    grid = {"fast": [5, 10], "slow": [30, 60]}
    kw = {"engine": "event", "commission": 0.001, "progress": False}
    pd.testing.assert_frame_equal(wb.grid_search("sma_crossover", "GOOG", grid, **kw),
                                  wb.grid_search("sma_crossover", "GOOG", grid, cluster=client, **kw))  # fmt: skip


def test_optimize_on_the_cluster_equals_the_local_search(client, tmp_path) -> None:
    space = {"fast": list(range(5, 40, 5)), "slow": list(range(50, 200, 25))}
    here = wb.optimize("sma_crossover", "GOOG", space, method="random", n_trials=30, seed=3, n_blocks=8,
                       store=wb.SQLiteStore(tmp_path / "a.sqlite"))  # fmt: skip
    there = wb.optimize("sma_crossover", "GOOG", space, method="random", n_trials=30, seed=3, n_blocks=8,
                        store=wb.SQLiteStore(tmp_path / "b.sqlite"), cluster=client)  # fmt: skip
    pd.testing.assert_frame_equal(here.trials, there.trials)
    pd.testing.assert_frame_equal(here.returns, there.returns)
    pd.testing.assert_series_equal(here.overfitting, there.overfitting)
    assert wb.SQLiteStore(tmp_path / "b.sqlite").count(kind="trial") == 30, "the client wrote every trial"


def test_walk_forward_on_the_cluster_equals_the_local_run(client) -> None:
    kw = {"train": 750, "test": 250, "n_blocks": 4, "store": None}
    space = {"fast": [5, 10, 20], "slow": [50, 100]}
    here = wb.walk_forward_optimize("sma_crossover", "GOOG", space, **kw)
    there = wb.walk_forward_optimize("sma_crossover", "GOOG", space, cluster=client, **kw)
    pd.testing.assert_frame_equal(here.folds, there.folds)
    pd.testing.assert_series_equal(here.oos_returns, there.oos_returns)


def test_block_bootstrap_on_the_cluster_equals_the_local_run(client) -> None:
    r = wb.backtest("sma_crossover", "GOOG", store=None).returns
    here = wb.block_bootstrap(r, n_paths=5000, block=10, seed=11)
    there = wb.block_bootstrap(r, n_paths=5000, block=10, seed=11, cluster=client)
    assert len(here.paths) == 5000
    pd.testing.assert_frame_equal(here.paths, there.paths)
    other = wb.block_bootstrap(r, n_paths=5000, block=10, seed=12)
    assert not here.paths.equals(other.paths)


def test_local_process_pool_equals_the_cluster(client) -> None:
    tasks = list(zip([2, 2, 2], task_seeds(1, 3), strict=True))
    pool = list(ProcessPool(2).map(_prepare_seeded, 1.0, tasks))
    dask = list(wb.DaskRunner(client).map(_prepare_seeded, 1.0, tasks))
    for a, b in zip(pool, dask, strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_cluster_arguments_are_named(client) -> None:
    with pytest.raises(wb.ParameterError, match="give workers= or cluster=, not both"):
        resolve_runner(2, client)
    with pytest.raises(wb.ParameterError, match="cluster must be a distributed.Client or a scheduler address"):
        resolve_runner(1, 42)
    with pytest.raises(wb.ParameterError, match="cannot reach the Dask scheduler"):
        _ = resolve_runner(1, "tcp://127.0.0.1:9").workers
    with pytest.raises(wb.ParameterError, match="needs objects other processes can rebuild"):
        wb.grid_search(lambda prices, n=1: prices["Close"] * 0, "GOOG", {"n": [1, 2]}, cluster=client)


def test_a_task_error_reaches_the_caller(client) -> None:
    with pytest.raises(wb.ParameterError, match="top_k must be"):
        list(wb.DaskRunner(client).map(_prepare_failing, None, [1]))


def _prepare_failing(shared):
    def fail(item):
        raise wb.ParameterError("top_k must be <= 4, got top_k=9")

    return fail


def _prepare_profiler_state(shared):
    from distributed import get_worker

    return lambda item: get_worker().periodic_callbacks["profile"].is_running()


def test_the_workers_profiler_is_paused_for_a_run_and_resumed_after(client) -> None:
    """Dask's 10 ms stack sampler holds the GIL: a sweep ran at half speed under it."""
    assert set(wb.DaskRunner(client).map(_prepare_profiler_state, None, range(4))) == {False}
    assert all(client.run(lambda dask_worker: dask_worker.periodic_callbacks["profile"].is_running()).values())
    assert set(wb.DaskRunner(client, profile=True).map(_prepare_profiler_state, None, range(4))) == {True}


def _clients(client) -> int:
    return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.clients))


def test_a_call_refused_before_any_work_opens_no_client(client) -> None:
    before = _clients(client)
    for _ in range(3):
        with pytest.raises(wb.ParameterError, match="sort_by must be one of"):
            wb.grid_search("sma_crossover", "GOOG", {"fast": [5], "slow": [50]}, sort_by="nonsense",
                           cluster=client.scheduler.address)  # fmt: skip
    assert _clients(client) == before


def _prepare_slow(shared):
    import time

    return lambda item: time.sleep(shared) or item


def _prepared_runs() -> int:
    from workbench.adapters import dask_cluster

    return len(dask_cluster._PREPARED)


def test_stopping_early_leaves_no_run_bound_on_a_worker(client) -> None:
    """A cancel does not wait for a task already sent: a late one must not bind its run again."""
    runner = wb.DaskRunner(client)
    for _ in range(15):
        g = runner.map(_prepare_slow, 0.002, range(1000))
        for _ in range(3):
            next(g)
        g.close()
    import time

    time.sleep(0.5)
    assert sum(client.run(_prepared_runs).values()) == 0
