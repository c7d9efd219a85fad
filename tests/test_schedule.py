"""`workbench schedule`: cron slots, catch-up, no overlap, retries, timeouts, kill -9 recovery.

Every scheduler here runs on a fake clock, a fake sleep and a fake runner; the overlap and
kill tests use real spawned processes against one state file.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.config import notebooks_dir, reports_dir
from workbench.errors import ParameterError
from workbench.schedule import (
    AttemptStatus,
    Job,
    RunOutcome,
    Scheduler,
    add_arguments,
    command,
    latest_slot,
    load_jobs,
    next_slot,
)

WED = datetime(2024, 1, 3, 12, 0, tzinfo=UTC)  # a Wednesday


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, minute, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeSleep:
    """Records each wait and moves the fake clock on by it."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock, self.calls = clock, []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.advance(seconds)


class FakeRunner:
    """Returns the scripted statuses in turn (the last one repeats); records every call."""

    def __init__(self, *statuses: str, clock: FakeClock | None = None, takes: float = 0.0) -> None:
        self.statuses = list(statuses) or ["ok"]
        self.calls: list[tuple[str, dict]] = []
        self.clock, self.takes = clock, takes

    def __call__(self, job: Job, parameters: dict) -> RunOutcome:
        self.calls.append((job.name, parameters))
        if self.clock is not None:
            self.clock.advance(self.takes)
        status = self.statuses[min(len(self.calls) - 1, len(self.statuses) - 1)]
        if status == "raise":
            raise RuntimeError("boom\nsecond line of the traceback")
        if status == "refuse":
            raise ParameterError("fast must be an integer, got fast='x'")
        return RunOutcome(status=status, error=None if status == "ok" else f"{status} on call {len(self.calls)}",
                          folder=Path(f"/r/{job.name}/{len(self.calls)}"), run_id=f"run-{len(self.calls)}")  # fmt: skip


def scheduler(tmp_path: Path, jobs: list[Job], runner: FakeRunner, now: datetime = WED) -> tuple[Scheduler, FakeClock, FakeSleep]:  # fmt: skip
    clock = FakeClock(now)
    sleep = FakeSleep(clock)
    return Scheduler(jobs, tmp_path / "state.sqlite", run=runner, clock=clock, sleep=sleep), clock, sleep


# -- cron slots ---------------------------------------------------------------------------
def test_latest_slot_exact_time_is_its_own_slot() -> None:
    assert latest_slot("0 6 * * *", at(3, 6)) == at(3, 6)
    assert latest_slot("0 6 * * *", at(3, 5, 59)) == at(2, 6)
    assert next_slot("0 6 * * *", at(3, 6)) == at(4, 6)


def test_latest_slot_rejects_naive_time() -> None:
    with pytest.raises(ParameterError, match="timezone-aware"):
        latest_slot("0 6 * * *", datetime(2024, 1, 3, 6))


def _matches(minute: int, hour: int, weekday: int, minutes: set[int], hours: set[int] | None, dows: set[int] | None) -> bool:  # fmt: skip
    return minute in minutes and (hours is None or hour in hours) and (dows is None or weekday in dows)


@settings(max_examples=40, deadline=None)
@given(
    minutes=st.sets(st.integers(0, 59), min_size=1, max_size=4),
    hours=st.none() | st.sets(st.integers(0, 23), min_size=1, max_size=3),
    dows=st.none() | st.sets(st.integers(0, 6), min_size=1, max_size=3),
    offset=st.integers(0, 366 * 24 * 3600),
)
def test_slots_agree_with_a_minute_by_minute_scan(minutes, hours, dows, offset) -> None:
    """Invariant: latest_slot <= now < next_slot, and both are the nearest matching minutes
    found by scanning minute by minute (cron weekday 0 = Sunday)."""
    fmt = lambda s: "*" if s is None else ",".join(map(str, sorted(s)))  # noqa: E731
    cron = f"{fmt(minutes)} {fmt(hours)} * * {fmt(dows)}"
    now = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(seconds=offset)
    back = now.replace(second=0, microsecond=0)
    while not _matches(back.minute, back.hour, (back.weekday() + 1) % 7, minutes, hours, dows):
        back -= timedelta(minutes=1)
    ahead = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while not _matches(ahead.minute, ahead.hour, (ahead.weekday() + 1) % 7, minutes, hours, dows):
        ahead += timedelta(minutes=1)
    assert latest_slot(cron, now) == back <= now < ahead == next_slot(cron, now)


