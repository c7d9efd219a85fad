"""The portfolio review dashboard: each control changes what it should, checked against
numbers computed here by hand; forged widget messages are refused; an empty store offers
the sample book. The last section drives the served notebook in headless Chromium."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench as wb
from tests._dashboards import (
    needs_chromium,
    open_page,
    plot_data,
    screenshot,
    serve,
    wait_generation,
)
from workbench.dashboards import portfolio as pf

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "dashboard_portfolio.ipynb"


@dataclass(frozen=True, kw_only=True)
class UserSMA(wb.SMACrossover):
    """A strategy defined outside workbench: its stored spec loads only with trusted=True."""


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A store with an SPX run, a two-sleeve book and (newest) a GOOG run, as the page lists them."""
    store = wb.SQLiteStore(tmp_path_factory.mktemp("pf") / "s.sqlite")
    spx = wb.backtest("sma_crossover", "SPX", {"fast": 20, "slow": 100}, commission=0.001, store=store)
    panel = wb.load_prices(["SPX", "GOOG", "IXIC"], progress=False)
    book = wb.MultiStrategy(sleeves=(
        wb.Sleeve(name="trend", strategy=wb.SMACrossover(fast=20, slow=100), symbols=("SPX",)),
        wb.Sleeve(name="rotation", strategy=wb.CrossSectionalMomentum(top_k=1), symbols=("GOOG", "IXIC")),
    ), allocation="equal_weight", rebalance="MS", lookback=126)  # fmt: skip
    booked = wb.backtest(book, panel, commission=0.001, store=store)
    goog = wb.backtest("sma_crossover", "GOOG", {"fast": 10, "slow": 30}, commission=0.001, store=store)
    return {"store": store, "goog": goog, "spx": spx, "book": booked, "panel": panel}


@pytest.fixture
def dash(stored):
    return pf.PortfolioReview(store=stored["store"])


def _trace(fig, name_part: str):
    return next(t for t in fig.data if name_part in str(t.name))


def _show_tab(dash, name: str) -> None:
    dash.tabs.set_state({"selected_index": pf.TABS.index(name)})  # as the page sends a tab click


def _pick(dash, dd, value) -> None:
    dd.set_state({"index": [v for _, v in dd.options].index(value)})  # as the page sends a choice


def _state(dash) -> str:
    return re.search(r"data-state='(\w+)'", dash.status.widget.value).group(1)


# -- kernel level ---------------------------------------------------------------------------
def test_dashboard_lists_backtests_newest_first_and_draws_only_the_visible_tab(dash, stored):
    ids = [v for _, v in dash.run_dd.options]
    assert ids == [stored["goog"].run_id, stored["book"].run_id, stored["spx"].run_id]
    label = dash.run_dd.options[0][0]
    assert all(part in label for part in ("SMACrossover", "GOOG", "2004-08-19", "2013-03-01", stored["goog"].run_id))
    assert dash.run.run_id == stored["goog"].run_id and _state(dash) == "ready"
    assert set(dash.figures) == {"equity", "drawdown"} and dict(dash.draws) == {"performance": 1}


def test_equity_is_growth_of_one_against_the_benchmark_buy_and_hold(dash, stored):
    eq = stored["goog"].equity
    fig = dash.figures["equity"]
    np.testing.assert_allclose(fig.data[0].y, (eq / eq.iloc[0]).to_numpy())
    goog = wb.load_prices("GOOG")["Close"]
    assert dash.bench_dd.value == "GOOG"  # the run's own symbol by default
    np.testing.assert_allclose(_trace(fig, "GOOG buy & hold").y[1:], (goog / goog.iloc[0]).to_numpy()[1:])

    _pick(dash, dash.bench_dd, "SPX")
    spx = wb.load_prices("SPX")["Close"]
    on_bars = spx.reindex(spx.index.union(eq.index)).ffill().reindex(eq.index)  # last close at or before each bar
    bench = _trace(dash.figures["equity"], "SPX buy & hold")
    np.testing.assert_allclose(bench.y, (on_bars / on_bars.iloc[0]).to_numpy(), rtol=1e-12)
    assert dash.figures["equity"].layout.yaxis.type == "linear"

    dash.log_cb.set_state({"value": True})
    assert dash.figures["equity"].layout.yaxis.type == "log"
    assert "log" in dash.figures["equity"].layout.yaxis.title.text
    assert dash.draws["performance"] == 3  # one draw per change, no event storm


