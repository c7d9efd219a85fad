"""Where a batch of independent research tasks runs: here, in local processes, or on Dask.

A sweep's chunks, an optimisation's trials and a bootstrap's paths are independent
tasks over one large read-only input (the prices and the spec). A :class:`TaskRunner`
runs them and gives the results back **in task order**, so whatever ran them and in
whatever order they finished, the caller reduces them in the same order and gets the same
bits: a sweep's table, a float sum, a quantile.

The port is one method, ``map(prepare, shared, items)``:

- ``prepare(shared)`` runs **once per worker** (not once per task) and returns the
  function applied to each item: that is where the prices are bound and vectorbt is
  imported, and ``shared`` crosses the wire once per worker, not once per task;
- results come back in the order of ``items``; at most ``in_flight`` tasks are pending,
  so a long stream of items never sits in memory at once;
- nothing random may depend on where a task runs: a task that draws random numbers gets
  its own seed in its item (:func:`task_seeds`), so the run equals the local one.

Runners: :class:`InProcess` (a loop), :class:`ProcessPool` (``spawn``ed processes of this
machine) and :class:`workbench.adapters.dask_cluster.DaskRunner` (a
``distributed.Client``: a ``LocalCluster`` or a scheduler address). Results return to the
caller, which alone writes the experiment store.
"""

from __future__ import annotations

import gc
import pickle
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np

from workbench.errors import ParameterError

__all__ = ["TaskRunner", "InProcess", "ProcessPool", "resolve_runner", "task_seeds", "ordered"]

Prepare = Callable[[Any], Callable[[Any], Any]]


@runtime_checkable
class TaskRunner(Protocol):
    """Runs ``prepare(shared)(item)`` for every item, yielding the results in item order."""

    workers: int

    def map(self, prepare: Prepare, shared: Any, items: Iterable[Any]) -> Iterator[Any]: ...


def task_seeds(seed: int, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child seeds of ``seed`` (``SeedSequence.spawn``): task ``i`` gets
    the ``i``-th, wherever and whenever it runs, so a distributed run equals the local one."""
    return np.random.SeedSequence(seed).spawn(n)


def ordered(submit: Callable[[Any], Any], items: Iterable[Any], in_flight: int,
            result: Callable[[Any], Any]) -> Iterator[Any]:  # fmt: skip
    """Submit items in order, at most ``in_flight`` pending, and yield ``result(future)``
    in submission order (a slow first task holds the others back, memory stays bounded)."""
    pending: deque = deque()
    for item in items:
        pending.append(submit(item))
        while len(pending) >= in_flight:
            yield result(pending.popleft())
    while pending:
        yield result(pending.popleft())


class InProcess:
    """Every task in this process, one after another (the reference every runner equals)."""

    workers = 1

    def map(self, prepare: Prepare, shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        fn = prepare(shared)
        for item in items:
            yield fn(item)

    def __repr__(self) -> str:
        return "InProcess()"


_PREPARED: dict[str, Callable[[Any], Any]] = {}


def worker_setup(prepare: Prepare, shared: Any, key: str = "pool") -> None:
    """Bind ``prepare(shared)`` in this worker process, then freeze the heap: the imports'
    objects (vectorbt's are many) are never scanned again, so a collect per task is cheap."""
    _PREPARED[key] = prepare(shared)
    gc.collect()
    gc.freeze()


def worker_task(item: Any, key: str = "pool") -> Any:
    """One task in a worker; collect after it (vectorbt's Portfolio is cyclic garbage that
    would otherwise pile up between the collector's own runs)."""
    out = _PREPARED[key](item)
    del item
    gc.collect()
    return out


def check_picklable(what: str, *objects: Any) -> None:
    """Refuse, by name, what another process cannot rebuild (a lambda, a local class)."""
    try:
        pickle.dumps(objects)
    except (pickle.PicklingError, AttributeError, TypeError) as e:
        raise ParameterError(f"{what} needs objects other processes can rebuild (not a lambda or a local class): "
                             f"{e}") from None  # fmt: skip


class ProcessPool:
    """``workers`` processes of this machine (``spawn``: each imports what ``prepare``
    needs once; fork would copy a parent holding vectorbt's threads and locks)."""

    def __init__(self, workers: int) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ParameterError(f"workers must be an int >= 1, got workers={workers!r}")
        self.workers = workers

    def map(self, prepare: Prepare, shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        check_picklable("workers > 1", prepare, shared)
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=worker_setup,
                                 initargs=(prepare, shared)) as pool:  # fmt: skip
            yield from ordered(lambda item: pool.submit(worker_task, item), items, 2 * self.workers,
                               lambda f: f.result())  # fmt: skip

    def __repr__(self) -> str:
        return f"ProcessPool(workers={self.workers})"


def resolve_runner(workers: int = 1, cluster: Any = None) -> TaskRunner:
    """The runner for ``workers=`` / ``cluster=`` arguments: ``cluster`` is a
    ``distributed.Client``, a scheduler address (``"tcp://host:8786"``) or a TaskRunner;
    ``workers`` > 1 is a local process pool; neither is this process."""
    if cluster is not None:
        if workers != 1:
            raise ParameterError(f"give workers= or cluster=, not both (workers={workers!r}, cluster={cluster!r})")
        if isinstance(cluster, TaskRunner):
            return cluster
        from workbench.adapters.dask_cluster import DaskRunner

        return DaskRunner(cluster)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ParameterError(f"workers must be an int >= 1, got workers={workers!r}")
    return InProcess() if workers == 1 else ProcessPool(workers)
