"""Order events added with the broker port: triggers, amendments, fill symbols, duplicate
fills, and a bus that isolates failing subscribers."""

import ast
import copy
import logging
from pathlib import Path

import pytest

import workbench.trading.simulated as simulated
from tests.conftest import bar, ts
from workbench.errors import DuplicateFillError, InvalidValueError, OrderStateError
from workbench.trading import (
    EventBus,
    Fill,
    HandlerFailure,
    Order,
    OrderModified,
    OrderStatus,
    OrderTriggered,
    OrderType,
    Portfolio,
    Side,
    SimulatedBroker,
    VolumeShare,
)
from workbench.trading.events import Event, OrderFilled, OrderPartiallyFilled


def _stop(inst, **kw):
    return Order(order_id="O-1", instrument=inst, side=Side.BUY, quantity=10, ts=ts(1),
                 order_type=OrderType.STOP, stop_price=105.0, **kw)  # fmt: skip


def _fill(inst, qty, fid="F-1", order_id="O-1"):
    return Fill(fill_id=fid, order_id=order_id, instrument=inst, side=Side.BUY, quantity=qty,
                price=100.0, fee=0.0, ts=ts(2))  # fmt: skip


def _names(events):
    return [type(e).__name__ for e in events]


# -- OrderTriggered -----------------------------------------------------------------------
def test_trigger_is_an_event_that_sets_triggered_and_keeps_status(inst):
    o = _stop(inst)
    o.accept(ts(2))
    ev = o.trigger(ts(3))
    assert isinstance(ev, OrderTriggered) and (ev.ts, ev.order_id) == (ts(3), "O-1")
    assert o.triggered and o.status is OrderStatus.ACCEPTED and o.events[-1] is ev
    assert o.updated == ts(2)  # the status did not change


def test_trigger_needs_a_working_order(inst):
    o = _stop(inst)
    with pytest.raises(OrderStateError, match="cannot trigger order O-1: status is PENDING"):
        o.trigger(ts(2))
    assert not o.triggered and len(o.events) == 1


def test_trigger_twice_or_on_a_market_order_is_refused(inst):
    o = _stop(inst)
    o.accept(ts(2))
    o.trigger(ts(2))
    with pytest.raises(OrderStateError, match="no stop left to trigger"):
        o.trigger(ts(3))
    m = Order(order_id="O-2", instrument=inst, side=Side.BUY, quantity=1, ts=ts(1))
    m.accept(ts(2))
    with pytest.raises(OrderStateError, match="no stop left to trigger"):
        m.trigger(ts(2))


def test_mark_triggered_is_gone():
    assert not hasattr(Order, "mark_triggered")


def test_broker_never_writes_order_triggered_directly():
    tree = ast.parse(Path(simulated.__file__).read_text())
    for node in ast.walk(tree):
        targets = getattr(node, "targets", None) or [getattr(node, "target", None)]
        for t in targets:
            assert not (isinstance(t, ast.Attribute) and t.attr == "triggered"), ast.unparse(node)


def test_broker_accepts_then_publishes_the_trigger_of_a_gapping_stop(inst):
    bus, seen = EventBus(), []
    bus.subscribe(Event, seen.append)
    b = SimulatedBroker(Portfolio(100_000.0), bus=bus)
    o = b.place(inst, "BUY", 1, ts(1), OrderType.STOP, stop_price=105.0)
    (fill,) = b.on_bar(inst, bar(2, 107, 108, 106, 107))
    assert fill.price == 107.0 and o.triggered
    assert _names(seen) == ["OrderPlaced", "OrderAccepted", "OrderTriggered", "OrderFilled", "PositionOpened"]
    assert _names(o.events) == ["OrderPlaced", "OrderAccepted", "OrderTriggered", "OrderFilled"]


def test_intrabar_stop_limit_beyond_its_limit_triggers_and_rests(broker, inst):
    o = broker.place(inst, "BUY", 1, ts(1), OrderType.STOP_LIMIT, stop_price=105.0, limit_price=104.0)
    broker.on_bar(inst, bar(2, 101, 102, 100, 101))  # not touched: accepted, not triggered
    assert o.status is OrderStatus.ACCEPTED and not o.triggered
    assert broker.on_bar(inst, bar(3, 101, 108, 100, 107)) == []
    assert o.triggered and _names(o.events)[-1] == "OrderTriggered" and o.updated == ts(2)
    assert [f.price for f in broker.on_bar(inst, bar(4, 106, 107, 103, 104))] == [104.0]


