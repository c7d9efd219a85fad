"""Docstring examples (``--doctest-modules`` over ``workbench/``) run like the tests do.

tests/conftest.py isolates the tests, but it does not reach the package's doctests; this
gives them a throw-away cache and reports folder and no network, so ``make test`` never
writes into the user's data/cache or reports/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent / "workbench"


@pytest.fixture(autouse=True)
def _doctests_offline_and_isolated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    if not Path(request.node.path).resolve().is_relative_to(PACKAGE):
        return
    base = tmp_path_factory.getbasetemp() / "doctests"
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(base / "cache"))
    monkeypatch.setenv("WORKBENCH_REPORTS_DIR", str(base / "reports"))
    monkeypatch.setenv("WORKBENCH_OFFLINE", "1")
