"""A picklable runner for the scheduler's batch tests: worker processes unpickle it by name."""

from __future__ import annotations

import os
import time
from pathlib import Path

from workbench.errors import ParameterError
from workbench.schedule import Job, RunOutcome


def marking_runner(job: Job, parameters: dict) -> RunOutcome:
    """Writes ``<member> <pid>`` into ``parameters['out']`` and holds ``parameters['hold']`` seconds;
    member BAD fails (raises), member TYPO is refused, member LATE reports a failed status."""
    member = parameters["symbol"]
    out = Path(parameters["out"])
    with (out / f"{member}.{time.time_ns()}").open("w") as f:
        f.write(f"{member} {os.getpid()}\n")
    time.sleep(parameters.get("hold", 0.0))
    if member == "BAD":
        raise RuntimeError(f"no data for {member}")
    if member == "TYPO":
        raise ParameterError("unknown parameter 'symbl'")
    if member == "LATE":
        return RunOutcome(status="timeout", error="TimeoutError: 1 s")
    return RunOutcome(status="ok", folder=out / member, run_id=f"run-{member}")
