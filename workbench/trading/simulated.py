"""A simulated broker that matches orders against OHLCV bars.

Matching rules (one bar at a time; ``bar.ts`` is the bar's label, see
:mod:`workbench.market`):

- **Eligibility.** An order placed on signal bar *t* first works on bar *t+1*. The only
  exception is opt-in: with ``FillTiming.SIGNAL_CLOSE`` a *market* order fills at the
  close of its own signal bar.
- **Market:** at the eligible bar's open.
- **Limit** buy at L: at the open if the bar opens at or below L (gap through), else at L
  if the low reaches L. Sells mirror this.
- **Stop** buy at S: at the open if the bar opens at or above S (gap through), else at S
  if the high reaches S; it then fills like a market order. Sells mirror this.
- **Stop-limit**: the stop triggers as above; a stop touched at the open then works as a
  limit on the same bar; a stop touched intrabar fills at S only if S is within the
  limit, otherwise it rests as a limit from the next bar (the path inside the bar is
  unknown, so no fill is assumed).
- **Prices** are then moved by the slippage model, never beyond the limit price, and
  clamped into [low, high]: a fill is never outside the bar's range.
- **Volume cap:** the slippage model's ``max_quantity(bar)`` bounds what all orders in an
  instrument can fill on one bar; the rest stays working (partial fills).
- **Time in force:** DAY expires when a bar of a later UTC date arrives; IOC cancels what
  its first eligible bar did not fill; FOK fills completely on its first eligible bar or
  is cancelled whole; GTC works until filled or cancelled.
- **Buying power:** a PENDING order is checked when it first becomes eligible (at its
  expected fill price, slippage included) and REJECTED with the reason if the portfolio cannot afford it; a
  working order that can no longer be afforded when it would fill is CANCELLED with the
  reason. Orders are never resized.
- **Currency:** an order in an instrument quoted in another currency than the
  portfolio's is REJECTED at acceptance, the reason naming both (no implicit conversion).
- **Booking:** a fill is booked to the portfolio *before* it is applied to the order, so
  a portfolio that refuses it (a fill id it already holds) leaves the order, the broker's
  fills and the volume used exactly as they were. Two brokers booking into one portfolio
  need distinct ``id_prefix``es: each numbers its orders ``O-1``.. and fills ``F-1``..
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from workbench.errors import InvalidValueError, OrderStateError
from workbench.trading.broker import AccountState, PreTradeCheck, place_order
from workbench.trading.costs import (
    Bar,
    CommissionModel,
    SlippageModel,
    commission_from,
    fill_price,
    slippage_from,
)
from workbench.trading.enums import FillTiming, OrderStatus, OrderType, Side, TimeInForce
from workbench.trading.events import Event, EventBus
from workbench.trading.frames import fills_frame, orders_frame
from workbench.trading.orders import Fill, Order
from workbench.trading.portfolio import Portfolio
from workbench.trading.values import Instrument

__all__ = ["SimulatedBroker"]


class SimulatedBroker:
    """Matches orders against bars and books fills to a :class:`Portfolio`.

    Implements the :class:`~workbench.trading.broker.Broker` port.

    Parameters
    ----------
    portfolio : Portfolio
    commission : CommissionModel
    slippage : SlippageModel
    fill_timing : FillTiming
        NEXT_OPEN (default) or SIGNAL_CLOSE for market orders.
    bus : EventBus, optional
        Receives every order, position and trade event as it happens.
    pre_trade_check : callable, optional
        ``check(order, portfolio, expected_price) -> reason`` runs before the buying-power
        check when an order first becomes eligible; a non-empty reason REJECTS the order
        with "pre-trade check: <reason>". Risk limits plug in here.
    id_prefix : str, keyword-only
        Prefixes this broker's order and fill ids (``"A-"`` gives ``A-O-1``, ``A-F-1``);
        empty by default, so ids stay ``O-1`` and ``F-1``. Brokers sharing a portfolio
        need distinct prefixes, or the second ``F-1`` is refused as a duplicate.

    ``commission`` and ``slippage`` are read by :func:`~workbench.trading.costs.commission_from`
    and :func:`~workbench.trading.costs.slippage_from`: a class instead of an instance is a
    ParameterError here, not a TypeError at the first fill.
    """

    def __init__(
        self,
        portfolio: Portfolio,
        commission: CommissionModel | None = None,
        slippage: SlippageModel | None = None,
        fill_timing: FillTiming | str = FillTiming.NEXT_OPEN,
        bus: EventBus | None = None,
        pre_trade_check: PreTradeCheck | None = None,
        *,
        id_prefix: str = "",
    ) -> None:
        if not isinstance(id_prefix, str):
            raise InvalidValueError(f"id_prefix must be a string, got id_prefix={id_prefix!r}")
        self.portfolio = portfolio
        self.pre_trade_check = pre_trade_check
        self.commission = commission_from(commission)
        self.slippage = slippage_from(slippage)
        self.id_prefix = id_prefix
        self._order_prefix, self._fill_prefix = f"{id_prefix}O-", f"{id_prefix}F-"
        self.fill_timing = FillTiming.parse(fill_timing)
        self.bus = bus
        self.orders: list[Order] = []
        self.fills: list[Fill] = []
        self._open: list[Order] = []  # pruned of terminal orders after every command
        self._session: dict[str, object] = {}  # order_id -> UTC date of first eligible bar
        self._used: dict[tuple[str, object], float] = {}  # (symbol, bar ts) -> volume used
        self._n_orders = 0

    # -- order entry ------------------------------------------------------------------
    def next_order_id(self) -> str:
        self._n_orders += 1
        return f"{self._order_prefix}{self._n_orders}"

    def submit(self, order: Order) -> Order:
        if order.status is not OrderStatus.PENDING:
            raise InvalidValueError(
                f"only PENDING orders can be submitted; {order.order_id} is {order.status.name}"
            )
        self.orders.append(order)
        self._open.append(order)
        self._publish(order.events)
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
        """Create and submit an order placed on signal bar ``ts``."""
        return place_order(self, instrument, side, quantity, ts, order_type, time_in_force, limit_price, stop_price, tag)

    def cancel(self, order: Order, ts: pd.Timestamp, reason: str = "cancelled by request") -> None:
        self._check_held(order, "cancel")
        self._publish([order.cancel(ts, reason)])
        self._prune()

    def modify(
        self,
        order: Order,
        ts: pd.Timestamp,
        *,
        quantity: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
    ) -> Order:
        """Amend ``order`` in place (same id); it keeps its place, session and eligibility.

        A raised quantity is checked for buying power when it would fill, like any fill.
        Only an order in this broker's book can be amended, and not before it was placed.
        """
        self._check_held(order, "modify")
        event = order.modify(ts, quantity=quantity, limit_price=limit_price, stop_price=stop_price)
        self._publish([event])
        self._prune()  # cut down to its filled quantity, the order is complete
        return order

    # -- the order book and the fill stream -------------------------------------------
    @property
    def open_orders(self) -> list[Order]:
        return [o for o in self._open if not o.is_terminal]

    @property
    def has_open_orders(self) -> bool:
        """O(1): ``_open`` is pruned after every command, so the first order answers; only
        orders ended behind the broker's back (``order.cancel`` directly) make it look on."""
        book = self._open
        if not book:
            return False
        return not book[0].status.is_terminal or any(not o.status.is_terminal for o in book)

    def fills_since(self, cursor: int = 0) -> list[Fill]:
        """Fills number ``cursor``.. in booking order (``fills_since(n)`` after reading n)."""
        if cursor < 0:
            raise InvalidValueError(f"fill cursor must be >= 0, got cursor={cursor!r}")
        return self.fills[cursor:]

    def account(self) -> AccountState:
        p = self.portfolio
        return AccountState(
            cash=p.cash,
            equity=p.equity,
            currency=p.currency,
            positions={s: pos.quantity for s, pos in p.positions.items() if not pos.is_flat},
        )

    # -- matching ---------------------------------------------------------------------
    def on_bar(self, instrument: Instrument, bar: Bar, at_close: bool = False) -> list[Fill]:
        """Match this instrument's open orders against ``bar``; return the new fills.

        ``at_close=True`` is the SIGNAL_CLOSE pass: only market orders placed on this very
        bar fill, at its close. Calling ``on_bar`` again for the same bar is safe: the
        volume cap is shared and orders that could not fill still cannot.
        """
        if bar.low > bar.high:
            raise InvalidValueError(f"bar at {bar.ts} has low {bar.low} > high {bar.high}")
        fills: list[Fill] = []
        symbol = instrument.symbol
        for order in list(self._open):
            if order.is_terminal or order.instrument.symbol != symbol:
                continue
            if at_close:
                if order.order_type is OrderType.MARKET and order.ts == bar.ts:
                    self._match(order, bar, bar.close, fills)
                continue
            if not order.ts < bar.ts:
                continue  # never on or before the signal bar
            first = False
            if order.time_in_force is not TimeInForce.GTC:  # sessions matter to DAY/IOC/FOK only
                today = _date(bar.ts)
                session = self._session.setdefault(order.order_id, today)
                if order.time_in_force is TimeInForce.DAY and today != session:
                    self._publish([order.expire(bar.ts, f"DAY order not filled in session {session}")])
                    continue
                first = today == session and order.status is OrderStatus.PENDING
            if order.triggered:
                price, triggers = _working_price(order, bar), False
            else:
                price, triggers = _stop_price(order, bar)
            if order.status is OrderStatus.PENDING:
                ref = price if price is not None else _reference_price(order)
                if not self._accept(order, bar, ref):
                    continue
            if triggers:
                self._publish([order.trigger(bar.ts)])
            if price is not None:
                self._match(order, bar, price, fills)
            if first and order.is_working and order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
                what = "IOC remainder" if order.filled_quantity > 0 else f"{order.time_in_force.name} order"
                self._publish([order.cancel(bar.ts, f"{what} not filled on its first bar")])
        self._prune()
        return fills

    def expire_all(self, ts: pd.Timestamp, reason: str = "backtest ended") -> None:
        """End of data: DAY orders expire; GTC orders stay working (reported as such)."""
        for order in self.open_orders:
            if order.time_in_force is TimeInForce.DAY and order.is_working:
                self._publish([order.expire(ts, reason)])
        self._prune()

    # -- internals --------------------------------------------------------------------
    def _check_held(self, order: Order, verb: str) -> None:
        """Refuse to change an open order this broker does not hold: another broker's
        order (same id ``O-1``, other book) would change behind that broker's back. A
        terminal order is left to the order's own state error."""
        if order.is_terminal or any(o is order for o in self._open):
            return
        raise OrderStateError(
            f"cannot {verb} order {order.order_id}: it is not in this broker's book "
            f"(submitted to another broker, or never submitted)"
        )

    def _accept(self, order: Order, bar: Bar, ref_price: float) -> bool:
        """Accept or reject a PENDING order when it first becomes eligible; True when it is
        working afterwards (a subscriber of OrderAccepted may have ended it)."""
        if order.instrument.currency != self.portfolio.currency:
            self._publish([order.reject(bar.ts, self._currency_refusal(order))])
            return False
        qty = order.quantity
        # checked at the price it would fill at: slippage applied, clamped into the bar
        ref_price = fill_price(self.slippage, order.side, ref_price, qty, bar)
        fee = self.commission.calculate(qty, ref_price, order.instrument)
        if self.pre_trade_check is not None:
            veto = self.pre_trade_check(order, self.portfolio, ref_price)
            if veto:
                self._publish([order.reject(bar.ts, f"pre-trade check: {veto}")])
                return False
        why = self.portfolio.check_fill(order.instrument, order.side.sign * qty, ref_price, fee)
        if why:
            self._publish([order.reject(bar.ts, why)])
            return False
        self._publish([order.accept(bar.ts)])
        return self.bus is None or order.is_working  # only a subscriber can have ended it

    def _currency_refusal(self, order: Order) -> str:
        """Why the portfolio cannot book this order's fills: they are in another currency."""
        have, want = order.instrument.currency, self.portfolio.currency
        return (
            f"currency mismatch: {order.instrument.symbol} trades in {have}, this portfolio "
            f"books only {want} (convert explicitly, or trade it from a {have} portfolio)"
        )

    def _match(self, order: Order, bar: Bar, price: float, fills: list[Fill]) -> None:
        inst = order.instrument
        if order.status is OrderStatus.PENDING and not self._accept(order, bar, price):
            return  # SIGNAL_CLOSE pass: rejected
        if self.bus is not None and not order.is_working:
            return  # ended by a subscriber of its acceptance or trigger
        key = (inst.symbol, bar.ts)
        cap = self.slippage.max_quantity(bar)
        room = cap - self._used.get(key, 0.0) if math.isfinite(cap) else math.inf
        qty = min(order.remaining_quantity, room)
        if qty < order.remaining_quantity:
            qty = inst.round_lots(max(qty, 0.0))
        if order.time_in_force is TimeInForce.FOK and qty < order.remaining_quantity:
            self._publish(
                [order.cancel(bar.ts, f"FOK: only {qty:g} of {order.remaining_quantity:g} fillable")]
            )
            return
        if qty <= 0:
            return
        px = fill_price(self.slippage, order.side, price, qty, bar, order.limit_price)
        fee = self.commission.calculate(qty, px, inst)
        why = self.portfolio.check_fill(inst, order.side.sign * qty, px, fee)
        if why:
            self._publish([order.cancel(bar.ts, why)])
            return
        fill = Fill(
            fill_id=f"{self._fill_prefix}{len(self.fills) + 1}",
            order_id=order.order_id,
            instrument=inst,
            side=order.side,
            quantity=qty,
            price=px,
            fee=fee,
            ts=bar.ts,
        )
        events = self.portfolio.apply(fill)  # first: a refusal (raised) must change nothing
        order_event = order.fill(fill)  # cannot refuse: the order is working, qty <= remaining
        self._used[key] = self._used.get(key, 0.0) + qty
        self.fills.append(fill)
        fills.append(fill)
        self._publish([order_event, *events])

    def _prune(self) -> None:
        self._open = [o for o in self._open if not o.is_terminal]
        if len(self._used) > 64:
            self._used = dict(list(self._used.items())[-8:])

    def _publish(self, events: Iterable[Event]) -> None:
        if self.bus is not None:
            for event in events:
                self.bus.publish(event)

    # -- frames -----------------------------------------------------------------------
    def orders_frame(self) -> pd.DataFrame:
        return orders_frame(self.orders)

    def fills_frame(self) -> pd.DataFrame:
        return fills_frame(self.fills)


