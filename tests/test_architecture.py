"""The dependency rule: the trading domain imports only the standard library, numpy, pandas."""

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[1] / "workbench" / "trading"
ALLOWED = {"numpy", "pandas", "workbench"} | set(sys.stdlib_module_names)


def test_trading_domain_imports_no_vendor_library_and_no_io():
    for path in DOMAIN.glob("*.py"):
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
                assert name.split(".")[:2] != ["workbench", "adapters"], f"{path.name} imports {name}"
                assert top not in {"os", "io", "socket", "urllib", "http", "pathlib", "shutil"}, f"{path.name}: I/O {name}"
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                raise AssertionError(f"{path.name} opens files")
