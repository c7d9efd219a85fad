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

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.trading.broker import SimulatedBroker
from workbench.trading.costs import Bar, CommissionModel, SlippageModel
from workbench.trading.enums import CostBasisMethod, FillTiming, OrderType, Side
from workbench.trading.events import EventBus
from workbench.trading.portfolio import Portfolio
from workbench.trading.sizing import Sizer
from workbench.trading.values import Instrument

__all__ = ["EventRun", "run_targets"]


class EventRun:
    """Raw output of :func:`run_targets` (the API wraps it in a BacktestResult)."""

    def __init__(
        self, broker: SimulatedBroker, equity: pd.Series, positions: pd.Series
    ) -> None:
        self.broker = broker
        self.portfolio = broker.portfolio
        self.equity = equity
        self.positions = positions


def _check_target(target: pd.Series, index: pd.Index) -> np.ndarray:
    if not target.index.equals(index):
        raise ParameterError("target must have exactly the index of the prices")
    tgt = target.to_numpy(dtype="float64")
    bad = ~np.isin(tgt, (-1.0, 0.0, 1.0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ParameterError(
            f"target values must be -1, 0 or 1; got {tgt[i]!r} at {index[i]}"
        )
    return tgt


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
) -> EventRun:
    """Trade ``instrument`` so its position follows ``target`` (+1 long, 0 flat, -1 short)."""
    idx = prices.index
    n = len(idx)
    tgt = _check_target(target, idx)
    o, h, lo, c, v = (prices[k].to_numpy(dtype="float64") for k in ("Open", "High", "Low", "Close", "Volume"))
    portfolio = Portfolio(cash, instrument.currency, cost_basis, initial_margin)
    broker = SimulatedBroker(portfolio, commission, slippage, fill_timing, bus)
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
    while k < n:
        bar = Bar(idx[k], o[k], h[k], lo[k], c[k], v[k])
        portfolio.mark(sym, o[k])
        if broker.open_orders:
            broker.execute(instrument, bar)
        if k in signal_at:
            s = signal_at[k]
            ref = c[k] if close_mode else o[k]
            if close_mode:
                portfolio.mark(sym, ref)
            _rebalance(broker, instrument, bar, float(tgt[s]), idx[s], ref, sizer, close_mode)
        portfolio.mark(sym, c[k])
        snap_i.append(k)
        snap_cash.append(portfolio.cash)
        snap_qty.append(portfolio.quantity(instrument))
        while ptr < len(todo) and todo[ptr] <= k:
            ptr += 1
        nxt = todo[ptr] if ptr < len(todo) else n
        k = k + 1 if broker.open_orders else nxt
    broker.expire_all(idx[-1])
    portfolio.mark(sym, c[-1])

    qty = np.zeros(n)
    cash_arr = np.full(n, float(cash))
    if snap_i:
        pos = np.searchsorted(np.asarray(snap_i), np.arange(n), side="right") - 1
        seen = pos >= 0
        qty[seen] = np.asarray(snap_qty)[pos[seen]]
        cash_arr[seen] = np.asarray(snap_cash)[pos[seen]]
    equity = pd.Series(cash_arr + qty * c * instrument.multiplier, index=idx, name="equity")
    positions = pd.Series(qty, index=idx, name=sym)
    return EventRun(broker, equity, positions)


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
    if q0 != 0 and np.sign(q0) != want:
        side = Side.SELL if q0 > 0 else Side.BUY
        broker.place(instrument, side, abs(q0), signal_ts, OrderType.MARKET, tag="exit")
        run()
    if want == 0 or portfolio.quantity(instrument) != 0:
        return
    side = Side.BUY if want > 0 else Side.SELL

    def cost(q: float) -> float:
        px = broker.slippage.price(side, ref, q, bar)
        px = min(max(px, bar.low), bar.high)
        return q * px * instrument.multiplier + broker.commission.calculate(q, px, instrument)

    qty = sizer.size(ref, portfolio.equity, portfolio.cash, instrument, cost)
    if qty > 0:
        broker.place(instrument, side, qty, signal_ts, OrderType.MARKET, tag="entry")
        run()