def test_rejected_stop_is_never_triggered(inst):
    b = SimulatedBroker(Portfolio(100.0))
    o = b.place(inst, "BUY", 10, ts(1), OrderType.STOP, stop_price=105.0)
    assert b.on_bar(inst, bar(2, 107, 108, 106, 107)) == []
    assert o.status is OrderStatus.REJECTED and not o.triggered
    assert "OrderTriggered" not in _names(o.events)


# -- OrderModified ------------------------------------------------------------------------
def _limit(inst, qty=10, price=100.0):
    return Order(order_id="O-1", instrument=inst, side=Side.BUY, quantity=qty, ts=ts(1),
                 order_type=OrderType.LIMIT, limit_price=price)  # fmt: skip


def test_modify_amends_in_place_and_emits_the_new_terms(inst):
    o = _limit(inst)
    o.accept(ts(2))
    ev = o.modify(ts(3), quantity=20, limit_price=99.5)
    assert isinstance(ev, OrderModified)
    assert (ev.order_id, ev.quantity, ev.limit_price, ev.stop_price) == ("O-1", 20.0, 99.5, None)
    assert (o.quantity, o.limit_price, o.status) == (20.0, 99.5, OrderStatus.ACCEPTED)
    assert o.events[-1] is ev


def test_modify_a_pending_order_keeps_the_unchanged_terms(inst):
    o = Order(order_id="O-1", instrument=inst, side=Side.SELL, quantity=5, ts=ts(1),
              order_type=OrderType.STOP_LIMIT, stop_price=95.0, limit_price=94.0)  # fmt: skip
    o.modify(ts(1), stop_price=96.0)
    assert (o.quantity, o.stop_price, o.limit_price, o.status) == (5.0, 96.0, 94.0, OrderStatus.PENDING)


def test_modify_below_the_filled_quantity_is_refused(inst):
    o = _limit(inst)
    o.accept(ts(2))
    o.fill(_fill(inst, 6))
    before = (o.quantity, len(o.events))
    with pytest.raises(InvalidValueError, match="new quantity 5 is below the 6 already filled"):
        o.modify(ts(3), quantity=5)
    assert (o.quantity, len(o.events)) == before


def test_modify_down_to_the_filled_quantity_completes_the_order(inst):
    o = _limit(inst)
    o.accept(ts(2))
    o.fill(_fill(inst, 6))
    o.modify(ts(3), quantity=6)
    assert o.status is OrderStatus.FILLED and o.remaining_quantity == 0 and o.updated == ts(3)


@pytest.mark.parametrize(
    ("kw", "error", "msg"),
    [
        ({"quantity": 1.5}, InvalidValueError, "multiple of lot size"),
        ({"quantity": 0}, InvalidValueError, "quantity must be > 0"),
        ({"limit_price": -1.0}, InvalidValueError, "needs limit_price > 0"),
        ({"stop_price": 99.0}, InvalidValueError, "LIMIT order takes no stop_price"),
        ({"limit_price": 100.005}, InvalidValueError, "limit_price must be a multiple of tick size 0.01"),
        ({}, InvalidValueError, "needs a new quantity, limit_price or stop_price"),
    ],
)
def test_modify_validates_like_construction(inst, kw, error, msg):
    o = _limit(inst)
    with pytest.raises(error, match=msg):
        o.modify(ts(2), **kw)
    assert (o.quantity, o.limit_price, len(o.events)) == (10.0, 100.0, 1)


def test_modify_a_terminal_order_is_refused(inst):
    o = _limit(inst)
    o.cancel(ts(2))
    with pytest.raises(OrderStateError, match="cannot modify order O-1: status is CANCELLED"):
        o.modify(ts(3), quantity=5)


def test_modify_the_stop_of_a_triggered_stop_is_refused(inst):
    o = _stop(inst)
    o.accept(ts(2))
    o.trigger(ts(2))
    with pytest.raises(OrderStateError, match="its stop already triggered"):
        o.modify(ts(3), stop_price=106.0)
    o.modify(ts(3), quantity=4)  # the quantity can still change
    assert o.quantity == 4.0


