"""The package is the public API: notebook-facing modules hang off ``workbench`` lazily."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import workbench as wb

LAZY = {
    "plots": "workbench.plots",
    "runbook": "workbench.runbook",
    "config": "workbench.config",
    "tearsheet": "workbench.adapters.tearsheet",
    "report": "workbench.report",
    "dashboards": "workbench.dashboards",
}


@pytest.mark.parametrize(("attr", "module"), LAZY.items())
def test_notebook_modules_are_package_attributes(attr, module):
    assert getattr(wb, attr) is sys.modules[module]
    assert attr in dir(wb)


def test_an_unknown_attribute_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        wb.nope  # noqa: B018


def test_import_workbench_loads_none_of_them():
    """``import workbench`` stays fast: plotly, quantstats, ipywidgets, papermill load on first use."""
    probe = "import json, sys, workbench; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                           check=True).stdout))  # fmt: skip
    lazy_only = {"workbench.plots", "workbench.runbook", "workbench.adapters.tearsheet", "workbench.report",
                 "workbench.dashboards", "plotly", "quantstats", "ipywidgets", "papermill", "vectorbt"}  # fmt: skip
    assert not lazy_only & loaded
