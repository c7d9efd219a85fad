"""The strategy lab: parameter widgets generated from each strategy's fields, a backtest on
demand, figures and tables checked against independent numbers; then the same in Chromium.

Kernel-level tests drive :class:`StrategyLab` as the page would (``set_state`` with the key a
user's action sends) on a temporary store, and record every figure it draws by swapping the
module's ``show_figure`` for a recorder (a fake, not a mock): what a test reads is what the
page would get.
"""

from __future__ import annotations

import dataclasses
import enum
import html
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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
    plot_titles,
    screenshot,
    serve,
    status_state,
    wait_generation,
)
from workbench.dashboards import lab as lab_module
from workbench.dashboards.lab import DataNeed, StrategyLab, buy_and_hold, data_need, param_controls
from workbench.errors import ParameterError
from workbench.strategies import BUILTINS, MeanReversion, SMACrossover, TimeSeriesMomentum
from workbench.strategy.base import Strategy, check_int
from workbench.strategy.metrics import STAT_CONVENTIONS

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = (SMACrossover(), TimeSeriesMomentum(), MeanReversion())  # the lab's stated ensemble members


# -- helpers --------------------------------------------------------------------------------
@pytest.fixture
def drawn(monkeypatch):
    """Every (output widget, figure) the lab draws, in order."""
    calls: list[tuple[object, object]] = []
    monkeypatch.setattr(lab_module, "show_figure", lambda out, fig: calls.append((out, fig)))
    return calls


def figures_in(calls, out) -> list:
    return [fig for o, fig in calls if o is out]


def state(lab: StrategyLab) -> tuple[str, str]:
    """(data-state, text) of the status line."""
    value = lab.status.widget.value
    found = re.search(r"data-state='(\w+)'", value)
    return found.group(1), html.unescape(re.sub(r"<[^>]+>", "", value))


@pytest.fixture
def store(tmp_path):
    return wb.SQLiteStore(tmp_path / "s.sqlite")


@pytest.fixture
def lab(store, drawn):
    return StrategyLab(store=store)


def independent(strategy, prices, commission=0.001, **kw):
    return wb.backtest(strategy, prices, store=None, commission=commission, **kw)


def pick(widget, *labels):
    """Select options by label as the page does: their indices."""
    idx = [list(widget.options).index(x) for x in labels]
    widget.set_state({"index": idx if isinstance(widget, wb.dashboards.GuardedSelectMultiple) else idx[0]})


