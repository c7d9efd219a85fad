import copy
import re

import pytest

from tests.conftest import ts
from workbench.errors import InvalidValueError, OrderStateError, OverfillError
from workbench.trading import Fill, Order, OrderStatus, OrderType, Side
from workbench.trading.events import (
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderPartiallyFilled,
    OrderPlaced,
)


def _order(inst, qty=10, **kw):
    return Order(order_id="O-1", instrument=inst, side=Side.BUY, quantity=qty, ts=ts(1), **kw)


def _fill(inst, qty, price=100.0, fid="F-1"):
    return Fill(fill_id=fid, order_id="O-1", instrument=inst, side=Side.BUY, quantity=qty, price=price, fee=0.0, ts=ts(2))


def test_new_order_is_pending_and_emits_order_placed(inst):
    o = _order(inst)
    assert o.status is OrderStatus.PENDING
    assert isinstance(o.events[0], OrderPlaced)


def test_order_accept_then_partial_then_full_fill(inst):
    o = _order(inst)
    assert isinstance(o.accept(ts(2)), OrderAccepted)
    ev = o.fill(_fill(inst, 4, 100.0))
    assert isinstance(ev, OrderPartiallyFilled) and ev.remaining_quantity == 6
    assert o.status is OrderStatus.PARTIALLY_FILLED
    ev = o.fill(_fill(inst, 6, 110.0, "F-2"))
    assert isinstance(ev, OrderFilled)
    assert o.status is OrderStatus.FILLED
    assert o.avg_fill_price == pytest.approx(106.0)


def test_fill_cancelled_order_raises_and_changes_nothing(inst):
    o = _order(inst)
    o.accept(ts(2))
    o.cancel(ts(2))
    before = copy.deepcopy(o.__dict__)
    with pytest.raises(OrderStateError, match="cannot fill order O-1: status is CANCELLED"):
        o.fill(_fill(inst, 1))
    assert o.__dict__.keys() == before.keys()
    assert o.status is OrderStatus.CANCELLED and o.filled_quantity == 0 and len(o.events) == len(before["events"])


def test_overfill_raises_and_changes_nothing(inst):
    o = _order(inst)
    o.accept(ts(2))
    o.fill(_fill(inst, 8))
    with pytest.raises(OverfillError, match="only 2 of 10 remain"):
        o.fill(_fill(inst, 3, fid="F-2"))
    assert o.filled_quantity == 8 and o.status is OrderStatus.PARTIALLY_FILLED


def test_cancel_filled_order_raises(inst):
    o = _order(inst)
    o.accept(ts(2))
    o.fill(_fill(inst, 10))
    with pytest.raises(OrderStateError, match="FILLED -> CANCELLED is not a legal transition"):
        o.cancel(ts(3))
    assert o.status is OrderStatus.FILLED


def test_fill_pending_order_raises(inst):
    with pytest.raises(OrderStateError, match="status is PENDING"):
        _order(inst).fill(_fill(inst, 1))


def test_reject_needs_a_reason_and_is_terminal(inst):
    o = _order(inst)
    with pytest.raises(InvalidValueError, match="reason"):
        o.reject(ts(2), "")
    o.reject(ts(2), "insufficient cash")
    assert o.status is OrderStatus.REJECTED and o.reason == "insufficient cash"
    with pytest.raises(OrderStateError):
        o.accept(ts(2))


def test_cancel_records_reason_event(inst):
    o = _order(inst)
    ev = o.cancel(ts(1), "user changed mind")
    assert isinstance(ev, OrderCancelled) and ev.reason == "user changed mind"


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"order_type": OrderType.LIMIT}, "LIMIT order needs limit_price"),
        ({"order_type": OrderType.STOP}, "STOP order needs stop_price"),
        ({"order_type": OrderType.STOP_LIMIT, "stop_price": 10.0}, "needs limit_price"),
        ({"order_type": OrderType.MARKET, "limit_price": 10.0}, "takes no limit_price"),
    ],
)
def test_order_prices_must_match_its_type(inst, kw, msg):
    with pytest.raises(InvalidValueError, match=msg):
        _order(inst, **kw)


def test_order_quantity_must_be_positive_lot_multiple(inst):
    with pytest.raises(InvalidValueError, match="> 0"):
        _order(inst, qty=0)
    with pytest.raises(InvalidValueError, match="multiple of lot size"):
        _order(inst, qty=1.5)


def test_fill_for_other_order_is_refused(inst):
    o = _order(inst)
    o.accept(ts(2))
    f = Fill(fill_id="F", order_id="O-9", instrument=inst, side=Side.BUY, quantity=1, price=1.0, fee=0.0, ts=ts(2))
    with pytest.raises(OrderStateError, match="is for order O-9"):
        o.fill(f)


def test_fill_value_object_validates(inst):
    with pytest.raises(InvalidValueError, match="fee must be >= 0"):
        Fill(fill_id="F", order_id="O", instrument=inst, side=Side.BUY, quantity=1, price=1.0, fee=-1.0, ts=ts(1))


@pytest.mark.parametrize(
    ("kw", "field", "value"),
    [
        ({"order_type": OrderType.LIMIT, "limit_price": 101.235}, "limit_price", "101.235"),
        ({"order_type": OrderType.STOP, "stop_price": 99.999}, "stop_price", "99.999"),
        ({"order_type": OrderType.STOP_LIMIT, "stop_price": 99.0, "limit_price": 98.505}, "limit_price", "98.505"),
    ],
)
def test_order_prices_must_be_on_the_tick(inst, kw, field, value):
    with pytest.raises(InvalidValueError, match=rf"{field} must be a multiple of tick size 0.01 for TEST.SIM, got {field}={value}"):
        _order(inst, **kw)


def test_on_tick_prices_pass_despite_float_round_off(inst):
    o = _order(inst, order_type=OrderType.STOP_LIMIT, stop_price=101.23, limit_price=0.07)
    assert (o.stop_price, o.limit_price) == (101.23, 0.07)


@pytest.mark.parametrize("value", [True, False, "101.23", b"1", [101.0]])
@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"order_type": OrderType.LIMIT}, "limit_price"),
        ({"order_type": OrderType.STOP}, "stop_price"),
    ],
)
def test_a_price_that_is_not_a_number_is_refused_naming_it(inst, kw, field, value):
    with pytest.raises(InvalidValueError, match=rf"needs {field} > 0 as a number, got {field}={re.escape(repr(value))}"):
        _order(inst, **kw, **{field: value})


def test_modify_refuses_a_price_that_is_not_a_number(inst):
    o = _order(inst, order_type=OrderType.LIMIT, limit_price=100.0)
    with pytest.raises(InvalidValueError, match="limit_price > 0 as a number, got limit_price=True"):
        o.modify(ts(1), limit_price=True)
    assert o.limit_price == 100.0 and len(o.events) == 1


def test_prices_are_stored_as_floats(inst):
    o = _order(inst, order_type=OrderType.STOP_LIMIT, stop_price=101, limit_price=102)
    assert (type(o.stop_price), type(o.limit_price)) == (float, float)
