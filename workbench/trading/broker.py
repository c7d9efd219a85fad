"""The broker port: what engines and strategies may ask of any broker.

The engines talk to a broker only through :class:`Broker`, so the simulated broker
(:class:`~workbench.trading.simulated.SimulatedBroker`) can be swapped for a paper or live
adapter without touching them. The port is structural (a ``typing.Protocol``): an adapter
needs no base class, only these methods.

- Order entry: ``next_order_id``, ``submit``, ``place``, ``cancel``, ``modify`` (amends a
  working or pending order in place, same order id).
- Order book: ``open_orders`` (working or pending), ``has_open_orders`` (O(1): engines
  test it every bar), ``orders`` (every order ever submitted, in submission order).
- Fill stream: ``fills_since(cursor)`` returns fills number ``cursor``.. in booking order;
  fill ids are unique per broker, so a consumer keeps a cursor and never books one twice.
- Account: ``account()`` is an :class:`AccountState` snapshot.
- Time: ``on_bar(instrument, bar)`` tells the broker a bar arrived (a simulated broker
  matches against it; a live one polls), ``expire_all`` ends the session.

A pre-trade check (:data:`PreTradeCheck`) sees the account through :class:`PortfolioView`,
the read-only slice of a portfolio it may rely on, not the concrete ``Portfolio``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import pandas as pd

from workbench.trading.costs import Bar
from workbench.trading.enums import OrderType, Side, TimeInForce
from workbench.trading.orders import Fill, Order
from workbench.trading.values import Instrument

__all__ = ["Broker", "AccountState", "PortfolioView", "PreTradeCheck", "place_order"]


@runtime_checkable
class PortfolioView(Protocol):
    """What a pre-trade check may read of an account (``Portfolio`` satisfies it)."""

    @property
    def cash(self) -> float: ...

    @property
    def equity(self) -> float: ...

    def quantity(self, instrument: Instrument) -> float: ...

    def gross_exposure(self) -> float: ...

    def market_value(self) -> float: ...


#: ``check(order, portfolio, expected_price) -> reason``; a non-empty reason rejects.
PreTradeCheck = Callable[[Order, PortfolioView, float], str]


@dataclass(frozen=True, kw_only=True, slots=True)
class AccountState:
    """A snapshot of an account: cash, equity, currency and signed quantity per symbol.

    ``positions`` is copied into a read-only mapping, so a snapshot never changes after
    it was taken (the broker's book moves on, the snapshot does not).
    """

    cash: float
    equity: float
    currency: str
    positions: Mapping[str, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "positions", MappingProxyType(dict(self.positions)))


@runtime_checkable
class Broker(Protocol):
    """Order entry, the order book, the fill stream and the account, for any venue."""

    def next_order_id(self) -> str: ...

    def submit(self, order: Order) -> Order:
        """Take a PENDING order; it is working or pending until it ends."""
        ...

    def place(
        self,
        instrument: Instrument,
        side: Side | str,
        quantity: float,
        ts: pd.Timestamp,
        order_type: OrderType | str = OrderType.MARKET,
        time_in_force: TimeInForce | str = TimeInForce.GTC,
        limit_price: float | None = None,
        stop_price: float | None = None,
        tag: str = "",
    ) -> Order:
        """Create and submit an order placed on signal bar ``ts``."""
        ...

    def cancel(self, order: Order, ts: pd.Timestamp, reason: str = "cancelled by request") -> None: ...

    def modify(
        self,
        order: Order,
        ts: pd.Timestamp,
        *,
        quantity: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
    ) -> Order:
        """Amend a working or pending order in place (same order id)."""
        ...

    @property
    def open_orders(self) -> list[Order]:
        """Orders working or pending, not terminal."""
        ...

    @property
    def has_open_orders(self) -> bool:
        """Whether any order is open, in O(1): engines test it every bar."""
        ...

    @property
    def orders(self) -> list[Order]:
        """Every order ever submitted, in submission order."""
        ...

    def fills_since(self, cursor: int = 0) -> list[Fill]:
        """Fills number ``cursor``.. in booking order (fill ids unique per broker)."""
        ...

    def account(self) -> AccountState: ...

    def on_bar(self, instrument: Instrument, bar: Bar, at_close: bool = False) -> list[Fill]:
        """A bar of ``instrument`` arrived; return the fills it caused."""
        ...

    def expire_all(self, ts: pd.Timestamp, reason: str = "backtest ended") -> None: ...


def place_order(
    broker: Broker, instrument: Instrument, side: Side | str, quantity: float, ts: pd.Timestamp,
    order_type: OrderType | str = OrderType.MARKET, time_in_force: TimeInForce | str = TimeInForce.GTC,
    limit_price: float | None = None, stop_price: float | None = None, tag: str = "",
) -> Order:  # fmt: skip
    """``Broker.place`` for any broker: an order with the broker's next id, placed on signal
    bar ``ts``, handed to its ``submit`` (where each broker does its own checks)."""
    order = Order(order_id=broker.next_order_id(), instrument=instrument, side=Side.parse(side), quantity=quantity,
                  ts=ts, order_type=order_type, time_in_force=time_in_force, limit_price=limit_price,
                  stop_price=stop_price, tag=tag)  # fmt: skip
    return broker.submit(order)
