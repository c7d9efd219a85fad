"""ccxt's vocabulary and the workbench's: order types, time in force, statuses, fees, and
keeping credentials out of text (what :mod:`workbench.adapters.ccxt_broker` sends and reads).

- Order types map by :data:`ORDER_TYPES`: (ccxt type, the ``has`` flag, whether a missing
  flag allows it, the names a market that lists its order types must show).
- ccxt statuses map onto :data:`~workbench.trading.venue.VENUE_ORDER_STATES` (:data:`STATUS`).
- :func:`fee_in_quote` books a trade's fees in the quote currency.
- :func:`scrub` replaces an exchange's credentials (as is and URL-quoted) and any signed
  field's value by ``***`` in any text that may leave the broker (errors, logs, reasons).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

import pandas as pd

from workbench.trading.enums import OrderType, Side, TimeInForce
from workbench.trading.orders import Order
from workbench.trading.values import Instrument
from workbench.trading.venue import VenueOrder

__all__ = ["ORDER_TYPES", "TIME_IN_FORCE", "LOOKUP_BY_CLIENT_ID", "STATUS", "fee_in_quote", "venue_order", "scrub"]

#: order type -> (ccxt type, the ``has`` flag, whether a missing flag allows it, the venue
#: names a market that lists its order types must show: Binance spot / Binance contracts)
ORDER_TYPES: dict[OrderType, tuple[str, str, bool, tuple[str, ...]]] = {
    OrderType.MARKET: ("market", "createMarketOrder", True, ("MARKET",)),
    OrderType.LIMIT: ("limit", "createLimitOrder", True, ("LIMIT",)),
    OrderType.STOP: ("market", "createStopMarketOrder", False, ("STOP_LOSS", "STOP_MARKET")),
    OrderType.STOP_LIMIT: ("limit", "createStopLimitOrder", False, ("STOP_LOSS_LIMIT", "STOP")),
}
#: ccxt's unified ``timeInForce`` values; DAY is sent GTC and ended by ``expire_all``.
TIME_IN_FORCE = {TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}
#: exchanges whose ccxt ``fetch_order`` honours ``params={"clientOrderId": ...}`` (checked in
#: ccxt's source); elsewhere an order is found by searching open and closed orders.
LOOKUP_BY_CLIENT_ID = frozenset({"binance", "binanceus", "binanceusdm", "binancecoinm", "okx",
                                  "kucoin", "bitget"})  # fmt: skip
#: ccxt statuses -> the venue states of :data:`~workbench.trading.venue.VENUE_ORDER_STATES`
STATUS = {"open": "open", "canceling": "open", "closed": "closed", "canceled": "canceled",
           "cancelled": "canceled", "expired": "expired", "rejected": "rejected"}  # fmt: skip
CREDENTIALS = ("apiKey", "secret", "password", "uid", "privateKey", "walletAddress", "token")
SIGNED = re.compile(
    r"(?i)\b(signature|sign|api[-_]?key|secret|passphrase|password|x-mbx-apikey)(['\"]?\s*[=:]\s*['\"]?)([^&\s'\",}]+)"
)


def fee_in_quote(fees: Iterable[Mapping[str, Any]], base: str, quote: str, price: float,
                 convert: Callable[[float, str], float] | None = None) -> float:  # fmt: skip
    """A trade's fees as one amount in the quote currency (ccxt ``fee``/``fees`` entries).

    A fee in the quote counts as is; one in the base asset counts ``cost * price`` (its
    value at the trade's price); one in another currency goes through ``convert(cost,
    currency)`` (0 without one). Negative totals (rebates) give 0.

    >>> fee_in_quote([{"cost": 0.001, "currency": "BTC"}], "BTC", "USDT", 40000.0)
    40.0
    >>> fee_in_quote([{"cost": 1.5, "currency": "USDT"}, {"cost": 0.0, "currency": "BNB"}], "BTC", "USDT", 1.0)
    1.5
    """
    total = 0.0
    for fee in fees:
        cost = float(fee.get("cost") or 0.0)
        currency = fee.get("currency")
        if cost == 0.0:
            continue
        if currency in (None, quote):
            total += cost
        elif currency == base:
            total += cost * price
        elif convert is not None:
            total += convert(cost, str(currency))
    return max(total, 0.0)


def venue_order(d: Mapping[str, Any], instrument: Instrument, sent: Order | None = None) -> VenueOrder:
    """A ccxt order structure as a VenueOrder; ``sent`` fills what a terse create
    answer leaves out (some venues answer with little more than the id)."""
    if sent is not None:
        d = {"side": sent.side.name.lower(), "amount": sent.quantity, "clientOrderId": sent.order_id,
             "status": "open"} | {k: v for k, v in d.items() if v is not None}  # fmt: skip
    kind = str(d.get("type") or "market").lower()
    trigger = d.get("triggerPrice") or d.get("stopPrice")
    limit_like = "limit" in kind
    otype = (OrderType.STOP_LIMIT if limit_like else OrderType.STOP) if trigger else (
        OrderType.LIMIT if limit_like else OrderType.MARKET)  # fmt: skip
    return VenueOrder(client_id=str(d.get("clientOrderId") or ""), venue_id=str(d.get("id")), symbol=instrument.symbol,
                      side=Side.parse(str(d.get("side"))), quantity=float(d.get("amount") or 0.0),
                      filled=float(d.get("filled") or 0.0), status=STATUS.get(str(d.get("status")).lower(), "open"),
                      order_type=otype, limit_price=float(d["price"]) if limit_like and d.get("price") else None,
                      stop_price=float(trigger) if trigger else None,
                      ts=_ts(d.get("timestamp")) if d.get("timestamp") else None)  # fmt: skip


def scrub(text: str, exchange: Any) -> str:
    """``text`` with ``exchange``'s credentials (as is and URL-quoted) and any signed
    field's value replaced by ``***``."""
    for attr in CREDENTIALS:
        value = getattr(exchange, attr, None)
        if isinstance(value, str) and len(value) >= 4:
            for form in {value, quote(value, safe=""), quote(value)}:
                text = text.replace(form, "***")
    return SIGNED.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


def _ts(ms: Any) -> pd.Timestamp:
    return pd.Timestamp(int(ms or 0), unit="ms", tz="UTC")