# -- on load --------------------------------------------------------------------------------
def test_lab_on_load_draws_the_default_run_against_hand_computed_curves(store, drawn, goog):
    lab = StrategyLab(store=store)
    expected = independent("sma_crossover", goog)
    assert state(lab)[0] == "ready" and lab.result.run_id == expected.run_id
    pd.testing.assert_series_equal(lab.result.stats, expected.stats)
    assert store.runs() == []  # the load-time run is a view, not kept
    (equity,) = figures_in(drawn, lab.equity_out)
    (dd,) = figures_in(drawn, lab.drawdown_out)
    assert len(figures_in(drawn, lab.price_out)) == 1  # each figure drawn once
    eq = expected.equity
    np.testing.assert_allclose(equity.data[0].y, (eq / eq.iloc[0]).to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(equity.data[1].y, (goog["Close"] / goog["Close"].iloc[0]).to_numpy(), rtol=1e-12)
    assert float(np.min(dd.data[0].y)) == pytest.approx(float((eq / eq.cummax() - 1).min()), abs=1e-12)
    assert float(np.min(dd.data[0].y)) == pytest.approx(float(expected.stats["max_drawdown"]), abs=1e-12)
    close = goog["Close"]
    assert float(np.min(dd.data[1].y)) == pytest.approx(float((close / close.cummax() - 1).min()), abs=1e-12)
    assert "growth of 1" in equity.layout.title.text and "growth of 1" in equity.layout.yaxis.title.text
    assert equity.layout.yaxis.type == "linear" and dd.layout.yaxis.tickformat == ".0%"


def test_lab_stats_and_trades_tables_are_formatted_with_the_tearsheet_conventions(lab, goog):
    r = lab.result
    total = r.stats["final_equity"] / r.spec.cash - 1
    stats = lab.stats_html.value
    assert f"{total * 100:.1f} %" in stats  # total return as the tearsheet formats it
    assert html.escape(STAT_CONVENTIONS["sharpe"]) in stats and "buy &amp; hold" in stats
    bench_total = goog["Close"].iloc[-1] / goog["Close"].iloc[0] - 1
    assert f"{bench_total * 100:.1f} %" in stats  # the benchmark column: buy & hold
    rows = [row for row in re.findall(r"<tr>(.*?)</tr>", lab.trades_html.value) if "<td>" in row]
    assert len(rows) == len(r.trades)
    first = re.findall(r"<td>(.*?)</td>", rows[0])
    t = r.trades.iloc[0]
    assert first[7] == f"{t['pnl']:,.2f}" and first[3] == f"{t['entry_time']:%Y-%m-%d}"
    assert first[8] == f"{t['return'] * 100:.1f} %"
    assert "open at the end" in stats  # the position still open on the last bar is named


def test_lab_price_chart_marks_the_trades_entries_and_exits(lab, drawn, goog):
    (fig,) = figures_in(drawn, lab.price_out)
    trades = lab.result.trades
    names = [t.name for t in fig.data]
    assert names == ["close", "long entry", "short entry", "exit"]
    np.testing.assert_allclose(fig.data[0].y, goog["Close"].to_numpy())
    longs = pd.DatetimeIndex(fig.data[1].x).tz_localize("UTC")
    assert list(longs) == list(trades["entry_time"])  # all long: allow_short is off
    np.testing.assert_allclose(fig.data[3].y, trades["exit_price"].to_numpy())
    assert len(fig.data[2].x) == 0


# -- parameters from the strategy's fields -------------------------------------------------
EXPECTED_NEEDS = {"xs_momentum": DataNeed.PANEL, "pairs": DataNeed.PAIR, "arbitrage": DataNeed.VENUES}
WIDGET_FOR = {bool: wb.dashboards.GuardedCheckbox, int: wb.dashboards.GuardedIntText,
              float: wb.dashboards.GuardedFloatText, str: wb.dashboards.GuardedText}  # fmt: skip


@pytest.mark.parametrize("key", sorted(BUILTINS))
def test_lab_builds_one_widget_per_field_with_its_default(key, drawn):
    cls = BUILTINS[key]
    lab = StrategyLab(store=None, run_on_load=False)
    pick(lab.strategy_dd, key)
    fields = dataclasses.fields(cls)
    assert [c.name for c in lab.controls] == [f.name for f in fields]
    for f, control in zip(fields, lab.controls, strict=True):
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.name in ("members", "weights"):
            assert not control.editable and "read-only" in control.widget.value
        elif f.name == "min_agree":  # int | None: a text box, empty = None
            assert isinstance(control.widget, wb.dashboards.GuardedText) and control.read() is None
        else:
            assert isinstance(control.widget, WIDGET_FOR[type(default)]) and control.widget.value == default
            assert f"wb-param-{f.name}" in control.widget._dom_classes
    built = lab.strategy()
    expected = cls(**({"members": MEMBERS} if "members" in {f.name for f in fields} else {}))
    assert built.params == expected.params and built.spec_id == expected.spec_id
    assert data_need(cls) == lab.need == EXPECTED_NEEDS.get(key, DataNeed.SYMBOL)
    shown = {DataNeed.SYMBOL: lab.symbol_dd, DataNeed.PAIR: lab.pair_select, DataNeed.PANEL: lab.panel_select,
             DataNeed.VENUES: lab.venue_dd}[lab.need]  # fmt: skip
    assert lab.data_box.children == (shown,)


def _default_data(key: str):
    need = EXPECTED_NEEDS.get(key, DataNeed.SYMBOL)
    if need is DataNeed.PAIR:
        return wb.load_prices(["IXIC", "SPX"], progress=False)
    if need is DataNeed.PANEL:
        return wb.load_prices(["GOOG", "IXIC", "SPX", "WTI"], progress=False)
    if need is DataNeed.VENUES:
        return wb.two_venue_quotes(wb.load_prices("EURUSD"), seed=0)
    return wb.load_prices("GOOG")


def test_lab_runs_every_builtin_with_its_defaults_like_an_independent_backtest(store, drawn):
    lab = StrategyLab(store=store, run_on_load=False)
    for key in sorted(BUILTINS):
        pick(lab.strategy_dd, key)
        result = lab.run()
        assert state(lab)[0] == "ready", (key, state(lab))
        params = {"members": MEMBERS} if "members" in lab.params() else {}
        expected = independent(BUILTINS[key](**params), _default_data(key))
        assert result.run_id == expected.run_id, key
        pd.testing.assert_series_equal(result.stats, expected.stats)
    assert len(store.runs()) == len(BUILTINS)  # "keep in store" is on by default


def test_lab_parameter_change_validates_at_once_and_runs_only_on_demand(lab, drawn, goog):
    before = lab.result
    fast = lab.inputs()["param:fast"]
    gen = lab.status.generation
    fast.set_state({"value": 5})
    assert state(lab) == ("ready", "SMACrossover: parameters valid (warm-up 29 bars); press Run backtest")
    assert lab.status.generation == gen + 1 and lab.result is before  # nothing ran
    result = lab.run()
    expected = independent(SMACrossover(fast=5), goog)
    assert result.run_id == expected.run_id
    pd.testing.assert_series_equal(result.stats, expected.stats)
    eq = expected.equity
    np.testing.assert_allclose(figures_in(drawn, lab.equity_out)[-1].data[0].y, (eq / eq.iloc[0]).to_numpy())


def test_lab_shows_the_strategys_own_message_for_a_refused_value(lab):
    before = lab.result
    lab.inputs()["param:fast"].set_state({"value": 50})
    with pytest.raises(ParameterError) as own:
        SMACrossover(fast=50, slow=30)
    assert state(lab) == ("error", f"ParameterError: {own.value}")
    assert lab.run() is None and state(lab) == ("error", f"ParameterError: {own.value}")
    assert lab.result is before  # the last good run stays on the page
    lab.inputs()["param:fast"].set_state({"value": 10})
    assert state(lab)[0] == "ready" and lab.run() is not None


@pytest.fixture(scope="module")
def hyp_lab():
    return StrategyLab(store=None, run_on_load=False)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fast=st.integers(1, 60), slow=st.integers(1, 60), short=st.booleans())
