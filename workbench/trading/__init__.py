"""Trading context: pure domain model (standard library, numpy, pandas only)."""

from workbench.trading.accounts import AccountPolicy, BuysFromCash, CashAccount, MarginAccount
from workbench.trading.broker import AccountState, Broker, PortfolioView, PreTradeCheck
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
from workbench.trading.events import (
    EventBus,
    HandlerFailure,
    OrderDenied,
    OrderModified,
    OrderTriggered,
)
from workbench.trading.frames import fills_frame, orders_frame
from workbench.trading.orders import Fill, Order
from workbench.trading.portfolio import Portfolio
from workbench.trading.positions import Position
from workbench.trading.simulated import SimulatedBroker
from workbench.trading.sizing import AllEquity, FixedQuantity, PercentOfEquity
from workbench.trading.values import Instrument, Money, Percentage, Quantity, TimePeriod

__all__ = [
    "AccountPolicy", "AccountState", "AllEquity", "AssetClass", "Bar", "Broker", "BuysFromCash",
    "CashAccount", "CostBasisMethod", "EventBus", "Fill", "FillTiming", "FixedBps",
    "FixedPerOrder", "FixedQuantity", "HalfSpread", "HandlerFailure", "Instrument",
    "MarginAccount", "Money", "NoCommission", "NoSlippage", "Order", "OrderDenied", "OrderModified",
    "OrderStatus", "OrderTriggered", "OrderType", "PerShare", "PercentOfEquity",
    "PercentOfNotional", "Percentage", "Portfolio", "PortfolioView", "Position", "PositionSide",
    "PreTradeCheck", "Quantity", "Side", "SimulatedBroker", "TimeInForce", "TimePeriod",
    "VolumeShare", "fills_frame", "orders_frame",
]  # fmt: skip
