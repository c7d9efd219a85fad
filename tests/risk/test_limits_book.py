"""Limits on the whole book after an order: concentration (top-N weight, HHI) and 1-day
historical VaR, each equal to a hand computation and enforced on real sample data; the
FLATTEN drawdown action, which halts and closes every position at the next open; and the
invariant that no filled order breaches a concentration limit (Hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.risk.limits import MaxHHI, MaxTopNWeight, MaxVaR, Proposal
from workbench.risk.monitor import RiskMonitor
from workbench.risk.profile import DrawdownAction, RiskProfile
from workbench.risk.var import historical_var
from workbench.trading import Fill, Instrument, Order, Portfolio, Side

GOOG = wb.load_prices("GOOG")
PAIR = wb.load_prices(["SPX", "IXIC"], progress=False)
FOUR = wb.load_prices(["GOOG", "SPX", "IXIC", "WTI"], progress=False)
TS = pd.Timestamp("2024-01-02", tz="UTC")
A, B, C = (Instrument(ticker=t, exchange="SIM") for t in ("AAA", "BBB", "CCC"))


def _fill(book: Portfolio, inst: Instrument, side: str, qty: float, price: float) -> None:
    n = len(book.transactions) + 1
    book.apply(Fill(fill_id=f"F-{n}", order_id=f"X-{n}", instrument=inst, side=Side(side), quantity=qty,
                    price=price, fee=0.0, ts=TS))  # fmt: skip


def _book() -> Portfolio:
    """Long 100 A (marked 55), short 40 B (marked 90), long 10 C (never marked: entry 20)."""
    book = Portfolio(100_000.0)
    _fill(book, A, "BUY", 100, 50.0)
    _fill(book, B, "SELL", 40, 100.0)
    _fill(book, C, "BUY", 10, 20.0)
    book.mark(A.symbol, 55.0)
    book.mark(B.symbol, 90.0)
    del book.marks[C.symbol]
    return book


def _order(inst: Instrument, side: str, qty: float, ts: pd.Timestamp = TS) -> Order:
    return Order(order_id="O-1", instrument=inst, side=side, quantity=qty, ts=ts)


# --------------------------------------------------------------------- concentration
def test_concentration_values_equal_a_hand_computation_on_a_constructed_book() -> None:
    book = _book()
    p = Proposal(_order(A, "BUY", 30), 60.0, book)  # A goes to 130 at the expected 60
    after = {A.symbol: 130 * 60.0, B.symbol: -40 * 90.0, C.symbol: 10 * 20.0}
    assert p.values() == pytest.approx(after, rel=1e-15)
    equity = (100_000 - 5_000 + 4_000 - 200) + 100 * 55 - 40 * 90 + 10 * 20  # cash + marked positions
    assert p.equity == pytest.approx(equity, rel=1e-15) and book.equity == pytest.approx(equity, rel=1e-15)
    assert MaxTopNWeight(2, 0.5).value(p) == pytest.approx((7_800 + 3_600) / equity, rel=1e-14)
    assert MaxTopNWeight(5, 0.5).value(p) == pytest.approx(11_600 / equity, rel=1e-14), "n above the count: gross"
    hhi = (7_800**2 + 3_600**2 + 200**2) / 11_600**2
    assert MaxHHI(0.5).value(p) == pytest.approx(hhi, rel=1e-14)
    assert p.gross_after == pytest.approx(11_600, rel=1e-14), "one-pass totals agree with the book"


def test_the_one_pass_totals_are_the_books_own_sums() -> None:
    book = _book()
    p = Proposal(_order(B, "BUY", 10), 90.0, book)
    assert p.equity == book.cash + book.market_value()
    assert p.gross_after == book.gross_exposure() - 40 * 90.0 + 30 * 90.0
    assert p.net_after == book.market_value() + 40 * 90.0 - 30 * 90.0


def test_a_concentration_breach_names_the_limit_and_a_reducing_order_always_passes() -> None:
    book = _book()
    usage, breach = MaxTopNWeight(1, 0.05).assess(Proposal(_order(A, "BUY", 30), 60.0, book))
    assert breach is not None and breach.limit == "MaxTopNWeight" and usage > 1
    assert breach.message.startswith("MaxTopNWeight: top-1 weight 0.0773") and breach.threshold == 0.05
    usage, breach = MaxHHI(0.3).assess(Proposal(_order(A, "BUY", 30), 60.0, book))
    assert breach is not None and breach.message.startswith("MaxHHI: HHI of gross weights")
    sell = Proposal(_order(A, "SELL", 50), 60.0, book)  # more concentrated in B, but it reduces A
    assert MaxTopNWeight(1, 0.01).assess(sell) == (0.0, None) and MaxHHI(0.3).assess(sell) == (0.0, None)


def test_an_empty_book_weighs_zero() -> None:
    book = Portfolio(10_000.0)
    _fill(book, A, "BUY", 10, 50.0)
    p = Proposal(_order(A, "SELL", 10), 50.0, book)  # closes the only position
    assert p.values() == {} and MaxHHI(0.5).value(p) == 0.0 and MaxTopNWeight(3, 0.5).value(p) == 0.0


def test_min_gross_leaves_a_book_being_built_unjudged() -> None:
    first = Proposal(_order(A, "BUY", 10), 50.0, Portfolio(10_000.0))  # one position: HHI 1
    assert MaxHHI(0.5).assess(first)[1] is not None, "strict by default"
    assert MaxHHI(0.5, min_gross=0.9).assess(first) == (0.0, None), "gross 5% of equity < 90%"
    assert MaxHHI(0.5, min_gross=0.04).assess(first)[1] is not None, "gross 5% >= 4%: judged"


def test_a_view_without_positions_is_told_what_the_book_needs() -> None:
    class View:  # a PortfolioView of one instrument and no position table
        cash, equity = 1_000.0, 1_000.0
        marks = {A.symbol: 10.0}

        def quantity(self, inst: Instrument) -> float:
            return 0.0

        def gross_exposure(self) -> float:
            return 0.0

        def market_value(self) -> float:
            return 0.0

    p = Proposal(_order(A, "BUY", 1), 10.0, View())  # type: ignore[arg-type]
    assert p.equity == 1_000.0 and p.gross_after == 10.0
    with pytest.raises(wb.ParameterError, match="need a book with positions and marks"):
        MaxHHI(0.5).value(p)


def test_a_top_n_cap_denies_the_leg_that_breaks_it_on_a_rotation() -> None:
    """xs_momentum holds two names at 50%: the first leg makes the top-2 weight ~0.5 (passes),
    the second ~1.0 (denied); the logged value is the hand computation at that leg."""
    r = wb.backtest("xs_momentum", FOUR, cash=1e6, risk=RiskProfile(limits=(MaxTopNWeight(2, 0.6),)))
    log = r.risk.events
    denied = r.orders[r.orders["status"] == "DENIED"]
    assert len(denied) and (log["limit"] == "MaxTopNWeight").all() and (log["value"] > 0.6).all()
    assert list(log["order_id"]) == list(denied["order_id"])
    first = denied.iloc[0]
    before = r.orders.iloc[r.orders.index.get_loc(denied.index[0]) - 1]  # the first leg of that rebalance
    assert before["status"] == "FILLED" and before["placed"] == first["placed"] and r.risk.passed >= 1
    leg = r.fills.set_index("order_id").loc[before["order_id"]]
    bar = FOUR.index[FOUR.index.get_loc(first["placed"]) + 1]  # both checked at this open
    px = {s: FOUR.loc[bar, (s.split(".")[0], "Open")] for s in (before["symbol"], first["symbol"])}
    v_leg = leg["quantity"] * px[before["symbol"]]
    equity = 1e6 - leg["quantity"] * leg["price"] - leg["fee"] + v_leg
    hand = (v_leg + first["quantity"] * px[first["symbol"]]) / equity
    assert log["value"].iloc[0] == pytest.approx(hand, rel=1e-12)


def test_an_hhi_cap_denies_a_two_name_book_and_passes_a_three_name_one() -> None:
    strict = RiskProfile(limits=(MaxHHI(0.4, min_gross=0.9),))
    two = wb.backtest("xs_momentum", FOUR, {"top_k": 2}, cash=1e6, risk=strict)
    log = two.risk.events
    assert len(log) and (log["limit"] == "MaxHHI").all()
    assert np.allclose(log["value"], 0.5, atol=1e-3), "two names at 50%: HHI 0.5"
    three = wb.backtest("xs_momentum", FOUR, {"top_k": 3}, cash=1e6, risk=strict)
    assert three.risk.denied == 0 and three.risk.passed > 0, "1/3 equal weights: HHI 0.33 < 0.4"


def test_concentration_drift_from_price_moves_is_logged_per_episode() -> None:
    limits = (MaxTopNWeight(1, 0.56), MaxHHI(0.505, min_gross=0.9))
    r = wb.backtest("xs_momentum", FOUR, cash=1e6, risk=RiskProfile(limits=limits))
    close = np.column_stack([FOUR[(s.split(".")[0], "Close")].to_numpy() for s in r.positions.columns])
    gross = np.abs(r.positions.to_numpy() * close)
    eq = r.equity.to_numpy()
    top1 = gross.max(axis=1) / eq
    g = gross.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        hhi = np.where((g > 0) & (g >= 0.9 * eq), ((gross / g[:, None]) ** 2).sum(axis=1), 0.0)

    def starts(over: np.ndarray) -> list[pd.Timestamp]:
        return list(FOUR.index[np.flatnonzero(over & ~np.concatenate(([False], over[:-1])))])

    drift = r.risk.events[r.risk.events["event"] == "LimitBreached"]
    assert r.risk.denied == 0
    for name, series, cap in (("MaxTopNWeight", top1, 0.56), ("MaxHHI", hhi, 0.505)):
        mine = drift[drift["limit"] == name]
        assert len(mine) and list(mine["ts"]) == starts(series > cap * (1 + 1e-9)), name


# ------------------------------------------------------------------------------- VaR
def _pair_book(e: int) -> tuple[Portfolio, list[Instrument], np.ndarray]:
    spx, ixic = wb.instrument_for("SPX"), wb.instrument_for("IXIC")
    close = np.column_stack([PAIR[(s, "Close")].to_numpy() for s in ("SPX", "IXIC")])
    book = Portfolio(1e6)
    _fill(book, spx, "BUY", 100, float(close[e - 30, 0]))
    book.mark(spx.symbol, float(close[e, 0]))
    return book, [spx, ixic], close


def test_the_var_limit_equals_historical_var_of_the_hand_built_pnl() -> None:
    e = 1_000
    book, (spx, ixic), close = _pair_book(e)
    price = float(PAIR[("IXIC", "Open")].iloc[e + 1])  # the open the order is expected to fill at
    p = Proposal(_order(ixic, "BUY", 50, PAIR.index[e]), price, book)
    bound = MaxVaR(0.02).bind(PAIR.index, close, [spx.symbol, ixic.symbol])
    returns = pd.DataFrame(close, index=PAIR.index).pct_change().iloc[e - 249 : e + 1].to_numpy()
    assert len(returns) == 250 and not np.isnan(returns).any()
    pnl = returns @ np.array([100 * close[e, 0], 50 * price])  # full revaluation of today's values
    equity = book.cash + 100 * close[e, 0]
    assert bound.value(p) == pytest.approx(historical_var(pnl, 0.99).value / equity, abs=1e-12)
    k = math.ceil(250 * 0.01)  # the 3rd worst of 250 (inverted_cdf)
    assert bound.value(p) == pytest.approx(-np.sort(pnl)[k - 1] / equity, abs=1e-12)
    usage, breach = bound.assess(p)
    assert breach is None and usage == pytest.approx(bound.value(p) / 0.02)
    tight = MaxVaR(0.001).bind(PAIR.index, close, [spx.symbol, ixic.symbol]).assess(p)[1]
    assert tight is not None and tight.limit == "MaxVaR" and tight.value == bound.value(p)
    assert tight.message.startswith("MaxVaR: 1-day 0.99 historical VaR")


def test_the_var_limit_does_not_look_ahead() -> None:
    e = 1_000
    book, (spx, ixic), close = _pair_book(e)
    p = Proposal(_order(ixic, "BUY", 50, PAIR.index[e]), 2_000.0, book)
    symbols = [spx.symbol, ixic.symbol]
    base = MaxVaR(0.02).bind(PAIR.index, close, symbols).value(p)
    later = close.copy()
    later[e + 1 :] *= np.random.default_rng(3).uniform(0.5, 1.5, size=later[e + 1 :].shape)
    assert MaxVaR(0.02).bind(PAIR.index, later, symbols).value(p) == base, "closes after the order's bar"
    now = close.copy()
    now[e] *= 0.9  # the order's own close is known: it counts
    assert MaxVaR(0.02).bind(PAIR.index, now, symbols).value(p) != base


def test_before_window_returns_an_entry_is_denied_for_want_of_history() -> None:
    _, (spx, ixic), close = _pair_book(300)
    bound = MaxVaR(0.5, window=250).bind(PAIR.index, close, [spx.symbol, ixic.symbol])
    book = Portfolio(1e6)
    at = lambda e: bound.assess(Proposal(_order(ixic, "BUY", 1, PAIR.index[e]), 2_000.0, book))  # noqa: E731
    usage, breach = at(249)  # closes 0..249: 249 returns
    assert breach is not None and math.isinf(usage) and math.isnan(breach.value)
    assert "not enough history: 249 returns" in breach.message
    assert at(250)[1] is None, "250 returns: computable (and within a 50% cap)"
    gap = close.copy()
    gap[200, 1] = np.nan
    holed = MaxVaR(0.5).bind(PAIR.index, gap, [spx.symbol, ixic.symbol])
    breach = holed.assess(Proposal(_order(ixic, "BUY", 1, PAIR.index[300]), 2_000.0, book))[1]
    assert breach is not None and "a missing close" in breach.message


def test_an_unbound_or_unknown_var_limit_denies_entries_and_passes_exits() -> None:
    e = 1_000
    book, (spx, ixic), close = _pair_book(e)
    entry = Proposal(_order(ixic, "BUY", 1, PAIR.index[e]), 2_000.0, book)
    breach = MaxVaR(0.5).assess(entry)[1]
    assert breach is not None and "not bound" in breach.message
    only_spx = MaxVaR(0.5).bind(PAIR.index, close[:, :1], [spx.symbol])
    breach = only_spx.assess(entry)[1]
    assert breach is not None and "no price history for IXIC" in breach.message
    assert only_spx.assess(Proposal(_order(spx, "SELL", 100, PAIR.index[e]), 1_000.0, book)) == (0.0, None)


def test_a_monitor_binds_only_what_has_bind_and_leaves_the_profile_alone() -> None:
    profile = RiskProfile(limits=(wb.LongOnly(), MaxVaR(0.02)))
    monitor = RiskMonitor(profile)
    monitor.bind(GOOG.index, GOOG[["Close"]].to_numpy(), ["GOOG.SAMPLE"])
    assert monitor.limits[0] is profile.limits[0] and type(monitor.limits[1]).__name__ == "_BoundVaR"
    assert isinstance(profile.limits[1], MaxVaR), "the profile is a value, shared across runs"


def test_a_var_cap_denies_on_a_backtest_and_logs_the_hand_value() -> None:
    r = wb.backtest("sma_crossover", GOOG, risk=RiskProfile(limits=(MaxVaR(0.03),)))
    log = r.risk.events
    assert (log["limit"] == "MaxVaR").all() and r.risk.denied == len(r.orders) and len(r.fills) == 0
    early = log[log["value"].isna()]
    assert len(early) and early["detail"].str.contains("not enough history").all()
    first = log[log["value"].notna()].iloc[0]
    order = r.orders.set_index("order_id").loc[first["order_id"]]
    s = GOOG.index.get_loc(order["placed"])
    assert s >= 250
    price = GOOG["Open"].iloc[s + 1]  # checked at the open it would fill at
    pnl = GOOG["Close"].pct_change().iloc[s - 249 : s + 1].to_numpy() * (order["quantity"] * price)
    assert first["value"] == pytest.approx(historical_var(pnl, 0.99).value / 10_000.0, abs=1e-12)
    assert first["value"] > first["threshold"] == 0.03


def test_a_var_decision_does_not_change_with_prices_after_the_fill_bar() -> None:
    profile = RiskProfile(limits=(MaxVaR(0.03),))
    r = wb.backtest("sma_crossover", GOOG, risk=profile)
    decided = r.risk.events[r.risk.events["value"].notna()].iloc[0]
    s = GOOG.index.get_loc(decided["ts"])
    bumped = GOOG.copy()
    cols = ["Open", "High", "Low", "Close"]
    bumped.iloc[s + 2 :, [GOOG.columns.get_loc(c) for c in cols]] *= 1.5
    again = wb.backtest("sma_crossover", bumped, risk=profile)
    row = again.risk.events.set_index("order_id").loc[decided["order_id"]]
    assert row["ts"] == decided["ts"] and row["value"] == decided["value"]


# --------------------------------------------------------------------------- FLATTEN
def always_long(prices: pd.DataFrame) -> pd.Series:
    return pd.Series(1.0, index=prices.index)


FLATTEN = RiskProfile(max_drawdown=0.3, drawdown_action=DrawdownAction.FLATTEN)


def _first_past(equity: pd.Series, limit: float) -> pd.Timestamp:
    return equity.index[int(np.argmax((equity <= equity.cummax() * (1 - limit)).to_numpy()))]


def test_flatten_halts_at_the_drawdown_close_and_closes_at_the_next_open() -> None:
    r = wb.backtest(always_long, GOOG, risk=FLATTEN)
    hit = _first_past(r.equity, 0.3)
    nxt = GOOG.index[GOOG.index.get_loc(hit) + 1]
    log = r.risk.events
    assert list(log["event"]) == ["TradingStateChanged", "PositionLiquidated"]
    change, liq = log.iloc[0], log.iloc[1]
    assert change["ts"] == hit and change["detail"].startswith("ACTIVE -> HALTED: drawdown")
    assert liq["ts"] == nxt and liq["limit"] == "max drawdown" and "drawdown" in liq["detail"]
    assert "margin" not in liq["detail"] and liq["value"] == r.positions.loc[hit] > 0
    order = r.orders[r.orders["tag"] == "liquidation"].iloc[0]
    assert order["status"] == "FILLED" and order["avg_fill_price"] == GOOG.loc[nxt, "Open"]
    assert (r.positions.loc[nxt:] == 0).all() and (r.positions.loc[GOOG.index[1] : hit] > 0).all()
    assert not (r.fills["ts"] > nxt).any() and r.risk.state == "HALTED"
    held = wb.backtest(always_long, GOOG, risk=RiskProfile(max_drawdown=0.3, drawdown_action=DrawdownAction.HALT))
    assert (held.positions.loc[nxt:] > 0).all(), "HALT keeps the position; FLATTEN closes it"


def test_flatten_on_a_bar_strategy_closes_it_and_ends_its_run() -> None:
    class Hold(wb.BarStrategy):
        def on_bar(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.i == 0:
                ctx.buy(20)
            elif ctx.i % 100 == 0:
                ctx.buy(1, tag="more")

    r = wb.backtest(Hold(), GOOG, risk=FLATTEN)
    hit = _first_past(r.equity, 0.3)
    nxt = GOOG.index[GOOG.index.get_loc(hit) + 1]
    assert list(r.risk.events["event"]) == ["TradingStateChanged", "PositionLiquidated"]
    assert r.risk.events["ts"].tolist() == [hit, nxt]
    assert (r.positions.loc[nxt:] == 0).all() and not (r.fills["ts"] > nxt).any()
    assert r.positions.loc[hit] == 20 + (r.orders["tag"] == "more").sum(), "the adds before it filled"
    assert set(r.orders.loc[r.orders["placed"] >= hit, "tag"]) == {"liquidation"}, "the run stops there"


def test_flatten_on_a_rotation_closes_every_position() -> None:
    r = wb.backtest("xs_momentum", FOUR, cash=1e6, risk=RiskProfile(max_drawdown=0.15, drawdown_action="FLATTEN"))
    hit = _first_past(r.equity, 0.15)
    nxt = FOUR.index[FOUR.index.get_loc(hit) + 1]
    held = r.positions.loc[hit]
    liq = r.orders[r.orders["tag"] == "liquidation"]
    assert set(liq["symbol"]) == set(held[held != 0].index) and len(liq) >= 1
    for o in liq.itertuples():
        assert o.status == "FILLED" and o.avg_fill_price == FOUR.loc[nxt, (o.symbol.split(".")[0], "Open")]
    assert (r.positions.loc[nxt:] == 0).all().all() and not (r.fills["ts"] > nxt).any()


def test_what_a_flatten_could_not_close_is_named() -> None:
    r = wb.backtest(always_long, GOOG, risk=FLATTEN,
                    pre_trade_check=lambda o, p, px: "no" if o.tag == "liquidation" else "")  # fmt: skip
    changes = r.risk.events[r.risk.events["event"] == "TradingStateChanged"]
    assert len(changes) == 2 and "not closed: 99 GOOG.SAMPLE (REJECTED)" in changes["detail"].iloc[1]
    assert changes["detail"].iloc[1].startswith("HALTED -> HALTED: liquidated after the drawdown")


def test_a_margin_liquidation_still_says_margin() -> None:
    r = wb.backtest(lambda p: -always_long(p), GOOG, account=wb.MarginAccount(0.5, 0.3), size=40, cash=5_000)
    liq = r.risk.events[r.risk.events["event"] == "PositionLiquidated"].iloc[0]
    assert liq["limit"] == "maintenance margin" and liq["detail"].endswith("after the margin call")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MaxTopNWeight(0, 0.5), "MaxTopNWeight: n must be an int >= 1, got n=0"),
        (lambda: MaxTopNWeight(2, -1), "MaxTopNWeight: limit must be a finite number > 0, got limit=-1"),
        (lambda: MaxHHI(1.5), "MaxHHI: limit must be in \\(0, 1\\], got limit=1.5"),
        (lambda: MaxHHI(0.5, min_gross=-0.1), "MaxHHI: min_gross must be a finite fraction of equity >= 0"),
        (lambda: MaxVaR(0.02, confidence=99), "MaxVaR: confidence must be in \\(0, 1\\)"),
        (lambda: MaxVaR(0.02, window=1), "MaxVaR: window must be an int >= 2"),
        (lambda: MaxVaR(0.02, method="normal"), "MaxVaR: method must be 'historical'"),
        (lambda: RiskProfile(max_drawdown=0.2, drawdown_action="SELL_ALL"), "REDUCE, HALT or FLATTEN"),
    ],
)
def test_bad_book_limits_are_parameter_errors(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(wb.ParameterError, match=message):
        make()


# ------------------------------------------------------------------------- invariant
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(top_k=st.integers(1, 3), rebalance=st.sampled_from([10, 21, 42]), n=st.integers(1, 3),
       cap=st.floats(0.3, 1.0), hhi_cap=st.floats(0.3, 1.0), min_gross=st.sampled_from([0.0, 0.5, 0.9]),
       commission=st.sampled_from([0.0, 0.002]))  # fmt: skip
def test_no_filled_order_breaches_a_concentration_limit(top_k, rebalance, n, cap, hhi_cap, min_gross,
                                                        commission) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """Replayed from the fills: each buy that opens or adds, valued with every position at
    the execution bar's open (the price it was checked at), is within both caps."""
    limits = (MaxTopNWeight(n, cap), MaxHHI(hhi_cap, min_gross=min_gross))
    r = wb.backtest("xs_momentum", FOUR, {"top_k": top_k, "rebalance": rebalance}, cash=1e6,
                    commission=commission, risk=RiskProfile(limits=limits))  # fmt: skip
    q: dict[str, float] = {}
    cash = 1e6
    for f in r.fills.itertuples():
        px = {s: FOUR.loc[f.ts, (s.split(".")[0], "Open")] for s in {*q, f.symbol}}
        signed = f.quantity if f.side == "BUY" else -f.quantity
        q0 = q.get(f.symbol, 0.0)
        equity = cash + sum(qty * px[s] for s, qty in q.items())
        q[f.symbol] = q0 + signed
        if not (abs(q0 + signed) <= abs(q0) and q0 * (q0 + signed) >= 0):  # opens or adds
            gross = np.array([abs(qty * px[s]) for s, qty in q.items() if qty != 0])
            assert np.sort(gross)[::-1][:n].sum() / equity <= cap * (1 + 1e-9)
            if gross.sum() >= min_gross * equity:
                assert ((gross / gross.sum()) ** 2).sum() <= hhi_cap * (1 + 1e-9)
        cash -= signed * f.price + f.fee