def test_lab_any_window_pair_runs_like_the_library_or_shows_its_refusal(hyp_lab, goog, monkeypatch, fast, slow, short):
    monkeypatch.setattr(lab_module, "show_figure", lambda out, fig: None)
    controls = hyp_lab.inputs()
    controls["param:fast"].set_state({"value": fast})
    controls["param:slow"].set_state({"value": slow})
    controls["param:allow_short"].set_state({"value": short})
    try:
        strategy = SMACrossover(fast=fast, slow=slow, allow_short=short)
    except ParameterError as exc:
        assert hyp_lab.run() is None and state(hyp_lab) == ("error", f"ParameterError: {exc}")
        return
    result = hyp_lab.run()
    expected = independent(strategy, goog)
    assert result.run_id == expected.run_id
    pd.testing.assert_series_equal(result.stats, expected.stats)


def test_changing_the_strategy_rebuilds_the_widgets_and_drops_the_old_observers(lab):
    old = lab.inputs()["param:fast"]
    pick(lab.strategy_dd, "ema_crossover")
    assert old.comm is None  # closed: its comm is gone
    gen = lab.status.generation
    old.value = 3  # a stale widget changes nothing
    assert lab.status.generation == gen and lab.params() == {"fast": 12, "slow": 26, "allow_short": False}
    pick(lab.strategy_dd, "mean_reversion")
    assert [c.name for c in lab.controls] == ["window", "k", "rsi_window", "oversold", "overbought", "allow_short"]
    lab.inputs()["param:k"].set_state({"value": 1.5})
    assert lab.strategy() == MeanReversion(k=1.5)


