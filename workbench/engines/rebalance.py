"""What the event-driven loops share: sizing an order for a target exposure, the equity
curve from snapshots, and pausing the garbage collector around engine-only code.

Every function here talks to the broker through the :class:`~workbench.trading.broker.Broker`
port only, so a paper or live broker can sit where the simulated one does.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.risk.gate import RiskGate
from workbench.risk.monitor import RiskMonitor
from workbench.risk.profile import DrawdownAction, RiskProfile
from workbench.trading.accounts import MarginAccount
from workbench.trading.broker import Broker
from workbench.trading.costs import Bar, CommissionModel, SlippageModel, fill_price
from workbench.trading.enums import OrderType, Side
from workbench.trading.events import EventBus
from workbench.trading.orders import Order
from workbench.trading.portfolio import Portfolio
from workbench.trading.sizing import Sizer
from workbench.trading.values import Instrument

__all__ = ["EquityWatch", "MarginWatch", "Liquidation", "run_liquidation", "guarded", "gc_paused", "frozen_heap", "curves", "fill_cost", "rebalance_to_target", "reversal_budget", "Costs"]


class Costs:
    """The two cost models an engine prices orders with (the broker applies the same)."""

    __slots__ = ("commission", "slippage")

    def __init__(self, commission: CommissionModel, slippage: SlippageModel) -> None:
        self.commission = commission
        self.slippage = slippage


class EquityWatch:
    """Feeds a :class:`~workbench.risk.monitor.RiskMonitor` the equity at every close, also
    on the bars an engine skips: between two visits cash and quantities are constant, so
    the closes since the last update give the equity exactly, one numpy slice per span."""

    __slots__ = ("monitor", "idx", "close", "mult", "last", "c1", "m1")

    def __init__(self, monitor: RiskMonitor, idx: pd.Index, close: np.ndarray, mult: np.ndarray) -> None:
        self.monitor, self.idx, self.close, self.mult, self.last = monitor, idx, close, mult, 0
        single = close.shape[1] == 1
        self.c1 = np.ascontiguousarray(close[:, 0]) if single else None  # one instrument: 1-D, scalars
        self.m1 = float(mult[0]) if single else 0.0

    def upto(self, i: int, cash: float, qty: np.ndarray | float) -> None:
        """Observe the closes ``last .. i`` held with ``cash`` and ``qty`` (constant there)."""
        if i < self.last:
            return
        monitor = self.monitor
        if monitor.watching:
            if self.c1 is not None:  # equity is monotone in the close: its extremes bound the span
                v = float(qty) * self.m1
                seg = self.c1[self.last : i + 1]
                if v == 0.0:
                    hi = lo = cash
                else:
                    hi, lo = cash + v * float(seg.max()), cash + v * float(seg.min())
                if not monitor.clear(max(hi, lo), min(hi, lo)):
                    monitor.observe(self.idx, cash + seg * v, self.last)
            else:
                value = np.asarray(qty, dtype="float64") * self.mult
                monitor.observe(self.idx, cash + self.close[self.last : i + 1] @ value, self.last)
        self.last = i + 1

    @property
    def flattens(self) -> bool:
        """The drawdown rule closes every position (``DrawdownAction.FLATTEN``)."""
        profile = self.monitor.profile
        return profile.max_drawdown is not None and profile.drawdown_action is DrawdownAction.FLATTEN

    def flatten_close(self, i: int, cash: float, qty: np.ndarray | float) -> int | None:
        """Observe the closes up to ``i`` (as :meth:`upto`); the close at which a FLATTEN
        drawdown rule fired, or None. The engine then liquidates from the next bar's open
        (:func:`run_liquidation` with ``cause="drawdown"``) and stops."""
        self.upto(i, cash, qty)
        return self.monitor.flatten_close


def guarded(
    broker: Broker, portfolio: Portfolio, risk: RiskProfile | None, bus: EventBus | None,
    idx: pd.Index, close: np.ndarray, mult: np.ndarray, symbols: Sequence[str] = (),
) -> tuple[Broker, EquityWatch | None]:  # fmt: skip
    """``broker`` behind a :class:`~workbench.risk.gate.RiskGate` when there is a profile
    (orders checked at the latest mark: the engines mark the price they act at first),
    with the watch that feeds the drawdown rule; else ``broker`` itself. ``symbols`` name
    the columns of ``close``: the limits that need price history (``MaxVaR``) are bound
    to it here, once per run (without them such a limit denies every entry)."""
    if risk is None:
        return broker, None
    monitor = RiskMonitor(risk, bus)
    if symbols:
        monitor.bind(idx, close, symbols)
    marks = portfolio.marks
    gate = RiskGate(broker, portfolio, monitor, lambda inst: marks.get(inst.symbol, math.nan), bus)
    return gate, EquityWatch(monitor, idx, close, mult)


@contextmanager
def gc_paused(enabled: bool = True) -> Iterator[None]:
    """Pause the cyclic garbage collector while an engine loop allocates many small acyclic
    objects (orders, fills, events): its generation scans cost ~25% of a run. Reference
    counting still frees everything. Callers pass ``enabled=False`` whenever user code runs
    inside the loop (a bus subscriber, a pre-trade check, a custom sizer, a per-bar
    callback), so a long-lived Jupyter kernel never runs user code with the collector off.
    The previous state is restored on exit, even on error."""
    was = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Hide the objects alive before a run from the cyclic collector while it runs.

    The collector stays *on* (user code runs as usual, cyclic garbage made during the run
    is collected), but a full collection then scans only what the run allocated: with
    pandas (and vectorbt) loaded a full scan of the heap costs 0.1-0.6 s, and a long run
    triggers several. Sweeps need it too: vectorbt's Portfolio sits in reference cycles,
    so each chunk is freed only by a full collection (see ``research.optimize``).
    Everything is unfrozen at the end, even on error; a caller's own ``gc.freeze()`` is
    left alone.
    """
    mine = gc.get_freeze_count() == 0
    if mine:
        gc.freeze()
    try:
        yield
    finally:
        if mine:
            gc.unfreeze()


