"""The Order aggregate, its guarded state machine, and the Fill value object.

Legal transitions (anything else raises :class:`~workbench.errors.OrderStateError` and
changes nothing)::

    PENDING ──accept──▶ ACCEPTED ──fill──▶ PARTIALLY_FILLED ──fill──▶ FILLED
       │                   │  ╰──fill (complete)──────────────────────▶ FILLED
       ├──reject──▶ REJECTED
       ╰──cancel──▶ CANCELLED ◀──cancel── ACCEPTED / PARTIALLY_FILLED
                    EXPIRED   ◀──expire── ACCEPTED / PARTIALLY_FILLED

Two commands change an order without changing its status: ``trigger`` (a working stop
order's stop was touched) and ``modify`` (new quantity or prices, same order id; cutting
a partly filled order down to its filled quantity completes it: PARTIALLY_FILLED →
FILLED).

Every change is an event (:mod:`workbench.trading.events`); the order keeps the events it
emitted in ``events`` and applies them to itself. A fill id is applied at most once
(:class:`~workbench.errors.DuplicateFillError`), so a redelivered fill cannot double it.

Limit and stop prices are whole multiples of the instrument's tick size.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import pandas as pd

from workbench.errors import DuplicateFillError, InvalidValueError, OrderStateError, OverfillError
from workbench.trading.enums import OrderStatus, OrderType, Side, TimeInForce
from workbench.trading.events import (
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderPartiallyFilled,
    OrderPlaced,
    OrderRejected,
    OrderTriggered,
)
from workbench.trading.values import Instrument

__all__ = ["Fill", "Order", "LEGAL_TRANSITIONS"]

_QTY_TOL = 1e-9


def _is_number(value: object) -> bool:
    """A real number that is not a bool (``True`` is a bug, not a price of 1)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)