@dataclass(frozen=True, kw_only=True)
class _Probe(Strategy):
    """A strategy with every field kind the lab knows (for the widget mapping)."""

    class Side(enum.Enum):
        UP = "up"
        DOWN = "down"

    window: int = 5
    mode: Literal["fast", "slow"] = "slow"
    side: Side = Side.UP
    cap: int | None = None
    scale: float | None = 0.5
    label: str = "probe"
    blob: tuple[int, ...] = (1, 2)

    def validate(self) -> None:
        check_int("window", self.window, 2)

    def target(self, prices: pd.DataFrame) -> pd.Series:
        return pd.Series(1.0, index=prices.index, name="target")


def test_literal_enum_optional_and_complex_fields_get_matching_widgets():
    controls = {c.name: c for c in param_controls(_Probe)}
    assert controls["mode"].widget.options == ("fast", "slow") and controls["mode"].read() == "slow"
    assert controls["side"].read() is _Probe.Side.UP
    assert isinstance(controls["cap"].widget, wb.dashboards.GuardedText) and controls["cap"].read() is None
    controls["cap"].widget.set_state({"value": "7"})
    controls["scale"].widget.set_state({"value": ""})
    assert controls["cap"].read() == 7 and controls["scale"].read() is None
    controls["cap"].widget.set_state({"value": "seven"})  # not an integer: refused by the box
    assert controls["cap"].widget.rejected == 1 and controls["cap"].read() == 7
    assert not controls["blob"].editable and controls["blob"].read() == (1, 2) and "(1, 2)" in controls["blob"].widget.value
    assert controls["label"].read() == "probe"
    controls["side"].widget.set_state({"index": 1})
    controls["mode"].widget.set_state({"index": 0})
    built = _Probe(**{name: c.read() for name, c in controls.items()})
    assert (built.side, built.mode, built.cap, built.scale) == (_Probe.Side.DOWN, "fast", 7, None)


def test_a_custom_registry_runs_and_its_own_validate_is_the_rule(store, drawn, goog):
    lab = StrategyLab(store=store, strategies={"probe": _Probe}, run_on_load=False)
    lab.inputs()["param:window"].set_state({"value": 1})
    assert state(lab) == ("error", "ParameterError: window must be >= 2, got window=1")
    lab.inputs()["param:window"].set_state({"value": 3})
    result = lab.run(keep=False)
    assert result.stats["n_trades"] == 0 and store.runs() == []
    assert "no closed trades" in lab.trades_html.value


# -- data, dates, costs, engine, store -----------------------------------------------------
def test_pairs_takes_exactly_two_symbols_in_list_order(lab, drawn):
    pick(lab.strategy_dd, "pairs")
    pick(lab.pair_select, "GOOG", "SPX")
    result = lab.run()
    expected = independent("pairs", wb.load_prices(["GOOG", "SPX"], progress=False))
    assert result.run_id == expected.run_id and list(result.spec.symbols) == ["GOOG", "SPX"]
    before = lab.pair_select.rejected
    lab.pair_select.set_state({"index": [0, 1, 2]})  # three: refused by the widget's rule
    assert lab.pair_select.rejected == before + 1 and lab.pair_select.value == ("GOOG", "SPX")
    pick(lab.pair_select, "SPX")
    assert lab.run() is None
    assert state(lab) == ("error", "ParameterError: PairsTrading trades exactly two symbols (y = the first in list "
                                   "order, x = the second): pick at least 2 symbols, got ['SPX']")  # fmt: skip


