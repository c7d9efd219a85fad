"""Closed vocabularies of the trading context.

Strings from vendors or notebook parameters become these enums at the boundary through
``Enum.parse`` helpers (case-insensitive), so a typo fails at once with the allowed values.
"""

from __future__ import annotations

from enum import Enum

from workbench.errors import InvalidValueError

__all__ = [
    "AssetClass",
    "Side",
    "OrderType",
    "TimeInForce",
    "OrderStatus",
    "PositionSide",
    "CostBasisMethod",
    "FillTiming",
    "parse_enum",
]


class _ParseMixin:
    @classmethod
    def parse(cls, value: object):  # type: ignore[no-untyped-def]
        if type(value) is cls:  # already a member: the hot path
            return value
        return parse_enum(cls, value)  # type: ignore[arg-type]


def parse_enum(enum_cls: type[Enum], value: object) -> Enum:
    """Turn a string (any case) or an enum member into a member of ``enum_cls``.

    >>> parse_enum(Side, "buy")
    <Side.BUY: 'BUY'>
    """
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        key = value.strip().upper().replace("-", "_").replace(" ", "_")
        for member in enum_cls:
            if member.name == key or str(member.value).upper() == key:
                return member
    allowed = ", ".join(m.name for m in enum_cls)
    raise InvalidValueError(f"{enum_cls.__name__} must be one of {allowed}; got {value!r}")


class AssetClass(_ParseMixin, Enum):
    EQUITY = "EQUITY"
    INDEX = "INDEX"
    FX = "FX"
    CRYPTO = "CRYPTO"
    COMMODITY = "COMMODITY"
    FUTURE = "FUTURE"


class Side(_ParseMixin, Enum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for BUY, -1 for SELL."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(_ParseMixin, Enum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP = "STOP"
    STOP_LIMIT = "STOP_LIMIT"


class TimeInForce(_ParseMixin, Enum):
    """How long an order works.

    DAY: until the end of the session (the UTC calendar date) of its first eligible bar.
    GTC: until filled or cancelled. IOC: fill what the first eligible bar allows, cancel
    the rest. FOK: fill completely on the first eligible bar or cancel entirely.
    """

    DAY = "DAY"
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(_ParseMixin, Enum):
    PENDING = "PENDING"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    #: refused by the account's own risk profile before it reached the venue (not a venue rejection)
    DENIED = "DENIED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_working(self) -> bool:
        return self in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


_TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED, OrderStatus.DENIED}
)


class PositionSide(_ParseMixin, Enum):
    LONG = "LONG"
    SHORT = "SHORT"
    FLAT = "FLAT"


class CostBasisMethod(_ParseMixin, Enum):
    """Which lots a reducing fill closes: oldest (FIFO), newest (LIFO), or one average lot."""

    FIFO = "FIFO"
    LIFO = "LIFO"
    AVERAGE = "AVERAGE"


class FillTiming(_ParseMixin, Enum):
    """When a market order produced by a signal at bar t fills.

    NEXT_OPEN (default): at the open of bar t+1. SIGNAL_CLOSE: at the close of bar t
    itself (the classic "trade on close" shortcut; optimistic, opt-in only).
    """

    NEXT_OPEN = "NEXT_OPEN"
    SIGNAL_CLOSE = "SIGNAL_CLOSE"