# -- due and catch-up ---------------------------------------------------------------------
def test_due_gives_latest_slot_of_enabled_jobs_only(tmp_path: Path) -> None:
    jobs = [Job(name="daily", runbook="backtest", cron="0 6 * * *"),
            Job(name="off", runbook="backtest", cron="0 6 * * *", enabled=False)]  # fmt: skip
    s, _, _ = scheduler(tmp_path, jobs, FakeRunner())
    assert [(j.name, slot) for j, slot in s.due(at(3, 6))] == [("daily", at(3, 6))]
    assert [(j.name, slot) for j, slot in s.due(at(3, 5, 59))] == [("daily", at(2, 6))]


def test_catch_up_after_a_gap_runs_the_latest_missed_slot_once(tmp_path: Path) -> None:
    runner = FakeRunner()
    s, clock, _ = scheduler(tmp_path, [Job(name="hourly", runbook="backtest", cron="0 * * * *")], runner, at(3, 10, 5))
    assert [a.slot for a in s.run_once()] == [at(3, 10)]
    clock.now = at(3, 15, 30)  # the scheduler was down over the 11:00 ... 15:00 slots
    assert [(a.slot, a.status) for a in s.run_once()] == [(at(3, 15), AttemptStatus.OK)]
    assert s.run_once() == [] and s.run_once(at(3, 15, 59)) == []
    assert len(runner.calls) == 2
    assert [slot for _, slot in s.due(at(3, 16))] == [at(3, 16)]


def test_catch_up_on_restart_with_a_new_scheduler(tmp_path: Path) -> None:
    job = Job(name="hourly", runbook="backtest", cron="0 * * * *")
    first, _, _ = scheduler(tmp_path, [job], FakeRunner(), at(3, 10, 5))
    first.run_once()
    first.close()
    runner = FakeRunner()
    again, _, _ = scheduler(tmp_path, [job], runner, at(4, 9, 45))
    assert [a.slot for a in again.run_once()] == [at(4, 9)]
    assert len(runner.calls) == 1


def test_slot_already_done_is_not_rerun(tmp_path: Path) -> None:
    runner = FakeRunner()
    s, _, _ = scheduler(tmp_path, [Job(name="daily", runbook="backtest", cron="0 6 * * *")], runner)
    assert len(s.run_once()) == 1
    for minutes in (0, 1, 60 * 17):  # later the same day, up to 05:00 next day
        assert s.run_once(WED + timedelta(minutes=minutes)) == []
    assert len(runner.calls) == 1
    assert [a.status for a in s.history()] == [AttemptStatus.OK]


# -- retries, timeouts, crashes -----------------------------------------------------------
def test_retries_wait_retry_delay_between_attempts(tmp_path: Path) -> None:
    job = Job(name="flaky", runbook="backtest", cron="0 6 * * *", retries=3, retry_delay=7.5)
    s, _, sleep = scheduler(tmp_path, [job], FakeRunner("failed", "timeout", "ok"))
    attempts = s.run_once()
    assert [(a.attempt, a.status) for a in attempts] == [(1, AttemptStatus.FAILED), (2, AttemptStatus.TIMEOUT), (3, AttemptStatus.OK)]  # fmt: skip
    assert sleep.calls == [7.5, 7.5]
    assert attempts[0].error == "failed on call 1" and attempts[2].run_id == "run-3"
    assert s.due() == []


