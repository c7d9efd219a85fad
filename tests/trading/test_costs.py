"""Cost and sizing models: a zero-rate model is the no-cost model, numbers are stored as
floats (so equal specs describe, and hash, equal) and a class is no model."""

import re

import pytest

from workbench.errors import ParameterError
from workbench.strategy.ids import describe
from workbench.trading import (
    FixedBps,
    FixedPerOrder,
    FixedQuantity,
    HalfSpread,
    NoCommission,
    NoSlippage,
    PercentOfEquity,
    PercentOfNotional,
    PerShare,
    Portfolio,
    SimulatedBroker,
    VolumeShare,
)
from workbench.trading.costs import commission_from, slippage_from
from workbench.trading.sizing import sizer_from


@pytest.mark.parametrize(
    "model",
    [PercentOfNotional(rate=0), PercentOfNotional(rate=0, minimum=0), PerShare(rate=0), FixedPerOrder(amount=0), 0, 0.0, None],
)
def test_a_zero_commission_is_no_commission(model):
    assert commission_from(model) == NoCommission()


@pytest.mark.parametrize("model", [PercentOfNotional(rate=0, minimum=1.0), PerShare(rate=0.01), FixedPerOrder(amount=1)])
def test_a_commission_that_costs_something_is_kept(model):
    assert commission_from(model) is model


@pytest.mark.parametrize("model", [FixedBps(bps=0), FixedBps(bps=0.0), None])
def test_a_zero_slippage_is_no_slippage(model):
    assert slippage_from(model) == NoSlippage()


@pytest.mark.parametrize("model", [FixedBps(bps=1), HalfSpread(spread=0.01), VolumeShare(price_impact=0)])
def test_a_slippage_that_costs_or_caps_something_is_kept(model):
    assert slippage_from(model) is model  # VolumeShare without impact still caps the volume


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (FixedQuantity(quantity=1), FixedQuantity(quantity=1.0)),
        (VolumeShare(volume_limit=1, price_impact=0), VolumeShare(volume_limit=1.0, price_impact=0.0)),
        (PercentOfEquity(fraction=1), PercentOfEquity(fraction=1.0)),
        (sizer_from(10), FixedQuantity(quantity=10)),
    ],
)
def test_equal_models_describe_alike(a, b):
    assert describe(a) == describe(b) and repr(a) == repr(b)


def test_numbers_are_stored_as_floats():
    assert type(FixedQuantity(quantity=1).quantity) is float
    v = VolumeShare(volume_limit=1, price_impact=0)
    assert (type(v.volume_limit), type(v.price_impact)) == (float, float)


@pytest.mark.parametrize(
    ("read", "cls", "example"),
    [
        (commission_from, PercentOfNotional, "PercentOfNotional(rate=0.001)"),
        (slippage_from, FixedBps, "FixedBps(bps=5)"),
        (sizer_from, FixedQuantity, "FixedQuantity(quantity=10)"),
    ],
)
def test_a_model_class_instead_of_an_instance_is_refused_naming_it(read, cls, example):
    with pytest.raises(ParameterError, match=rf"got the class {cls.__name__}; pass an instance, e.g. {re.escape(example)}"):
        read(cls)


@pytest.mark.parametrize(("kw", "cls"), [({"commission": PercentOfNotional}, "PercentOfNotional"),
                                         ({"slippage": VolumeShare}, "VolumeShare")])  # fmt: skip
def test_the_simulated_broker_refuses_a_model_class_when_built(kw, cls):
    with pytest.raises(ParameterError, match=f"got the class {cls}; pass an instance"):
        SimulatedBroker(Portfolio(1_000.0), **kw)


def test_the_simulated_broker_reads_a_zero_rate_model_as_no_cost():
    b = SimulatedBroker(Portfolio(1_000.0), PercentOfNotional(rate=0), FixedBps(bps=0))
    assert (b.commission, b.slippage) == (NoCommission(), NoSlippage())
