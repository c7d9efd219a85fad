"""The event-driven engine: a strategy's decisions → orders → a broker, on the domain model.

:class:`EventEngine` implements the :class:`~workbench.strategy.engine.Engine` port for all
three kinds of strategy: a signal strategy's target exposure (:func:`run_targets`), a
portfolio strategy's target weights (:func:`run_weights`) and a per-bar callback strategy
(:func:`workbench.engines.bars.run_bars`). The broker is made by a factory (the simulated
broker by default) and used only through the :class:`~workbench.trading.broker.Broker` port.

:func:`run_targets` visits only the bars where something can happen: the bar after each
change of the target (or the signal bar itself with ``FillTiming.SIGNAL_CLOSE``) and any
bar while orders are still working (e.g. the rest of a volume-capped order). Between those
bars cash and quantity are constant, so the equity curve is rebuilt at the end from the
snapshots and the closes, exactly as if every bar had been visited.

Sizing happens when an order is placed for execution: at the open of the fill bar
(NEXT_OPEN), or at the signal bar's close (SIGNAL_CLOSE), so "all equity" orders are
never rejected for a gap they could not have known about.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from workbench.engines.rebalance import (
    Costs,
    EquityWatch,
    MarginWatch,
    curves,
    fill_cost,
    gc_paused,
    guarded,
    rebalance_to_target,
    run_liquidation,
)
from workbench.risk.sizing import ATRRisk, FixedFractional, VolatilityTarget
from workbench.strategy.engine import NO_HOOKS, Hooks, Run
from workbench.strategy.spec import BacktestSpec
from workbench.strategy.targets import check_target, check_weights
from workbench.trading.accounts import BuysFromCash, CashAccount, MarginAccount
from workbench.trading.broker import Broker
from workbench.trading.costs import (
    Bar,
    FixedBps,
    FixedPerOrder,
    HalfSpread,
    NoCommission,
    NoSlippage,
    PercentOfNotional,
    PerShare,
    VolumeShare,
)
from workbench.trading.enums import FillTiming, OrderType, Side
from workbench.trading.frames import fills_frame, orders_frame
from workbench.trading.portfolio import Portfolio
from workbench.trading.simulated import SimulatedBroker
from workbench.trading.sizing import AllEquity, FixedQuantity, PercentOfEquity, bind_sizer
from workbench.trading.values import Instrument

__all__ = ["EventEngine", "BrokerFactory", "simulated_broker", "run_targets", "run_weights", "finish"]

BrokerFactory = Callable[[Portfolio, BacktestSpec, Hooks], Broker]
_OWN_TYPES = frozenset({AllEquity, FixedQuantity, PercentOfEquity, FixedFractional, VolatilityTarget, ATRRisk,
                        CashAccount, MarginAccount, BuysFromCash,
                        NoCommission, PercentOfNotional, PerShare, FixedPerOrder,
                        NoSlippage, FixedBps, HalfSpread, VolumeShare})  # fmt: skip


def simulated_broker(portfolio: Portfolio, spec: BacktestSpec, hooks: Hooks) -> Broker:
    """The default factory: a :class:`SimulatedBroker` with the spec's costs and timing."""
    return SimulatedBroker(portfolio, spec.commission, spec.slippage, spec.fill_timing,
                           hooks.bus, hooks.pre_trade_check)  # fmt: skip


def engine_only(spec: BacktestSpec, hooks: Hooks, broker_factory: BrokerFactory) -> bool:
    """True when no user code runs inside the loop (then the GC may be paused): no hooks,
    the default broker, and the workbench's own sizer, cost and account classes exactly
    (a subclass, or any model of the user's, is user code)."""
    own = (spec.sizer, spec.commission, spec.slippage, spec.account)
    return not hooks.any and broker_factory is simulated_broker and all(type(x) in _OWN_TYPES for x in own)


def finish(broker: Broker, portfolio: Portfolio, equity: pd.Series, positions: pd.Series | pd.DataFrame,
           margin: MarginWatch | None = None) -> Run:  # fmt: skip
    """The one run type: the curves now, the broker's orders and fills and the portfolio's
    trades tabulated on first access."""

    def tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        return orders_frame(broker.orders), fills_frame(broker.fills_since(0)), portfolio.trades_frame()

    monitor = getattr(broker, "monitor", None) or (margin.monitor if margin is not None else None)
    return Run(equity=equity, positions=positions, tables=tables, native=broker, risk=monitor)


