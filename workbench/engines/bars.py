"""The event-driven engine with a per-bar callback: ``strategy.on_bar(ctx)`` at every close.

Each bar t, in this order:

1. at t's open: working orders are matched (stops, limits, brackets, the rest of a
   volume-capped order), then a target set at t-1's close is executed exactly as the
   signal engine does (:func:`workbench.engines.rebalance.rebalance_to_target`: one market order,
   sized at this open, reversals in one order);
2. protective orders are kept in line with the position: when a position opens, its
   stop-loss (STOP), take-profit (LIMIT) and trailing stop (STOP, raised as the best
   price since entry improves, never lowered) are placed GTC, working from the next bar;
   when the position closes, the survivors are cancelled (one-cancels-other). Their
   prices are rounded to the instrument's tick (orders off the tick grid are refused);
3. at t's close: ``on_bar(ctx)`` decides. Nothing it does can fill before t+1.

Bars where no order is working and no target is pending cost one Python call: that is
what keeps a callback strategy fast.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from workbench.engines.event import BrokerFactory, finish, simulated_broker
from workbench.engines.rebalance import (
    Costs,
    MarginWatch,
    curves,
    frozen_heap,
    guarded,
    rebalance_to_target,
    run_liquidation,
)
from workbench.errors import ParameterError
from workbench.risk.monitor import RiskMonitor
from workbench.strategy.base import BarStrategy
from workbench.strategy.engine import NO_HOOKS, Hooks, Run
from workbench.strategy.spec import BacktestSpec
from workbench.trading.broker import Broker
from workbench.trading.costs import Bar
from workbench.trading.enums import OrderType, Side, TimeInForce
from workbench.trading.orders import Order
from workbench.trading.portfolio import Portfolio
from workbench.trading.sizing import bind_sizer
from workbench.trading.values import Instrument

__all__ = ["BarContext", "run_bars"]


def _fraction(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if not (isinstance(value, int | float) and math.isfinite(value) and 0 < value < 1):
        raise ParameterError(f"{name} must be a fraction in (0, 1), got {name}={value!r}")
    return float(value)


class BarContext:
    """What ``on_bar`` sees and can do at bar ``i``'s close."""

    __slots__ = ("i", "data", "state", "_o", "_h", "_l", "_c", "_v", "_idx", "_broker",
                 "_portfolio", "_inst", "_pending", "_protect", "_touched")  # fmt: skip

    def __init__(self, prices: pd.DataFrame, broker: Broker, portfolio: Portfolio, inst: Instrument,
                 data: Any) -> None:  # fmt: skip
        self.i = 0
        self.data = data
        self.state: dict[str, Any] = {}
        self._o, self._h, self._l, self._c, self._v = (
            prices[k].to_numpy(dtype="float64") for k in ("Open", "High", "Low", "Close", "Volume")
        )
        self._idx = prices.index
        self._broker = broker
        self._portfolio = portfolio
        self._inst = inst
        self._pending: tuple[float, pd.Timestamp] | None = None
        self._touched = False  # on_bar placed or cancelled orders: the loop asks the broker again
        self._protect: tuple[float | None, float | None, float | None] = (None, None, None)

    # -- market data up to the current bar (views: nothing after bar i) ---------------
    @property
    def ts(self) -> pd.Timestamp:
        return self._idx[self.i]  # type: ignore[no-any-return]

    @property
    def open(self) -> np.ndarray:
        return self._o[: self.i + 1]

    @property
    def high(self) -> np.ndarray:
        return self._h[: self.i + 1]

    @property
    def low(self) -> np.ndarray:
        return self._l[: self.i + 1]

    @property
    def close(self) -> np.ndarray:
        return self._c[: self.i + 1]

    @property
    def volume(self) -> np.ndarray:
        return self._v[: self.i + 1]

    @property
    def price(self) -> float:
        """The current bar's close."""
        return float(self._c[self.i])

    def round_price(self, price: float) -> float:
        """``price`` on the instrument's tick grid: limit and stop prices must be on it."""
        return self._inst.round_price(price)

    # -- account ----------------------------------------------------------------------
    @property
    def position(self) -> float:
        return self._portfolio.quantity(self._inst)

    @property
    def cash(self) -> float:
        return self._portfolio.cash

    @property
    def equity(self) -> float:
        return self._portfolio.cash + self.position * self.price * self._inst.multiplier

    @property
    def open_orders(self) -> list[Order]:
        return self._broker.open_orders

    @property
    def orders(self) -> list[Order]:
        """Every order placed so far, in placement order."""
        return self._broker.orders

    @property
    def pending(self) -> tuple[float, pd.Timestamp, tuple[float | None, float | None, float | None]] | None:
        """The target decided at this close and not yet executed: (exposure, signal bar,
        (stop_loss, take_profit, trailing_stop)), or None."""
        if self._pending is None:
            return None
        return (*self._pending, self._protect)

    # -- decisions --------------------------------------------------------------------
    def target(
        self,
        exposure: float,
        *,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        trailing_stop: float | None = None,
    ) -> None:
        """Hold +1 (long), 0 (flat) or -1 (short) from the next open, sized by the run's
        sizing policy; optional protective exits as fractions of the entry price."""
        if exposure not in (-1, 0, 1):
            raise ParameterError(f"target exposure must be -1, 0 or 1, got {exposure!r} at {self.ts}")
        self._protect = (
            _fraction("stop_loss", stop_loss),
            _fraction("take_profit", take_profit),
            _fraction("trailing_stop", trailing_stop),
        )
        self._pending = (float(exposure), self._idx[self.i])

    def order(
        self,
        side: Side | str,
        quantity: float,
        order_type: OrderType | str = OrderType.MARKET,
        time_in_force: TimeInForce | str = TimeInForce.GTC,
        limit_price: float | None = None,
        stop_price: float | None = None,
        tag: str = "",
    ) -> Order:
        """Place any order type and time in force; it works from the next bar."""
        self._touched = True
        return self._broker.place(self._inst, side, quantity, self._idx[self.i], order_type,
                                  time_in_force, limit_price, stop_price, tag)  # fmt: skip

    def buy(self, quantity: float, **kwargs: Any) -> Order:
        return self.order(Side.BUY, quantity, **kwargs)

    def sell(self, quantity: float, **kwargs: Any) -> Order:
        return self.order(Side.SELL, quantity, **kwargs)

    def cancel_all(self, reason: str = "cancelled by the strategy") -> None:
        self._touched = True
        for o in self._broker.open_orders:
            self._broker.cancel(o, self._idx[self.i], reason)