def test_drawdown_is_equity_over_its_running_peak(dash, stored):
    eq = stored["goog"].equity
    y = np.asarray(dash.figures["drawdown"].data[0].y)
    by_hand = (eq / eq.cummax() - 1).to_numpy()
    np.testing.assert_allclose(y, by_hand)
    assert y.min() == pytest.approx(by_hand.min()) == pytest.approx(stored["goog"].stats["max_drawdown"])


def test_exposure_is_quantity_times_close_over_equity_per_symbol_of_a_book(dash, stored):
    _pick(dash, dash.run_dd, stored["book"].run_id)
    _show_tab(dash, "Positions")
    book, panel = stored["book"], stored["panel"]
    fig = dash.figures["exposure"]
    by_hand = {}
    for sym in ("SPX", "GOOG", "IXIC"):
        q = book.positions[f"{sym}.SAMPLE"]
        by_hand[sym] = q * panel[sym]["Close"] / book.equity
        np.testing.assert_allclose(_trace(fig, f"{sym}.SAMPLE").y, by_hand[sym].to_numpy())
    frame = pd.DataFrame(by_hand)
    np.testing.assert_allclose(_trace(fig, "gross").y, frame.abs().sum(axis=1).to_numpy())
    np.testing.assert_allclose(_trace(fig, "net").y, frame.sum(axis=1).to_numpy())
    np.testing.assert_allclose(_trace(dash.figures["positions"], "GOOG").y, book.positions["GOOG.SAMPLE"].to_numpy())


def test_choosing_a_trade_draws_its_price_chart_with_its_fills_as_markers(dash, stored):
    goog = stored["goog"]
    _show_tab(dash, "Trades")
    assert dash.html["trades"].value.count("<tr>") == len(goog.trades) + 1  # header + one row per trade
    assert "trade #1:" in dash.figures["trade"].layout.title.text
    _pick(dash, dash.trade_dd, 2)
    fig = dash.figures["trade"]
    t = goog.trades.iloc[2]
    assert fig.layout.title.text.startswith("trade #3: GOOG.SAMPLE LONG")
    bars = wb.load_prices("GOOG")
    i0 = bars.index.get_loc(t["entry_time"]) - pf.TRADE_PAD
    i1 = bars.index.get_loc(t["exit_time"]) + pf.TRADE_PAD
    candles = _trace(fig, "GOOG bars")
    assert pd.DatetimeIndex(candles.x).equals(bars.index[i0 : i1 + 1])
    f = goog.fills[(goog.fills["ts"] >= bars.index[i0]) & (goog.fills["ts"] <= bars.index[i1])]
    for side, name in (("BUY", "buy fills"), ("SELL", "sell fills")):
        mine = f[f["side"] == side]
        marks = _trace(fig, name)
        assert list(pd.DatetimeIndex(marks.x)) == list(mine["ts"])
        np.testing.assert_allclose(marks.y, mine["price"].to_numpy())
    assert set(f["side"]) == {"BUY", "SELL"}  # the entry and the exit are both on the chart
    assert f"{t['entry_price']:,.2f}" in dash.html["fills"].value and dash.draws["drill"] == 2


