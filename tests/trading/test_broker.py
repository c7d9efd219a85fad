import pytest

from tests.conftest import bar, ts
from workbench.trading import (
    EventBus,
    FillTiming,
    FixedBps,
    OrderStatus,
    OrderType,
    PercentOfNotional,
    Portfolio,
    SimulatedBroker,
    TimeInForce,
    VolumeShare,
)
from workbench.trading.events import Event, OrderFilled, OrderRejected


def test_market_order_fills_at_next_bar_open_not_on_signal_bar(broker, inst):
    o = broker.place(inst, "BUY", 10, ts(1))
    assert broker.on_bar(inst, bar(1, 100, 101, 99, 100)) == []  # signal bar
    fills = broker.on_bar(inst, bar(2, 102, 105, 101, 104))
    assert [(f.price, f.ts) for f in fills] == [(102.0, ts(2))]
    assert o.status is OrderStatus.FILLED


def test_market_order_signal_close_option_fills_at_that_close(inst):
    b = SimulatedBroker(Portfolio(100_000.0), fill_timing=FillTiming.SIGNAL_CLOSE)
    b.place(inst, "BUY", 10, ts(1))
    fills = b.on_bar(inst, bar(1, 100, 101, 99, 100.5), at_close=True)
    assert [(f.price, f.ts) for f in fills] == [(100.5, ts(1))]


@pytest.mark.parametrize(
    ("side", "limit", "b", "expected"),
    [
        ("BUY", 100.0, (101, 102, 99, 100), 100.0),  # trades through: at the limit
        ("BUY", 100.0, (98, 99, 97, 98), 98.0),  # gaps below: at the open
        ("BUY", 100.0, (101, 103, 100.5, 102), None),  # never reaches
        ("SELL", 105.0, (101, 106, 100, 104), 105.0),
        ("SELL", 105.0, (107, 108, 106, 107), 107.0),  # gaps above: at the open
    ],
)
def test_limit_order_fills_at_limit_or_better_open(broker, inst, side, limit, b, expected):
    broker.place(inst, side, 1, ts(1), OrderType.LIMIT, limit_price=limit)
    fills = broker.on_bar(inst, bar(2, *b))
    assert [f.price for f in fills] == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("side", "stop", "b", "expected"),
    [
        ("BUY", 105.0, (101, 106, 100, 104), 105.0),
        ("BUY", 105.0, (107, 108, 106, 107), 107.0),  # gaps through the stop: at the open
        ("SELL", 95.0, (99, 100, 94, 96), 95.0),
        ("SELL", 95.0, (90, 92, 89, 91), 90.0),
        ("SELL", 95.0, (99, 100, 96, 97), None),
    ],
)
def test_stop_order_triggers_and_fills(broker, inst, side, stop, b, expected):
    broker.place(inst, side, 1, ts(1), OrderType.STOP, stop_price=stop)
    fills = broker.on_bar(inst, bar(2, *b))
    assert [f.price for f in fills] == ([expected] if expected else [])


def test_stop_limit_triggered_intrabar_beyond_limit_rests_as_limit(broker, inst):
    o = broker.place(inst, "BUY", 1, ts(1), OrderType.STOP_LIMIT, stop_price=105.0, limit_price=104.0)
    assert broker.on_bar(inst, bar(2, 101, 108, 100, 107)) == []
    assert o.triggered and o.status is OrderStatus.ACCEPTED
    fills = broker.on_bar(inst, bar(3, 106, 107, 103, 104))
    assert [f.price for f in fills] == [104.0]


def test_stop_limit_triggered_within_limit_fills_at_stop(broker, inst):
    broker.place(inst, "BUY", 1, ts(1), OrderType.STOP_LIMIT, stop_price=105.0, limit_price=106.0)
    assert [f.price for f in broker.on_bar(inst, bar(2, 101, 108, 100, 107))] == [105.0]


def test_day_order_expires_at_next_session(broker, inst):
    o = broker.place(inst, "BUY", 1, ts(1), OrderType.LIMIT, TimeInForce.DAY, limit_price=90.0)
    broker.on_bar(inst, bar(2, 100, 101, 99, 100))
    assert o.status is OrderStatus.ACCEPTED
    broker.on_bar(inst, bar(3, 100, 101, 80, 100))
    assert o.status is OrderStatus.EXPIRED and o.filled_quantity == 0


def test_gtc_order_keeps_working_across_sessions(broker, inst):
    o = broker.place(inst, "BUY", 1, ts(1), OrderType.LIMIT, TimeInForce.GTC, limit_price=90.0)
    broker.on_bar(inst, bar(2, 100, 101, 99, 100))
    broker.on_bar(inst, bar(3, 100, 101, 80, 100))
    assert o.status is OrderStatus.FILLED and o.avg_fill_price == 90.0


def test_ioc_fills_what_it_can_and_cancels_the_rest(inst):
    b = SimulatedBroker(Portfolio(1e9), slippage=VolumeShare(volume_limit=0.1, price_impact=0.0))
    o = b.place(inst, "BUY", 500, ts(1), time_in_force=TimeInForce.IOC)
    fills = b.on_bar(inst, bar(2, 10, 11, 9, 10, v=2_000))
    assert [f.quantity for f in fills] == [200.0]
    assert o.status is OrderStatus.CANCELLED and o.filled_quantity == 200 and "IOC" in o.reason


