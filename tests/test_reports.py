"""Report runs: one folder per run, failures and timeouts recorded, the index of every run.

Tiny notebooks written into tmp_path keep the kernel runs short; one run of the real
backtest runbook checks the HTML a reader gets.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.config import notebooks_dir
from workbench.errors import ParameterError
from workbench.report import ReportRun, list_reports, resolve_runbook, run_report
from workbench.report_index import index_html, write_index

ROOT = Path(__file__).resolve().parents[1]
RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")

TINY = """import time
import workbench as wb
print("value", x, n)
(wb.report.run_folder() / "extra.csv").write_text(f"x,n\\n{x},{n}\\n")
if mode == "fail":
    raise ValueError(f"boom <{n}>")
if mode == "sleep":
    time.sleep(60)
"""


def _tiny(folder: Path) -> Path:
    cell = nbformat.v4.new_code_cell('x: str = "a"  # a label\nn: int = 0  # a count\nmode: str = "ok"  # ok, fail, sleep')
    cell.metadata["tags"] = ["parameters"]
    after = nbformat.v4.new_code_cell('print("after the sleep")')
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_code_cell(TINY), after])
    path = folder / "tiny.ipynb"
    nbformat.write(nb, path)
    return path


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Four kernel runs under a strict umask: ok, ok, failed, timeout (in that order)."""
    base = tmp_path_factory.mktemp("runs")
    root, tiny = base / "reports", _tiny(base)
    old = os.umask(0o077)  # the files must still end up 0644 / 0755
    try:
        first = run_report(tiny, {"x": "<b>&", "n": 1}, root=root)
        good_before = _digest(first.folder)
        second = run_report(tiny, {"n": 2}, root=root)
        failed = run_report(tiny, {"n": 3, "mode": "fail"}, root=root)
        late = run_report(tiny, {"n": 4, "mode": "sleep"}, root=root, timeout=3)
    finally:
        os.umask(old)
    return {"root": root, "tiny": tiny, "first": first, "second": second, "failed": failed, "timeout": late,
            "good_before": good_before}  # fmt: skip


def test_run_report_writes_one_named_folder_per_run(runs):
    first = runs["first"]
    assert first.status == "ok" and first.error is None
    assert first.folder.parent == runs["root"] / "tiny" and RUN_ID.match(first.folder.name)
    assert first.run_id == first.folder.name and first.runbook == "tiny"
    assert sorted(p.name for p in first.folder.iterdir()) == ["extra.csv", "report.html", "report.ipynb", "run.json"]
    assert (first.folder / "extra.csv").read_text() == "x,n\n<b>&,1\n"  # the companion the notebook wrote
    assert first.started.strftime("%Y%m%dT%H%M%SZ") == first.run_id[:16]
    folders = [r.folder for r in (runs["first"], runs["second"], runs["failed"], runs["timeout"])]
    assert len(set(folders)) == 4 and not list(runs["root"].glob("*.ipynb"))  # nothing outside run folders


def test_two_runs_in_the_same_second_with_the_same_draw_never_share_a_folder(tmp_path, monkeypatch):
    from workbench import report

    draws = iter(["deadbeef", "deadbeef", "0badf00d"])
    monkeypatch.setattr(report.secrets, "token_hex", lambda n: next(draws))
    frozen = pd.Timestamp("2024-05-06 07:08:09", tz="UTC")
    monkeypatch.setattr(report.pd.Timestamp, "now", classmethod(lambda cls, tz=None: frozen))
    a = report._new_run_folder(tmp_path, "book")
    b = report._new_run_folder(tmp_path, "book")
    assert a.name == "20240506T070809Z-deadbeef" and b.name == "20240506T070809Z-0badf00d"


def test_folders_are_0755_and_files_0644_whatever_the_umask(runs):
    for run in (runs["first"], runs["failed"]):
        assert stat.S_IMODE(run.folder.stat().st_mode) == 0o755
        assert stat.S_IMODE(run.folder.parent.stat().st_mode) == 0o755
        assert {stat.S_IMODE(p.stat().st_mode) for p in run.folder.iterdir()} == {0o644}
    for name in ("index.html", "tiny/latest.json"):
        assert stat.S_IMODE((runs["root"] / name).stat().st_mode) == 0o644


