"""Stress tests of current holdings on the real sample data, each number against a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.errors import ParameterError
from workbench.risk.exposure import book, book_exposure
from workbench.risk.stress import (
    SCENARIOS,
    Scenario,
    replay,
    reverse_stress,
    shock,
    stress_test,
    window_returns,
)

SYMBOLS = ["SPX", "IXIC", "GOOG", "WTI", "EURUSD", "BTCUSD", "VIX"]
HOLDINGS = {"SPX": 2.0, "IXIC": -1.0, "GOOG": 10.0, "WTI": 50.0, "EURUSD": 1000.0, "BTCUSD": 0.1, "VIX": -20.0}


@pytest.fixture(scope="module")
def prices() -> dict[str, pd.DataFrame]:
    return {s: wb.load_prices(s) for s in SYMBOLS}


@pytest.fixture(scope="module")
def b(prices):
    return book(HOLDINGS, prices, at="2018-12-31", equity=20_000.0)


def close(prices, sym: str, day: str) -> float:
    return float(prices[sym]["Close"].loc[pd.Timestamp(day, tz="UTC")])


def test_builtin_windows() -> None:
    assert {k: (str(s.start.date()), str(s.end.date())) for k, s in SCENARIOS.items()} == {
        "dot-com": ("2000-03-10", "2002-10-09"), "9/11": ("2001-09-10", "2001-09-21"),
        "GFC": ("2008-09-01", "2009-03-09"), "Aug 2011": ("2011-07-22", "2011-08-08"),
        "Q4 2018": ("2018-09-20", "2018-12-24"),
    }  # fmt: skip


def test_daily_window_returns_by_hand(prices) -> None:
    # GFC: last close strictly before 2008-09-01 (a US holiday) is Friday 2008-08-29
    wr = window_returns(prices, "2008-09-01", "2009-03-09")
    assert wr.loc["SPX", "return"] == close(prices, "SPX", "2009-03-09") / close(prices, "SPX", "2008-08-29") - 1
    assert wr.loc["SPX", "base_time"] == pd.Timestamp("2008-08-30", tz="UTC")  # the 08-29 bar closes at its end
    # 9/11: base is the close of Monday 2001-09-10's previous session, Friday 09-07
    wr = window_returns(prices, "2001-09-10", "2001-09-21")
    assert wr.loc["IXIC", "return"] == close(prices, "IXIC", "2001-09-21") / close(prices, "IXIC", "2001-09-07") - 1
    assert wr.loc["WTI", "return"] == close(prices, "WTI", "2001-09-21") / close(prices, "WTI", "2001-09-07") - 1


def test_hand_window_boundaries() -> None:
    idx = pd.date_range("2024-01-01", periods=6, tz="UTC")  # Mon..Sat
    closes = pd.DataFrame({"A": [100.0, 110.0, 99.0, 125.0, 130.0, 150.0]}, index=idx)
    wr = window_returns(closes, "2024-01-03", "2024-01-04")
    assert wr.loc["A", "return"] == 125.0 / 110.0 - 1  # 01-04 close over the 01-02 close
    assert window_returns(closes, "2024-01-01", "2024-01-02").loc["A", "missing"] == "no close before the window starts"
    assert window_returns(closes, "2024-02-01", "2024-02-05").loc["A", "missing"] == "no close inside the window"
    with pytest.raises(ParameterError, match="must be a date"):
        window_returns(closes, "2024-01-03 12:00", "2024-01-04")
    with pytest.raises(ParameterError, match="before start"):
        window_returns(closes, "2024-01-04", "2024-01-03")


def test_monthly_bars_close_at_month_end(prices) -> None:
    # BTCUSD is monthly, stamped at the start of the month: the Sep 2018 bar closes on 1 Oct,
    # after the Q4 2018 window opens, so the base is the Aug bar; the end is the Nov bar.
    wr = window_returns(prices, "2018-09-20", "2018-12-24")
    expected = close(prices, "BTCUSD", "2018-11-01") / close(prices, "BTCUSD", "2018-08-01") - 1
    assert wr.loc["BTCUSD", "return"] == expected
    assert wr.loc["BTCUSD", "end_time"] == pd.Timestamp("2018-12-01", tz="UTC")
    # a plain frame of closes without metadata infers the month from the spacing
    plain = window_returns(pd.DataFrame({"BTCUSD": prices["BTCUSD"]["Close"]}), "2018-09-20", "2018-12-24")
    assert plain.loc["BTCUSD", "return"] == expected


def test_replay_pnl_and_missing(prices, b) -> None:
    r = replay(b, prices, SCENARIOS["GFC"])
    assert set(r.missing) == {"EURUSD", "BTCUSD", "VIX"}  # no data in 2008-09
    wr = window_returns(prices, "2008-09-01", "2009-03-09")
    held = ["SPX", "IXIC", "GOOG", "WTI"]
    expected = sum(b.value[s] * wr.loc[s, "return"] for s in held)
    assert r.pnl == pytest.approx(expected, rel=1e-12)
    assert r.pnl_frac == pytest.approx(expected / 20_000.0)
    assert r.by_asset.loc["GOOG", "pnl"] == pytest.approx(10 * close(prices, "GOOG", "2013-03-01") * wr.loc["GOOG", "return"])
    assert r.by_asset.loc["VIX", "missing"] == "no close before the window starts" and np.isnan(r.by_asset.loc["VIX", "pnl"])
    assert r.by_asset.loc["SPX", "missing"] is None


def test_stress_table_and_user_window(prices, b) -> None:
    t = stress_test(b, prices)
    assert list(t.index) == list(SCENARIOS)
    assert t.loc["dot-com", "missing"] == "GOOG, EURUSD, BTCUSD, VIX"
    assert t.loc["Q4 2018", "n_missing"] == 2  # GOOG ends in 2013, EURUSD in Feb 2018
    assert t.loc["GFC", "pnl"] == replay(b, prices, SCENARIOS["GFC"]).pnl
    user = stress_test(b, prices, [("vol spike", "2018-01-26", "2018-02-08"), ("2018-10-01", "2018-10-31")])
    assert list(user.index) == ["vol spike", "2018-10-01..2018-10-31"]
    vix = window_returns(prices, "2018-01-26", "2018-02-08").loc["VIX", "return"]
    assert replay(b, prices, ("2018-01-26", "2018-02-08")).by_asset.loc["VIX", "pnl"] == pytest.approx(b.value["VIX"] * vix)
    with pytest.raises(ParameterError, match="a scenario is"):
        stress_test(b, prices, ["GFC"])


def test_scenario_validation() -> None:
    with pytest.raises(ParameterError, match="before start"):
        Scenario("x", "2020-02-01", "2020-01-01")
    with pytest.raises(ParameterError, match="non-empty"):
        Scenario("", "2020-01-01", "2020-01-02")


def test_hypothetical_shocks_by_asset_then_class(b) -> None:
    r = shock(b, {"SPX": -0.2}, {"INDEX": -0.1, "crypto": -0.5})
    v = b.value
    assert r.by_asset.loc["SPX", "return"] == -0.2  # the asset's own shock wins
    assert r.by_asset.loc["IXIC", "return"] == -0.1 and r.by_asset.loc["VIX", "return"] == -0.1
    assert r.by_asset.loc["WTI", "return"] == 0.0  # no shock given: unchanged
    expected = -0.2 * v["SPX"] - 0.1 * (v["IXIC"] + v["VIX"]) - 0.5 * v["BTCUSD"]
    assert r.pnl == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ParameterError, match="not in the book: XYZ"):
        shock(b, {"XYZ": -0.1})
    with pytest.raises(ParameterError, match=">= -1"):
        shock(b, {"SPX": -1.5})
    with pytest.raises(ParameterError, match="AssetClass"):
        shock(b, asset_classes={"BONDS": -0.1})


@pytest.mark.parametrize("direction", ["adverse", "down", "up"])
def test_reverse_stress_closed_form_reaches_the_limit(b, direction: str) -> None:
    bk_ = b
    rs = reverse_stress(bk_, 0.1, direction=direction)
    e = book_exposure(bk_)
    if direction == "up" and e["net"] >= 0:
        assert rs.shock == math.inf and not rs.feasible
        return
    sign = {"adverse": np.sign(bk_.value), "down": 1.0, "up": -1.0}[direction]
    moves = (-rs.shock * pd.Series(sign, index=bk_.value.index)).to_dict()
    assert shock(bk_, moves).pnl == pytest.approx(-0.1 * bk_.equity, rel=1e-12)
    slope = {"adverse": e["gross"], "down": e["net"]}[direction]
    assert rs.shock == pytest.approx(0.1 * bk_.equity / slope) and rs.loss_limit == 2000.0


def test_reverse_stress_cases_by_hand() -> None:
    idx = pd.date_range("2024-01-01", periods=1, tz="UTC")
    px = pd.DataFrame({"L": [10.0], "S": [20.0]}, index=idx)
    short_book = book({"L": 10, "S": -10}, px, equity=100.0)  # long 100, short -200: net -100
    assert reverse_stress(short_book, 30, units="value").shock == pytest.approx(0.1)  # 30 / 300 gross
    assert reverse_stress(short_book, 0.3, direction="up").shock == pytest.approx(0.3)  # 30 / 100 net short
    assert reverse_stress(short_book, 0.3, direction="down").shock == math.inf
    big = reverse_stress(book({"L": 10}, px, equity=100.0), 2.0, direction="down")  # needs -200%
    assert big.shock == pytest.approx(2.0) and not big.feasible
    assert reverse_stress(book({"S": -10}, px, equity=100.0), 5.0).feasible  # only shorts rise
    flat = reverse_stress(book({"L": 0}, px, equity=100.0), 0.1)
    assert flat.shock == math.inf and not flat.feasible
    for bad in ({"limit": 0}, {"limit": -0.1}, {"limit": math.nan}, {"limit": 0.1, "units": "pct"},
                {"limit": 0.1, "direction": "sideways"}):  # fmt: skip
        with pytest.raises(ParameterError):
            reverse_stress(short_book, **bad)


quantities = st.floats(-1e4, 1e4, allow_nan=False)


@given(st.dictionaries(st.sampled_from(SYMBOLS), quantities, min_size=1), st.floats(-5, 5, allow_nan=False))
@settings(max_examples=25, deadline=None)
def test_stress_pnl_is_linear_in_quantities(prices, q: dict[str, float], k: float) -> None:
    b1 = book(q, prices, at="2018-12-31", equity=1e5)
    bk = book({s: k * v for s, v in q.items()}, prices, at="2018-12-31", equity=1e5)
    for name in ("GFC", "Q4 2018"):
        p1, pk = replay(b1, prices, SCENARIOS[name]).pnl, replay(bk, prices, SCENARIOS[name]).pnl
        assert pk == pytest.approx(k * p1, rel=1e-9, abs=1e-6)
    s1, sk = shock(b1, asset_classes={"INDEX": -0.1, "CRYPTO": 0.3}), shock(bk, asset_classes={"INDEX": -0.1, "CRYPTO": 0.3})
    assert sk.pnl == pytest.approx(k * s1.pnl, rel=1e-9, abs=1e-6)


@given(st.dictionaries(st.sampled_from(SYMBOLS), quantities, min_size=1),
       st.dictionaries(st.sampled_from(SYMBOLS), quantities, min_size=1))  # fmt: skip
@settings(max_examples=25, deadline=None)
def test_stress_pnl_is_additive_across_books(prices, q1: dict[str, float], q2: dict[str, float]) -> None:
    both = {s: q1.get(s, 0.0) + q2.get(s, 0.0) for s in set(q1) | set(q2)}
    pnl = [replay(book(q, prices, at="2018-12-31", equity=1e5), prices, SCENARIOS["Q4 2018"]).pnl for q in (q1, q2, both)]
    assert pnl[2] == pytest.approx(pnl[0] + pnl[1], rel=1e-9, abs=1e-6)