def test_fok_that_cannot_fill_completely_fills_nothing(inst):
    b = SimulatedBroker(Portfolio(1e9), slippage=VolumeShare(volume_limit=0.1, price_impact=0.0))
    o = b.place(inst, "BUY", 500, ts(1), time_in_force=TimeInForce.FOK)
    assert b.on_bar(inst, bar(2, 10, 11, 9, 10, v=2_000)) == []
    assert o.status is OrderStatus.CANCELLED and o.filled_quantity == 0 and "FOK" in o.reason


def test_volume_cap_gives_partial_fills_over_several_bars(inst):
    b = SimulatedBroker(Portfolio(1e9), slippage=VolumeShare(volume_limit=0.1, price_impact=0.0))
    o = b.place(inst, "BUY", 500, ts(1))
    for day in (2, 3, 4):
        b.on_bar(inst, bar(day, 10, 11, 9, 10, v=2_000))
    assert [f.quantity for f in b.fills] == [200.0, 200.0, 100.0]
    assert o.status is OrderStatus.FILLED


def test_unaffordable_order_is_rejected_with_reason_not_resized(inst):
    b = SimulatedBroker(Portfolio(1_000.0), commission=PercentOfNotional(rate=0.01))
    o = b.place(inst, "BUY", 10, ts(1))
    assert b.on_bar(inst, bar(2, 100, 101, 99, 100)) == []
    assert o.status is OrderStatus.REJECTED and "insufficient" in o.reason and o.filled_quantity == 0


def test_slippage_never_leaves_the_bar_range(inst):
    b = SimulatedBroker(Portfolio(1e6), slippage=FixedBps(bps=500))
    b.place(inst, "BUY", 1, ts(1))
    (fill,) = b.on_bar(inst, bar(2, 100, 101, 99, 100))
    assert fill.price == 101.0  # 105 clamped to the high


def test_slippage_never_worse_than_limit(inst):
    b = SimulatedBroker(Portfolio(1e6), slippage=FixedBps(bps=100))
    b.place(inst, "BUY", 1, ts(1), OrderType.LIMIT, limit_price=100.0)
    (fill,) = b.on_bar(inst, bar(2, 101, 102, 99, 100))
    assert fill.price == 100.0


def test_bus_receives_order_and_position_events(inst):
    bus, seen = EventBus(), []
    bus.subscribe(Event, seen.append)
    b = SimulatedBroker(Portfolio(1_000.0), bus=bus)
    b.place(inst, "BUY", 1, ts(1))
    b.on_bar(inst, bar(2, 10, 11, 9, 10))
    names = [type(e).__name__ for e in seen]
    assert names == ["OrderPlaced", "OrderAccepted", "OrderFilled", "PositionOpened"]
    rejected = []
    bus.subscribe(OrderRejected, rejected.append)
    b.place(inst, "BUY", 1000, ts(2))
    b.on_bar(inst, bar(3, 10, 11, 9, 10))
    assert len(rejected) == 1 and "insufficient" in rejected[0].reason
    assert sum(isinstance(e, OrderFilled) for e in seen) == 1


def test_triggered_stop_remainder_works_as_market_order_next_bar(inst):
    # Found by Hypothesis: a volume-capped stop order must keep filling at later opens.
    b = SimulatedBroker(Portfolio(1e9), slippage=VolumeShare(volume_limit=0.1, price_impact=0.0))
    o = b.place(inst, "BUY", 300, ts(1), OrderType.STOP, stop_price=105.0)
    b.on_bar(inst, bar(2, 101, 106, 100, 104, v=2_000))
    b.on_bar(inst, bar(3, 103, 104, 102, 103, v=2_000))
    assert [(f.quantity, f.price) for f in b.fills] == [(200.0, 105.0), (100.0, 103.0)]
    assert o.status is OrderStatus.FILLED


# -- a refused fill changes nothing; currencies are checked at acceptance ----------------
def test_two_brokers_numbering_fills_alike_refuse_the_second_fill_and_change_nothing(inst):
    from workbench.errors import DuplicateFillError

    p = Portfolio(100_000.0)
    first, second = SimulatedBroker(p), SimulatedBroker(p)
    first.place(inst, "BUY", 1, ts(1))
    first.on_bar(inst, bar(2, 100, 101, 99, 100))
    o = second.place(inst, "BUY", 1, ts(2))
    booked = (p.cash, len(p.transactions), p.quantity(inst), len(p.events), repr(p))
    with pytest.raises(DuplicateFillError, match=r"fill F-1 .*already booked.*distinct id_prefix"):
        second.on_bar(inst, bar(3, 100, 101, 99, 100))
    assert (p.cash, len(p.transactions), p.quantity(inst), len(p.events), repr(p)) == booked
    assert o.status is OrderStatus.ACCEPTED and o.filled_quantity == 0 and second.fills == []
    assert [type(e).__name__ for e in o.events] == ["OrderPlaced", "OrderAccepted"]