class _Protection:
    """The protective orders of the current position (stop, take-profit, trailing)."""

    def __init__(self) -> None:
        self.orders: list[Order] = []
        self.trail: Order | None = None
        self.trail_frac = 0.0
        self.best = 0.0

    def open(self, broker: Broker, inst: Instrument, qty: float, entry: float,
             spec: tuple[float | None, float | None, float | None], ts: pd.Timestamp) -> None:  # fmt: skip
        sl, tp, tr = spec
        long = qty > 0
        side = Side.SELL if long else Side.BUY
        size = abs(qty)
        sign = 1.0 if long else -1.0
        tick = inst.round_price
        if sl is not None:
            px = tick(entry * (1 - sign * sl))
            self.orders.append(broker.place(inst, side, size, ts, OrderType.STOP, stop_price=px, tag="stop-loss"))
        if tp is not None:
            px = tick(entry * (1 + sign * tp))
            self.orders.append(broker.place(inst, side, size, ts, OrderType.LIMIT, limit_price=px, tag="take-profit"))
        if tr is not None:
            self.trail_frac, self.best = tr, entry
            self.trail = broker.place(inst, side, size, ts, OrderType.STOP,
                                      stop_price=tick(entry * (1 - sign * tr)), tag="trailing-stop")  # fmt: skip
            self.orders.append(self.trail)

    def update_trail(self, broker: Broker, inst: Instrument, qty: float, high: float,
                     low: float, ts: pd.Timestamp) -> None:  # fmt: skip
        t = self.trail
        if t is None or t.is_terminal:
            return
        long = qty > 0
        best = max(self.best, high) if long else min(self.best, low)
        if best == self.best:
            return
        self.best = best
        broker.cancel(t, ts, "trailing stop raised")
        px = inst.round_price(best * (1 - self.trail_frac) if long else best * (1 + self.trail_frac))
        self.trail = broker.place(inst, t.side, abs(qty), ts, OrderType.STOP, stop_price=px, tag="trailing-stop")
        self.orders = [o for o in self.orders if o is not t] + [self.trail]

    def close(self, broker: Broker, ts: pd.Timestamp) -> None:
        for o in self.orders:
            if not o.is_terminal:
                broker.cancel(o, ts, "position closed (one-cancels-other)")
        self.orders, self.trail = [], None


def run_bars(
    prices: pd.DataFrame,
    strategy: BarStrategy,
    spec: BacktestSpec,
    hooks: Hooks = NO_HOOKS,
    broker_factory: BrokerFactory = simulated_broker,
) -> Run:
    """Run a :class:`BarStrategy` bar by bar (see the module notes).

    The garbage collector stays on: ``on_bar`` is user code, run at every bar. The heap
    that existed before the run is frozen meanwhile (:func:`frozen_heap`), so the full
    collections a long run triggers do not rescan pandas and the user's session.
    """
    with frozen_heap():
        return _bar_loop(prices, strategy, spec, hooks, broker_factory)


def _liquidate(monitor: RiskMonitor, cause: str, broker: Broker, portfolio: Portfolio, instrument: Instrument,
               prices: pd.DataFrame, i: int, snap_i: list[int], snap_cash: list[float], snap_qty: list[float]) -> None:  # fmt: skip
    """The liquidation from the open after close ``i``, where a margin call or a FLATTEN
    drawdown rule (``cause``) called for it."""

    def snapshot(t: int) -> None:
        snap_i.append(t)
        snap_cash.append(portfolio.cash)
        snap_qty.append(portfolio.quantity(instrument))

    ohlcv = tuple(prices[k].to_numpy(dtype="float64")[:, None] for k in ("Open", "High", "Low", "Close", "Volume"))
    run_liquidation(broker, portfolio, [instrument], ohlcv, prices.index, i, monitor, snapshot, cause)