def test_xs_momentum_panel_and_the_price_symbol_choice(lab, drawn):
    pick(lab.strategy_dd, "xs_momentum")
    pick(lab.panel_select, "GOOG", "IXIC", "SPX")
    result = lab.run()
    panel = wb.load_prices(["GOOG", "IXIC", "SPX"], progress=False)
    assert result.run_id == independent("xs_momentum", panel).run_id
    assert lab.price_dd.options == ("GOOG", "IXIC", "SPX")
    n_price = len(figures_in(drawn, lab.price_out))
    pick(lab.price_dd, "SPX")
    assert len(figures_in(drawn, lab.price_out)) == n_price + 1  # one redraw, of the price chart only
    fig = figures_in(drawn, lab.price_out)[-1]
    assert fig.layout.title.text.endswith("SPX")
    np.testing.assert_allclose(fig.data[0].y, panel[("SPX", "Close")].to_numpy())
    spx = result.trades[result.trades["symbol"] == "SPX.SAMPLE"]
    assert len(fig.data[3].x) == len(spx)
    equity = figures_in(drawn, lab.equity_out)[-1]
    closes = panel.xs("Close", axis=1, level=1)
    np.testing.assert_allclose(equity.data[1].y, (closes / closes.iloc[0]).mean(axis=1).to_numpy())
    lab.inputs()["param:top_k"].set_state({"value": 4})
    assert lab.run() is None and "top_k must be <= the number of symbols (3), got top_k=4" in state(lab)[1]


def test_arbitrage_trades_one_asset_on_two_seeded_venues(lab, drawn):
    pick(lab.strategy_dd, "arbitrage")
    assert "seed 0" in lab.data_note.value
    pick(lab.venue_dd, "EURUSD")
    result = lab.run()
    venues = wb.two_venue_quotes(wb.load_prices("EURUSD"), seed=0)
    assert result.run_id == independent("arbitrage", venues).run_id
    assert lab.price_dd.options == ("EURUSD@A", "EURUSD@B")
    pick(lab.price_dd, "EURUSD@B")
    np.testing.assert_allclose(figures_in(drawn, lab.price_out)[-1].data[0].y, venues[("EURUSD@B", "Close")].to_numpy())


def test_date_range_bounds_the_bars_and_bad_dates_are_named(lab, goog):
    lab.start_text.set_state({"value": "2008-01-01"})
    lab.end_text.set_state({"value": "2009-12-31"})
    result = lab.run()
    window = goog.loc["2008-01-01":"2009-12-31"]
    assert result.equity.index[0] == window.index[0] and result.equity.index[-1] == window.index[-1]
    assert result.run_id == independent("sma_crossover", wb.load_prices("GOOG", start="2008-01-01",
                                                                        end="2009-12-31")).run_id  # fmt: skip
    before = lab.start_text.rejected
    lab.start_text.set_state({"value": "2008/01/01"})  # not YYYY-MM-DD: refused by the box
    assert lab.start_text.rejected == before + 1 and lab.start_text.value == "2008-01-01"
    lab.start_text.set_state({"value": "2008-02-30"})
    assert lab.run() is None and state(lab) == ("error", "ParameterError: start must be a date or timestamp, "
                                                         "got '2008-02-30'")  # fmt: skip
    lab.start_text.set_state({"value": "2010-01-01"})
    assert lab.run() is None and state(lab) == ("error", "ParameterError: StrategyLab: start must be before end, "
                                                         "got start=2010-01-01, end=2009-12-31")  # fmt: skip


def test_commission_is_basis_points_of_notional(lab, goog):
    lab.commission_bps.set_state({"value": 0.0})
    free = lab.run()
    assert free.run_id == independent("sma_crossover", goog, commission=0.0).run_id
    assert float(free.fills["fee"].sum()) == 0.0
    lab.commission_bps.set_state({"value": 25.0})
    paid = lab.run()
    notional = (paid.fills["quantity"] * paid.fills["price"]).to_numpy()
    np.testing.assert_allclose(paid.fills["fee"].to_numpy(), notional * 25 / 1e4, rtol=1e-9)
    assert lab.commission_bps.max == 1000.0
    lab.commission_bps.set_state({"value": 5000.0})  # beyond the box's bound: refused, not clamped
    assert lab.commission_bps.value == 25.0


def test_vectorized_engine_gives_the_same_run_as_the_event_engine(lab):
    event = lab.result
    lab.engine_tb.set_state({"index": list(lab.engine_tb.options).index("vectorized")})
    vector = lab.run()
    assert vector.spec.engine == "vectorized" and vector.id == event.id  # one spec id across engines
    assert vector.stats["total_return"] == pytest.approx(event.stats["total_return"], rel=1e-6)
    assert lab.history[0]["engine"] == "vectorized"


