"""The research TaskRunner on a Dask cluster (``distributed``): a LocalCluster or a scheduler.

``DaskRunner(client)`` or ``DaskRunner("tcp://scheduler:8786")`` runs the same tasks as
the local runners (:mod:`workbench.research.tasks`) and returns the same results in the
same order. What it takes care of, because Dask's defaults would get it wrong:

- **``pure=False`` and a key per task.** ``client.submit`` defaults to ``pure=True``,
  which hashes the function and arguments into the key and merges identical calls into
  one result: two bootstrap tasks with the same arguments would come back as one path.
  Every task here is submitted impure under its own key (run id + task number).
- **Seeds travel in the item**, never from the worker's state, so a task's random draws
  do not depend on which worker ran it (:func:`workbench.research.tasks.task_seeds`).
- **Fixed reduction order.** Results are gathered in submission order by the caller and
  reduced there, so float sums are bit-identical to the local run; nothing is summed on
  the cluster in completion order.
- **The shared input crosses the wire once per worker**: ``(prepare, shared)`` is
  scattered with ``broadcast=True``; each worker runs ``prepare(shared)`` once per run
  (cached under the run id, dropped when the run ends).
- **Bounded memory.** At most two tasks per worker are pending; the caller consumes
  results as they arrive.
- **No profiler tax.** Dask's workers sample each task thread's stack every 10 ms, which
  holds the GIL: measured here, a sweep's chunks took 1.7 s of wall time for 0.65 s of
  CPU. The runner pauses that profiler on the workers for the length of a run and
  resumes it after (``profile=True`` keeps it running).
- **No page-fault tax.** Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``
  (against fragmentation), which pins glibc's mmap threshold at 128 KiB, so each chunk's
  arrays are mapped and faulted in afresh: chunks took 1.5x the CPU of the same chunks
  here. For the length of a run the workers serve allocations up to 32 MiB from the heap
  and keep freed memory (``mallopt``); after it the thresholds are put back and the
  memory trimmed (``tune_allocator=False`` leaves them alone; glibc only).
- **The store stays single-writer**: workers return results; the caller writes them.

Workers must be able to import ``workbench`` (the same environment as the client: a
``LocalCluster`` inherits it; for a real cluster, install the package on the workers).
"""

from __future__ import annotations

import contextlib
import gc
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from workbench.errors import ParameterError

__all__ = ["DaskRunner"]

_PREPARED: dict[str, Callable[[Any], Any]] = {}
_DONE: set[str] = set()  # finished runs: a task of one that starts late must not bind it again
_LOCK = threading.Lock()


class RunFinished(RuntimeError):
    """A task of a run that already ended (cancelled after the caller stopped reading)."""


def _run_task(run: str, setup: tuple[Callable[[Any], Any], Any], item: Any) -> Any:
    """On a worker: bind ``prepare(shared)`` once per run, then apply it to the item."""
    fn = _PREPARED.get(run)
    if fn is None:
        with _LOCK:  # a worker with several threads binds once
            if run in _DONE:
                raise RunFinished(f"run {run} has ended")
            fn = _PREPARED.get(run)
            if fn is None:
                prepare, shared = setup
                fn = _PREPARED[run] = prepare(shared)
                gc.collect()
                gc.freeze()  # the imports' objects are never scanned again: a collect per task stays cheap
    out = fn(item)
    del item
    gc.collect()  # vectorbt's Portfolio is cyclic garbage: collect it before the next task
    return out


def _pause_profiler(dask_worker: Any) -> bool:
    """On a worker: stop Dask's statistical profiler (it samples every task thread's stack
    every 10 ms holding the GIL: a sweep's Python-heavy chunks ran at half speed)."""
    pc = dask_worker.periodic_callbacks.get("profile")
    if pc is None or not pc.is_running():
        return False
    pc.stop()
    return True


def _resume_profiler(dask_worker: Any) -> None:
    pc = dask_worker.periodic_callbacks.get("profile")
    if pc is not None and not pc.is_running():
        pc.start()


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)
_GLIBC_MMAP_DEFAULT = 128 * 1024


def _libc() -> Any:
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to tune
        return None


