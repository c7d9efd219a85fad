"""Risk events: what the risk context decided and saw, as immutable past-tense records.

They are published on the run's :class:`~workbench.trading.events.EventBus` beside the
order events, and kept in the run's risk log (:class:`~workbench.risk.monitor.RiskMonitor`).
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.trading.events import Event

__all__ = ["RiskCheckPassed", "RiskCheckFailed", "LimitBreached", "TradingStateChanged", "MarginCallTriggered",
           "PositionLiquidated"]  # fmt: skip


@dataclass(frozen=True, kw_only=True, slots=True)
class RiskCheckPassed(Event):
    order_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RiskCheckFailed(Event):
    """An order was denied: ``limit`` named it, ``value`` went past ``threshold``."""

    order_id: str
    limit: str
    value: float
    threshold: float
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class LimitBreached(Event):
    """A limit was exceeded without an order (prices moved a position past its cap)."""

    limit: str
    value: float
    threshold: float


@dataclass(frozen=True, kw_only=True, slots=True)
class TradingStateChanged(Event):
    old: str
    new: str
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class MarginCallTriggered(Event):
    """Equity at a close fell below the maintenance requirement (or to zero or below)."""

    equity: float
    requirement: float
    maintenance: float


@dataclass(frozen=True, kw_only=True, slots=True)
class PositionLiquidated(Event):
    """A position closed by the liquidation that follows a margin call."""

    symbol: str
    quantity: float
    price: float
    order_id: str
