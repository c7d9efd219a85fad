"""The experiment store from a notebook: list runs, load one, run one again and prove it.

Every ``wb.backtest`` lands in the configured store (``WORKBENCH_STORE``, see
:func:`workbench.api.default_store`). These use cases read it:

- :func:`runs` — the runs as a DataFrame, filtered by strategy, symbol, date, kind;
- :func:`load_run` — one run, as the :class:`~workbench.strategy.result.BacktestResult`
  it was;
- :func:`rerun` — execute a stored run's spec again on its data and compare: the same
  data hash, code commit, library versions and byte-identical tables mean *identical*;
  otherwise the answer names what differs (data, code, versions, which tables).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from workbench.adapters.experiments import SQLiteStore, code_version, table_hashes
from workbench.api import resolve_store, run
from workbench.data import load_prices
from workbench.errors import ParameterError
from workbench.strategy.result import BacktestResult

__all__ = ["runs", "load_run", "rerun", "Rerun"]


def _store(store: SQLiteStore | str | None) -> SQLiteStore:
    found = resolve_store("default" if store is None else store)
    if found is None:
        raise ParameterError("the experiment store is off (WORKBENCH_STORE=off); pass store=wb.SQLiteStore(path)")
    if not isinstance(found, SQLiteStore):
        raise ParameterError(f"runs, load_run and rerun read an SQLiteStore, got {found!r}")
    return found


def runs(strategy: str | None = None, symbol: str | None = None, since: Any = None, *, kind: str | None = None,
         status: str | None = None, store: SQLiteStore | None = None) -> pd.DataFrame:  # fmt: skip
    """The stored runs as a table (one row each, oldest first; the stats as columns).

    ``strategy`` is a registry key (``"sma_crossover"``) or a strategy's name
    (``"SMACrossover"``); ``symbol`` one of the run's symbols; ``since`` a time (naive =
    UTC) the run was made at or after; ``kind`` backtest / trial / fold / report;
    ``status`` ok / failed.

    >>> import workbench as wb
    >>> r = wb.backtest("sma_crossover", "GOOG")
    >>> r.run_id in set(wb.runs(strategy="sma_crossover", symbol="GOOG")["run_id"])
    True
    """
    return _store(store).frame(strategy=_strategy_name(strategy), symbol=symbol, since=since, kind=kind, status=status)


def _strategy_name(strategy: str | None) -> str | None:
    """A registry key (``"ema_crossover"``) as the name runs are stored under (``EMACrossover``)."""
    from workbench.strategies import BUILTINS

    cls = BUILTINS.get(strategy) if strategy is not None else None
    return cls.__name__ if cls is not None else strategy


def load_run(run_id: str, *, store: SQLiteStore | None = None, trusted: bool = False) -> BacktestResult:
    """The stored run ``run_id`` (or the latest run of a spec id)."""
    return _store(store).load(run_id, trusted=trusted)


@dataclass
class Rerun:
    """A stored run executed again. ``identical``: the same data gave byte-identical
    tables (equity, positions, orders, fills, trades, risk events). ``differences`` names
    what differs in the result (data, tables); ``context`` what differs around it (code
    commit, library versions), which may or may not have changed the result."""

    run_id: str
    result: BacktestResult
    differences: list[str] = field(default_factory=list)
    context: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.differences

    def __repr__(self) -> str:
        what = "identical" if self.identical else "DIFFERENT: " + "; ".join(self.differences)
        also = f" ({'; '.join(self.context)})" if self.context else ""
        return f"<Rerun {self.run_id}: {what}{also}>"


def rerun(run_id: str, prices: pd.DataFrame | None = None, *, store: SQLiteStore | None = None,
          trusted: bool = False) -> Rerun:  # fmt: skip
    """Run the stored ``run_id`` again and compare it with what was stored.

    ``prices`` defaults to the run's symbols from the source it was loaded from (the
    offline sample, or the cache); pass the frame itself for data from elsewhere. The new
    run is not stored (it is a check, not an experiment).
    """
    st = _store(store)
    key = st.resolve(run_id)
    old = st.load(key, trusted=trusted)
    rec = st.record(key)
    spec = old.spec
    data = spec.data
    if prices is None:
        if data is None or data.source not in ("sample", "files", "yahoo", "ccxt", "synthetic"):
            raise ParameterError(f"run {run_id!r} was made on data from {getattr(data, 'source', None)!r}; "
                                 "pass prices= to rerun it")  # fmt: skip
        symbols = list(data.symbols)
        prices = load_prices(symbols[0] if len(symbols) == 1 else symbols, source=data.source, progress=False)
        if data.start and data.end:
            prices = prices.loc[pd.Timestamp(data.start) : pd.Timestamp(data.end)]
    new = run(spec.replace(data=None, instruments=()), prices, store=None)
    return Rerun(key, new, _result_differences(old, new, st.stored_hashes(key)), _context(old, new, rec))


def _result_differences(old: BacktestResult, new: BacktestResult, stored: dict[str, str]) -> list[str]:
    out = []
    a, b = old.spec.data, new.spec.data
    if a is not None and b is not None and (a.sha256, a.bars) != (b.sha256, b.bars):
        out.append(f"data: {a.bars} bars sha256 {a.sha256[:12]} then, {b.bars} bars sha256 {b.sha256[:12]} now")
    if new.id != old.id:
        out.append(f"spec id: {old.id} then, {new.id} now")
    now = table_hashes(new)
    tables = sorted(k for k in set(stored) | set(now) if stored.get(k) != now.get(k))
    if tables:
        out.append("tables: " + ", ".join(tables) + " differ")
    return out


def _context(old: BacktestResult, new: BacktestResult, rec: dict[str, Any]) -> list[str]:
    out = []
    commit, dirty, _ = code_version()
    if (rec["code_commit"], bool(rec["code_dirty"])) != (commit, dirty):
        then = f"{(rec['code_commit'] or '?')[:10]}{' (dirty)' if rec['code_dirty'] else ''}"
        out.append(f"code: commit {then} then, {commit[:10] or '?'}{' (dirty)' if dirty else ''} now")
    changed = {k: (v, new.versions.get(k)) for k, v in old.versions.items() if new.versions.get(k) != v}
    if changed:
        out.append("versions: " + ", ".join(f"{k} {x} then, {y} now" for k, (x, y) in changed.items()))
    return out