def test_keep_in_store_keeps_runs_reproducibly_and_the_tick_box_opts_out(lab, store):
    first = lab.run()
    assert store.runs() == [first.run_id] and first.run_id in lab.run_info.value
    again = lab.run()
    assert again.run_id == first.run_id  # same params, same run
    pd.testing.assert_series_equal(again.stats, first.stats)
    assert store.runs() == [first.run_id]  # the same run replaces its row
    pd.testing.assert_series_equal(store.load(first.run_id).stats, first.stats, check_exact=False, check_names=False)
    assert "kept in the store (1 stored run(s) of this spec)" in lab.run_info.value
    lab.keep_cb.set_state({"value": False})
    lab.inputs()["param:fast"].set_state({"value": 7})
    other = lab.run()
    assert store.runs() == [first.run_id] and "not kept" in lab.run_info.value
    assert [row["run id"] for row in lab.history[:3]] == [other.run_id, first.run_id, first.run_id]


def test_without_a_store_the_tick_box_is_off_and_runs_still_work(drawn, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", "off")
    lab = StrategyLab()
    assert lab.store is None and lab.keep_cb.value is False and lab.keep_cb.disabled
    assert "WORKBENCH_STORE=off" in lab.store_note.value
    lab.keep_cb.set_state({"value": True})  # a page that ticks it anyway keeps nothing
    assert lab.run() is not None and "not kept" in lab.run_info.value


def test_a_store_that_cannot_be_opened_is_named_and_the_lab_still_runs(tmp_path, drawn, monkeypatch):
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not a database")
    monkeypatch.setenv("WORKBENCH_STORE", str(bad))
    lab = StrategyLab()
    assert lab.store is None and lab.keep_cb.disabled and "file is not a database" in lab.store_note.value
    assert state(lab)[0] == "ready" and lab.result is not None


def test_log_scale_and_tearsheet_panels_redraw_only_their_figures(lab, drawn, goog):
    counts = {o: len(figures_in(drawn, o)) for o in (lab.equity_out, lab.drawdown_out, lab.price_out)}
    lab.log_cb.set_state({"value": True})
    assert figures_in(drawn, lab.equity_out)[-1].layout.yaxis.type == "log"
    assert len(figures_in(drawn, lab.equity_out)) == counts[lab.equity_out] + 1
    assert len(figures_in(drawn, lab.drawdown_out)) == counts[lab.drawdown_out]
    lab.panels_cb.set_state({"value": True})
    monthly, yearly, *_ = (figures_in(drawn, o)[-1] for o in lab.panel_outs)
    r = lab.result.returns.dropna()
    by_hand = (1 + r).groupby([r.index.year, r.index.month]).prod() - 1  # compounded calendar months (UTC)
    z = np.asarray(monthly.data[0].z, dtype=float)
    years = [int(y) for y in monthly.data[0].y]
    assert z[years.index(2008), 9] == pytest.approx(by_hand[(2008, 10)], abs=1e-12)
    assert np.isnan(z[years.index(2004), 0])  # January 2004: before the data, blank
    assert len(figures_in(drawn, lab.price_out)) == counts[lab.price_out]


# -- forged messages ----------------------------------------------------------------------
FORGED = {
    wb.dashboards.GuardedDropdown: [{"index": 99}, {"index": None}, {"index": -1}, {"value": "x"},
                                    {"_options_labels": ["x"]}],
    wb.dashboards.GuardedToggleButtons: [{"index": 7}, {"index": "0"}, {"disabled": True}],
    wb.dashboards.GuardedSelectMultiple: [{"index": [99]}, {"index": [0, 0]}, {"index": "0"}, {"rows": 1}],
    wb.dashboards.GuardedIntText: [{"value": 1.5}, {"value": "3"}, {"value": 2**40}, {"value": True}, {"max": 5}],
    wb.dashboards.GuardedFloatText: [{"value": float("nan")}, {"value": float("inf")}, {"value": "1"},
                                     {"value": 2e12}, {"min": 0}],
    wb.dashboards.GuardedCheckbox: [{"value": "yes"}, {"value": 1}, {"disabled": False}],
    wb.dashboards.GuardedText: [{"value": "<script>alert(1)</script>"}, {"value": "1" * 300}, {"value": 5},
                                {"placeholder": "x"}],
}  # fmt: skip


@pytest.mark.parametrize("key", ["sma_crossover", "stacked_signal", "vote", "pairs"])
def test_forged_messages_to_every_input_are_refused_and_the_lab_keeps_working(store, drawn, key):
    lab = StrategyLab(store=store, run_on_load=False)
    pick(lab.strategy_dd, key)
    inputs = lab.inputs()
    assert {type(w) for w in inputs.values()} <= set(FORGED)  # every input is a guarded widget
    before = {name: (w.get_state().get("index", None), w.get_state().get("value", None)) for name, w in inputs.items()}
    params = lab.params()
    for name, widget in inputs.items():
        for message in FORGED[type(widget)]:
            n = widget.rejected
            widget.set_state(message)
            assert widget.rejected == n + 1, (name, message)
    after = {name: (w.get_state().get("index", None), w.get_state().get("value", None)) for name, w in inputs.items()}
    assert after == before and lab.params() == params and lab.strategy_dd.value == key
    result = lab.run()
    assert result is not None and state(lab)[0] == "ready"
    assert result.spec.strategy.params == lab.strategy().params


def test_store_text_is_escaped_in_the_tables(lab, drawn):
    lab.history.insert(0, dict(lab.history[0], strategy="<b>x</b>"))
    lab._draw_history()
    assert "<b>x</b>" not in lab.history_html.value and "&lt;b&gt;x&lt;/b&gt;" in lab.history_html.value


def test_buy_and_hold_is_the_mean_of_each_symbols_growth():
    idx = pd.date_range("2024-01-01", periods=3, tz="UTC")
    panel = pd.concat({"A": pd.DataFrame({"Close": [10.0, 20.0, 5.0]}, index=idx),
                       "B": pd.DataFrame({"Close": [4.0, 4.0, 6.0]}, index=idx)}, axis=1)  # fmt: skip
    assert buy_and_hold(panel).tolist() == [1.0, 1.5, 1.0]  # (2 + 1)/2, (0.5 + 1.5)/2


# -- in Chromium --------------------------------------------------------------------------
def browser(fn):
    for mark in needs_chromium:
        fn = mark(fn)
    return fn


@pytest.fixture(scope="module")
def lab_page(chromium, tmp_path_factory):
    store_path = tmp_path_factory.mktemp("lab-store") / "s.sqlite"
    with serve(ROOT / "notebooks" / "dashboard_lab.ipynb", env={"WORKBENCH_STORE": str(store_path)},
               preheat=False) as server:  # fmt: skip  (Voila 0.5.13 pre-heat can truncate a page)
        page = open_page(chromium, server.url, height=3000)  # tall: Voila scrolls inside its page, shots show all
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3",
                               timeout=120_000)  # fmt: skip
        yield page, store_path
        page.close()