def test_a_refused_fill_leaves_the_order_working_and_the_book_as_it_was(inst):
    from workbench.errors import DuplicateFillError

    p = Portfolio(100_000.0)
    keep = SimulatedBroker(p)
    keep.place(inst, "BUY", 1, ts(1))
    keep.on_bar(inst, bar(2, 100, 101, 99, 100))
    other = SimulatedBroker(p)
    o = other.place(inst, "BUY", 1, ts(1))
    with pytest.raises(DuplicateFillError):
        other.on_bar(inst, bar(2, 100, 101, 99, 100))
    assert o.status is OrderStatus.ACCEPTED and o.filled_quantity == 0 and other.fills == []
    assert [t.fill_id for t in p.transactions] == ["F-1"] and p.quantity(inst) == 1.0


def test_id_prefix_keeps_two_brokers_apart_and_the_default_ids_unchanged(inst):
    p = Portfolio(100_000.0)
    plain, a, b = SimulatedBroker(p), SimulatedBroker(p, id_prefix="A-"), SimulatedBroker(p, id_prefix="B-")
    orders = [x.place(inst, "BUY", 1, ts(1)) for x in (plain, a, b)]
    for x in (plain, a, b):
        x.on_bar(inst, bar(2, 100, 101, 99, 100))
    assert [o.order_id for o in orders] == ["O-1", "A-O-1", "B-O-1"]
    assert [t.fill_id for t in p.transactions] == ["F-1", "A-F-1", "B-F-1"]
    assert all(o.status is OrderStatus.FILLED for o in orders) and p.quantity(inst) == 3.0


@pytest.mark.parametrize("prefix", [None, 1, b"A-"])
def test_id_prefix_must_be_a_string(prefix):
    from workbench.errors import InvalidValueError

    with pytest.raises(InvalidValueError, match=rf"id_prefix must be a string, got id_prefix={prefix!r}"):
        SimulatedBroker(Portfolio(1_000.0), id_prefix=prefix)


@pytest.mark.parametrize("fill_timing", [FillTiming.NEXT_OPEN, FillTiming.SIGNAL_CLOSE])
def test_order_in_another_currency_is_rejected_at_acceptance_naming_both(fill_timing):
    from workbench.trading import Instrument

    eur = Instrument(ticker="SAP", exchange="XETRA", currency="EUR")
    p = Portfolio(100_000.0)
    b = SimulatedBroker(p, fill_timing=fill_timing)
    o = b.place(eur, "BUY", 1, ts(1))
    close = fill_timing is FillTiming.SIGNAL_CLOSE
    assert b.on_bar(eur, bar(1 if close else 2, 100, 101, 99, 100), at_close=close) == []
    assert o.status is OrderStatus.REJECTED and "EUR" in o.reason and "USD" in o.reason
    assert "currency" in o.reason and p.transactions == [] and p.cash == 100_000.0


def test_a_subscriber_ending_an_order_on_acceptance_books_nothing(inst):
    from workbench.trading.events import OrderAccepted

    bus, p = EventBus(), Portfolio(100_000.0)
    b = SimulatedBroker(p, bus=bus)
    bus.subscribe(OrderAccepted, lambda e: b.orders[0].cancel(e.ts, "changed my mind"))
    o = b.place(inst, "BUY", 1, ts(1), OrderType.STOP, stop_price=99.0)
    assert b.on_bar(inst, bar(2, 98, 99, 97, 98)) == []
    assert o.status is OrderStatus.CANCELLED and p.transactions == [] and b.fills == []


# -- modify: only orders this broker holds, never before they were placed -----------------
def test_modify_refuses_an_order_another_broker_holds(inst):
    from workbench.errors import OrderStateError

    mine, theirs = SimulatedBroker(Portfolio(1e5)), SimulatedBroker(Portfolio(1e5))
    o = theirs.place(inst, "BUY", 1, ts(1), OrderType.LIMIT, limit_price=90.0)
    with pytest.raises(OrderStateError, match="cannot modify order O-1: it is not in this broker's book"):
        mine.modify(o, ts(1), quantity=2)
    with pytest.raises(OrderStateError, match="cannot cancel order O-1: it is not in this broker's book"):
        mine.cancel(o, ts(1))
    assert (o.quantity, o.status, len(o.events)) == (1.0, OrderStatus.PENDING, 1)


def test_modify_refuses_a_time_before_the_order_was_placed(broker, inst):
    from workbench.errors import InvalidValueError

    o = broker.place(inst, "BUY", 1, ts(3), OrderType.LIMIT, limit_price=90.0)
    with pytest.raises(InvalidValueError, match=r"cannot modify order O-1 at 2024-01-02 00:00:00\+00:00: "
                                                r"before it was placed at 2024-01-03 00:00:00\+00:00"):  # fmt: skip
        broker.modify(o, ts(2), limit_price=91.0)
    assert (o.limit_price, len(o.events)) == (90.0, 1)
    broker.modify(o, ts(3), limit_price=91.0)  # at placement is fine
    assert o.limit_price == 91.0
