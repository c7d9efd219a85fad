"""Domain events and fills as JSON-able payloads, and back: what the event log stores.

An event is written as ``{"type": <class name>, <field>: <value>...}``: timestamps as ISO
8601 strings in UTC, enums by name, non-finite floats as null. :func:`from_payload` builds
the same event again from the field types of its class, so an order rebuilt from its log
(:meth:`~workbench.trading.orders.Order.apply` of each event) is the order that was logged.
Only the classes registered here are read back: a payload naming anything else is refused.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import typing
from functools import cache
from typing import Any

import pandas as pd

from workbench.errors import ParameterError
from workbench.trading import events as _events
from workbench.trading.enums import Side
from workbench.trading.orders import Fill
from workbench.trading.values import Instrument

__all__ = ["to_payload", "from_payload", "fill_payload", "fill_from_payload", "stamp", "parse_stamp", "register"]

_REGISTRY: dict[str, type] = {
    name: cls for name in _events.__all__ if isinstance(cls := getattr(_events, name), type)
    and issubclass(cls, _events.Event) and cls is not _events.Event
}  # fmt: skip


def register(cls: type) -> type:
    """Let events of ``cls`` (a frozen dataclass of :class:`Event`) be read back from a log."""
    _REGISTRY[cls.__name__] = cls
    return cls


def parse_stamp(text: str) -> pd.Timestamp:
    """A logged time back as a nanosecond Timestamp (what the engines' indexes hold)."""
    return pd.Timestamp(text).as_unit("ns")


def stamp(ts: Any) -> str:
    """``ts`` as ISO 8601 in UTC (a naive time is taken as UTC)."""
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.isoformat()


def _encode(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return stamp(value)
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Instrument):
        return value.symbol
    return value


def to_payload(event: Any) -> dict[str, Any]:
    """An event (any frozen dataclass) as a JSON-able dict with its class name."""
    out: dict[str, Any] = {"type": type(event).__name__}
    for f in dataclasses.fields(event):
        out[f.name] = _encode(getattr(event, f.name))
    return out


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    kind = args[0] if args and typing.get_origin(kind) is not None else kind
    if kind is pd.Timestamp:
        return parse_stamp(value)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind[value]
    if kind is float:
        return float(value)
    return value


def from_payload(payload: dict[str, Any]) -> Any:
    """The event ``payload`` describes (see :func:`to_payload`)."""
    name = payload.get("type")
    cls = _REGISTRY.get(name)  # type: ignore[arg-type]
    if cls is None:
        raise ParameterError(f"event log: unknown event type {name!r} (known: {', '.join(sorted(_REGISTRY))})")
    hints = _hints(cls)
    kwargs = {f.name: _decode(hints[f.name], payload.get(f.name)) for f in dataclasses.fields(cls) if f.name in payload}
    return cls(**kwargs)


def fill_payload(fill: Fill) -> dict[str, Any]:
    """A fill as a payload (the instrument by symbol)."""
    return {"fill_id": fill.fill_id, "order_id": fill.order_id, "symbol": fill.instrument.symbol,
            "side": fill.side.name, "quantity": fill.quantity, "price": fill.price, "fee": fill.fee,
            "ts": stamp(fill.ts)}  # fmt: skip


def fill_from_payload(data: dict[str, Any], instruments: dict[str, Instrument]) -> Fill:
    """The fill ``data`` describes; its symbol must be one of ``instruments``."""
    inst = instruments.get(data["symbol"])
    if inst is None:
        raise ParameterError(f"event log: fill {data['fill_id']} is in {data['symbol']!r}, not one of {sorted(instruments)}")
    return Fill(fill_id=data["fill_id"], order_id=data["order_id"], instrument=inst, side=Side[data["side"]],
                quantity=float(data["quantity"]), price=float(data["price"]), fee=float(data["fee"]),
                ts=parse_stamp(data["ts"]))  # fmt: skip
