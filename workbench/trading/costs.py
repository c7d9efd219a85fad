"""Transaction costs as pluggable one-method policies.

Commission policies answer ``calculate(quantity, price, instrument) -> fee`` (>= 0, in the
instrument's currency). Slippage policies answer ``price(side, price, quantity, bar) ->
execution price`` (never better than ``price``) and ``max_quantity(bar)`` (the volume cap;
``inf`` when none). The broker clamps a slipped price into the bar's [low, high], so
slippage can never produce a price the market did not trade.

Every parameter is checked where it is built: a NaN, infinite, negative (or non-numeric)
rate, amount or bps is a :class:`~workbench.errors.ParameterError` naming the field and the
value. :func:`commission_from` and :func:`slippage_from` read a backtest's ``commission=``
and ``slippage=`` arguments the same way.

>>> PercentOfNotional(rate=0.001, minimum=1.0).calculate(10, 50.0, None)
1.0
>>> round(FixedBps(bps=10).price(Side.BUY, 100.0, 1, None), 6)
100.1
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from workbench.errors import ParameterError
from workbench.trading.enums import Side
from workbench.trading.values import Instrument

__all__ = [
    "Bar",
    "fill_price",
    "fill_prices",
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
    "slippage_from",
]


class Bar(NamedTuple):
    """One OHLCV bar as the broker sees it."""

    ts: object
    open: float
    high: float
    low: float
    close: float
    volume: float


def _nonneg(owner: str, field: str, value: object) -> float:
    """A cost parameter as a float, or a ParameterError naming it: a NaN rate would make
    every comparison false and the fee silently zero."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
        math.isfinite(value) and value >= 0
    ):
        raise ParameterError(f"{owner}: {field} must be a finite number >= 0, got {field}={value!r}")
    return float(value)


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
    """No fee. Every zero-rate model is read as this one (:func:`commission_from`)."""

    def calculate(self, quantity: float, price: float, instrument: Instrument | None) -> float:
        return 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class PercentOfNotional:
    """``rate`` × notional (0.001 = 10 bps), at least ``minimum`` per fill."""

    rate: float
    minimum: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", _nonneg("PercentOfNotional", "rate", self.rate))
        object.__setattr__(self, "minimum", _nonneg("PercentOfNotional", "minimum", self.minimum))
        if self.rate >= 1:
            raise ParameterError(f"PercentOfNotional: rate is a fraction of notional (< 1), got rate={self.rate!r}")

    def calculate(self, quantity: float, price: float, instrument: Instrument | None) -> float:
        return max(self.rate * quantity * price * _mult(instrument), self.minimum)


@dataclass(frozen=True, kw_only=True, slots=True)
class PerShare:
    """``rate`` per unit traded, at least ``minimum`` per fill."""

    rate: float
    minimum: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", _nonneg("PerShare", "rate", self.rate))
        object.__setattr__(self, "minimum", _nonneg("PerShare", "minimum", self.minimum))

    def calculate(self, quantity: float, price: float, instrument: Instrument | None) -> float:
        return max(self.rate * quantity, self.minimum)


@dataclass(frozen=True, kw_only=True, slots=True)
class FixedPerOrder:
    """A flat ``amount`` per fill."""

    amount: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", _nonneg("FixedPerOrder", "amount", self.amount))

    def calculate(self, quantity: float, price: float, instrument: Instrument | None) -> float:
        return self.amount


@dataclass(frozen=True, kw_only=True, slots=True)
class NoSlippage:
    """Fill at the reference price, no volume cap. ``FixedBps(bps=0)`` is read as this
    (:func:`slippage_from`)."""

    def price(self, side: Side, price: float, quantity: float, bar: Bar | None) -> float:
        return price

    def max_quantity(self, bar: Bar) -> float:
        return math.inf