def test_run_json_holds_every_field_and_reads_back(runs):
    first = runs["first"]
    data = json.loads((first.folder / "run.json").read_text())
    assert set(data) == {f.name for f in dataclasses.fields(ReportRun)}
    assert data["parameters"] == {"x": "<b>&", "n": 1} and data["status"] == "ok"
    assert data["folder"] == f"tiny/{first.run_id}" and (data["notebook"], data["html"]) == ("report.ipynb", "report.html")
    assert pd.Timestamp(data["started"]) == first.started and 0 < data["seconds"] < 600
    commit = (data["code_commit"] or "").split("+")[0]  # the commit the process started on: HEAD or before it
    git = ["git", "-C", str(ROOT), "merge-base", "--is-ancestor", commit, "HEAD"]
    assert len(commit) == 40 and subprocess.run(git, capture_output=True).returncode == 0
    assert [r for r in list_reports(runs["root"]) if r.run_id == first.run_id] == [first]


def test_a_failed_run_is_recorded_and_the_previous_report_is_untouched(runs):
    failed, first = runs["failed"], runs["first"]
    assert failed.status == "failed" and "\n" not in failed.error
    assert failed.error.startswith("ValueError: boom <3>") and "in cell" in failed.error
    kept = nbformat.read(failed.notebook, as_version=4)
    assert [o.ename for c in kept.cells for o in c.get("outputs", []) if o.output_type == "error"] == ["ValueError"]
    assert failed.html.is_file() and "[FAILED]" in failed.html.read_text()
    assert _digest(first.folder) == runs["good_before"]
    latest = json.loads((runs["root"] / "tiny" / "latest.json").read_text())
    assert latest["run_id"] == runs["second"].run_id  # the newest OK run, not the later failures


def test_a_timeout_is_recorded_as_timeout_though_papermill_says_completed(runs):
    late = runs["timeout"]
    assert late.status == "timeout" and "timeout=3 s" in late.error
    kept = nbformat.read(late.notebook, as_version=4)
    assert {c.metadata.papermill.status for c in kept.cells} == {"completed"}  # why the type is checked
    streams = "".join(o.get("text", "") for c in kept.cells for o in c.get("outputs", []))
    assert "value a 4" in streams and "after the sleep" not in streams


@pytest.mark.parametrize(
    ("parameters", "kwargs", "message"),
    [
        ({"nn": 1}, {}, "unknown parameter 'nn'"),
        ({"n": "abc"}, {}, "n must be an integer"),
        ({}, {"timeout": 0}, "timeout must be a positive number of seconds, got timeout=0"),
        ({}, {"timeout": float("nan")}, "got timeout=nan"),
        ({}, {"timeout": True}, "got timeout=True"),
    ],
)
def test_bad_parameters_raise_before_any_folder_exists(parameters, kwargs, message, tmp_path):
    with pytest.raises(ParameterError, match=message):
        run_report(_tiny(tmp_path), parameters, root=tmp_path / "reports", **kwargs)
    assert not (tmp_path / "reports").exists()


def test_a_missing_runbook_name_raises_before_any_folder(tmp_path):
    with pytest.raises(ParameterError, match="notebook not found"):
        run_report("no_such_runbook", root=tmp_path / "reports")
    assert not (tmp_path / "reports").exists()
    assert resolve_runbook("backtest") == notebooks_dir() / "backtest.ipynb"
    assert resolve_runbook("x/y.ipynb") == Path("x/y.ipynb")


def test_list_reports_is_newest_first(runs):
    listed = list_reports(runs["root"])
    assert [r.run_id for r in listed] == [runs[k].run_id for k in ("timeout", "failed", "second", "first")]
    assert listed == sorted(listed, key=lambda r: r.started, reverse=True)


def test_the_index_lists_every_run_with_links_and_failures(runs):
    page = (runs["root"] / "index.html").read_text()
    for key in ("first", "second", "failed", "timeout"):
        assert f'href="tiny/{runs[key].run_id}/report.html"' in page
        assert f'href="tiny/{runs[key].run_id}/report.ipynb"' in page
    failures = page.split("<h2>Failures</h2>")[1].split("<h2")[0]
    assert runs["failed"].run_id in failures and runs["timeout"].run_id in failures
    assert runs["first"].run_id not in failures
    assert html.escape(runs["failed"].error) in failures and "boom <3>" not in page  # escaped
    assert "x=&quot;&lt;b&gt;&amp;&quot;" in page  # a parameter is user input
    assert "<script" not in page and "http://" not in page and "https://" not in page  # offline, no JS