class EventEngine:
    """The event-driven engine (see the module notes). It runs every spec the domain can
    express; it refuses only what the strategy kind rules out."""

    name = "event"

    def __init__(self, broker_factory: BrokerFactory = simulated_broker) -> None:
        self.broker_factory = broker_factory

    def refusal(self, spec: BacktestSpec, hooks: Hooks) -> str:
        kind = spec.strategy.kind
        if kind == "bar" and spec.fill_timing is not FillTiming.NEXT_OPEN:
            return "fill_timing SIGNAL_CLOSE for a per-bar callback strategy (it fills at the next open)"
        if kind == "weights" and not isinstance(spec.account, CashAccount):
            return f"account {spec.account!r} for a weights strategy (rebalances run on a cash account)"
        return ""

    def run(self, spec: BacktestSpec, prices: pd.DataFrame, hooks: Hooks) -> Run:
        strategy = spec.strategy
        if strategy.kind == "weights":
            return run_weights(prices, strategy.weights(prices), spec, hooks, self.broker_factory)  # type: ignore[attr-defined]
        if strategy.kind == "bar":
            from workbench.engines.bars import run_bars

            return run_bars(prices, strategy, spec, hooks, self.broker_factory)  # type: ignore[arg-type]
        return run_targets(prices, strategy.target(prices), spec.instruments[0], spec, hooks, self.broker_factory)


def run_targets(
    prices: pd.DataFrame,
    target: pd.Series,
    instrument: Instrument,
    spec: BacktestSpec,
    hooks: Hooks = NO_HOOKS,
    broker_factory: BrokerFactory = simulated_broker,
) -> Run:
    """Trade ``instrument`` so its position follows ``target`` (+1 long, 0 flat, -1 short)."""
    tgt = check_target(target, prices.index)
    portfolio = Portfolio(spec.cash, instrument.currency, spec.cost_basis, account=spec.account)
    close = prices["Close"].to_numpy(dtype="float64")[:, None]
    broker, watch = guarded(broker_factory(portfolio, spec, hooks), portfolio, spec.risk, hooks.bus,
                            prices.index, close, np.array([instrument.multiplier]), (instrument.symbol,))  # fmt: skip
    margin = MarginWatch(spec.account, prices.index, close, np.array([instrument.multiplier]),
                         getattr(broker, "monitor", None), instruments=[instrument])  # fmt: skip
    with gc_paused(engine_only(spec, hooks, broker_factory)):
        equity, positions = _target_loop(prices, tgt, instrument, spec, broker, portfolio, watch, margin)
    return finish(broker, portfolio, equity, positions, margin)


def _target_loop(
    prices: pd.DataFrame, tgt: np.ndarray, instrument: Instrument, spec: BacktestSpec,
    broker: Broker, portfolio: Portfolio, watch: EquityWatch | None, margin: MarginWatch,
) -> tuple[pd.Series, pd.Series]:  # fmt: skip
    idx = prices.index
    n = len(idx)
    o, h, lo, c, v = (prices[k].to_numpy(dtype="float64") for k in ("Open", "High", "Low", "Close", "Volume"))
    costs = Costs(spec.commission, spec.slippage)
    sizer = bind_sizer(spec.sizer, prices)  # once per run: a sizer that needs the bars gets them here
    sym = instrument.symbol
    close_mode = spec.fill_timing is FillTiming.SIGNAL_CLOSE
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
        if watch is not None:  # the drawdown rule sees every close up to the last one
            watch.upto(k - 1, portfolio.cash, portfolio.quantity(instrument))
        portfolio.mark(sym, bar.open)
        if broker.has_open_orders:
            broker.on_bar(instrument, bar)
        if k in signal_at:
            s = signal_at[k]
            ref = bar.close if close_mode else bar.open
            if close_mode:
                portfolio.mark(sym, ref)
            rebalance_to_target(broker, portfolio, costs, instrument, bar, float(tgt[s]), stamps[s], ref, sizer, close_mode,
                                signal_bar=s)
        portfolio.mark(sym, bar.close)
        snap_i.append(k)
        snap_cash.append(portfolio.cash)
        snap_qty.append(portfolio.quantity(instrument))
        while ptr < len(todo) and todo[ptr] <= k:
            ptr += 1
        nxt = k + 1 if broker.has_open_orders else (todo[ptr] if ptr < len(todo) else n)
        j = margin.scan(k, nxt, portfolio.cash, portfolio.quantity(instrument))
        # a FLATTEN drawdown rule fires first if its close comes before the margin call's
        d = (watch.flatten_close(nxt - 1 if j is None else j - 1, portfolio.cash, portfolio.quantity(instrument))
             if watch is not None and watch.flattens else None)  # fmt: skip
        if j is not None or d is not None:  # a call at close j: liquidate from the next open, then stop

            def snapshot(t: int) -> None:
                snap_i.append(t)
                snap_cash.append(portfolio.cash)
                snap_qty.append(portfolio.quantity(instrument))

            if d is not None:
                j, monitor, cause = d, watch.monitor, "drawdown"  # type: ignore[union-attr]  # d implies a watch
            else:
                monitor, cause = margin.call(j, portfolio.cash, portfolio.quantity(instrument)), "margin call"
            ohlcv = tuple(a[:, None] for a in (o, h, lo, c, v))
            run_liquidation(broker, portfolio, [instrument], ohlcv, idx, j, monitor, snapshot, cause)
            break
        k = nxt
    broker.expire_all(idx[-1])
    portfolio.mark(sym, c[-1])
    if watch is not None:  # the log shows a state change after the last order too
        watch.upto(n - 1, portfolio.cash, portfolio.quantity(instrument))
    return curves(idx, c, instrument, spec.cash, snap_i, snap_cash, snap_qty)