def _date(ts: object) -> object:
    return pd.Timestamp(ts).date()


def _stop_price(order: Order, bar: Bar) -> tuple[float | None, bool]:
    """For a stop not yet triggered: the price this bar would execute it at before slippage
    (None: no fill on this bar) and whether its stop triggers on this bar. Pure: the caller
    publishes the trigger once the order is accepted."""
    buy = order.side is Side.BUY
    stop = order.stop_price
    assert stop is not None
    if (bar.open >= stop) if buy else (bar.open <= stop):  # gapped through at the open
        if order.order_type is OrderType.STOP:
            return bar.open, True
        return _limit_price(order.limit_price, bar, buy), True  # type: ignore[arg-type]
    if (bar.high >= stop) if buy else (bar.low <= stop):  # touched intrabar
        if order.order_type is OrderType.STOP:
            return stop, True
        limit = order.limit_price
        assert limit is not None
        return (stop if ((stop <= limit) if buy else (stop >= limit)) else None), True
    return None, False


def _working_price(order: Order, bar: Bar) -> float | None:
    """Market, limit or triggered stop: the price this bar would execute it at, or None."""
    if order.order_type is OrderType.MARKET or order.order_type is OrderType.STOP:
        return bar.open  # a triggered stop works as a market order
    return _limit_price(order.limit_price, bar, order.side is Side.BUY)  # type: ignore[arg-type]


def _limit_price(limit: float, bar: Bar, buy: bool) -> float | None:
    if buy:
        if bar.open <= limit:
            return bar.open
        return limit if bar.low <= limit else None
    if bar.open >= limit:
        return bar.open
    return limit if bar.high >= limit else None


def _reference_price(order: Order) -> float:
    if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        return order.limit_price  # type: ignore[return-value]
    return order.stop_price  # type: ignore[return-value]
