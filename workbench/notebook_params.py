"""The one gate every parameter passes before it reaches a notebook.

papermill writes parameters into an injected code cell as ``name = value`` lines, so a
parameter *name* is code: ``-p "__import__('os').system('x')#" 1`` would run. Every way
parameters reach a notebook (``workbench run``, ``workbench demo``, scheduled jobs through
:func:`workbench.report.run_notebook`) goes through :func:`check_parameters`, which allows
only what the notebook declares in its ``parameters`` cell:

- a name must be a Python identifier the cell assigns (a typo names the closest one);
- a value must be a literal of the declared type (``int``, ``float``, ``str``, ``bool``;
  an ``int`` is accepted for a ``float`` and widened). A string from the command line is
  parsed *by the declared type*, so ``fast 20`` is ``20`` and ``symbol 0050`` stays
  ``"0050"`` (papermill's own YAML parsing turns it into ``50``);
- finally the cell papermill would inject is parsed back with :mod:`ast` and must be
  exactly one ``name = <constant>`` assignment per parameter with the same values, so
  no escaping bug in a translator can smuggle code through.

The notebook is read once (:func:`load_notebook`) and the same node is both inspected and
executed, so the notebook whose parameters were checked is the one that runs.
"""

from __future__ import annotations

import ast
import copy
import difflib
import keyword
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import ParameterError, first_line

__all__ = ["DeclaredParameter", "load_notebook", "declared_parameters", "check_parameters", "coerce_value"]

KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}

_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


@dataclass(frozen=True)
class DeclaredParameter:
    """A parameter the notebook's ``parameters`` cell assigns: name, type and default."""

    name: str
    type_name: str  # int, float, str, bool, or "None" when neither annotated nor inferable
    default: Any
    help: str = ""


def _literal(source: str) -> Any:
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return None


def load_notebook(notebook: Path | Any) -> Any:
    """``notebook`` read and validated as an nbformat v4 node (a node is copied).

    A notebook without kernelspec metadata (as jupytext and nbformat write them) runs on
    the ``python3`` kernel; anything that is not a notebook is a :class:`ParameterError`.
    """
    import nbformat

    if isinstance(notebook, nbformat.NotebookNode):
        return _normalised(copy.deepcopy(notebook))
    path = Path(notebook)
    if not path.is_file():
        raise ParameterError(f"notebook not found: {notebook}")
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except (OSError, ValueError, nbformat.ValidationError, UnicodeDecodeError) as exc:
        first = first_line(exc, type(exc).__name__)
        raise ParameterError(f"{notebook} is not a readable Jupyter notebook: {first}") from None
    return _normalised(nb)


def _normalised(nb: Any) -> Any:
    """A default kernelspec and a tags list on every cell (papermill's inspection needs both)."""
    nb.metadata.setdefault("kernelspec", dict(KERNEL))
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    return nb


def declared_parameters(notebook: Path | Any) -> dict[str, DeclaredParameter]:
    """The parameters ``notebook`` declares, read by papermill from its tagged cell."""
    from papermill.inspection import _infer_parameters  # what execute_notebook itself calls

    nb = load_notebook(notebook)
    out = {}
    for p in _infer_parameters(nb, name=nb.metadata.kernelspec.get("name", "python3"), language="python"):
        default = _literal(p.default)
        type_name = p.inferred_type_name
        if type_name not in _TYPES:  # no annotation: take the type of the default literal
            type_name = type(default).__name__ if type(default) in _TYPES.values() else "None"
        out[p.name] = DeclaredParameter(p.name, type_name, default, p.help or "")
    return out


def _from_text(p: DeclaredParameter, raw: str) -> Any:
    """Parse a command-line string by the declared type (no YAML guessing)."""
    text = raw.strip()
    if p.type_name == "str":
        return raw
    if p.type_name == "bool":
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ParameterError(f"{p.name} must be true or false, got {p.name}={raw!r}")
    if p.type_name in ("int", "float"):
        try:
            return int(text.replace("_", "")) if p.type_name == "int" else float(text)
        except ValueError:
            raise ParameterError(f"{p.name} must be {_a(p.type_name)}, got {p.name}={raw!r}") from None
    value = _literal(text)  # undeclared type: a Python literal, else the raw string
    return raw if value is None and text != "None" else value


def _a(type_name: str) -> str:
    return {"int": "an integer", "float": "a number", "str": "a string", "bool": "True or False"}.get(
        type_name, "a literal"
    )


def coerce_value(p: DeclaredParameter, value: Any, *, from_text: bool = False) -> Any:
    """``value`` as the declared type of ``p``, or a :class:`ParameterError` naming both."""
    if from_text and isinstance(value, str):
        value = _from_text(p, value)
    if p.type_name == "float" and isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:
            raise ParameterError(f"{p.name} is too large for a float, got {p.name}={value}") from None
    expected = _TYPES.get(p.type_name)
    if expected is not None:
        ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
        if not ok:
            raise ParameterError(
                f"{p.name} must be {_a(p.type_name)}, got {p.name}={value!r} ({type(value).__name__})"
            )
    elif value is not None and type(value) not in _TYPES.values():
        raise ParameterError(f"{p.name} must be a literal (int, float, str, bool or None), got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError(f"{p.name} must be finite, got {p.name}={value!r}")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ParameterError(f"{p.name} must be valid Unicode text, got {p.name}={value!r}") from None
    return value


def _check_name(name: object, declared: dict[str, DeclaredParameter]) -> str:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ParameterError(f"parameter names must be Python identifiers, got {name!r}")
    if name not in declared:
        close = difflib.get_close_matches(name, list(declared), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ParameterError(
            f"unknown parameter {name!r}{hint}; the notebook declares: {', '.join(declared) or 'none'}"
        )
    return name


def _is_literal(node: ast.expr) -> bool:
    """A constant, or a minus sign before a numeric one (``-2`` parses as an operation)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float)
    return isinstance(node, ast.Constant)


def _verify_injection(params: dict[str, Any]) -> None:
    """Parse the cell papermill will inject; it must assign exactly these constants."""
    from papermill.translators import PythonTranslator

    tree = ast.parse(PythonTranslator.codify(params))
    seen = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and _is_literal(node.value)):  # fmt: skip
            raise ParameterError(f"parameter cell is not plain assignments: {ast.unparse(node)!r}")
        seen[node.targets[0].id] = ast.literal_eval(node.value)
    if seen != params:
        raise ParameterError("parameter values changed when written into the notebook; refusing to run")


def check_parameters(
    notebook: Path | Any,
    params: dict[str, Any],
    *,
    from_text: frozenset[str] = frozenset(),
    raw_text: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """``params`` checked against what ``notebook`` declares, values coerced to their types.

    Names in ``from_text`` hold strings typed at a command line, parsed by declared type;
    names in ``raw_text`` too, except that an untyped parameter keeps the string (``-r``).
    """
    declared = declared_parameters(notebook)
    if params and not declared:
        raise ParameterError("the notebook has no cell tagged 'parameters'; it takes none")
    out = {}
    for name, value in params.items():
        p = declared[_check_name(name, declared)]
        as_text = name in from_text or (name in raw_text and p.type_name != "None")
        out[name] = coerce_value(p, value, from_text=as_text)
    _verify_injection(out)
    return out
