"""Starting and restarting a trading session from its event log, and reconciling it.

:func:`open_session` gives a :class:`~workbench.engines.live.TradingLoop` for a session:

- **new** (no record yet): the session record is logged with the venue's positions at
  that moment (the *baseline*: what was held before is not the session's), then the
  venue is reconciled (an unknown open order on the account stops the start, by default);
- **known**: the state is rebuilt from the log alone, then checked against the venue:

  1. the portfolio from the logged fills, in order; the orders from the logged intents and
     their logged events; the bars, decisions and equity from the logged steps;
  2. every order still open in the log is looked up at the venue by its client id: found,
     it is adopted in the venue's state; not found, it never reached the venue and is
     cancelled as such (its decision is then executed again, under new client ids);
  3. a venue that trades in real time is polled, so fills it made while the process was
     down are booked (exactly once: the venue's trade id is the fill id);
  4. reconciliation (:mod:`workbench.trading.reconcile`) — the loop refuses to start when
     the policy does not accept what it finds;
  5. the step the process died in (its bars logged, its end not) is processed again from
     the logged bars: what it had done is in the rebuilt state, what it had not is done now.

A kill -9 at any point therefore loses no order (an intent is logged before the venue sees
it) and duplicates none (a retried order reuses its client id; a resumed decision continues
its order numbering).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.engines.live import TradingLoop
from workbench.errors import ParameterError
from workbench.trading.costs import Bar
from workbench.trading.enums import OrderType, Side, TimeInForce
from workbench.trading.eventlog import LogRecord
from workbench.trading.orders import Fill, Order
from workbench.trading.reconcile import Reconciliation, ReconciliationError, reconcile
from workbench.trading.records import (
    fill_from_payload,
    fill_payload,
    from_payload,
    parse_stamp,
    stamp,
)

__all__ = ["open_session", "reconcile_now", "SessionLog", "read_session", "fills_of"]

_ORDER_EVENTS = frozenset({"OrderAccepted", "OrderRejected", "OrderDenied", "OrderTriggered", "OrderModified",
                           "OrderFilled", "OrderPartiallyFilled", "OrderCancelled", "OrderExpired"})  # fmt: skip


@dataclass
class SessionLog:
    """A session's records sorted by kind (what :func:`open_session` rebuilds from)."""

    start: LogRecord | None = None
    bars: list[tuple[pd.Timestamp, list[Bar]]] = field(default_factory=list)
    steps: list[LogRecord] = field(default_factory=list)
    decisions: list[LogRecord] = field(default_factory=list)
    executed: set[str] = field(default_factory=set)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    settlements: list[LogRecord] = field(default_factory=list)
    statuses: list[LogRecord] = field(default_factory=list)
    reconciliations: int = 0

    @property
    def done(self) -> set[str]:
        return {r.ts for r in self.steps}


def read_session(records: Sequence[LogRecord]) -> SessionLog:
    """Sort ``records`` by kind (see :class:`SessionLog`)."""
    out = SessionLog()
    for r in records:
        kind = r.kind
        if kind == "session":
            out.start = out.start or r
        elif kind == "bar":
            ts = parse_stamp(r.ts)
            # NaN (e.g. an unknown volume) is logged as null
            out.bars.append((ts, [Bar(ts, *(math.nan if x is None else float(x) for x in v)) for v in r.data["bars"]]))
        elif kind == "step":
            out.steps.append(r)
        elif kind == "decision":
            out.decisions.append(r)
        elif kind == "executed":
            out.executed.add(r.key.removeprefix("executed:"))
        elif kind == "intent":
            out.intents[r.data["client_id"]] = r.data
        elif kind == "event":
            out.events.append(r.data)
        elif kind == "fill":
            out.fills.append(r.data)
        elif kind == "settlement":
            out.settlements.append(r)
        elif kind == "status":
            out.statuses.append(r)
        elif kind == "reconcile":
            out.reconciliations += 1
    return out


def open_session(loop: TradingLoop) -> TradingLoop:
    """Start ``loop``'s session, or restart it from its log (see the module notes)."""
    records = loop.log.read(loop.session)
    if not records:
        _start(loop)
        return loop
    log = read_session(records)
    _check_same_strategy(loop, log)
    _rebuild(loop, log)
    _resolve_open_orders(loop)
    if not loop.matches_bars and loop.last is not None:  # a real-time venue: book what it did meanwhile
        for inst, bar in zip(loop.instruments, loop.last[1], strict=True):
            loop.venue.on_bar(inst, bar)
        loop._book_fills()
    reconcile_now(loop, refuse=True)
    _finish_interrupted_step(loop, log)
    return loop


