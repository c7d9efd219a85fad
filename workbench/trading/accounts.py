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
  open (:class:`workbench.engines.rebalance.MarginWatch`). With ``per_instrument`` rates
  the requirement is Σ_i rate_i × |v_i| (v_i = quantity × mark × multiplier, rate_i the
  instrument's own rate or the account's default), for initial and maintenance alike.
- :class:`BuysFromCash`: only buys are checked, each must be paid from cash. This is the
  rule for the legs of one rebalance: the exposure limit of a weights strategy is its own
  validated weights, and the order the legs execute in must not matter (a new long may
  go before the cover that frees margin).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from workbench.errors import InvalidValueError
from workbench.trading.values import Instrument

if TYPE_CHECKING:  # the portfolio imports this module for its default policy
    from workbench.trading.portfolio import Portfolio

__all__ = ["AccountPolicy", "CashAccount", "MarginAccount", "MarginRates", "BuysFromCash", "reduces_only"]


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
    #: symbol or ticker -> (initial, maintenance); None when one rate pair covers every instrument
    _rates: dict[str, tuple[float, float]] | None

    def check_fill(
        self, portfolio: Portfolio, instrument: Instrument, signed_qty: float, price: float, fee: float
    ) -> str:
        pos = portfolio.positions.get(instrument.symbol)
        q0 = 0.0 if pos is None else pos.quantity
        q1 = q0 + signed_qty
        if abs(q1) <= abs(q0) + 1e-12 and q0 * q1 >= 0:  # reduces_only, inlined: runs before every fill
            return ""  # only reduces exposure
        if self._rates is not None:  # per-instrument rates: off the single-rate path below
            return _check_rates(self, portfolio, instrument, signed_qty, price, fee, q1)  # type: ignore[arg-type]
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
    _rates: ClassVar[None] = None


