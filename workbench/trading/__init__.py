"""Trading context: pure domain model (standard library, numpy, pandas only)."""

from workbench.trading.broker import SimulatedBroker
from workbench.trading.costs import (
    Bar,
    FixedBps,
    FixedPerOrder,
    HalfSpread,
    NoCommission,
    NoSlippage,
    PercentOfNotional,
    PerShare,
    VolumeShare,
)
from workbench.trading.enums import (
    AssetClass,
    CostBasisMethod,
    FillTiming,
    OrderStatus,
    OrderType,
    PositionSide,
    Side,
    TimeInForce,
)
from workbench.trading.events import EventBus
from workbench.trading.orders import Fill, Order
from workbench.trading.portfolio import Portfolio
from workbench.trading.positions import Position
from workbench.trading.sizing import AllEquity, FixedQuantity, PercentOfEquity
from workbench.trading.values import Instrument, Money, Percentage, Quantity, TimePeriod

__all__ = [
    "AllEquity", "AssetClass", "Bar", "CostBasisMethod", "EventBus", "Fill", "FillTiming",
    "FixedBps", "FixedPerOrder", "FixedQuantity", "HalfSpread", "Instrument", "Money",
    "NoCommission", "NoSlippage", "Order", "OrderStatus", "OrderType", "PerShare",
    "PercentOfEquity", "PercentOfNotional", "Percentage", "Portfolio", "Position",
    "PositionSide", "Quantity", "Side", "SimulatedBroker", "TimeInForce", "TimePeriod",
    "VolumeShare",
]  # fmt: skip
