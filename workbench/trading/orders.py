"""The Order aggregate, its guarded state machine, and the Fill value object.

Legal transitions (anything else raises :class:`~workbench.errors.OrderStateError` and
changes nothing)::

    PENDING ──accept──▶ ACCEPTED ──fill──▶ PARTIALLY_FILLED ──fill──▶ FILLED
       │                   │  ╰──fill (complete)──────────────────────▶ FILLED
       ├──reject──▶ REJECTED
       ╰──cancel──▶ CANCELLED ◀──cancel── ACCEPTED / PARTIALLY_FILLED
                    EXPIRED   ◀──expire── ACCEPTED / PARTIALLY_FILLED

Every transition is an event (:mod:`workbench.trading.events`); the order keeps the
events it emitted in ``events`` and applies them to itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from workbench.errors import InvalidValueError, OrderStateError, OverfillError
from workbench.trading.enums import OrderStatus, OrderType, Side, TimeInForce
from workbench.trading.events import (
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderPlaced,
    OrderRejected,
)
from workbench.trading.values import Instrument

__all__ = ["Fill", "Order", "LEGAL_TRANSITIONS"]

_QTY_TOL = 1e-9

LEGAL_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset(
        {OrderStatus.ACCEPTED, OrderStatus.REJECTED, OrderStatus.CANCELLED}
    ),
    OrderStatus.ACCEPTED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Fill:
    """An execution of (part of) an order: ``quantity`` units at ``price``, paying ``fee``.

    ``fee`` is in the instrument's currency and always >= 0.
    """

    fill_id: str
    order_id: str
    instrument: Instrument
    side: Side
    quantity: float
    price: float
    fee: float
    ts: pd.Timestamp

    def __post_init__(self) -> None:
        if not (math.isfinite(self.quantity) and self.quantity > 0):
            raise InvalidValueError(f"fill quantity must be > 0, got {self.quantity!r}")
        if not (math.isfinite(self.price) and self.price > 0):
            raise InvalidValueError(f"fill price must be > 0, got {self.price!r}")
        if not (math.isfinite(self.fee) and self.fee >= 0):
            raise InvalidValueError(f"fill fee must be >= 0, got {self.fee!r}")

    @property
    def signed_quantity(self) -> float:
        return self.side.sign * self.quantity

    @property
    def notional(self) -> float:
        return self.quantity * self.price * self.instrument.multiplier


@dataclass(kw_only=True, eq=False)
class Order:
    """An instruction to trade, with a guarded lifecycle.

    Parameters
    ----------
    order_id : str
    instrument : Instrument
    side : Side
    quantity : float
        > 0 and a multiple of the instrument's lot size.
    order_type : OrderType
        MARKET, LIMIT (``limit_price``), STOP (``stop_price``) or STOP_LIMIT (both).
    time_in_force : TimeInForce
    ts : pandas.Timestamp
        When it was placed: the close of the bar whose data produced it (the *signal bar*).
        The simulated broker never fills it on or before that bar (unless the market order
        is explicitly set to fill at the signal bar's close).
    tag : str
        Free text, e.g. the strategy rule that produced the order.
    """

    order_id: str
    instrument: Instrument
    side: Side
    quantity: float
    ts: pd.Timestamp
    order_type: OrderType = OrderType.MARKET
    time_in_force: TimeInForce = TimeInForce.GTC
    limit_price: float | None = None
    stop_price: float | None = None
    tag: str = ""
    status: OrderStatus = field(default=OrderStatus.PENDING, init=False)
    filled_quantity: float = field(default=0.0, init=False)
    avg_fill_price: float = field(default=math.nan, init=False)
    fees: float = field(default=0.0, init=False)
    triggered: bool = field(default=False, init=False)
    reason: str = field(default="", init=False)
    updated: pd.Timestamp | None = field(default=None, init=False)
    events: list[Event] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.side = Side.parse(self.side)
        self.order_type = OrderType.parse(self.order_type)
        self.time_in_force = TimeInForce.parse(self.time_in_force)
        q = float(self.quantity)
        if not (math.isfinite(q) and q > 0):
            raise InvalidValueError(f"order quantity must be > 0, got {self.quantity!r}")
        if not self.instrument.is_lot_multiple(q):
            raise InvalidValueError(
                f"order quantity must be a multiple of lot size {self.instrument.lot_size} "
                f"for {self.instrument.symbol}, got {q!r}"
            )
        self.quantity = q
        needs_limit = self.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = self.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        for name, needed in (("limit_price", needs_limit), ("stop_price", needs_stop)):
            value = getattr(self, name)
            if needed:
                if value is None or not (math.isfinite(value) and value > 0):
                    raise InvalidValueError(
                        f"{self.order_type.name} order needs {name} > 0, got {value!r}"
                    )
            elif value is not None:
                raise InvalidValueError(
                    f"{self.order_type.name} order takes no {name}, got {value!r}"
                )
        self.triggered = self.order_type not in (OrderType.STOP, OrderType.STOP_LIMIT)
        self._emit(
            OrderPlaced(
                ts=self.ts,
                order_id=self.order_id,
                symbol=self.instrument.symbol,
                side=self.side,
                order_type=self.order_type,
                quantity=self.quantity,
                time_in_force=self.time_in_force,
                limit_price=self.limit_price,
                stop_price=self.stop_price,
            )
        )

    # -- queries ----------------------------------------------------------------------
    @property
    def remaining_quantity(self) -> float:
        rem = self.quantity - self.filled_quantity
        return 0.0 if rem <= _QTY_TOL * max(1.0, self.quantity) else rem

    @property
    def is_working(self) -> bool:
        return self.status.is_working

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    # -- commands: each validates, then emits and applies one event --------------------
    def accept(self, ts: pd.Timestamp) -> OrderAccepted:
        self._guard(OrderStatus.ACCEPTED, "accept")
        return self._emit(OrderAccepted(ts=ts, order_id=self.order_id))

    def reject(self, ts: pd.Timestamp, reason: str) -> OrderRejected:
        self._guard(OrderStatus.REJECTED, "reject")
        if not reason:
            raise InvalidValueError("a rejection needs a reason")
        return self._emit(OrderRejected(ts=ts, order_id=self.order_id, reason=reason))

    def cancel(self, ts: pd.Timestamp, reason: str = "cancelled by request") -> OrderCancelled:
        self._guard(OrderStatus.CANCELLED, "cancel")
        return self._emit(OrderCancelled(ts=ts, order_id=self.order_id, reason=reason))

    def expire(self, ts: pd.Timestamp, reason: str = "time in force elapsed") -> OrderExpired:
        self._guard(OrderStatus.EXPIRED, "expire")
        return self._emit(OrderExpired(ts=ts, order_id=self.order_id, reason=reason))

    def fill(self, fill: Fill) -> OrderFilled | OrderPartiallyFilled:
        """Apply an execution. Raises if the order cannot be filled or would be overfilled."""
        if fill.order_id != self.order_id:
            raise OrderStateError(
                f"fill {fill.fill_id} is for order {fill.order_id}, not {self.order_id}"
            )
        if fill.side is not self.side or fill.instrument != self.instrument:
            raise OrderStateError(
                f"fill {fill.fill_id} ({fill.side.name} {fill.instrument.symbol}) does not match "
                f"order {self.order_id} ({self.side.name} {self.instrument.symbol})"
            )
        if not self.status.is_working:
            raise OrderStateError(
                f"cannot fill order {self.order_id}: status is {self.status.name} "
                f"(fills need ACCEPTED or PARTIALLY_FILLED)"
            )
        new_filled = self.filled_quantity + fill.quantity
        if new_filled > self.quantity * (1 + _QTY_TOL) + _QTY_TOL:
            raise OverfillError(
                f"cannot fill {fill.quantity:g} of order {self.order_id}: only "
                f"{self.remaining_quantity:g} of {self.quantity:g} remain (overfill)"
            )
        complete = self.quantity - new_filled <= _QTY_TOL * max(1.0, self.quantity)
        common = dict(
            ts=fill.ts,
            order_id=self.order_id,
            fill_id=fill.fill_id,
            side=fill.side,
            quantity=fill.quantity,
            price=fill.price,
            fee=fill.fee,
            filled_quantity=self.quantity if complete else new_filled,
        )
        if complete:
            return self._emit(OrderFilled(**common))
        return self._emit(
            OrderPartiallyFilled(**common, remaining_quantity=self.quantity - new_filled)
        )

    def mark_triggered(self) -> None:
        """A stop or stop-limit order's stop price was touched; it now works as market/limit."""
        if not self.status.is_working:
            raise OrderStateError(
                f"cannot trigger order {self.order_id}: status is {self.status.name}"
            )
        self.triggered = True

    # -- internals --------------------------------------------------------------------
    def _guard(self, target: OrderStatus, verb: str) -> None:
        if target not in LEGAL_TRANSITIONS[self.status]:
            raise OrderStateError(
                f"cannot {verb} order {self.order_id}: status is {self.status.name} "
                f"({self.status.name} -> {target.name} is not a legal transition)"
            )

    def _emit(self, event: Event) -> Event:  # type: ignore[override]
        self.apply(event)
        self.events.append(event)
        return event

    def apply(self, event: Event) -> None:
        """Change state by applying one of this order's events."""
        if isinstance(event, OrderPlaced):
            self.status = OrderStatus.PENDING
        elif isinstance(event, OrderAccepted):
            self.status = OrderStatus.ACCEPTED
        elif isinstance(event, OrderRejected):
            self.status, self.reason = OrderStatus.REJECTED, event.reason
        elif isinstance(event, OrderCancelled):
            self.status, self.reason = OrderStatus.CANCELLED, event.reason
        elif isinstance(event, OrderExpired):
            self.status, self.reason = OrderStatus.EXPIRED, event.reason
        elif isinstance(event, OrderFilled | OrderPartiallyFilled):
            prev = self.filled_quantity
            cost = (0.0 if prev == 0 else self.avg_fill_price * prev) + event.price * event.quantity
            self.filled_quantity = event.filled_quantity
            self.avg_fill_price = cost / (prev + event.quantity)
            self.fees += event.fee
            self.status = (
                OrderStatus.FILLED
                if isinstance(event, OrderFilled)
                else OrderStatus.PARTIALLY_FILLED
            )
        else:  # pragma: no cover - programming error
            raise TypeError(f"order cannot apply {type(event).__name__}")
        self.updated = event.ts

    def to_dict(self) -> dict[str, object]:
        return {
            "order_id": self.order_id,
            "symbol": self.instrument.symbol,
            "side": self.side.name,
            "type": self.order_type.name,
            "tif": self.time_in_force.name,
            "quantity": self.quantity,
            "limit_price": self.limit_price,
            "stop_price": self.stop_price,
            "placed": self.ts,
            "status": self.status.name,
            "filled_quantity": self.filled_quantity,
            "avg_fill_price": self.avg_fill_price,
            "fees": self.fees,
            "updated": self.updated,
            "reason": self.reason,
            "tag": self.tag,
        }
