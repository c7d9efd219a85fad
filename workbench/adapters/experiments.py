"""The embedded experiment store: SQLite in WAL mode behind the ExperimentStore port.

One database file (``WORKBENCH_STORE``, default ``<data>/experiments.sqlite``, see
:func:`workbench.config.store_path`) holds

- ``runs``: one row per run (a backtest, an optimisation trial, a walk-forward fold, a
  report run, or a failure): run id, spec id, kind, parent, strategy, symbols, engine,
  status, the spec (JSON, as :meth:`BacktestSpec.to_dict`, for queries; and the spec
  object itself, see below), data hash and span, code version (git commit, dirty flag,
  package version), library versions, timings, stats (JSON), the risk log summary;
- ``blobs``: the run's tables (equity, positions, orders, fills, trades, risk events) as
  Parquet bytes, each stored once under the SHA-256 of its bytes (two runs with the same
  trades share one blob) and referenced from ``run_tables``.

Concurrency: WAL journal (readers never block the writer), every write one
``BEGIN IMMEDIATE`` transaction with a 60 s busy timeout, so several processes (a
papermill batch, a sweep's workers, a dashboard reading) can write at once and a run is
either all there or not there at all: a writer killed mid-save leaves nothing half-written.
A connection is opened per process (after a fork the child opens its own: SQLite
connections must not cross a fork).

The spec object is kept with :mod:`pickle` so that :func:`workbench.research.experiments.rerun`
can run it again exactly; it is read back through an unpickler that only builds classes
of the workbench itself, numpy, pandas and the standard library's plain value types, so a
store file from elsewhere cannot run code when loaded. A spec of a user-defined strategy
(a class in a notebook) loads only with ``trusted=True``.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickle
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from hashlib import sha256
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench._sqlite import ProcessConnection, immediate
from workbench.errors import ParameterError
from workbench.risk.monitor import RiskLog
from workbench.strategy.result import BacktestResult
from workbench.strategy.spec import BacktestSpec
from workbench.strategy.store import RunNotFoundError

__all__ = ["SQLiteStore", "StoreError", "code_version", "TABLES", "KINDS"]

TABLES = ("equity", "returns", "positions", "orders", "fills", "trades", "risk_events")
KINDS = ("backtest", "trial", "fold", "report", "failed")
REPORT_RUN_ENV = "WORKBENCH_REPORT_RUN"  # set by workbench.report for a runbook's kernel
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, spec_id TEXT NOT NULL, kind TEXT NOT NULL, parent TEXT,
    strategy TEXT, symbols TEXT, engine TEXT, status TEXT NOT NULL, error TEXT,
    created REAL NOT NULL, seconds REAL, data_sha256 TEXT, data_start TEXT, data_end TEXT, bars INTEGER,
    code_commit TEXT, code_dirty INTEGER, code_version TEXT, versions TEXT, spec TEXT, spec_pickle BLOB,
    stats TEXT, risk TEXT, hooks TEXT, conventions TEXT
);
CREATE INDEX IF NOT EXISTS runs_spec ON runs(spec_id, created);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created);
CREATE TABLE IF NOT EXISTS blobs (hash TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS run_tables (
    run_id TEXT NOT NULL REFERENCES runs(run_id), name TEXT NOT NULL, hash TEXT NOT NULL REFERENCES blobs(hash),
    PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS report_runs (
    run_id TEXT PRIMARY KEY, runbook TEXT NOT NULL, status TEXT NOT NULL, error TEXT, started REAL NOT NULL,
    seconds REAL, parameters TEXT, folder TEXT, code_commit TEXT, code_dirty INTEGER, code_version TEXT
);
CREATE INDEX IF NOT EXISTS report_runs_started ON report_runs(runbook, started);
"""
_SAFE_MODULES = ("workbench.", "numpy", "pandas", "datetime", "collections", "builtins", "copyreg", "enum",
                 "zoneinfo", "pytz", "dateutil", "_codecs", "decimal")  # fmt: skip
_UNSAFE_BUILTINS = frozenset({"eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "__import__",
                              "globals", "locals", "vars", "input", "breakpoint", "exit", "quit"})  # fmt: skip


class StoreError(ParameterError):
    """The store cannot be opened or read (a bad path, a corrupt file, an untrusted spec)."""


