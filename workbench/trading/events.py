"""Domain events: immutable, past-tense records emitted by the aggregates, and a tiny bus.

Aggregates (orders, positions, the portfolio) change only by applying these events, and
collect the events they emit; the broker publishes them on an :class:`EventBus` so that
notebooks, loggers and (later) risk monitors can subscribe without the aggregates knowing.
A subscriber that raises is isolated: the bus records the failure and goes on, so a buggy
notebook handler can never change what the broker matches or skip the other subscribers.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pandas as pd

from workbench.errors import InvalidValueError
from workbench.trading.enums import OrderType, PositionSide, Side, TimeInForce

__all__ = [
    "Event",
    "OrderPlaced",
    "OrderAccepted",
    "OrderRejected",
    "OrderDenied",
    "OrderTriggered",
    "OrderModified",
    "OrderFilled",
    "OrderPartiallyFilled",
    "OrderCancelled",
    "OrderExpired",
    "PositionOpened",
    "PositionChanged",
    "PositionClosed",
    "TradeClosed",
    "EventBus",
    "HandlerFailure",
]

_log = logging.getLogger(__name__)


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
class OrderDenied(Event):
    """The account's risk profile refused the order before it reached the broker; ``limit``
    names the rule (a venue's refusal is :class:`OrderRejected`)."""

    order_id: str
    reason: str
    limit: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderTriggered(Event):
    """A stop or stop-limit order's stop price was touched: it now works as market/limit."""

    order_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderModified(Event):
    """A working or pending order was amended in place; the fields are its new terms."""

    order_id: str
    quantity: float
    limit_price: float | None
    stop_price: float | None


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderFilled(Event):
    """The fill that completed the order (``filled_quantity == quantity``)."""

    order_id: str
    symbol: str
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
    symbol: str
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


@dataclass(frozen=True, slots=True)
class HandlerFailure:
    """A subscriber raised while handling ``event``: which one (``handler``) and what."""

    event: Event
    handler: str
    error: str


def _handler_name(handler: object) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)


class EventBus:
    """In-process publish/subscribe. Handlers of a base class also receive its subclasses.

    >>> bus = EventBus(); seen = []
    >>> bus.subscribe(OrderAccepted, seen.append)
    >>> bus.publish(OrderAccepted(ts=pd.Timestamp("2020-01-01", tz="UTC"), order_id="O-1"))
    >>> len(seen)
    1

    An event goes to the handlers of its class, then of each base, each in subscription
    order, as they stood when it was published: a handler that unsubscribes during
    delivery skips no one, one subscribed during delivery sees only later events.

    A handler that raises does not stop the others. ``failed`` counts every failure;
    ``failures`` keeps the first :attr:`max_failures` (a :class:`HandlerFailure` each) and
    each handler's first failure is logged once with its traceback, so a subscriber that
    fails on every bar cannot flood the log or the memory.
    """

    #: How many :class:`HandlerFailure` records ``failures`` keeps (``failed`` counts all).
    max_failures = 1_000

    def __init__(self) -> None:
        self._handlers: dict[type[Event], list[Handler]] = defaultdict(list)
        self._routes: dict[type[Event], tuple[Handler, ...]] = {}  # event class -> handlers
        self._failing: set[object] = set()  # handlers whose first failure was logged
        self.failures: list[HandlerFailure] = []
        self.failed = 0

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        self._handlers[event_type].append(handler)  # type: ignore[arg-type]
        self._routes.clear()

    def unsubscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        handlers = self._handlers.get(event_type, [])
        if handler not in handlers:
            raise InvalidValueError(
                f"cannot unsubscribe {_handler_name(handler)}: it is not subscribed to "
                f"{event_type.__name__}"
            )
        handlers.remove(handler)  # type: ignore[arg-type]
        self._routes.clear()

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every handler of its class and its bases, each isolated."""
        handlers = self._routes.get(type(event))
        if handlers is None:
            handlers = self._route(type(event))
        for handler in handlers:  # a tuple: (un)subscribing during delivery changes a new one
            try:  # free when nothing raises (Python >= 3.11)
                handler(event)
            except Exception as exc:  # noqa: BLE001 - isolation is the point
                self._record(event, handler, exc)

    def _route(self, event_type: type[Event]) -> tuple[Handler, ...]:
        """The handlers an ``event_type`` goes to, cached until the next (un)subscribe: one
        lookup per publish, and a snapshot by construction."""
        route = tuple(h for cls in event_type.__mro__ for h in self._handlers.get(cls, ()))  # type: ignore[call-overload]
        self._routes[event_type] = route
        return route

    def _record(self, event: Event, handler: Handler, exc: Exception) -> None:
        """Count, keep (up to ``max_failures``) and log once per handler a subscriber's
        exception instead of letting it unwind the broker."""
        self.failed += 1
        name = _handler_name(handler)
        if len(self.failures) < self.max_failures:
            error = f"{type(exc).__name__}: {exc}"
            self.failures.append(HandlerFailure(event=event, handler=name, error=error))
        key = _handler_key(handler)
        if key in self._failing:
            return
        self._failing.add(key)
        _log.warning(
            "event handler %s failed on %s at %s: %s: %s (its later failures are only "
            "counted in EventBus.failed)",
            name, type(event).__name__, event.ts, type(exc).__name__, exc, exc_info=exc,
        )  # fmt: skip

    def publish_all(self, events: list[Event]) -> None:
        for event in events:
            self.publish(event)


def _handler_key(handler: object) -> object:
    """A set key for ``handler``: itself when hashable (a bound method compares by its
    object and function, so re-reading ``obj.method`` gives the same key), else its id."""
    try:
        hash(handler)
    except TypeError:
        return ("id", id(handler))
    return handler