def test_exhausted_retries_settle_the_slot(tmp_path: Path) -> None:
    job = Job(name="broken", runbook="backtest", cron="0 6 * * *", retries=2, retry_delay=30)
    runner = FakeRunner("failed")
    s, _, sleep = scheduler(tmp_path, [job], runner)
    assert [a.status for a in s.run_once()] == [AttemptStatus.FAILED] * 3
    assert sleep.calls == [30.0, 30.0]
    assert s.due() == [] and s.run_once() == [] and len(runner.calls) == 3


def test_refused_parameters_are_recorded_once_and_never_retried(tmp_path: Path) -> None:
    job = Job(name="typo", runbook="backtest", cron="0 6 * * *", retries=3, retry_delay=30)
    runner = FakeRunner("refuse")
    s, _, sleep = scheduler(tmp_path, [job], runner)
    (attempt,) = s.run_once()
    assert attempt.status is AttemptStatus.REFUSED and attempt.failed
    assert attempt.error == "ParameterError: fast must be an integer, got fast='x'"
    assert sleep.calls == [] and len(runner.calls) == 1 and s.due() == []


def test_timeout_is_recorded_as_timeout(tmp_path: Path) -> None:
    job = Job(name="slow", runbook="backtest", cron="0 6 * * *", timeout=5)
    s, _, sleep = scheduler(tmp_path, [job], FakeRunner("timeout"))
    (attempt,) = s.run_once()
    assert attempt.status is AttemptStatus.TIMEOUT and attempt.failed and sleep.calls == []
    (stored,) = s.history("slow")
    assert stored.status is AttemptStatus.TIMEOUT and stored.error == "timeout on call 1"
    assert stored.folder == Path("/r/slow/1") and stored.finished is not None


def test_runner_raising_timeout_error_counts_as_timeout(tmp_path: Path) -> None:
    def runner(job: Job, parameters: dict) -> RunOutcome:
        raise TimeoutError("cell 4 ran past 5 s")

    s = Scheduler([Job(name="slow", runbook="backtest", cron="0 6 * * *")], tmp_path / "s.sqlite",
                  run=runner, clock=FakeClock(WED), sleep=lambda s: None)  # fmt: skip
    (attempt,) = s.run_once()
    assert attempt.status is AttemptStatus.TIMEOUT and attempt.error == "TimeoutError: cell 4 ran past 5 s"


def test_crashing_runner_fails_its_job_and_others_still_run(tmp_path: Path) -> None:
    calls = []

    def runner(job: Job, parameters: dict) -> RunOutcome:
        calls.append(job.name)
        if job.name == "crashes":
            raise RuntimeError("boom\nsecond line")
        return RunOutcome(status="ok")

    jobs = [Job(name="crashes", runbook="a", cron="0 6 * * *"), Job(name="fine", runbook="b", cron="0 6 * * *")]
    s = Scheduler(jobs, tmp_path / "s.sqlite", run=runner, clock=FakeClock(WED), sleep=lambda s: None)
    attempts = s.run_once()
    assert [(a.job, a.status, a.error) for a in attempts] == [
        ("crashes", AttemptStatus.FAILED, "RuntimeError: boom"), ("fine", AttemptStatus.OK, None)]  # fmt: skip
    assert calls == ["crashes", "fine"]


def test_runner_returning_an_unknown_status_is_a_failure(tmp_path: Path) -> None:
    s = Scheduler([Job(name="odd", runbook="a", cron="0 6 * * *")], tmp_path / "s.sqlite",
                  run=lambda job, p: RunOutcome(status="done"), clock=FakeClock(WED))  # fmt: skip
    (attempt,) = s.run_once()
    assert attempt.status is AttemptStatus.FAILED and "status='done'" in attempt.error