def _bar_loop(
    prices: pd.DataFrame, strategy: BarStrategy, spec: BacktestSpec, hooks: Hooks, broker_factory: BrokerFactory
) -> Run:
    instrument = spec.instruments[0]
    idx = prices.index
    n = len(idx)
    portfolio = Portfolio(spec.cash, instrument.currency, spec.cost_basis, account=spec.account)
    close2d = prices["Close"].to_numpy(dtype="float64")[:, None]
    broker, watch = guarded(broker_factory(portfolio, spec, hooks), portfolio, spec.risk, hooks.bus,
                            idx, close2d, np.array([instrument.multiplier]), (instrument.symbol,))  # fmt: skip
    margin = MarginWatch(spec.account, idx, close2d, np.array([instrument.multiplier]), getattr(broker, "monitor", None),
                         instruments=[instrument])
    mm, mult = margin.maintenance, instrument.multiplier
    flat = watch if watch is not None and watch.flattens else None  # FLATTEN: the drawdown rule at every close
    held, held_cash = 0.0, float(spec.cash)  # the position and cash between active bars
    costs = Costs(spec.commission, spec.slippage)
    sizer = bind_sizer(spec.sizer, prices)  # once per run: a sizer that needs the bars gets them here
    ctx = BarContext(prices, broker, portfolio, instrument, strategy.init(prices))
    at_open = [False]  # the engine is acting at a bar's open (its orders are checked there)
    if watch is not None:

        def catch_up() -> None:  # on_bar's orders are checked at this close, drawdown included
            if not at_open[0]:
                portfolio.mark(instrument.symbol, float(ctx._c[ctx.i]))
                watch.upto(ctx.i, portfolio.cash, portfolio.quantity(instrument))

        broker.before_check = catch_up  # type: ignore[attr-defined]
    o, h, lo, c, v = ctx._o, ctx._h, ctx._l, ctx._c, ctx._v
    sym = instrument.symbol
    protection = _Protection()
    snap_i: list[int] = []
    snap_cash: list[float] = []
    snap_qty: list[float] = []
    on_bar = strategy.on_bar
    n_fills = 0
    working = False  # the broker holds open orders (asked again only after something changed)
    for i in range(n):
        if ctx._pending is not None or working:
            ts = idx[i]
            bar = Bar(ts, float(o[i]), float(h[i]), float(lo[i]), float(c[i]), float(v[i]))
            q0 = portfolio.quantity(instrument)
            if watch is not None:
                watch.upto(i - 1, portfolio.cash, q0)
            at_open[0] = True
            portfolio.mark(sym, bar.open)
            if working:
                broker.on_bar(instrument, bar)
            if ctx._pending is not None:
                want, signal_ts = ctx._pending
                ctx._pending = None
                rebalance_to_target(broker, portfolio, costs, instrument, bar, want, signal_ts, bar.open, sizer, False,
                                    signal_bar=i - 1)  # decided at the previous close
            q1 = portfolio.quantity(instrument)
            if q1 != q0:
                protection.close(broker, ts)
                new_fills = broker.fills_since(n_fills)
                n_fills += len(new_fills)
                if q1 != 0 and any(x is not None for x in ctx._protect):
                    entry = new_fills[-1].price
                    protection.open(broker, instrument, q1, entry, ctx._protect, ts)
            elif q1 != 0 and protection.trail is not None:
                protection.update_trail(broker, instrument, q1, bar.high, bar.low, ts)
            portfolio.mark(sym, bar.close)
            snap_i.append(i)
            snap_cash.append(portfolio.cash)
            snap_qty.append(q1)
            at_open[0] = False
            working = broker.has_open_orders
            held, held_cash = q1, portfolio.cash
        if held and (mm or held < 0 or held_cash < 0):  # the margin rule at this close
            value = held * c[i] * mult
            if held_cash + value < mm * abs(value) or held_cash + value <= 0:
                _liquidate(margin.call(i, held_cash, held), "margin call", broker, portfolio, instrument, prices, i,
                           snap_i, snap_cash, snap_qty)  # fmt: skip
                break
        if flat is not None and flat.flatten_close(i, held_cash, held) is not None:  # before on_bar, as a call
            _liquidate(flat.monitor, "drawdown", broker, portfolio, instrument, prices, i, snap_i, snap_cash, snap_qty)
            break
        ctx.i = i
        on_bar(ctx)
        if ctx._touched:
            ctx._touched = False
            working = broker.has_open_orders
    broker.expire_all(idx[-1])
    portfolio.mark(sym, float(c[-1]))
    if watch is not None:  # the log shows a state change after the last order too
        watch.upto(n - 1, portfolio.cash, portfolio.quantity(instrument))
    return finish(broker, portfolio, *curves(idx, c, instrument, spec.cash, snap_i, snap_cash, snap_qty), margin)
