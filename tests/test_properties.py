"""Invariants of the trading domain over random orders and bars (Hypothesis)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.errors import OrderStateError
from workbench.trading import (
    Bar,
    CostBasisMethod,
    Fill,
    Instrument,
    MarginAccount,
    Order,
    OrderStatus,
    OrderType,
    PercentOfNotional,
    Portfolio,
    Position,
    Side,
    SimulatedBroker,
    TimeInForce,
    VolumeShare,
)
from workbench.trading.orders import LEGAL_TRANSITIONS

INST = Instrument(ticker="P", exchange="PROP")
T0 = pd.Timestamp("2024-01-01", tz="UTC")


@st.composite
def bars(draw, n_min=3, n_max=25):
    n = draw(st.integers(n_min, n_max))
    out, price = [], 100.0
    for i in range(n):
        o = price * draw(st.floats(0.9, 1.1))
        c = o * draw(st.floats(0.9, 1.1))
        h = max(o, c) * draw(st.floats(1.0, 1.05))
        lo = min(o, c) * draw(st.floats(0.95, 1.0))
        v = draw(st.sampled_from([1e3, 1e4, 1e6]))
        out.append(Bar(T0 + pd.Timedelta(days=i), o, h, lo, c, v))
        price = c
    return out


order_specs = st.lists(
    st.tuples(
        st.integers(0, 20),  # bar index where placed
        st.sampled_from(["BUY", "SELL"]),
        st.integers(1, 60),
        st.sampled_from(list(OrderType)),
        st.sampled_from(list(TimeInForce)),
        st.floats(0.85, 1.15),  # price offset for limit/stop
        st.floats(0.85, 1.15),
    ),
    max_size=12,
)


def simulate(bs, specs, method=CostBasisMethod.FIFO, capped=False):
    broker = SimulatedBroker(
        Portfolio(10_000.0, cost_basis=method, account=MarginAccount(initial_margin=0.5, maintenance_margin=0.25)),
        commission=PercentOfNotional(rate=0.001, minimum=0.5),
        slippage=VolumeShare(volume_limit=0.01, price_impact=0.1) if capped else None,
    )
    signal_bar = {}
    for i, b in enumerate(bs):
        broker.portfolio.mark(INST.symbol, b.open)
        broker.on_bar(INST, b)
        broker.portfolio.mark(INST.symbol, b.close)
        for at, side, qty, otype, tif, k1, k2 in specs:
            if at != i:
                continue
            ref = b.close
            limit = round(ref * k1, 2) if otype in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
            stop = round(ref * k2, 2) if otype in (OrderType.STOP, OrderType.STOP_LIMIT) else None
            o = broker.place(INST, side, qty, b.ts, otype, tif, limit_price=limit, stop_price=stop)
            signal_bar[o.order_id] = i
    return broker, signal_bar


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bs=bars(), specs=order_specs, capped=st.booleans())
def test_accounting_identities_hold(bs, specs, capped):
    broker, _ = simulate(bs, specs, capped=capped)
    p = broker.portfolio
    marked = sum(pos.market_value(p.marks[s]) for s, pos in p.positions.items())
    assert np.isclose(p.cash + marked, p.equity, rtol=1e-9, atol=1e-6)
    total = p.realized_pnl + p.unrealized_pnl - p.fees
    assert np.isclose(total, p.equity - p.starting_cash, rtol=1e-9, atol=1e-6)
    assert np.isclose(p.fees, sum(f.fee for f in broker.fills), rtol=1e-12, atol=1e-9)


@settings(max_examples=150, deadline=None)
@given(bs=bars(), specs=order_specs, capped=st.booleans())
def test_fills_stay_in_bar_range_and_after_the_signal_bar(bs, specs, capped):
    broker, signal_bar = simulate(bs, specs, capped=capped)
    by_ts = {b.ts: (i, b) for i, b in enumerate(bs)}
    for f in broker.fills:
        i, b = by_ts[f.ts]
        assert b.low - 1e-9 <= f.price <= b.high + 1e-9
        assert i > signal_bar[f.order_id]


@settings(max_examples=150, deadline=None)
@given(bs=bars(), specs=order_specs)
def test_orders_only_reach_legal_states(bs, specs):
    broker, _ = simulate(bs, specs, capped=True)
    for o in broker.orders:
        statuses = [OrderStatus.PENDING]
        for e in o.events[1:]:
            before = statuses[-1]
            probe = Order(order_id="x", instrument=INST, side=Side.BUY, quantity=1, ts=T0)
            probe.status = before
            probe.apply(e) if type(e).__name__ != "OrderPlaced" else None
            if type(e).__name__ in ("OrderTriggered", "OrderModified") and probe.status is before:
                continue  # a trigger or an amendment need not change the status
            assert probe.status in LEGAL_TRANSITIONS[before], (before, probe.status)
            statuses.append(probe.status)
        assert o.status is statuses[-1]
        assert 0 <= o.filled_quantity <= o.quantity + 1e-9
        if o.status is OrderStatus.FILLED:
            assert abs(o.filled_quantity - o.quantity) < 1e-9


@settings(max_examples=100, deadline=None)
@given(
    commands=st.lists(st.sampled_from(["accept", "reject", "cancel", "expire", "fill3", "fill10"]), max_size=8)
)
def test_state_machine_refuses_illegal_commands_without_changing_state(commands):
    o = Order(order_id="O", instrument=INST, side=Side.BUY, quantity=10, ts=T0)
    n = 0
    for cmd in commands:
        before = (o.status, o.filled_quantity, len(o.events))
        try:
            if cmd.startswith("fill"):
                n += 1
                o.fill(Fill(fill_id=f"F{n}", order_id="O", instrument=INST, side=Side.BUY,
                            quantity=float(cmd[4:]), price=1.0, fee=0.0, ts=T0))
            elif cmd == "reject":
                o.reject(T0, "no")
            else:
                getattr(o, cmd)(T0)
        except OrderStateError:
            assert (o.status, o.filled_quantity, len(o.events)) == before
        else:
            assert o.status in LEGAL_TRANSITIONS[before[0]]


@settings(max_examples=150, deadline=None)
@given(
    fills=st.lists(
        st.tuples(st.sampled_from(["BUY", "SELL"]), st.integers(1, 50), st.floats(1, 500), st.floats(0, 5)),
        min_size=1,
        max_size=15,
    )
)
def test_cost_basis_methods_agree_once_flat(fills):
    totals = {}
    for method in CostBasisMethod:
        pos = Position(INST, method)
        for j, (side, qty, price, fee) in enumerate(fills):
            pos.apply(Fill(fill_id=str(j), order_id="O", instrument=INST, side=Side.parse(side),
                           quantity=qty, price=price, fee=fee, ts=T0 + pd.Timedelta(days=j)))
        q = pos.quantity
        if q:
            side = Side.SELL if q > 0 else Side.BUY
            pos.apply(Fill(fill_id="close", order_id="O", instrument=INST, side=side, quantity=abs(q),
                           price=123.0, fee=0.0, ts=T0 + pd.Timedelta(days=99)))
        assert pos.is_flat
        totals[method] = (pos.realized_pnl, pos.fees, sum(t.pnl for t in pos.trades))
    ref = totals[CostBasisMethod.FIFO]
    for method, got in totals.items():
        assert np.allclose(got, ref, rtol=1e-9, atol=1e-6), method


@settings(max_examples=40, deadline=None)
@given(bs=bars(), specs=order_specs)
def test_same_inputs_give_byte_identical_results(bs, specs):
    def run():
        broker, _ = simulate(bs, specs, capped=True)
        frames = (broker.orders_frame(), broker.fills_frame(), broker.portfolio.trades_frame())
        return pickle.dumps([f.to_csv().encode() for f in frames])

    assert run() == run()
