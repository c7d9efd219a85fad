"""A universe batch spread over local processes or a Dask cluster: every member's attempts
are recorded by the scheduler alone, failures retried, refusals never, in member order."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests._schedule_tasks import marking_runner
from workbench.errors import ParameterError
from workbench.schedule import AttemptStatus, Job, Scheduler

NOW = datetime(2024, 1, 3, 7, 0, tzinfo=UTC)  # Wednesday, after the 06:00 slot


def _scheduler(tmp_path: Path, job: Job) -> tuple[Scheduler, list[float]]:
    waits: list[float] = []
    return Scheduler([job], tmp_path / "state.sqlite", run=marking_runner, clock=lambda: NOW,
                     sleep=waits.append), waits  # fmt: skip


def _batch(tmp_path: Path, universe: tuple[str, ...], **scale) -> Job:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return Job(name="batch", runbook="backtest", cron="0 6 * * *", universe=universe, retries=1, retry_delay=30,
               parameters={"out": str(out), "hold": 0.4}, **scale)  # fmt: skip


def _pids(tmp_path: Path) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    for f in (tmp_path / "out").iterdir():
        member, pid = f.read_text().split()
        seen.setdefault(member, set()).add(pid)
    return seen


def test_a_batch_on_two_local_processes_records_each_member_retries_failures_and_never_refusals(tmp_path):
    job = _batch(tmp_path, ("GOOG", "SPX", "BAD", "TYPO", "IXIC", "WTI"), workers=2)
    s, waits = _scheduler(tmp_path, job)
    attempts = s.run_once()
    statuses = Counter((a.member, a.status) for a in attempts)
    assert statuses == Counter({("GOOG", AttemptStatus.OK): 1, ("SPX", AttemptStatus.OK): 1,
                                ("IXIC", AttemptStatus.OK): 1, ("WTI", AttemptStatus.OK): 1,
                                ("BAD", AttemptStatus.FAILED): 2, ("TYPO", AttemptStatus.REFUSED): 1})  # fmt: skip
    assert [a.member for a in attempts[:6]] == list(job.universe)  # results in member order
    assert waits == [30]  # one retry round, for BAD only
    bad = [a for a in attempts if a.member == "BAD"]
    assert [a.attempt for a in bad] == [1, 2] and bad[0].error == "RuntimeError: no data for BAD"
    assert {a.member: a.run_id for a in attempts if a.ok} == {m: f"run-{m}" for m in ("GOOG", "SPX", "IXIC", "WTI")}
    first_round = set().union(*(p for m, p in _pids(tmp_path).items() if m != "BAD"))
    assert len(first_round) == 2 and str(os.getpid()) not in first_round  # two worker processes, not this one
    history = s.history("batch")
    assert len(history) == 7 and all(h.finished is not None for h in history)
    assert s.run_once() == []  # settled: nothing due again for this slot


def test_a_batch_on_a_dask_cluster_equals_the_local_batch(tmp_path):
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=40)  # fmt: skip
    try:
        job = _batch(tmp_path, ("GOOG", "SPX", "LATE", "IXIC"), cluster=cluster.scheduler_address)
        s, waits = _scheduler(tmp_path, job)
        attempts = s.run_once()
    finally:
        cluster.close()
    assert [(a.member, a.status.value) for a in attempts] == [
        ("GOOG", "ok"), ("SPX", "ok"), ("LATE", "timeout"), ("IXIC", "ok"), ("LATE", "timeout")]
    assert waits == [30]
    assert len(set().union(*_pids(tmp_path).values())) == 2  # both Dask workers ran members


@pytest.mark.parametrize(("scale", "message"), [
    ({"workers": 0}, "workers must be an integer >= 1, got workers=0"),
    ({"workers": True}, "workers must be an integer >= 1"),
    ({"cluster": "localhost"}, "cluster must be a Dask scheduler address like tcp://host:8786, got cluster='localhost'"),
    ({"workers": 2, "cluster": "tcp://h:8786"}, "give workers or cluster, not both"),
])
def test_scale_out_settings_are_checked(tmp_path, scale, message):
    with pytest.raises(ParameterError, match=message):
        _batch(tmp_path, ("GOOG",), **scale)


def test_scale_out_needs_a_universe():
    with pytest.raises(ParameterError, match="workers and cluster spread a universe's members; this job has no universe"):
        Job(name="single", runbook="backtest", cron="0 6 * * *", workers=2)


def test_the_example_jobs_file_spreads_its_daily_batch_over_two_processes():
    from workbench.config import notebooks_dir
    from workbench.schedule import load_jobs

    daily = {j.name: j for j in load_jobs(notebooks_dir() / "jobs.yaml")}["backtest-daily"]
    assert daily.workers == 2 and daily.scaled_out and daily.universe == ("GOOG", "SPX")
