"""Execute every notebook headlessly with small parameters (papermill)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
SMALL = {
    "backtest.ipynb": {"symbol": "SPX", "params": "fast: 5, slow: 20", "start": "2008-01-01", "end": "2009-12-31"},
}

pytestmark = pytest.mark.notebooks


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    assert not [c for c in nb["cells"] if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_uses_only_the_public_package(path):
    """A notebook imports ``workbench`` (as anything) and reaches the rest as ``wb.<name>``."""
    nb = json.loads(path.read_text())
    found = []
    for cell in (c for c in nb["cells"] if c["cell_type"] == "code"):
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if isinstance(node, ast.Import):
                found += [a.name for a in node.names if a.name.split(".")[0] == "workbench"]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "workbench":
                found.append(f"from {node.module} import ...")
    assert found == ["workbench"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_with_small_parameters(path, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_REPORTS_DIR", str(tmp_path / "reports"))  # the kernel inherits it
    out = tmp_path / path.name
    pm.execute_notebook(str(path), str(out), parameters=SMALL.get(path.name, {}), progress_bar=False,
                        cwd=str(path.parent), kernel_name="python3")
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    if path.name == "backtest.ipynb":
        text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream")
        assert "AGREE" in text  # the engine cross-check ran and passed
        tearsheet = tmp_path / "reports" / "tearsheet_SPX.html"
        assert tearsheet.stat().st_size > 100_000 and "SPX buy &amp; hold" in tearsheet.read_text()
        assert "https://" not in tearsheet.read_text().split("<body")[0]  # nothing fetched on open


def test_runbook_parameters_cell_is_tagged_and_typed():
    nb = nbformat.read(NOTEBOOKS[[p.name for p in NOTEBOOKS].index("backtest.ipynb")], as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    params = pm.inspect_notebook(str(NOTEBOOKS[[p.name for p in NOTEBOOKS].index("backtest.ipynb")]))
    assert set(params) == {"strategy", "params", "symbol", "benchmark", "cash", "commission", "start", "end",
                           "check_engines", "tearsheet"}
    assert params["cash"]["inferred_type_name"] == "float" and params["check_engines"]["inferred_type_name"] == "bool"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"params": "fast: 50, slow: 20"}, "fast must be < slow, got fast=50, slow=20"),
        ({"strategy": "nope"}, "unknown strategy 'nope'; known: arbitrage"),
        ({"benchmark": "XYZ"}, "benchmark must be one of"),
        ({"symbol": "0050"}, "symbol must be one of"),
        ({"commission": 0.5}, "commission is a fraction of notional"),
        ({"start": "not a date"}, "start must be a date"),
    ],
)
def test_runbook_fails_at_once_on_a_bad_parameter(tmp_path, params, message):
    path = NOTEBOOKS[[p.name for p in NOTEBOOKS].index("backtest.ipynb")]
    with pytest.raises(pm.PapermillExecutionError, match=message) as exc:
        pm.execute_notebook(str(path), str(tmp_path / "bad.ipynb"), parameters=params, progress_bar=False,
                            cwd=str(path.parent), kernel_name="python3")
    assert exc.value.exec_count == 3  # the validation cell right after the parameters


def test_cli_run_writes_notebook_and_offline_html(tmp_path, monkeypatch):
    from workbench.cli import main

    monkeypatch.setenv("WORKBENCH_REPORTS_DIR", str(tmp_path))

    from workbench.report import list_reports

    path = NOTEBOOKS[[p.name for p in NOTEBOOKS].index("backtest.ipynb")]
    assert main(["run", str(path), "-r", "symbol", "GOOG", "-r", "params", "fast: 5, slow: 15",
                 "-r", "start", "2010-01-01"]) == 0
    (run,) = list_reports()  # one folder per run: reports/backtest/<UTC time>-<id>/
    assert run.notebook == run.folder / "report.ipynb" and run.notebook.is_file()
    html = run.html.read_text()
    assert "plotly-graph-div" in html
    assert 'src="http' not in html  # no external scripts: renders offline
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary files left behind


def test_the_backtest_runbook_runs_a_panel_strategy_against_another_benchmark(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_REPORTS_DIR", str(tmp_path / "reports"))
    path = NOTEBOOKS[[p.name for p in NOTEBOOKS].index("backtest.ipynb")]
    out = tmp_path / "pairs.ipynb"
    pm.execute_notebook(str(path), str(out), parameters={"strategy": "pairs", "params": "window: 60, entry_z: 1.5",
                        "symbol": "SPX+IXIC", "benchmark": "GOOG", "start": "2010-01-01", "end": "2013-12-31",
                        "tearsheet": False}, progress_bar=False, cwd=str(path.parent), kernel_name="python3")  # fmt: skip
    nb = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream")
    assert "SPX+IXIC:" in text and "AGREE" in text
    figures = [o["data"]["application/vnd.plotly.v1+json"]["layout"].get("title", {}).get("text", "")
               for c in nb.cells for o in c.get("outputs", []) if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert "fills on price (SPX)" in figures and "fills on price (IXIC)" in figures
    bench = [o for c in nb.cells for o in c.get("outputs", []) if "GOOG buy &amp; hold" in str(o) or "GOOG buy & hold" in str(o)]
    assert bench  # the tearsheet compares against the chosen benchmark, not the traded symbols
