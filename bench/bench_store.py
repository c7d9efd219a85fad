"""The experiment store: what keeping a run costs (target: a trial <= 2 ms).

- a sweep trial (stats only, one transaction each) and 1,000 trials in one transaction;
- a full run (every table as Parquet) and loading it back;
- the reference in the same process: a bare SQLite INSERT of a row of the same size in
  its own IMMEDIATE transaction on the same kind of WAL file (what SQLite itself costs).

Run: ``.venv/bin/python bench/bench_store.py``
"""

from __future__ import annotations

import dataclasses
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

import workbench as wb
from workbench.adapters.experiments import SQLiteStore


def median_ms(fn, k: int) -> float:  # type: ignore[no-untyped-def]
    out = []
    for i in range(k):
        t = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t)
    return float(np.median(out)) * 1e3


def main() -> None:
    root = Path(tempfile.mkdtemp())
    store = SQLiteStore(root / "bench.sqlite")
    base = wb.backtest("sma_crossover", "GOOG", commission=0.001, store=None)
    trials = [dataclasses.replace(base, spec=base.spec.replace(cash=10_000.0 + i)) for i in range(3_000)]

    raw = sqlite3.connect(root / "raw.sqlite", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute("CREATE TABLE t (id TEXT PRIMARY KEY, spec TEXT, stats TEXT, pickle BLOB)")
    payload = ("x" * 1_500, "y" * 900, b"z" * 1_200)  # about a trial row's size

    def bare(i: int) -> None:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("INSERT INTO t VALUES (?, ?, ?, ?)", (str(i), *payload))
        raw.execute("COMMIT")

    ref = median_ms(bare, 500)
    trial = median_ms(lambda i: store.save(trials[i], kind="trial", tables=False), 1_000)
    t = time.perf_counter()
    store.save_many(trials[1_000:2_000], kind="trial", parent="bench")
    many = (time.perf_counter() - t) * 1e3
    full = median_ms(lambda i: store.save(trials[2_000 + i], seconds=0.1), 50)
    load = median_ms(lambda i: store.load(trials[2_000 + i].run_id), 50)
    print(f"experiment store, GOOG SMA backtest ({len(base.fills)} fills), WAL, median")
    print(f"  bare SQLite insert of a same-size row (reference)    {ref:7.3f} ms")
    print(f"  a trial (stats only, own transaction)                {trial:7.3f} ms   target <= 2 ms")
    print(f"  1,000 trials in one transaction                      {many:7.1f} ms   ({many / 1000:.3f} ms each)")
    print(f"  a full run (7 Parquet tables)                        {full:7.2f} ms")
    print(f"  loading a full run                                   {load:7.2f} ms")
    print(f"  integrity: {store.integrity()}, {store.count()} runs")


if __name__ == "__main__":
    main()
