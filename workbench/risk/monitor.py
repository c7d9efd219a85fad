"""The RiskMonitor: a RiskProfile's state during one run, and its risk log.

It answers the pre-trade question for every order (:meth:`RiskMonitor.check`), watches
equity for the drawdown rule (:meth:`RiskMonitor.observe`), and keeps every decision that
matters as a risk event: denials (``RiskCheckFailed``), state changes
(``TradingStateChanged``) and, from a finished run's curves, limits breached by price
moves (``LimitBreached``, :func:`drift_breaches`). Passed checks are counted and published
on the bus, not logged (one per order would swamp the log).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.risk.events import (
    LimitBreached,
    MarginCallTriggered,
    PositionLiquidated,
    RiskCheckFailed,
    RiskCheckPassed,
    TradingStateChanged,
)
from workbench.risk.limits import (
    Breach,
    Limit,
    MaxGrossLeverage,
    MaxHHI,
    MaxPositionWeight,
    MaxTopNWeight,
    Proposal,
)
from workbench.risk.profile import DrawdownAction, RiskLevel, RiskProfile, TradingState
from workbench.trading.broker import PortfolioView
from workbench.trading.events import Event, EventBus
from workbench.trading.orders import Order

__all__ = ["RiskMonitor", "RiskLog", "drift_breaches", "RISK_LOG_COLUMNS"]

#: the engine's own orders for positions already held: they pass even when HALTED
PROTECTIVE_TAGS = frozenset({"stop-loss", "take-profit", "trailing-stop", "liquidation"})
RISK_LOG_COLUMNS = ["ts", "event", "order_id", "limit", "value", "threshold", "detail"]
_DAY_NS = 86_400_000_000_000
_ACTIVE = TradingState.ACTIVE


@dataclass(frozen=True, kw_only=True)
class RiskLog:
    """What the risk profile did in one run: every denial, state change and drift breach
    (``events``, in time order), the final trading state, the highest risk level reached,
    and how many orders passed and were denied."""

    events: pd.DataFrame
    state: str
    level: str
    passed: int
    denied: int
    reduced: int = 0

    def __repr__(self) -> str:
        cut = f", {self.reduced} cut to their closing leg" if self.reduced else ""
        return (f"<RiskLog {self.state}, level {self.level}: {self.passed} orders passed, {self.denied} denied{cut}, "
                f"{len(self.events)} events>")  # fmt: skip


class RiskMonitor:
    """One run's risk state (see the module notes)."""

    def __init__(self, profile: RiskProfile, bus: EventBus | None = None) -> None:
        self.profile = profile
        self.bus = bus
        self.state = TradingState.ACTIVE
        self.log: list[Event] = []
        self.passed = 0
        self.denied = 0
        self.reduced = 0  # reversals cut to their closing leg
        #: called with the timestamp when the state leaves ACTIVE (the gate cancels adding orders)
        self.on_state_change: Any = None
        self.peak = -math.inf
        self.max_usage = 0.0
        self._day: object = None
        self._today = 0
        self._ts: object = None  # the last order's stamp: its day is known (orders share stamps)
        #: the close (bar number) at which a FLATTEN drawdown rule fired: liquidate after it
        self.flatten_close: int | None = None
        self._causes: dict[int, str] = {}  # log position of a PositionLiquidated -> its cause
        self._use(profile.limits)

    def _use(self, limits: tuple[Limit, ...]) -> None:
        self.limits = limits
        self._assess = tuple(lim.assess for lim in limits)  # bound once, not per order

    def bind(self, index: pd.Index, close: np.ndarray, symbols: Sequence[str]) -> None:
        """Give the limits that need price history (those with ``bind``, e.g. ``MaxVaR``)
        the run's closes: ``close`` is (bars × instruments), column j is ``symbols[j]``,
        bar t is ``index[t]``. The profile itself is left as it is (it is a value, shared
        across runs); the bound limits live here, for this run."""
        self._use(tuple(lim.bind(index, close, symbols) if callable(getattr(lim, "bind", None)) else lim
                        for lim in self.profile.limits))  # fmt: skip

    # -- pre-trade ------------------------------------------------------------------------
    def check(self, order: Order, price: float, book: PortfolioView, working: float = 0.0) -> Breach | None:
        """The first rule ``order`` breaks (trading state first, then the limits in the
        profile's order), or None; a pass counts against today's order budget.

        ``working`` is the signed rest of the orders already working in the instrument:
        an order "only reduces" against the position they will leave. A reversal (one order:
        close, then open the other side) that breaks any rule but HALTED is not denied: its
        closing leg only reduces, which no rule blocks, so the breach carries ``reduce_to``,
        the closing quantity, and the caller cuts the order to it. A rule meant to cut risk
        (a notional cap, REDUCING_ONLY, LongOnly) never keeps a position open."""
        ts = order.ts
        if ts is not self._ts:
            self._ts = ts
            day = ts.value // _DAY_NS  # the UTC date, as a day number (stamps are UTC)
            if day != self._day:
                self._day, self._today = day, 0
        p = Proposal(order, price, book, self._today, working)
        breach = None if self.state is _ACTIVE else self._state_breach(p)
        if breach is None:
            top = self.max_usage
            for assess in self._assess:
                usage, breach = assess(p)
                if usage > top:
                    top = usage
                if breach is not None:
                    break
            self.max_usage = top
        if breach is not None and p.reversal and self.state is not TradingState.HALTED:  # the closing leg only reduces
            breach = Breach(breach.limit, breach.value, breach.threshold,
                            f"{breach.message}; cut to the closing {abs(p.q0):g}", reduce_to=abs(p.q0))  # fmt: skip
        if breach is None:
            self._today += 1
            self.passed += 1
            if self.bus is not None:
                self.bus.publish(RiskCheckPassed(ts=order.ts, order_id=order.order_id))
        else:
            self.denied += breach.reduce_to is None
            self.reduced += breach.reduce_to is not None
            self._emit(RiskCheckFailed(ts=order.ts, order_id=order.order_id, limit=breach.limit,
                                       value=float(breach.value), threshold=float(breach.threshold),
                                       reason=breach.message))  # fmt: skip
        return breach

    def _state_breach(self, p: Proposal) -> Breach | None:
        if self.state is TradingState.HALTED and not (p.reduces_only and p.order.tag in PROTECTIVE_TAGS):
            return Breach("TradingState", 1.0, 0.0, "trading is HALTED (only protective exits pass)")
        if self.state is TradingState.REDUCING_ONLY and not p.reduces_only:
            return Breach("TradingState", abs(p.q1), abs(p.q0),
                          f"trading is REDUCING_ONLY: the order takes |position| from {abs(p.q0):g} to {abs(p.q1):g}")  # fmt: skip
        return None

    @property
    def level(self) -> RiskLevel:
        """The highest level any order of the run reached (CRITICAL once one was denied, or
        after a margin call)."""
        margin_call = any(isinstance(e, MarginCallTriggered) for e in self.log)
        return RiskLevel.CRITICAL if self.denied or margin_call else RiskLevel.of_usage(self.max_usage)

    # -- the drawdown rule ----------------------------------------------------------------
    @property
    def watching(self) -> bool:
        """True while equity can still change the state (a drawdown rule, still ACTIVE)."""
        return self.profile.max_drawdown is not None and self.state is TradingState.ACTIVE

    def clear(self, high: float, low: float) -> bool:
        """True (and the peak moved on) when a span whose equity stays within [low, high]
        cannot reach the drawdown limit: its lowest point is above the highest peak it can
        have. The common case costs two comparisons instead of a running maximum."""
        peak = high if high > self.peak else self.peak
        if low > peak * (1.0 - self.profile.max_drawdown):  # type: ignore[operator]
            self.peak = peak
            return True
        return False

    def observe(self, stamps: pd.Index, equity: np.ndarray, start: int = 0) -> None:
        """Equity at consecutive closes ``stamps[start:start + len(equity)]``: the running
        peak moves on and the first close at ``max_drawdown`` below it changes the state
        (FLATTEN: to HALTED, and :attr:`flatten_close` is that close's bar number, for the
        engine to liquidate from the next open)."""
        limit = self.profile.max_drawdown
        if limit is None or self.state is not TradingState.ACTIVE or len(equity) == 0:
            return
        peaks = np.maximum.accumulate(np.maximum(equity, self.peak))
        hit = np.flatnonzero(equity <= peaks * (1.0 - limit))
        self.peak = float(peaks[-1])
        if len(hit):
            i = int(hit[0])
            action = self.profile.drawdown_action
            new = TradingState.REDUCING_ONLY if action is DrawdownAction.REDUCE else TradingState.HALTED
            dd = 1.0 - float(equity[i]) / float(peaks[i])
            then = "; every position is closed at the next open" if action is DrawdownAction.FLATTEN else ""
            if action is DrawdownAction.FLATTEN:
                self.flatten_close = start + i  # the engine liquidates from the next bar on
            self._set_state(stamps[start + i], new,
                            f"drawdown {dd:.2%} from the peak {peaks[i]:,.2f} reached max_drawdown {limit:.2%}{then}")  # fmt: skip

    # -- margin calls -----------------------------------------------------------------------
    def margin_call(self, ts: Any, equity: float, requirement: float, maintenance: float) -> None:
        self._emit(MarginCallTriggered(ts=ts, equity=equity, requirement=requirement, maintenance=maintenance))

    def liquidated(self, ts: Any, symbol: str, quantity: float, price: float, order_id: str,
                   cause: str = "margin call") -> None:  # fmt: skip
        """A liquidation fill; ``cause`` ("margin call" or "drawdown") names the rule in the log."""
        self._causes[len(self.log)] = cause
        self._emit(PositionLiquidated(ts=ts, symbol=symbol, quantity=quantity, price=price, order_id=order_id))

    def halt(self, ts: Any, reason: str, again: bool = False) -> None:
        """HALTED from ``ts``; when already HALTED, nothing, unless ``again`` (a state
        change to the same state that records ``reason``, e.g. what a liquidation left)."""
        if self.state is not TradingState.HALTED or again:
            self._set_state(ts, TradingState.HALTED, reason)

    def _set_state(self, ts: Any, new: TradingState, reason: str) -> None:
        old, self.state = self.state, new
        self._emit(TradingStateChanged(ts=ts, old=old.value, new=new.value, reason=reason))
        if self.on_state_change is not None:
            self.on_state_change(ts)

    def _emit(self, event: Event) -> None:
        self.log.append(event)
        if self.bus is not None:
            self.bus.publish(event)

    # -- the log ----------------------------------------------------------------------------
    def result(self, extra: list[Event] | None = None) -> RiskLog:
        return RiskLog(events=self.frame(extra), state=self.state.value, level=self.level.name,
                       passed=self.passed, denied=self.denied, reduced=self.reduced)  # fmt: skip

    def frame(self, extra: list[Event] | None = None) -> pd.DataFrame:
        """The risk log as a table, in time order (denials, state changes, breaches)."""
        rows = [_row(e, self._causes.get(i, "margin call")) for i, e in enumerate([*self.log, *(extra or [])])]
        out = pd.DataFrame(rows, columns=RISK_LOG_COLUMNS)
        return out.sort_values("ts", kind="stable").reset_index(drop=True) if len(out) else out


