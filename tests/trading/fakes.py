"""A hand-written broker for port tests: no mocks, no matching engine.

``FakeBroker`` fills market orders whole at the open of the first bar after their signal
bar, with no costs and no buying-power check; every other order type just stays pending.
It exists to prove that the :class:`~workbench.trading.broker.Broker` port is small
enough to implement by hand, and that code written against the port runs on it.
"""

from __future__ import annotations

import pandas as pd

from workbench.errors import InvalidValueError
from workbench.trading import (
    AccountState,
    Bar,
    Fill,
    Instrument,
    Order,
    OrderType,
    Side,
    TimeInForce,
)


class FakeBroker:
    def __init__(self, cash: float = 100_000.0, currency: str = "USD") -> None:
        self.cash = float(cash)
        self.currency = currency
        self._orders: list[Order] = []
        self._fills: list[Fill] = []
        self._positions: dict[str, float] = {}
        self._marks: dict[str, tuple[float, float]] = {}  # symbol -> (mark, multiplier)
        self._n = 0

    # -- order entry ------------------------------------------------------------------
    def next_order_id(self) -> str:
        self._n += 1
        return f"FAKE-{self._n}"

    def submit(self, order: Order) -> Order:
        if order.is_terminal or order.is_working:
            raise InvalidValueError(f"only PENDING orders can be submitted; got {order.status.name}")
        self._orders.append(order)
        return order

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
        order = Order(
            order_id=self.next_order_id(), instrument=instrument, side=Side.parse(side),
            quantity=quantity, ts=ts, order_type=order_type, time_in_force=time_in_force,
            limit_price=limit_price, stop_price=stop_price, tag=tag,
        )  # fmt: skip
        return self.submit(order)

    def cancel(self, order: Order, ts: pd.Timestamp, reason: str = "cancelled by request") -> None:
        order.cancel(ts, reason)

    def modify(
        self,
        order: Order,
        ts: pd.Timestamp,
        *,
        quantity: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
    ) -> Order:
        order.modify(ts, quantity=quantity, limit_price=limit_price, stop_price=stop_price)
        return order

    # -- the book ---------------------------------------------------------------------
    @property
    def open_orders(self) -> list[Order]:
        return [o for o in self._orders if not o.is_terminal]

    @property
    def has_open_orders(self) -> bool:
        return any(not o.is_terminal for o in self._orders)

    @property
    def orders(self) -> list[Order]:
        return list(self._orders)

    def fills_since(self, cursor: int = 0) -> list[Fill]:
        return self._fills[cursor:]

    def account(self) -> AccountState:
        value = sum(q * self._marks[s][0] * self._marks[s][1] for s, q in self._positions.items())
        held = {s: q for s, q in self._positions.items() if q != 0}
        return AccountState(cash=self.cash, equity=self.cash + value, currency=self.currency, positions=held)

    # -- time -------------------------------------------------------------------------
    def on_bar(self, instrument: Instrument, bar: Bar, at_close: bool = False) -> list[Fill]:
        fills = [] if at_close else [self._fill(o, bar) for o in self._due(instrument, bar)]
        self._marks[instrument.symbol] = (bar.close, instrument.multiplier)
        return fills

    def expire_all(self, ts: pd.Timestamp, reason: str = "backtest ended") -> None:
        for order in self.open_orders:
            if order.time_in_force is TimeInForce.DAY and order.is_working:
                order.expire(ts, reason)

    # -- internals --------------------------------------------------------------------
    def _due(self, instrument: Instrument, bar: Bar) -> list[Order]:
        return [
            o for o in self.open_orders
            if o.order_type is OrderType.MARKET and o.instrument == instrument and o.ts < bar.ts
        ]  # fmt: skip

    def _fill(self, order: Order, bar: Bar) -> Fill:
        order.accept(bar.ts)
        fill = Fill(
            fill_id=f"FF-{len(self._fills) + 1}", order_id=order.order_id,
            instrument=order.instrument, side=order.side, quantity=order.remaining_quantity,
            price=bar.open, fee=0.0, ts=bar.ts,
        )  # fmt: skip
        order.fill(fill)
        sym, mult = order.instrument.symbol, order.instrument.multiplier
        self.cash -= fill.signed_quantity * fill.price * mult
        self._positions[sym] = self._positions.get(sym, 0.0) + fill.signed_quantity
        self._fills.append(fill)
        return fill
