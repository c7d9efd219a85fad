"""Transaction costs as pluggable one-method policies.

Commission policies answer ``calculate(quantity, price, instrument) -> fee`` (>= 0, in the
instrument's currency). Slippage policies answer ``price(side, price, quantity, bar) ->
execution price`` (never better than ``price``) and ``max_quantity(bar)`` (the volume cap;
``inf`` when none). The broker clamps a slipped price into the bar's [low, high], so
slippage can never produce a price the market did not trade.

>>> PercentOfNotional(rate=0.001, minimum=1.0).calculate(10, 50.0, None)
1.0
>>> round(FixedBps(bps=10).price(Side.BUY, 100.0, 1, None), 6)
100.1
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from workbench.errors import InvalidValueError
from workbench.trading.enums import Side
from workbench.trading.values import Instrument

__all__ = [
    "Bar",
    "CommissionModel",
    "SlippageModel",
    "NoCommission",
    "PercentOfNotional",
    "PerShare",
    "FixedPerOrder",
    "NoSlippage",
    "FixedBps",
    "HalfSpread",
    "VolumeShare",
    "commission_from",
]


class Bar(NamedTuple):
    """One OHLCV bar as the broker sees it."""

    ts: object
    open: float
    high: float
    low: float
    close: float
    volume: float


def _nonneg(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise InvalidValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


@runtime_checkable
class CommissionModel(Protocol):
    def calculate(self, quantity: float, price: float, instrument: Instrument | None) -> float:
        """Fee for trading ``quantity`` at ``price``."""
        ...


@runtime_checkable
class SlippageModel(Protocol):
    def price(self, side: Side, price: float, quantity: float, bar: Bar | None) -> float:
        """Execution price for a fill that would otherwise happen at ``price``."""
        ...

    def max_quantity(self, bar: Bar) -> float:
        """Largest quantity this bar can fill (``inf`` for no cap)."""
        ...


def _mult(instrument: Instrument | None) -> float:
    return 1.0 if instrument is None else instrument.multiplier


@dataclass(frozen=True, kw_only=True, slots=True)
class NoCommission:
    def calculate(self, quantity: float, price: float, instrument: Instrument | None) -> float:
        return 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class PercentOfNotional:
    """``rate`` × notional (0.001 = 10 bps), at least ``minimum`` per fill."""

    rate: float
    minimum: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", _nonneg("commission rate", self.rate))
        object.__setattr__(self, "minimum", _nonneg("minimum commission", self.minimum))
        if self.rate >= 1:
            raise InvalidValueError(f"commission rate is a fraction (< 1), got {self.rate!r}")

    def calculate(self, quantity: float, price: float, instrument: Instrument | None) -> float:
        return max(self.rate * quantity * price * _mult(instrument), self.minimum)


@dataclass(frozen=True, kw_only=True, slots=True)
class PerShare:
    """``rate`` per unit traded, at least ``minimum`` per fill."""

    rate: float
    minimum: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", _nonneg("per-share rate", self.rate))
        object.__setattr__(self, "minimum", _nonneg("minimum commission", self.minimum))

    def calculate(self, quantity: float, price: float, instrument: Instrument | None) -> float:
        return max(self.rate * quantity, self.minimum)


@dataclass(frozen=True, kw_only=True, slots=True)
class FixedPerOrder:
    """A flat ``amount`` per fill."""

    amount: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", _nonneg("fixed commission", self.amount))

    def calculate(self, quantity: float, price: float, instrument: Instrument | None) -> float:
        return self.amount


@dataclass(frozen=True, kw_only=True, slots=True)
class NoSlippage:
    def price(self, side: Side, price: float, quantity: float, bar: Bar | None) -> float:
        return price

    def max_quantity(self, bar: Bar) -> float:
        return math.inf


@dataclass(frozen=True, kw_only=True, slots=True)
class FixedBps:
    """Pay ``bps`` basis points on every fill: buys higher, sells lower."""

    bps: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "bps", _nonneg("slippage bps", self.bps))

    def price(self, side: Side, price: float, quantity: float, bar: Bar | None) -> float:
        return price * (1.0 + side.sign * self.bps * 1e-4)

    def max_quantity(self, bar: Bar) -> float:
        return math.inf


@dataclass(frozen=True, kw_only=True, slots=True)
class HalfSpread:
    """Cross half a quoted spread: ``spread`` in price units, or ``spread_bps`` of price."""

    spread: float = 0.0
    spread_bps: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "spread", _nonneg("spread", self.spread))
        object.__setattr__(self, "spread_bps", _nonneg("spread_bps", self.spread_bps))
        if (self.spread > 0) == (self.spread_bps > 0):
            raise InvalidValueError(
                f"give exactly one of spread or spread_bps (> 0), got spread={self.spread}, "
                f"spread_bps={self.spread_bps}"
            )

    def price(self, side: Side, price: float, quantity: float, bar: Bar | None) -> float:
        half = self.spread / 2 if self.spread > 0 else price * self.spread_bps * 1e-4 / 2
        return price + side.sign * half

    def max_quantity(self, bar: Bar) -> float:
        return math.inf


@dataclass(frozen=True, kw_only=True, slots=True)
class VolumeShare:
    """Zipline's volume-share model: fill at most ``volume_limit`` of the bar's volume, and
    move the price by ``price_impact × (quantity / volume)²`` (a fraction of price).

    Bars with unknown (NaN) volume are not capped and have no impact; bars with zero
    volume fill nothing.
    """

    volume_limit: float = 0.025
    price_impact: float = 0.1

    def __post_init__(self) -> None:
        limit = _nonneg("volume_limit", self.volume_limit)
        if not 0 < limit <= 1:
            raise InvalidValueError(f"volume_limit must be in (0, 1], got {limit!r}")
        object.__setattr__(self, "price_impact", _nonneg("price_impact", self.price_impact))

    def price(self, side: Side, price: float, quantity: float, bar: Bar | None) -> float:
        if bar is None or not (bar.volume > 0):
            return price
        share = min(quantity / bar.volume, self.volume_limit)
        return price * (1.0 + side.sign * self.price_impact * share * share)

    def max_quantity(self, bar: Bar) -> float:
        if math.isnan(bar.volume):
            return math.inf
        return self.volume_limit * bar.volume


def commission_from(value: float | CommissionModel | None) -> CommissionModel:
    """A number is a percent-of-notional rate (``0.001`` = 10 bps); ``None`` is free."""
    if value is None:
        return NoCommission()
    if isinstance(value, int | float):
        return PercentOfNotional(rate=value) if value > 0 else NoCommission()
    if isinstance(value, CommissionModel):
        return value
    raise InvalidValueError(f"commission must be a rate or a commission model, got {value!r}")
