import pytest

from tests.conftest import ts
from workbench.errors import CurrencyMismatchError, InvalidValueError
from workbench.trading import Fill, Instrument, MarginAccount, Portfolio, Side


def f(inst, side, qty, price, fee=0.0, day=1):
    return Fill(fill_id=f"F{day}{side}", order_id="O", instrument=inst, side=Side.parse(side),
                quantity=qty, price=price, fee=fee, ts=ts(day))


def test_round_trip_books_cash_trades_and_equity(inst):
    p = Portfolio(10_000.0)
    p.apply(f(inst, "BUY", 10, 100.0, fee=1.0, day=1))
    assert p.cash == pytest.approx(10_000 - 1_001)
    p.mark(inst.symbol, 105.0)
    assert p.equity == pytest.approx(10_000 - 1 + 50)
    p.apply(f(inst, "SELL", 10, 110.0, fee=1.1, day=5))
    t = p.trades_frame().iloc[0]
    assert (t["entry_price"], t["exit_price"], t["quantity"]) == (100.0, 110.0, 10.0)
    assert t["gross_pnl"] == pytest.approx(100.0) and t["fees"] == pytest.approx(2.1) and t["pnl"] == pytest.approx(97.9)
    assert t["return"] == pytest.approx(97.9 / 1000.0) and t["duration"].days == 4
    assert p.equity == pytest.approx(10_097.9) and len(p.transactions) == 2


def test_short_sale_credits_cash_and_keeps_equity(inst):
    p = Portfolio(1_000.0)
    p.apply(f(inst, "SELL", 5, 100.0))
    assert p.cash == pytest.approx(1_500.0) and p.equity == pytest.approx(1_000.0)
    p.mark(inst.symbol, 90.0)
    assert p.equity == pytest.approx(1_050.0)


def test_check_fill_rejects_unaffordable_buy_with_reason(inst):
    p = Portfolio(1_000.0)
    why = p.check_fill(inst, 10, 100.0, 1.0)
    assert "insufficient" in why and "notional 1,000.00 + fee 1.00" in why
    assert p.check_fill(inst, 9, 100.0, 1.0) == ""


def test_check_fill_allows_reducing_exposure_always(inst):
    p = Portfolio(1_000.0)
    p.apply(f(inst, "BUY", 10, 100.0))
    p.mark(inst.symbol, 1.0)  # position collapsed; selling must still be allowed
    assert p.check_fill(inst, -10, 1.0, 5.0) == ""


def test_check_fill_short_needs_margin(inst):
    p = Portfolio(1_000.0)
    assert p.check_fill(inst, -10, 100.0, 0.0) == ""
    assert "insufficient buying power" in p.check_fill(inst, -11, 100.0, 0.0)
    levered = Portfolio(1_000.0, account=MarginAccount(initial_margin=0.5, maintenance_margin=0.25))
    assert levered.check_fill(inst, -20, 100.0, 0.0) == ""


def test_other_currency_fill_is_refused(inst):
    eur = Instrument(ticker="E", exchange="X", currency="EUR")
    with pytest.raises(CurrencyMismatchError, match="books only USD"):
        Portfolio(100.0).apply(f(eur, "BUY", 1, 1.0))


def test_starting_cash_must_be_positive():
    with pytest.raises(InvalidValueError, match="starting cash must be > 0"):
        Portfolio(0)
