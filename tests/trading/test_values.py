import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.errors import CurrencyMismatchError, InvalidValueError
from workbench.trading import Instrument, Money, Percentage, Quantity, TimePeriod


def test_instrument_with_zero_tick_size_is_rejected_naming_the_value():
    with pytest.raises(InvalidValueError, match="tick_size must be > 0, got 0.0"):
        Instrument(ticker="X", exchange="Y", tick_size=0)


def test_instrument_bad_currency_and_asset_class_are_rejected():
    with pytest.raises(InvalidValueError, match="3-letter ISO code or a 3-5 character asset ticker, got 'dollars'"):
        Instrument(ticker="X", exchange="Y", currency="dollars")
    for bad in ("US", "1USD", "U$D", "ÜSD"):
        with pytest.raises(InvalidValueError, match="currency must be"):
            Instrument(ticker="X", exchange="Y", currency=bad)
    assert Instrument(ticker="BTC", exchange="Y", currency="usdt").currency == "USDT"
    with pytest.raises(InvalidValueError, match="AssetClass must be one of"):
        Instrument(ticker="X", exchange="Y", asset_class="stonks")


def test_instrument_rounds_quantities_down_to_lots():
    btc = Instrument(ticker="BTC", exchange="X", lot_size=0.001)
    assert btc.fractional
    assert btc.round_lots(1.23456) == pytest.approx(1.234)
    assert Instrument(ticker="A", exchange="X").round_lots(9.9999) == 9.0


def test_instrument_is_frozen():
    inst = Instrument(ticker="A", exchange="X")
    with pytest.raises(AttributeError):
        inst.ticker = "B"  # type: ignore[misc]


def test_money_adds_in_one_currency():
    assert Money(amount=1.5, currency="usd") + Money(amount=2, currency="USD") == Money(amount=3.5, currency="USD")


def test_money_across_currencies_raises_instead_of_silently_adding():
    with pytest.raises(CurrencyMismatchError, match="USD and EUR"):
        Money(amount=1, currency="USD") + Money(amount=1, currency="EUR")
    with pytest.raises(CurrencyMismatchError):
        _ = Money(amount=1, currency="USD") < Money(amount=1, currency="EUR")


def test_money_explicit_conversion_is_allowed():
    assert Money(amount=10, currency="EUR").converted(1.1, "USD").amount == pytest.approx(11.0)


def test_money_rejects_nan():
    with pytest.raises(InvalidValueError, match="finite"):
        Money(amount=float("nan"))


def test_quantity_must_be_non_negative_and_lot_multiple():
    inst = Instrument(ticker="A", exchange="X")
    with pytest.raises(InvalidValueError, match=">= 0"):
        Quantity(value=-1)
    with pytest.raises(InvalidValueError, match="multiple of lot size"):
        Quantity(value=1.5, instrument=inst)
    assert float(Quantity(value=3, instrument=inst)) == 3.0


def test_percentage_from_percent_and_bounds():
    assert Percentage.of(5).value == pytest.approx(0.05)
    assert str(Percentage(value=0.125)) == "12.5%"
    with pytest.raises(InvalidValueError, match=r"in \[0, 1\]"):
        Percentage(value=1.5, min_value=0, max_value=1)


def test_time_period_is_half_open_and_ordered():
    p = TimePeriod(start="2020-01-01", end="2020-02-01")
    assert pd.Timestamp("2020-01-31 23:59", tz="UTC") in p
    assert pd.Timestamp("2020-02-01", tz="UTC") not in p
    with pytest.raises(InvalidValueError, match="start must be before end"):
        TimePeriod(start="2020-02-01", end="2020-01-01")


@pytest.mark.parametrize(
    ("tick", "price", "ok"),
    [
        (0.01, 101.23, True),  # 10122.999... ticks in binary floating point
        (0.01, 0.07, True),
        (0.01, 101.235, False),
        (0.25, 100.75, True),
        (0.25, 100.3, False),
        (1e-5, 1.23456, True),
        (1e-5, 1.234565, False),
        (5.0, 4_995.0, True),
    ],
)
def test_instrument_knows_whether_a_price_is_on_the_tick(tick, price, ok):
    assert Instrument(ticker="A", exchange="X", tick_size=tick).is_tick_multiple(price) is ok


@pytest.mark.parametrize(
    ("tick", "price"),
    [
        (0.01, 12_345_678.005),  # 1.2e9 ticks: the old 1e-9 x price tolerance let any price pass
        (0.01, 1e10 + 0.005),  # 1e12 ticks
        (1e-8, 5.000000005),  # half a tick above 5
        (1e-8, 12_345.123456785),
        (1e-8, 50_000.000000004),  # 5e12 ticks, 0.4 tick off
        (1e-5, 1.234565),
    ],
)
def test_off_tick_prices_are_refused_however_many_ticks_they_are(tick, price):
    assert Instrument(ticker="A", exchange="X", tick_size=tick).is_tick_multiple(price) is False


def _decimal_ticks():
    """Ticks as venues quote them: 1, 2, 5 or 25 times a power of ten, 1e-12 .. 25."""
    return st.builds(lambda m, e: float(f"{m}e{e}"), st.sampled_from([1, 2, 5, 25]), st.integers(-12, 0))


@settings(max_examples=400, deadline=None)
@given(tick=st.one_of(_decimal_ticks(), st.floats(1e-12, 25)), price=st.floats(1e-6, 1e10))
def test_every_rounded_price_is_on_the_tick(tick, price):
    inst = Instrument(ticker="A", exchange="X", tick_size=tick)
    rounded = inst.round_price(price)
    if rounded > 0:
        assert inst.is_tick_multiple(rounded), (tick, price, rounded, rounded / tick)
        assert math.isclose(rounded, price, rel_tol=0, abs_tol=tick * 0.5000001 + 1e-9 * price)


@settings(max_examples=200, deadline=None)
@given(tick=_decimal_ticks(), ticks=st.integers(1, 10**9), frac=st.floats(0.3, 0.7))
def test_a_price_between_two_ticks_is_refused(tick, ticks, frac):
    price = (ticks + frac) * tick
    assert not Instrument(ticker="A", exchange="X", tick_size=tick).is_tick_multiple(price)
