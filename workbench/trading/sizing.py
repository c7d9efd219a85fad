"""Sizing policies: how many units an order for a target exposure asks for.

Each answers ``size(price, equity, cash, instrument, cost) -> quantity`` where ``cost(q)``
is the full cash a buy of ``q`` units would need at ``price`` including commission and
slippage. Quantities are rounded *down* to the instrument's lot size (fractional when
the lot size is < 1), so a policy never asks for more than it may spend.

A sizer that needs the price history (volatility targeting, ATR risk) also has
``bind(prices) -> Sizer``: every engine calls it once per run (:func:`bind_sizer`) with
the OHLCV frame of the instrument it trades, and sizes each order with what the bound
sizer knew at the order's *signal* bar. :class:`BarFractions` is that bound form.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.trading.values import Instrument

__all__ = ["Sizer", "BindsPrices", "FixedQuantity", "PercentOfEquity", "AllEquity", "BarFractions", "bind_sizer",
           "sizer_from"]

CostFn = Callable[[float], float]


@runtime_checkable
class Sizer(Protocol):
    def size(
        self, price: float, equity: float, cash: float, instrument: Instrument, cost: CostFn
    ) -> float: ...


class BindsPrices(Protocol):
    """A sizer that sizes from the price history: bound once per run to its bars."""

    def bind(self, prices: pd.DataFrame) -> Sizer: ...


def bind_sizer(sizer: Sizer, prices: pd.DataFrame) -> Sizer:
    """``sizer.bind(prices)`` for a sizer that needs the run's bars, else ``sizer`` itself.

    Engines call it once before their loop, so a sizer without ``bind`` costs nothing per bar.
    """
    bind = getattr(sizer, "bind", None)
    return sizer if bind is None else bind(prices)


def _affordable(budget: float, price: float, instrument: Instrument, cost: CostFn) -> float:
    """Largest lot multiple whose full cost (with fees and slippage) fits in ``budget``.

    The first guess uses ``price``; the fill price after slippage may be higher (buys) or
    lower (sells), so the guess is rescaled once by the real cost per unit, then stepped
    down while too dear and up while one more lot still fits.
    """
    if budget <= 0 or price <= 0:
        return 0.0
    lot = instrument.lot_size
    q = instrument.round_lots(budget / (price * instrument.multiplier))
    if q > 0:
        c = cost(q)
        if c > 0:
            q = instrument.round_lots(q * budget / c)  # cost is ~linear in q: one rescale
    for _ in range(3):
        if q <= 0 or cost(q) <= budget:
            break
        q = instrument.round_lots(q * budget / cost(q))
    while q > 0 and cost(q) > budget:
        q = instrument.round_lots(q - lot)
    for _ in range(3):  # fixed fees make the rescale slightly pessimistic
        nxt = instrument.round_lots(q + lot)
        if cost(nxt) > budget:
            break
        q = nxt
    return max(q, 0.0)


def _number(value: object) -> float:
    """``value`` as a float, NaN for anything that is not a real number (then rejected)."""
    return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan


@dataclass(frozen=True, kw_only=True, slots=True)
class FixedQuantity:
    """Always ``quantity`` units (must be a lot multiple)."""

    quantity: float

    def __post_init__(self) -> None:
        q = _number(self.quantity)
        if not (math.isfinite(q) and q > 0):
            raise ParameterError(f"FixedQuantity: quantity must be a finite number > 0, got quantity={self.quantity!r}")
        object.__setattr__(self, "quantity", q)  # 1 and 1.0 are one spec: store the float

    def size(self, price, equity, cash, instrument, cost) -> float:  # type: ignore[no-untyped-def]
        return self.quantity


@dataclass(frozen=True, kw_only=True, slots=True)
class PercentOfEquity:
    """Spend ``fraction`` of current equity (0.5 = half), in whole lots."""

    fraction: float

    def __post_init__(self) -> None:
        f = _number(self.fraction)
        if not (math.isfinite(f) and 0 < f <= 1):
            raise ParameterError(f"PercentOfEquity: fraction must be in (0, 1], got fraction={self.fraction!r}")
        object.__setattr__(self, "fraction", f)

    def size(self, price, equity, cash, instrument, cost) -> float:  # type: ignore[no-untyped-def]
        return _affordable(min(self.fraction * equity, max(equity, 0.0)), price, instrument, cost)


@dataclass(frozen=True, kw_only=True, slots=True)
class AllEquity:
    """All available equity in whole lots (fees and slippage included)."""

    def size(self, price, equity, cash, instrument, cost) -> float:  # type: ignore[no-untyped-def]
        return _affordable(max(equity, 0.0), price, instrument, cost)


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class BarFractions:
    """A sizer bound to one run's bars: the order decided at signal bar ``s`` spends the
    fraction f_s of equity that :class:`PercentOfEquity` would (fees and slippage inside
    the budget, whole lots), with

        f_s = min(cap, scale[s])          (``per_price=False``: a fraction of equity)
        f_s = min(cap, scale[s] × P)      (``per_price=True``: a risk per unit of price)

    where P is the order's reference price (the fill bar's open, or the signal close). A
    NaN ``scale[s]`` (a bar inside the warm-up) is f_s = 0: no position; +inf is ``cap``.
    ``scale`` holds only what was known at each bar's close, so sizing from row ``s`` never
    looks ahead. ``source`` names the sizer it was bound from (for messages).
    """

    scale: np.ndarray
    cap: float
    per_price: bool = False
    source: str = ""

    def fraction(self, s: int, price: float) -> float:
        """f_s at reference price ``price`` (see the class notes)."""
        x = float(self.scale[s]) * (price if self.per_price else 1.0)
        return min(self.cap, x) if x > 0 else 0.0  # NaN > 0 is False: no position

    def fractions(self, price: np.ndarray | float = 1.0) -> np.ndarray:
        """f_s for every signal bar ``s``, ``price[s]`` the reference price of its order."""
        x = self.scale * price if self.per_price else self.scale
        return np.where(x > 0, np.minimum(self.cap, x), 0.0)

    def size_at(self, s: int, price: float, equity: float, cash: float, instrument: Instrument, cost: CostFn) -> float:
        """The quantity for an order decided at bar ``s`` (what the engines call)."""
        f = self.fraction(s, price)
        if f <= 0:
            return 0.0
        return _affordable(min(f * equity, max(equity, 0.0)), price, instrument, cost)

    def size(self, price: float, equity: float, cash: float, instrument: Instrument, cost: CostFn) -> float:
        """Sized from the last bound bar: what a live loop bound on the history so far wants."""
        return self.size_at(len(self.scale) - 1, price, equity, cash, instrument, cost)


#: How the error for a sizer class passed instead of an instance shows an instance.
_EXAMPLES = {"FixedQuantity": "FixedQuantity(quantity=10)", "PercentOfEquity": "PercentOfEquity(fraction=0.5)",
             "AllEquity": "AllEquity()"}  # fmt: skip


def sizer_from(value: object) -> Sizer:
    """``"all"`` → AllEquity, a float in (0, 1] → PercentOfEquity, an int >= 1 → FixedQuantity.

    The one place a backtest's ``size=`` is read; anything else (NaN, 0, True, 1.5...) is a
    :class:`ParameterError` naming the value.
    """
    if isinstance(value, type):  # a class has .size too, and would fail at the first order
        name = value.__name__
        raise ParameterError(
            f"size must be a sizer instance, got the class {name}; pass an instance, "
            f"e.g. {_EXAMPLES.get(name, name + '(...)')}"
        )
    if isinstance(value, Sizer) and not isinstance(value, numbers.Number):  # numpy scalars have .size
        return value
    if isinstance(value, str) and value.strip().lower() in ("all", "all_equity", "all-in"):
        return AllEquity()
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:
        return FixedQuantity(quantity=float(value))
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) and 0 < value <= 1:
        return PercentOfEquity(fraction=float(value))
    raise ParameterError(
        f"size must be 'all', a fraction of equity in (0, 1], an int quantity >= 1 or a "
        f"Sizer; got size={value!r}"
    )