def _start(loop: TradingLoop) -> None:
    state = loop.venue.venue_state(loop.instruments)
    spec = loop.spec
    loop.baseline = dict(state.positions)
    loop.started_at = state.ts  # the venue's clock: its fills are stamped by it
    loop.journal.add("session", "session", loop.started_at, {
        "strategy": spec.strategy.name, "strategy_id": spec.strategy.spec_id, "params": _plain(spec.params),
        "instruments": [i.symbol for i in loop.instruments], "venue": loop.venue.name, "cash": spec.cash,
        "baseline": loop.baseline, "fill_timing": spec.fill_timing.name,
    })  # fmt: skip
    loop.journal.commit()
    reconcile_now(loop, refuse=True)


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, int | float | str | bool | type(None)) else repr(v)) for k, v in params.items()}


def _check_same_strategy(loop: TradingLoop, log: SessionLog) -> None:
    if log.start is None:
        raise ParameterError(f"event log of session {loop.session!r} has no session record: it was not started by the loop")
    logged, now = log.start.data.get("strategy_id"), loop.spec.strategy.spec_id
    if logged != now:
        raise ParameterError(f"session {loop.session!r} was started with {log.start.data.get('strategy')} "
                             f"{log.start.data.get('params')} (id {logged}); this is {loop.spec.strategy.name} "
                             f"{_plain(loop.spec.params)} (id {now}): start a new session")  # fmt: skip
    loop.baseline = dict(log.start.data.get("baseline") or {})


def _rebuild(loop: TradingLoop, log: SessionLog) -> None:
    instruments = {i.symbol: i for i in loop.instruments}
    fills = [fill_from_payload(f, instruments) for f in log.fills]
    for fill in fills:
        loop.portfolio.apply(fill)
    orders = _orders(log, instruments)
    loop.restored_orders = orders
    loop.reconciled_before = log.reconciliations
    loop.started_at = parse_stamp(log.start.ts) if log.start is not None else None
    if callable(getattr(loop.venue, "restore", None)):  # a paper venue: the log is its book
        loop.venue.restore(list(orders.values()), fills)
        loop.cursor = len(fills)
    else:  # a real venue starts with an empty book; open orders are adopted below
        loop.cursor = 0
    loop.fill_ids = {f.fill_id for f in fills}
    loop.journal.events = len(log.events)
    numbered, sent = loop.broker.numbered, loop.broker.sent
    for d in log.intents.values():
        key = d.get("decision") or d["signal_ts"]
        numbered[key] = numbered.get(key, 0) + 1
        sent.setdefault(key, set()).add(d["client_id"])
    for e in log.events:  # a denied order had a number too (denied at its decision's stamp)
        if e["type"] == "OrderDenied" and e["order_id"] not in log.intents:
            numbered[e["ts"]] = numbered.get(e["ts"], 0) + 1
    loop.executed_before = set(log.executed)
    done = log.done
    complete = [(ts, bars) for ts, bars in log.bars if stamp(ts) in done]
    for ts, bars in complete:
        loop.history.add(ts, bars)
    if complete:
        loop.last = complete[-1]
        for inst, bar in zip(loop.instruments, loop.last[1], strict=True):
            loop.portfolio.mark(inst.symbol, bar.close)
    loop.equity = [(parse_stamp(r.ts), float(r.data["equity"])) for r in log.steps]
    loop.positions = [[float(r.data["positions"].get(i.symbol, 0.0)) for i in loop.instruments] for r in log.steps]
    loop.steps = len(log.steps)
    if loop.monitor is not None:
        for k, (ts, e) in enumerate(loop.equity):
            loop._observe(ts, e, k)
    _restore_decision(loop, log)
    for r in log.settlements:
        loop.day_start_equity = float(r.data["equity"])
        loop.settled.add(str(r.data["day"]))
    if loop.last is not None:
        ts = pd.Timestamp(loop.last[0])
        loop.day = (ts.tz_convert("UTC") if ts.tzinfo else ts).date()


def _orders(log: SessionLog, instruments: dict[str, Any]) -> dict[str, Order]:
    orders: dict[str, Order] = {}
    for cid, d in log.intents.items():
        orders[cid] = Order(order_id=cid, instrument=instruments[d["symbol"]], side=Side[d["side"]],
                            quantity=float(d["quantity"]), ts=parse_stamp(d["signal_ts"]),
                            order_type=OrderType[d["type"]], time_in_force=TimeInForce[d["tif"]],
                            limit_price=d.get("limit_price"), stop_price=d.get("stop_price"), tag=d.get("tag", ""))  # fmt: skip
    for e in log.events:
        order = orders.get(e.get("order_id", ""))
        if order is not None and e["type"] in _ORDER_EVENTS:
            order.apply(from_payload(e))
    return orders


def _restore_decision(loop: TradingLoop, log: SessionLog) -> None:
    if not log.decisions:
        return
    last = log.decisions[-1]
    value = last.data["decision"]
    decision = np.array([np.nan if v is None else v for v in value], dtype="float64") if isinstance(value, list) else float(value)
    if loop.kind != "weights":
        loop.target = decision
    if stamp(last.ts) not in log.executed:
        loop.pending = (parse_stamp(last.ts), int(last.data["bar"]), decision)


