"""The one id function: a short SHA-256 of canonical JSON.

Every identity in the workbench (a strategy's parameter set, a backtest spec, a stored
run) is this hash of a JSON document with sorted keys and no whitespace, so the same
inputs give the same id in every process, on every machine, in every session.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from typing import Any

__all__ = ["ID_HEX_DIGITS", "stable_id", "canonical_json", "describe"]

#: 16 hex digits = 64 bits: a collision needs ~4 billion specs (birthday bound).
ID_HEX_DIGITS = 16


def describe(value: Any) -> Any:
    """``value`` as plain JSON data: a dataclass model becomes ``{"model": name, **fields}``
    (so costs and sizers are compared as values, never as ``repr`` strings), an enum its
    name, a float that is not finite a string."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: describe(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return {"model": type(value).__name__, **fields}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [describe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def canonical_json(payload: Any) -> str:
    return json.dumps(describe(payload), sort_keys=True, separators=(",", ":"), default=str)


def stable_id(payload: Any) -> str:
    """First :data:`ID_HEX_DIGITS` hex digits of the SHA-256 of ``canonical_json(payload)``.

    >>> stable_id({"b": 1, "a": [1.5, None]}) == stable_id({"a": [1.5, None], "b": 1})
    True
    >>> len(stable_id("x"))
    16
    """
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:ID_HEX_DIGITS]
