"""The trading loop: signal → risk check → order → fill → portfolio, one closed bar at a time.

:class:`TradingLoop` runs the same :class:`~workbench.strategy.spec.BacktestSpec` (strategy,
costs, sizing, risk profile) the backtests run, against a :class:`~workbench.trading.venue.Venue`
(the paper broker or a ccxt exchange), on bars from a :class:`~workbench.trading.feeds.Feed`.

Each step (a timestamp with one closed bar per instrument):

1. the bars are logged (write-ahead), marked at the open, and the venue matches or is
   polled for the orders still working;
2. a decision made at the previous close is executed at this bar's open (a venue that
   matches bars, i.e. the paper broker, with ``NEXT_OPEN`` timing);
3. at the close: the strategy decides from the bars up to and including this one, and a
   changed decision is logged and, on a venue that trades in real time (ccxt) or with
   ``SIGNAL_CLOSE``, executed now; then the drawdown rule sees the close's equity;
4. the step is logged with the cash, equity and positions it ended with.

Orders are sized, cancelled and placed by the engines' own rebalancing functions
(:func:`~workbench.engines.rebalance.rebalance_to_target`, the weights rebalance), so a
replay of history through the loop with the paper broker reproduces the event engine's
backtest fill for fill. Every order's id is its client order id, derived from the
session, the strategy, the decision's bar and the order's number in that decision
(:func:`~workbench.trading.venue.client_order_id`); its intent is logged before it is sent.
Fills and every domain event are logged as they arrive. What a restart does with the log
is in :mod:`workbench.engines.recovery`.

Supported: signal strategies (one instrument) and portfolio strategies (target weights)
on a cash account. Per-bar callback strategies, margin accounts and the FLATTEN drawdown
action are refused by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from workbench.engines.event import _rebalance_weights
from workbench.engines.rebalance import Costs, rebalance_to_target
from workbench.errors import ParameterError, StrategyStateError
from workbench.risk.gate import RiskGate
from workbench.risk.monitor import RiskMonitor
from workbench.strategy.base import StrategyStatus
from workbench.strategy.spec import BacktestSpec
from workbench.strategy.targets import check_weights
from workbench.trading.accounts import BuysFromCash, CashAccount
from workbench.trading.broker import AccountState, Broker, place_order
from workbench.trading.costs import Bar
from workbench.trading.enums import FillTiming
from workbench.trading.eventlog import EventLog, LogRecord
from workbench.trading.events import Event, EventBus
from workbench.trading.feeds import FIELDS, Feed, Step
from workbench.trading.orders import Fill, Order
from workbench.trading.portfolio import Portfolio
from workbench.trading.reconcile import ReconcilePolicy, Reconciliation
from workbench.trading.records import fill_payload, stamp, to_payload
from workbench.trading.sizing import bind_sizer
from workbench.trading.values import Instrument
from workbench.trading.venue import Venue, client_order_id

__all__ = ["TradingLoop", "VenueFactory", "Journal", "Faults", "NO_FAULTS", "PauseRule"]

VenueFactory = Callable[[Portfolio, EventBus], Venue]
#: ``faults(point)`` is called at each named point of a step (tests kill the process there):
#: ``bar_logged`` (recorded; committed with the step's first write), ``intent_logged``
#: (committed, before the venue has it), ``submitted`` (the venue has it, the log does not
#: know yet), ``fills_received`` (booked in memory, not yet logged), ``step_logged``.
Faults = Callable[[str], None]


def NO_FAULTS(point: str) -> None:
    """The default: no fault injection."""


PauseRule = str  # "cancel" (pausing cancels working orders) or "keep"


class Journal:
    """The loop's writer: records collect here and are appended to the log atomically at
    each commit point; every domain event on the bus is recorded as it is published.
    ``before_commit`` adds what must go with any commit (the fills booked so far: a fill's
    record is never committed after its order's OrderFilled event)."""

    def __init__(self, log: EventLog, session: str, events_logged: int = 0) -> None:
        self.log, self.session = log, session
        self.pending: list[LogRecord] = []
        self.events = events_logged  # events logged so far: the next event's key
        self.before_commit: Callable[[], None] | None = None

    def add(self, kind: str, key: str, ts: Any, data: dict[str, Any]) -> None:
        self.pending.append(LogRecord(kind=kind, key=key, ts=stamp(ts), data=data))

    def on_event(self, event: Any) -> None:
        self.add("event", f"event:{self.events}", event.ts, to_payload(event))
        self.events += 1

    def commit(self) -> None:
        if self.before_commit is not None:
            self.before_commit()
        if self.pending:
            batch, self.pending = self.pending, []
            self.log.append(self.session, batch)


class _WriteAhead:
    """A Broker in front of the venue: each order gets its deterministic client id and its
    intent is logged (committed) before the venue sees it."""

    def __init__(self, venue: Venue, journal: Journal, faults: Faults, namespace: str) -> None:
        self.venue, self.journal, self.faults, self.namespace = venue, journal, faults, namespace
        self.decision_ts: pd.Timestamp | None = None
        self.decision = ""  # its stamp
        #: decision stamp -> client ids handed out (denied orders' too: a number is never reused)
        self.numbered: dict[str, int] = {}
        #: decision stamp -> client ids whose intent is logged (sent, or about to be)
        self.sent: dict[str, set[str]] = {}

    def begin(self, decision_ts: pd.Timestamp) -> None:
        """Orders from here on belong to the decision of ``decision_ts`` (numbered after
        those it already has, also across a restart: see ``engines.recovery``)."""
        self.decision_ts, self.decision = decision_ts, stamp(decision_ts)

    def next_order_id(self) -> str:
        if self.decision_ts is None:
            raise StrategyStateError("the trading loop places orders only for a logged decision")
        n = self.numbered.get(self.decision, 0) + 1
        self.numbered[self.decision] = n
        return client_order_id(self.namespace, "", self.decision_ts, n)

    def submit(self, order: Order) -> Order:
        if self.decision_ts is not None:
            self.sent.setdefault(self.decision, set()).add(order.order_id)
        self.journal.add("intent", f"intent:{order.order_id}", order.ts, _intent(order, self.decision_ts))
        self.journal.commit()
        self.faults("intent_logged")
        out = self.venue.submit(order)
        self.faults("submitted")
        self.journal.commit()
        return out

    def place(self, *args: Any, **kwargs: Any) -> Order:
        return place_order(self, *args, **kwargs)

    def cancel(self, order: Order, ts: pd.Timestamp, reason: str = "cancelled by request") -> None:
        self.venue.cancel(order, ts, reason)
        self.journal.commit()

    def modify(self, order: Order, ts: pd.Timestamp, **changes: Any) -> Order:
        out = self.venue.modify(order, ts, **changes)
        self.journal.commit()
        return out

    @property
    def open_orders(self) -> list[Order]:
        return self.venue.open_orders

    @property
    def has_open_orders(self) -> bool:
        return self.venue.has_open_orders

    @property
    def orders(self) -> list[Order]:
        return self.venue.orders

    def fills_since(self, cursor: int = 0) -> list[Fill]:
        return self.venue.fills_since(cursor)

    def account(self) -> AccountState:
        return self.venue.account()

    def on_bar(self, instrument: Instrument, bar: Bar, at_close: bool = False) -> list[Fill]:
        return self.venue.on_bar(instrument, bar, at_close)

    def expire_all(self, ts: pd.Timestamp, reason: str = "session ended") -> None:
        self.venue.expire_all(ts, reason)


def _intent(order: Order, decision_ts: pd.Timestamp | None) -> dict[str, Any]:
    return {"client_id": order.order_id, "symbol": order.instrument.symbol, "side": order.side.name,
            "quantity": order.quantity, "type": order.order_type.name, "tif": order.time_in_force.name,
            "limit_price": order.limit_price, "stop_price": order.stop_price, "tag": order.tag,
            "signal_ts": stamp(order.ts), "decision": None if decision_ts is None else stamp(decision_ts)}  # fmt: skip


class _History:
    """The bars so far, grown in place (capacity doubles), viewed as the strategy's frame.

    Stored field-major, one row per (symbol, field) and one column per bar, so each field
    of the strategy's frame is a contiguous, read-only view (no copy per step); the column
    labels are built once.
    """

    def __init__(self, names: list[str], attrs: dict[str, Any], tz: Any, limit: int | None = None) -> None:
        self.names, self.attrs, self.tz, self.limit = names, attrs, tz, limit
        self.ts = np.empty(0, dtype="int64")
        self.values = np.empty((len(names) * 5, 0))
        self.n = 0
        self.columns = pd.Index(list(FIELDS))
        self.panel_columns = pd.MultiIndex.from_tuples([(s, f) for s in names for f in FIELDS])

    def add(self, ts: pd.Timestamp, bars: list[Bar]) -> None:
        if self.n == len(self.ts):
            cap = max(256, 2 * self.n)
            ts_new, values_new = np.empty(cap, dtype="int64"), np.empty((self.values.shape[0], cap))
            ts_new[: self.n], values_new[:, : self.n] = self.ts[: self.n], self.values[:, : self.n]
            self.ts, self.values = ts_new, values_new
        self.ts[self.n] = pd.Timestamp(ts).value
        self.values[:, self.n] = [x for b in bars for x in (b.open, b.high, b.low, b.close, b.volume)]
        self.n += 1

    def window(self) -> slice:
        return slice(0 if self.limit is None else max(0, self.n - self.limit), self.n)

    def frame(self, panel: bool, *, full: bool = False) -> pd.DataFrame:
        """The bars as the strategy sees them (``full``: every bar, whatever the limit)."""
        w = slice(0, self.n) if full else self.window()
        idx = pd.DatetimeIndex(self.ts[w].view("datetime64[ns]"), name="timestamp")
        idx = idx.tz_localize(self.tz) if self.tz is not None else idx
        view = self.values[: 5 if not panel else None, w].T
        view.flags.writeable = False  # the history is the log's: a strategy writing to it gets a copy
        out = pd.DataFrame(view, index=idx, columns=self.panel_columns if panel else self.columns)
        out.attrs.update(self.attrs)
        return out


class TradingLoop:
    """Runs ``spec`` against a venue on a feed, logging everything (see the module notes).

    Parameters
    ----------
    spec : BacktestSpec
        Bound to its instruments (``wb.trade`` binds it). Its strategy must be LIVE.
    venue : callable
        ``venue(portfolio, bus) -> Venue``: the broker, given the portfolio it books to.
    feed : Feed
    log : EventLog
    session : str
        The session's name: its records, its client order ids' namespace.
    history : int, optional
        Bars of history the strategy sees at each decision (None: all since the start,
        which is what makes a replay equal the backtest for indicators with memory, e.g. EMA).
    on_pause : "cancel" or "keep"
        What pausing the strategy does with orders still working.
    policy : ReconcilePolicy
    reconcile_every : int
        Steps between periodic reconciliations with the venue (0: only at start); one the
        policy does not accept stops the session with a ReconciliationError.
    faults : callable
        Fault injection for tests (see :data:`Faults`).
    """

    def __init__(self, spec: BacktestSpec, venue: VenueFactory, feed: Feed, log: EventLog, *, session: str,
                 history: int | None = None, on_pause: PauseRule = "cancel", policy: ReconcilePolicy | None = None,
                 reconcile_every: int = 0, faults: Faults = NO_FAULTS,
                 on_day_end: Callable[[dict[str, Any]], None] | None = None) -> None:  # fmt: skip
        _check_supported(spec)
        if on_pause not in ("cancel", "keep"):
            raise ParameterError(f"on_pause must be 'cancel' or 'keep', got on_pause={on_pause!r}")
        if history is not None and (isinstance(history, bool) or not isinstance(history, int) or history < 1):
            raise ParameterError(f"history must be a number of bars >= 1 or None, got history={history!r}")
        self.spec, self.feed, self.log, self.session = spec, feed, log, session
        self.instruments = list(spec.instruments)
        self.kind = spec.strategy.kind
        self.on_pause, self.policy, self.reconcile_every = on_pause, policy or ReconcilePolicy(), reconcile_every
        self.faults, self.on_day_end = faults, on_day_end
        self.bus = EventBus()
        account = BuysFromCash() if self.kind == "weights" else spec.account
        self.portfolio = Portfolio(spec.cash, self.instruments[0].currency, spec.cost_basis, account=account)
        self.venue = venue(self.portfolio, self.bus)
        self.journal = Journal(log, session)
        self.journal.before_commit = self._record_fills
        self.bus.subscribe(Event, self.journal.on_event)
        namespace = f"{session}|{spec.strategy.spec_id}"
        self.broker = _WriteAhead(self.venue, self.journal, faults, namespace)
        self.monitor = RiskMonitor(spec.risk, self.bus) if spec.risk is not None else None
        self.gate: Broker = self.broker
        if self.monitor is not None:
            marks = self.portfolio.marks
            self.gate = RiskGate(self.broker, self.portfolio, self.monitor,
                                 lambda inst: marks.get(inst.symbol, math.nan), self.bus)  # fmt: skip
        self.history = _History(list(feed.names), dict(getattr(feed, "attrs", {})),
                                getattr(getattr(feed, "index", None), "tz", "UTC"), history)  # fmt: skip
        self.costs = Costs(spec.commission, spec.slippage)
        self.matches_bars = bool(getattr(self.venue, "matches_bars", False))
        self.close_mode = spec.fill_timing is FillTiming.SIGNAL_CLOSE or not self.matches_bars
        self.target = 0.0  # the signal strategy's current decision
        self.pending: tuple[pd.Timestamp, int, Any] | None = None  # (signal ts, bar number, decision)
        self.cursor = 0  # fills read from the venue
        self.steps = 0
        self.last: Step | None = None
        self.day: Any = None
        self.day_start_equity = spec.cash
        self.reconciliations: list[Reconciliation] = []
        self.equity: list[tuple[pd.Timestamp, float]] = []  # (step, equity at its close)
        self.positions: list[list[float]] = []  # signed quantity per instrument at each step's close
        # what a restart rebuilds from the log (engines.recovery)
        self.baseline: dict[str, float] = {}  # the venue's positions when the session started
        self.fill_ids: set[str] = set()  # fills logged
        self.executed_before: set[str] = set()  # decisions executed before a restart
        self.reconciled_before = 0
        self.started_at: pd.Timestamp | None = None  # the session's start by the venue's clock
        self.restored_orders: dict[str, Order] = {}
        self.settled: set[str] = set()  # days whose settlement is logged
        self._to_notify: list[dict[str, Any]] = []  # settlements logged in this step, not yet notified

    # -- the step ---------------------------------------------------------------------------
    def step(self, ts: pd.Timestamp, bars: list[Bar], *, logged: bool = False) -> None:
        """Process one closed step (see the module notes). ``logged``: its bars are already
        in the log (a restart reprocessing the step it died in)."""
        if len(bars) != len(self.instruments):
            raise ParameterError(f"step at {ts} has {len(bars)} bars for {len(self.instruments)} instruments")
        self._settle_if_new_day(ts)
        if not logged:
            # committed with the step's first write: a step that dies before any write is
            # simply fed again (the feed restarts after the last logged bar)
            self.journal.add("bar", f"bar:{stamp(ts)}", ts, {"bars": [list(b[1:]) for b in bars]})
        self.faults("bar_logged")
        self.history.add(ts, bars)
        k = self.history.n - 1
        for inst, bar in zip(self.instruments, bars, strict=True):
            self.portfolio.mark(inst.symbol, bar.open)
        if self.gate.has_open_orders:
            for inst, bar in self._by_oldest_order(bars):
                self.gate.on_bar(inst, bar)
        self._book_fills()
        if self.pending is not None and not self.close_mode:
            self._execute(bars, at_close=False)
        for inst, bar in zip(self.instruments, bars, strict=True):
            self.portfolio.mark(inst.symbol, bar.close)
        self._decide(ts, k)
        if self.pending is not None and self.close_mode:
            self._execute(bars, at_close=True)
        self._book_fills()
        # the close's equity after anything traded at it; the drawdown rule sees it before
        # the next order (as the event engine's watch does)
        equity = self.portfolio.equity
        if self.monitor is not None:
            self._observe(ts, equity, k)
        self.journal.add("step", f"step:{stamp(ts)}", ts, self._snapshot(equity))
        self.journal.commit()
        self._notify()
        self.faults("step_logged")
        self.equity.append((ts, equity))
        self.positions.append([self.portfolio.quantity(i) for i in self.instruments])
        self.last = (ts, bars)
        self.steps += 1

    def _by_oldest_order(self, bars: list[Bar]) -> list[tuple[Instrument, Bar]]:
        """The instruments with working orders, in the order those orders were submitted
        (a rebalance's sales before its purchases, as they were placed: what cash allows
        depends on it), then the others."""
        bar_of = {i.symbol: (i, b) for i, b in zip(self.instruments, bars, strict=True)}
        first = dict.fromkeys(o.instrument.symbol for o in self.gate.open_orders)
        return [bar_of[s] for s in dict.fromkeys((*first, *bar_of)) if s in bar_of]

    def _observe(self, ts: pd.Timestamp, equity: float, k: int) -> None:
        """The drawdown rule sees this close's equity (``k``: the bar's number in the session)."""
        assert self.monitor is not None
        before = self.monitor.flatten_close
        self.monitor.observe((ts,), np.array([equity]))  # type: ignore[arg-type]  # indexed only
        if self.monitor.flatten_close is not None and before is None:
            self.monitor.flatten_close = k

    def _snapshot(self, equity: float) -> dict[str, Any]:
        p = self.portfolio
        return {"cash": p.cash, "equity": equity, "target": _jsonable(self.target),
                "positions": {i.symbol: p.quantity(i) for i in self.instruments}}  # fmt: skip

    def _book_fills(self) -> None:
        """Log the fills the venue booked since the last look (they are in the portfolio)."""
        if not self.venue.fills_since(self.cursor):
            return
        self.faults("fills_received")
        self.journal.commit()  # with _record_fills

    def _record_fills(self) -> None:
        """Add the venue's new fills to the records of the next commit (whatever commits)."""
        fills = self.venue.fills_since(self.cursor)
        for f in fills:
            self.journal.add("fill", f"fill:{f.fill_id}", f.ts, fill_payload(f))
            self.fill_ids.add(f.fill_id)
        self.cursor += len(fills)

    # -- decisions --------------------------------------------------------------------------
    def _decide(self, ts: pd.Timestamp, k: int) -> None:
        strategy = self.spec.strategy
        if strategy.status is not StrategyStatus.LIVE:
            return  # paused: no new decisions (working orders as on_pause said)
        if stamp(ts) in self.executed_before:
            return  # decided and executed before a restart (the step is being processed again)
        frame = self.history.frame(panel=self.kind == "weights")
        if self.kind == "weights":
            w = strategy.weights(frame)  # type: ignore[attr-defined]
            row = check_weights(w.iloc[-1:], frame.index[-1:], self.history.names)[0]
            if np.isnan(row).all():
                return
            decision: Any = row
        else:
            value = float(strategy.target(frame).iloc[-1])
            if value not in (-1.0, 0.0, 1.0):
                raise ParameterError(f"target values must be -1, 0 or 1; got {value!r} at {ts}")
            if value == self.target:
                return
            decision = value
        self.journal.add("decision", f"decision:{stamp(ts)}", ts, {"decision": _jsonable(decision), "bar": k})
        self.pending = (ts, k, decision)
        if self.kind != "weights":
            self.target = decision

    def _execute(self, bars: list[Bar], at_close: bool) -> None:
        """Place the pending decision's orders at this bar (its open, or the decision bar's close)."""
        assert self.pending is not None
        signal_ts, s, decision = self.pending
        key = stamp(signal_ts)
        if self.broker.sent.get(key) and self._resumed_in_flight(key, bars, at_close):
            self._executed(signal_ts, key)
            return
        self.broker.begin(signal_ts)
        frame = self.history.frame(panel=self.kind == "weights")
        offset = self.history.n - len(frame)  # bar numbers of a capped history start later
        if self.monitor is not None:
            self._bind_limits(frame)
        if self.kind == "weights":
            px = np.array([b.close if at_close else b.open for b in bars])
            for inst, p in zip(self.instruments, px, strict=True):
                self.portfolio.mark(inst.symbol, float(p))
            _rebalance_weights(self.gate, self.portfolio, self.costs, self.instruments, bars, decision,
                               signal_ts, px, at_close)  # fmt: skip
        else:
            inst, bar = self.instruments[0], bars[0]
            ref = bar.close if at_close else bar.open
            sizer = bind_sizer(self.spec.sizer, frame.iloc[: s - offset + 1])
            rebalance_to_target(self.gate, self.portfolio, self.costs, inst, bar, float(decision), signal_ts, ref,
                                sizer, at_close, signal_bar=s - offset)  # fmt: skip
        self._executed(signal_ts, key)

    def _executed(self, signal_ts: pd.Timestamp, key: str) -> None:
        self._book_fills()
        self.journal.add("executed", f"executed:{key}", signal_ts, {"orders": self.broker.numbered.get(key, 0)})
        self.journal.commit()
        self.pending = None

    def _resumed_in_flight(self, key: str, bars: list[Bar], at_close: bool) -> bool:
        """A restart resumes a decision whose orders were logged: the venue works them first
        (the paper broker fills a restored order at this close or open, as it would have);
        while one of them is still open the decision is in flight and is not placed again
        (a cancel-and-replace could trade twice if the first order fills late). Once they
        have ended, the rebalance runs again from what is now held: it places only what is
        still missing (nothing, when they filled)."""
        for inst, bar in zip(self.instruments, bars, strict=True):
            self.gate.on_bar(inst, bar, at_close)
        self._book_fills()
        mine = self.broker.sent.get(key, set())
        return any(not o.is_terminal for o in self.venue.orders if o.order_id in mine)

    def _bind_limits(self, frame: pd.DataFrame) -> None:
        """Limits that need price history (``MaxVaR``) see the closes up to now."""
        assert self.monitor is not None
        if any(callable(getattr(lim, "bind", None)) for lim in self.monitor.profile.limits):
            close = (frame["Close"].to_numpy()[:, None] if self.kind != "weights"
                     else np.column_stack([frame[(s, "Close")].to_numpy() for s in self.history.names]))  # fmt: skip
            self.monitor.bind(frame.index, close, [i.symbol for i in self.instruments])

    def all_orders(self) -> list[Order]:
        """Every order of the session in submission order: those the venue holds, and those
        the risk profile denied in this process (earlier denials are in the log as events)."""
        mine = self.gate.orders
        ids = {id(o) for o in mine}
        return [o for o in self.venue.orders if id(o) not in ids] + list(mine)

    # -- lifecycle --------------------------------------------------------------------------
    def pause(self, ts: Any = None, reason: str = "paused") -> None:
        """Stop deciding; cancel working orders or keep them (``on_pause``)."""
        event = self.spec.strategy.pause(ts, reason)
        self.journal.add("status", f"status:{self.journal.events}:{event.new.name}", event.ts, to_payload(event))
        if self.on_pause == "cancel":
            for order in list(self.gate.open_orders):
                self.gate.cancel(order, event.ts, f"strategy paused: {reason}")
        self.journal.commit()

    def resume(self, ts: Any = None, reason: str = "resumed") -> None:
        event = self.spec.strategy.go_live(ts, reason)
        self.journal.add("status", f"status:{self.journal.events}:{event.new.name}", event.ts, to_payload(event))
        self.journal.commit()

    # -- end of day -------------------------------------------------------------------------
    def _settle_if_new_day(self, ts: pd.Timestamp) -> None:
        """Before the first bar of a new UTC day: the settlement snapshot of the day before."""
        day = pd.Timestamp(ts).tz_convert("UTC").date() if pd.Timestamp(ts).tzinfo else pd.Timestamp(ts).date()
        if self.day is not None and day != self.day and self.last is not None and str(self.day) not in self.settled:
            self._settle()  # logged with this step's records, notified once they are committed
        self.day = day

    def settle(self) -> dict[str, Any]:
        """Settle the day now (e.g. when a session stops mid-day): logged, then handed to
        ``on_day_end``."""
        snap = self._settle()
        self.journal.commit()
        self._notify()
        return snap

    def _settle(self) -> dict[str, Any]:
        """The end-of-day snapshot: cash, equity, positions, the day's P&L (see :meth:`settle`)."""
        p = self.portfolio
        equity = p.equity
        snap = {"day": str(self.day), "cash": p.cash, "equity": equity, "pnl": equity - self.day_start_equity,
                "realized": p.realized_pnl, "fees": p.fees,
                "positions": {i.symbol: p.quantity(i) for i in self.instruments},
                "risk_state": None if self.monitor is None else self.monitor.state.value}  # fmt: skip
        ts = self.last[0] if self.last is not None else pd.Timestamp.now(tz="UTC")
        self.journal.add("settlement", f"settlement:{self.day}", ts, snap)  # committed with the step
        self.settled.add(str(self.day))
        self.day_start_equity = equity
        self._to_notify.append(snap)
        return snap

    def _notify(self) -> None:
        """Hand the settlements to the notification hook once they are in the log."""
        snaps, self._to_notify = self._to_notify, []
        if self.on_day_end is not None:
            for snap in snaps:
                self.on_day_end(snap)

    # -- driving ----------------------------------------------------------------------------
    def run(self, max_steps: int | None = None, *, progress: Callable[[int], None] | None = None) -> int:
        """Process the feed's steps after the last logged bar; return how many ran."""
        from workbench.engines.recovery import reconcile_now

        after = self.last[0] if self.last is not None else None
        ran = 0
        for ts, bars in self.feed.steps(after):
            if max_steps is not None and ran >= max_steps:
                break
            self.step(ts, bars)
            ran += 1
            if progress is not None:
                progress(ran)
            if self.reconcile_every and self.steps % self.reconcile_every == 0:
                reconcile_now(self, refuse=True)  # a flagged difference stops the session (logged first)
        return ran


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [None if not math.isfinite(v) else float(v) for v in value.tolist()]
    return value


def _check_supported(spec: BacktestSpec) -> None:
    if not spec.instruments:
        raise ParameterError("the trading loop needs a spec bound to its instruments (wb.trade binds it)")
    kind = spec.strategy.kind
    if kind == "bar":
        raise ParameterError(f"{spec.strategy.name} is a per-bar callback strategy: the trading loop runs signal "
                             "and portfolio (weights) strategies")  # fmt: skip
    if kind != "weights" and len(spec.instruments) != 1:
        raise ParameterError(f"a signal strategy trades one instrument, got {len(spec.instruments)}")
    if spec.risk is not None and spec.risk.drawdown_action.name == "FLATTEN":
        raise ParameterError("the trading loop does not liquidate on a drawdown yet: use drawdown_action "
                             "'HALT' or 'REDUCE', got drawdown_action=FLATTEN")  # fmt: skip
    if not isinstance(spec.account, CashAccount):
        raise ParameterError(f"the trading loop trades a cash account, got account={spec.account!r}")

