"""The event-driven engine: a strategy's target exposure → orders → simulated broker.

It visits only the bars where something can happen: the bar after each change of the
target (or the signal bar itself with ``FillTiming.SIGNAL_CLOSE``) and any bar while
orders are still working (e.g. the rest of a volume-capped order). Between those bars
cash and quantity are constant, so the equity curve is rebuilt at the end from the
snapshots and the closes, exactly as if every bar had been visited.

Sizing happens when an order is placed for execution: at the open of the fill bar
(NEXT_OPEN), or at the signal bar's close (SIGNAL_CLOSE), so "all equity" orders are
never rejected for a gap they could not have known about.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.trading.broker import PreTradeCheck, SimulatedBroker
from workbench.trading.costs import Bar, CommissionModel, SlippageModel, fill_price
from workbench.trading.enums import CostBasisMethod, FillTiming, OrderType, Side
from workbench.trading.events import EventBus
from workbench.trading.portfolio import Portfolio
from workbench.trading.sizing import AllEquity, Sizer
from workbench.trading.values import Instrument

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["EventRun", "PanelRun", "run_targets", "run_weights", "check_target", "check_weights", "curves", "fill_cost"]


class EventRun:
    """Raw output of :func:`run_targets` (the API wraps it in a BacktestResult)."""

    def __init__(
        self, broker: SimulatedBroker, equity: pd.Series, positions: pd.Series
    ) -> None:
        self.broker = broker
        self.portfolio = broker.portfolio
        self.equity = equity
        self.positions = positions


def _gc_paused(fn: F) -> F:
    """Run ``fn`` with the cyclic garbage collector paused (see :func:`gc_paused`)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with gc_paused():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the engine allocates many small acyclic
    objects (orders, fills, events): its generation scans cost ~25% of a run. Reference
    counting still frees everything; the collector is restored on exit, even on error."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def check_target(target: pd.Series | np.ndarray, index: pd.Index) -> np.ndarray:
    """Validate a target exposure: the prices' index and only -1, 0 or 1 (NaN, 2.0, inf are
    errors). Both engines call this one function (one column per strategy for a grid), so
    a bad strategy fails with the same message whichever engine runs it."""
    if isinstance(target, pd.Series) and not target.index.equals(index):
        raise ParameterError("target must have exactly the index of the prices")
    tgt = np.asarray(target, dtype="float64")
    if len(tgt) != len(index):
        raise ParameterError(f"target has {len(tgt)} rows for {len(index)} bars of prices")
    ok = (tgt == 0) | (tgt == 1) | (tgt == -1)  # NaN equals nothing
    if not ok.all():
        bad = ~ok
        row = bad if bad.ndim == 1 else bad.any(axis=1)
        i = int(np.argmax(row))
        value = tgt[i] if tgt.ndim == 1 else tgt[i][bad[i]][0]
        raise ParameterError(f"target values must be -1, 0 or 1; got {float(value)!r} at {index[i]}")
    return tgt


@_gc_paused
def run_targets(
    prices: pd.DataFrame,
    target: pd.Series,
    instrument: Instrument,
    *,
    cash: float,
    commission: CommissionModel,
    slippage: SlippageModel,
    sizer: Sizer,
    fill_timing: FillTiming = FillTiming.NEXT_OPEN,
    cost_basis: CostBasisMethod = CostBasisMethod.FIFO,
    initial_margin: float = 1.0,
    bus: EventBus | None = None,
    pre_trade_check: PreTradeCheck | None = None,
) -> EventRun:
    """Trade ``instrument`` so its position follows ``target`` (+1 long, 0 flat, -1 short)."""
    idx = prices.index
    n = len(idx)
    tgt = check_target(target, idx)
    o, h, lo, c, v = (prices[k].to_numpy(dtype="float64") for k in ("Open", "High", "Low", "Close", "Volume"))
    portfolio = Portfolio(cash, instrument.currency, cost_basis, initial_margin)
    broker = SimulatedBroker(portfolio, commission, slippage, fill_timing, bus, pre_trade_check)
    sym = instrument.symbol
    close_mode = fill_timing is FillTiming.SIGNAL_CLOSE
    prev = np.concatenate(([0.0], tgt[:-1]))
    signal_bars = np.flatnonzero(tgt != prev)
    exec_bars = signal_bars if close_mode else signal_bars + 1
    exec_bars = exec_bars[exec_bars < n]
    signal_at = dict(zip(exec_bars.tolist(), (exec_bars if close_mode else exec_bars - 1).tolist(), strict=True))

    snap_i: list[int] = []
    snap_cash: list[float] = []
    snap_qty: list[float] = []
    todo = exec_bars.tolist()
    ptr = 0
    k = todo[0] if todo else n
    need = np.unique(np.concatenate([exec_bars, signal_bars[signal_bars < n]]))
    stamps = dict(zip(need.tolist(), list(idx[need]), strict=True))  # box timestamps in bulk
    while k < n:
        ts = stamps[k] if k in stamps else idx[k]
        bar = Bar(ts, float(o[k]), float(h[k]), float(lo[k]), float(c[k]), float(v[k]))
        portfolio.mark(sym, bar.open)
        if broker.open_orders:
            broker.execute(instrument, bar)
        if k in signal_at:
            s = signal_at[k]
            ref = bar.close if close_mode else bar.open
            if close_mode:
                portfolio.mark(sym, ref)
            _rebalance(broker, instrument, bar, float(tgt[s]), stamps[s], ref, sizer, close_mode)
        portfolio.mark(sym, bar.close)
        snap_i.append(k)
        snap_cash.append(portfolio.cash)
        snap_qty.append(portfolio.quantity(instrument))
        while ptr < len(todo) and todo[ptr] <= k:
            ptr += 1
        nxt = todo[ptr] if ptr < len(todo) else n
        k = k + 1 if broker.open_orders else nxt
    broker.expire_all(idx[-1])
    portfolio.mark(sym, c[-1])

    return EventRun(broker, *curves(idx, c, instrument, cash, snap_i, snap_cash, snap_qty))


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


