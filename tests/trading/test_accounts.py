"""Account policies: the buying-power rules moved out of Portfolio, messages unchanged.

The expected messages below are the exact strings the rules produced when they were
flags inside Portfolio (``initial_margin`` and ``rebalancing()``); reports match them.
"""

import math
import re

import pytest

from tests.conftest import ts
from workbench.errors import InvalidValueError
from workbench.trading import (
    AccountPolicy,
    BuysFromCash,
    CashAccount,
    Fill,
    MarginAccount,
    Portfolio,
    Side,
)


def _buy(p, inst, qty, price, side="BUY", fid="F1"):
    p.apply(Fill(fill_id=fid, order_id="O", instrument=inst, side=Side.parse(side), quantity=qty,
                 price=price, fee=0.0, ts=ts(1)))  # fmt: skip


def test_cash_account_is_the_default_and_every_policy_is_an_account_policy():
    assert Portfolio(1_000.0).account == CashAccount()
    for policy in (CashAccount(), MarginAccount(0.5, 0.25), BuysFromCash()):
        assert isinstance(policy, AccountPolicy)
        assert isinstance(Portfolio(1_000.0, account=policy).account, type(policy))


def test_portfolio_has_no_margin_flag_left():
    p = Portfolio(1_000.0)
    assert not hasattr(p, "initial_margin") and not hasattr(p, "rebalancing") and not hasattr(p, "_cash_only")


def test_anything_else_as_account_is_refused_naming_it():
    with pytest.raises(InvalidValueError, match="account must be an account policy.*got account=0.5"):
        Portfolio(1_000.0, "USD", "FIFO", 0.5)  # the old positional initial_margin


@pytest.mark.parametrize(
    ("cls", "example"),
    [
        (MarginAccount, "MarginAccount(initial_margin=0.5, maintenance_margin=0.25)"),
        (CashAccount, "CashAccount()"),
        (BuysFromCash, "BuysFromCash()"),
    ],
)
def test_an_account_class_instead_of_an_instance_is_refused_naming_it(cls, example):
    with pytest.raises(InvalidValueError, match=rf"account must be an instance, got the class {cls.__name__}; "
                                                rf"pass an instance, e.g. {re.escape(example)}"):  # fmt: skip
        Portfolio(1_000.0, account=cls)


def test_cash_account_messages_are_unchanged(inst):
    p = Portfolio(1_000.0)
    assert p.check_fill(inst, 10, 100.0, 1.0) == (
        "insufficient buying power: after this fill gross exposure 1,000.00 USD x initial margin 1 "
        "needs equity 1,000.00 USD, equity would be 999.00 USD (order notional 1,000.00 + fee 1.00; "
        "cash 1,000.00)"
    )
    assert p.check_fill(inst, -11, 100.0, 0.0) == (
        "insufficient buying power: after this fill gross exposure 1,100.00 USD x initial margin 1 "
        "needs equity 1,100.00 USD, equity would be 1,000.00 USD (order notional 1,100.00 + fee 0.00; "
        "cash 1,000.00)"
    )
    _buy(p, inst, 5, 100.0)
    p.mark(inst.symbol, 120.0)
    assert p.check_fill(inst, 5, 110.0, 2.5) == (
        "insufficient buying power: after this fill gross exposure 1,100.00 USD x initial margin 1 "
        "needs equity 1,100.00 USD, equity would be 1,047.50 USD (order notional 550.00 + fee 2.50; "
        "cash 500.00)"
    )
    assert p.check_fill(inst, -5, 1.0, 50.0) == ""  # reducing exposure is always allowed


def test_portfolio_check_fill_delegates_to_its_account(inst):
    p = Portfolio(1_000.0, account=MarginAccount(0.5, 0.25))
    assert p.check_fill(inst, -21, 100.0, 0.0) == p.account.check_fill(p, inst, -21, 100.0, 0.0) != ""


def test_margin_account_messages_are_unchanged(inst):
    p = Portfolio(1_000.0, account=MarginAccount(initial_margin=0.5, maintenance_margin=0.25))
    assert p.check_fill(inst, -20, 100.0, 0.0) == ""
    assert p.check_fill(inst, 15, 100.0, 1.0) == ""  # leverage: a buy may exceed cash
    assert p.check_fill(inst, -21, 100.0, 0.0) == (
        "insufficient buying power: after this fill gross exposure 2,100.00 USD x initial margin 0.5 "
        "needs equity 1,050.00 USD, equity would be 1,000.00 USD (order notional 2,100.00 + fee 0.00; "
        "cash 1,000.00)"
    )
    assert p.check_fill(inst, 21, 100.0, 1.0) == (
        "insufficient buying power: after this fill gross exposure 2,100.00 USD x initial margin 0.5 "
        "needs equity 1,050.00 USD, equity would be 999.00 USD (order notional 2,100.00 + fee 1.00; "
        "cash 1,000.00)"
    )