def _resolve_open_orders(loop: TradingLoop) -> None:
    """Each order open in the log: adopted as the venue reports it, or cancelled as never
    sent. A real venue adopts a fresh PENDING copy (it applies the venue's state and the
    fills the portfolio already holds itself); the paper venue holds the rebuilt order."""
    paper = callable(getattr(loop.venue, "restore", None))
    for cid, order in list(loop.restored_orders.items()):
        if order.is_terminal:
            continue
        found = loop.venue.find_order(cid, order.instrument)
        if found is None:
            now = pd.Timestamp.now(tz="UTC")
            ts = now if order.ts.tzinfo is not None else now.tz_localize(None)
            loop.bus.publish(order.cancel(max(ts, order.ts), "not at the venue after a restart: it never reached it"))
        elif not paper:
            fresh = _fresh(order)
            loop.venue.adopt(fresh, found)
            loop.restored_orders[cid] = fresh
    loop.journal.commit()


def _fresh(order: Order) -> Order:
    """The order as its intent described it (PENDING, nothing filled)."""
    return Order(order_id=order.order_id, instrument=order.instrument, side=order.side, quantity=order.quantity,
                 ts=order.ts, order_type=order.order_type, time_in_force=order.time_in_force,
                 limit_price=order.limit_price, stop_price=order.stop_price, tag=order.tag)  # fmt: skip


def _finish_interrupted_step(loop: TradingLoop, log: SessionLog) -> None:
    done = log.done
    pending = [(ts, bars) for ts, bars in log.bars if stamp(ts) not in done]
    for ts, bars in pending:
        loop.step(ts, bars, logged=True)


def reconcile_now(loop: TradingLoop, *, refuse: bool = False) -> Reconciliation:
    """Compare the venue with the log now; log the result; with ``refuse``, raise
    :class:`ReconciliationError` when the policy does not accept it (the loop does not start)."""
    state = loop.venue.venue_state(loop.instruments, _session_start(loop))
    ours = set(loop.restored_orders) | {o.order_id for o in loop.venue.orders}
    rec = reconcile(state, venue=loop.venue.name, our_orders=ours,
                    our_fills=loop.fill_ids, positions={i.symbol: loop.portfolio.quantity(i) for i in loop.instruments},
                    baseline=loop.baseline, policy=loop.policy)  # fmt: skip
    _book_missing(loop, rec)
    if rec.position_gaps and loop.policy.position_gaps == "adopt":
        for symbol, (ours, theirs) in rec.position_gaps.items():
            loop.baseline[symbol] = loop.baseline.get(symbol, 0.0) + (theirs - ours)
    n = len(loop.reconciliations) + loop.reconciled_before
    loop.journal.add("reconcile", f"reconcile:{n}", state.ts, rec.to_dict())
    loop.journal.commit()
    loop.reconciliations.append(rec)
    if refuse and not rec.ok:
        raise ReconciliationError(f"session {loop.session!r} does not start: {rec.summary()}")
    return rec


def _book_missing(loop: TradingLoop, rec: Reconciliation) -> None:
    """Book the venue's fills of our orders that the log lacks (the venue is the truth about
    what traded): to the portfolio, to the order when it is still working, and to the log.
    The venue's own poll then finds them held and does not book them again."""
    instruments = {i.symbol: i for i in loop.instruments}
    orders = {o.order_id: o for o in (*loop.restored_orders.values(), *loop.venue.orders)}
    for vf in rec.missing_fills:
        fill = Fill(fill_id=vf.fill_id, order_id=vf.client_id, instrument=instruments[vf.symbol], side=vf.side,
                    quantity=vf.quantity, price=vf.price, fee=vf.fee, ts=vf.ts)  # fmt: skip
        for event in loop.portfolio.apply(fill):
            loop.bus.publish(event)
        order = orders.get(vf.client_id)
        if order is not None and order.is_working and fill.quantity <= order.remaining_quantity * (1 + 1e-9):
            loop.bus.publish(order.fill(fill))
        loop.journal.add("fill", f"fill:{fill.fill_id}", fill.ts, fill_payload(fill))
        loop.fill_ids.add(fill.fill_id)
    loop.journal.commit()


def _session_start(loop: TradingLoop) -> pd.Timestamp | None:
    """Fills since the session began (wall clock): a real venue stamps fills when they
    happen. A paper venue stamps them with the bar's time, so it is asked for all."""
    return None if loop.matches_bars else loop.started_at


def fills_of(records: Sequence[LogRecord], instruments: dict[str, Any]) -> list[Fill]:
    """The fills a session logged, in order."""
    return [fill_from_payload(r.data, instruments) for r in records if r.kind == "fill"]