def fill_cost(broker: SimulatedBroker, inst: Instrument, bar: Bar, side: Side, ref: float) -> Callable[[float], float]:
    """``cost(q)``: cash a fill of ``q`` at reference ``ref`` moves, as the broker would
    price it (slippage, clamped into the bar, plus commission)."""

    def cost(q: float) -> float:
        px = fill_price(broker.slippage, side, ref, q, bar)
        return q * px * inst.multiplier + broker.commission.calculate(q, px, inst)

    return cost


def _rebalance(
    broker: SimulatedBroker,
    instrument: Instrument,
    bar: Bar,
    want: float,
    signal_ts: pd.Timestamp,
    ref: float,
    sizer: Sizer,
    close_mode: bool,
) -> None:
    portfolio = broker.portfolio
    for order in broker.open_orders:
        if order.instrument.symbol == instrument.symbol:
            broker.cancel(order, bar.ts, f"superseded by the signal of {signal_ts}")

    def run() -> None:
        broker.execute(instrument, bar, at_close=close_mode)

    q0 = portfolio.quantity(instrument)
    if q0 != 0 and np.sign(q0) == want:
        return
    side = Side.BUY if (want > 0 or (want == 0 and q0 < 0)) else Side.SELL
    cost = fill_cost(broker, instrument, bar, side, ref)
    qty = 0.0
    if want != 0:
        # A reversal is one order: close |q0| and open the new side with what is left.
        budget = portfolio.cash
        if q0 != 0:
            px0 = fill_price(broker.slippage, side, ref, abs(q0), bar)
            budget += q0 * px0 * instrument.multiplier - broker.commission.calculate(abs(q0), px0, instrument)
        equity = portfolio.equity if q0 == 0 else budget
        qty = sizer.size(ref, equity, budget, instrument, cost)
    total = abs(q0) + qty
    if total > 0:
        tag = "entry" if q0 == 0 else ("exit" if qty == 0 else "reverse")
        broker.place(instrument, side, total, signal_ts, OrderType.MARKET, tag=tag)
        run()


