"""The dependency rule: the domain (trading, strategy) imports only the standard library, numpy, pandas.

Vendor libraries (TA-Lib, vectorbt, scikit-learn) sit outside it: indicators in
``workbench/adapters``, the built-in strategies in ``workbench/strategies``, vectorbt in
``workbench/engines``.
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "workbench"
DOMAIN_FILES = sorted([*ROOT.joinpath("trading").glob("*.py"), *ROOT.joinpath("strategy").glob("*.py")])
ALLOWED = {"numpy", "pandas", "workbench"} | set(sys.stdlib_module_names)


def test_domain_imports_no_vendor_library_and_no_io():
    assert len(DOMAIN_FILES) > 10
    for path in DOMAIN_FILES:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top in ALLOWED, f"{path.name} imports {name}"
                if top == "workbench":
                    assert name.split(".")[1] in {"trading", "strategy", "errors", "market"}, f"{path.name} imports {name}"
                assert top not in {"os", "io", "socket", "urllib", "http", "pathlib", "shutil"}, f"{path.name}: I/O {name}"
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                raise AssertionError(f"{path.name} opens files")
