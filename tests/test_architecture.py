"""The dependency rule, checked two ways.

- The import contract in ``pyproject.toml`` (``[tool.importlinter]``) is run by
  ``lint-imports``: the layers cli → notebook-facing modules → application → engines |
  adapters → strategies → strategy → risk → trading → market → utilities, and no vendor
  library in the domain.
- The domain (trading, strategy, risk, market.py) is read here file by file: it imports
  only the standard library, numpy, pandas, scipy and lower workbench layers, and does no
  I/O. The built-in strategies reach vendor code only through ports (scikit-learn, for
  the ML model, is the one exception). ``import workbench`` needs only the core
  dependencies of ``pyproject.toml`` and never loads vectorbt.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "workbench"
STDLIB = set(sys.stdlib_module_names)
NUMERIC = {"numpy", "pandas", "scipy"}
IO_MODULES = {"os", "io", "socket", "urllib", "http", "pathlib", "shutil", "tempfile", "subprocess",
              "glob", "sqlite3", "ftplib", "smtplib", "requests"}  # fmt: skip

# Each domain package and the workbench layers it may import (itself and those below it).
DOMAIN_LAYERS = {
    "strategy": {"strategy", "risk", "trading", "market", "errors"},
    "risk": {"risk", "trading", "market", "errors"},
    "trading": {"trading", "market", "errors"},
    "market": {"market", "errors"},
}


def _files(layer: str) -> list[Path]:
    package = ROOT / layer
    return sorted(package.glob("*.py")) if package.is_dir() else [ROOT / f"{layer}.py"]


def _imports(tree: ast.AST) -> list[tuple[str, ast.AST]]:
    """Every module an ``import`` statement names, with its node (relative ones included)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"line {node.lineno}: relative import (the contract needs absolute ones)"
            found.append((node.module or "", node))
    return found


def test_domain_imports_only_numeric_libraries_lower_layers_and_no_io():
    checked = 0
    for layer, allowed in DOMAIN_LAYERS.items():
        for path in _files(layer):
            checked += 1
            where = path.relative_to(REPO)
            tree = ast.parse(path.read_text())
            for name, node in _imports(tree):
                top = name.split(".")[0]
                assert top in STDLIB | NUMERIC | {"workbench"}, f"{where}:{node.lineno} imports {name}"
                assert top not in IO_MODULES, f"{where}:{node.lineno}: I/O module {name}"
                if top == "workbench":
                    assert name.count(".") and name.split(".")[1] in allowed, f"{where}:{node.lineno} imports {name}"
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                    raise AssertionError(f"{where}:{node.lineno} opens a file")
    assert checked > 15


def test_strategies_reach_indicators_through_the_port():
    allowed = {"workbench.errors", "workbench.strategy", "workbench.strategies"}
    for path in _files("strategies"):
        where = path.relative_to(REPO)
        tree = ast.parse(path.read_text())
        function_level = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) for n in ast.walk(f)}
        for name, node in _imports(tree):
            top = name.split(".")[0]
            if top == "sklearn":  # the ML model, imported only when it is fitted
                assert path.name in {"ml.py", "ensemble.py"} and id(node) in function_level, f"{where}:{node.lineno} imports {name}"
                continue
            assert top in STDLIB | {"numpy", "pandas", "workbench"}, f"{where}:{node.lineno} imports {name}"
            if top == "workbench":
                assert ".".join(name.split(".")[:2]) in allowed, f"{where}:{node.lineno} imports {name}"


def test_import_contract():
    """``lint-imports`` keeps every contract in pyproject.toml (its report is the message)."""
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache", "--no-logo"], cwd=REPO, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _top_level_imports(path: Path) -> set[str]:
    """Top-level packages a module imports when it is loaded (not those inside functions)."""
    names: set[str] = set()
    todo = list(ast.parse(path.read_text()).body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
        todo += ast.iter_child_nodes(node)
    return names


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_import_workbench_needs_only_core_dependencies_and_never_vectorbt():
    probe = "import json, sys, workbench; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                       check=True, cwd=REPO).stdout)  # fmt: skip
    for heavy in ("vectorbt", "plotly", "quantstats", "matplotlib", "sklearn", "ipywidgets", "papermill"):
        assert heavy not in {m.split(".")[0] for m in loaded}, f"import workbench loads {heavy}"
    ours = [m for m in loaded if m == "workbench" or m.startswith("workbench.")]
    paths = [ROOT.joinpath(*m.split(".")[1:]) for m in ours]
    files = [p / "__init__.py" if p.is_dir() else p.with_suffix(".py") for p in paths]
    vendors = set().union(*map(_top_level_imports, files)) - STDLIB - {"workbench"}
    dists = metadata.packages_distributions()
    needed = {_normal(d) for v in vendors for d in dists.get(v, [v])}
    core = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    declared = {_normal(re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]) for req in core}
    assert needed <= declared, f"import workbench needs {sorted(needed - declared)}, not core dependencies"
