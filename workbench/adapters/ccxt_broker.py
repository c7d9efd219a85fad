"""The Broker (and Venue) port on any exchange ccxt supports: orders at a real venue, fills polled.

Conventions, in the order an order meets them:

- **Keys** come only from the environment when the exchange is given by id:
  ``CCXT_<EXCHANGE>_API_KEY``, ``CCXT_<EXCHANGE>_SECRET`` and, for venues that need one,
  ``CCXT_<EXCHANGE>_PASSWORD`` (as :mod:`workbench.adapters.crypto`). The broker keeps no
  copy: every ccxt error it re-raises, logs or writes into an order's reason has the
  instance's credentials, and any ``signature=``/``apiKey=``-style field, replaced by
  ``***``; ccxt's ``verbose`` mode (it prints request headers) is switched off.
- **Sandbox** by default (``set_sandbox_mode(True)``); an exchange without one is a
  :class:`~workbench.errors.ParameterError` telling to pass ``sandbox=False``.
- **Symbols**: an order's ``instrument.ticker`` is the ccxt market symbol (``BTC/USDT``);
  :meth:`CcxtBroker.instrument` builds the Instrument of a market (tick and lot size read
  by the exchange's ``precisionMode``, currency = the quote). Positions, venue orders and
  fills are keyed by the Instrument's ``symbol`` (``BTC/USDT.binance``), like a
  portfolio's.
- **Order types** are mapped by :data:`~workbench.adapters.ccxt_orders.ORDER_TYPES`: MARKET and LIMIT unless ccxt says
  the exchange has none (``has[...] is False``); STOP (a stop-market) and STOP_LIMIT only
  where ``has["createStopMarketOrder"]``/``has["createStopLimitOrder"]`` is true and, for a
  market that lists its order types (Binance's ``orderTypes``), the venue's name for it
  is listed. Otherwise the order is REJECTED: "binance does not support STOP orders for
  BTC/USDT". Stops are sent with ccxt's unified ``triggerPrice``.
- **Time in force**: GTC is the venue's default; IOC and FOK are sent as
  ``timeInForce`` on limit-priced orders (a market order is immediate anyway). Venues
  have no common DAY order, so a DAY order is sent GTC and :meth:`CcxtBroker.expire_all`
  cancels it at the venue and EXPIRES it; ending the session is the caller's call.
- **Precision and limits**: the amount goes through ``amount_to_precision`` (ccxt
  truncates: never more than asked) and prices through ``price_to_precision``; when
  that moves a term the order is amended first (an ``OrderModified`` event, same id), so
  the book, the event log and the venue agree. Then ``limits.amount`` min/max and
  ``limits.cost.min`` are checked (the cost at the limit or stop price; a market order's
  at the last close seen by ``on_bar``, unchecked before the first bar): a breach
  REJECTS the order naming the limit and the value.
- **Idempotency**: the order id is the client order id (``clientOrderId``). A transient
  error (ccxt's ``NetworkError`` family) is retried with backoff
  (:func:`~workbench.adapters._retry.retry`) with the same id, and before each retry the
  order is looked up by that id and adopted if the venue has it. An answer that may mean
  "duplicate" (``DuplicateOrderId``, ``InvalidOrder``, ``BadRequest``: Binance says
  -2010 "Duplicate order sent.") is looked up too; only when the venue has no such
  order is it a rejection, with the venue's message. When every attempt fails the order
  stays PENDING (its fate unknown) and the next poll asks again: adopted if the venue
  has it, REJECTED if not.
- **Fills** are polled (``on_bar``): each venue trade of an open order is booked once,
  ``portfolio.apply(fill)`` first, then ``order.fill(fill)``. A fill's id is the venue's
  trade id qualified by the market (``BTC/USDT:309520010``): Binance numbers trades per
  symbol. The fee is booked in the quote currency (:func:`fee_in_quote`): a fee charged
  in the base asset (Binance on buys without BNB) counts ``cost * price``, so the
  position then overstates the venue's base balance by that fee, which reconciliation
  will show; a fee in a third currency is converted at its ``<FEE>/<QUOTE>`` ticker when
  the venue has that market, else booked as 0 with a warning. Rebates (negative fees)
  are booked as 0: a Fill's fee is >= 0.
- **Status** follows the venue: an order the venue reports ``canceled``/``expired``/
  ``rejected`` ends (CANCELLED, EXPIRED, CANCELLED with the reason) once every trade it
  had is booked.
- **Cash and positions** (``account``, ``venue_state``): cash is the total balance of
  the portfolio's currency (free plus held by open orders, what ``Portfolio.cash``
  counts); a position is the base asset's total balance.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from workbench.adapters._retry import retry
from workbench.adapters.ccxt_orders import (
    LOOKUP_BY_CLIENT_ID,
    ORDER_TYPES,
    TIME_IN_FORCE,
    fee_in_quote,
    scrub,
    venue_order,
)
from workbench.adapters.crypto import _FINEST_TICK, _increment
from workbench.errors import InvalidValueError, OrderStateError, OverfillError, ParameterError
from workbench.trading.broker import AccountState, place_order
from workbench.trading.costs import Bar
from workbench.trading.enums import AssetClass, OrderStatus, OrderType, Side, TimeInForce
from workbench.trading.events import Event, EventBus, OrderFilled, OrderPartiallyFilled
from workbench.trading.orders import Fill, Order
from workbench.trading.portfolio import Portfolio
from workbench.trading.values import Instrument
from workbench.trading.venue import VenueFill, VenueOrder, VenueState

__all__ = ["CcxtBroker", "fee_in_quote"]

log = logging.getLogger(__name__)

_QTY_TOL = 1e-9
_SINCE_SLACK_MS = 60_000  # trades are asked for from a minute before the order: clock skew


class CcxtBroker:
    """:class:`~workbench.trading.venue.Venue` on a ccxt exchange (see the module notes).

    Parameters
    ----------
    exchange : str or ccxt.Exchange
        A ccxt id (``"binance"``; keys from the environment) or a configured instance.
    portfolio : Portfolio
        Books every fill, in the portfolio's currency (= the markets' quote).
    instruments : mapping, optional
        Instruments made elsewhere (by ccxt symbol or by ``Instrument.symbol``: they are
        indexed by their ticker, the ccxt symbol); others are built from the markets by
        :meth:`instrument`.
    bus : EventBus, optional
        Receives every order, position and trade event as it happens.
    sandbox : bool
        Trade on the exchange's sandbox/testnet (default). ``False`` trades for real.
    attempts : int
        Tries per ccxt call on transient errors (backoff 1, 2, 4... s through ``sleep``).
    clock : callable, optional
        "Now" as a UTC Timestamp; default the exchange's clock.
    """

    def __init__(self, exchange: Any, portfolio: Portfolio, *, instruments: Mapping[str, Instrument] | None = None,
                 bus: EventBus | None = None, sandbox: bool = True, attempts: int = 4,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], pd.Timestamp] | None = None) -> None:  # fmt: skip
        import ccxt

        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ParameterError(f"CcxtBroker: attempts must be an int >= 1, got attempts={attempts!r}")
        self.exchange = _exchange(exchange) if isinstance(exchange, str) else exchange
        self.exchange.verbose = False  # ccxt's verbose mode prints request headers: keys
        if sandbox:
            _sandbox(self.exchange)
        mode = "sandbox" if getattr(self.exchange, "isSandboxModeEnabled", False) else "live"
        self.name = f"ccxt:{self.exchange.id} ({mode})"
        self._search = _search_methods(self.exchange, self.name)
        self.portfolio, self.bus, self.attempts = portfolio, bus, attempts
        self._sleep, self._clock = sleep, clock
        self._transient: tuple[type[BaseException], ...] = (ccxt.NetworkError,)
        # indexed by ticker (the ccxt symbol), whatever the caller keyed them by
        self._instruments: dict[str, Instrument] = {i.ticker: i for i in (instruments or {}).values()}
        self.orders: list[Order] = []
        self.fills: list[Fill] = []
        self._open: list[Order] = []
        self._vid: dict[str, str] = {}  # order id -> the venue's current order id
        self._by_vid: dict[str, Order] = {}  # every venue id an order ever had -> the order
        self._since: dict[str, int] = {}  # order id -> ms from which its trades are asked for
        self._ending: dict[str, tuple[str, str]] = {}  # order id -> (verb, reason) of a cancel under way
        self._unsure: dict[str, str] = {}  # order id -> why its fate at the venue is unknown
        self._held_ids: set[str] = set()  # fill ids of the portfolio's transactions (read so far)
        self._held_read = 0  # how many of portfolio.transactions _held_ids has read
        self._last: dict[str, float] = {}  # ccxt symbol -> last close seen by on_bar
        self._clients: dict[str, str] = {}  # venue id -> client id, of orders this broker does not hold
        self._orphans: set[str] = set()  # trades of orders that had ended here (warned once)

    def __repr__(self) -> str:  # never the exchange object: it holds the credentials
        return f"CcxtBroker({self.name!r})"

    # -- markets and instruments ----------------------------------------------------------
    def instrument(self, symbol: str) -> Instrument:
        """The Instrument of ccxt market ``symbol``: ticker = the symbol, exchange = the
        ccxt id, CRYPTO, tick and lot size from the market's precision, the quote currency."""
        import ccxt

        if symbol not in self._instruments:
            m = self._market(symbol)
            precision = m.get("precision") or {}
            mode = getattr(self.exchange, "precisionMode", ccxt.Exchange.precisionMode)
            self._instruments[symbol] = Instrument(
                ticker=m["symbol"], exchange=self.exchange.id, asset_class=AssetClass.CRYPTO,
                tick_size=_increment(precision.get("price"), mode, default=0.01, unfixed=_FINEST_TICK),
                lot_size=_increment(precision.get("amount"), mode, default=1e-8, unfixed=1e-8),
                currency=m["quote"],
            )  # fmt: skip
        return self._instruments[symbol]

    def _market(self, symbol: str) -> dict[str, Any]:
        markets = self.exchange.markets or self._call("load_markets", self.exchange.load_markets)
        if symbol not in markets:
            raise ParameterError(f"{self.name}: the exchange has no market {symbol!r}")
        return markets[symbol]

    # -- order entry ------------------------------------------------------------------------
    def next_order_id(self) -> str:
        """A fresh client order id for a manual ``place`` (the trading loop makes its own,
        deterministic ones: :func:`~workbench.trading.venue.client_order_id`)."""
        return f"wb-{uuid.uuid4().hex[:20]}"

    def submit(self, order: Order) -> Order:
        """Send a PENDING order; it comes back ACCEPTED, REJECTED (with the reason), or
        PENDING when the venue could not be reached (the next poll settles it)."""
        if order.status is not OrderStatus.PENDING:
            raise InvalidValueError(f"only PENDING orders can be submitted; {order.order_id} is {order.status.name}")
        self.orders.append(order)
        self._open.append(order)
        self._publish(order.events)
        ts = self._now(order)
        request = self._request(order, ts)
        if isinstance(request, str):
            self._publish([order.reject(ts, request)])
        else:
            self._send(order, request, ts)
        self._prune()
        return order

    def place(self, instrument: Instrument, side: Side | str, quantity: float, ts: pd.Timestamp,
              order_type: OrderType | str = OrderType.MARKET, time_in_force: TimeInForce | str = TimeInForce.GTC,
              limit_price: float | None = None, stop_price: float | None = None, tag: str = "") -> Order:  # fmt: skip
        """Create and submit an order placed on signal bar ``ts`` (a uuid client id)."""
        return place_order(self, instrument, side, quantity, ts, order_type, time_in_force, limit_price, stop_price, tag)

    def _request(self, order: Order, ts: pd.Timestamp) -> tuple[Any, ...] | str:
        """The ``create_order`` arguments for ``order`` (amended to the venue's grid), or
        the reason it cannot be sent."""
        import ccxt

        inst, symbol = order.instrument, order.instrument.ticker
        if inst.currency != self.portfolio.currency:
            return (f"currency mismatch: {symbol} trades in {inst.currency}, this portfolio books only "
                    f"{self.portfolio.currency}")  # fmt: skip
        try:
            market = self._market(symbol)
            refusal = self._unsupported(order, market)
            if refusal:
                return refusal
            amount, limit, stop = self._rounded(order)
        except ParameterError as exc:
            return str(exc)
        except ccxt.BaseError as exc:
            return self._scrub(f"{self.name}: {exc}")
        breach = self._limit_breach(market, order, amount, limit, stop)
        if breach:
            return breach
        why = self._amend(order, ts, amount, limit, stop)
        if why:
            return why
        ccxt_type = ORDER_TYPES[order.order_type][0]
        params: dict[str, Any] = {"clientOrderId": order.order_id}
        if stop is not None:
            params["triggerPrice"] = stop
        if ccxt_type == "limit" and order.time_in_force in TIME_IN_FORCE:
            params["timeInForce"] = TIME_IN_FORCE[order.time_in_force]
        return (symbol, ccxt_type, order.side.name.lower(), amount, limit, params)

    def _unsupported(self, order: Order, market: Mapping[str, Any]) -> str:
        _, flag, default, names = ORDER_TYPES[order.order_type]
        has = getattr(self.exchange, "has", {}) or {}
        info = market.get("info")
        listed = info.get("orderTypes") if isinstance(info, dict) else None
        ok = bool(has.get(flag, default))  # ccxt's has values: True, False, "emulated", or missing
        if ok and isinstance(listed, list):
            ok = any(n in listed for n in names)
        if ok:
            return ""
        return f"{self.exchange.id} does not support {order.order_type.name} orders for {market['symbol']}"

    def _rounded(self, order: Order) -> tuple[float, float | None, float | None]:
        """Amount and prices on the venue's grid (ccxt's ``*_to_precision``)."""
        ex, symbol = self.exchange, order.instrument.ticker
        amount = float(ex.amount_to_precision(symbol, order.quantity))
        limit = None if order.limit_price is None else float(ex.price_to_precision(symbol, order.limit_price))
        stop = None if order.stop_price is None else float(ex.price_to_precision(symbol, order.stop_price))
        return amount, limit, stop

    def _limit_breach(self, market: Mapping[str, Any], order: Order, amount: float,
                      limit: float | None, stop: float | None) -> str:  # fmt: skip
        """Which of the market's ``limits`` the rounded order breaks ("" if none)."""
        limits = market.get("limits") or {}
        lo, hi = _bounds(limits, "amount")
        where = f"{self.exchange.id} {market['symbol']}"
        if amount <= 0 or (lo is not None and amount < lo * (1 - 1e-12)):
            return (f"{where}: amount {amount:g} (after rounding {order.quantity:g} to the amount precision) "
                    f"is below the minimum amount {lo or 0:g} (limits.amount.min)")  # fmt: skip
        if hi is not None and amount > hi * (1 + 1e-12):
            return f"{where}: amount {amount:g} is above the maximum amount {hi:g} (limits.amount.max)"
        ref = limit if limit is not None else stop if stop is not None else self._last.get(market["symbol"])
        cost_min, _ = _bounds(limits, "cost")
        if ref is not None and cost_min is not None and amount * ref < cost_min * (1 - 1e-12):
            return (f"{where}: cost {amount * ref:g} {market.get('quote', '')} (amount {amount:g} x price {ref:g}) "
                    f"is below the minimum cost {cost_min:g} (limits.cost.min)")  # fmt: skip
        return ""

    def _amend(self, order: Order, ts: pd.Timestamp, amount: float, limit: float | None, stop: float | None) -> str:
        """Amend the PENDING order to the rounded terms (an OrderModified event) when
        rounding moved one; the reason it cannot be, or ""."""
        changes = {k: v for k, v, old in (("quantity", amount, order.quantity), ("limit_price", limit, order.limit_price),
                                          ("stop_price", stop, order.stop_price))
                   if v is not None and old is not None and not math.isclose(v, old, rel_tol=1e-12, abs_tol=0.0)}  # fmt: skip
        if not changes:
            return ""
        try:
            self._publish([order.modify(ts, **changes)])  # ts is never before the placement: _now
        except InvalidValueError as exc:
            return f"{self.name}: cannot amend {order.order_id} to the venue's precision {changes}: {exc}"
        return ""

    def _send(self, order: Order, request: tuple[Any, ...], ts: pd.Timestamp) -> None:
        """``create_order`` with idempotent retries; accept, adopt, reject or leave PENDING."""
        import ccxt

        sent = [0]

        def attempt() -> Any:
            if sent[0]:
                found = self.find_order(order.order_id, order.instrument)
                if found is not None:
                    return found
            sent[0] += 1
            return self._clean_call(lambda: self.exchange.create_order(*request))

        try:
            answer = retry(attempt, transient=self._transient, what=f"{self.name} create_order {order.order_id}",
                           attempts=self.attempts, sleep=self._sleep)  # fmt: skip
        except ccxt.InsufficientFunds as exc:
            self._publish([order.reject(ts, f"{self.name}: {exc}")])
        except (ccxt.InvalidOrder, ccxt.BadRequest) as exc:  # DuplicateOrderId is an InvalidOrder
            self._after_refusal(order, ts, exc)
        except ccxt.NetworkError as exc:
            self._unsure[order.order_id] = str(exc)
            log.warning("%s: order %s: the venue could not be reached (%s: %s); it stays PENDING until a poll "
                        "finds it at the venue or not", self.name, order.order_id, type(exc).__name__, exc)  # fmt: skip
        except ccxt.BaseError as exc:
            self._publish([order.reject(ts, f"{self.name}: {exc}")])
        else:
            found = answer if isinstance(answer, VenueOrder) else venue_order(answer, order.instrument, order)
            self._attach(order, found, ts)

    def _after_refusal(self, order: Order, ts: pd.Timestamp, exc: Exception) -> None:
        """A refusal that may mean "duplicate": adopt the venue's order if it has one."""
        import ccxt

        try:
            found = self.find_order(order.order_id, order.instrument)
        except ccxt.NetworkError as lookup:
            self._unsure[order.order_id] = f"{exc}; lookup failed: {lookup}"
            return
        if found is not None:
            self._attach(order, found, ts)
        else:
            self._publish([order.reject(ts, f"{self.name}: {exc}")])

    def _attach(self, order: Order, found: VenueOrder, ts: pd.Timestamp) -> None:
        """The venue has ``order`` as ``found``: remember its id and accept it. A venue
        answer of "rejected" rejects it instead."""
        self._unsure.pop(order.order_id, None)
        if found.status == "rejected" and order.status is OrderStatus.PENDING and found.filled <= 0:
            self._publish([order.reject(ts, f"{self.name}: the venue rejected order {found.venue_id}")])
            return
        self._vid[order.order_id] = found.venue_id
        self._by_vid[found.venue_id] = order
        venue_ms = int(found.ts.value // 1_000_000) if found.ts is not None else self._now_ms()
        self._since[order.order_id] = venue_ms - _SINCE_SLACK_MS
        if order.status is OrderStatus.PENDING:
            self._publish([order.accept(ts)])

    def cancel(self, order: Order, ts: pd.Timestamp, reason: str = "cancelled by request") -> None:
        """Cancel at the venue, book the trades it had, then CANCEL it with ``reason``.

        An order the venue no longer has open raises OrderStateError after the poll that
        brings its true state (filled, most likely); one whose create answer was lost is
        looked up first (REJECTED if the venue never got it, nothing to cancel then).
        """
        self._end_at_venue(order, ts, reason, "cancel")

    def _end_at_venue(self, order: Order, ts: pd.Timestamp, reason: str, verb: str) -> None:
        import ccxt

        self._check_held(order, verb)
        end = order.cancel if verb == "cancel" else order.expire
        if order.is_terminal:
            end(ts, reason)  # raises the order's own state error
        if order.order_id not in self._vid and not self._resolve(order, ts):
            self._prune()
            if order.is_terminal:
                return  # never placed: rejected just now
            raise OrderStateError(f"cannot {verb} order {order.order_id} yet: {self.name} could not be asked "
                                  f"whether it has it (its create answer was lost)")  # fmt: skip
        self._ending[order.order_id] = (verb, reason)
        try:
            self._call(f"cancel_order {order.order_id}",
                       lambda: self.exchange.cancel_order(self._vid[order.order_id], order.instrument.ticker))  # fmt: skip
        except ccxt.OrderNotFound as exc:
            self._poll(order.instrument)
            self._ending.pop(order.order_id, None)
            raise OrderStateError(f"cannot {verb} order {order.order_id}: {self.name} has it no longer open "
                                  f"({exc}); it is {order.status.name} here after polling") from None  # fmt: skip
        self._poll(order.instrument)
        if order.is_working:  # the venue's lists may lag its cancel answer
            self._publish([end(ts, reason)])
        self._ending.pop(order.order_id, None)
        self._prune()

    def modify(self, order: Order, ts: pd.Timestamp, *, quantity: float | None = None,
               limit_price: float | None = None, stop_price: float | None = None) -> Order:  # fmt: skip
        """Amend in place through ccxt's ``edit_order`` (same client id; the venue's id may
        change, Binance's cancel-replace gives a new one). A venue without it raises
        OrderStateError: a silent cancel-and-replace would lose the order's place and could
        fill twice. Not retried: after a lost answer the order is looked up by client id
        and the error raised."""
        import ccxt

        self._check_held(order, "modify")
        if not (getattr(self.exchange, "has", {}) or {}).get("editOrder"):
            raise OrderStateError(
                f"cannot modify order {order.order_id}: {self.name} cannot amend orders in place "
                f"(ccxt has['editOrder'] is false for {self.exchange.id}); cancel it and place a new order"
            )
        vid = self._vid.get(order.order_id)
        if vid is None or order.is_terminal:
            raise OrderStateError(f"cannot modify order {order.order_id}: status is {order.status.name} "
                                  f"and the venue has {'no id for it' if vid is None else 'ended it'}")  # fmt: skip
        amount, limit, stop = self._edit_terms(order, quantity, limit_price, stop_price)
        symbol, ex = order.instrument.ticker, self.exchange
        params: dict[str, Any] = {"clientOrderId": order.order_id} | ({"triggerPrice": stop} if stop is not None else {})
        try:
            answer = self._clean_call(lambda: ex.edit_order(vid, symbol, ORDER_TYPES[order.order_type][0],
                                                            order.side.name.lower(), amount, limit, params))  # fmt: skip
        except ccxt.NetworkError:
            found = self.find_order(order.order_id, order.instrument)
            if found is not None:
                self._vid[order.order_id], self._by_vid[found.venue_id] = found.venue_id, order
            raise
        event = order.modify(ts, quantity=amount, limit_price=limit,
                             stop_price=None if order.triggered else stop)  # fmt: skip
        new_vid = str((answer or {}).get("id") or vid)
        self._vid[order.order_id], self._by_vid[new_vid] = new_vid, order
        self._publish([event])
        self._prune()
        return order

    def _edit_terms(self, order: Order, quantity: float | None, limit_price: float | None,
                    stop_price: float | None) -> tuple[float, float | None, float | None]:  # fmt: skip
        """The amended terms on the venue's grid, checked before the venue sees them."""
        if (limit_price is not None and order.limit_price is None) or (stop_price is not None and order.stop_price is None):
            raise InvalidValueError(f"cannot modify order {order.order_id}: a {order.order_type.name} order takes "
                                    f"no {'limit_price' if limit_price is not None else 'stop_price'}")  # fmt: skip
        if stop_price is not None and order.triggered:
            raise OrderStateError(f"cannot modify stop_price of order {order.order_id}: its stop already triggered")
        ex, symbol = self.exchange, order.instrument.ticker
        amount = float(ex.amount_to_precision(symbol, quantity if quantity is not None else order.quantity))
        if amount < order.filled_quantity * (1 - _QTY_TOL):
            raise InvalidValueError(f"cannot modify order {order.order_id}: new quantity {amount:g} is below the "
                                    f"{order.filled_quantity:g} already filled")  # fmt: skip
        limit = limit_price if limit_price is not None else order.limit_price
        stop = stop_price if stop_price is not None else order.stop_price
        return (amount, None if limit is None else float(ex.price_to_precision(symbol, limit)),
                None if stop is None else float(ex.price_to_precision(symbol, stop)))  # fmt: skip

    # -- the order book and the fill stream -------------------------------------------
    @property
    def open_orders(self) -> list[Order]:
        return [o for o in self._open if not o.is_terminal]

    @property
    def has_open_orders(self) -> bool:
        """O(1): ``_open`` is pruned after every command (see SimulatedBroker)."""
        book = self._open
        return bool(book) and (not book[0].status.is_terminal or any(not o.status.is_terminal for o in book))

    def fills_since(self, cursor: int = 0) -> list[Fill]:
        """Fills number ``cursor``.. in booking order."""
        if cursor < 0:
            raise InvalidValueError(f"fill cursor must be >= 0, got cursor={cursor!r}")
        return self.fills[cursor:]

    def account(self) -> AccountState:
        """The venue's balances: cash = the portfolio currency's total, positions = the
        base assets' totals of the instruments known here, equity at the last closes seen
        (the portfolio's marks before the first bar)."""
        known = self._known()
        cash, positions = self._balances(known)
        marks = {i.symbol: self._last.get(i.ticker, self.portfolio.marks.get(i.symbol, 0.0)) for i in known}
        equity = cash + sum(q * marks.get(s, 0.0) for s, q in positions.items())
        return AccountState(cash=cash, equity=equity, currency=self.portfolio.currency, positions=positions)

    # -- polling ----------------------------------------------------------------------
    def on_bar(self, instrument: Instrument, bar: Bar, at_close: bool = False) -> list[Fill]:
        """Poll the venue for ``instrument``'s open orders: book each new trade once,
        follow the venue's status; return the new fills. Both passes (``at_close`` or
        not) poll: the venue fills on its own clock, not on the bar's."""
        self._last[instrument.ticker] = float(bar.close)
        return self._poll(instrument)

    def expire_all(self, ts: pd.Timestamp, reason: str = "session ended") -> None:
        """End the session: DAY orders (sent GTC, see the module notes) are cancelled at
        the venue, their trades booked, and EXPIRE; GTC, IOC and FOK orders are left alone."""
        for order in self.open_orders:
            if order.time_in_force is TimeInForce.DAY and order.is_working:
                try:
                    self._end_at_venue(order, ts, reason, "expire")
                except OrderStateError as exc:  # it filled at the venue first: nothing to expire
                    log.info("%s: %s", self.name, exc)
        self._prune()

    def _poll(self, instrument: Instrument) -> list[Fill]:
        symbol = instrument.ticker
        mine = [o for o in self._open if not o.is_terminal and o.instrument.ticker == symbol]
        for unsure in [o for o in mine if o.order_id not in self._vid]:
            self._resolve(unsure, self._now(unsure))
        working = [o for o in mine if o.is_working and o.order_id in self._vid]
        if not working:
            self._prune()
            return []
        since = min(self._since[o.order_id] for o in working)
        trades = self._call(f"fetch_my_trades {symbol}", lambda: self.exchange.fetch_my_trades(symbol, since=since))
        fills = [f for t in trades if (f := self._book(t, instrument)) is not None]
        self._sync_status([o for o in working if o.is_working], symbol)
        self._prune()
        return fills

    def _resolve(self, order: Order, ts: pd.Timestamp) -> bool:
        """Settle a PENDING order whose create answer was lost: adopt it if the venue has
        it, reject it if not; True when it is at the venue."""
        import ccxt

        try:
            found = self.find_order(order.order_id, order.instrument)
        except ccxt.NetworkError as exc:
            log.warning("%s: order %s still unsure: %s", self.name, order.order_id, exc)
            return False
        if found is None:
            why = self._unsure.pop(order.order_id, "no answer")
            self._publish([order.reject(ts, f"{self.name} has no order with client id {order.order_id}: "
                                            f"it was never placed (the create request failed: {why})")])  # fmt: skip
            return False
        self._attach(order, found, ts)
        return True

    def _book(self, trade: Mapping[str, Any], instrument: Instrument) -> Fill | None:
        """Book one venue trade to its order, once; None if it is not ours or not new.

        A trade the portfolio already holds (booked before a restart, the order rebuilt
        PENDING from the log) is applied to the order only, and not streamed again.
        """
        order = self._by_vid.get(str(trade.get("order")))
        fill_id = f"{instrument.ticker}:{trade.get('id')}"
        if order is None or fill_id in _fill_ids(order):
            return None
        if not order.is_working:  # ended here before the venue's trade showed: reconciliation's to see
            if fill_id not in self._orphans:
                self._orphans.add(fill_id)
                log.warning("%s: trade %s of order %s arrived after the order ended (%s); not booked",
                            self.name, fill_id, order.order_id, order.status.name)  # fmt: skip
            return None
        fill = self._fill(trade, order, fill_id)
        if fill.quantity > order.remaining_quantity * (1 + _QTY_TOL) + _QTY_TOL:
            raise OverfillError(f"{self.name}: trade {fill_id} of {fill.quantity:g} overfills order {order.order_id} "
                                f"({order.remaining_quantity:g} remain); nothing was booked")  # fmt: skip
        held = self._portfolio_holds(fill_id)
        events: list[Event] = [] if held else self.portfolio.apply(fill)  # first: a refusal changes nothing
        self._publish([order.fill(fill), *events])
        self._since[order.order_id] = max(self._since[order.order_id], int(trade.get("timestamp") or 0) - _SINCE_SLACK_MS)
        if held:
            return None
        self.fills.append(fill)
        return fill

    def _portfolio_holds(self, fill_id: str) -> bool:
        txs = self.portfolio.transactions
        if len(txs) > self._held_read:
            self._held_ids.update(t.fill_id for t in txs[self._held_read :])
            self._held_read = len(txs)
        return fill_id in self._held_ids

    def _fill(self, trade: Mapping[str, Any], order: Order, fill_id: str) -> Fill:
        inst = order.instrument
        m = self._market(inst.ticker)
        price = float(trade["price"])
        fees = trade.get("fees") or ([trade["fee"]] if trade.get("fee") else [])
        fee = fee_in_quote(fees, m.get("base", ""), inst.currency, price, lambda c, cur: self._convert(c, cur, inst.currency))
        return Fill(fill_id=fill_id, order_id=order.order_id, instrument=inst, side=order.side,
                    quantity=float(trade["amount"]), price=price, fee=fee, ts=_ts(trade.get("timestamp")))  # fmt: skip

    def _convert(self, cost: float, currency: str, quote: str) -> float:
        """A fee in a third currency at its ``<FEE>/<QUOTE>`` last price (0, warned, if none)."""
        pair = f"{currency}/{quote}"
        try:
            self._market(pair)
            last = self._call(f"fetch_ticker {pair}", lambda: self.exchange.fetch_ticker(pair)).get("last")
            return cost * float(last)
        except Exception as exc:  # noqa: BLE001 - any failure: the fee is booked as 0, and said so
            log.warning("%s: fee of %g %s not converted to %s (%s); booked as 0", self.name, cost, currency,
                        quote, type(exc).__name__)  # fmt: skip
            return 0.0

    def _sync_status(self, orders: Sequence[Order], symbol: str) -> None:
        """End the orders the venue has ended, once their trades are all booked."""
        if not orders:
            return
        open_now = self._call(f"fetch_open_orders {symbol}", lambda: self.exchange.fetch_open_orders(symbol))
        still = {str(o.get("id")) for o in open_now}
        for order in orders:
            vid = self._vid[order.order_id]
            if vid in still:
                continue
            found = venue_order(self._call(f"fetch_order {vid}", lambda v=vid: self.exchange.fetch_order(v, symbol)),
                                      order.instrument)  # fmt: skip
            self._end(order, found, self._now(order))

    def _end(self, order: Order, found: VenueOrder, ts: pd.Timestamp) -> None:
        if found.status == "open" or found.filled > order.filled_quantity * (1 + _QTY_TOL) + _QTY_TOL:
            return  # working, or trades not booked yet: a later poll ends it
        if not order.is_working:
            return
        verb, said = self._ending.get(order.order_id, ("", ""))
        if verb == "expire" or (found.status == "expired" and not said):
            self._publish([order.expire(ts, said or f"{self.name}: the venue expired order {found.venue_id}")])
        elif found.status in ("canceled", "rejected", "expired"):
            self._publish([order.cancel(ts, said or f"{self.name}: the venue reports order {found.venue_id} {found.status}")])
        elif found.status == "closed":
            self._publish([order.cancel(ts, f"{self.name}: the venue closed order {found.venue_id} with "
                                            f"{found.filled:g} of {order.quantity:g} filled")])  # fmt: skip

    # -- the Venue port: lookup, the venue's view, adoption ------------------------------
    def find_order(self, client_id: str, instrument: Instrument) -> VenueOrder | None:
        """The venue's order with client id ``client_id`` in ``instrument``'s market, or None.

        Asked of ``fetch_order`` by client id where ccxt supports it
        (:data:`LOOKUP_BY_CLIENT_ID`), else searched in the open and closed orders
        (``fetch_closed_orders``, or ``fetch_orders``: what the venue lists by default,
        its recent orders). A venue offering neither is refused when the broker is made:
        without a lookup a retry could trade twice.
        """
        import ccxt

        symbol, ex = instrument.ticker, self.exchange
        if not self._search:
            try:
                d = self._call(f"fetch_order by client id {client_id}",
                               lambda: ex.fetch_order(None, symbol, {"clientOrderId": client_id}))  # fmt: skip
            except ccxt.OrderNotFound:
                return None
            return venue_order(d, instrument)
        for method in self._search:
            for d in self._call(f"{method} {symbol}", lambda m=method: getattr(ex, m)(symbol)):
                if d.get("clientOrderId") == client_id:
                    return venue_order(d, instrument)
        return None

    def venue_state(self, instruments: Sequence[Instrument], since: pd.Timestamp | None = None) -> VenueState:
        """Open orders, trades since ``since`` (all the venue returns without one) and
        balances, for ``instruments``."""
        ms = None if since is None else int(pd.Timestamp(since).value // 1_000_000)
        open_orders: list[VenueOrder] = []
        fills: list[VenueFill] = []
        for inst in instruments:
            sym = inst.ticker
            open_orders += [venue_order(d, inst) for d in self._call(f"fetch_open_orders {sym}",
                                                                           lambda s=sym: self.exchange.fetch_open_orders(s))]  # fmt: skip
            trades = self._call(f"fetch_my_trades {sym}", lambda s=sym: self.exchange.fetch_my_trades(s, since=ms))
            fills += [self._venue_fill(t, inst) for t in trades]
        cash, positions = self._balances(instruments)
        return VenueState(ts=self._now(None), open_orders=open_orders, fills=fills, positions=positions,
                          cash=cash, currency=self.portfolio.currency)  # fmt: skip

    def adopt(self, order: Order, found: VenueOrder) -> None:
        """Take a PENDING order rebuilt from the event log into the book as the venue has
        it: accepted, then ended now if the venue ended it with nothing filled; filled
        quantity is booked by the next poll from the venue's trades."""
        if order.status is not OrderStatus.PENDING:
            raise InvalidValueError(f"only PENDING orders can be adopted; {order.order_id} is {order.status.name}")
        if found.client_id and found.client_id != order.order_id:
            raise InvalidValueError(f"cannot adopt {order.order_id} as the venue's order {found.venue_id}: "
                                    f"its client id is {found.client_id!r}")  # fmt: skip
        if not any(o is order for o in self.orders):
            self.orders.append(order)
            self._open.append(order)
        ts = self._now(order)
        self._attach(order, found, ts)
        if order.is_working and found.status != "open" and found.filled <= 0:
            self._end(order, found, ts)
        self._prune()

    # -- internals --------------------------------------------------------------------
    def _balances(self, instruments: Iterable[Instrument]) -> tuple[float, dict[str, float]]:
        bal = self._call("fetch_balance", self.exchange.fetch_balance)
        total = bal.get("total") or {}
        cash = float(total.get(self.portfolio.currency) or 0.0)
        positions: dict[str, float] = {}
        for inst in instruments:
            base = self._market(inst.ticker).get("base")
            qty = float(total.get(base) or 0.0)
            if qty:
                positions[inst.symbol] = qty
        return cash, positions

    def _known(self) -> list[Instrument]:
        seen = {o.instrument.symbol: o.instrument for o in self.orders}
        seen.update({i.symbol: i for i in self._instruments.values()})
        return list(seen.values())

    def _venue_fill(self, t: Mapping[str, Any], instrument: Instrument) -> VenueFill:
        vid = str(t.get("order"))
        order = self._by_vid.get(vid)
        client = order.order_id if order is not None else self._client_of(vid, instrument)
        m = self._market(instrument.ticker)
        price = float(t["price"])
        fees = t.get("fees") or ([t["fee"]] if t.get("fee") else [])
        fee = fee_in_quote(fees, m.get("base", ""), instrument.currency, price,
                           lambda c, cur: self._convert(c, cur, instrument.currency))  # fmt: skip
        return VenueFill(fill_id=f"{instrument.ticker}:{t.get('id')}", client_id=client, venue_order_id=vid,
                         symbol=instrument.symbol, side=Side.parse(str(t.get("side"))), quantity=float(t["amount"]),
                         price=price, fee=fee, ts=_ts(t.get("timestamp")))  # fmt: skip

    def _client_of(self, vid: str, instrument: Instrument) -> str:
        """The client id of a venue order this broker does not hold (after a restart)."""
        import ccxt

        if vid not in self._clients:
            try:
                d = self._call(f"fetch_order {vid}", lambda: self.exchange.fetch_order(vid, instrument.ticker))
            except ccxt.BaseError:
                return ""
            self._clients[vid] = str(d.get("clientOrderId") or "")
        return self._clients[vid]

    def _check_held(self, order: Order, verb: str) -> None:
        if order.is_terminal or any(o is order for o in self._open):
            return
        raise OrderStateError(f"cannot {verb} order {order.order_id}: it is not in this broker's book "
                              f"(submitted to another broker, or never submitted)")  # fmt: skip

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """A ccxt call retried on transient errors; every error it raises is scrubbed."""
        return retry(lambda: self._clean_call(fn), transient=self._transient, what=f"{self.name} {what}",
                     attempts=self.attempts, sleep=self._sleep)  # fmt: skip

    def _clean_call(self, fn: Callable[[], Any]) -> Any:
        import ccxt

        try:
            return fn()
        except ccxt.BaseError as exc:
            raise type(exc)(self._scrub(str(exc))) from None

    def _scrub(self, text: str) -> str:
        return scrub(text, self.exchange)

    def _now(self, order: Order | None) -> pd.Timestamp:
        """Now, UTC (never before ``order``'s placement, in its tz-awareness: events stay in order)."""
        now = self._clock() if self._clock is not None else pd.Timestamp(self._now_ms(), unit="ms", tz="UTC")
        if order is None:
            return now
        placed = pd.Timestamp(order.ts)
        if placed.tzinfo is None:
            now = now.tz_convert("UTC").tz_localize(None) if now.tzinfo is not None else now
        elif now.tzinfo is None:
            now = now.tz_localize("UTC")
        return max(now, placed)

    def _now_ms(self) -> int:
        if self._clock is not None:
            return int(self._clock().value // 1_000_000)
        return int(self.exchange.milliseconds())

    def _prune(self) -> None:
        self._open = [o for o in self._open if not o.is_terminal]

    def _publish(self, events: Iterable[Event]) -> None:
        if self.bus is not None:
            for event in events:
                self.bus.publish(event)


def _exchange(exchange_id: str) -> Any:
    """A ccxt instance by id, keys from ``CCXT_<ID>_API_KEY``/``_SECRET``/``_PASSWORD``."""
    import ccxt

    ex_id = exchange_id.strip().lower()
    if ex_id not in ccxt.exchanges:
        raise ParameterError(f"CcxtBroker: unknown ccxt exchange {exchange_id!r}; see ccxt.exchanges")
    config: dict[str, Any] = {"enableRateLimit": True}
    for field, env in (("apiKey", "API_KEY"), ("secret", "SECRET"), ("password", "PASSWORD")):
        value = os.environ.get(f"CCXT_{ex_id.upper()}_{env}")
        if value:
            config[field] = value
    return getattr(ccxt, ex_id)(config)


def _search_methods(exchange: Any, name: str) -> tuple[str, ...]:
    """How ``find_order`` finds an order by client id: () for ``fetch_order`` by client id,
    else the ccxt methods whose lists it searches; a ParameterError when there is no way."""
    if exchange.id in LOOKUP_BY_CLIENT_ID:
        return ()
    has = getattr(exchange, "has", {}) or {}
    closed = "fetch_closed_orders" if has.get("fetchClosedOrders") else "fetch_orders" if has.get("fetchOrders") else ""
    if not closed or not has.get("fetchOpenOrders"):
        raise ParameterError(f"CcxtBroker: {name} offers no way to look an order up by its client id (fetchOrder by "
                             f"clientOrderId, or fetchOpenOrders with fetchClosedOrders/fetchOrders), so a retry "
                             f"after a lost answer could trade twice")  # fmt: skip
    return ("fetch_open_orders", closed)


def _sandbox(exchange: Any) -> None:
    """Switch to the sandbox, or say the exchange has none (ccxt raises a plain TypeError
    on many of those, NotSupported on the others)."""
    import ccxt

    try:
        exchange.set_sandbox_mode(True)
    except (TypeError, ccxt.NotSupported) as exc:
        raise ParameterError(
            f"CcxtBroker: {exchange.id} has no sandbox/testnet in ccxt (set_sandbox_mode raised "
            f"{type(exc).__name__}); pass sandbox=False to trade on it for real"
        ) from None


def _bounds(limits: Mapping[str, Any], key: str) -> tuple[float | None, float | None]:
    entry = limits.get(key) or {}
    lo, hi = entry.get("min"), entry.get("max")
    return (None if lo is None else float(lo)), (None if hi is None else float(hi))


def _fill_ids(order: Order) -> set[str]:
    return {e.fill_id for e in order.events if isinstance(e, OrderFilled | OrderPartiallyFilled)}


def _ts(ms: Any) -> pd.Timestamp:
    return pd.Timestamp(int(ms or 0), unit="ms", tz="UTC")