def test_broker_modify_publishes_and_the_new_price_is_matched(inst):
    bus, seen = EventBus(), []
    bus.subscribe(OrderModified, seen.append)
    b = SimulatedBroker(Portfolio(100_000.0), bus=bus)
    o = b.place(inst, "BUY", 1, ts(1), OrderType.LIMIT, limit_price=90.0)
    assert b.on_bar(inst, bar(2, 100, 101, 95, 100)) == []
    b.modify(o, ts(2), limit_price=96.0)
    assert [f.price for f in b.on_bar(inst, bar(3, 100, 101, 95, 100))] == [96.0]
    assert len(seen) == 1 and seen[0].limit_price == 96.0 and b.orders == [o]


def test_broker_modify_to_filled_quantity_closes_the_order(inst):
    b = SimulatedBroker(Portfolio(1e9), slippage=VolumeShare(volume_limit=0.1, price_impact=0.0))
    o = b.place(inst, "BUY", 500, ts(1))
    b.on_bar(inst, bar(2, 10, 11, 9, 10, v=2_000))
    b.modify(o, ts(2), quantity=200)
    assert o.status is OrderStatus.FILLED and not b.has_open_orders


# -- fill events carry the symbol ---------------------------------------------------------
def test_fill_events_carry_the_instrument_symbol(inst):
    o = _limit(inst)
    o.accept(ts(2))
    partial = o.fill(_fill(inst, 4))
    full = o.fill(_fill(inst, 6, fid="F-2"))
    assert isinstance(partial, OrderPartiallyFilled) and isinstance(full, OrderFilled)
    assert partial.symbol == full.symbol == inst.symbol == "TEST.SIM"


# -- idempotent fills ---------------------------------------------------------------------
def test_same_fill_twice_to_an_order_is_refused_and_changes_nothing(inst):
    o = _limit(inst)
    o.accept(ts(2))
    fill = _fill(inst, 4)
    o.fill(fill)
    before = copy.deepcopy(o.__dict__)
    with pytest.raises(DuplicateFillError, match="fill F-1 was already applied to order O-1"):
        o.fill(fill)
    assert o.__dict__ == before
    o.fill(_fill(inst, 4, fid="F-2"))  # another fill of the same shape is fine
    assert o.filled_quantity == 8


def test_same_fill_twice_to_a_portfolio_is_refused_and_changes_nothing(inst):
    p = Portfolio(10_000.0)
    fill = _fill(inst, 4)
    p.apply(fill)
    state = (p.cash, p.quantity(inst), len(p.transactions), len(p.events), p.fees)
    with pytest.raises(DuplicateFillError, match=r"fill F-1 \(order O-1\) was already booked"):
        p.apply(fill)
    assert (p.cash, p.quantity(inst), len(p.transactions), len(p.events), p.fees) == state


def test_a_refused_fill_is_not_remembered_as_booked(inst):
    p = Portfolio(10_000.0)
    bad = Fill(fill_id="F-1", order_id="O-1", instrument=type(inst)(ticker="E", exchange="X", currency="EUR"),
               side=Side.BUY, quantity=1, price=1.0, fee=0.0, ts=ts(2))  # fmt: skip
    with pytest.raises(Exception, match="books only USD"):
        p.apply(bad)
    p.apply(_fill(inst, 1))  # same id, now valid: booked
    assert p.quantity(inst) == 1.0


# -- isolated bus handlers ----------------------------------------------------------------
def _run(inst, bus):
    b = SimulatedBroker(Portfolio(100_000.0), bus=bus, slippage=VolumeShare(volume_limit=0.1, price_impact=0.1))
    b.place(inst, "BUY", 300, ts(1))
    b.place(inst, "SELL", 50, ts(1), OrderType.STOP, stop_price=9.5)
    for day in (2, 3, 4):
        b.on_bar(inst, bar(day, 10, 11, 9, 10, v=2_000))
    return b