def run_weights(
    panel: pd.DataFrame,
    weights: pd.DataFrame,
    spec: BacktestSpec,
    hooks: Hooks = NO_HOOKS,
    broker_factory: BrokerFactory = simulated_broker,
) -> Run:
    """Rebalance several instruments to target weights of equity, sharing one cash account.

    On the execution bar of each non-NaN weight row (the next bar's open, or the signal
    bar's close with ``SIGNAL_CLOSE``), with every position valued at that price P:

    - equity V = cash + Σ q·P; the order for each symbol is ``|w·V/P − q|`` floored to
      whole lots (so a reduction stops at the lot above the target);
    - orders run in ascending order of (w·V − q·P), i.e. the largest sales first, ties by
      column order; then buys are cut to what the remaining cash pays for, commission and
      slippage included, in whole lots. Sales and shorts are never cut.

    These are vectorbt's ``targetpercent`` rules with ``call_seq="auto"``, valuation at the
    execution price and cash sharing, so both engines give the same fills. The legs are
    checked by :class:`~workbench.trading.accounts.BuysFromCash`: each buy must be paid
    from cash; the exposure limit is the weights' own (gross <= 1, validated), not the
    order in which the legs execute.
    """
    instruments = list(spec.instruments)
    names = [str(c) for c in weights.columns]
    W = check_weights(weights, panel.index, names)
    portfolio = Portfolio(spec.cash, instruments[0].currency, spec.cost_basis, account=BuysFromCash())
    close = np.column_stack([panel[(s, "Close")].to_numpy(dtype="float64") for s in names])
    broker, watch = guarded(broker_factory(portfolio, spec, hooks), portfolio, spec.risk, hooks.bus,
                            panel.index, close, np.array([i.multiplier for i in instruments]),
                            [i.symbol for i in instruments])  # fmt: skip
    margin = MarginWatch(spec.account, panel.index, close, np.array([i.multiplier for i in instruments]),
                         getattr(broker, "monitor", None), instruments=instruments)  # fmt: skip
    with gc_paused(engine_only(spec, hooks, broker_factory)):
        equity, positions = _weights_loop(panel, W, names, instruments, spec, broker, portfolio, watch, margin)
    return finish(broker, portfolio, equity, positions, margin)


