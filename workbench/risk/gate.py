"""The RiskGate: a Broker in front of a Broker, where every order meets the RiskProfile.

Engines build their broker, wrap it in a gate when the spec has a risk profile, and use
the gate through the same :class:`~workbench.trading.broker.Broker` port: an order that
breaks a limit is DENIED (``OrderDenied``, naming the limit) and never reaches the broker
behind; one that passes is submitted unchanged. A denial is the account's own decision,
recorded apart from a venue's rejection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from workbench.risk.monitor import RiskMonitor
from workbench.trading.broker import AccountState, Broker, PortfolioView
from workbench.trading.costs import Bar
from workbench.trading.enums import OrderType, Side, TimeInForce
from workbench.trading.events import EventBus
from workbench.trading.orders import Fill, Order
from workbench.trading.values import Instrument

__all__ = ["RiskGate"]

PriceOf = Callable[[Instrument], float]


class RiskGate:
    """Checks each order with ``monitor`` at ``price_of(instrument)`` (the engine's
    expected price: the bar's open for an order placed to fill there, the close for an
    order decided at it), then hands it to ``broker``."""

    def __init__(self, broker: Broker, book: PortfolioView, monitor: RiskMonitor, price_of: PriceOf,
                 bus: EventBus | None = None) -> None:  # fmt: skip
        self.broker, self.book, self.monitor, self.price_of, self.bus = broker, book, monitor, price_of, bus
        self._orders: list[Order] = []
        #: called before each check: an engine brings marks and the drawdown rule up to date
        self.before_check: Callable[[], None] | None = None

    # -- order entry ------------------------------------------------------------------------
    def next_order_id(self) -> str:
        return self.broker.next_order_id()

    def submit(self, order: Order) -> Order:
        self._orders.append(order)
        if self.before_check is not None:
            self.before_check()
        breach = self.monitor.check(order, self.price_of(order.instrument), self.book)
        if breach is None:
            return self.broker.submit(order)
        event = order.deny(order.ts, f"risk: {breach.message}", breach.limit)
        if self.bus is not None:
            self.bus.publish(event)
        return order

    def force(self, order: Order) -> Order:
        """Submit without a check (a liquidation must go through whatever the state)."""
        self._orders.append(order)
        return self.broker.submit(order)

    def place(
        self, instrument: Instrument, side: Side | str, quantity: float, ts: pd.Timestamp,
        order_type: OrderType | str = OrderType.MARKET, time_in_force: TimeInForce | str = TimeInForce.GTC,
        limit_price: float | None = None, stop_price: float | None = None, tag: str = "",
    ) -> Order:  # fmt: skip
        order = Order(order_id=self.next_order_id(), instrument=instrument, side=Side.parse(side),
                      quantity=quantity, ts=ts, order_type=order_type, time_in_force=time_in_force,
                      limit_price=limit_price, stop_price=stop_price, tag=tag)  # fmt: skip
        return self.submit(order)

    def cancel(self, order: Order, ts: pd.Timestamp, reason: str = "cancelled by request") -> None:
        self.broker.cancel(order, ts, reason)

    def modify(self, order: Order, ts: pd.Timestamp, **changes: Any) -> Order:
        return self.broker.modify(order, ts, **changes)

    # -- everything else is the broker's ------------------------------------------------------
    @property
    def open_orders(self) -> list[Order]:
        return self.broker.open_orders

    @property
    def has_open_orders(self) -> bool:
        return self.broker.has_open_orders

    @property
    def orders(self) -> list[Order]:
        """Every order, denied ones included, in submission order."""
        return list(self._orders)

    def fills_since(self, cursor: int = 0) -> list[Fill]:
        return self.broker.fills_since(cursor)

    def account(self) -> AccountState:
        return self.broker.account()

    def on_bar(self, instrument: Instrument, bar: Bar, at_close: bool = False) -> list[Fill]:
        return self.broker.on_bar(instrument, bar, at_close)

    def expire_all(self, ts: pd.Timestamp, reason: str = "backtest ended") -> None:
        self.broker.expire_all(ts, reason)