@cache
def code_version() -> tuple[str, bool, str]:
    """(git commit, dirty, package version) of the code running now, looked up once per
    process: the commit and dirty flag of the checkout the package lives in (empty and
    False when it is not a git checkout), and the installed package version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        pkg = version("quant-workbench")
    except PackageNotFoundError:
        pkg = ""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()  # fmt: skip
        dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=5, check=True).stdout.strip())  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    return commit, dirty, pkg


def _pickled(spec: BacktestSpec) -> bytes | None:
    """The spec as pickle bytes, or None when it holds something pickle cannot rebuild (a
    lambda target, a class defined inside a function): such a run is listed and queried,
    not loaded or re-run."""
    try:
        return pickle.dumps(spec, protocol=5)
    except (pickle.PicklingError, AttributeError, TypeError):
        return None


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, trusted: bool) -> None:
        super().__init__(io.BytesIO(data))
        self.trusted = trusted

    def find_class(self, module: str, name: str) -> Any:
        safe = module.startswith(_SAFE_MODULES) and not (module == "builtins" and name in _UNSAFE_BUILTINS)
        if not (safe or self.trusted):
            raise StoreError(f"the stored spec needs {module}.{name}, which is not workbench code; "
                             "load it with trusted=True only if you trust the store file")  # fmt: skip
        return super().find_class(module, name)


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, engine="pyarrow", compression="zstd", index=True)
    return buf.getvalue()


def _frame(data: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(data), engine="pyarrow")


def _tables(result: BacktestResult) -> dict[str, pd.DataFrame]:
    """The result's tables as Parquet-friendly frames (object columns of None/float become
    floats; string columns stay strings)."""
    frames = result.to_frames()
    del frames["stats"]  # stats are JSON in the runs row
    frames["returns"] = result.returns.to_frame()
    if result.risk is not None:
        frames["risk_events"] = result.risk.events
    out = {}
    for name, f in frames.items():
        f = f.copy()
        f.columns = [str(c) for c in f.columns]
        for c in f.columns:
            if f[c].dtype == object and f[c].map(lambda v: v is None or isinstance(v, float)).all():
                f[c] = f[c].astype("float64")
        out[name] = f
    return out


def table_hashes(result: BacktestResult) -> dict[str, str]:
    """SHA-256 of each table's Parquet bytes: what :func:`rerun` compares."""
    return {name: sha256(_parquet(f)).hexdigest() for name, f in _tables(result).items()}


def _json(value: Any, sort: bool = True) -> str:
    def default(x: Any) -> Any:
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, pd.Timestamp | pd.Timedelta):
            return str(x)
        return repr(x)

    return json.dumps(value, default=default, allow_nan=True, sort_keys=sort)


def _stats(stats: pd.Series) -> dict[str, Any]:
    out = {}
    for k, v in stats.items():
        if isinstance(v, pd.Timedelta):
            out[str(k)] = {"timedelta": v.value}
        elif isinstance(v, pd.Timestamp):
            out[str(k)] = {"timestamp": v.isoformat()}
        elif isinstance(v, float | np.floating) and not math.isfinite(float(v)):
            out[str(k)] = {"float": repr(float(v))}
        else:
            out[str(k)] = v.item() if isinstance(v, np.generic) else v
    return out


def _unstats(data: dict[str, Any]) -> pd.Series:
    def one(v: Any) -> Any:
        if isinstance(v, dict) and "timedelta" in v:
            return pd.Timedelta(v["timedelta"])
        if isinstance(v, dict) and "float" in v:
            return float(v["float"])
        if isinstance(v, dict) and "timestamp" in v:
            return pd.Timestamp(v["timestamp"])
        return v

    return pd.Series({k: one(v) for k, v in data.items()}, dtype=object)


@dataclass(frozen=True)
class _Row:
    """What a save writes besides the tables."""

    values: dict[str, Any]
    tables: dict[str, bytes]