def _weights_loop(
    panel: pd.DataFrame, W: np.ndarray, names: list[str], instruments: list[Instrument],
    spec: BacktestSpec, broker: Broker, portfolio: Portfolio, watch: EquityWatch | None, margin: MarginWatch,
) -> tuple[pd.Series, pd.DataFrame]:  # fmt: skip
    idx = panel.index
    n = len(idx)
    fields = {f: np.column_stack([panel[(s, f)].to_numpy(dtype="float64") for s in names]) for f in ("Open", "High", "Low", "Close", "Volume")}
    o, h, lo, c, v = (fields[f] for f in ("Open", "High", "Low", "Close", "Volume"))
    costs = Costs(spec.commission, spec.slippage)
    close_mode = spec.fill_timing is FillTiming.SIGNAL_CLOSE
    rows = np.flatnonzero(~np.isnan(W).all(axis=1))
    exec_bars = rows if close_mode else rows + 1
    keep = exec_bars < n
    rows, exec_bars = rows[keep], exec_bars[keep]
    m = len(instruments)
    mult = np.array([i.multiplier for i in instruments])
    qty = np.zeros((n, m))
    cash_arr = np.full(n, float(spec.cash))
    last = 0
    q_now = np.zeros(m)
    cash_now = float(spec.cash)
    execs = exec_bars.tolist()
    for pos, (s, k) in enumerate(zip(rows.tolist(), execs, strict=True)):
        qty[last:k] = q_now
        cash_arr[last:k] = cash_now
        if watch is not None:
            watch.upto(k - 1, cash_now, q_now)
        px = c[k] if close_mode else o[k]
        for j, inst in enumerate(instruments):
            portfolio.mark(inst.symbol, px[j])
        bars = [Bar(idx[k], o[k, j], h[k, j], lo[k, j], c[k, j], v[k, j]) for j in range(m)]
        _rebalance_weights(broker, portfolio, costs, instruments, bars, W[s], idx[s], px, close_mode)
        for j, inst in enumerate(instruments):
            portfolio.mark(inst.symbol, c[k, j])
        q_now = np.array([portfolio.quantity(i) for i in instruments])
        cash_now = portfolio.cash
        last = k
        nxt = execs[pos + 1] if pos + 1 < len(execs) else n
        j = margin.scan(k, nxt, cash_now, q_now)
        # a FLATTEN drawdown rule fires first if its close comes before the margin call's
        d = (watch.flatten_close(nxt - 1 if j is None else j - 1, cash_now, q_now)
             if watch is not None and watch.flattens else None)  # fmt: skip
        if j is not None or d is not None:  # a call at close j: liquidate from the next open, then stop
            held = {"q": q_now, "cash": cash_now, "last": last}
            if d is not None:
                j, monitor, cause = d, watch.monitor, "drawdown"  # type: ignore[union-attr]  # d implies a watch
            else:
                monitor, cause = margin.call(j, cash_now, q_now), "margin call"
            snapshot = _fill_arrays(qty, cash_arr, held, portfolio, instruments)
            run_liquidation(broker, portfolio, instruments, (o, h, lo, c, v), idx, j, monitor, snapshot, cause)
            q_now, cash_now, last = held["q"], held["cash"], held["last"]
            break
    qty[last:] = q_now
    cash_arr[last:] = cash_now
    if watch is not None:
        watch.upto(n - 1, cash_now, q_now)
    broker.expire_all(idx[-1])
    equity = pd.Series(cash_arr + (qty * c * mult).sum(axis=1), index=idx, name="equity")
    return equity, pd.DataFrame(qty, index=idx, columns=[i.symbol for i in instruments])


def _fill_arrays(qty: np.ndarray, cash_arr: np.ndarray, held: dict[str, Any], portfolio: Portfolio,
                 instruments: list[Instrument]) -> Callable[[int], None]:  # fmt: skip
    """``snapshot(t)`` for the weights loop's arrays: the holdings so far fill bars up to t."""

    def snapshot(t: int) -> None:
        qty[held["last"] : t] = held["q"]
        cash_arr[held["last"] : t] = held["cash"]
        held.update(q=np.array([portfolio.quantity(i) for i in instruments]), cash=portfolio.cash, last=t)

    return snapshot


def _rebalance_weights(
    broker: Broker,
    portfolio: Portfolio,
    costs: Costs,
    instruments: list[Instrument],
    bars: list[Bar],
    w: np.ndarray,
    signal_ts: pd.Timestamp,
    px: np.ndarray,
    close_mode: bool,
) -> None:
    value = portfolio.equity
    q = np.array([portfolio.quantity(i) for i in instruments])
    mult = np.array([i.multiplier for i in instruments])
    order_value = w * value - q * px * mult
    for j in np.argsort(order_value, kind="stable").tolist():
        inst, bar = instruments[j], bars[j]
        delta = w[j] * value / (px[j] * mult[j]) - q[j]
        # a plain floor, as vectorbt does; a zero weight closes exactly (a float floor of
        # |q| / lot can fall one lot short and leave dust on a fractional instrument)
        size = abs(q[j]) if w[j] == 0 else (abs(delta) // inst.lot_size) * inst.lot_size
        if size <= 0:
            continue
        side = Side.BUY if delta > 0 else Side.SELL
        if side is Side.BUY:
            size = _affordable_buy(costs, inst, bar, float(px[j]), size, portfolio.cash)
            if size <= 0:
                continue
        broker.place(inst, side, size, signal_ts, OrderType.MARKET, tag="rebalance")
        broker.on_bar(inst, bar, at_close=close_mode)


def _affordable_buy(costs: Costs, inst: Instrument, bar: Bar, ref: float, size: float, cash: float) -> float:
    """``size`` if cash pays for it (fees and slippage included), else the most lots it does."""
    cost = fill_cost(costs, inst, bar, Side.BUY, ref)
    if cost(size) <= cash * (1 + 1e-12):
        return size
    return min(size, AllEquity().size(ref, cash, cash, inst, cost))