def _fake_run(root: Path, run_id: str, parameters: dict, status: str = "ok", error: str | None = None) -> Path:
    folder = root / "book" / run_id
    folder.mkdir(parents=True)
    started = pd.Timestamp(run_id[:16].replace("Z", ""), tz="UTC")
    run = ReportRun(runbook="book", run_id=run_id, folder=folder, status=status, started=started, seconds=1.25,
                    parameters=parameters, notebook=folder / "report.ipynb", html=None, error=error,
                    code_commit=None)  # fmt: skip
    (folder / "run.json").write_text(json.dumps(run.to_json()))
    return folder


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40), error=st.text(min_size=1, max_size=40))
def test_index_escapes_any_parameter_and_error(tmp_path_factory, text, error):
    root = tmp_path_factory.mktemp("esc")
    _fake_run(root, "20240101T000000Z-00000001", {"s": text}, status="failed", error=error)
    page = index_html(root)
    shown = json.dumps(text, ensure_ascii=False)
    assert html.escape(f"s={shown}") in page and html.escape(error) in page
    body = page.split("<body>")[1]
    assert "<script" not in body.lower().replace("&lt;script", "")
    assert body.count("<tr>") == 2 * 2  # header + row, in Failures and in the runbook's history


def test_the_index_shows_a_killed_run_as_unfinished(tmp_path):
    _fake_run(tmp_path, "20240102T000000Z-0000000a", {"n": 1})
    (tmp_path / "book" / "20240103T000000Z-0000000b").mkdir()  # SIGKILLed: no run.json
    broken = tmp_path / "book" / "20240104T000000Z-0000000c"
    broken.mkdir()
    (broken / "run.json").write_text("{half")  # a corrupt record reads as unfinished too
    (tmp_path / "book" / "not-a-run").mkdir()  # ignored: not a run folder name
    page = write_index(tmp_path).read_text()
    assert page.count('class="unfinished"') == 2 and "0000000b" in page and "0000000c" in page
    assert "not-a-run" not in page and "2024-01-03 00:00:00" in page
    assert [r.run_id for r in list_reports(tmp_path)] == ["20240102T000000Z-0000000a"]


def test_an_empty_reports_folder_gets_an_index(tmp_path):
    assert "No runs yet" in write_index(tmp_path / "r").read_text()


@pytest.mark.notebooks
def test_the_backtest_runbook_report_hides_code_and_is_offline(tmp_path):
    root = tmp_path / "reports"
    params = {"symbol": "GOOG", "params": "fast: 5, slow: 20", "start": "2012-01-01", "end": "2013-06-30",
              "check_engines": False}  # fmt: skip
    run = run_report("backtest", params, root=root)
    assert run.status == "ok", run.error
    page = run.html.read_text()
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert title != "Notebook" and title.startswith("backtest") and "symbol=GOOG" in title
    assert not re.search(r"<script[^>]*src=\"https?://", page)
    assert "BacktestParams(" not in page  # code cells hidden...
    assert "plotly" in page  # ...their outputs kept
    written = {p for p in root.rglob("*") if p.is_file()}
    assert written - set(run.folder.iterdir()) == {root / "index.html", root / "backtest" / "latest.json"}


def test_a_report_run_is_kept_in_the_store_with_its_backtests_as_children(tmp_path, monkeypatch) -> None:
    """Every report run is recorded (kind report); the backtests its kernel ran name it as parent."""
    import workbench as wb
    from workbench.report import run_report

    store_path = tmp_path / "store.sqlite"
    monkeypatch.setenv("WORKBENCH_STORE", str(store_path))  # the kernel inherits it
    run = run_report("backtest", {"symbol": "SPX", "params": "fast: 5, slow: 20", "start": "2008-01-01", "end": "2008-12-31",
                                  "check_engines": False, "tearsheet": False}, root=tmp_path / "reports")  # fmt: skip
    assert run.ok, run.error
    store = wb.SQLiteStore(store_path)
    reports = store.report_runs("backtest")
    assert list(reports["run_id"]) == [run.run_id] and reports.loc[0, "status"] == "ok"
    children = store.frame(parent=run.run_id)
    assert len(children) >= 1 and set(children["strategy"]) == {"SMACrossover"}