def curves(
    idx: pd.Index, close: np.ndarray, instrument: Instrument, cash: float,
    snap_i: list[int], snap_cash: list[float], snap_qty: list[float],
) -> tuple[pd.Series, pd.Series]:  # fmt: skip
    """Equity and position at every close from the (bar, cash, quantity) snapshots taken on
    the bars an engine visited: between them cash and quantity are constant."""
    n = len(idx)
    qty = np.zeros(n)
    cash_arr = np.full(n, float(cash))
    if snap_i:
        pos = np.searchsorted(np.asarray(snap_i), np.arange(n), side="right") - 1
        seen = pos >= 0
        qty[seen] = np.asarray(snap_qty)[pos[seen]]
        cash_arr[seen] = np.asarray(snap_cash)[pos[seen]]
    equity = pd.Series(cash_arr + qty * close * instrument.multiplier, index=idx, name="equity")
    return equity, pd.Series(qty, index=idx, name=instrument.symbol)


def fill_cost(costs: Costs, inst: Instrument, bar: Bar, side: Side, ref: float) -> Callable[[float], float]:
    """``cost(q)``: cash a fill of ``q`` at reference ``ref`` moves, as the broker would
    price it (:func:`~workbench.trading.costs.fill_price`, plus commission)."""

    def cost(q: float) -> float:
        px = fill_price(costs.slippage, side, ref, q, bar)
        return q * px * inst.multiplier + costs.commission.calculate(q, px, inst)

    return cost


def reversal_budget(
    cash: float, costs: Costs, inst: Instrument, bar: Bar, side: Side, ref: float, q0: float
) -> tuple[float, Callable[[float], float]]:
    """(budget, cost) to size the new side of a reversal of ``q0``, done in one order.

    The broker fills the whole order, ``|q0| + q``, at one price with one commission, so
    the new side may use what closing leaves (cash + q0 × price) and must pay the fee of
    the *whole* order: a fixed fee per order is charged once, not once per leg. For a cover
    and a new long the cash rule (cash after >= 0) and for a sale into a short the
    exposure rule (short value <= equity) both come to ``cost(q) <= budget``.
    """
    m = inst.multiplier
    px0 = fill_price(costs.slippage, side, ref, abs(q0), bar)

    def cost(q: float) -> float:
        total = abs(q0) + q
        px = fill_price(costs.slippage, side, ref, total, bar)
        return q * px * m + costs.commission.calculate(total, px, inst) + q0 * (px0 - px) * m

    return cash + q0 * px0 * m, cost