def _fraction(name: str, value: object, upper: float, upper_name: str, where: str = "") -> float:
    """``value`` as a float in (0, upper], or an InvalidValueError naming the field (and,
    for a per-instrument rate, ``where``: the entry it belongs to)."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    v = float(value) if real else math.nan  # type: ignore[arg-type]
    if not (math.isfinite(v) and 0 < v <= upper):
        raise InvalidValueError(
            f"MarginAccount: {where}{name} must be in (0, {upper_name}], got {name}={value!r}"
        )
    return v


#: ``MarginAccount.per_instrument`` once validated: ``(key, initial, maintenance)`` sorted by key.
MarginRates = tuple[tuple[str, float, float], ...]


def _rate_pair(key: object, pair: object) -> tuple[str, float, float]:
    """One per-instrument entry validated like the account's own pair: a non-empty key and
    ``0 < maintenance <= initial <= 1``, messages naming the key."""
    if not isinstance(key, str) or not key.strip():
        raise InvalidValueError(f"MarginAccount: per_instrument keys must be non-empty symbols or tickers, got {key!r}")
    where = f"per_instrument[{key!r}] "
    if not isinstance(pair, tuple | list) or len(pair) != 2:
        raise InvalidValueError(f"MarginAccount: {where}must be a pair (initial_margin, maintenance_margin), got {pair!r}")
    im = _fraction("initial_margin", pair[0], 1.0, "1", where)
    return key, im, _fraction("maintenance_margin", pair[1], im, f"initial_margin={im:g}", where)


def _margin_rates(value: object) -> MarginRates:
    """``{key: (initial, maintenance)}`` or ``((key, initial, maintenance), ...)`` as the
    sorted tuple the account stores: hashable, and one order for the spec id."""
    if isinstance(value, Mapping):
        entries = [_rate_pair(k, v) for k, v in value.items()]
    elif isinstance(value, tuple | list) and all(isinstance(e, tuple | list) and len(e) == 3 for e in value):
        entries = [_rate_pair(e[0], e[1:]) for e in value]
    else:
        raise InvalidValueError(f"MarginAccount: per_instrument must be a mapping symbol -> (initial_margin, "
                                f"maintenance_margin), got per_instrument={value!r}")  # fmt: skip
    keys = [e[0] for e in entries]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise InvalidValueError(f"MarginAccount: per_instrument names each key once, got {', '.join(twice)} twice")
    return tuple(sorted(entries))


@dataclass(frozen=True, slots=True)
class MarginAccount(_InitialMarginRule):
    """Leverage: equity must cover ``initial_margin`` × gross exposure after each fill.

    ``0 < maintenance_margin <= initial_margin <= 1``; ``MarginAccount(1.0, m)`` is a cash
    account (buys paid from cash) with a maintenance level.

    ``per_instrument`` gives some instruments their own pair, e.g.
    ``per_instrument={"BTCUSD": (1.0, 0.5)}``; a key is a symbol (``TICKER.EXCHANGE``) or a
    bare ticker (every exchange), the symbol's entry winning. The requirement is then
    Σ_i rate_i × |v_i| with v_i = quantity × mark × multiplier (initial before each fill,
    maintenance at each close), and a buy of an instrument whose initial rate is 1 is paid
    from cash. Stored as a sorted tuple ``((key, initial, maintenance), ...)``, so the
    account stays hashable and the spec id changes with any rate.

    >>> acct = MarginAccount(0.5, 0.25, per_instrument={"BTCUSD": (1.0, 0.5)})
    >>> acct.per_instrument
    (('BTCUSD', 1.0, 0.5),)
    """

    initial_margin: float
    maintenance_margin: float
    per_instrument: Mapping[str, tuple[float, float]] | MarginRates = ()
    _rates: dict[str, tuple[float, float]] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        im = _fraction("initial_margin", self.initial_margin, 1.0, "1")
        mm = _fraction("maintenance_margin", self.maintenance_margin, im, f"initial_margin={im:g}")
        rates = _margin_rates(self.per_instrument)
        object.__setattr__(self, "initial_margin", im)
        object.__setattr__(self, "maintenance_margin", mm)
        object.__setattr__(self, "per_instrument", rates)
        object.__setattr__(self, "_rates", {k: (i, m) for k, i, m in rates} or None)

    def rates(self, instrument: Instrument) -> tuple[float, float]:
        """``(initial, maintenance)`` for ``instrument``: its symbol's entry, else its
        ticker's, else the account's own pair."""
        table = self._rates
        if table is not None:
            hit = table.get(instrument.symbol) or table.get(instrument.ticker)
            if hit is not None:
                return hit
        return self.initial_margin, self.maintenance_margin

    def initial_rate(self, instrument: Instrument) -> float:
        return self.rates(instrument)[0]

    def maintenance_rate(self, instrument: Instrument) -> float:
        return self.rates(instrument)[1]

    def maintenance_requirement(self, portfolio: Portfolio) -> float:
        """Σ_i maintenance_i × |v_i| at the latest marks, in the account currency."""
        if self._rates is None:
            return portfolio.gross_exposure() * self.maintenance_margin
        return portfolio.margin_requirement(self.maintenance_rate)

    def margin_call(self, portfolio: Portfolio) -> str:
        """Why the account is below maintenance margin at the latest marks, or ``""``."""
        gross = portfolio.gross_exposure()
        equity = portfolio.equity
        need = self.maintenance_requirement(portfolio)
        if need > equity * (1 + 1e-12) + 1e-9:
            cur = portfolio.currency
            if self._rates is not None:
                return (f"margin call: equity {equity:,.2f} {cur} is below the maintenance requirement "
                        f"Σ maintenance_i x |value_i| = {need:,.2f} {cur} (gross exposure {gross:,.2f} {cur})")  # fmt: skip
            return (
                f"margin call: equity {equity:,.2f} {cur} is below maintenance margin "
                f"{self.maintenance_margin:g} x gross exposure {gross:,.2f} {cur} = {need:,.2f} {cur}"
            )
        return ""


def _check_rates(
    account: MarginAccount, portfolio: Portfolio, instrument: Instrument, signed_qty: float, price: float,
    fee: float, q1: float,
) -> str:  # fmt: skip
    """The initial rule with per-instrument rates (the caller has let reductions pass):
    after the fill equity must cover Σ_i initial_i × |v_i|."""
    m = instrument.multiplier
    im = account.initial_rate(instrument)
    cash_after = portfolio.cash - signed_qty * price * m - fee
    others = portfolio.margin_requirement(account.initial_rate, excluding=instrument.symbol)
    _, other_value = portfolio.exposure_excluding(instrument.symbol)
    own = abs(q1) * price * m
    need = others + im * own
    equity_after = cash_after + other_value + q1 * price * m
    if need > equity_after * (1 + 1e-12) + 1e-9:
        cur = portfolio.currency
        return (f"insufficient buying power: after this fill the initial requirement "
                f"{instrument.symbol} {im:g} x {own:,.2f} + other positions {others:,.2f} = {need:,.2f} {cur}, "
                f"equity would be {equity_after:,.2f} {cur} (order notional {abs(signed_qty) * price * m:,.2f} "
                f"+ fee {fee:,.2f}; cash {portfolio.cash:,.2f})")  # fmt: skip
    if im >= 1.0 and signed_qty > 0 and cash_after < -1e-9:
        return _cash_message(portfolio, instrument, signed_qty, price, fee)
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
