"""Value objects of the trading context: frozen, keyword-only, validated on construction.

Amounts are Python floats (binary64). The domain's accounting identities hold to float
round-off (relative 1e-9), which the property tests check; reports round for display only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pandas as pd

from workbench.errors import CurrencyMismatchError, InvalidValueError
from workbench.trading.enums import AssetClass

__all__ = ["Instrument", "Money", "Quantity", "Percentage", "TimePeriod", "utc_timestamp"]

_EPS = 1e-9


def _finite(name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InvalidValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise InvalidValueError(f"{name} must be finite, got {value!r}")
    return value


def _decimals(value: float) -> int:
    """Decimal places of ``value`` as written (its shortest repr): 0.01 -> 2, 2.5e-13 -> 14."""
    exponent = Decimal(repr(value)).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _currency(value: str) -> str:
    """An ISO 4217 code (``USD``) or a crypto asset's ticker (``USDT``, ``USDC``, ``BTC``):
    3 to 5 letters or digits, starting with a letter, upper-cased."""
    ok = isinstance(value, str) and 3 <= len(value) <= 5 and value.isalnum() and value[:1].isalpha() and value.isascii()
    if not ok:
        raise InvalidValueError(f"currency must be a 3-letter ISO code or a 3-5 character asset ticker, got {value!r}")
    return value.upper()


@dataclass(frozen=True, kw_only=True, slots=True)
class Instrument:
    """A tradable instrument.

    Parameters
    ----------
    ticker : str
        Symbol as the venue spells it (``"GOOG"``, ``"SPX"``, ``"BTC/USD"``).
    exchange : str
        Venue or data source (``"NASDAQ"``, ``"SAMPLE"``).
    asset_class : AssetClass
    tick_size : float
        Minimum price increment (> 0).
    lot_size : float
        Minimum quantity increment (> 0). ``1`` means whole units; ``1e-8`` lets BTC trade
        in satoshis. Quantities are always multiples of it.
    currency : str
        ISO code of the quote currency.
    multiplier : float
        Contract multiplier (1 for cash instruments).

    >>> Instrument(ticker="GOOG", exchange="NASDAQ", asset_class=AssetClass.EQUITY).symbol
    'GOOG.NASDAQ'
    """

    ticker: str
    exchange: str
    asset_class: AssetClass = AssetClass.EQUITY
    tick_size: float = 0.01
    lot_size: float = 1.0
    currency: str = "USD"
    multiplier: float = 1.0
    #: ``TICKER.EXCHANGE``, the instrument's unique key (derived, stored for speed).
    symbol: str = field(init=False, repr=False, compare=False)
    #: Decimals :meth:`round_price` keeps: at least 12, more when the tick has more.
    _price_digits: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.ticker, str) or not self.ticker.strip():
            raise InvalidValueError(f"ticker must be a non-empty string, got {self.ticker!r}")
        if not isinstance(self.exchange, str) or not self.exchange.strip():
            raise InvalidValueError(f"exchange must be a non-empty string, got {self.exchange!r}")
        object.__setattr__(self, "asset_class", AssetClass.parse(self.asset_class))
        for name in ("tick_size", "lot_size", "multiplier"):
            value = _finite(name, getattr(self, name))
            if value <= 0:
                raise InvalidValueError(f"{name} must be > 0, got {value!r}")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "currency", _currency(self.currency))
        object.__setattr__(self, "symbol", f"{self.ticker}.{self.exchange}")
        object.__setattr__(self, "_price_digits", max(12, _decimals(self.tick_size)))

    @property
    def fractional(self) -> bool:
        """True when quantities below one unit are allowed (lot size < 1)."""
        return self.lot_size < 1.0

    def round_lots(self, quantity: float) -> float:
        """Round a non-negative quantity *down* to a whole number of lots."""
        lots = math.floor(quantity / self.lot_size + _EPS)
        return max(lots, 0) * self.lot_size if self.lot_size != 1.0 else float(max(lots, 0))

    def is_lot_multiple(self, quantity: float) -> bool:
        lots = quantity / self.lot_size
        # float sums of lot multiples drift by ~1e-16 relative: tolerate that, not more
        return abs(lots - round(lots)) <= max(1e-6, abs(lots) * 1e-12)

    def is_tick_multiple(self, price: float) -> bool:
        """True when ``price`` is a whole number of ticks, to float round-off (101.23 with
        tick 0.01 is 10122.999... ticks in binary floating point).

        Measured in ticks, like :meth:`is_lot_multiple`: within 1e-6 tick, or 1e-12 of the
        tick count (what float sums of tick multiples drift by), but never more than a
        quarter tick plus 8 ulps, so a half-tick offset is caught at any price until the
        float itself cannot tell ticks apart (a tolerance in price units let every price
        pass from 5e8 ticks on: 12345678.005 with tick 0.01).
        """
        ticks = price / self.tick_size
        off = abs(ticks - round(ticks))
        return off <= 1e-6 or off <= min(abs(ticks) * 1e-12, 0.25 + 8 * math.ulp(ticks))

    def round_price(self, price: float) -> float:
        """Nearest multiple of the tick size, snapped to the tick's decimals (at least 12)
        so ``round_price(101.234)`` is ``101.23``, not ``101.23000000000002``, and a tick
        finer than 1e-12 is not rounded away."""
        return round(round(price / self.tick_size) * self.tick_size, self._price_digits)


@dataclass(frozen=True, kw_only=True, slots=True)
class Money:
    """An amount in one currency. Arithmetic across currencies raises.

    >>> Money(amount=10, currency="USD") + Money(amount=5, currency="USD")
    Money(amount=15.0, currency='USD')
    """

    amount: float
    currency: str = "USD"

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", _finite("amount", self.amount))
        object.__setattr__(self, "currency", _currency(self.currency))

    def _check(self, other: object, op: str) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot {op} Money and {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatchError(
                f"cannot {op} {self.currency} and {other.currency} without an explicit "
                f"conversion ({self} {op} {other})"
            )
        return other

    def __add__(self, other: Money) -> Money:
        return Money(amount=self.amount + self._check(other, "add").amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(
            amount=self.amount - self._check(other, "subtract").amount, currency=self.currency
        )

    def __mul__(self, factor: float) -> Money:
        if isinstance(factor, Money):
            raise TypeError("cannot multiply Money by Money")
        return Money(amount=self.amount * _finite("factor", factor), currency=self.currency)

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        return Money(amount=-self.amount, currency=self.currency)

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._check(other, "compare").amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._check(other, "compare").amount

    def __str__(self) -> str:
        return f"{self.amount:,.2f} {self.currency}"

    def converted(self, rate: float, currency: str) -> Money:
        """Explicit conversion: ``rate`` units of ``currency`` per unit of this currency."""
        rate = _finite("rate", rate)
        if rate <= 0:
            raise InvalidValueError(f"rate must be > 0, got {rate!r}")
        return Money(amount=self.amount * rate, currency=currency)


@dataclass(frozen=True, kw_only=True, slots=True)
class Quantity:
    """A non-negative amount of an instrument, a whole number of its lots."""

    value: float
    instrument: Instrument | None = None

    def __post_init__(self) -> None:
        value = _finite("quantity", self.value)
        if value < 0:
            raise InvalidValueError(f"quantity must be >= 0, got {value!r}")
        if self.instrument is not None and not self.instrument.is_lot_multiple(value):
            raise InvalidValueError(
                f"quantity must be a multiple of lot size {self.instrument.lot_size} for "
                f"{self.instrument.symbol}, got {value!r}"
            )
        object.__setattr__(self, "value", value)

    def __float__(self) -> float:
        return self.value


@dataclass(frozen=True, kw_only=True, slots=True)
class Percentage:
    """A fraction stored as a decimal (0.05 is 5 %). ``Percentage.of(5)`` builds from percent."""

    value: float
    min_value: float = field(default=-math.inf, repr=False)
    max_value: float = field(default=math.inf, repr=False)

    def __post_init__(self) -> None:
        value = _finite("percentage", self.value)
        if not (self.min_value <= value <= self.max_value):
            raise InvalidValueError(
                f"percentage must be in [{self.min_value}, {self.max_value}], got {value!r}"
            )
        object.__setattr__(self, "value", value)

    @classmethod
    def of(cls, percent: float) -> Percentage:
        return cls(value=_finite("percent", percent) / 100.0)

    @property
    def percent(self) -> float:
        return self.value * 100.0

    def __float__(self) -> float:
        return self.value

    def __str__(self) -> str:
        return f"{self.percent:.4g}%"


@dataclass(frozen=True, kw_only=True, slots=True)
class TimePeriod:
    """A half-open UTC interval ``[start, end)``.

    >>> TimePeriod(start="2020-01-01", end="2020-02-01").duration.days
    31
    """

    start: pd.Timestamp
    end: pd.Timestamp

    def __post_init__(self) -> None:
        start, end = _utc(self.start, "start"), _utc(self.end, "end")
        if not start < end:
            raise InvalidValueError(f"start must be before end, got start={start}, end={end}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def duration(self) -> timedelta:
        return (self.end - self.start).to_pytimedelta()

    def __contains__(self, ts: object) -> bool:
        t = _utc(ts, "timestamp")
        return self.start <= t < self.end


def utc_timestamp(
    value: object, name: str, error: type[Exception] = InvalidValueError
) -> pd.Timestamp:
    """Parse a date-like value as a UTC timestamp (naive values are read as UTC).

    Raises ``error`` naming the parameter and value when it is not a timestamp.
    """
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise error(f"{name} must be a date or timestamp, got {value!r}") from None
    if ts is pd.NaT:
        raise error(f"{name} must be a date or timestamp, got {value!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


_utc = utc_timestamp