def traces(page, title_contains: str) -> list[dict]:
    """The decoded traces of the figure whose title contains the text. plotly.js keeps a
    numpy array's base64 form (``{dtype, bdata}``) in ``el.data``, which ``plot_data`` reads
    as empty, so this reads ``el._fullData`` (the arrays plotly.js drew)."""
    found = page.evaluate(
        "(t) => { for (const el of document.querySelectorAll('.js-plotly-plot')) {"
        "  if (String((el.layout.title && el.layout.title.text) || '').includes(t))"
        "    return el._fullData.map(d => ({name: d.name, x: Array.from(d.x || [], String), y: Array.from(d.y || [])}));"
        " } return null; }", title_contains)  # fmt: skip
    assert found is not None, f"no figure titled like {title_contains!r}: {plot_titles(page)}"
    assert [t["name"] for t in plot_data(page, title_contains)] == [t["name"] for t in found]
    return found


def _last_growth(page) -> float:
    return traces(page, "growth of 1")[0]["y"][-1]


def _run(page, gen: int) -> int:
    page.locator("button.wb-run").click()
    return wait_generation(page, gen)


@browser
def test_lab_in_chromium_each_control_changes_the_page(lab_page):
    page, store_path = lab_page
    assert {"growth of 1: SMACrossover vs buy & hold (GOOG)", "price with entries and exits: GOOG"} <= set(plot_titles(page))
    assert page.locator(".wb-strategy select option").count() == len(BUILTINS)
    goog = wb.load_prices("GOOG")
    default = independent("sma_crossover", goog)
    assert _last_growth(page) == pytest.approx(default.equity.iloc[-1] / default.equity.iloc[0], rel=1e-12)
    screenshot(page, "dashboard_lab-initial")
    gen = wait_generation(page, -1)

    page.locator(".wb-param-fast input").fill("5")  # a parameter: validated, not run
    page.locator(".wb-param-fast input").press("Enter")
    gen = wait_generation(page, gen)
    assert "parameters valid" in page.locator(".wb-status").inner_text()
    page.locator(".wb-commission input").fill("0")
    page.locator(".wb-commission input").press("Enter")
    gen = _run(page, gen)
    fast5 = independent(SMACrossover(fast=5), goog, commission=0.0)
    assert _last_growth(page) == pytest.approx(fast5.equity.iloc[-1] / fast5.equity.iloc[0], rel=1e-12)
    assert fast5.run_id in page.locator(".wb-status").inner_text()
    assert wb.SQLiteStore(store_path).runs() == [fast5.run_id]  # kept: the tick box is on

    page.locator(".wb-param-fast input").fill("50")  # refused by the strategy: its own message
    page.locator(".wb-param-fast input").press("Enter")
    gen = wait_generation(page, gen)
    assert status_state(page) == "error"
    assert "fast must be < slow, got fast=50, slow=30" in page.locator(".wb-status").inner_text()
    screenshot(page, "dashboard_lab-refused")

    page.locator(".wb-start input").fill("2010-01-01")  # dates bound the bars
    page.locator(".wb-start input").press("Enter")
    page.locator(".wb-param-fast input").fill("10")
    page.locator(".wb-param-fast input").press("Enter")
    gen = wait_generation(page, gen)
    gen = _run(page, gen)
    first_x = traces(page, "growth of 1")[0]["x"][0]
    assert first_x.startswith("2010-01-04")

    page.locator(".wb-log input[type=checkbox]").check()  # log scale: the same numbers on a log axis
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(el => "
                           "String(el.layout.title.text).startsWith('growth of 1') && el.layout.yaxis.type === 'log')",
                           timeout=30_000)  # fmt: skip

    page.locator(".wb-strategy select").select_option("pairs")  # widgets rebuilt from PairsTrading's fields
    gen = wait_generation(page, gen)
    assert page.locator(".wb-param-fast").count() == 0 and page.locator(".wb-param-z_window input").count() == 1
    page.locator(".wb-pair select").select_option(["IXIC", "SPX"])
    gen = _run(page, gen)
    assert "price with entries and exits: IXIC" in plot_titles(page)
    pair = independent("pairs", wb.load_prices(["IXIC", "SPX"], start="2010-01-01", progress=False), commission=0.0)
    assert _last_growth(page) == pytest.approx(pair.equity.iloc[-1] / pair.equity.iloc[0], rel=1e-12)
    page.locator(".wb-price-symbol select").select_option("SPX")
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(el => "
                           "String(el.layout.title.text) === 'price with entries and exits: SPX')", timeout=30_000)
    screenshot(page, "dashboard_lab-pairs")
    assert len(wb.SQLiteStore(store_path).runs()) == 3


@browser
def test_lab_in_chromium_requests_nothing_from_other_hosts(lab_page):
    page, _ = lab_page
    time.sleep(0.5)  # let any late request show
    assert page.errors == []
    assert page.external == []