def check_weights(weights: pd.DataFrame, index: pd.Index, symbols: list[str]) -> np.ndarray:
    """Validate a target-weight frame: rows all NaN (hold) or all finite, gross <= 1."""
    if not weights.index.equals(index):
        raise ParameterError("weights must have exactly the index of the prices")
    if [str(c) for c in weights.columns] != symbols:
        raise ParameterError(f"weights columns {list(weights.columns)} must be the panel symbols {symbols}")
    w = weights.to_numpy(dtype="float64")
    nan = np.isnan(w)
    partial = nan.any(axis=1) & ~nan.all(axis=1)
    bad = partial | np.isinf(w).any(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise ParameterError(
            f"a rebalance row must give every symbol a finite weight (0 to exit) or be all NaN "
            f"(hold); got {dict(zip(symbols, w[i].tolist(), strict=True))} at {index[i]}"
        )
    # float dust (|w| < 1e-12, e.g. 1 - 1 computed in floating point) means 0: otherwise a
    # "flat" target leaves a lot behind through a floor of 8988.999999999998
    w = np.where(np.abs(w) < 1e-12, 0.0, w)
    gross = np.nansum(np.abs(w), axis=1)
    if (gross > 1 + 1e-9).any():
        i = int(np.argmax(gross > 1 + 1e-9))
        raise ParameterError(f"gross weight must be <= 1, got {gross[i]:.6g} at {index[i]}")
    return w


class PanelRun:
    """Raw output of :func:`run_weights`."""

    def __init__(self, broker: SimulatedBroker, equity: pd.Series, positions: pd.DataFrame) -> None:
        self.broker = broker
        self.portfolio = broker.portfolio
        self.equity = equity
        self.positions = positions


@_gc_paused
def run_weights(
    panel: pd.DataFrame,
    weights: pd.DataFrame,
    instruments: list[Instrument],
    *,
    cash: float,
    commission: CommissionModel,
    slippage: SlippageModel,
    fill_timing: FillTiming = FillTiming.NEXT_OPEN,
    cost_basis: CostBasisMethod = CostBasisMethod.FIFO,
    bus: EventBus | None = None,
    pre_trade_check: PreTradeCheck | None = None,
) -> PanelRun:
    """Rebalance several instruments to target weights of equity, sharing one cash account.

    On the execution bar of each non-NaN weight row (the next bar's open, or the signal
    bar's close with ``SIGNAL_CLOSE``), with every position valued at that price P:

    - equity V = cash + Σ q·P; the order for each symbol is ``|w·V/P − q|`` floored to
      whole lots (so a reduction stops at the lot above the target);
    - orders run in ascending order of (w·V − q·P), i.e. the largest sales first, ties by
      column order; then buys are cut to what the remaining cash pays for, commission and
      slippage included, in whole lots. Sales and shorts are never cut.

    These are vectorbt's ``targetpercent`` rules with ``call_seq="auto"``, valuation at the
    execution price and cash sharing, so both engines give the same fills. Within a
    rebalance the legs are checked against cash only (:meth:`Portfolio.rebalancing`):
    the exposure limit is the weights' own (gross <= 1, validated), not the order in
    which the legs execute.
    """
    idx = panel.index
    n = len(idx)
    symbols = [i.symbol for i in instruments]
    names = [str(c) for c in weights.columns]
    W = check_weights(weights, idx, names)
    fields = {f: np.column_stack([panel[(s, f)].to_numpy(dtype="float64") for s in names]) for f in ("Open", "High", "Low", "Close", "Volume")}
    o, h, lo, c, v = (fields[f] for f in ("Open", "High", "Low", "Close", "Volume"))
    portfolio = Portfolio(cash, instruments[0].currency, cost_basis)  # legs are cash-checked
    broker = SimulatedBroker(portfolio, commission, slippage, fill_timing, bus, pre_trade_check)
    close_mode = fill_timing is FillTiming.SIGNAL_CLOSE
    rows = np.flatnonzero(~np.isnan(W).all(axis=1))
    exec_bars = rows if close_mode else rows + 1
    keep = exec_bars < n
    rows, exec_bars = rows[keep], exec_bars[keep]
    m = len(instruments)
    mult = np.array([i.multiplier for i in instruments])
    qty = np.zeros((n, m))
    cash_arr = np.full(n, float(cash))
    last = 0
    q_now = np.zeros(m)
    cash_now = float(cash)
    for s, k in zip(rows.tolist(), exec_bars.tolist(), strict=True):
        qty[last:k] = q_now
        cash_arr[last:k] = cash_now
        px = c[k] if close_mode else o[k]
        for j, inst in enumerate(instruments):
            portfolio.mark(inst.symbol, px[j])
        bars = [Bar(idx[k], o[k, j], h[k, j], lo[k, j], c[k, j], v[k, j]) for j in range(m)]
        with portfolio.rebalancing():
            _rebalance_weights(broker, instruments, bars, W[s], idx[s], px, close_mode)
        for j, inst in enumerate(instruments):
            portfolio.mark(inst.symbol, c[k, j])
        q_now = np.array([portfolio.quantity(i) for i in instruments])
        cash_now = portfolio.cash
        last = k
    qty[last:] = q_now
    cash_arr[last:] = cash_now
    broker.expire_all(idx[-1])
    equity = pd.Series(cash_arr + (qty * c * mult).sum(axis=1), index=idx, name="equity")
    positions = pd.DataFrame(qty, index=idx, columns=symbols)
    return PanelRun(broker, equity, positions)


def _rebalance_weights(
    broker: SimulatedBroker,
    instruments: list[Instrument],
    bars: list[Bar],
    w: np.ndarray,
    signal_ts: pd.Timestamp,
    px: np.ndarray,
    close_mode: bool,
) -> None:
    portfolio = broker.portfolio
    value = portfolio.equity
    q = np.array([portfolio.quantity(i) for i in instruments])
    mult = np.array([i.multiplier for i in instruments])
    order_value = w * value - q * px * mult
    for j in np.argsort(order_value, kind="stable").tolist():
        inst, bar = instruments[j], bars[j]
        delta = w[j] * value / (px[j] * mult[j]) - q[j]
        size = (abs(delta) // inst.lot_size) * inst.lot_size  # a plain floor, as vectorbt does
        if size <= 0:
            continue
        side = Side.BUY if delta > 0 else Side.SELL
        if side is Side.BUY:
            size = _affordable_buy(broker, inst, bar, float(px[j]), size, portfolio.cash)
            if size <= 0:
                continue
        broker.place(inst, side, size, signal_ts, OrderType.MARKET, tag="rebalance")
        broker.execute(inst, bar, at_close=close_mode)


def _affordable_buy(
    broker: SimulatedBroker, inst: Instrument, bar: Bar, ref: float, size: float, cash: float
) -> float:
    """``size`` if cash pays for it (fees and slippage included), else the most lots it does."""
    cost = fill_cost(broker, inst, bar, Side.BUY, ref)
    if cost(size) <= cash * (1 + 1e-12):
        return size
    return min(size, AllEquity().size(ref, cash, cash, inst, cost))