LEGAL_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset(
        {OrderStatus.ACCEPTED, OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.DENIED}
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

    ``updated`` is when the *status* last changed (a trigger or an amendment that leaves
    the status alone does not move it), so order reports read the same as before triggers
    and amendments were events.
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
    _fill_ids: set[str] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self.side = Side.parse(self.side)
        self.order_type = OrderType.parse(self.order_type)
        self.time_in_force = TimeInForce.parse(self.time_in_force)
        self.quantity = self._checked_quantity(self.quantity)
        plain_market = self.order_type is OrderType.MARKET and self.limit_price is None
        if not (plain_market and self.stop_price is None):  # the common case skips the checks
            self.limit_price = self._check_price("limit_price", self.limit_price)
            self.stop_price = self._check_price("stop_price", self.stop_price)
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

    def deny(self, ts: pd.Timestamp, reason: str, limit: str) -> OrderDenied:
        """The risk profile refused this order before the broker saw it (PENDING -> DENIED)."""
        self._guard(OrderStatus.DENIED, "deny")
        if not reason or not limit:
            raise InvalidValueError("a denial needs a reason and the limit that denied it")
        return self._emit(OrderDenied(ts=ts, order_id=self.order_id, reason=reason, limit=limit))

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
        if fill.fill_id in self._fill_ids:
            raise DuplicateFillError(
                f"fill {fill.fill_id} was already applied to order {self.order_id}; "
                f"a fill id is applied at most once"
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
            symbol=self.instrument.symbol,
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

    def trigger(self, ts: pd.Timestamp) -> OrderTriggered:
        """The stop price was touched: from now on the order works as market or limit.

        Only a working (accepted) stop or stop-limit order that has not triggered yet can
        trigger; a pending one must be accepted first, so the check sees its stop terms.
        """
        if not self.status.is_working:
            raise OrderStateError(
                f"cannot trigger order {self.order_id}: status is {self.status.name} "
                f"(triggers need ACCEPTED or PARTIALLY_FILLED)"
            )
        if self.triggered:
            raise OrderStateError(
                f"cannot trigger order {self.order_id}: a {self.order_type.name} order "
                f"that is already working as market/limit has no stop left to trigger"
            )
        return self._emit(OrderTriggered(ts=ts, order_id=self.order_id))

    def modify(
        self,
        ts: pd.Timestamp,
        quantity: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
    ) -> OrderModified:
        """Amend a pending or working order in place (same order id); ``None`` keeps a term.

        The new quantity must be a lot multiple and at least what has already filled; new
        prices follow the rules of construction (only the prices the order type takes,
        > 0, on the tick). A triggered stop has no stop price left to move. ``ts`` may not
        be before the order's placement: the event log must stay in time order.
        """
        if self.is_terminal:
            raise OrderStateError(
                f"cannot modify order {self.order_id}: status is {self.status.name} "
                f"(amendments need PENDING, ACCEPTED or PARTIALLY_FILLED)"
            )
        if quantity is None and limit_price is None and stop_price is None:
            raise InvalidValueError(
                f"modify of order {self.order_id} needs a new quantity, limit_price or stop_price"
            )
        if ts < self.ts:
            raise InvalidValueError(
                f"cannot modify order {self.order_id} at {ts}: before it was placed at {self.ts} "
                f"(an amendment cannot precede its order)"
            )
        if stop_price is not None and self.triggered and self.stop_price is not None:
            raise OrderStateError(
                f"cannot modify stop_price of order {self.order_id}: its stop already triggered"
            )
        qty = self.quantity if quantity is None else self._checked_quantity(quantity)
        if qty < self.filled_quantity - _QTY_TOL * max(1.0, qty):
            raise InvalidValueError(
                f"cannot modify order {self.order_id}: new quantity {qty:g} is below the "
                f"{self.filled_quantity:g} already filled"
            )
        limit = self.limit_price if limit_price is None else self._check_price("limit_price", limit_price)
        stop = self.stop_price if stop_price is None else self._check_price("stop_price", stop_price)
        return self._emit(
            OrderModified(
                ts=ts, order_id=self.order_id, quantity=qty, limit_price=limit, stop_price=stop
            )
        )

    # -- internals --------------------------------------------------------------------
    def _checked_quantity(self, quantity: float) -> float:
        """A positive lot multiple, or an InvalidValueError naming the lot size."""
        q = float(quantity)
        if not (math.isfinite(q) and q > 0):
            raise InvalidValueError(f"order quantity must be > 0, got {quantity!r}")
        if not self.instrument.is_lot_multiple(q):
            raise InvalidValueError(
                f"order quantity must be a multiple of lot size {self.instrument.lot_size} "
                f"for {self.instrument.symbol}, got {q!r}"
            )
        return q

    def _check_price(self, name: str, value: object) -> float | None:
        """``name`` is given exactly when the order type takes it, a real number (not a
        bool or a string: ``limit_price=True`` is a bug, not a price of 1), > 0 and on the
        tick; stored as a float so equal orders describe alike."""
        needed = (
            self.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
            if name == "limit_price"
            else self.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        )
        if not needed:
            if value is not None:
                raise InvalidValueError(f"{self.order_type.name} order takes no {name}, got {value!r}")
            return None
        if type(value) is not float and value is not None and not _is_number(value):
            raise InvalidValueError(
                f"{self.order_type.name} order needs {name} > 0 as a number, got {name}={value!r}"
            )
        if value is None or not (math.isfinite(value) and value > 0):
            raise InvalidValueError(f"{self.order_type.name} order needs {name} > 0, got {value!r}")
        inst = self.instrument
        if not inst.is_tick_multiple(value):
            raise InvalidValueError(
                f"{name} must be a multiple of tick size {inst.tick_size:g} for {inst.symbol}, "
                f"got {name}={value!r}"
            )
        return float(value)

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
        elif isinstance(event, OrderDenied):
            self.status, self.reason = OrderStatus.DENIED, event.reason
        elif isinstance(event, OrderCancelled):
            self.status, self.reason = OrderStatus.CANCELLED, event.reason
        elif isinstance(event, OrderExpired):
            self.status, self.reason = OrderStatus.EXPIRED, event.reason
        elif isinstance(event, OrderTriggered):
            self.triggered = True
            return  # not a status change: ``updated`` stays
        elif isinstance(event, OrderModified):
            self._apply_modified(event)
            return
        elif isinstance(event, OrderFilled | OrderPartiallyFilled):
            self._fill_ids.add(event.fill_id)
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

    def _apply_modified(self, event: OrderModified) -> None:
        """New terms; cut to what has filled, a partly filled order is complete."""
        self.quantity = event.quantity
        self.limit_price, self.stop_price = event.limit_price, event.stop_price
        if self.status is OrderStatus.PARTIALLY_FILLED and self.remaining_quantity == 0:
            self.status, self.updated = OrderStatus.FILLED, event.ts

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