def rebalance_to_target(
    broker: Broker,
    portfolio: Portfolio,
    costs: Costs,
    instrument: Instrument,
    bar: Bar,
    want: float,
    signal_ts: pd.Timestamp,
    ref: float,
    sizer: Sizer,
    close_mode: bool,
    *,
    signal_bar: int,
) -> None:
    """Move the position in ``instrument`` to exposure ``want`` (+1, 0, -1) with one market
    order sized at ``ref`` (a reversal closes and reopens in one order), superseding any
    order still working in that instrument. ``signal_bar`` is the row of ``signal_ts`` in
    the run's bars: a sizer bound to them (``size_at``) sizes from what it knew there."""
    for order in broker.open_orders:
        if order.instrument.symbol == instrument.symbol:
            broker.cancel(order, bar.ts, f"superseded by the signal of {signal_ts}")
    placed = order_for_target(portfolio.quantity(instrument), portfolio.cash, costs, instrument, bar, want, ref, sizer,
                              signal_bar)  # fmt: skip
    if placed is not None:
        side, total, tag = placed
        broker.place(instrument, side, total, signal_ts, OrderType.MARKET, tag=tag)
        broker.on_bar(instrument, bar, at_close=close_mode)


def order_for_target(q0: float, cash: float, costs: Costs, instrument: Instrument, bar: Bar, want: float,
                     ref: float, sizer: Sizer, s: int = -1) -> tuple[Side, float, str] | None:  # fmt: skip
    """(side, quantity, tag) of the one market order that moves a position of ``q0`` to
    exposure ``want`` (+1, 0, -1) at ``ref``, or None when there is nothing to do. The rule
    both engines decide by (:func:`rebalance_to_target` places it; the vectorized engine's
    risk replay checks it): a reversal is one order whose new side may use what closing
    leaves; ``s`` is the signal bar, for a sizer bound to the run's bars."""
    if q0 != 0 and np.sign(q0) == want:
        return None
    size_at = getattr(sizer, "size_at", None)  # once per order, never per bar
    if size_at is not None:
        sizer = _AtBar(size_at, s)
    side = Side.BUY if (want > 0 or (want == 0 and q0 < 0)) else Side.SELL
    qty = 0.0
    if want != 0 and q0 == 0:  # from flat: equity is the cash
        qty = sizer.size(ref, cash, cash, instrument, fill_cost(costs, instrument, bar, side, ref))
    elif want != 0:
        budget, cost = reversal_budget(cash, costs, instrument, bar, side, ref, q0)
        qty = sizer.size(ref, budget, budget, instrument, cost)
    total = abs(q0) + qty
    if total <= 0:
        return None
    return side, total, "entry" if q0 == 0 else ("exit" if qty == 0 else "reverse")


@dataclass(frozen=True, slots=True)
class _AtBar:
    """A bound sizer seen as a plain Sizer for one signal bar."""

    size_at: Callable[..., float]
    s: int

    def size(self, price: float, equity: float, cash: float, instrument: Instrument, cost: Any) -> float:
        return self.size_at(self.s, price, equity, cash, instrument, cost)


