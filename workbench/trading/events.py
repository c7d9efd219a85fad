"""Domain events: immutable, past-tense records emitted by the aggregates, and a tiny bus.

Aggregates (orders, positions, the portfolio) change only by applying these events, and
collect the events they emit; the broker publishes them on an :class:`EventBus` so that
notebooks, loggers and (later) risk monitors can subscribe without the aggregates knowing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pandas as pd

from workbench.trading.enums import OrderType, PositionSide, Side, TimeInForce

__all__ = [
    "Event",
    "OrderPlaced",
    "OrderAccepted",
    "OrderRejected",
    "OrderFilled",
    "OrderPartiallyFilled",
    "OrderCancelled",
    "OrderExpired",
    "PositionOpened",
    "PositionChanged",
    "PositionClosed",
    "TradeClosed",
    "EventBus",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """Base of all domain events. ``ts`` is when it happened (UTC)."""

    ts: pd.Timestamp


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderPlaced(Event):
    order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: float
    time_in_force: TimeInForce
    limit_price: float | None = None
    stop_price: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderAccepted(Event):
    order_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderRejected(Event):
    order_id: str
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderFilled(Event):
    """The fill that completed the order (``filled_quantity == quantity``)."""

    order_id: str
    fill_id: str
    side: Side
    quantity: float
    price: float
    fee: float
    filled_quantity: float


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderPartiallyFilled(Event):
    """A fill that left part of the order open."""

    order_id: str
    fill_id: str
    side: Side
    quantity: float
    price: float
    fee: float
    filled_quantity: float
    remaining_quantity: float


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderCancelled(Event):
    order_id: str
    reason: str = "cancelled by request"


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderExpired(Event):
    order_id: str
    reason: str = "time in force elapsed"


@dataclass(frozen=True, kw_only=True, slots=True)
class PositionOpened(Event):
    symbol: str
    side: PositionSide
    quantity: float
    avg_price: float


@dataclass(frozen=True, kw_only=True, slots=True)
class PositionChanged(Event):
    symbol: str
    side: PositionSide
    quantity: float
    avg_price: float
    realized_pnl: float


@dataclass(frozen=True, kw_only=True, slots=True)
class PositionClosed(Event):
    symbol: str
    realized_pnl: float


@dataclass(frozen=True, kw_only=True, slots=True)
class TradeClosed(Event):
    """A round trip (or the part of one a reducing fill closed)."""

    symbol: str
    side: PositionSide
    quantity: float
    entry_time: pd.Timestamp
    exit_time: pd.Timestamp
    entry_price: float
    exit_price: float
    gross_pnl: float
    fees: float

    @property
    def pnl(self) -> float:
        """Net of the entry and exit fees allocated to this quantity."""
        return self.gross_pnl - self.fees


E = TypeVar("E", bound=Event)
Handler = Callable[[Event], None]


class EventBus:
    """In-process publish/subscribe. Handlers of a base class also receive its subclasses.

    >>> bus = EventBus(); seen = []
    >>> bus.subscribe(OrderAccepted, seen.append)
    >>> bus.publish(OrderAccepted(ts=pd.Timestamp("2020-01-01", tz="UTC"), order_id="O-1"))
    >>> len(seen)
    1
    """

    def __init__(self) -> None:
        self._handlers: dict[type[Event], list[Handler]] = defaultdict(list)

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        self._handlers[event_type].append(handler)  # type: ignore[arg-type]

    def unsubscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        self._handlers[event_type].remove(handler)  # type: ignore[arg-type]

    def publish(self, event: Event) -> None:
        for cls in type(event).__mro__:
            for handler in self._handlers.get(cls, ()):  # type: ignore[call-overload]
                handler(event)

    def publish_all(self, events: list[Event]) -> None:
        for event in events:
            self.publish(event)
