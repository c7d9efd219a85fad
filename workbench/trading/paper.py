"""The paper broker: the simulated broker's matching rules, as a restart-safe venue.

:class:`PaperBroker` *is* a :class:`~workbench.trading.simulated.SimulatedBroker` (same
matching, costs, time in force and buying power, so a replay of history through the
trading loop reproduces the backtest of the same spec fill for fill) that also answers the
:class:`~workbench.trading.venue.Venue` questions the loop asks after a restart.

A paper venue has no memory of its own outside the process: the trading loop's event log
is its storage. On a restart the loop rebuilds the orders and fills from the log and hands
them to :meth:`PaperBroker.restore`; the broker then holds exactly the book it held when
the process died (an order whose intent was logged is in the book, whether or not the
dead process got as far as handing it over), and numbers new fills after the restored ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from workbench.trading.orders import Fill, Order
from workbench.trading.simulated import SimulatedBroker
from workbench.trading.values import Instrument
from workbench.trading.venue import VenueFill, VenueOrder, VenueState

__all__ = ["PaperBroker", "venue_order"]

_STATUS = {"PENDING": "open", "ACCEPTED": "open", "PARTIALLY_FILLED": "open", "FILLED": "closed",
           "CANCELLED": "canceled", "EXPIRED": "expired", "REJECTED": "rejected", "DENIED": "rejected"}  # fmt: skip


def venue_order(order: Order, venue_id: str = "") -> VenueOrder:
    """``order`` as a venue reports it (ccxt's status words)."""
    return VenueOrder(client_id=order.order_id, venue_id=venue_id or order.order_id, symbol=order.instrument.symbol,
                      side=order.side, quantity=order.quantity, filled=order.filled_quantity,
                      status=_STATUS[order.status.name], order_type=order.order_type, limit_price=order.limit_price,
                      stop_price=order.stop_price, ts=order.ts)  # fmt: skip


class PaperBroker(SimulatedBroker):
    """A :class:`SimulatedBroker` that is also a :class:`~workbench.trading.venue.Venue`."""

    name = "paper"
    #: it fills against bars (the loop executes a decision at the next bar's open, as the
    #: event engine does), not in real time
    matches_bars = True

    def __repr__(self) -> str:
        return f"<PaperBroker {len(self.orders)} orders, {len(self.fills)} fills>"

    def restore(self, orders: Sequence[Order], fills: Sequence[Fill]) -> None:
        """Take back the book rebuilt from the event log: every order (open ones work on),
        and the fills (already booked to the portfolio by the loop), in log order."""
        self.orders = list(orders)
        self.fills = list(fills)
        self._open = [o for o in self.orders if not o.is_terminal]
        self._n_orders = len(self.orders)

    def find_order(self, client_id: str, instrument: Instrument) -> VenueOrder | None:
        for order in self.orders:
            if order.order_id == client_id:
                return venue_order(order)
        return None

    def adopt(self, order: Order, found: VenueOrder) -> None:
        """The paper book already holds every logged order (see :meth:`restore`)."""

    def venue_state(self, instruments: Sequence[Instrument], since: pd.Timestamp | None = None) -> VenueState:
        symbols = {i.symbol for i in instruments}
        fills = [f for f in self.fills if f.instrument.symbol in symbols and (since is None or f.ts >= since)]
        account = self.account()
        return VenueState(
            ts=pd.Timestamp.now(tz="UTC"),
            open_orders=tuple(venue_order(o) for o in self.open_orders if o.instrument.symbol in symbols),
            fills=tuple(VenueFill(fill_id=f.fill_id, client_id=f.order_id, venue_order_id=f.order_id,
                                  symbol=f.instrument.symbol, side=f.side, quantity=f.quantity, price=f.price,
                                  fee=f.fee, ts=f.ts) for f in fills),  # fmt: skip
            positions={s: q for s, q in account.positions.items() if s in symbols},
            cash=account.cash, currency=account.currency,
        )  # fmt: skip