def _roomy_allocator() -> bool:
    """On a worker: serve arrays up to 32 MiB from the heap and keep freed memory for the
    next chunk. Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which
    also fixes glibc's mmap threshold at 128 KiB: every chunk's 13 MB arrays were mapped,
    page-faulted and unmapped again (1.8 s of system time for 7 chunks against 0.6 s)."""
    libc = _libc()
    return bool(libc and libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def _usual_allocator() -> None:
    """On a worker: back to the thresholds it started with, and return the freed memory."""
    import os

    libc = _libc()
    if libc:
        libc.mallopt(_M_MMAP_THRESHOLD, _GLIBC_MMAP_DEFAULT)
        libc.mallopt(_M_TRIM_THRESHOLD, int(os.environ.get("MALLOC_TRIM_THRESHOLD_", _GLIBC_MMAP_DEFAULT)))
        libc.malloc_trim(0)


def _forget(run: str) -> None:
    """On a worker: drop a finished run's bound function (and the prices it holds), and
    refuse its late tasks (a cancel does not wait for a task already sent)."""
    with _LOCK:
        _DONE.add(run)
        _PREPARED.pop(run, None)
    gc.unfreeze()
    gc.collect()


class DaskRunner:
    """Tasks on a Dask cluster, results in task order (see the module notes)."""

    def __init__(self, cluster: Any, *, profile: bool = False, tune_allocator: bool = True) -> None:
        from distributed import Client

        self.profile, self.tune_allocator = profile, tune_allocator
        if isinstance(cluster, Client):
            self._client, self._address, self._owned = cluster, None, False
        elif isinstance(cluster, str) and cluster.strip():
            self._client, self._address, self._owned = None, cluster.strip(), True  # connected on first use
        else:
            raise ParameterError(f"cluster must be a distributed.Client or a scheduler address such as "
                                 f"'tcp://host:8786', got cluster={cluster!r}")  # fmt: skip

    @property
    def client(self) -> Any:
        """The client; one made from an address connects here, on first use, so a call
        refused before any work (a bad argument) never opens one."""
        if self._client is None:
            from distributed import Client

            try:
                self._client = Client(self._address, timeout="10s")
            except OSError as e:
                raise ParameterError(f"cannot reach the Dask scheduler at cluster={self._address!r}: {e}") from None
        return self._client

    @property
    def workers(self) -> int:
        return max(1, len(self.client.scheduler_info(n_workers=-1)["workers"]))

    def map(self, prepare: Callable[[Any], Callable[[Any], Any]], shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        client, run = self.client, uuid.uuid4().hex
        pending: deque = deque()
        paused: dict[str, bool] = {}
        try:
            setup = client.scatter((prepare, shared), broadcast=True, hash=False)
            in_flight = 2 * self.workers
            paused = {} if self.profile else client.run(_pause_profiler)
            if self.tune_allocator:
                client.run(_roomy_allocator)
            for i, item in enumerate(items):
                pending.append(client.submit(_run_task, run, setup, item, pure=False, key=f"workbench-{run}-{i}"))
                while len(pending) >= in_flight:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            self._cleanup(client, run, pending, paused)

    def _cleanup(self, client: Any, run: str, pending: deque, paused: dict[str, bool]) -> None:
        """Every step tried on its own, so one failing cannot skip the others (nor hide the
        error that ended the run)."""
        for f in pending:
            f.cancel()
        steps: list[tuple[Callable[..., Any], dict[str, Any]]] = [(_forget, {"args": (run,)})]
        if self.tune_allocator:
            steps.append((_usual_allocator, {}))
        resume = [w for w, was in paused.items() if was]
        if resume:
            steps.append((_resume_profiler, {"workers": resume}))
        for fn, kw in steps:
            with contextlib.suppress(Exception):
                client.run(fn, *kw.get("args", ()), **({"workers": kw["workers"]} if "workers" in kw else {}))

    def close(self) -> None:
        """Close the client if this runner opened it (from an address)."""
        if self._owned and self._client is not None:
            self._client.close()
            self._client = None

    def __repr__(self) -> str:
        where = self._address if self._client is None else self._client.scheduler.address
        return f"DaskRunner({where!r})"