# -- universes ----------------------------------------------------------------------------
def test_universe_runs_once_per_member_with_member_as_parameter(tmp_path: Path) -> None:
    job = Job(name="batch", runbook="backtest", cron="0 6 * * *", parameters={"fast": 5, "slow": 20},
              universe=["GOOG", "SPX", "IXIC"], universe_parameter="symbol")  # fmt: skip
    runner = FakeRunner()
    s, _, _ = scheduler(tmp_path, [job], runner)
    attempts = s.run_once()
    assert runner.calls == [("batch", {"fast": 5, "slow": 20, "symbol": m}) for m in ("GOOG", "SPX", "IXIC")]
    assert [(a.member, a.attempt, a.status) for a in attempts] == [(m, 1, AttemptStatus.OK) for m in ("GOOG", "SPX", "IXIC")]  # fmt: skip
    assert job.parameters == {"fast": 5, "slow": 20}  # the job's own parameters are untouched


def test_universe_members_are_settled_and_retried_independently(tmp_path: Path) -> None:
    job = Job(name="batch", runbook="backtest", cron="0 6 * * *", universe=("GOOG", "SPX"), retries=1)
    statuses = iter(["ok", "failed", "ok"])  # GOOG ok; SPX fails once, then its retry succeeds
    runner = lambda job, p: RunOutcome(status=next(statuses))  # noqa: E731
    s = Scheduler([job], tmp_path / "s.sqlite", run=runner, clock=FakeClock(WED), sleep=lambda s: None)
    assert [(a.member, a.attempt, a.status.value) for a in s.run_once()] == [
        ("GOOG", 1, "ok"), ("SPX", 1, "failed"), ("SPX", 2, "ok")]  # fmt: skip
    assert s.due() == []


def test_universe_parameter_clash_is_refused() -> None:
    with pytest.raises(ParameterError, match="job 'b'.*'symbol' is set by the universe"):
        Job(name="b", runbook="x", cron="0 6 * * *", parameters={"symbol": "GOOG"}, universe=("SPX",))


# -- serve --------------------------------------------------------------------------------
def test_serve_sleeps_until_each_next_slot_and_stops(tmp_path: Path) -> None:
    runner = FakeRunner()
    s, clock, sleep = scheduler(tmp_path, [Job(name="hourly", runbook="b", cron="0 * * * *")], runner, at(3, 10, 5))
    s.serve(stop=lambda: clock.now >= at(3, 13, 30), poll=600)
    assert [a.slot for a in s.history()] == [at(3, h) for h in (10, 11, 12, 13)]
    assert max(sleep.calls) <= 600 and clock.now == at(3, 13, 30)  # woke every poll to check stop()
    assert sleep.calls[:6] == [600, 600, 600, 600, 600, 300]  # 10:05 -> 11:00 in polls


def test_serve_run_longer_than_the_interval_does_not_queue_slots(tmp_path: Path) -> None:
    runner = FakeRunner("ok")
    clock = FakeClock(at(3, 10, 5))
    runner.clock, runner.takes = clock, 90 * 60  # every run takes 90 minutes
    s = Scheduler([Job(name="hourly", runbook="b", cron="0 * * * *")], tmp_path / "s.sqlite", run=runner,
                  clock=clock, sleep=FakeSleep(clock))  # fmt: skip
    s.serve(stop=lambda: clock.now >= at(3, 14, 1))  # 10:05-11:35 (11:00 passes mid-run), 12:00-13:30, 14:00
    assert [a.slot for a in s.history()] == [at(3, 10), at(3, 12), at(3, 14)]


def test_serve_returns_at_once_without_enabled_jobs(tmp_path: Path) -> None:
    s, _, sleep = scheduler(tmp_path, [Job(name="off", runbook="b", cron="0 * * * *", enabled=False)], FakeRunner())
    s.serve()
    assert sleep.calls == [] and s.history() == []


# -- real processes: no overlap, kill -9 ---------------------------------------------------
OVERLAP_JOB = {"name": "long", "runbook": "backtest", "cron": "0 6 * * *"}


