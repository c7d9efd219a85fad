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

from workbench.risk.monitor import PROTECTIVE_TAGS, RiskMonitor
from workbench.trading.accounts import reduces_only
from workbench.trading.broker import AccountState, Broker, PortfolioView, place_order
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
        monitor.on_state_change = self.cancel_adding

    # -- order entry ------------------------------------------------------------------------
    def next_order_id(self) -> str:
        return self.broker.next_order_id()

    def submit(self, order: Order) -> Order:
        self._orders.append(order)
        if self.before_check is not None:
            self.before_check()
        breach = self.monitor.check(order, self.worst_price(order), self.book, self.working(order.instrument))
        if breach is None:
            return self.broker.submit(order)
        if breach.reduce_to is not None:  # a reversal: its closing leg goes, its new side does not
            order.modify(order.ts, quantity=breach.reduce_to)
            return self.broker.submit(order)
        event = order.deny(order.ts, f"risk: {breach.message}", breach.limit)
        if self.bus is not None:
            self.bus.publish(event)
        return order

    def worst_price(self, order: Order) -> float:
        """The price the order is checked at: the mark, or for a limit or stop order the
        worst price it can fill at that is known now (a buy limit fills at or below its
        limit, a buy stop at or above its stop; sells mirror this). A stop that gaps past
        its price can still fill beyond it: the drift monitor then reports the breach."""
        mark = self.price_of(order.instrument)
        if order.limit_price is None and order.stop_price is None:  # a market order: the mark
            return mark
        buy = order.side is Side.BUY
        for level in (order.limit_price, order.stop_price):
            if level is not None and (mark != mark or (level > mark if buy else level < mark)):
                mark = level
        return mark

    def working(self, instrument: Instrument) -> float:
        """The signed quantity still to fill of the orders working in ``instrument``."""
        broker = self.broker
        if not broker.has_open_orders:  # the common case: no scan, no list built
            return 0.0
        sym = instrument.symbol
        return sum(o.side.sign * o.remaining_quantity for o in broker.open_orders if o.instrument.symbol == sym)

    def cancel_adding(self, ts: pd.Timestamp) -> None:
        """The state left ACTIVE: orders still working that would add exposure are cancelled
        (accepted before, they would otherwise fill after the change)."""
        for o in self.broker.open_orders:
            if o.tag in PROTECTIVE_TAGS:
                continue
            q0 = self.book.quantity(o.instrument)
            if not reduces_only(q0, q0 + o.side.sign * o.remaining_quantity):
                self.broker.cancel(o, max(ts, o.ts), f"risk: trading is {self.monitor.state.value}")

    def force(self, order: Order) -> Order:
        """Submit without a check (a liquidation must go through whatever the state)."""
        self._orders.append(order)
        return self.broker.submit(order)

    def place(
        self, instrument: Instrument, side: Side | str, quantity: float, ts: pd.Timestamp,
        order_type: OrderType | str = OrderType.MARKET, time_in_force: TimeInForce | str = TimeInForce.GTC,
        limit_price: float | None = None, stop_price: float | None = None, tag: str = "",
    ) -> Order:  # fmt: skip
        return place_order(self, instrument, side, quantity, ts, order_type, time_in_force, limit_price,
                           stop_price, tag)  # fmt: skip

    def cancel(self, order: Order, ts: pd.Timestamp, reason: str = "cancelled by request") -> None:
        self.broker.cancel(order, ts, reason)

    def modify(self, order: Order, ts: pd.Timestamp, **changes: Any) -> Order:
        """An amendment that adds quantity is checked like a new order of the extra part;
        refused, the order is left as it was (the refusal is in the risk log)."""
        quantity = changes.get("quantity")
        if quantity is not None and quantity > order.quantity:
            extra = Order(order_id=order.order_id, instrument=order.instrument, side=order.side,
                          quantity=quantity - order.quantity, ts=ts, tag=order.tag)  # fmt: skip
            working = self.working(order.instrument)
            if self.monitor.check(extra, self.worst_price(order), self.book, working) is not None:
                return order
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
