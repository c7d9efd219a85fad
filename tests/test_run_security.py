"""Parameters and paths of headless runs: no code through a name or value, no file outside reports/.

Each case here was a hole before (issue 9): a parameter name went verbatim into the
injected cell, report names were built from raw values, and a SIGKILLed run left its
temporary behind for ever.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.errors import ParameterError, ReportPathError
from workbench.notebook_params import check_parameters, declared_parameters
from workbench.report import default_output, list_reports, report_path, run_notebook

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = ROOT / "notebooks" / "optimize.ipynb"  # its parameters have every declared type: str, int, float, bool


@pytest.fixture()
def reports(tmp_path, monkeypatch):
    folder = tmp_path / "reports"
    monkeypatch.setenv("WORKBENCH_REPORTS_DIR", str(folder))
    monkeypatch.chdir(tmp_path)
    return folder


@pytest.mark.parametrize(
    "name",
    ["__import__('os').system('touch pwned')#", "train\nimport os; os.system('touch pwned')", "train=1;x",
     "class", "", "1fast"],
)
def test_a_parameter_name_that_is_code_is_refused_before_anything_runs(name, reports, tmp_path, capsys):
    assert main(["run", str(RUNBOOK), "-p", name, "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ParameterError:") and err.count("\n") == 1
    assert not (tmp_path / "pwned").exists() and not (RUNBOOK.parent / "pwned").exists()
    assert not reports.exists() or not list(reports.iterdir())  # nothing started, nothing written
    with pytest.raises(ParameterError):  # the scheduled-job path is the same gate
        run_notebook(RUNBOOK, None, {name: 1}, progress=False)


def test_a_typo_names_the_closest_declared_parameter(reports, capsys):
    assert main(["run", str(RUNBOOK), "-p", "trian", "5"]) == 2
    assert "unknown parameter 'trian' (did you mean train?)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"train": "__import__('os').system('x')"}, "train must be an integer"),
        ({"train": True}, "train must be an integer"),
        ({"train": 5.5}, "train must be an integer"),
        ({"train": [5]}, "train must be an integer"),
        ({"symbol": 5}, "symbol must be a string"),
        ({"commission": float("nan")}, "commission must be finite"),
        ({"walk_forward": "yes please"}, "walk_forward must be True or False"),
    ],
)
def test_values_must_be_literals_of_the_declared_type(params, message):
    with pytest.raises(ParameterError, match=message):
        check_parameters(RUNBOOK, params)


def test_command_line_text_is_parsed_by_the_declared_type():
    text = {"symbol": "0050", "train": "20", "commission": "5000", "walk_forward": "true", "start": "2010-01-01"}
    assert check_parameters(RUNBOOK, text, from_text=frozenset(text)) == {
        "symbol": "0050", "train": 20, "commission": 5000.0, "walk_forward": True, "start": "2010-01-01"}  # fmt: skip
    with pytest.raises(ParameterError, match="train must be an integer, got train='abc'"):
        check_parameters(RUNBOOK, {"train": "abc"}, from_text=frozenset({"train"}))


def test_the_injected_cell_is_parsed_back_and_must_be_plain_assignments(monkeypatch):
    """Defence in depth: even a translator with an escaping bug cannot smuggle code."""
    from papermill.translators import PythonTranslator

    monkeypatch.setattr(PythonTranslator, "codify", classmethod(lambda cls, p, c=None: 'symbol = "x"; import os\n'))
    with pytest.raises(ParameterError, match="not plain assignments"):
        check_parameters(RUNBOOK, {"symbol": "x"})
    monkeypatch.setattr(PythonTranslator, "codify", classmethod(lambda cls, p, c=None: 'symbol = "y"\n'))
    with pytest.raises(ParameterError, match="values changed"):
        check_parameters(RUNBOOK, {"symbol": "x"})


def test_declared_parameters_come_from_the_tagged_cell():
    declared = declared_parameters(RUNBOOK)
    assert declared["train"].type_name == "int" and declared["train"].default == 750
    assert declared["symbol"].default == "GOOG" and declared["commission"].type_name == "float"
    with pytest.raises(ParameterError, match="notebook not found"):
        declared_parameters(ROOT / "notebooks" / "nope.ipynb")


@pytest.mark.parametrize("value", ["../../etc/passwd", "/../../tmp/x", "..", "a/b\\c", "\x00", "." * 300])
def test_report_names_from_any_value_stay_inside_reports(value, reports):
    path = default_output(RUNBOOK, {"symbol": value})
    assert path.parent == reports.resolve() and path.suffix == ".ipynb"
    assert not path.name.startswith(".")
    assert report_path("tearsheet", value, suffix=".html").parent == reports.resolve()


def test_report_names_are_injective():
    assert report_path("t", "BTC/USDT") != report_path("t", "BTC_USDT") != report_path("t", "BTC-USDT")
    assert report_path("t", "GOOG").name == "t_GOOG.ipynb"  # a safe value keeps its plain name


@pytest.mark.parametrize("output", ["../outside.ipynb", "/tmp/outside.ipynb", "sub/../../x.ipynb", "x.html"])
def test_an_explicit_output_must_be_a_notebook_inside_reports(output, reports, capsys):
    with pytest.raises(SystemExit) as exit_:  # the CLI has no -o any more: every run gets its own folder
        main(["run", str(RUNBOOK), "-o", output])
    assert exit_.value.code == 2 and not reports.exists()
    with pytest.raises(ReportPathError):
        run_notebook(RUNBOOK, Path(output), {}, progress=False)


def test_a_hostile_symbol_fails_in_the_notebook_and_keeps_the_failed_copy_inside_reports(reports, tmp_path, capsys):
    assert main(["run", str(RUNBOOK), "-r", "symbol", "../../../escaped", "-r", "end", "2013-06-01"]) == 1
    err = capsys.readouterr().err.splitlines()[-1]  # above it: papermill's progress bar
    assert err.startswith("run failed: ParameterError: symbol must be one of")
    assert "in cell 3" in err and "partial notebook is kept in" in err
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(p.is_relative_to(reports) for p in written)
    (run,) = list_reports()
    assert run.status == "failed" and run.notebook.is_file() and str(run.notebook) in err


def test_a_missing_notebook_is_one_line_and_leaves_nothing(reports, capsys):
    assert main(["run", "nope.ipynb", "-p", "train", "5"]) == 2
    assert capsys.readouterr().err == "error: ParameterError: notebook not found: nope.ipynb\n"
    assert not reports.exists()


def test_debug_shows_the_traceback(reports):
    with pytest.raises(ParameterError):
        main(["--debug", "run", "nope.ipynb"])


def _wait_for(predicate, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_sigkilled_run_leaves_its_work_folder_which_the_next_run_removes(reports, tmp_path):
    from workbench._fs import remove_stale_workdirs

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "WORKBENCH_REPORTS_DIR": str(reports), "TMPDIR": str(scratch)}
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "run", str(RUNBOOK), "-p", "train", "5"],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        work = _wait_for(lambda: [p for p in scratch.glob("workbench-run-*") if any(p.iterdir())])
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert all(p.exists() for p in work)  # SIGKILL: no chance to clean up
    assert [p for p in reports.rglob("*") if p.is_file()] == []  # work in progress never in reports/
    assert remove_stale_workdirs(scratch) == work and not any(p.exists() for p in work)


def test_stale_temporaries_are_never_listed_and_are_removed(reports):
    from workbench.report_index import write_index

    reports.mkdir()
    orphan = reports / ".index.html.999999999.abcd.tmp"  # pid 999999999 does not exist
    orphan.write_text("half")
    write_index()
    assert list_reports() == [] and not orphan.exists()
    assert ".tmp" not in (reports / "index.html").read_text()


def test_a_reports_folder_swapped_for_a_symlink_mid_run_gets_nothing(reports, tmp_path):
    import threading

    import nbformat

    cell = nbformat.v4.new_code_cell("x: int = 1")
    cell.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_code_cell("import time; time.sleep(4)")])
    (reports / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    errors = []

    def run():
        try:
            run_notebook(nb_path, reports / "sub" / "r.ipynb", {"x": 2}, progress=False)
        except ReportPathError as exc:
            errors.append(exc)

    nb_path = tmp_path / "slow.ipynb"
    nbformat.write(nb, nb_path)
    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(2.5)  # the kernel is running the sleep
    (reports / "sub").rename(reports / "sub.real")
    (reports / "sub").symlink_to(outside)
    worker.join(60)
    assert errors and "changed during the run" in str(errors[0])
    assert list(outside.iterdir()) == []  # not the report, not a temporary


def test_a_live_writers_temporary_is_kept(reports):
    from workbench._fs import remove_stale_temporaries, temporary_path

    reports.mkdir()
    mine = temporary_path(reports / "x.ipynb")
    assert remove_stale_temporaries(reports) == [] and mine.exists()


def test_finished_reports_are_readable_by_the_group_and_others(tmp_path):
    from workbench._fs import atomic_write

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "r.html", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.html").stat().st_mode) == 0o644


def _recorded(reports: Path, run_id: str, status: str) -> Path:
    """A run folder with the run.json run_report would write (no kernel needed)."""
    import json

    folder = reports / "book" / run_id
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({
        "runbook": "book", "run_id": run_id, "folder": f"book/{run_id}", "status": status,
        "started": f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}T{run_id[9:11]}:{run_id[11:13]}:{run_id[13:15]}+00:00",
        "seconds": 1.5, "parameters": {}, "notebook": "report.ipynb", "html": None, "error": None,
        "code_commit": None}))  # fmt: skip
    return folder


def test_cli_reports_lists_finished_files(reports, capsys):
    _recorded(reports, "20240101T000000Z-0123abcd", "ok")
    (reports / "book" / ".x.html.999999999.abc.tmp").write_text("x")
    assert main(["reports"]) == 0
    out = capsys.readouterr().out
    assert "20240101T000000Z-0123abcd" in out and " ok " in out and ".tmp" not in out


def test_braces_in_the_output_are_not_papermill_templates(reports, tmp_path):
    """papermill str.formats paths with the parameters: '{x}' must stay a literal name."""
    outside = tmp_path / "outside"
    out, _ = run_notebook(_tiny(tmp_path), Path(reports / "{x}.ipynb"),
                          {"x": str(outside / "pwn")}, html=False, progress=False)  # fmt: skip
    assert out == (reports / "{x}.ipynb").resolve() and out.stat().st_size > 0
    assert not outside.exists() and [p.name for p in reports.iterdir()] == ["{x}.ipynb"]


def _tiny(folder: Path, kernelspec: bool = True) -> Path:
    import nbformat

    cell = nbformat.v4.new_code_cell('x: str = "a"\nn: int = 0')
    cell.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_code_cell("print(x, n)")])
    if kernelspec:
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / ("tiny.ipynb" if kernelspec else "bare.ipynb")
    nbformat.write(nb, path)
    return path


def test_a_notebook_without_kernelspec_runs_on_python3(reports, tmp_path):
    out, _ = run_notebook(_tiny(tmp_path, kernelspec=False), None, {"n": 3}, html=False, progress=False)
    assert out.name.startswith("bare_n-3~") and out.suffix == ".ipynb"


@pytest.mark.parametrize(("name", "content"), [("t.txt", "hello"), ("bad.ipynb", "{not json"), ("empty.ipynb", "{}")])
def test_a_file_that_is_not_a_notebook_is_one_line(name, content, reports, tmp_path, capsys):
    (tmp_path / name).write_text(content)
    assert main(["run", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ParameterError: ") and "is not a readable Jupyter notebook" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(("params", "message"), [({"symbol": "\ud800"}, "valid Unicode"), ({"commission": 10**400}, "too large")])
def test_values_that_cannot_be_written_or_converted_are_refused(params, message):
    with pytest.raises(ParameterError, match=message):
        check_parameters(RUNBOOK, params)


def test_a_non_utf8_command_line_value_is_one_line(reports, capsys):
    assert main(["run", str(RUNBOOK), "-r", "symbol", "\udcff"]) == 2  # how Python passes argv byte 0xff
    assert capsys.readouterr().err.startswith("error: ParameterError: symbol must be valid Unicode")


def test_relative_output_is_relative_to_the_current_directory(reports, tmp_path, monkeypatch):
    from workbench.report import output_inside

    reports.mkdir()
    monkeypatch.chdir(reports)
    assert output_inside(Path("x.ipynb")) == (reports / "x.ipynb").resolve()
    monkeypatch.chdir(tmp_path)
    assert output_inside(Path("reports/x.ipynb")) == (reports / "x.ipynb").resolve()
    with pytest.raises(ReportPathError, match="visible file"):
        output_inside(Path("reports/.x.1.abc.tmp.ipynb"))  # would look like a temporary


def test_the_output_folder_swapped_for_a_symlink_mid_run_is_refused(reports, tmp_path):
    from workbench.report import _still_inside

    (reports / "sub").mkdir(parents=True)
    parent = (reports / "sub").resolve()
    (reports / "sub").rename(reports / "sub.orig")
    (tmp_path / "outside").mkdir()
    (reports / "sub").symlink_to(tmp_path / "outside")
    with pytest.raises(ReportPathError, match="changed during the run"):
        _still_inside(reports / "sub" / "out.ipynb", parent)


def test_an_unexpected_error_is_still_one_line(monkeypatch, capsys):
    from workbench import cli

    monkeypatch.setattr(cli, "_dispatch", lambda args: 1 / 0)
    assert main(["symbols"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unexpected ZeroDivisionError: division by zero") and err.count("\n") == 1


def test_negative_numbers_pass_the_injection_check():
    assert check_parameters(RUNBOOK, {"commission": -0.5, "train": -2}) == {"commission": -0.5, "train": -2}
    assert check_parameters(RUNBOOK, {"train": "-3"}, from_text=frozenset({"train"})) == {"train": -3}


def test_default_report_names_are_injective_over_parameters():
    a = default_output(RUNBOOK, {"symbol": "1_fast-2"})
    b = default_output(RUNBOOK, {"symbol": "1", "train": 2})
    c = default_output(RUNBOOK, {"symbol": "1", "train": "2"})
    assert len({a, b, c}) == 3


def test_failed_runs_are_listed_as_failed(reports, capsys):
    _recorded(reports, "20240101T000000Z-0123abcd", "failed")
    assert [r.status for r in list_reports()] == ["failed"]
    assert main(["reports"]) == 0 and " failed " in capsys.readouterr().out


def test_dash_r_keeps_a_string_for_an_untyped_parameter(tmp_path):
    import nbformat

    cell = nbformat.v4.new_code_cell("n = None")
    cell.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[cell])
    assert check_parameters(nb, {"n": "50"}, raw_text=frozenset({"n"})) == {"n": "50"}
    assert check_parameters(nb, {"n": "50"}, from_text=frozenset({"n"})) == {"n": 50}
    assert check_parameters(RUNBOOK, {"train": "7"}, raw_text=frozenset({"train"})) == {"train": 7}


def test_a_sigkilled_cache_writers_temporary_is_removed_by_the_next_write(tmp_path):
    import workbench as wb
    from workbench.adapters.store import CacheKey, ParquetCache

    cache = ParquetCache(tmp_path)
    key = CacheKey("sample", "GOOG", "1d")
    frame = wb.load_prices("GOOG")
    cache.write(key, frame, adjusted=False, covered_start=None, covered_end=None)
    orphan = cache.path(key).parent / f".{cache.path(key).name}.999999999.abcd.tmp"
    orphan.write_bytes(b"half")
    cache.write(key, frame, adjusted=False, covered_start=None, covered_end=None)
    assert not orphan.exists()