class HoldingRunner:
    """Marks that it started, then holds the run until a release file appears (or a time
    passes), recording its interval; picklable, so spawned children can use it."""

    def __init__(self, folder: str, hold_s: float, release: bool = True) -> None:
        self.folder, self.hold_s, self.release = folder, hold_s, release

    def __call__(self, job: Job, parameters: dict) -> RunOutcome:
        folder, start = Path(self.folder), time.time()
        (folder / f"started-{os.getpid()}").write_text(str(start))
        deadline = start + self.hold_s
        while time.time() < deadline and not (self.release and (folder / "release").exists()):
            time.sleep(0.02)
        (folder / f"interval-{os.getpid()}").write_text(json.dumps([start, time.time()]))
        return RunOutcome(status="ok")


def _child(state: str, folder: str, hold_s: float, release: bool = True) -> None:
    s = Scheduler([Job(**OVERLAP_JOB)], state, run=HoldingRunner(folder, hold_s, release),
                  clock=lambda: WED, sleep=lambda s: None)  # fmt: skip
    attempts = s.run_once()
    out = [[a.status.value, a.error] for a in attempts]
    Path(folder, f"result-{os.getpid()}.json").write_text(json.dumps(out))


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for a child process"
        time.sleep(0.02)


def _started(folder: Path) -> list[Path]:
    return sorted(folder.glob("started-*"))