def test_failing_subscriber_changes_nothing_and_is_recorded(inst, caplog):
    def explode(event):
        raise RuntimeError(f"boom on {event.fill_id}")

    quiet, after = EventBus(), []
    noisy = EventBus()
    noisy.subscribe(OrderFilled, explode)
    noisy.subscribe(Event, after.append)  # subscribed after the failing one
    with caplog.at_level(logging.WARNING, logger="workbench.trading.events"):
        ref, got = _run(inst, quiet), _run(inst, noisy)
    assert got.fills_frame().equals(ref.fills_frame()) and got.orders_frame().equals(ref.orders_frame())
    assert repr(got.portfolio) == repr(ref.portfolio)
    n_filled = sum(isinstance(e, OrderFilled) for e in after)
    assert n_filled == 2 and len(noisy.failures) == n_filled and quiet.failures == []
    first = noisy.failures[0]
    assert isinstance(first, HandlerFailure) and isinstance(first.event, OrderFilled)
    assert "explode" in first.handler and first.error.startswith("RuntimeError: boom on F-")
    assert noisy.failed == n_filled
    logged = [r for r in caplog.records if "explode" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None  # the first failure, with its traceback


def test_a_failing_handler_does_not_skip_the_others_on_one_event():
    bus, seen = EventBus(), []
    bus.subscribe(Event, lambda e: seen.append("first"))
    bus.subscribe(Event, lambda e: 1 / 0)
    bus.subscribe(Event, lambda e: seen.append("third"))
    bus.publish(OrderTriggered(ts=ts(1), order_id="O-1"))
    assert seen == ["first", "third"] and len(bus.failures) == 1
    assert bus.failures[0].error.startswith("ZeroDivisionError")


def test_handler_failure_is_frozen():
    f = HandlerFailure(event=OrderTriggered(ts=ts(1), order_id="O-1"), handler="h", error="e")
    with pytest.raises(AttributeError):
        f.error = "x"  # type: ignore[misc]


# -- delivery over a snapshot; bounded failure records -------------------------------------
def _ev(i=1):
    return OrderTriggered(ts=ts(1), order_id=f"O-{i}")


def test_a_handler_unsubscribing_itself_does_not_skip_the_next_one():
    bus, seen = EventBus(), []

    def once(event):
        seen.append("once")
        bus.unsubscribe(Event, once)

    bus.subscribe(Event, once)
    bus.subscribe(Event, lambda e: seen.append("next"))
    bus.publish(_ev(1))
    bus.publish(_ev(2))
    assert seen == ["once", "next", "next"]


def test_a_handler_subscribed_during_delivery_gets_only_later_events():
    bus, seen = EventBus(), []

    def recruit(event):
        if event.order_id == "O-1":
            bus.subscribe(OrderTriggered, lambda e: seen.append(("same", e.order_id)))
            bus.subscribe(Event, lambda e: seen.append(("base", e.order_id)))

    bus.subscribe(OrderTriggered, recruit)
    bus.publish(_ev(1))
    assert seen == []
    bus.publish(_ev(2))
    assert seen == [("same", "O-2"), ("base", "O-2")]


def test_handlers_of_a_class_run_before_those_of_its_bases_in_subscription_order():
    bus, seen = EventBus(), []
    bus.subscribe(Event, lambda e: seen.append("base"))
    bus.subscribe(OrderTriggered, lambda e: seen.append("own 1"))
    bus.subscribe(OrderTriggered, lambda e: seen.append("own 2"))
    bus.publish(_ev())
    assert seen == ["own 1", "own 2", "base"]


def test_unsubscribing_a_handler_that_is_not_subscribed_names_it():
    bus = EventBus()
    with pytest.raises(InvalidValueError, match="is not subscribed to OrderTriggered"):
        bus.unsubscribe(OrderTriggered, print)


def test_failures_are_capped_and_counted_and_each_handler_logged_once(caplog):
    bus = EventBus()

    def always(event):
        raise ValueError(event.order_id)

    def also(event):
        raise KeyError(event.order_id)

    bus.subscribe(Event, always)
    bus.subscribe(Event, also)
    with caplog.at_level(logging.WARNING, logger="workbench.trading.events"):
        for i in range(1, 801):
            bus.publish(_ev(i))
    assert bus.failed == 1_600 and len(bus.failures) == EventBus.max_failures == 1_000
    assert bus.failures[0].error == "ValueError: O-1" and bus.failures[-1].error == "KeyError: 'O-500'"
    assert [r.exc_info[0] for r in caplog.records] == [ValueError, KeyError]
    assert "always" in caplog.records[0].getMessage() and "also" in caplog.records[1].getMessage()


def test_an_unhashable_handler_is_still_isolated_and_counted(caplog):
    class Handler:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self, event):
            raise RuntimeError("unhashable")

    bus = EventBus()
    bus.subscribe(Event, Handler())
    with caplog.at_level(logging.WARNING, logger="workbench.trading.events"):
        bus.publish(_ev(1))
        bus.publish(_ev(2))
    assert bus.failed == 2 and len(caplog.records) == 1