class SQLiteStore:
    """The embedded store (module notes). ``path`` is the database file (created with its
    folder when missing).

    >>> import tempfile, workbench as wb
    >>> store = SQLiteStore(tempfile.mkdtemp() + "/runs.sqlite")
    >>> r = wb.backtest("sma_crossover", "GOOG", store=store)
    >>> store.runs() == [r.run_id] and store.load(r.id).stats["n_trades"] == r.stats["n_trades"]
    True
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 60.0) -> None:
        self.path = Path(path).expanduser()
        self.timeout = timeout
        self._connection = ProcessConnection(self.path, SCHEMA, self.timeout, threads=True)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db()  # creates the file and its tables, or fails here with the path named
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open the experiment store at {self.path}: {e}") from e

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # -- connection -------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        """This process's connection (a forked child opens its own)."""
        return self._connection.get()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: the write lock up front, so concurrent writers queue
        on the busy timeout instead of failing on a lock upgrade."""
        with immediate(self._db()) as db:
            yield db

    def close(self) -> None:
        self._connection.close()

    # -- the port ---------------------------------------------------------------------------
    def save(self, result: BacktestResult, *, kind: str = "backtest", parent: str | None = None,
             seconds: float | None = None, tables: bool = True) -> str:  # fmt: skip
        """Keep ``result`` (all of it, or only its stats with ``tables=False``, as a sweep's
        trials are kept); saving the same run id again replaces it."""
        if parent is None:  # a backtest run by a runbook's kernel belongs to that report run
            parent = os.environ.get(REPORT_RUN_ENV) or None
        row = self._row(result, kind, parent, seconds, tables)
        with self._write() as db:
            self._insert(db, row)
        return result.run_id

    def save_many(self, results: list[BacktestResult], *, kind: str = "trial", parent: str | None = None,
                  tables: bool = False) -> list[str]:  # fmt: skip
        """Many runs in one transaction (a sweep's trials): all or none."""
        rows = [self._row(r, kind, parent, None, tables) for r in results]
        with self._write() as db:
            for row in rows:
                self._insert(db, row)
        return [r.run_id for r in results]

    def save_report(self, *, run_id: str, runbook: str, status: str, started: Any, seconds: float | None,
                    parameters: dict[str, Any], folder: str | None = None, error: str | None = None) -> str:  # fmt: skip
        """Keep one run of a runbook (kind ``report``): its status (ok, failed, timeout),
        error, parameters, folder and the code version; the backtests it ran are runs of
        their own with this id as their parent."""
        commit, dirty, pkg = code_version()
        ts = pd.Timestamp(started)
        ts = ts.tz_localize("UTC") if ts.tz is None else ts
        row = (run_id, runbook, status, error, ts.timestamp(), seconds, _json(parameters, sort=False), folder, commit,
               int(dirty), pkg)  # fmt: skip
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO report_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        return run_id

    def report_runs(self, runbook: str | None = None) -> pd.DataFrame:
        """The runbook runs kept, newest last (``parameters`` decoded)."""
        sql = "SELECT * FROM report_runs" + (" WHERE runbook = ?" if runbook else "") + " ORDER BY started"
        df = pd.read_sql_query(sql, self._db(), params=(runbook,) if runbook else ())
        df["started"] = pd.to_datetime(df["started"], unit="s", utc=True)
        df["parameters"] = [json.loads(p) if p else {} for p in df["parameters"]]
        df["code_dirty"] = df["code_dirty"].astype(bool)
        return df

    def save_trials(self, specs: list[BacktestSpec], stats: list[dict[str, Any]], *, parent: str) -> list[str]:
        """A search's trials in one transaction: each spec with its stats row (no tables,
        no result object: a vectorized sweep has neither), under the search's id."""
        from workbench.strategy.ids import stable_id

        rows = []
        for spec, row in zip(specs, stats, strict=True):
            run_id = stable_id({"trial": spec.id, "parent": parent})
            rows.append(_Row(self._spec_values(spec) | {
                "run_id": run_id, "kind": "trial", "parent": parent, "status": "ok", "error": None, "seconds": None,
                "stats": _json({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                                for k, v in row.items()}, sort=False),
            }, {}))  # fmt: skip
        with self._write() as db:
            for row in rows:
                self._insert(db, row)
        return [r.values["run_id"] for r in rows]

    def record_failure(self, spec: BacktestSpec, error: BaseException, *, kind: str = "backtest",
                       parent: str | None = None, seconds: float | None = None) -> str:  # fmt: skip
        """Keep a run that failed: its spec and the error, so a batch's failures are found
        again (status ``failed``)."""
        from workbench.strategy.ids import stable_id

        run_id = stable_id({"spec": spec.to_dict(), "failed": time.time_ns(), "pid": os.getpid()})
        values = self._spec_values(spec) | {
            "run_id": run_id, "kind": kind, "parent": parent, "status": "failed",
            "error": f"{type(error).__name__}: {error}"[:2000], "seconds": seconds,
        }  # fmt: skip
        with self._write() as db:
            self._insert(db, _Row(values, {}))
        return run_id

    def load(self, key: str, *, trusted: bool = False) -> BacktestResult:
        """The run with run id ``key`` (or the latest successful run of spec id ``key``)."""
        db = self._db()
        cur = db.execute("SELECT * FROM runs WHERE run_id = ?", (self.resolve(key),))
        rec = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
        if rec["status"] != "ok":
            raise RunNotFoundError(f"run {key!r} failed ({rec['error']}); it has no result to load")
        tables = {name: _frame(data) for name, data in db.execute(
            "SELECT t.name, b.data FROM run_tables t JOIN blobs b ON b.hash = t.hash WHERE t.run_id = ?",
            (rec["run_id"],))}  # fmt: skip
        return self._result(rec, tables, trusted)

    def resolve(self, key: str) -> str:
        """The stored run id of ``key``: a run id, or the latest successful run of a spec id."""
        db = self._db()
        row = db.execute("SELECT run_id FROM runs WHERE run_id = ?", (key,)).fetchone() or db.execute(
            "SELECT run_id FROM runs WHERE spec_id = ? AND status = 'ok' ORDER BY created DESC LIMIT 1", (key,)
        ).fetchone()
        if row is None:
            n = db.execute("SELECT count(*) FROM runs").fetchone()[0]
            raise RunNotFoundError(f"no stored run has run id or spec id {key!r} ({n} runs in {self.path})")
        return str(row[0])

    def runs(self, spec_id: str | None = None) -> list[str]:
        q = "SELECT run_id FROM runs WHERE status = 'ok'" + (" AND spec_id = ?" if spec_id else "") + " ORDER BY created"
        return [r[0] for r in self._db().execute(q, (spec_id,) if spec_id else ())]

    # -- queries ----------------------------------------------------------------------------
    def frame(self, *, strategy: str | None = None, symbol: str | None = None, since: Any = None,
              kind: str | None = None, status: str | None = None, parent: str | None = None) -> pd.DataFrame:  # fmt: skip
        """The runs as a table, newest last: one row per run, the stats as columns."""
        where, args = [], []
        for col, value in (("strategy", strategy), ("kind", kind), ("status", status), ("parent", parent)):
            if value is not None:
                where.append(f"{col} = ?")
                args.append(value)
        if symbol is not None:
            where.append("(',' || symbols || ',') LIKE ?")
            args.append(f"%,{symbol},%")
        if since is not None:
            where.append("created >= ?")
            args.append(pd.Timestamp(since, tz="UTC").timestamp() if pd.Timestamp(since).tz is None
                        else pd.Timestamp(since).timestamp())  # fmt: skip
        sql = ("SELECT run_id, spec_id, kind, parent, status, strategy, symbols, engine, created, seconds, "
               "data_start, data_end, bars, code_commit, code_dirty, error, stats FROM runs")  # fmt: skip
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created"
        df = pd.read_sql_query(sql, self._db(), params=args)
        df["created"] = pd.to_datetime(df["created"], unit="s", utc=True)
        df["code_dirty"] = df["code_dirty"].astype(bool)
        stats = pd.DataFrame([_unstats(json.loads(s)).to_dict() if isinstance(s, str) else {} for s in df.pop("stats")],
                             index=df.index)
        return pd.concat([df, stats], axis=1)

    def count(self, spec_id: str | None = None, **where: str) -> int:
        """How many runs match (e.g. ``count(kind="trial", data_sha256=...)``)."""
        clauses, args = [], []
        if spec_id is not None:
            clauses.append("spec_id = ?")
            args.append(spec_id)
        for col, value in where.items():
            if col not in ("kind", "status", "strategy", "data_sha256", "parent"):
                raise ParameterError(f"count: unknown column {col!r}")
            clauses.append(f"{col} = ?")
            args.append(value)
        sql = "SELECT count(*) FROM runs" + (" WHERE " + " AND ".join(clauses) if clauses else "")
        return int(self._db().execute(sql, args).fetchone()[0])

    def integrity(self) -> str:
        """SQLite's ``integrity_check`` answer (``"ok"`` for a sound file)."""
        return str(self._db().execute("PRAGMA integrity_check").fetchone()[0])

    def stored_hashes(self, run_id: str) -> dict[str, str]:
        return dict(self._db().execute("SELECT name, hash FROM run_tables WHERE run_id = ?", (run_id,)))

    def record(self, run_id: str) -> dict[str, Any]:
        """The runs row of ``run_id`` as a dict (JSON fields decoded, no pickle)."""
        db = self._db()
        cur = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        row = cur.fetchone()
        if row is None:
            raise RunNotFoundError(f"no stored run has run id {run_id!r}")
        rec = dict(zip([d[0] for d in cur.description], row, strict=True))
        rec.pop("spec_pickle")
        for k in ("versions", "spec", "stats", "risk", "hooks", "conventions"):
            rec[k] = json.loads(rec[k]) if rec[k] else None
        return rec

    # -- rows -------------------------------------------------------------------------------
    @staticmethod
    def _spec_values(spec: BacktestSpec) -> dict[str, Any]:
        commit, dirty, pkg = code_version()
        data = spec.data
        return {
            "spec_id": spec.id, "strategy": spec.strategy.name, "symbols": ",".join(spec.symbols),
            "engine": spec.engine, "created": time.time(), "data_sha256": data.sha256 if data else None,
            "data_start": data.start if data else None, "data_end": data.end if data else None,
            "bars": data.bars if data else None, "code_commit": commit, "code_dirty": int(dirty), "code_version": pkg,
            "spec": _json(spec.to_dict()), "spec_pickle": _pickled(spec),
        }  # fmt: skip

    def _row(self, result: BacktestResult, kind: str, parent: str | None, seconds: float | None,
             tables: bool) -> _Row:  # fmt: skip
        if kind not in KINDS:
            raise ParameterError(f"kind must be one of {KINDS}, got kind={kind!r}")
        risk = result.risk
        values = self._spec_values(result.spec) | {
            "run_id": result.run_id, "kind": kind, "parent": parent, "status": "ok", "error": None, "seconds": seconds,
            "versions": _json(result.versions), "stats": _json(_stats(result.stats), sort=False), "hooks": _json(result.hooks),
            "conventions": _json(result.conventions),
            "risk": None if risk is None else _json({"state": risk.state, "level": risk.level, "passed": risk.passed,
                                                     "denied": risk.denied, "reduced": risk.reduced}),
        }  # fmt: skip
        blobs = {name: _parquet(f) for name, f in _tables(result).items()} if tables else {}
        return _Row(values, blobs)

    @staticmethod
    def _insert(db: sqlite3.Connection, row: _Row) -> None:
        v = row.values
        db.execute("DELETE FROM run_tables WHERE run_id = ?", (v["run_id"],))
        cols = ", ".join(v)
        db.execute(f"INSERT OR REPLACE INTO runs ({cols}) VALUES ({', '.join('?' * len(v))})", list(v.values()))
        for name, data in row.tables.items():
            h = sha256(data).hexdigest()
            db.execute("INSERT OR IGNORE INTO blobs (hash, data) VALUES (?, ?)", (h, data))
            db.execute("INSERT INTO run_tables (run_id, name, hash) VALUES (?, ?, ?)", (v["run_id"], name, h))

    @staticmethod
    def _result(rec: dict[str, Any], tables: dict[str, pd.DataFrame], trusted: bool) -> BacktestResult:
        if rec["spec_pickle"] is None:
            raise StoreError(f"run {rec['run_id']!r} ({rec['strategy']}) was kept without a loadable spec: its strategy "
                             "cannot be pickled (a lambda or a class defined inside a function)")  # fmt: skip
        spec = _SafeUnpickler(rec["spec_pickle"], trusted).load()
        if not isinstance(spec, BacktestSpec):
            raise StoreError(f"run {rec['run_id']!r}: the stored spec is a {type(spec).__name__}, not a BacktestSpec")
        if "equity" not in tables:
            raise RunNotFoundError(f"run {rec['run_id']!r} was kept without its tables (a {rec['kind']}: stats only)")
        equity = tables["equity"].iloc[:, 0].rename("equity")
        pos = tables["positions"]
        risk_info = json.loads(rec["risk"]) if rec["risk"] else None
        risk = None if risk_info is None else RiskLog(events=tables.get("risk_events", pd.DataFrame()), **risk_info)
        return BacktestResult(
            equity=equity, returns=tables["returns"].iloc[:, 0],
            orders=tables["orders"], fills=tables["fills"], trades=tables["trades"],
            positions=pos.iloc[:, 0] if pos.shape[1] == 1 and spec.strategy.kind != "weights" else pos,
            stats=_unstats(json.loads(rec["stats"])), spec=spec, versions=json.loads(rec["versions"]),
            hooks=json.loads(rec["hooks"]), conventions=json.loads(rec["conventions"]), risk=risk,
        )  # fmt: skip