class MarginWatch:
    """The margin rule, checked at every close (skipped bars included, one numpy slice per
    span of constant holdings).

    Each column i has a maintenance rate mm_i (``MarginAccount.rates``: the instrument's
    own ``per_instrument`` rate or the account's ``maintenance_margin``; 0 for other
    accounts). A margin call comes at the first close where

        equity < Σ_i mm_i × |v_i|,  v_i = quantity_i × close_i × multiplier_i,

    or where equity is at or below zero while holding anything. With one rate for every
    column this is the old ``maintenance × gross exposure``, computed as before. Given no
    ``instruments`` to name the columns, each column takes the highest rate the account
    names (a call may come early, never late).

    The liquidation rule (:class:`Liquidation` does the closing): *which* positions: all of
    them, and every working order is cancelled; *at what price*: market orders at the open
    of the bar after the call, filled under the run's commission and slippage models (a
    gap can take equity below zero, but never silently; a volume cap leaves a rest that is
    followed bar by bar); *after*: the account is HALTED and trades no more. A long-only
    cash account that keeps its cash >= 0 cannot go below zero, so it is not scanned
    (nothing to pay for on the hot path).
    """

    __slots__ = ("maintenance", "rates", "uniform", "idx", "close", "mult", "monitor", "called")

    def __init__(self, account: object, idx: pd.Index, close: np.ndarray, mult: np.ndarray,
                 monitor: RiskMonitor | None, instruments: Sequence[Instrument] | None = None) -> None:  # fmt: skip
        self.rates = _maintenance_rates(account, close.shape[1], instruments)
        #: the highest column rate: the rate itself with one column, 0 when no column has one
        self.maintenance = float(self.rates.max()) if len(self.rates) else 0.0
        self.uniform = bool((self.rates == self.maintenance).all())
        self.idx, self.close, self.mult, self.monitor = idx, close, mult, monitor
        self.called = False

    def scan(self, a: int, b: int, cash: float, qty: np.ndarray | float) -> int | None:
        """The first bar in ``a .. b-1`` whose close makes a margin call, or None."""
        if isinstance(qty, float) and (qty == 0 or (self.maintenance == 0 and cash >= 0 and qty > 0)):
            return None  # the hot path of a long-only cash run: no numpy at all
        q = np.atleast_1d(np.asarray(qty, dtype="float64"))
        if b <= a or not q.any() or (self.maintenance == 0 and cash >= 0 and (q >= 0).all()):
            return None
        values = self.close[a:b] * (q * self.mult)
        equity = cash + values.sum(axis=1)
        need = self.maintenance * np.abs(values).sum(axis=1) if self.uniform else np.abs(values) @ self.rates
        hit = np.flatnonzero((equity < need) | (equity <= 0))
        return a + int(hit[0]) if len(hit) else None

    def call(self, j: int, cash: float, qty: np.ndarray | float) -> RiskMonitor:
        """Record the margin call at close ``j``; the run's monitor (made if there is none).

        The event's ``requirement`` is Σ_i mm_i × |v_i|; its ``maintenance`` is the rate
        that, times gross exposure, gives it (the gross-weighted mean rate with
        per-instrument rates), so its detail reads ``equity < rate x gross = requirement``."""
        if self.monitor is None:
            from workbench.risk.profile import RiskProfile

            self.monitor = RiskMonitor(RiskProfile())
        q = np.atleast_1d(np.asarray(qty, dtype="float64"))
        values = self.close[j] * (q * self.mult)
        equity, gross = cash + float(values.sum()), float(np.abs(values).sum())
        if self.uniform:
            need, rate = self.maintenance * gross, self.maintenance
        else:
            need = float(np.abs(values) @ self.rates)
            rate = need / gross if gross > 0 else 0.0
        self.monitor.margin_call(self.idx[j], equity, need, rate)
        self.called = True
        return self.monitor


def _maintenance_rates(account: object, columns: int, instruments: Sequence[Instrument] | None) -> np.ndarray:
    """Each column's maintenance rate (see :class:`MarginWatch`)."""
    if not isinstance(account, MarginAccount):
        return np.full(columns, float(getattr(account, "maintenance_margin", 0.0)))
    if instruments is not None:
        if len(instruments) != columns:
            raise ParameterError(f"MarginWatch: instruments must name the {columns} price columns, "
                                 f"got {len(instruments)} instruments")  # fmt: skip
        return np.array([account.maintenance_rate(i) for i in instruments], dtype="float64")
    highest = max([account.maintenance_margin, *(mm for _, _, mm in account.per_instrument)])  # type: ignore[misc]
    return np.full(columns, float(highest))