def test_pnl_by_asset_and_by_sleeve_of_a_book_add_up_to_its_equity_change(dash, stored):
    book, panel = stored["book"], stored["panel"]
    _pick(dash, dash.run_dd, book.run_id)
    _show_tab(dash, "Attribution")
    fig = dash.figures["assets"]
    f = book.fills
    for sym in ("SPX", "GOOG", "IXIC"):  # cash-flow view: what was paid and received, plus the last mark
        mine = f[f["symbol"] == f"{sym}.SAMPLE"]
        sign = np.where(mine["side"] == "BUY", 1.0, -1.0)
        flows = -(sign * mine["quantity"] * mine["price"]).sum() - mine["fee"].sum()
        held = book.positions[f"{sym}.SAMPLE"].iloc[-1] * panel[sym]["Close"].iloc[-1]
        assert _trace(fig, f"{sym}.SAMPLE").y[-1] == pytest.approx(flows + held, abs=1e-6)
    assert _trace(fig, "total").y[-1] == pytest.approx(book.equity.iloc[-1] - book.spec.cash, abs=1e-6)
    sleeves = dash.figures["sleeves"]
    assert "by sleeve" in sleeves.layout.title.text and {"trend", "rotation"} <= {t.name for t in sleeves.data}
    assert _trace(sleeves, "book").y[-1] == pytest.approx(book.equity.iloc[-1] - book.spec.cash, abs=1e-6)
    assert "component VaR (delta-normal 99 %, 1 bar" in dash.html["sleeves"].value

    _pick(dash, dash.run_dd, stored["goog"].run_id)  # the tab stays: a single strategy has no sleeves
    assert "sleeves" not in dash.figures and "One strategy (SMACrossover)" in dash.html["sleeves"].value
    goog = stored["goog"]
    assert _trace(dash.figures["assets"], "GOOG").y[-1] == pytest.approx(goog.equity.iloc[-1] - goog.spec.cash)


def test_monthly_heatmap_compounds_each_calendar_month(dash, stored):
    _show_tab(dash, "Monthly")
    heat = dash.figures["monthly"].data[0]
    r = stored["goog"].returns.dropna()
    by_hand = (1 + r).groupby([r.index.year, r.index.month]).prod() - 1
    z = np.asarray(heat.z, dtype=float)
    years = [int(y) for y in heat.y]
    for (year, month), value in by_hand.items():
        assert z[years.index(year), month - 1] == pytest.approx(value, abs=1e-12)
    assert np.isnan(z[0, :7]).all()  # 2004 starts in August: months before are blank, not 0
    yearly = (1 + r).groupby(r.index.year).prod() - 1
    np.testing.assert_allclose(z[:, 12], yearly.reindex(years).to_numpy())


def test_compare_draws_both_runs_as_growth_of_one_with_their_stats(dash, stored):
    goog, spx = stored["goog"], stored["spx"]
    _show_tab(dash, "Compare")
    assert "compare" not in dash.figures and "Pick a second run" in dash.html["compare"].value
    assert goog.run_id not in [v for _, v in dash.compare_dd.options]  # not with itself
    _pick(dash, dash.compare_dd, spx.run_id)
    fig = dash.figures["compare"]
    np.testing.assert_allclose(fig.data[1].y, (spx.equity / spx.equity.iloc[0]).to_numpy())
    table = dash.html["compare"].value
    for r in (goog, spx):
        assert f"{r.stats['total_return'] * 100:.1f} %" in table and f"{r.stats['sharpe']:.2f}" in table
    assert "final equity / starting cash - 1" in table  # each stat's convention


def test_forged_messages_are_refused_and_the_dashboard_still_works(dash, stored):
    forged = [
        (dash.run_dd, {"index": 99}), (dash.run_dd, {"index": None}), (dash.run_dd, {"_options_labels": ["x"]}),
        (dash.bench_dd, {"index": -1}), (dash.bench_dd, {"index": 1, "disabled": True}),
        (dash.log_cb, {"value": "yes"}), (dash.log_cb, {"value": 1}),
        (dash.trade_dd, {"index": 10_000}), (dash.trade_dd, {"index": 1.5}),
        (dash.compare_dd, {"index": "0"}), (dash.compare_dd, {"value": stored["spx"].run_id}),
        (dash.tabs, {"selected_index": 99}), (dash.tabs, {"selected_index": None}), (dash.tabs, {"titles": ["x"]}),
    ]  # fmt: skip
    before = {id(w): (w.rejected, getattr(w, "value", None)) for w, _ in forged}
    draws = dict(dash.draws)
    for widget, message in forged:
        widget.set_state(message)
    for widget, _ in forged:
        n = sum(1 for w, _ in forged if w is widget)
        assert widget.rejected == before[id(widget)][0] + n
        assert getattr(widget, "value", None) == before[id(widget)][1]
    assert dash.tabs.selected_index == 0 and dash.tabs.titles[0] == "Performance"
    assert dict(dash.draws) == draws and dash.run.run_id == stored["goog"].run_id
    _pick(dash, dash.run_dd, stored["spx"].run_id)  # still answering
    assert dash.run.run_id == stored["spx"].run_id and _state(dash) == "ready"