def test_margin_account_at_full_margin_is_a_cash_account(inst):
    full, cash = Portfolio(1_000.0, account=MarginAccount(1.0, 0.5)), Portfolio(1_000.0)
    for qty in (9, 10, -10, -11):
        assert full.check_fill(inst, qty, 100.0, 1.0) == cash.check_fill(inst, qty, 100.0, 1.0)


@pytest.mark.parametrize(
    ("im", "mm", "msg"),
    [
        (0.0, 0.0, r"initial_margin must be in \(0, 1\], got initial_margin=0.0"),
        (1.5, 0.5, r"initial_margin must be in \(0, 1\], got initial_margin=1.5"),
        (math.nan, 0.5, r"initial_margin must be in \(0, 1\], got initial_margin=nan"),
        (True, 0.5, r"initial_margin must be in \(0, 1\], got initial_margin=True"),
        (0.5, 0.0, r"maintenance_margin must be in \(0, initial_margin=0.5\], got maintenance_margin=0.0"),
        (0.5, 0.6, r"maintenance_margin must be in \(0, initial_margin=0.5\], got maintenance_margin=0.6"),
        (0.5, "x", r"maintenance_margin must be in \(0, initial_margin=0.5\], got maintenance_margin='x'"),
    ],
)
def test_margin_account_validates_its_fractions(im, mm, msg):
    with pytest.raises(InvalidValueError, match=f"MarginAccount: {msg}"):
        MarginAccount(initial_margin=im, maintenance_margin=mm)


def test_margin_account_accepts_the_bounds():
    acct = MarginAccount(1, 1)
    assert (acct.initial_margin, acct.maintenance_margin) == (1.0, 1.0)


def test_margin_call_when_equity_falls_below_maintenance(inst):
    acct = MarginAccount(initial_margin=0.5, maintenance_margin=0.25)
    p = Portfolio(1_000.0, account=acct)
    _buy(p, inst, 20, 100.0, side="SELL")  # cash 3,000, short 2,000
    assert acct.margin_call(p) == ""
    p.mark(inst.symbol, 110.0)  # equity 800 >= 0.25 x 2,200
    assert acct.margin_call(p) == ""
    p.mark(inst.symbol, 140.0)  # equity 200 < 0.25 x 2,800
    assert acct.margin_call(p) == (
        "margin call: equity 200.00 USD is below maintenance margin 0.25 x gross exposure "
        "2,800.00 USD = 700.00 USD"
    )


def test_buys_from_cash_checks_only_buys_against_cash(inst):
    p = Portfolio(1_000.0, account=BuysFromCash())
    assert p.check_fill(inst, -50, 100.0, 1.0) == ""  # a short is the weights' business
    assert p.check_fill(inst, 9, 100.0, 1.0) == ""
    assert p.check_fill(inst, 10, 100.0, 1.0) == (
        "insufficient cash: buying 10 TEST.SIM at 100 needs 1,001.00 USD including fee 1.00, "
        "cash is 1,000.00 USD"
    )


def test_buys_from_cash_always_lets_a_buy_cover_a_short(inst):
    p = Portfolio(1_000.0, account=BuysFromCash())
    _buy(p, inst, 50, 100.0, side="SELL")
    drain = Fill(fill_id="F2", order_id="O", instrument=inst, side=Side.SELL, quantity=1,
                 price=1.0, fee=6_002.0, ts=ts(1))  # fmt: skip
    p.apply(drain)  # a fee that leaves cash below zero
    assert p.cash == -1.0 and p.check_fill(inst, 51, 100.0, 1.0) == ""
    assert "insufficient cash" in p.check_fill(inst, 52, 100.0, 1.0)


def test_account_can_be_swapped_for_a_rebalance(inst):
    p = Portfolio(1_000.0)
    assert "insufficient buying power" in p.check_fill(inst, -11, 100.0, 0.0)
    p.account = BuysFromCash()
    assert p.check_fill(inst, -11, 100.0, 0.0) == ""


def test_margin_rule_counts_the_other_positions_at_their_marks(inst, btc):
    p = Portfolio(10_000.0)
    _buy(p, btc, 0.1, 50_000.0)  # 5,000 in BTC
    p.mark(btc.symbol, 40_000.0)  # now 4,000: equity 9,000
    assert p.exposure_excluding(inst.symbol) == pytest.approx((4_000.0, 4_000.0))
    assert p.check_fill(inst, 50, 100.0, 0.0) == ""
    assert "gross exposure 9,100.00 USD" in p.check_fill(inst, 51, 100.0, 0.0)
    assert p.exposure_excluding(btc.symbol) == (0.0, 0.0)