def test_second_process_skips_a_job_running_elsewhere(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    state = str(tmp_path / "state.sqlite")
    a = ctx.Process(target=_child, args=(state, str(tmp_path), 60.0))
    a.start()
    _wait_for(lambda: _started(tmp_path))
    b = ctx.Process(target=_child, args=(state, str(tmp_path), 60.0))
    b.start()
    b.join(60)
    (tmp_path / "release").write_text("")
    a.join(60)
    assert a.exitcode == 0 and b.exitcode == 0
    assert json.loads((tmp_path / f"result-{b.pid}.json").read_text()) == [["skipped", "running elsewhere"]]
    assert json.loads((tmp_path / f"result-{a.pid}.json").read_text()) == [["ok", None]]
    assert [p.name for p in _started(tmp_path)] == [f"started-{a.pid}"]  # b's runner never ran
    rows = sqlite3.connect(state).execute("SELECT status FROM attempts ORDER BY id").fetchall()
    assert sorted(r[0] for r in rows) == ["ok", "skipped"]


def test_racing_processes_never_run_one_job_at_once(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    state = str(tmp_path / "state.sqlite")
    Scheduler([Job(**OVERLAP_JOB)], state, clock=lambda: WED).close()  # the schema exists before the race
    children = [ctx.Process(target=_child, args=(state, str(tmp_path), 0.5, False)) for _ in range(3)]
    for c in children:
        c.start()
    for c in children:
        c.join(60)
    assert [c.exitcode for c in children] == [0, 0, 0]
    intervals = sorted(json.loads(p.read_text()) for p in tmp_path.glob("interval-*"))
    assert all(prev[1] <= nxt[0] for prev, nxt in zip(intervals, intervals[1:], strict=False))
    assert len(intervals) == 1  # whoever came after the first run found the slot done
    statuses = [r[0] for r in sqlite3.connect(state).execute("SELECT status FROM attempts")]
    assert statuses.count("ok") == 1 and set(statuses) <= {"ok", "skipped"}


def test_sigkill_mid_run_leaves_running_row_then_interrupted_and_due_again(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    state = str(tmp_path / "state.sqlite")
    child = ctx.Process(target=_child, args=(state, str(tmp_path), 120.0, False))
    child.start()
    _wait_for(lambda: _started(tmp_path))
    os.kill(child.pid, signal.SIGKILL)
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    rows = sqlite3.connect(state).execute("SELECT status, finished, attempt FROM attempts").fetchall()
    assert rows == [("running", None, 1)]

    runner = FakeRunner()
    s, _, _ = scheduler(tmp_path, [Job(**OVERLAP_JOB)], runner)  # the restart
    (stale,) = s.history()
    assert stale.status is AttemptStatus.INTERRUPTED and stale.finished is None
    assert [(j.name, slot) for j, slot in s.due()] == [("long", at(3, 6))]
    (again,) = s.run_once()
    assert (again.attempt, again.status) == (2, AttemptStatus.OK) and len(runner.calls) == 1


# -- jobs files ---------------------------------------------------------------------------
GOOD = """
jobs:
  - name: a
    runbook: backtest.ipynb
    cron: "0 6 * * 1-5"
    parameters: {fast: 5, slow: 20}
    timeout: 60
    retries: 2
    retry_delay: 1.5
    universe: [GOOG, SPX]
  - name: b
    runbook: backtest
    cron: "@daily"
"""


def test_load_jobs_reads_fields_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(GOOD)
    a, b = load_jobs(path)
    assert a == Job(name="a", runbook=str(tmp_path / "backtest.ipynb"), cron="0 6 * * 1-5",
                    parameters={"fast": 5, "slow": 20}, timeout=60.0, retries=2, retry_delay=1.5,
                    universe=("GOOG", "SPX"))  # fmt: skip
    assert (b.runbook, b.parameters, b.timeout, b.retries, b.retry_delay, b.universe, b.enabled) == (
        "backtest", {}, None, 0, 60.0, None, True)  # fmt: skip


def _job(**over: object) -> str:
    lines = {"name": "a", "runbook": "backtest", "cron": '"0 6 * * *"', **over}
    return "jobs:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in lines.items() if v is not None) + "\n"


BAD = [
    (_job(cronn='"0 6 * * *"'), ["job 'a'", "unknown key 'cronn'"]),
    (_job(cron=None), ["job 'a'", "missing key 'cron'"]),
    (_job(name=None), ["job #1", "missing key 'name'"]),
    (_job() + "  - {name: a, runbook: x, cron: '0 7 * * *'}\n", ["job 'a'", "duplicate name"]),
    (_job(cron='"61 * * * *"'), ["job 'a'", "cron=", "61 * * * *"]),
    (_job(cron='"0 0 31 2 *"'), ["job 'a'", "never fires", "0 0 31 2 *"]),
    (_job(retries=-1), ["job 'a'", "retries=-1"]),
    (_job(timeout=0), ["job 'a'", "timeout=0"]),
    (_job(retry_delay="soon"), ["job 'a'", "retry_delay='soon'"]),
    (_job(universe="GOOG"), ["job 'a'", "universe='GOOG'"]),
    (_job(universe="[GOOG, GOOG]"), ["job 'a'", "unique"]),
    (_job(enabled='"yes"'), ["job 'a'", "enabled='yes'"]),
    (_job(name='"../etc"'), ["name='../etc'"]),
    ("jobs: [\n", ["not valid YAML"]),
    ("- name: a\n", ["'jobs'"]),
    ("jobs: []\nextra: 1\n", ["'jobs'", "extra"]),
    ("jobs:\n  - just a string\n", ["job #1", "mapping"]),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_jobs_file_raises_one_line_naming_job_and_key(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(text)
    with pytest.raises(ParameterError) as err:
        load_jobs(path)
    message = str(err.value)
    assert "\n" not in message
    for part in expected:
        assert part in message


def test_missing_jobs_file_is_a_parameter_error(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="cannot be read"):
        load_jobs(tmp_path / "nope.yaml")


def test_example_jobs_file_loads_and_uses_declared_parameters() -> None:
    import workbench as wb
    from workbench.notebook_params import declared_parameters

    jobs = {j.name: j for j in load_jobs(notebooks_dir() / "jobs.yaml")}
    daily = jobs["backtest-daily"]
    assert daily.enabled and daily.universe == ("GOOG", "SPX") and daily.universe_parameter == "symbol"
    assert set(daily.universe) <= set(wb.sample_symbols())
    for job in jobs.values():
        assert Path(job.runbook) == notebooks_dir() / "backtest.ipynb"
        declared = declared_parameters(Path(job.runbook))
        for member in job.members:
            assert set(job.parameters_for(member)) <= set(declared), job.name


# -- command ------------------------------------------------------------------------------
def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="workbench schedule")
    add_arguments(parser)
    return parser.parse_args(list(argv))


def _jobs_file(tmp_path: Path, retries: int = 0) -> Path:
    path = tmp_path / "jobs.yaml"
    path.write_text(f"jobs:\n  - {{name: nightly, runbook: backtest, cron: '30 22 * * 1-5', retries: {retries}, "
                    "retry_delay: 2, universe: [GOOG, SPX]}\n")  # fmt: skip
    return path


def test_command_once_exits_0_when_all_runs_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runner = FakeRunner("ok")
    code = command(_args(str(_jobs_file(tmp_path)), "--once", "--state", str(tmp_path / "s.sqlite")),
                   run=runner, clock=FakeClock(WED), sleep=lambda s: None)  # fmt: skip
    assert code == 0 and len(runner.calls) == 2
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and all(line.startswith("ok") for line in out) and "nightly[SPX]" in out[1]


def test_command_once_exits_1_when_a_run_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sleeps: list[float] = []
    code = command(_args(str(_jobs_file(tmp_path, retries=1)), "--once", "--state", str(tmp_path / "s.sqlite")),
                   run=FakeRunner("ok", "timeout"), clock=FakeClock(WED), sleep=sleeps.append)  # fmt: skip
    assert code == 1 and sleeps == [2.0]
    assert "timeout  nightly[SPX]" in capsys.readouterr().out


def test_command_exits_2_on_a_bad_jobs_file_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(_job(name="nightly", cron='"0 25 * * *"'))
    assert command(_args(str(path), "--once", "--state", str(tmp_path / "s.sqlite")), run=FakeRunner()) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "job 'nightly'" in err and "0 25 * * *" in err


def test_command_list_prints_next_run_in_default_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = command(_args(str(_jobs_file(tmp_path)), "--list"), run=FakeRunner(), clock=FakeClock(WED))
    assert code == 0
    (line,) = capsys.readouterr().out.splitlines()
    # Wednesday 12:00 UTC: next weekday 22:30 is the same day; the latest slot (Tue 22:30) never ran
    assert line.startswith("nightly") and "next 2024-01-03T22:30:00+00:00" in line
    assert "due now: slot 2024-01-02T22:30:00+00:00" in line
    assert (reports_dir() / ".schedule.sqlite").exists()


# -- the real report runner ---------------------------------------------------------------
def test_report_runner_runs_a_tiny_notebook_per_member(tmp_path: Path) -> None:
    """The default runner end to end: papermill runs a two-cell notebook once per member;
    one member makes it raise, so that run is recorded failed with the notebook's error."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('word: str = "hi"  # the member', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('assert word != "bad", f"refused {word}"')])  # fmt: skip
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "tiny.ipynb")
    job = Job(name="tiny", runbook=str(tmp_path / "tiny.ipynb"), cron="0 6 * * *", timeout=120,
              universe=("hi", "bad"), universe_parameter="word")  # fmt: skip
    s = Scheduler([job], tmp_path / "s.sqlite", clock=lambda: WED, sleep=lambda s: None)  # the default runner
    ok, bad = s.run_once()
    assert (ok.member, ok.status, ok.error) == ("hi", AttemptStatus.OK, None)
    assert ok.folder is not None and (ok.folder / "run.json").is_file()
    assert json.loads((ok.folder / "run.json").read_text())["parameters"] == {"word": "hi"}
    assert (bad.member, bad.status) == ("bad", AttemptStatus.FAILED) and "refused bad" in bad.error
    assert [a.status for a in s.history("tiny")] == [AttemptStatus.OK, AttemptStatus.FAILED]