def test_a_run_that_cannot_be_loaded_shows_one_line_and_keeps_the_run_on_show(tmp_path):
    store = wb.SQLiteStore(tmp_path / "s.sqlite")
    good = wb.backtest("sma_crossover", "GOOG", {"fast": 10, "slow": 30}, store=store)
    bad = wb.backtest(UserSMA(fast=5, slow=20), "GOOG", store=store)  # newest, but not loadable untrusted
    dash = pf.PortfolioReview(store=store)
    assert dash.run.run_id == good.run_id and "skipped" in dash.status.widget.value
    _pick(dash, dash.run_dd, bad.run_id)
    assert _state(dash) == "error" and "trusted=True" in dash.status.widget.value
    assert dash.run_dd.value == good.run_id and dash.run.run_id == good.run_id


def test_an_empty_store_says_so_and_runs_the_sample_book(tmp_path):
    store = wb.SQLiteStore(tmp_path / "empty.sqlite")
    dash = pf.PortfolioReview(store=store)
    assert dash.run is None and dash.run_dd.options == () and _state(dash) == "ready"
    assert "No backtest runs in the experiment store" in dash.html["note"].value
    assert dash.tabs.layout.display == "none" and dash.figures == {}
    dash.sample_btn.click()
    rows = wb.runs(kind="backtest", store=store)
    assert len(rows) == 1 and rows["strategy"].iloc[0] == "MultiStrategy"
    assert dash.run_dd.value == rows["run_id"].iloc[0] == dash.run.run_id
    assert dash.tabs.layout.display is None and "equity" in dash.figures and dash.html["note"].value == ""
    _show_tab(dash, "Attribution")
    assert {"trend", "rotation"} <= {t.name for t in dash.figures["sleeves"].data}


def test_refresh_lists_a_run_stored_after_opening_and_keeps_the_run_on_show(tmp_path):
    store = wb.SQLiteStore(tmp_path / "s.sqlite")
    first = wb.backtest("sma_crossover", "GOOG", {"fast": 10, "slow": 30}, store=store)
    dash = pf.PortfolioReview(store=store)
    later = wb.backtest("sma_crossover", "SPX", {"fast": 20, "slow": 100}, store=store)
    assert [v for _, v in dash.run_dd.options] == [first.run_id]
    dash.refresh_btn.click()
    assert [v for _, v in dash.run_dd.options] == [later.run_id, first.run_id]
    assert dash.run.run_id == first.run_id == dash.run_dd.value and dict(dash.draws) == {"performance": 1}
    assert [v for _, v in dash.compare_dd.options] == ["", later.run_id] and "2 runs listed" in dash.status.widget.value


def test_with_the_store_off_the_sample_book_is_kept_in_this_session():
    dash = pf.PortfolioReview(store=None)
    assert "the experiment store is off" in dash.html["note"].value
    dash.sample_btn.click()
    (label, run_id), = dash.run_dd.options
    assert "not stored" in label and dash.run.run_id == run_id and _state(dash) == "ready"
    eq = dash.run.result.equity
    np.testing.assert_allclose(dash.figures["equity"].data[0].y, (eq / eq.iloc[0]).to_numpy())


