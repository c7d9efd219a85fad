"""The venue port: what the trading loop asks of a broker that trades somewhere real.

A :class:`~workbench.trading.broker.Broker` is enough to backtest. Trading for real (or on
paper, restart-safe) needs three more things of it, and :class:`Venue` names them:

- **Client order ids.** The loop makes every order's ``order_id`` itself, deterministic
  from the strategy, the bar and the decision (:func:`client_order_id`), and the venue
  must send it as the client order id. A retry after a timeout then sends the same id,
  and a venue that already has the order answers "duplicate" instead of trading twice.
- **Lookup by client id.** ``find_order(client_id, instrument)`` is the venue's view of
  one order, or None when the venue never got it: after a lost answer or a restart, the
  loop asks instead of guessing.
- **The venue's view.** ``venue_state(instruments, since)`` is every open order, every
  fill since ``since`` and the balances: what :mod:`workbench.trading.reconcile`
  compares with the event log on start and periodically.
- ``adopt(order, found)`` puts an order the loop knows (from its log) back in the
  broker's book after a restart, in the state the venue reports, so its later fills are
  polled and booked like any other.

Fills reported by a venue are :class:`VenueFill` records (the venue's trade id is the fill
id), and the broker books them to its portfolio in the order the venue reports them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import pandas as pd

from workbench.trading.broker import Broker
from workbench.trading.enums import OrderType, Side
from workbench.trading.orders import Order
from workbench.trading.values import Instrument

__all__ = ["Venue", "VenueOrder", "VenueFill", "VenueState", "client_order_id", "VENUE_ORDER_STATES"]

#: The states a venue reports for an order (ccxt's unified ``status`` values).
VENUE_ORDER_STATES = ("open", "closed", "canceled", "expired", "rejected")


def client_order_id(strategy_id: str, symbol: str, signal_ts: pd.Timestamp, seq: int, prefix: str = "wb") -> str:
    """A client order id that is the same every time the same decision is made: the
    strategy's spec id, the symbol, the signal bar (UTC, ns) and the order's number within
    that decision, hashed to 20 hex digits behind ``prefix`` (``wb-1f3a...``, 23 chars:
    inside every major venue's limit of 32-36 characters and their alphabet)."""
    ts = pd.Timestamp(signal_ts)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    key = f"{strategy_id}|{symbol}|{ts.value}|{seq}"
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


@dataclass(frozen=True, kw_only=True, slots=True)
class VenueOrder:
    """An order as the venue reports it. ``status`` is one of :data:`VENUE_ORDER_STATES`;
    ``filled`` the quantity executed so far."""

    client_id: str
    venue_id: str
    symbol: str
    side: Side
    quantity: float
    filled: float
    status: str
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    ts: pd.Timestamp | None = None

    @property
    def is_open(self) -> bool:
        return self.status == "open"


@dataclass(frozen=True, kw_only=True, slots=True)
class VenueFill:
    """One execution as the venue reports it; ``fill_id`` is the venue's trade id and
    ``client_id`` the order's client id (empty for an order the venue did not tag)."""

    fill_id: str
    client_id: str
    venue_order_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    fee: float
    ts: pd.Timestamp


@dataclass(frozen=True, kw_only=True, slots=True)
class VenueState:
    """The venue's view at ``ts``: open orders, fills since the asked time, the signed
    position per symbol and the free cash in ``currency``."""

    ts: pd.Timestamp
    open_orders: tuple[VenueOrder, ...] = ()
    fills: tuple[VenueFill, ...] = ()
    positions: Mapping[str, float] = field(default_factory=dict)
    cash: float = float("nan")
    currency: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "open_orders", tuple(self.open_orders))
        object.__setattr__(self, "fills", tuple(self.fills))
        object.__setattr__(self, "positions", MappingProxyType(dict(self.positions)))


@runtime_checkable
class Venue(Broker, Protocol):
    """A :class:`Broker` the trading loop can run against restart-safely (see the module notes).

    ``name`` is what logs and reports call it (``"paper"``, ``"ccxt:binance (sandbox)"``);
    it never contains a credential.
    """

    name: str

    def find_order(self, client_id: str, instrument: Instrument) -> VenueOrder | None: ...

    def venue_state(self, instruments: Sequence[Instrument], since: pd.Timestamp | None = None) -> VenueState: ...

    def adopt(self, order: Order, found: VenueOrder) -> None: ...
