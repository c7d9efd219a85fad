"""Pre-trade limits: small policy objects, one rule each (zipline's ``controls.py`` style).

Each limit answers ``check(proposal) -> Breach | None`` for one proposed order, seen with
the account as it stands and the order's expected price. Conventions every limit follows:

- exposure is marked at the expected price for the order's instrument and at the latest
  marks for the others; weights and leverage are fractions of current equity;
- a limit never blocks an order that only *reduces* a position (closing is always allowed,
  so a breach caused by prices moving can be traded out of); order-size limits apply to
  every order that opens or adds;
- a breach names the limit, the value and the threshold, so a denial is self-explaining.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from workbench.errors import ParameterError
from workbench.trading.accounts import reduces_only
from workbench.trading.broker import PortfolioView
from workbench.trading.orders import Order

__all__ = [
    "Proposal", "Breach", "Limit", "MaxOrderNotional", "MaxOrderQuantity", "MaxPositionWeight",
    "MaxGrossLeverage", "MaxNetLeverage", "LongOnly", "MaxOrdersPerDay",
]  # fmt: skip


class Proposal:
    """One order as the limits see it: before/after position, exposure and equity."""

    __slots__ = ("order", "price", "q0", "q1", "equity", "gross_after", "net_after", "orders_today",
                 "reduces_only", "notional")  # fmt: skip

    def __init__(self, order: Order, price: float, book: PortfolioView, orders_today: int = 0,
                 working: float = 0.0) -> None:  # fmt: skip
        inst = order.instrument
        m = inst.multiplier
        held = book.quantity(inst)
        q0 = held + working  # what the position becomes once the orders already working fill
        q1 = q0 + order.side.sign * order.quantity
        mark0 = book.marks.get(inst.symbol, price) if held and hasattr(book, "marks") else price
        self.order, self.price, self.q0, self.q1, self.orders_today = order, price, q0, q1, orders_today
        value = book.market_value()
        self.equity = book.cash + value
        self.gross_after = book.gross_exposure() - abs(held * mark0 * m) + abs(q1 * price * m)
        self.net_after = value - held * mark0 * m + q1 * price * m
        #: the order only brings the position closer to flat (never past it)
        self.reduces_only = reduces_only(q0, q1)
        self.notional = order.quantity * price * m

    @property
    def reversal(self) -> bool:
        """The order closes the position and opens the other side (one order, two legs)."""
        return self.q0 * self.q1 < 0


@dataclass(frozen=True, slots=True)
class Breach:
    limit: str
    value: float
    threshold: float
    message: str
    #: a reversal breaking only its new side is cut to this closing quantity, not denied
    reduce_to: float | None = None

    @property
    def usage(self) -> float:
        return self.value / self.threshold if self.threshold else math.inf


@runtime_checkable
class Limit(Protocol):
    @property
    def name(self) -> str: ...

    def assess(self, p: Proposal) -> tuple[float, Breach | None]:
        """(usage, breach): how much of the limit the order would use (1.0 = at the
        threshold; 0 for a reducing order) and the breach, if any, in one evaluation."""
        ...

    def check(self, p: Proposal) -> Breach | None: ...


def _positive(owner: str, field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
        raise ParameterError(f"{owner}: {field} must be a finite number > 0, got {field}={value!r}")
    return float(value)


class _Threshold:
    """A limit on one number of the proposal: breached when ``value > threshold``."""

    __slots__ = ()
    threshold: float
    label: str = ""

    @property
    def name(self) -> str:
        return type(self).__name__

    def value(self, p: Proposal) -> float:
        raise NotImplementedError

    def assess(self, p: Proposal) -> tuple[float, Breach | None]:
        if p.reduces_only:
            return 0.0, None
        v = self.value(p)
        threshold = self.limit  # type: ignore[attr-defined]  # every threshold limit's field
        if v <= threshold * (1 + 1e-12):  # NaN (no equity) compares False: a breach
            return v / threshold, None
        usage = v / threshold if v == v else math.inf
        return usage, Breach(self.name, v, threshold, f"{self.name}: {self.label} {v:,.6g} > {threshold:,.6g}")

    def check(self, p: Proposal) -> Breach | None:
        return self.assess(p)[1]


@dataclass(frozen=True, slots=True)
class MaxOrderNotional(_Threshold):
    """Order value (quantity × expected price × multiplier) at most ``limit``."""

    limit: float
    label = "order notional"

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", _positive("MaxOrderNotional", "limit", self.limit))

    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self.limit

    def value(self, p: Proposal) -> float:
        return p.notional


@dataclass(frozen=True, slots=True)
class MaxOrderQuantity(_Threshold):
    """Order quantity at most ``limit`` units."""

    limit: float
    label = "order quantity"

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", _positive("MaxOrderQuantity", "limit", self.limit))

    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self.limit

    def value(self, p: Proposal) -> float:
        return p.order.quantity


@dataclass(frozen=True, slots=True)
class MaxPositionWeight(_Threshold):
    """|position value after the fill| / equity at most ``limit`` (0.2 = 20%)."""

    limit: float
    label = "position weight"

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", _positive("MaxPositionWeight", "limit", self.limit))

    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self.limit

    def value(self, p: Proposal) -> float:
        return abs(p.q1 * p.price * p.order.instrument.multiplier) / (p.equity if p.equity > 0 else math.nan)


@dataclass(frozen=True, slots=True)
class MaxGrossLeverage(_Threshold):
    """Σ|position values| after the fill / equity at most ``limit`` (1.0 = unlevered)."""

    limit: float
    label = "gross leverage"

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", _positive("MaxGrossLeverage", "limit", self.limit))

    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self.limit

    def value(self, p: Proposal) -> float:
        return p.gross_after / (p.equity if p.equity > 0 else math.nan)


@dataclass(frozen=True, slots=True)
class MaxNetLeverage(_Threshold):
    """|Σ signed position values| after the fill / equity at most ``limit``."""

    limit: float
    label = "net leverage"

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", _positive("MaxNetLeverage", "limit", self.limit))

    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self.limit

    def value(self, p: Proposal) -> float:
        return abs(p.net_after) / (p.equity if p.equity > 0 else math.nan)  # no equity: over any cap


@dataclass(frozen=True, slots=True)
class LongOnly:
    """No short position: an order that would leave the position below zero is denied
    (a reversal from long to short is one order, so it is denied whole)."""

    @property
    def name(self) -> str:
        return "LongOnly"

    def assess(self, p: Proposal) -> tuple[float, Breach | None]:
        if p.q1 >= -1e-12 or p.reduces_only:
            return 0.0, None
        return 1.0, Breach("LongOnly", p.q1, 0.0, f"LongOnly: position after the order {p.q1:g} < 0")

    def check(self, p: Proposal) -> Breach | None:
        return self.assess(p)[1]


@dataclass(frozen=True, slots=True)
class MaxOrdersPerDay:
    """At most ``limit`` orders that open or add let through per UTC date (every order
    passed counts; an order that only reduces, such as a stop, is never held back)."""

    limit: int

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, numbers.Integral) or self.limit < 1:
            raise ParameterError(f"MaxOrdersPerDay: limit must be an int >= 1, got limit={self.limit!r}")

    @property
    def name(self) -> str:
        return "MaxOrdersPerDay"

    def assess(self, p: Proposal) -> tuple[float, Breach | None]:
        usage = (p.orders_today + 1) / self.limit
        if p.orders_today < self.limit or p.reduces_only:  # a stop or an exit is never held back
            return usage, None
        return usage, Breach("MaxOrdersPerDay", p.orders_today + 1, self.limit,
                             f"MaxOrdersPerDay: order {p.orders_today + 1} today > {self.limit}")  # fmt: skip

    def check(self, p: Proposal) -> Breach | None:
        return self.assess(p)[1]
