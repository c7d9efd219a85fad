"""Account policies: the buying-power rule a :class:`~workbench.trading.portfolio.Portfolio`
applies before a fill, as a swappable object instead of a flag inside the portfolio.

Each policy answers ``check_fill(portfolio, instrument, signed_qty, price, fee) -> reason``
(``""`` when the fill is allowed). A fill that only reduces exposure (same sign, smaller
size) is always allowed, whatever the policy: closing must never be refused.

- :class:`CashAccount` (the default): after the fill, gross exposure must not exceed
  equity, and a buy must be paid from cash.
- :class:`MarginAccount`: gross exposure × ``initial_margin`` must not exceed equity;
  :meth:`MarginAccount.margin_call` reports when equity falls below ``maintenance_margin``
  × gross exposure; the event engine checks it at every close and liquidates at the next
  open (:class:`workbench.engines.rebalance.MarginWatch`).
- :class:`BuysFromCash`: only buys are checked, each must be paid from cash. This is the
  rule for the legs of one rebalance: the exposure limit of a weights strategy is its own
  validated weights, and the order the legs execute in must not matter (a new long may
  go before the cover that frees margin).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from workbench.errors import InvalidValueError
from workbench.trading.values import Instrument

if TYPE_CHECKING:  # the portfolio imports this module for its default policy
    from workbench.trading.portfolio import Portfolio

__all__ = ["AccountPolicy", "CashAccount", "MarginAccount", "BuysFromCash", "reduces_only"]


@runtime_checkable
class AccountPolicy(Protocol):
    def check_fill(
        self, portfolio: Portfolio, instrument: Instrument, signed_qty: float, price: float, fee: float
    ) -> str:
        """Why the fill would break this account's rule, or ``""`` when it is allowed."""
        ...


def reduces_only(q0: float, q1: float) -> bool:
    """True when a position going from ``q0`` to ``q1`` shrinks without crossing zero."""
    return abs(q1) <= abs(q0) + 1e-12 and q0 * q1 >= 0


def _cash_message(
    portfolio: Portfolio, instrument: Instrument, signed_qty: float, price: float, fee: float
) -> str:
    m, cur = instrument.multiplier, portfolio.currency
    return (
        f"insufficient cash: buying {signed_qty:g} {instrument.symbol} at {price:g} "
        f"needs {signed_qty * price * m + fee:,.2f} {cur} including fee "
        f"{fee:,.2f}, cash is {portfolio.cash:,.2f} {cur}"
    )


def _margin_message(
    portfolio: Portfolio, signed_qty: float, price: float, m: float, fee: float,
    gross_after: float, equity_after: float, initial_margin: float,
) -> str:  # fmt: skip
    cur = portfolio.currency
    return (
        f"insufficient buying power: after this fill gross exposure "
        f"{gross_after:,.2f} {cur} x initial margin {initial_margin:g} "
        f"needs equity {gross_after * initial_margin:,.2f} {cur}, equity would be "
        f"{equity_after:,.2f} {cur} (order notional "
        f"{abs(signed_qty) * price * m:,.2f} + fee {fee:,.2f}; cash {portfolio.cash:,.2f})"
    )


class _InitialMarginRule:
    """The rule Cash and Margin accounts share: after the fill, equity must cover
    ``initial_margin`` × gross exposure; without leverage (margin 1) a buy must also be
    paid from cash. One method, no helpers: the broker runs it before every fill."""

    __slots__ = ()
    initial_margin: float

    def check_fill(
        self, portfolio: Portfolio, instrument: Instrument, signed_qty: float, price: float, fee: float
    ) -> str:
        pos = portfolio.positions.get(instrument.symbol)
        q0 = 0.0 if pos is None else pos.quantity
        q1 = q0 + signed_qty
        if abs(q1) <= abs(q0) + 1e-12 and q0 * q1 >= 0:  # reduces_only, inlined: runs before every fill
            return ""  # only reduces exposure
        m, im = instrument.multiplier, self.initial_margin  # terms as before: identical floats
        cash_after = portfolio.cash - signed_qty * price * m - fee
        other_gross, other_value = portfolio.exposure_excluding(instrument.symbol)
        gross_after = other_gross + abs(q1) * price * m
        equity_after = cash_after + other_value + q1 * price * m
        if gross_after * im > equity_after * (1 + 1e-12) + 1e-9:
            return _margin_message(portfolio, signed_qty, price, m, fee, gross_after, equity_after, im)
        if im >= 1.0 and signed_qty > 0 and cash_after < -1e-9:
            return _cash_message(portfolio, instrument, signed_qty, price, fee)
        return ""


@dataclass(frozen=True, slots=True)
class CashAccount(_InitialMarginRule):
    """No leverage: gross exposure ≤ equity and buys are paid from cash."""

    initial_margin: ClassVar[float] = 1.0


def _fraction(field: str, value: object, upper: float, upper_name: str) -> float:
    """``value`` as a float in (0, upper], or an InvalidValueError naming the field."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    v = float(value) if real else math.nan  # type: ignore[arg-type]
    if not (math.isfinite(v) and 0 < v <= upper):
        raise InvalidValueError(
            f"MarginAccount: {field} must be in (0, {upper_name}], got {field}={value!r}"
        )
    return v


@dataclass(frozen=True, slots=True)
class MarginAccount(_InitialMarginRule):
    """Leverage: equity must cover ``initial_margin`` × gross exposure after each fill.

    ``0 < maintenance_margin <= initial_margin <= 1``; ``MarginAccount(1.0, m)`` is a cash
    account (buys paid from cash) with a maintenance level.
    """

    initial_margin: float
    maintenance_margin: float

    def __post_init__(self) -> None:
        im = _fraction("initial_margin", self.initial_margin, 1.0, "1")
        mm = _fraction("maintenance_margin", self.maintenance_margin, im, f"initial_margin={im:g}")
        object.__setattr__(self, "initial_margin", im)
        object.__setattr__(self, "maintenance_margin", mm)

    def margin_call(self, portfolio: Portfolio) -> str:
        """Why the account is below maintenance margin at the latest marks, or ``""``."""
        gross = portfolio.gross_exposure()
        equity = portfolio.equity
        need = gross * self.maintenance_margin
        if need > equity * (1 + 1e-12) + 1e-9:
            cur = portfolio.currency
            return (
                f"margin call: equity {equity:,.2f} {cur} is below maintenance margin "
                f"{self.maintenance_margin:g} x gross exposure {gross:,.2f} {cur} = {need:,.2f} {cur}"
            )
        return ""


@dataclass(frozen=True, slots=True)
class BuysFromCash:
    """Only buys are checked, and each must be paid from cash; sales and shorts pass (the
    exposure limit of a weights strategy is its own validated weights)."""

    def check_fill(
        self, portfolio: Portfolio, instrument: Instrument, signed_qty: float, price: float, fee: float
    ) -> str:
        q0 = portfolio.quantity(instrument)
        if signed_qty <= 0 or reduces_only(q0, q0 + signed_qty):
            return ""
        if portfolio.cash - signed_qty * price * instrument.multiplier - fee < -1e-9:
            return _cash_message(portfolio, instrument, signed_qty, price, fee)
        return ""
