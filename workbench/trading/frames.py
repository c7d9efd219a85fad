"""Tabulate any broker's orders and fills with the columns every report reads.

Module functions rather than broker methods so a paper or live broker (anything behind the
:class:`~workbench.trading.broker.Broker` port) prints the same tables as the simulated one.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from workbench.trading.orders import Fill, Order

__all__ = ["ORDER_COLUMNS", "FILL_COLUMNS", "orders_frame", "fills_frame"]

ORDER_COLUMNS = [
    "order_id", "symbol", "side", "type", "tif", "quantity", "limit_price",
    "stop_price", "placed", "status", "filled_quantity", "avg_fill_price", "fees",
    "updated", "reason", "tag",
]  # fmt: skip

FILL_COLUMNS = ["fill_id", "order_id", "symbol", "side", "quantity", "price", "fee", "ts"]


def orders_frame(orders: Iterable[Order]) -> pd.DataFrame:
    """One row per order, in the order given (a broker's ``orders``: submission order)."""
    return pd.DataFrame([o.to_dict() for o in orders], columns=ORDER_COLUMNS)


def fills_frame(fills: Iterable[Fill]) -> pd.DataFrame:
    """One row per fill, in the order given (a broker's fill stream: booking order)."""
    return pd.DataFrame([_fill_row(f) for f in fills], columns=FILL_COLUMNS)


def _fill_row(f: Fill) -> dict[str, object]:
    return {
        "fill_id": f.fill_id,
        "order_id": f.order_id,
        "symbol": f.instrument.symbol,
        "side": f.side.name,
        "quantity": f.quantity,
        "price": f.price,
        "fee": f.fee,
        "ts": f.ts,
    }