@dataclass(frozen=True, kw_only=True, slots=True)
class FixedBps:
    """Pay ``bps`` basis points on every fill: buys higher, sells lower."""

    bps: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "bps", _nonneg("FixedBps", "bps", self.bps))

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
        object.__setattr__(self, "spread", _nonneg("HalfSpread", "spread", self.spread))
        object.__setattr__(self, "spread_bps", _nonneg("HalfSpread", "spread_bps", self.spread_bps))
        if (self.spread > 0) == (self.spread_bps > 0):
            raise ParameterError(
                f"HalfSpread: give exactly one of spread or spread_bps (> 0), got spread={self.spread}, "
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
        limit = _nonneg("VolumeShare", "volume_limit", self.volume_limit)
        if not 0 < limit <= 1:
            raise ParameterError(f"VolumeShare: volume_limit must be in (0, 1], got volume_limit={limit!r}")
        object.__setattr__(self, "volume_limit", limit)
        object.__setattr__(self, "price_impact", _nonneg("VolumeShare", "price_impact", self.price_impact))

    def price(self, side: Side, price: float, quantity: float, bar: Bar | None) -> float:
        if bar is None or not (bar.volume > 0):
            return price
        share = min(quantity / bar.volume, self.volume_limit)
        return price * (1.0 + side.sign * self.price_impact * share * share)

    def max_quantity(self, bar: Bar) -> float:
        if math.isnan(bar.volume):
            return math.inf
        return self.volume_limit * bar.volume


#: How the error for a model class passed instead of an instance shows an instance.
_EXAMPLES = {
    "NoCommission": "NoCommission()", "PercentOfNotional": "PercentOfNotional(rate=0.001)",
    "PerShare": "PerShare(rate=0.005)", "FixedPerOrder": "FixedPerOrder(amount=1.0)",
    "NoSlippage": "NoSlippage()", "FixedBps": "FixedBps(bps=5)",
    "HalfSpread": "HalfSpread(spread_bps=2)", "VolumeShare": "VolumeShare(volume_limit=0.025)",
}  # fmt: skip


def _no_class(what: str, value: object) -> None:
    """A model class passes the protocol check (it has the method) and would fail with a
    TypeError at the first fill: refuse it where it is read, naming it."""
    if isinstance(value, type):
        name = value.__name__
        raise ParameterError(
            f"{what} must be a model instance, got the class {name}; pass an instance, "
            f"e.g. {_EXAMPLES.get(name, name + '(...)')}"
        )


def _free_commission(model: object) -> bool:
    """True for the built-in models that can never charge anything."""
    if isinstance(model, PercentOfNotional | PerShare):
        return model.rate == 0 and model.minimum == 0
    return isinstance(model, FixedPerOrder) and model.amount == 0


def commission_from(value: float | CommissionModel | None) -> CommissionModel:
    """A number is a percent-of-notional rate (``0.001`` = 10 bps); ``None`` or 0 is free.

    The one place a backtest's ``commission=`` is read: NaN, inf, a negative rate or a rate
    >= 1 is a :class:`ParameterError` naming the value (NaN used to mean "no commission").
    A zero-rate model is the no-cost model: ``PercentOfNotional(rate=0)``, ``PerShare(rate=0)``
    and ``FixedPerOrder(amount=0)`` come back as ``NoCommission()``, so specs that charge
    nothing are equal (and hash equal) however they were written.
    """
    if value is None:
        return NoCommission()
    _no_class("commission", value)
    if isinstance(value, CommissionModel):
        return NoCommission() if _free_commission(value) else value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(
            f"commission must be a fraction of notional or a commission model, got commission={value!r}"
        )
    if not (math.isfinite(value) and 0 <= value < 1):
        raise ParameterError(
            f"commission must be a fraction of notional in [0, 1) (0.001 = 10 bps), got commission={value!r}"
        )
    return PercentOfNotional(rate=float(value)) if value > 0 else NoCommission()


def slippage_from(value: SlippageModel | None) -> SlippageModel:
    """``None`` is no slippage; anything but a slippage model is a :class:`ParameterError`
    (a bare number would be ambiguous: basis points or a fraction?).

    A zero-rate model is the no-cost model: ``FixedBps(bps=0)`` comes back as
    ``NoSlippage()``. ``VolumeShare(price_impact=0)`` is kept: it still caps the volume.
    """
    if value is None:
        return NoSlippage()
    _no_class("slippage", value)
    if isinstance(value, SlippageModel):
        return NoSlippage() if isinstance(value, FixedBps) and value.bps == 0 else value
    raise ParameterError(
        f"slippage must be a slippage model, e.g. FixedBps(bps=5), got slippage={value!r}"
    )


def fill_price(
    slippage: SlippageModel, side: Side, reference: float, quantity: float, bar: Bar,
    limit: float | None = None,
) -> float:  # fmt: skip
    """The one fill-price rule every engine uses: slip, never past the limit price, then
    clamp into the bar's [low, high] (no fill prints outside the range that traded)."""
    px = slippage.price(side, reference, quantity, bar)
    if limit is not None:
        px = min(px, limit) if side is Side.BUY else max(px, limit)
    return min(max(px, bar.low), bar.high)


def fill_prices(base: np.ndarray, bps: float, buy: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """:func:`fill_price` over arrays for :class:`FixedBps` (market orders, no limit): what
    the vectorized engine hands vectorbt as the fill price, so both engines print the same."""
    slip = bps * 1e-4
    return np.where(buy, np.minimum(base * (1.0 + slip), high), np.maximum(base * (1.0 - slip), low))