class Liquidation:
    """The market orders that close every position after a margin call or a FLATTEN
    drawdown rule (``cause``: "margin call" or "drawdown"), at the open of the bar after
    the close that called for it, followed bar by bar while a volume cap leaves a rest
    working; then the account is HALTED. The log records what each bar closed, with its
    cause; what could not be closed (an order a pre-trade hook rejected, or the data
    ended) is named in the halt's reason (after a drawdown, which halted the account at
    its close already, in a second HALTED record, only when something is left)."""

    def __init__(self, broker: Broker, portfolio: Portfolio, instruments: list[Instrument],
                 monitor: RiskMonitor, call_ts: pd.Timestamp, cause: str = "margin call") -> None:  # fmt: skip
        self.broker, self.portfolio, self.instruments = broker, portfolio, instruments
        self.monitor, self.call_ts, self.cause = monitor, call_ts, cause
        self.orders: dict[str, Order] = {}

    def start(self, bars: list[Bar]) -> None:
        broker = self.broker
        for order in broker.open_orders:
            broker.cancel(order, bars[0].ts, f"{self.cause}: liquidation")
        submit = getattr(broker, "force", broker.submit)
        for inst in self.instruments:
            q = self.portfolio.quantity(inst)
            if q != 0:
                order = Order(order_id=broker.next_order_id(), instrument=inst, side=Side.SELL if q > 0 else Side.BUY,
                              quantity=abs(q), ts=self.call_ts, order_type=OrderType.MARKET, tag="liquidation")  # fmt: skip
                self.orders[inst.symbol] = submit(order)
        self.step(bars)

    def step(self, bars: list[Bar]) -> None:
        """Match the liquidation orders still working against these bars."""
        for inst, bar in zip(self.instruments, bars, strict=True):
            order = self.orders.get(inst.symbol)
            if order is None or order.is_terminal:
                continue
            fills = [f for f in self.broker.on_bar(inst, bar) if f.order_id == order.order_id]
            done = sum(f.quantity for f in fills)
            if done:
                price = sum(f.price * f.quantity for f in fills) / done
                self.monitor.liquidated(bar.ts, inst.symbol, done * -order.side.sign, price, order.order_id, self.cause)

    @property
    def working(self) -> bool:
        return any(not o.is_terminal for o in self.orders.values())

    def finish(self, ts: pd.Timestamp) -> None:
        left = [f"{self.portfolio.quantity(i):g} {i.symbol} "
                f"({self.orders[i.symbol].status.name if i.symbol in self.orders else 'no bar left to sell on'})"
                for i in self.instruments if self.portfolio.quantity(i) != 0]  # fmt: skip
        self.monitor.halt(ts, liquidation_reason(self.cause, self.call_ts, left), again=bool(left))


def liquidation_reason(cause: str, call_ts: pd.Timestamp, left: list[str]) -> str:
    """The halt's reason after a liquidation, naming what could not be closed: one text
    for every engine, so their risk logs compare equal."""
    rest = f"; not closed: {', '.join(left)}" if left else ""
    return f"liquidated after the {cause} at {call_ts}{rest}"


def run_liquidation(broker: Broker, portfolio: Portfolio, instruments: list[Instrument], ohlcv: tuple[np.ndarray, ...],
                    idx: pd.Index, j: int, monitor: RiskMonitor, snapshot: Callable[[int], None],
                    cause: str = "margin call") -> None:  # fmt: skip
    """After the margin call (or the FLATTEN drawdown, ``cause="drawdown"``) at close ``j``:
    liquidate from bar ``j + 1`` on, one bar at a time until nothing is left working
    (``ohlcv``: five (bars, instruments) arrays), calling ``snapshot(t)`` after each bar so
    the engine's curves follow."""
    liq = Liquidation(broker, portfolio, instruments, monitor, idx[j], cause)
    t, n, start = j + 1, len(idx), True
    while t < n:
        bars = [Bar(idx[t], *(float(a[t, x]) for a in ohlcv)) for x in range(len(instruments))]
        for inst, bar in zip(instruments, bars, strict=True):
            portfolio.mark(inst.symbol, bar.open)
        liq.start(bars) if start else liq.step(bars)
        start = False
        for inst, bar in zip(instruments, bars, strict=True):
            portfolio.mark(inst.symbol, bar.close)
        snapshot(t)
        if not liq.working:
            break
        t += 1
    liq.finish(idx[min(t, n - 1)])
