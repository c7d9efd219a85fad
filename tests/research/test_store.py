"""The SQLite experiment store: every backtest lands in it, runs come back as they were,
a rerun proves itself identical or names what differs, several processes write at once
and a writer killed at any point leaves no partial run and loses no committed one."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.adapters.experiments import SQLiteStore, StoreError, table_hashes
from workbench.errors import ParameterError
from workbench.risk.limits import LongOnly, MaxOrderNotional

GOOG = wb.load_prices("GOOG")
PROFILE = wb.RiskProfile(limits=(LongOnly(), MaxOrderNotional(limit=20_000)))


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "runs.sqlite")


def _same_tables(a: wb.BacktestResult, b: wb.BacktestResult) -> None:
    pd.testing.assert_series_equal(a.equity, b.equity)
    pd.testing.assert_series_equal(a.returns, b.returns)
    pd.testing.assert_frame_equal(a.fills, b.fills)
    pd.testing.assert_frame_equal(a.trades, b.trades)
    # limit/stop prices of market orders are None in memory, NaN once stored (Parquet has no None floats)
    pd.testing.assert_frame_equal(a.orders.astype({"limit_price": float, "stop_price": float}), b.orders)
    pos = (pd.testing.assert_series_equal if isinstance(a.positions, pd.Series) else pd.testing.assert_frame_equal)
    pos(a.positions, b.positions)


@pytest.mark.parametrize("engine", ["event", "vectorized"])
def test_a_run_comes_back_as_it_was(store: SQLiteStore, engine: str) -> None:
    r = wb.backtest("sma_crossover", GOOG, {"fast": 10, "slow": 30, "allow_short": True}, engine=engine,
                    commission=0.001, risk=PROFILE, store=store)  # fmt: skip
    back = store.load(r.run_id)
    _same_tables(r, back)
    assert list(back.stats.index) == list(r.stats.index)
    for k, v in r.stats.items():
        assert back.stats[k] == v or (v != v and back.stats[k] != back.stats[k]), k
    assert back.spec == r.spec and back.id == r.id and back.run_id == r.run_id
    assert back.versions == r.versions and back.native is None
    assert (back.risk.state, back.risk.passed, back.risk.denied) == (r.risk.state, r.risk.passed, r.risk.denied)
    pd.testing.assert_frame_equal(back.risk.events, r.risk.events, check_dtype=False)
    assert store.load(r.id).run_id == r.run_id, "a spec id finds its latest run"
    assert store.integrity() == "ok"


def test_every_backtest_lands_in_the_configured_store() -> None:
    assert os.environ["WORKBENCH_STORE"].endswith("experiments.sqlite")  # conftest: a throw-away file
    r = wb.backtest("ema_crossover", GOOG)
    table = wb.runs(strategy="ema_crossover", symbol="GOOG")
    row = table[table["run_id"] == r.run_id].iloc[-1]
    assert row["status"] == "ok" and row["kind"] == "backtest" and row["engine"] == "event"
    assert row["sharpe"] == pytest.approx(r.stats["sharpe"]) and row["bars"] == len(GOOG)
    assert row["seconds"] > 0 and row["code_commit"] != ""
    assert wb.load_run(r.run_id).stats["n_trades"] == r.stats["n_trades"]
    assert r.run_id not in set(wb.runs(symbol="SPX")["run_id"])
    assert r.run_id not in set(wb.runs(since=pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=1))["run_id"])


def test_store_none_and_off_keep_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    before = len(wb.runs())
    wb.backtest("sma_crossover", GOOG, store=None)
    assert len(wb.runs()) == before
    monkeypatch.setenv("WORKBENCH_STORE", "off")
    wb.backtest("sma_crossover", GOOG)
    with pytest.raises(ParameterError, match="store is off"):
        wb.runs()


def test_a_failed_run_is_recorded_with_its_error(store: SQLiteStore) -> None:
    def broken(prices: pd.DataFrame) -> pd.Series:
        return pd.Series(2.0, index=prices.index)  # outside -1/0/1: the engine's target check raises

    with pytest.raises(ParameterError):
        wb.backtest(broken, GOOG, store=store)
    failed = store.frame(status="failed")
    assert len(failed) == 1 and failed["error"].iloc[0].startswith("ParameterError: ")
    assert store.runs() == [], "a failure is not a loadable run"
    wb.backtest("sma_crossover", GOOG, store=store)
    table = store.frame()
    assert list(table["status"]) == ["failed", "ok"], "failures list beside runs (no stats)"
    assert np.isnan(table["sharpe"].iloc[0]) and np.isfinite(table["sharpe"].iloc[1])


def test_a_rerun_is_identical_and_names_what_differs(store: SQLiteStore) -> None:
    r = wb.backtest("sma_crossover", "GOOG", commission=0.001, store=store)
    same = wb.rerun(r.run_id, store=store)
    assert same.identical and same.context == [], same
    assert same.result.run_id == r.run_id
    moved = GOOG.copy()
    moved.loc[moved.index[500:], ["Open", "High", "Low", "Close"]] *= 1.01
    other = wb.rerun(r.run_id, moved, store=store)
    assert not other.identical
    assert any(d.startswith("data:") for d in other.differences)
    assert any(d.startswith("tables:") and "fills" in d for d in other.differences)
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE runs SET code_commit = 'deadbeef00', versions = ? WHERE run_id = ?",
                   ('{"pandas": "0.1"}', r.run_id))  # fmt: skip
    tampered = wb.rerun(r.run_id, store=store)
    assert tampered.identical, "the result is the same..."
    assert [c.split(":")[0] for c in tampered.context] == ["code", "versions"], "...and the context names what changed"


def test_trials_are_stats_only_and_counted(store: SQLiteStore) -> None:
    base = wb.backtest("sma_crossover", GOOG, store=None)
    trials = [dataclasses.replace(base, spec=base.spec.replace(cash=10_000.0 + i)) for i in range(20)]
    store.save_many(trials, kind="trial", parent="opt-1")
    assert store.count(kind="trial", parent="opt-1", data_sha256=base.spec.data.sha256) == 20
    with pytest.raises(wb.RunNotFoundError, match="without its tables"):
        store.load(trials[0].run_id)
    assert len(store.frame(kind="trial")) == 20


def test_an_untrusted_spec_is_not_unpickled(store: SQLiteStore) -> None:
    class Local(wb.SMACrossover):  # a class pickle names by its module and qualified name
        pass

    r = wb.backtest(Local(), GOOG, store=store)
    with pytest.raises(StoreError, match="without a loadable spec"):  # a class defined in a function
        store.load(r.run_id)
    evil = b"\x80\x05cposix\nsystem\n\x94\x8c\x04true\x94\x85\x94R\x94."  # os.system("true")
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE runs SET spec_pickle = ? WHERE run_id = ?", (evil, r.run_id))
    with pytest.raises(StoreError, match="posix.system, which is not workbench code"):
        store.load(r.run_id)


def test_bad_paths_and_arguments_are_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot open the experiment store"):
        SQLiteStore(tmp_path / "file" / "runs.sqlite")
    with pytest.raises(ParameterError, match="kind must be one of"):
        SQLiteStore(tmp_path / "ok.sqlite").save(wb.backtest("sma_crossover", GOOG, store=None), kind="nope")
    with pytest.raises(ParameterError, match="store must be"):
        wb.backtest("sma_crossover", GOOG, store="elsewhere")


# -- several writers ------------------------------------------------------------------------
def _write_runs(path: str, worker: int, n: int) -> None:
    st = SQLiteStore(path)
    base = wb.backtest("sma_crossover", GOOG.iloc[:600], store=None)
    for i in range(n):
        st.save(dataclasses.replace(base, spec=base.spec.replace(cash=1_000.0 * (worker + 1) + i)))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_eight_processes_write_at_once_and_nothing_is_lost(tmp_path: Path, method: str) -> None:
    path = str(tmp_path / "shared.sqlite")
    SQLiteStore(path).save(wb.backtest("sma_crossover", GOOG.iloc[:600], store=None))  # parent holds a connection
    ctx = mp.get_context(method)
    procs = [ctx.Process(target=_write_runs, args=(path, w, 25)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    st = SQLiteStore(path)
    assert st.integrity() == "ok"
    assert len(st.runs()) == 1 + 8 * 25
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(DISTINCT run_id) FROM run_tables").fetchone()[0] == 1 + 8 * 25
    loaded = st.load(st.runs()[-1])
    assert len(loaded.fills) > 0


# -- a writer killed at any point -----------------------------------------------------------
def _save_forever(path: str, conn) -> None:  # type: ignore[no-untyped-def]
    st = SQLiteStore(path)
    base = wb.backtest("sma_crossover", GOOG.iloc[:600], store=None)
    i = 0
    while True:
        r = dataclasses.replace(base, spec=base.spec.replace(cash=50_000.0 + os.getpid() * 1e-3 + i))
        st.save(r)
        conn.send(r.run_id)  # only after the commit returned
        i += 1


def test_a_writer_killed_mid_save_loses_no_committed_run_and_leaves_no_partial_one(tmp_path: Path) -> None:
    path = str(tmp_path / "killed.sqlite")
    SQLiteStore(path)
    ctx = mp.get_context("fork")
    rng = random.Random(7)
    committed: list[str] = []
    for _ in range(50):
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_save_forever, args=(path, child))
        p.start()
        for _ in range(rng.randint(0, 3)):  # let a few saves complete first
            committed.append(parent.recv())
        time.sleep(rng.uniform(0, 0.03))  # somewhere inside a save
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        while parent.poll():
            committed.append(parent.recv())
    st = SQLiteStore(path)
    assert st.integrity() == "ok"
    stored = set(st.runs())
    assert set(committed) <= stored, "a run whose save returned is never lost"
    with sqlite3.connect(path) as db:
        per_run = dict(db.execute("SELECT run_id, count(*) FROM run_tables GROUP BY run_id"))
    assert stored == set(per_run) and set(per_run.values()) == {6}, "every stored run has all its tables"
    for run_id in rng.sample(sorted(stored), min(5, len(stored))):
        assert np.isfinite(st.load(run_id).equity.iloc[-1])


def test_table_hashes_are_what_the_store_keeps(store: SQLiteStore) -> None:
    r = wb.backtest("sma_crossover", GOOG, store=store)
    assert table_hashes(r) == store.stored_hashes(r.run_id)


def test_report_runs_are_kept_with_status_error_and_code_version(tmp_path) -> None:
    from workbench.adapters.experiments import SQLiteStore, code_version

    store = SQLiteStore(tmp_path / "r.sqlite")
    store.save_report(run_id="a1", runbook="backtest", status="ok", started="2026-12-01 10:00", seconds=3.5,
                      parameters={"symbol": "GOOG", "fast": 10}, folder="reports/backtest/x")  # fmt: skip
    store.save_report(run_id="a2", runbook="backtest", status="timeout", started="2026-12-01 11:00", seconds=60.0,
                      parameters={"symbol": "SPX"}, error="cell 4 timed out after 60 s")  # fmt: skip
    df = store.report_runs("backtest")
    assert list(df["run_id"]) == ["a1", "a2"]
    assert df.loc[1, "status"] == "timeout" and df.loc[1, "error"].startswith("cell 4")
    assert df.loc[0, "parameters"] == {"symbol": "GOOG", "fast": 10}
    assert df.loc[0, "code_commit"] == code_version()[0]
    assert store.report_runs("optimize").empty
    assert store.integrity() == "ok"
