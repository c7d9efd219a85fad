"""The one id function: a short SHA-256 of canonical JSON.

Every identity in the workbench (a strategy's parameter set, a backtest spec, a stored
run) is this hash of a JSON document with sorted keys and no whitespace, so the same
inputs give the same id in every process, on every machine, in every session.

What goes into the document (:func:`describe`) is chosen so that two things that would
compute differently never share an id: a dataclass model is its type and fields, and
user code (a strategy class, a rule function, a custom sizer) is also its *bytecode*
(:func:`code_fingerprint`), so redefining a function in a notebook cell gives a new id.
A value is never described by a ``repr`` holding a memory address.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import math
import types
from typing import Any

import numpy as np

__all__ = ["ID_HEX_DIGITS", "stable_id", "canonical_json", "describe", "code_fingerprint", "is_builtin"]

#: 16 hex digits = 64 bits: a collision needs ~4 billion specs (birthday bound).
ID_HEX_DIGITS = 16
_BUILTIN_PREFIX = "workbench."


def is_builtin(obj: Any) -> bool:
    """True for the workbench's own classes and functions (their code is versioned with
    the package, which every stored run records), False for user code."""
    module = getattr(obj, "__module__", "") or ""
    return module.startswith(_BUILTIN_PREFIX)


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _code_parts(code: types.CodeType, out: list[str]) -> None:
    out.append(code.co_code.hex())
    out.append(repr(code.co_names))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_parts(const, out)
        else:
            out.append(repr(const))


def code_fingerprint(obj: Any) -> str:
    """SHA-256 (16 hex) of the bytecode of a function, or of every function a class (and
    its user-defined bases) defines: what the code *does*, not where it lives."""
    parts: list[str] = []
    if isinstance(obj, types.ModuleType):
        for name in sorted(vars(obj)):
            member = inspect_function(vars(obj)[name])
            if member is not None and member.__module__ == obj.__name__:
                parts.append(name)
                _code_parts(member.__code__, parts)
    elif isinstance(obj, type):
        for klass in obj.__mro__:
            if klass is object or is_builtin(klass):
                continue
            for name in sorted(vars(klass)):
                member = inspect_function(vars(klass)[name])
                if member is not None:
                    parts.append(name)
                    _code_parts(member.__code__, parts)
    else:
        fn = inspect_function(obj)
        if fn is not None:
            _code_parts(fn.__code__, parts)
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:ID_HEX_DIGITS]


def inspect_function(member: Any) -> types.FunctionType | None:
    """The plain function behind a method, property, static or class method, if any."""
    if isinstance(member, staticmethod | classmethod):
        member = member.__func__
    if isinstance(member, property):
        member = member.fget
    return member if isinstance(member, types.FunctionType) else None


def _describe_callable(fn: Any) -> dict[str, Any]:
    if isinstance(fn, functools.partial):
        return {"partial": describe(fn.func), "args": describe(list(fn.args)), "keywords": describe(fn.keywords)}
    out: dict[str, Any] = {"callable": _qualname(fn)}
    if is_builtin(fn):
        return out
    out["code"] = code_fingerprint(fn)
    if isinstance(fn, types.FunctionType):
        out["defaults"] = describe(list(fn.__defaults__ or ()))
        cells = fn.__closure__ or ()
        out["closure"] = [_cell(c) for c in cells]
    return out


def _cell(cell: Any) -> Any:
    try:
        return describe(cell.cell_contents)
    except ValueError:  # an empty cell (not yet assigned)
        return None


def describe(value: Any) -> Any:
    """``value`` as plain JSON data (see the module notes).

    - a dataclass is ``{"model": type name, **init fields}`` (plus ``"code"`` for a user
      class), so costs, sizers and accounts are compared as values;
    - an enum is its name; a numpy scalar its Python value; a non-finite float a string;
    - a function is its qualified name, plus its bytecode, defaults and closure values for
      user code; a ``functools.partial`` its function and arguments;
    - a NumPy array or pandas object is its type, shape and a hash of its values;
    - any other object is its type (plus code) and its attributes.

    >>> describe({"rate": np.float64(0.5), "side": [1, 2.0]})
    {'rate': 0.5, 'side': [1, 2.0]}
    """
    if isinstance(value, np.generic):  # before float: np.float64 is a float subclass
        return describe(value.item())
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: describe(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        out = {"model": type(value).__name__, **fields}
        return out if is_builtin(type(value)) else {**out, "code": code_fingerprint(type(value))}
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [describe(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((describe(v) for v in value), key=repr)
    if isinstance(value, type):
        return {"class": _qualname(value), "code": code_fingerprint(value)}
    if isinstance(value, types.ModuleType):
        return {"module": value.__name__, "code": code_fingerprint(value)}
    if callable(value) and not hasattr(value, "__dict__") or isinstance(value, types.FunctionType | functools.partial):
        return _describe_callable(value)
    return _describe_object(value)


def _describe_object(value: Any) -> dict[str, Any]:
    import pandas as pd  # numpy and pandas are the domain's two libraries

    if isinstance(value, np.ndarray | pd.Series | pd.DataFrame | pd.Index):
        data = pd.util.hash_pandas_object(pd.DataFrame(np.asarray(value).reshape(len(value), -1))
                                          if isinstance(value, np.ndarray) else value, index=True)  # fmt: skip
        return {"type": type(value).__name__, "shape": list(np.shape(value)),
                "sha256": hashlib.sha256(np.asarray(data).tobytes()).hexdigest()[:ID_HEX_DIGITS]}  # fmt: skip
    out: dict[str, Any] = {"type": _qualname(type(value))}
    if not is_builtin(type(value)):
        out["code"] = code_fingerprint(type(value))
    state = getattr(value, "__dict__", None)
    if state is not None:
        out["state"] = {k: describe(v) for k, v in sorted(state.items())}
    return out


def canonical_json(payload: Any) -> str:
    return json.dumps(describe(payload), sort_keys=True, separators=(",", ":"))


def stable_id(payload: Any) -> str:
    """First :data:`ID_HEX_DIGITS` hex digits of the SHA-256 of ``canonical_json(payload)``.

    >>> stable_id({"b": 1, "a": [1.5, None]}) == stable_id({"a": [1.5, None], "b": 1})
    True
    >>> len(stable_id("x"))
    16
    """
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:ID_HEX_DIGITS]