def test_a_bad_argument_names_the_rule():
    with pytest.raises(wb.ParameterError, match="max_runs must be an integer >= 1, got max_runs=0"):
        pf.PortfolioReview(store=None, max_runs=0)
    with pytest.raises(wb.ParameterError, match="store must be an SQLiteStore"):
        pf.PortfolioReview(store=wb.MemoryStore())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fast=st.integers(2, 30), gap=st.integers(5, 60), start=st.integers(0, 1500), short=st.booleans())
def test_pnl_by_asset_rows_sum_to_the_equity_change_and_match_the_cash_flows(goog, fast, gap, start, short):
    bars = goog.iloc[start : start + 400]
    r = wb.backtest("sma_crossover", bars, {"fast": fast, "slow": fast + gap, "allow_short": short},
                    commission=0.002, store=None)  # fmt: skip
    closes = pf.closes_of(r, bars)
    pnl = pf.pnl_by_asset(r, closes)
    change = r.equity.diff().fillna(r.equity.iloc[0] - r.spec.cash)
    np.testing.assert_allclose(pnl.sum(axis=1), change, atol=1e-6)
    assert np.abs(pnl["other"]).max() < 1e-6  # a cash account: nothing moves equity but the position
    f = r.fills
    sign = np.where(f["side"] == "BUY", 1.0, -1.0)
    flows = -(sign * f["quantity"] * f["price"]).sum() - f["fee"].sum()
    assert pnl["GOOG.SAMPLE"].sum() == pytest.approx(flows + r.positions.iloc[-1] * bars["Close"].iloc[-1], abs=1e-6)
    w = pf.exposures(r, closes)
    by_hand = r.positions * bars["Close"] / r.equity
    np.testing.assert_allclose(w["GOOG.SAMPLE"], by_hand)
    np.testing.assert_allclose(w["gross"], by_hand.abs())  # short runs: gross is |exposure|, net keeps the sign
    np.testing.assert_allclose(w["net"], by_hand)


# -- in the browser -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def page(stored, chromium):
    """One served notebook (as `workbench dashboard` serves it, on the module's store) and one page on it."""
    import time

    with serve(NOTEBOOK, env={"WORKBENCH_STORE": str(stored["store"].path)}) as server:
        started = time.perf_counter()
        p = open_page(chromium, server.url)
        p.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(el => el.layout &&"
                            " String(el.layout.title.text || '').includes('equity vs benchmark'))", timeout=120_000)  # fmt: skip
        p.first_paint_s = time.perf_counter() - started
        print(f"\nportfolio dashboard: first chart {p.first_paint_s:.2f} s after the page was asked for")
        yield p
        p.close()


def _gen(page) -> int:  # noqa: ANN001
    return page.evaluate("() => Number(document.querySelector('.wb-status [data-state]').dataset.gen)")


def _act(page, action) -> None:  # noqa: ANN001
    """Do one thing on the page and wait for the kernel's answer to it."""
    before = _gen(page)
    action()
    wait_generation(page, before)


def _tab(page, name: str) -> None:  # noqa: ANN001
    _act(page, lambda: page.locator(".wb-tabs .lm-TabBar-tab", has_text=name).first.click())


def _layout(page, title: str) -> dict:  # noqa: ANN001
    return page.evaluate("(t) => { for (const el of document.querySelectorAll('.js-plotly-plot'))"
                         " if (String(el.layout.title.text || '').includes(t)) return {y: el.layout.yaxis.type};"
                         " return null; }", title)  # fmt: skip


def _browser(test):  # noqa: ANN001, ANN202
    for mark in needs_chromium:  # the kernel-level tests above run without a browser
        test = mark(test)
    return test


