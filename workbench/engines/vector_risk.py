"""Risk on the vectorized engine: a RiskProfile's pre-trade checks and the margin call of a
cash account, replayed on vectorbt runs so that both engines fill and log the same.

vectorbt decides and fills inside its own loop, so no check can sit between the two. What
can be done exactly for a signal strategy: every order comes at a change of the target,
and an order the event engine's :class:`~workbench.risk.gate.RiskGate` denies leaves the
position as it was until the next change. So the engine

1. runs vectorbt on an *effective* target (the strategy's, clipped at zero when the
   profile is long-only: a first guess that is right for every LongOnly denial);
2. walks the changes of the strategy's target in time order and rebuilds each order the
   event engine would place there (:func:`order_for_target`: side, quantity sized at the
   execution price, from vectorbt's cash and position before it), and puts it through the
   same :class:`~workbench.risk.monitor.RiskMonitor` the event engine uses;
3. where the decision differs from what the run did (the order was denied: the position
   is held; cut to its closing leg: flat), corrects the effective target from that change
   on and runs vectorbt again before the next change. Nothing before it moves, so the
   walk goes on where it was. Runs = 1 + the corrections.

A cash account whose equity reaches zero with a position held gets the event engine's
margin call (:class:`~workbench.engines.rebalance.MarginWatch`): the call at that close,
the position closed at the next bar's open under the run's costs, no order after, HALTED.
Only the profiles whose every rule is checked at the order (the limits in
:data:`ORDER_LIMITS`) run here; a drawdown rule or another limit is refused by name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.engines.rebalance import Costs, MarginWatch, liquidation_reason, order_for_target
from workbench.risk.limits import (
    LongOnly,
    MaxGrossLeverage,
    MaxNetLeverage,
    MaxOrderNotional,
    MaxOrderQuantity,
    MaxOrdersPerDay,
    MaxPositionWeight,
)
from workbench.risk.monitor import RiskMonitor
from workbench.risk.profile import RiskProfile
from workbench.strategy.spec import BacktestSpec
from workbench.trading.costs import Bar, fill_price
from workbench.trading.enums import FillTiming, OrderType, Side
from workbench.trading.orders import Order
from workbench.trading.sizing import Sizer, bind_sizer
from workbench.trading.values import Instrument

__all__ = ["ORDER_LIMITS", "profile_refusal", "Replay", "SignalWalk", "Liquidated", "Closing",
           "margin_call_row"]

#: the limits decided by the order and the account before it alone (no history, no curve)
ORDER_LIMITS = (MaxOrderNotional, MaxOrderQuantity, MaxPositionWeight, MaxGrossLeverage, MaxNetLeverage, LongOnly,
                MaxOrdersPerDay)  # fmt: skip


def profile_refusal(profile: RiskProfile | None) -> str:
    """What of ``profile`` the vectorized engine cannot enforce exactly, or ``""``."""
    if profile is None:
        return ""
    if profile.max_drawdown is not None:
        return (f"a risk profile with max_drawdown={profile.max_drawdown:g} (the drawdown rule acts between "
                "orders, inside vectorbt's loop); use engine='event'")  # fmt: skip
    for limit in profile.limits:
        if type(limit) not in ORDER_LIMITS:
            return (f"the limit {limit!r} (the vectorized engine checks "
                    f"{', '.join(t.__name__ for t in ORDER_LIMITS)}); use engine='event'")  # fmt: skip
    return ""


class _Book:
    """The account before an order, as a :class:`~workbench.trading.broker.PortfolioView`
    of one instrument marked at the execution price."""

    __slots__ = ("cash", "q", "symbol", "mult", "marks", "currency", "positions")

    def __init__(self, cash: float, q: float, instrument: Instrument, mark: float) -> None:
        self.cash, self.q, self.symbol, self.mult = cash, q, instrument.symbol, instrument.multiplier
        self.marks = {self.symbol: mark}
        self.currency = instrument.currency
        self.positions = {self.symbol: _Held(q)}  # what the account rules read

    def exposure_excluding(self, symbol: str) -> tuple[float, float]:
        return 0.0, 0.0  # one instrument

    @property
    def equity(self) -> float:
        return self.cash + self.market_value()

    def quantity(self, instrument: Instrument) -> float:
        return self.q if instrument.symbol == self.symbol else 0.0

    def market_value(self) -> float:
        return self.q * self.marks[self.symbol] * self.mult

    def gross_exposure(self) -> float:
        return abs(self.market_value())


@dataclass(frozen=True, slots=True)
class _Held:
    quantity: float


def margin_call_row(value: np.ndarray, assets: np.ndarray, a: int, b: int) -> int | None:
    """The first close in ``a .. b-1`` at which a cash account holding a position has no
    equity left (the cash account's maintenance is 0: equity <= 0), or None."""
    held = assets[a:b] != 0
    if not held.any():
        return None
    hit = np.flatnonzero(held & (value[a:b] <= 0))
    return a + int(hit[0]) if len(hit) else None


@dataclass(frozen=True, slots=True)
class Closing:
    """One fill of a liquidation (made by this engine, not by vectorbt: with no equity left
    vectorbt would cover only what its cash pays for)."""

    order_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    fee: float


@dataclass(frozen=True, slots=True)
class Liquidated:
    """Every position closed at ``row``'s open; ``cash_after`` is the equity from then on."""

    row: int
    fills: tuple[Closing, ...]
    cash_after: float


@dataclass(kw_only=True)
class Replay:
    """What a replayed vectorbt run adds to its tables and log: the monitor, the event
    engine's order ids and tags by execution row, the orders that never filled, and the
    liquidation after a margin call."""

    monitor: RiskMonitor | None = None
    order_ids: dict[int, str] = field(default_factory=dict)  # execution row -> order id
    tags: dict[str, str] = field(default_factory=dict)  # order id -> entry / exit / reverse
    unfilled: list[Order] = field(default_factory=list)  # denied by the profile, rejected by the account
    liquidated: Liquidated | None = None
    n_orders: int = 0

    def next_id(self) -> str:
        self.n_orders += 1
        return f"O-{self.n_orders}"

    def margin_call(self, watch: MarginWatch, prices: Callable[[str, str, int], float], instruments: list[Instrument],
                    spec: BacktestSpec, j: int, cash: float, held: np.ndarray) -> None:  # fmt: skip
        """The margin call at close ``j`` (recorded by the event engine's ``watch``) and the
        liquidation at the next open, logged as :class:`~workbench.engines.rebalance.Liquidation`
        logs it (``prices(symbol, field, row)`` reads the bars)."""
        watch.monitor = self.monitor
        monitor = self.monitor = watch.call(j, cash, held)
        idx, n = watch.idx, len(watch.idx)
        held_of = [(inst, float(q)) for inst, q in zip(instruments, held, strict=True) if q != 0]
        if j + 1 >= n:
            left = [f"{q:g} {inst.symbol} (no bar left to sell on)" for inst, q in held_of]
            monitor.halt(idx[n - 1], liquidation_reason("margin call", idx[j], left))
            return
        fills = []
        for inst, q in held_of:
            bar = Bar(idx[j + 1], *(prices(inst.symbol, f, j + 1) for f in ("Open", "High", "Low", "Close", "Volume")))
            side = Side.SELL if q > 0 else Side.BUY
            price = fill_price(spec.slippage, side, bar.open, abs(q), bar)
            fee = spec.commission.calculate(abs(q), price, inst)
            fills.append(Closing(self.next_id(), inst.symbol, side, abs(q), price, fee))
            cash += q * price * inst.multiplier - fee
        for f, (_, q) in zip(fills, held_of, strict=True):
            monitor.liquidated(idx[j + 1], f.symbol, q, f.price, f.order_id)
        self.liquidated = Liquidated(j + 1, tuple(fills), cash)
        monitor.halt(idx[j + 1], liquidation_reason("margin call", idx[j], []))


Simulate = Callable[[np.ndarray], tuple[Any, np.ndarray, np.ndarray, np.ndarray]]


@dataclass(kw_only=True)
class SignalWalk(Replay):
    """The replay of one signal run (module notes). ``simulate(eff)`` runs vectorbt on an
    effective target and returns (portfolio, cash, assets, value), one entry per bar."""

    prices: pd.DataFrame
    tgt: np.ndarray
    instrument: Instrument
    spec: BacktestSpec
    simulate: Simulate | None = None
    runs: int = 0

    def run(self) -> Any:
        """The final vectorbt portfolio, after every correction (and ``liquidated``).

        First the account is carried from change to change by the broker's own rules
        (fill price, commission) to decide every order in one pass, and vectorbt runs once
        on the result; if vectorbt's cash and position at any change differ from what was
        carried, the decisions are redone from vectorbt's own state, one run per
        correction (:meth:`_replayed`)."""
        pf = self._carried()
        if pf is not None:
            return pf
        self.monitor, self.order_ids, self.tags, self.unfilled, self.liquidated, self.n_orders = None, {}, {}, [], None, 0
        return self._replayed()

    def _start(self) -> tuple[np.ndarray, int, list[int]]:
        self.monitor = RiskMonitor(self.spec.risk) if self.spec.risk is not None else None
        shift = 0 if self.spec.fill_timing is FillTiming.SIGNAL_CLOSE else 1
        tgt, n = self.tgt, len(self.tgt)
        prev = np.concatenate(([0.0], tgt[:-1]))
        return self.first_guess(), shift, [int(s) for s in np.flatnonzero(tgt != prev) if s + shift < n]

    def _carried(self) -> Any:
        """One pass with the account carried by hand, one vectorbt run, then the check
        that vectorbt holds what was carried at every change; None when it does not."""
        eff, shift, changes = self._start()
        n, watch = len(eff), self._watch
        cash, q, last, call = float(self.spec.cash), 0.0, 0, None
        expected: list[tuple[int, float, float]] = []
        for i, s in enumerate(changes):
            k = s + shift
            call = watch.scan(last, k, cash, q)
            if call is not None:
                break
            end = changes[i + 1] if i + 1 < len(changes) else n
            eff[s:end], (cash, q) = self._decide(s, k, cash, q)
            expected.append((k, q, cash))
            last = k
        else:
            call = watch.scan(last, n, cash, q)
        if call is not None:
            _hold_after(eff, call, shift)
        pf, cash_v, assets, value = self._simulate(eff)
        if margin_call_row(value, assets, 0, n) != call or not all(
            _close(assets[k], q) and _close(cash_v[k], c) for k, q, c in expected
        ):
            return None
        if call is not None:
            self._call(call, cash_v, assets, value)
        return pf

    def _replayed(self) -> Any:
        """Decisions from vectorbt's own state: a new run after every correction."""
        eff, shift, changes = self._start()
        n = len(eff)
        pf, cash, assets, value = self._simulate(eff)
        last = 0
        for i, s in enumerate(changes):
            k = s + shift
            j = margin_call_row(value, assets, last, k)
            if j is not None:
                return self._liquidate(eff, j, shift)
            end = changes[i + 1] if i + 1 < len(changes) else n
            q0 = float(assets[k - 1]) if k > 0 else 0.0
            cash0 = float(cash[k - 1]) if k > 0 else float(self.spec.cash)
            want, _ = self._decide(s, k, cash0, q0)
            if not np.all(eff[s:end] == want):
                eff[s:end] = want
                pf, cash, assets, value = self._simulate(eff)
            last = k
        j = margin_call_row(value, assets, last, n)
        return self._liquidate(eff, j, shift) if j is not None else pf

    @functools.cached_property
    def _sizer(self) -> Sizer:
        return bind_sizer(self.spec.sizer, self.prices)

    def first_guess(self) -> np.ndarray:
        """The effective target of the first run: the strategy's, clipped at zero under a
        LongOnly limit (every short entry is then denied, every reversal cut to flat)."""
        long_only = self.spec.risk is not None and any(type(x) is LongOnly for x in self.spec.risk.limits)
        return np.maximum(self.tgt, 0.0) if long_only else self.tgt.copy()

    def _simulate(self, eff: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
        self.runs += 1
        assert self.simulate is not None, "SignalWalk.simulate is set by the engine"
        return self.simulate(eff)

    def _bar(self, k: int) -> Bar:
        p = self.prices
        return Bar(p.index[k], *(float(p[c].iat[k]) for c in ("Open", "High", "Low", "Close", "Volume")))

    def _decide(self, s: int, k: int, cash0: float, q0: float) -> tuple[float, tuple[float, float]]:
        """(effective target from change ``s`` on, (cash, position) after row ``k``): the
        event engine's decision for the order it would place there, executed at ``k``
        with ``cash0`` and ``q0`` before it."""
        want = float(self.tgt[s])
        bar = self._bar(k)
        ref = bar.close if self.spec.fill_timing is FillTiming.SIGNAL_CLOSE else bar.open
        order = order_for_target(q0, cash0, Costs(self.spec.commission, self.spec.slippage), self.instrument, bar,
                                 want, ref, self._sizer, s)  # fmt: skip
        if order is None:
            return want, (cash0, q0)
        side, quantity, tag = order
        o = Order(order_id=self.next_id(), instrument=self.instrument, side=side, quantity=quantity,
                  ts=self.prices.index[s], order_type=OrderType.MARKET, tag=tag)  # fmt: skip
        book = _Book(cash0, q0, self.instrument, ref)
        breach = None if self.monitor is None else self.monitor.check(o, ref, book)
        if breach is not None and breach.reduce_to is None:
            o.deny(o.ts, f"risk: {breach.message}", breach.limit)
            self.unfilled.append(o)
            return float(np.sign(q0)), (cash0, q0)  # denied: the position is held
        if breach is not None:  # a reversal cut to its closing leg: flat
            o.modify(o.ts, quantity=breach.reduce_to)
            want = 0.0
        spec, q = self.spec, o.quantity
        px = fill_price(spec.slippage, o.side, ref, q, bar)  # the broker's price: slipped, clamped into the bar
        fee = spec.commission.calculate(q, px, o.instrument)
        signed = o.side.sign * q
        why = spec.account.check_fill(book, o.instrument, signed, px, fee)  # type: ignore[arg-type]
        if why:  # the broker would reject it (e.g. a short larger than equity on a cash account)
            o.reject(bar.ts, why)
            self.unfilled.append(o)
            return float(np.sign(q0)), (cash0, q0)
        self.order_ids[k] = o.order_id
        self.tags[o.order_id] = tag
        return want, (cash0 - signed * px * o.instrument.multiplier - fee, q0 + signed)

    def _liquidate(self, eff: np.ndarray, j: int, shift: int) -> Any:
        """The margin call at close ``j``: vectorbt trades nothing after it, and the position
        is closed at row ``j + 1``'s open under the run's costs (:meth:`Replay.margin_call`)."""
        _hold_after(eff, j, shift)
        pf, cash, assets, value = self._simulate(eff)
        self._call(j, cash, assets, value)
        return pf

    def _call(self, j: int, cash: np.ndarray, assets: np.ndarray, value: np.ndarray) -> None:
        p = self.prices
        self.margin_call(self._watch, lambda sym, f, row: float(p[f].iat[row]), [self.instrument], self.spec, j,
                         float(cash[j]), np.array([float(assets[j])]))  # fmt: skip

    @functools.cached_property
    def _watch(self) -> MarginWatch:
        """The event engine's margin rule on this run's closes (the cash account's: equity <= 0)."""
        close = self.prices["Close"].to_numpy(dtype="float64")[:, None]
        inst = self.instrument
        return MarginWatch(self.spec.account, self.prices.index, close, np.array([inst.multiplier]), None,
                           instruments=[inst])  # fmt: skip


def _hold_after(eff: np.ndarray, j: int, shift: int) -> None:
    """No execution row after ``j``: the effective target stays as it is from there."""
    start = j + 1 - shift
    if start < len(eff):
        eff[start:] = eff[start - 1] if start > 0 else 0.0


def _close(a: float, b: float) -> bool:
    return abs(float(a) - b) <= 1e-9 * max(1.0, abs(b))