def _row(e: Event, cause: str = "margin call") -> dict[str, Any]:
    if isinstance(e, RiskCheckFailed):
        return {"ts": e.ts, "event": "RiskCheckFailed", "order_id": e.order_id, "limit": e.limit,
                "value": e.value, "threshold": e.threshold, "detail": e.reason}  # fmt: skip
    if isinstance(e, LimitBreached):
        return {"ts": e.ts, "event": "LimitBreached", "order_id": "", "limit": e.limit,
                "value": e.value, "threshold": e.threshold, "detail": "price moves, no order"}  # fmt: skip
    if isinstance(e, MarginCallTriggered):
        return {"ts": e.ts, "event": "MarginCallTriggered", "order_id": "", "limit": "maintenance margin",
                "value": e.equity, "threshold": e.requirement,
                "detail": (f"equity {e.equity:,.2f} < {e.maintenance:g} x gross exposure = {e.requirement:,.2f}"
                           if e.maintenance else f"equity {e.equity:,.2f} <= 0 with positions held")}  # fmt: skip
    if isinstance(e, PositionLiquidated):
        margin = cause == "margin call"
        return {"ts": e.ts, "event": "PositionLiquidated", "order_id": e.order_id,
                "limit": "maintenance margin" if margin else "max drawdown", "value": e.quantity,
                "threshold": math.nan, "detail": f"closed {e.quantity:g} {e.symbol} at {e.price:g} after the {cause}"}  # fmt: skip
    assert isinstance(e, TradingStateChanged)
    return {"ts": e.ts, "event": "TradingStateChanged", "order_id": "", "limit": "TradingState",
            "value": math.nan, "threshold": math.nan, "detail": f"{e.old} -> {e.new}: {e.reason}"}  # fmt: skip