@_browser
def test_page_shows_the_newest_run_against_a_chosen_benchmark(page, stored):
    eq = stored["goog"].equity
    traces = plot_data(page, "equity vs benchmark")
    assert [t["name"] for t in traces] == ["SMACrossover on GOOG", "GOOG buy & hold"]
    np.testing.assert_allclose(traces[0]["y"], (eq / eq.iloc[0]).to_numpy())
    assert stored["goog"].run_id in page.locator(".wb-run select option:checked").text_content()
    screenshot(page, "dashboard_portfolio-performance")
    _act(page, lambda: page.locator(".wb-benchmark select").select_option(label="SPX buy & hold"))
    assert plot_data(page, "equity vs benchmark")[1]["name"] == "SPX buy & hold"
    assert _layout(page, "equity vs benchmark") == {"y": "linear"}
    _act(page, lambda: page.locator(".wb-log input[type=checkbox]").check())
    assert _layout(page, "equity vs benchmark") == {"y": "log"}
    assert min(plot_data(page, "drawdown")[0]["y"]) == pytest.approx((eq / eq.cummax() - 1).min())
    screenshot(page, "dashboard_portfolio-log-spx")


@_browser
def test_page_trades_tab_drills_down_to_the_fills(page, stored):
    goog = stored["goog"]
    _tab(page, "Trades")
    assert page.locator(".wb-trades-table tbody tr").count() == len(goog.trades)
    assert plot_data(page, "trade #1:") is not None
    _act(page, lambda: page.locator(".wb-trade select").select_option(index=4))
    t = goog.trades.iloc[4]
    sells = next(d for d in plot_data(page, "trade #5:") if d["name"] == "sell fills")
    exit_fill = goog.fills[(goog.fills["ts"] == t["exit_time"]) & (goog.fills["side"] == "SELL")]
    assert exit_fill["price"].iloc[0] in sells["y"]
    assert f"{t['exit_price']:,.2f}" in page.locator(".wb-fills-table").text_content()
    screenshot(page, "dashboard_portfolio-trade")


@_browser
def test_page_switches_to_the_book_and_splits_its_pnl(page, stored):
    book = stored["book"]
    _tab(page, "Positions")
    assert [d["name"] for d in plot_data(page, "exposure")] == ["GOOG.SAMPLE", "gross", "net"]
    label = next(lab for lab, v in pf.PortfolioReview(store=stored["store"]).run_dd.options if v == book.run_id)
    _act(page, lambda: page.locator(".wb-run select").select_option(label=label))
    assert [d["name"] for d in plot_data(page, "exposure")] == ["SPX.SAMPLE", "GOOG.SAMPLE", "IXIC.SAMPLE", "gross", "net"]
    screenshot(page, "dashboard_portfolio-exposure-book")
    _tab(page, "Attribution")
    sleeves = plot_data(page, "by sleeve")
    assert {"trend", "rotation", "book"} <= {d["name"] for d in sleeves}
    total = next(d for d in plot_data(page, "P&L by asset") if d["name"] == "total")
    assert total["y"][-1] == pytest.approx(book.equity.iloc[-1] - book.spec.cash, abs=1e-6)
    screenshot(page, "dashboard_portfolio-attribution")


@_browser
def test_page_monthly_and_compare_tabs(page, stored):
    book, spx = stored["book"], stored["spx"]
    _tab(page, "Monthly")
    heat = plot_data(page, "monthly returns")[0]
    r = book.returns.dropna()
    jan_2010 = (1 + r.loc["2010-01"]).prod() - 1
    years = [str(y) for y in range(2004, 2014)]
    assert heat["z"][years.index("2010")][0] == pytest.approx(jan_2010)
    screenshot(page, "dashboard_portfolio-monthly")
    _tab(page, "Compare")
    label = next(lab for lab, v in pf.PortfolioReview(store=stored["store"]).run_dd.options if v == spx.run_id)
    _act(page, lambda: page.locator(".wb-compare select").select_option(label=label))
    traces = plot_data(page, "compare two runs")
    assert len(traces) == 2
    np.testing.assert_allclose(traces[1]["y"], (spx.equity / spx.equity.iloc[0]).to_numpy())
    assert "final equity / starting cash - 1" in page.locator(".wb-compare-table").text_content()
    screenshot(page, "dashboard_portfolio-compare")
    assert page.external == [] and page.errors == []
