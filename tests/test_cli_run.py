"""``workbench run | demo | reports | schedule``: exit codes and one-line messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from workbench import cli
from workbench.cli import main
from workbench.report import ReportRun, list_reports


@pytest.fixture()
def reports(tmp_path, monkeypatch):
    folder = tmp_path / "reports"
    monkeypatch.setenv("WORKBENCH_REPORTS_DIR", str(folder))
    return folder


@pytest.fixture()
def tiny(tmp_path) -> Path:
    cell = nbformat.v4.new_code_cell('n: int = 0  # a count\nmode: str = "ok"  # ok, fail, sleep')
    cell.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        'print("n is", n)\nif mode == "fail":\n    raise RuntimeError("it broke")\n'
        'if mode == "sleep":\n    import time; time.sleep(60)'
    )
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell, body]), path)
    return path


def _one_line(text: str) -> str:
    assert text.count("\n") == 1 and "Traceback" not in text, text
    return text


def test_a_typo_in_a_parameter_name_exits_2_naming_it_and_the_known_ones(tiny, reports, capsys):
    assert main(["run", str(tiny), "-p", "nn", "5"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "unknown parameter 'nn' (did you mean n?)" in err and "declares: n, mode" in err
    assert not reports.exists()


def test_a_bad_value_exits_2_naming_the_parameter_and_value(tiny, reports, capsys):
    assert main(["run", str(tiny), "-p", "n", "five"]) == 2
    assert "n must be an integer, got n='five'" in _one_line(capsys.readouterr().err)
    assert not reports.exists()


def test_a_missing_notebook_exits_2_in_one_line(reports, capsys):
    assert main(["run", "no_such_runbook"]) == 2
    assert "notebook not found" in _one_line(capsys.readouterr().err) and not reports.exists()


def test_a_bad_timeout_is_bad_usage(tiny, reports):
    for value in ("0", "-1", "soon", "inf"):
        with pytest.raises(SystemExit) as exit_:
            main(["run", str(tiny), "--timeout", value])
        assert exit_.value.code == 2
    assert not reports.exists()


def test_a_successful_run_prints_its_report_and_the_index(tiny, reports, capsys):
    assert main(["run", str(tiny), "-p", "n", "7"]) == 0
    out = capsys.readouterr().out
    (run,) = list_reports()
    assert run.status == "ok" and run.parameters == {"n": 7}
    assert f"report:  {run.html}" in out and str(reports / "index.html") in out
    assert run.html.is_file() and (reports / "index.html").is_file()


def test_a_failed_run_exits_1_with_the_error_and_the_kept_notebook(tiny, reports, capsys):
    assert main(["run", str(tiny), "-r", "mode", "fail"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    (run,) = list_reports()
    assert err.startswith("run failed: RuntimeError: it broke") and str(run.notebook) in err
    assert run.notebook.is_file() and run.status == "failed"


def test_a_timed_out_run_exits_1_as_timeout(tiny, reports, capsys):
    assert main(["run", str(tiny), "-p", "mode", "sleep", "--timeout", "2"]) == 1
    err = capsys.readouterr().err.splitlines()[-1]  # above: nbclient logs its own timeout line
    assert err.startswith("run timeout: timeout: the cells ran longer than timeout=2 s")
    assert [r.status for r in list_reports()] == ["timeout"]


def test_every_option_of_run_has_help():
    sub = next(a for a in cli._parser()._actions if a.dest == "command")
    for name in ("run", "demo", "reports", "schedule"):
        assert sub.choices[name].description or name in {c.dest for c in sub._choices_actions}
    run = sub.choices["run"]
    missing = [a.dest for a in run._actions if a.dest != "help" and not a.help]
    assert missing == []
    assert all(c.help for c in sub._choices_actions)
    assert "-o" not in run._option_string_actions  # dropped: each run has its own folder


def test_reports_lists_runs_newest_first_with_unfinished(reports, capsys):
    def record(run_id: str, status: str) -> None:
        folder = reports / "book" / run_id
        folder.mkdir(parents=True)
        run = ReportRun(runbook="book", run_id=run_id, folder=folder, status=status,
                        started=pd.Timestamp(run_id[:15], tz="UTC"), seconds=2.5, parameters={}, notebook=None,
                        html=None, error=None if status == "ok" else "X: y", code_commit=None)  # fmt: skip
        (folder / "run.json").write_text(json.dumps(run.to_json()))

    record("20240101T000000Z-00000001", "ok")
    record("20240103T000000Z-00000003", "failed")
    (reports / "book" / "20240102T000000Z-00000002").mkdir()  # killed: no run.json
    assert main(["reports"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[1] for ln in lines] == ["failed", "unfinished", "ok"]
    assert lines[0].startswith("book") and "2024-01-03 00:00:00Z" in lines[0] and "2.5 s" in lines[0]
    assert lines[0].endswith(str(reports / "book" / "20240103T000000Z-00000003"))


def test_demo_runs_every_job_of_the_demo_schedule_through_run_report(reports, monkeypatch, capsys):
    from workbench import report

    calls = []

    def fake(runbook, parameters=None, **kwargs):
        calls.append((runbook, parameters))
        folder = reports / "backtest" / "20240101T000000Z-00000001"
        return ReportRun(runbook="backtest", run_id=folder.name, folder=folder, status="ok",
                         started=pd.Timestamp("2024-01-01", tz="UTC"), seconds=1.0, parameters=parameters,
                         notebook=folder / "report.ipynb", html=folder / "report.html", error=None,
                         code_commit=None)  # fmt: skip

    monkeypatch.setattr(report, "run_report", fake)
    assert main(["demo"]) == 0
    names = [Path(runbook).stem for runbook, _ in calls]
    assert names == ["backtest", "backtest", "optimize", "risk_report", "portfolio_review", "paper_trade"]
    assert [p.get("symbol") for _, p in calls[:2]] == ["GOOG", "SPX"], "the universe: one run per member"
    out = capsys.readouterr().out
    assert "20240101T000000Z-00000001/report.html" in out and str(reports / "index.html") in out


def test_schedule_without_its_module_says_not_available(monkeypatch, capsys):
    import workbench

    monkeypatch.setitem(sys.modules, "workbench.schedule", None)  # as if the module did not exist
    monkeypatch.delattr(workbench, "schedule", raising=False)
    assert main(["schedule", "jobs.yaml", "--once"]) == 2
    assert capsys.readouterr().err == "schedule: not available\n"


def test_schedule_dispatches_to_the_module(monkeypatch, capsys):
    import workbench

    seen = []
    fake = types.ModuleType("workbench.schedule")
    fake.add_arguments = lambda p: (p.add_argument("jobs"), p.add_argument("--once", action="store_true"))
    fake.command = lambda args: seen.append((args.jobs, args.once)) or 0
    monkeypatch.setitem(sys.modules, "workbench.schedule", fake)
    monkeypatch.setattr(workbench, "schedule", fake, raising=False)
    assert main(["schedule", "jobs.yaml", "--once"]) == 0 and seen == [("jobs.yaml", True)]


def test_the_installed_command_reports_a_typo_in_one_line(tiny, reports):
    env = {**os.environ, "WORKBENCH_REPORTS_DIR": str(reports)}
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "run", str(tiny), "-p", "nn", "5"],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert "unknown parameter 'nn'" in _one_line(proc.stderr)
