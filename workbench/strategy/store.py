"""The ExperimentStore port: where backtest runs are kept and found again.

The domain owns the interface; the embedded SQLite store (research issue) and this
module's :class:`MemoryStore` implement it. A run is saved under its ``run_id`` (the
spec, the engine and the library versions), so saving the same run twice is a no-op,
and found again by that id or by its spec id (the latest run of that spec).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, runtime_checkable

import pandas as pd

from workbench.errors import ParameterError
from workbench.strategy.result import BacktestResult
from workbench.strategy.spec import BacktestSpec

__all__ = ["ExperimentStore", "MemoryStore", "RunNotFoundError"]


class RunNotFoundError(ParameterError, LookupError):
    """No stored run has this run id or spec id."""


@runtime_checkable
class ExperimentStore(Protocol):
    def save(self, result: BacktestResult, *, seconds: float | None = None) -> str:
        """Keep ``result`` (``seconds``: how long it took); return its run id (idempotent)."""
        ...

    def record_failure(self, spec: BacktestSpec, error: BaseException, *, seconds: float | None = None) -> str:
        """Keep a run that raised: its spec and the error; return the failure's id."""
        ...

    def load(self, key: str) -> BacktestResult:
        """The run with run id ``key``, or the latest run of spec id ``key``."""
        ...

    def runs(self, spec_id: str | None = None) -> list[str]:
        """Run ids, oldest first (only those of ``spec_id`` when given)."""
        ...


class MemoryStore:
    """An in-process store (tests, notebooks): results are copied in and out, so a caller
    mutating a loaded frame cannot change what is stored.

    >>> import workbench as wb
    >>> store = MemoryStore()
    >>> r = wb.backtest("sma_crossover", "GOOG", store=store)
    >>> store.runs() == [r.run_id] and store.load(r.id).stats.equals(r.stats)
    True
    """

    def __init__(self) -> None:
        self._runs: dict[str, BacktestResult] = {}
        #: (spec, "ErrorType: message") of each run that raised, in order
        self.failures: list[tuple[BacktestSpec, str]] = []

    def save(self, result: BacktestResult, *, seconds: float | None = None) -> str:
        """Keep a copy; saving a run again makes it the latest of its spec (same run id)."""
        run_id = result.run_id
        self._runs.pop(run_id, None)
        self._runs[run_id] = _copy(result)
        return run_id

    def record_failure(self, spec: BacktestSpec, error: BaseException, *, seconds: float | None = None) -> str:
        self.failures.append((spec, f"{type(error).__name__}: {error}"))
        return f"failed-{len(self.failures)}"

    def load(self, key: str) -> BacktestResult:
        found = self._runs.get(key)
        if found is None:
            latest = [r for r in self._runs.values() if r.id == key]
            if not latest:
                raise RunNotFoundError(f"no stored run has run id or spec id {key!r} ({len(self._runs)} runs stored)")
            found = latest[-1]
        return _copy(found)

    def runs(self, spec_id: str | None = None) -> list[str]:
        return [k for k, r in self._runs.items() if spec_id is None or r.id == spec_id]


def _copy(result: BacktestResult) -> BacktestResult:
    """The result with its tables and dicts copied and no engine object: what a caller
    does to a copy never reaches the store. The spec is shared: it is frozen."""

    def frame(x: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
        return x.copy(deep=True)

    return dataclasses.replace(
        result, equity=frame(result.equity), returns=frame(result.returns), orders=frame(result.orders),
        fills=frame(result.fills), trades=frame(result.trades), positions=frame(result.positions),
        stats=frame(result.stats), versions=dict(result.versions), hooks=dict(result.hooks),
        conventions=dict(result.conventions), native=None,
        risk=None if result.risk is None else dataclasses.replace(result.risk, events=result.risk.events.copy(deep=True)),
    )  # fmt: skip