def drift_breaches(profile: RiskProfile, values: pd.DataFrame, equity: pd.Series) -> list[LimitBreached]:
    """Position-weight, gross-leverage and concentration caps (top-N weight, HHI) exceeded
    at a close with no order: the first close of each episode over the cap (``values``:
    signed position values at each close, one column per instrument). Computed from the
    finished curves, so it sees every bar, including those an engine skipped. (The VaR
    limit is not replayed here: it would need a VaR at every close.)"""
    eq = equity.to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.abs(values.to_numpy(dtype="float64")) / eq[:, None]
    out: list[LimitBreached] = []
    for limit in profile.limits:
        if isinstance(limit, MaxPositionWeight):
            series = np.nanmax(weights, axis=1) if weights.shape[1] else np.zeros(len(eq))
        elif isinstance(limit, MaxGrossLeverage):
            series = np.nansum(weights, axis=1)
        elif isinstance(limit, MaxTopNWeight):
            series = np.sort(np.nan_to_num(weights), axis=1)[:, ::-1][:, : limit.n].sum(axis=1)
        elif isinstance(limit, MaxHHI):
            series = _hhi_series(np.nan_to_num(np.abs(values.to_numpy(dtype="float64"))), eq, limit.min_gross)
        else:
            continue
        over = series > limit.threshold * (1 + 1e-9)
        starts = np.flatnonzero(over & ~np.concatenate(([False], over[:-1])))
        out += [LimitBreached(ts=equity.index[i], limit=limit.name, value=float(series[i]),
                              threshold=limit.threshold) for i in starts]  # fmt: skip
    return out


def _hhi_series(gross_values: np.ndarray, equity: np.ndarray, min_gross: float) -> np.ndarray:
    """HHI of the gross weights at each close (0 for an empty book, and where the book is
    below ``min_gross`` × equity: not judged, as at the order)."""
    g = gross_values.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = ((gross_values / g[:, None]) ** 2).sum(axis=1)
    judged = (g > 0) & ~(g < min_gross * equity)
    return np.where(judged, out, 0.0)
