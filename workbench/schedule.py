"""Scheduled runbook jobs: cron slots, catch-up, no overlap, timeouts and retries.

A jobs file (YAML, see ``notebooks/jobs.yaml``) lists :class:`Job` s: a runbook, its
parameters, a cron expression and how to retry. A :class:`Scheduler` runs them either as a
long-lived loop (:meth:`Scheduler.serve`) or once from cron/systemd
(:meth:`Scheduler.run_once`, ``workbench schedule jobs.yaml --once``); both may run at the
same time against one state file.

Conventions
-----------
- **Cron is evaluated in UTC**; a *slot* is the (UTC, whole-second) time a cron expression
  names. Five fields (minute hour day month weekday) as usual; croniter's six-field form
  (a trailing seconds field) works too.
- **Catch-up**: a job is due when its *latest* slot at or before now is not yet settled
  (every member ran ok, or used up its retries). After downtime only that latest slot runs,
  once: the missed slots before it are skipped, not replayed (a report of "now" replaces
  the stale ones). A job seen for the first time is due at once for its latest slot.
- **No overlap**: a job runs under an exclusive, non-blocking ``fcntl.flock`` on
  ``<state>.<job>.lock``; a process that finds the lock taken records the job as
  ``skipped`` ("running elsewhere") and moves on. The lock dies with its process, so a
  killed scheduler never leaves a job locked.
- **State**: one SQLite file (WAL, every write one ``BEGIN IMMEDIATE`` transaction, a 60 s
  busy timeout, as the experiment store) with one row per attempt: job, slot (ISO-8601 UTC
  text), member ('' outside a universe), attempt number (1-based per job, slot and member),
  started/finished (POSIX seconds, UTC, from the scheduler's clock), status, error (one
  line), report folder and run id. A row is written ``running`` before the runner starts, so
  a scheduler killed with SIGKILL leaves it ``running`` with no finish; the next scheduler
  to hold that job's lock marks it ``interrupted`` and the slot is due again (an interrupted
  attempt does not count against the retries).
- **Retries**: ``retries`` extra attempts after a failure or a timeout (a timeout counts as a
  failure), ``retry_delay`` seconds apart; jobs run one after another in one process. A run
  whose parameters the runbook refuses (a ParameterError) is recorded ``refused`` once and
  never retried: another attempt cannot change the answer.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import fcntl
import math
import os
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from workbench._sqlite import ProcessConnection, immediate
from workbench.config import read_yaml, reports_dir
from workbench.errors import ParameterError, first_line

__all__ = [
    "Job",
    "Attempt",
    "AttemptStatus",
    "RunOutcome",
    "Runner",
    "Scheduler",
    "load_jobs",
    "latest_slot",
    "next_slot",
    "report_runner",
    "add_arguments",
    "command",
]

BUSY_TIMEOUT_S = 60.0
POLL_S = 60.0  # serve() wakes at least this often (seconds) to check stop()
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # a job name is part of its lock file's name
_KEYS = ("name", "runbook", "parameters", "cron", "timeout", "retries", "retry_delay", "universe",
         "universe_parameter", "workers", "cluster", "enabled")  # fmt: skip
_REQUIRED = ("name", "runbook", "cron")
SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, slot TEXT NOT NULL,
    member TEXT NOT NULL DEFAULT '', attempt INTEGER NOT NULL, started REAL NOT NULL, finished REAL,
    status TEXT NOT NULL, error TEXT, folder TEXT, run_id TEXT, pid INTEGER
);
CREATE INDEX IF NOT EXISTS attempts_slot ON attempts(job, slot, member);
"""


