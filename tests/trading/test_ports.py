"""The Broker port: both the simulated broker and a hand-written fake satisfy it, and code
written against the port (the contract tests below) runs on either."""

import dataclasses

import pytest

from tests.conftest import bar, ts
from tests.trading.fakes import FakeBroker
from workbench.errors import InvalidValueError
from workbench.trading import (
    AccountState,
    Broker,
    OrderStatus,
    OrderType,
    Portfolio,
    PortfolioView,
    SimulatedBroker,
    fills_frame,
    orders_frame,
)
from workbench.trading.frames import FILL_COLUMNS, ORDER_COLUMNS

BROKERS = {
    "simulated": lambda: SimulatedBroker(Portfolio(100_000.0)),
    "fake": lambda: FakeBroker(100_000.0),
}


@pytest.fixture(params=sorted(BROKERS))
def any_broker(request) -> Broker:
    return BROKERS[request.param]()


def test_simulated_and_fake_brokers_satisfy_the_port():
    assert isinstance(SimulatedBroker(Portfolio(1_000.0)), Broker)
    assert isinstance(FakeBroker(), Broker)
    assert not isinstance(object(), Broker)


def test_portfolio_satisfies_the_view_pre_trade_checks_get(inst):
    seen = []
    b = SimulatedBroker(Portfolio(1_000.0), pre_trade_check=lambda o, view, px: seen.append(view) or "")
    b.place(inst, "BUY", 1, ts(1))
    b.on_bar(inst, bar(2, 10, 11, 9, 10))
    assert len(seen) == 1 and isinstance(seen[0], PortfolioView)


def test_market_order_fills_at_next_open_through_the_port(any_broker, inst):
    o = any_broker.place(inst, "BUY", 10, ts(1))
    assert any_broker.has_open_orders and any_broker.open_orders == [o]
    assert any_broker.on_bar(inst, bar(1, 100, 101, 99, 100)) == []  # the signal bar
    (fill,) = any_broker.on_bar(inst, bar(2, 102, 105, 101, 104))
    assert (fill.price, fill.quantity, fill.order_id) == (102.0, 10.0, o.order_id)
    assert o.status is OrderStatus.FILLED
    assert not any_broker.has_open_orders and any_broker.open_orders == []
    assert any_broker.orders == [o]


def test_fill_stream_is_read_with_a_cursor(any_broker, inst):
    any_broker.place(inst, "BUY", 1, ts(1))
    any_broker.on_bar(inst, bar(2, 10, 11, 9, 10))
    first = any_broker.fills_since(0)
    any_broker.place(inst, "SELL", 1, ts(2))
    any_broker.on_bar(inst, bar(3, 12, 13, 11, 12))
    assert len(first) == 1
    new = any_broker.fills_since(len(first))
    assert [f.side.name for f in new] == ["SELL"]
    assert any_broker.fills_since() == first + new
    ids = [f.fill_id for f in any_broker.fills_since()]
    assert len(set(ids)) == len(ids)


def test_account_snapshot_reports_cash_equity_and_signed_positions(any_broker, inst):
    any_broker.place(inst, "SELL", 10, ts(1))
    any_broker.on_bar(inst, bar(2, 100, 101, 99, 100))
    state = any_broker.account()
    assert isinstance(state, AccountState)
    assert (state.cash, state.equity, state.currency) == (101_000.0, 100_000.0, "USD")
    assert dict(state.positions) == {inst.symbol: -10.0}


def test_cancel_and_modify_through_the_port(any_broker, inst):
    o = any_broker.place(inst, "BUY", 5, ts(1), OrderType.LIMIT, limit_price=90.0)
    order_id = o.order_id
    same = any_broker.modify(o, ts(1), quantity=7, limit_price=91.5)
    assert same is o and (o.order_id, o.quantity, o.limit_price) == (order_id, 7.0, 91.5)
    assert any_broker.open_orders == [o]
    any_broker.cancel(o, ts(1), "changed my mind")
    assert o.status is OrderStatus.CANCELLED and o.reason == "changed my mind"
    assert not any_broker.has_open_orders