class AttemptStatus(enum.StrEnum):
    """What became of one attempt (``running`` until it finishes)."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    REFUSED = "refused"  # the runbook refused the parameters: another attempt cannot help
    SKIPPED = "skipped"  # the job's lock was held by another process
    INTERRUPTED = "interrupted"  # its scheduler died mid-run


_FAILURES = (AttemptStatus.FAILED.value, AttemptStatus.TIMEOUT.value)
_OUTCOMES = ("ok", "failed", "timeout")


# -- jobs ---------------------------------------------------------------------------------
def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ParameterError(f"schedule: times must be timezone-aware (cron runs in UTC), got now={now!r}")
    return now.astimezone(UTC)


def _croniter(cron: str, start: datetime) -> Any:
    from croniter import croniter

    return croniter(cron, start)


def latest_slot(cron: str, now: datetime) -> datetime:
    """The latest slot of ``cron`` at or before ``now`` (UTC).

    >>> latest_slot("0 6 * * *", datetime(2024, 1, 3, 6, 0, tzinfo=UTC)).isoformat()
    '2024-01-03T06:00:00+00:00'
    """
    # croniter's get_prev is strict (< start) and slots are whole seconds: step one second past now
    start = _utc(now).replace(microsecond=0) + timedelta(seconds=1)
    return _croniter(cron, start).get_prev(datetime).astimezone(UTC)


def next_slot(cron: str, now: datetime) -> datetime:
    """The first slot of ``cron`` strictly after ``now`` (UTC).

    >>> next_slot("0 6 * * *", datetime(2024, 1, 3, 6, 0, tzinfo=UTC)).isoformat()
    '2024-01-04T06:00:00+00:00'
    """
    return _croniter(cron, _utc(now).replace(microsecond=0)).get_next(datetime).astimezone(UTC)


def _check_cron(name: str, cron: object) -> None:
    from croniter import CroniterError, croniter

    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise ParameterError(f"job {name!r}: cron must be a cron expression like '0 6 * * 1-5', got cron={cron!r}")
    try:  # valid syntax can still never fire ("0 0 31 2 *")
        next_slot(cron, datetime(2000, 1, 1, tzinfo=UTC))
    except (CroniterError, ValueError) as e:
        raise ParameterError(f"job {name!r}: cron never fires, got cron={cron!r} ({first_line(e)})") from None


def _number(name: str, key: str, value: object, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ParameterError(f"job {name!r}: {key} must be a finite number of seconds, got {key}={value!r}")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class Job:
    """One scheduled runbook: what runs (``runbook`` with ``parameters``), when (``cron``, UTC),
    for how long (``timeout`` seconds, None = no limit) and how often to try again
    (``retries`` extra attempts, ``retry_delay`` seconds apart).

    ``universe`` makes a batch: one run per member, with the member as the parameter named
    ``universe_parameter``; each member is retried and settled on its own. A batch runs its
    members one after another, or ``workers`` at a time in local processes, or on a Dask
    cluster (``cluster``: a scheduler address such as ``tcp://host:8786``), through the
    research context's task runners; the scheduler alone records the attempts.

    >>> Job(name="daily", runbook="backtest", cron="0 22 * * 1-5", universe=("GOOG", "SPX")).members
    ('GOOG', 'SPX')
    """

    name: str
    runbook: str
    cron: str
    parameters: dict[str, Any] = field(default_factory=dict, hash=False)
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 60.0
    universe: tuple[str, ...] | None = None
    universe_parameter: str = "symbol"
    workers: int = 1
    cluster: str | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ParameterError("job name must be 1-64 letters, digits, '.', '_' or '-' (not first), "
                                 f"got name={self.name!r}")  # fmt: skip
        name = self.name
        if isinstance(self.runbook, Path):
            object.__setattr__(self, "runbook", str(self.runbook))
        if not isinstance(self.runbook, str) or not self.runbook.strip():
            raise ParameterError(f"job {name!r}: runbook must be a notebook name or path, got runbook={self.runbook!r}")
        _check_cron(name, self.cron)
        if not isinstance(self.parameters, dict) or not all(isinstance(k, str) for k in self.parameters):
            raise ParameterError(f"job {name!r}: parameters must be a mapping of names to values, "
                                 f"got parameters={self.parameters!r}")  # fmt: skip
        object.__setattr__(self, "parameters", dict(self.parameters))  # the caller's dict may change later
        timeout = _number(name, "timeout", self.timeout, optional=True)
        if timeout is not None and timeout <= 0:
            raise ParameterError(f"job {name!r}: timeout must be > 0 seconds or empty, got timeout={self.timeout!r}")
        object.__setattr__(self, "timeout", timeout)
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ParameterError(f"job {name!r}: retries must be an integer >= 0, got retries={self.retries!r}")
        delay = _number(name, "retry_delay", self.retry_delay)
        if delay is None or delay < 0:
            raise ParameterError(f"job {name!r}: retry_delay must be >= 0 seconds, got retry_delay={self.retry_delay!r}")
        object.__setattr__(self, "retry_delay", delay)
        self._check_universe()
        self._check_scale_out()
        if not isinstance(self.enabled, bool):
            raise ParameterError(f"job {name!r}: enabled must be true or false, got enabled={self.enabled!r}")

    def _check_universe(self) -> None:
        name, universe = self.name, self.universe
        if not isinstance(self.universe_parameter, str) or not self.universe_parameter.isidentifier():
            raise ParameterError(f"job {name!r}: universe_parameter must be a parameter name, "
                                 f"got universe_parameter={self.universe_parameter!r}")  # fmt: skip
        if universe is None:
            return
        if isinstance(universe, str) or not isinstance(universe, (list, tuple)):
            raise ParameterError(f"job {name!r}: universe must be a list of members, got universe={universe!r}")
        members = tuple(universe)
        if not members or not all(isinstance(m, str) and m.strip() for m in members):
            raise ParameterError(f"job {name!r}: universe must list non-empty strings, got universe={universe!r}")
        if len(set(members)) != len(members):
            raise ParameterError(f"job {name!r}: universe members must be unique, got universe={universe!r}")
        if self.universe_parameter in self.parameters:
            raise ParameterError(f"job {name!r}: {self.universe_parameter!r} is set by the universe, so it cannot "
                                 f"also be in parameters, got parameters={self.parameters!r}")  # fmt: skip
        object.__setattr__(self, "universe", members)

    def _check_scale_out(self) -> None:
        name = self.name
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ParameterError(f"job {name!r}: workers must be an integer >= 1, got workers={self.workers!r}")
        if self.cluster is not None and (not isinstance(self.cluster, str) or "://" not in self.cluster):
            raise ParameterError(f"job {name!r}: cluster must be a Dask scheduler address like tcp://host:8786, "
                                 f"got cluster={self.cluster!r}")  # fmt: skip
        if self.cluster is not None and self.workers != 1:
            raise ParameterError(f"job {name!r}: give workers or cluster, not both "
                                 f"(workers={self.workers!r}, cluster={self.cluster!r})")  # fmt: skip
        if (self.workers > 1 or self.cluster) and self.universe is None:
            raise ParameterError(f"job {name!r}: workers and cluster spread a universe's members; this job has no universe")

    @property
    def scaled_out(self) -> bool:
        """Whether the members run in parallel (local processes or a Dask cluster)."""
        return self.workers > 1 or self.cluster is not None

    @property
    def members(self) -> tuple[str | None, ...]:
        """One entry per run of a slot: the universe's members, or ``(None,)`` for a single run."""
        return self.universe if self.universe is not None else (None,)

    def parameters_for(self, member: str | None) -> dict[str, Any]:
        """The parameters of one run: the job's, plus the member as ``universe_parameter``."""
        params = dict(self.parameters)
        if member is not None:
            params[self.universe_parameter] = member
        return params


def _job_from(entry: object, index: int, folder: Path) -> Job:
    if not isinstance(entry, dict):
        raise ParameterError(f"job #{index}: each job must be a mapping of keys, got {entry!r}")
    label = repr(entry["name"]) if isinstance(entry.get("name"), str) else f"#{index}"
    for key in entry:
        if key not in _KEYS:
            raise ParameterError(f"job {label}: unknown key {key!r} (known: {', '.join(_KEYS)})")
    for key in _REQUIRED:
        if key not in entry:
            raise ParameterError(f"job {label}: missing key {key!r}")
    fields = dict(entry)
    fields["runbook"] = _runbook(fields["runbook"], folder)
    if fields.get("parameters") is None:
        fields["parameters"] = {}
    return Job(**fields)


def _runbook(runbook: object, folder: Path) -> object:
    """A runbook path (a slash or a suffix) is relative to the jobs file, so ``--once`` from
    cron finds it whatever the working directory; a bare name goes to the report runner as is."""
    if isinstance(runbook, str) and ("/" in runbook or Path(runbook).suffix) and not Path(runbook).is_absolute():
        return str(folder / runbook)
    return runbook


def load_jobs(path: str | Path) -> list[Job]:
    """The jobs of a YAML file: a top-level ``jobs:`` list of mappings with the fields of
    :class:`Job` (``name``, ``runbook``, ``cron`` required). An unknown key, a missing key, a
    duplicate name or a bad value raises a one-line :class:`ParameterError` naming the job
    and the key. Parameters are passed as given: the runbook's own gate checks them."""
    path = Path(path)
    doc = read_yaml(path, "jobs file")
    if not isinstance(doc, dict) or set(doc) != {"jobs"} or not isinstance(doc["jobs"], list):
        raise ParameterError(f"jobs file {path}: must be a mapping with one key 'jobs' holding a list, got "
                             f"{type(doc).__name__} with keys {sorted(doc) if isinstance(doc, dict) else []}")  # fmt: skip
    jobs: list[Job] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(doc["jobs"], start=1):
        job = _job_from(entry, index, path.parent)
        if job.name in seen:
            raise ParameterError(f"job {job.name!r}: duplicate name (jobs #{seen[job.name]} and #{index})")
        seen[job.name] = index
        jobs.append(job)
    return jobs


# -- runs ---------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class RunOutcome:
    """What a runner reports for one run: ``status`` in ok / failed / timeout."""

    status: str
    error: str | None = None
    folder: Path | None = None
    run_id: str | None = None


class Runner(Protocol):
    """Runs one job's runbook with the parameters of one member; returns its outcome (an
    object with ``status`` and optionally ``error``, ``folder``, ``run_id``, e.g. a ReportRun)."""

    def __call__(self, job: Job, parameters: dict[str, Any]) -> Any: ...


def report_runner(job: Job, parameters: dict[str, Any]) -> RunOutcome:
    """The default runner: the runbook through :func:`workbench.report.run_report`
    (imported on first use), which enforces the timeout and writes the report folder."""
    from workbench.report import run_report  # type: ignore[attr-defined]

    run = run_report(job.runbook, parameters, timeout=job.timeout)
    return RunOutcome(status=run.status, error=run.error, folder=run.folder, run_id=run.run_id)


Outcome = tuple[AttemptStatus, str | None, str | None, str | None]  # status, error, folder, run id


def execute(run: Runner, job: Job, member: str | None) -> Outcome:
    """Run one member and classify what happened; never raises an ``Exception`` (a crashing
    runner fails this run, never the scheduler or a batch)."""
    try:
        return _outcome(run(job, job.parameters_for(member)))
    except TimeoutError as e:
        return AttemptStatus.TIMEOUT, first_line(f"TimeoutError: {e}"), None, None
    except ParameterError as e:  # bad parameters: recorded once, never retried
        return AttemptStatus.REFUSED, first_line(f"ParameterError: {e}"), None, None
    except Exception as e:  # noqa: BLE001
        return AttemptStatus.FAILED, first_line(f"{type(e).__name__}: {e}"), None, None


def member_task(shared: tuple[Runner, Job]) -> Callable[[str | None], Outcome]:
    """The task a runner's worker runs for each member (module level: workers unpickle it)."""
    run, job = shared
    return lambda member: execute(run, job, member)


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One recorded attempt of a job's slot (for one member of its universe)."""

    job: str
    slot: datetime
    member: str | None
    attempt: int
    status: AttemptStatus
    started: datetime
    finished: datetime | None = None
    error: str | None = None
    folder: Path | None = None
    run_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is AttemptStatus.OK

    @property
    def failed(self) -> bool:
        """A run that ended badly (failed or timed out); skipped and interrupted are not runs' failures."""
        return self.status in (AttemptStatus.FAILED, AttemptStatus.TIMEOUT, AttemptStatus.REFUSED)

    @property
    def seconds(self) -> float | None:
        return None if self.finished is None else (self.finished - self.started).total_seconds()

    def line(self) -> str:
        """One line for a terminal or a log."""
        who = self.job + (f"[{self.member}]" if self.member is not None else "")
        tail = f": {self.error}" if self.error else ""
        where = f" -> {self.folder}" if self.folder else ""
        took = f" ({self.seconds:.1f} s)" if self.seconds is not None else ""
        return f"{self.status.value:<8} {who} slot {self.slot.isoformat()} attempt {self.attempt}{took}{where}{tail}"


def _outcome(result: object) -> tuple[AttemptStatus, str | None, str | None, str | None]:
    """(status, error, folder, run_id) from whatever the runner returned."""
    status = getattr(result, "status", None)
    status = getattr(status, "value", status)
    error = getattr(result, "error", None)
    folder, run_id = getattr(result, "folder", None), getattr(result, "run_id", None)
    if status not in _OUTCOMES:
        return AttemptStatus.FAILED, f"the runner returned status={status!r} (expected ok, failed or timeout)", None, None
    error = first_line(error) if error else None
    return AttemptStatus(status), error, (str(folder) if folder else None), (str(run_id) if run_id else None)


def _from_ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


# -- the scheduler ------------------------------------------------------------------------
class Scheduler:
    """Runs ``jobs`` on their cron slots, recording every attempt in ``state_path``.

    ``run(job, parameters)`` is the runner (default :func:`report_runner`), ``clock()`` the
    current time (aware; default UTC now), ``sleep(seconds)`` the wait between retries and
    slots (default :func:`time.sleep`): tests give fakes of all three.
    """

    def __init__(self, jobs: list[Job], state_path: str | Path, *, run: Runner | None = None,
                 clock: Callable[[], datetime] | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:  # fmt: skip
        names = [j.name for j in jobs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ParameterError(f"Scheduler: job names must be unique, got {dupes[0]!r} twice")
        self.jobs = list(jobs)
        self.state_path = Path(state_path)
        self._run = run if run is not None else report_runner
        self._clock = clock if clock is not None else (lambda: datetime.now(UTC))
        self._sleep = sleep if sleep is not None else time.sleep
        self._connection = ProcessConnection(self.state_path, SCHEMA, BUSY_TIMEOUT_S)
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            self._db()
        except (OSError, sqlite3.Error) as e:
            raise ParameterError(f"Scheduler: cannot open the state file {self.state_path}: {e}") from None
        self.recover()

    def __repr__(self) -> str:
        return f"Scheduler({len(self.jobs)} jobs, {str(self.state_path)!r})"

    # -- state ------------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        """This process's connection (SQLite connections must not cross a fork)."""
        return self._connection.get()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: writers queue on the busy timeout, never fail an upgrade."""
        with immediate(self._db()) as db:
            yield db

    def close(self) -> None:
        self._connection.close()

    def history(self, job: str | None = None) -> list[Attempt]:
        """Every recorded attempt (of one job), oldest first."""
        sql = "SELECT job, slot, member, attempt, status, started, finished, error, folder, run_id FROM attempts"
        rows = self._db().execute(sql + (" WHERE job = ?" if job else "") + " ORDER BY id", (job,) if job else ())
        return [Attempt(job=r[0], slot=datetime.fromisoformat(r[1]), member=r[2] or None, attempt=r[3],
                        status=AttemptStatus(r[4]), started=_from_ts(r[5]), finished=_from_ts(r[6]), error=r[7],
                        folder=Path(r[8]) if r[8] else None, run_id=r[9]) for r in rows]  # fmt: skip

    def _rows(self, job: str, slot: datetime, member: str | None) -> list[str]:
        sql = "SELECT status FROM attempts WHERE job = ? AND slot = ? AND member = ? ORDER BY id"
        return [r[0] for r in self._db().execute(sql, (job, slot.isoformat(), member or ""))]

    def _settled(self, job: Job, slot: datetime, member: str | None) -> bool:
        statuses = self._rows(job.name, slot, member)
        return ("ok" in statuses or AttemptStatus.REFUSED.value in statuses
                or sum(s in _FAILURES for s in statuses) > job.retries)

    def _pending(self, job: Job, slot: datetime) -> list[str | None]:
        return [m for m in job.members if not self._settled(job, slot, m)]

    # -- locks and recovery -----------------------------------------------------------------
    def lock_path(self, name: str) -> Path:
        return self.state_path.with_name(f"{self.state_path.name}.{name}.lock")

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[bool]:
        """The job's exclusive lock, without waiting: yields False when another process holds it."""
        fd = os.open(self.lock_path(name), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _mark_interrupted(self, name: str) -> int:
        """Call with the job's lock held: its ``running`` rows belong to a dead process."""
        with self._write() as db:
            cur = db.execute("UPDATE attempts SET status = 'interrupted', error = ? WHERE job = ? AND status = 'running'",
                             ("the scheduler stopped during the run (killed or crashed)", name))  # fmt: skip
            return cur.rowcount

    def recover(self) -> int:
        """Mark ``interrupted`` every ``running`` attempt whose job no live process has locked
        (its scheduler was killed); returns how many. Called on start and before each job runs."""
        names = [r[0] for r in self._db().execute("SELECT DISTINCT job FROM attempts WHERE status = 'running'")]
        count = 0
        for name in names:
            if not _NAME.match(name):
                continue
            with self._lock(name) as held:
                if held:
                    count += self._mark_interrupted(name)
        return count

    # -- scheduling -------------------------------------------------------------------------
    def _now(self, now: datetime | None = None) -> datetime:
        return _utc(now if now is not None else self._clock())

    def due(self, now: datetime | None = None) -> list[tuple[Job, datetime]]:
        """(job, slot) for each enabled job whose latest slot at or before ``now`` is not yet
        settled (a member still without an ok run and with retries left). Catch-up: after
        downtime only that latest missed slot is due, once; earlier missed slots are not."""
        now = self._now(now)
        out = []
        for job in self.jobs:
            if job.enabled:
                slot = latest_slot(job.cron, now)
                if self._pending(job, slot):
                    out.append((job, slot))
        return out

    def next_run(self, job: Job, now: datetime | None = None) -> datetime:
        """When ``job`` next has a slot after ``now``."""
        return next_slot(job.cron, self._now(now))

    def run_once(self, now: datetime | None = None) -> list[Attempt]:
        """Run everything due at ``now`` (default: the clock), each universe member in turn,
        with retries; returns the attempts made (a job locked elsewhere: one ``skipped``)."""
        attempts: list[Attempt] = []
        for job, slot in self.due(now):
            attempts += self._run_job(job, slot)
        return attempts

    def serve(self, stop: Callable[[], bool] | None = None, *, poll: float = POLL_S) -> None:
        """The long-lived loop: run what is due, sleep until the next slot of any enabled job
        (waking every ``poll`` seconds to check ``stop``), until ``stop()`` is true. Returns at
        once when no job is enabled (nothing would ever be due)."""
        stop = stop if stop is not None else (lambda: False)
        enabled = [j for j in self.jobs if j.enabled]
        while enabled and not stop():
            self.run_once()
            wake = min(next_slot(j.cron, self._now()) for j in enabled)
            while not stop():
                left = (wake - self._now()).total_seconds()
                if left <= 0:
                    break
                self._sleep(min(left, poll))

    # -- one job ----------------------------------------------------------------------------
    def _run_job(self, job: Job, slot: datetime) -> list[Attempt]:
        with self._lock(job.name) as held:
            if not held:
                return [self._skip(job, slot)]
            self._mark_interrupted(job.name)
            pending = self._pending(job, slot)  # again under the lock: another process may just have run it
            if job.scaled_out:
                return self._run_batch(job, slot, pending)
            attempts: list[Attempt] = []
            for member in pending:
                attempts += self._run_member(job, slot, member)
            return attempts

    def _failures(self, job: Job, slot: datetime, member: str | None) -> int:
        return sum(s in _FAILURES for s in self._rows(job.name, slot, member))

    def _run_batch(self, job: Job, slot: datetime, members: list[str | None]) -> list[Attempt]:
        """Every pending member at once on the job's task runner, then the failed ones again
        (after ``retry_delay``) while they have retries left; rows are written here, results
        come back in member order."""
        from workbench.research.tasks import resolve_runner

        runner = resolve_runner(job.workers, job.cluster)
        attempts: list[Attempt] = []
        todo = [m for m in members if self._failures(job, slot, m) <= job.retries]
        while todo:
            if attempts:
                self._sleep(job.retry_delay)
            begun = [self._begin(job, slot, m) for m in todo]
            outcomes = runner.map(member_task, (self._run, job), todo)
            try:
                for (row, number, started), member, outcome in zip(begun, todo, outcomes, strict=True):
                    attempts.append(self._conclude(job, slot, member, row, number, started, outcome))
            except BaseException:  # Ctrl-C, or the cluster went away: the unfinished runs stay due
                for row, _, _ in begun:
                    self._finish_if_running(row, "stopped before the batch finished")
                raise
            last = {a.member: a for a in attempts}
            todo = [m for m in todo if not last[m].ok and last[m].status is not AttemptStatus.REFUSED
                    and self._failures(job, slot, m) <= job.retries]  # fmt: skip
        return attempts

    def _run_member(self, job: Job, slot: datetime, member: str | None) -> list[Attempt]:
        failures = self._failures(job, slot, member)
        attempts: list[Attempt] = []
        while failures <= job.retries:
            if attempts:
                self._sleep(job.retry_delay)
            attempt = self._attempt(job, slot, member)
            attempts.append(attempt)
            if attempt.ok or attempt.status is AttemptStatus.REFUSED:
                break
            failures += 1
        return attempts

    def _attempt(self, job: Job, slot: datetime, member: str | None) -> Attempt:
        row, number, started = self._begin(job, slot, member)
        try:
            outcome = execute(self._run, job, member)
        except BaseException:  # Ctrl-C: this run did not finish, the slot stays due
            self._finish(row, AttemptStatus.INTERRUPTED, "stopped by the user", None, None, self._now())
            raise
        return self._conclude(job, slot, member, row, number, started, outcome)

    def _begin(self, job: Job, slot: datetime, member: str | None) -> tuple[int | None, int, datetime]:
        """Record a ``running`` attempt; its row, its number and when it began."""
        started = self._now()
        with self._write() as db:
            number = 1 + db.execute("SELECT COUNT(*) FROM attempts WHERE job = ? AND slot = ? AND member = ? "
                                    "AND status != 'skipped'", (job.name, slot.isoformat(), member or "")).fetchone()[0]  # fmt: skip
            row = db.execute("INSERT INTO attempts (job, slot, member, attempt, started, status, pid) "
                             "VALUES (?, ?, ?, ?, ?, 'running', ?)",
                             (job.name, slot.isoformat(), member or "", number, started.timestamp(),
                              os.getpid())).lastrowid  # fmt: skip
        return row, number, started

    def _conclude(self, job: Job, slot: datetime, member: str | None, row: int | None, number: int,
                  started: datetime, outcome: Outcome) -> Attempt:  # fmt: skip
        status, error, folder, run_id = outcome
        finished = self._now()
        self._finish(row, status, error, folder, run_id, finished)
        return Attempt(job=job.name, slot=slot, member=member, attempt=number, status=status, started=started,
                       finished=finished, error=error, folder=Path(folder) if folder else None, run_id=run_id)  # fmt: skip

    def _finish_if_running(self, row: int | None, why: str) -> None:
        with self._write() as db:
            db.execute("UPDATE attempts SET status = ?, error = ?, finished = ? WHERE id = ? AND status = 'running'",
                       (AttemptStatus.INTERRUPTED.value, why, self._now().timestamp(), row))  # fmt: skip

    def _finish(self, row: int | None, status: AttemptStatus, error: str | None, folder: str | None,
                run_id: str | None, finished: datetime) -> None:  # fmt: skip
        with self._write() as db:
            db.execute("UPDATE attempts SET status = ?, error = ?, folder = ?, run_id = ?, finished = ? WHERE id = ?",
                       (status.value, error, folder, run_id, finished.timestamp(), row))  # fmt: skip

    def _skip(self, job: Job, slot: datetime) -> Attempt:
        now = self._now()
        error = "running elsewhere"
        with self._write() as db:
            db.execute("INSERT INTO attempts (job, slot, member, attempt, started, finished, status, error, pid) "
                       "VALUES (?, ?, '', 0, ?, ?, 'skipped', ?, ?)",
                       (job.name, slot.isoformat(), now.timestamp(), now.timestamp(), error, os.getpid()))  # fmt: skip
        return Attempt(job=job.name, slot=slot, member=None, attempt=0, status=AttemptStatus.SKIPPED, started=now,
                       finished=now, error=error)  # fmt: skip


# -- command line -------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``workbench schedule``."""
    parser.add_argument("jobs", type=Path, help="the jobs file (YAML with a 'jobs:' list; see notebooks/jobs.yaml)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true",
                      help="run what is due now (including the latest missed slot) and exit, e.g. from cron")  # fmt: skip
    mode.add_argument("--list", action="store_true", help="print each job's next run (UTC) and exit")
    parser.add_argument("--state", type=Path, default=None,
                        help="the scheduler's state (SQLite); default <reports>/.schedule.sqlite")  # fmt: skip


def _list(scheduler: Scheduler) -> None:
    now = scheduler._now()
    due = {job.name: slot for job, slot in scheduler.due(now)}
    for job in scheduler.jobs:
        state = f"next {scheduler.next_run(job, now).isoformat()}" if job.enabled else "disabled"
        late = f" (due now: slot {due[job.name].isoformat()})" if job.name in due else ""
        print(f"{job.name}  [{job.cron}]  {state}{late}")


def command(args: argparse.Namespace, *, run: Runner | None = None, clock: Callable[[], datetime] | None = None,
            sleep: Callable[[float], None] | None = None) -> int:  # fmt: skip
    """``workbench schedule``: exit 0 when every attempted run ended ok (or nothing was due),
    1 when one failed or timed out, 2 on a bad jobs file (one line on stderr). Without
    ``--once`` or ``--list`` it serves until interrupted. ``run``/``clock``/``sleep`` are for tests."""
    state = args.state if args.state is not None else reports_dir() / ".schedule.sqlite"
    try:
        scheduler = Scheduler(load_jobs(args.jobs), state, run=run, clock=clock, sleep=sleep)
    except ParameterError as e:
        print(f"workbench schedule: {first_line(e)}", file=sys.stderr)
        return 2
    try:
        if args.list:
            _list(scheduler)
            return 0
        if args.once:
            attempts = scheduler.run_once()
            for attempt in attempts:
                print(attempt.line())
            return 1 if any(a.failed for a in attempts) else 0
        try:
            scheduler.serve()
        except KeyboardInterrupt:
            print("workbench schedule: stopped", file=sys.stderr)
        return 0
    finally:
        scheduler.close()