def test_any_brokers_output_tabulates_with_the_report_columns(any_broker, inst):
    any_broker.place(inst, "BUY", 3, ts(1), tag="entry")
    any_broker.on_bar(inst, bar(2, 10, 11, 9, 10))
    orders, fills = orders_frame(any_broker.orders), fills_frame(any_broker.fills_since())
    assert list(orders.columns) == ORDER_COLUMNS and list(fills.columns) == FILL_COLUMNS
    assert orders["tag"].tolist() == ["entry"] and fills["quantity"].tolist() == [3.0]


def test_report_columns_are_unchanged():
    assert ORDER_COLUMNS == [
        "order_id", "symbol", "side", "type", "tif", "quantity", "limit_price", "stop_price",
        "placed", "status", "filled_quantity", "avg_fill_price", "fees", "updated", "reason", "tag",
    ]  # fmt: skip
    assert FILL_COLUMNS == ["fill_id", "order_id", "symbol", "side", "quantity", "price", "fee", "ts"]


def test_simulated_broker_frames_equal_the_module_functions(broker, inst):
    broker.place(inst, "BUY", 3, ts(1))
    broker.place(inst, "BUY", 3, ts(1), OrderType.LIMIT, limit_price=1.0)
    broker.on_bar(inst, bar(2, 10, 11, 9, 10))
    assert broker.orders_frame().equals(orders_frame(broker.orders))
    assert broker.fills_frame().equals(fills_frame(broker.fills))
    assert len(broker.orders_frame()) == 2 and len(broker.fills_frame()) == 1


def test_account_state_is_a_frozen_snapshot(broker, inst):
    broker.place(inst, "BUY", 1, ts(1))
    broker.on_bar(inst, bar(2, 10, 11, 9, 10))
    state = broker.account()
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.cash = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        state.positions[inst.symbol] = 99.0  # type: ignore[index]
    broker.place(inst, "BUY", 1, ts(2))
    broker.on_bar(inst, bar(3, 10, 11, 9, 10))
    assert state.positions[inst.symbol] == 1.0 and broker.account().positions[inst.symbol] == 2.0


def test_account_state_leaves_out_flat_positions(broker, inst):
    broker.place(inst, "BUY", 1, ts(1))
    broker.on_bar(inst, bar(2, 10, 11, 9, 10))
    broker.place(inst, "SELL", 1, ts(2))
    broker.on_bar(inst, bar(3, 10, 11, 9, 10))
    assert dict(broker.account().positions) == {}


def test_has_open_orders_tracks_the_book(broker, inst):
    assert not broker.has_open_orders
    far = broker.place(inst, "BUY", 1, ts(1), OrderType.LIMIT, limit_price=1.0)
    broker.place(inst, "BUY", 1, ts(1))
    broker.on_bar(inst, bar(2, 10, 11, 9, 10))
    assert broker.has_open_orders and broker.open_orders == [far]
    far.cancel(ts(2))  # behind the broker's back: still answered correctly
    assert not broker.has_open_orders and broker.open_orders == []


def test_fill_cursor_must_not_be_negative(broker):
    with pytest.raises(InvalidValueError, match="cursor must be >= 0, got cursor=-1"):
        broker.fills_since(-1)


def test_simulated_broker_keeps_its_constructor_and_attributes():
    p = Portfolio(1_000.0)
    b = SimulatedBroker(p, None, None, "SIGNAL_CLOSE", None, None)
    assert b.portfolio is p and b.fills == [] and b.fill_timing.name == "SIGNAL_CLOSE"
    assert type(b.commission).__name__ == "NoCommission" and type(b.slippage).__name__ == "NoSlippage"
    assert not hasattr(b, "execute")
