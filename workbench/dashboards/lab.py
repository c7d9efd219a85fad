"""The strategy lab: any built-in strategy, its parameters as widgets made from its own fields,
a backtest on demand.

Why generated widgets: a strategy's parameters are its frozen dataclass fields, and its
``validate()`` is the one rule for them. The lab reads the fields (types and defaults) to
build one input per field and hands the values back to the class: the widgets' own bounds
are deliberately wide (they only refuse what no field could hold), and whatever the
strategy refuses is shown in the status line with the strategy's own message, never a
copy of its rule. Nothing runs on a keystroke: "Run backtest" does, and on load the
default strategy runs once (SMA crossover on GOOG: a few hundredths of a second), so the
first chart is cheap.

Conventions (also written on the page, beside the numbers they govern)
-----------------------------------------------------------------------
- **Growth of 1**: equity / equity at the first close (the run starts in cash, its
  first order fills at the next open). **Buy & hold**: equal amounts of every data
  symbol bought at the first close and never rebalanced, i.e. the mean of
  close / first close (one symbol: close / first close).
- **Drawdown**: equity / running peak of equity - 1 at each close, a fraction <= 0.
- **Commission**: basis points of traded notional per fill (10 bps = 0.001 of notional,
  the spec's ``PercentOfNotional``).
- **Stats**: ``result.stats`` formatted by :mod:`workbench.tearsheets` (fractions as
  percentages, durations in days), each with its convention; the benchmark column is
  buy & hold with the same metric functions, periods per year and risk-free rate.
- **Trades**: closed trades; P&L net of fees in the account currency, return = that P&L /
  the entry notional (quantity × entry price), duration in calendar time.
- **Dates**: ``start`` / ``end`` are inclusive bounds on the bar stamps, read as UTC.
"""

from __future__ import annotations

import dataclasses
import enum
import html
import inspect
import math
import time
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go
from IPython.display import display

from workbench.adapters.synthetic import two_venue_quotes
from workbench.api import ENGINES, STRATEGIES, backtest, resolve_store, resolve_strategy
from workbench.dashboards.widgets import (
    GuardedCheckbox,
    GuardedDropdown,
    GuardedFloatText,
    GuardedIntText,
    GuardedSelectMultiple,
    GuardedText,
    GuardedToggleButtons,
    Status,
    guarded,
    show_figure,
)
from workbench.data import load_prices, sample_symbols
from workbench.errors import ParameterError
from workbench.strategies import (
    CrossVenueArbitrage,
    MeanReversion,
    PairsTrading,
    SMACrossover,
    TimeSeriesMomentum,
)
from workbench.strategy.base import Strategy
from workbench.strategy.result import BacktestResult
from workbench.strategy.store import ExperimentStore
from workbench.trading.values import utc_timestamp

__all__ = ["StrategyLab", "DataNeed", "data_need", "ParamControl", "param_controls", "buy_and_hold",
           "LAB_DEFAULTS", "INT_BOUND", "FLOAT_BOUND"]  # fmt: skip

#: widest integer a parameter box takes: 2**32 - 1 covers bar counts (the strategies cap
#: them at 10**7) and random seeds (capped at 2**32 - 1); the strategy's validate() decides
INT_BOUND = 2**32 - 1
#: widest number a parameter box takes (finite numbers only); the strategy decides the rest
FLOAT_BOUND = 1e9
#: most basis points of commission the box takes (10 %); the spec decides the rest
MAX_COMMISSION_BPS = 1000.0
PARAM_LABEL_WIDTH = "110px"  # one width for every parameter's label, so the boxes line up
TEXT_PATTERN = r"[A-Za-z0-9_.\- ]*"  # a plain-text parameter: a name, never markup
DATE_PATTERN = r"(\d{4}-\d{2}-\d{2})?"  # YYYY-MM-DD, or empty for no bound
#: values for fields that have no default: an ensemble needs members, and the lab offers the
#: three one-symbol built-ins that trade differently (trend, momentum, mean reversion)
LAB_DEFAULTS: dict[str, Any] = {"members": (SMACrossover(), TimeSeriesMomentum(), MeanReversion())}
#: the second venue of the arbitrage strategy (wb.two_venue_quotes): seeded, so runs repeat
VENUE_B = {"basis_bps": 15.0, "half_life": 5.0, "seed": 0}
DEFAULT_STRATEGY, DEFAULT_SYMBOL = "sma_crossover", "GOOG"
DEFAULT_PAIR, DEFAULT_PANEL, DEFAULT_VENUE = ("IXIC", "SPX"), ("GOOG", "IXIC", "SPX", "WTI"), "EURUSD"
HISTORY_ROWS = 20  # newest runs of this session listed under the results
PANEL_KEYS = ("monthly", "yearly", "rolling", "distribution")  # the tearsheet figures behind the tick box


# -- what data a strategy trades ------------------------------------------------------------
class DataNeed(enum.Enum):
    """The shape of data a strategy trades, which decides the data control shown."""

    SYMBOL = "one symbol"
    PAIR = "exactly two symbols (y = the first in list order, x = the second)"
    PANEL = "a panel of two or more symbols"
    VENUES = "one asset quoted on two venues (venue B synthetic)"


#: portfolio strategies whose panel has a fixed shape; the strategies state it only in their
#: docstrings and errors ("pairs trading needs exactly 2 symbols"), so it is named here once
_FIXED_PANELS: dict[type[Strategy], DataNeed] = {PairsTrading: DataNeed.PAIR, CrossVenueArbitrage: DataNeed.VENUES}


def data_need(cls: type[Strategy]) -> DataNeed:
    """What ``cls`` trades: a signal (or per-bar) strategy one symbol, a weights strategy a
    panel, pairs exactly two symbols, arbitrage one asset on two venues."""
    for base, need in _FIXED_PANELS.items():
        if issubclass(cls, base):
            return need
    return DataNeed.PANEL if cls.kind == "weights" else DataNeed.SYMBOL


# -- parameters as widgets ------------------------------------------------------------------
@dataclass
class ParamControl:
    """One strategy field on the page: its widget, and how to read the field's value back.

    ``editable`` is False for a field shown read-only (a nested or complex value, such as
    an ensemble's members); its ``read`` returns the value shown.
    """

    name: str
    widget: widgets.Widget
    read: Callable[[], Any]
    editable: bool = True


def _optional(hint: Any) -> Any:
    """``X`` for ``X | None`` (or ``Optional[X]``), else None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0]
    return None


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return LAB_DEFAULTS.get(f.name, dataclasses.MISSING)


def _number_text(kind: type, default: Any, common: dict[str, Any]) -> ParamControl:
    """An optional int or float: a text box, empty meaning None (the field's "not set")."""
    pattern = r"-?\d+" if kind is int else r"-?(\d+\.?\d*|\.\d+)([eE]-?\d+)?"
    box = GuardedText(value="" if default is None else str(default), pattern=f"({pattern})?", max_length=24,
                      placeholder="empty: None", continuous_update=False, **common)  # fmt: skip

    def read() -> Any:
        text = box.value.strip()
        return None if not text else int(text) if kind is int else float(text)

    return ParamControl(common["description"], box, read)


def _read_only(name: str, default: Any) -> ParamControl:
    shown = "required, no default (not settable here)" if default is dataclasses.MISSING else repr(default)
    box = widgets.HTML(f"<span class='wb-note'><code>{html.escape(name)}</code> = <code>{html.escape(shown)}</code> "
                       "<i>(read-only in the lab)</i></span>")  # fmt: skip

    def read() -> Any:
        if default is dataclasses.MISSING:
            raise ParameterError(f"StrategyLab: {name} has no default and cannot be set in the lab, got {name}=<missing>")
        return default

    return ParamControl(name, box, read, editable=False)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _scalar_widget(hint: Any, default: Any, common: dict[str, Any]) -> widgets.Widget | None:
    """The input for a field of a scalar type whose default fits it, else None."""
    kind = hint if isinstance(hint, type) else None
    if kind is bool and isinstance(default, bool):
        return GuardedCheckbox(value=default, indent=False, **common)
    if kind is int and _is_number(default) and isinstance(default, int):
        return GuardedIntText(value=default, min=-INT_BOUND, max=INT_BOUND, continuous_update=False, **common)
    if kind is float and _is_number(default):
        return GuardedFloatText(value=float(default), min=-FLOAT_BOUND, max=FLOAT_BOUND, continuous_update=False,
                                **common)  # fmt: skip
    if typing.get_origin(hint) is typing.Literal and default in typing.get_args(hint):
        return GuardedDropdown(options=list(typing.get_args(hint)), value=default, **common)
    if kind is not None and issubclass(kind, enum.Enum) and isinstance(default, kind):
        return GuardedDropdown(options=[(m.name, m) for m in kind], value=default, **common)
    if kind is str and isinstance(default, str):
        return GuardedText(value=default, pattern=TEXT_PATTERN, max_length=64, continuous_update=False, **common)
    return None


def param_control(name: str, hint: Any, default: Any) -> ParamControl:
    """The widget for one field, by its type: int → integer box, float → number box, bool →
    tick box, Literal or Enum → dropdown, str → text box, ``int | None`` / ``float | None``
    → text box (empty = None); anything else, or a default that does not fit the type, is
    shown read-only with its default. Each input carries the CSS class ``wb-param-<name>``."""
    common = {"description": name, "style": {"description_width": PARAM_LABEL_WIDTH}}
    if default is dataclasses.MISSING:
        return _read_only(name, default)
    box = _scalar_widget(hint, default, common)
    if box is not None:
        control = ParamControl(name, box, lambda: box.value)
    elif _optional(hint) in (int, float) and (default is None or _is_number(default)):
        control = _number_text(_optional(hint), default, common)
    else:
        return _read_only(name, default)
    control.widget.add_class(f"wb-param-{name}")
    return control


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an unresolvable annotation: fall back to the defaults' types
        return {}


def param_controls(cls: type[Strategy]) -> list[ParamControl]:
    """One :class:`ParamControl` per dataclass field of ``cls``, in field order."""
    hints = _hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        default = _default(f)
        hint = hints.get(f.name, type(default) if default is not dataclasses.MISSING else None)
        out.append(param_control(f.name, hint, default))
    return out


# -- numbers the page shows -----------------------------------------------------------------
def _closes(prices: pd.DataFrame) -> pd.DataFrame:
    if isinstance(prices.columns, pd.MultiIndex):
        close = prices.xs("Close", axis=1, level=1)
        close.columns = [str(c) for c in close.columns]
        return close
    return prices[["Close"]].set_axis([str(prices.attrs.get("symbol", "ASSET"))], axis=1)


def buy_and_hold(prices: pd.DataFrame) -> pd.Series:
    """Growth of 1 of equal amounts of every symbol bought at the first close, never
    rebalanced: the mean over symbols of close / first close (module conventions).

    >>> idx = pd.date_range("2024-01-01", periods=3, tz="UTC")
    >>> buy_and_hold(pd.DataFrame({"Close": [10.0, 11.0, 12.0]}, index=idx)).tolist()
    [1.0, 1.1, 1.2]
    """
    close = _closes(prices)
    return (close / close.iloc[0]).mean(axis=1).rename("buy & hold")


def _growth(equity: pd.Series) -> pd.Series:
    return (equity / equity.iloc[0]).rename("strategy")


def _drawdown(growth: pd.Series) -> pd.Series:
    return growth / growth.cummax() - 1.0


def _x(stamps: Any) -> Any:
    """Bar stamps for a plotly axis as naive UTC datetime64 (a tz-aware index reaches plotly
    as an object array of Timestamps, which it deep-copies: ~0.1 s per figure)."""
    index = pd.DatetimeIndex(stamps)
    return (index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index).to_numpy()


def _when(ts: Any) -> str:
    t = pd.Timestamp(ts)
    return f"{t:%Y-%m-%d}" if t == t.normalize() else f"{t:%Y-%m-%d %H:%M}"


def _price(v: float) -> str:
    return "n/a" if pd.isna(v) else f"{v:,.2f}" if abs(v) >= 10 else f"{v:.5f}"


TRADE_HEADERS = ["symbol", "side", "quantity", "entry (UTC)", "entry price", "exit (UTC)", "exit price",
                 "P&L (net of fees)", "return (P&L / entry notional)", "duration (calendar)"]  # fmt: skip


def trades_html(trades: pd.DataFrame) -> str:
    """The closed trades as an escaped HTML table (module conventions), or a sentence."""
    if trades.empty:
        return "<p>no closed trades in this run</p>"
    from workbench.tearsheets import format_duration, format_percent

    rows = []
    for t in trades.to_dict("records"):
        cells = [t["symbol"], t["side"], f"{t['quantity']:g}", _when(t["entry_time"]), _price(t["entry_price"]),
                 _when(t["exit_time"]), _price(t["exit_price"]), f"{t['pnl']:,.2f}", format_percent(t["return"]),
                 format_duration(t["duration"])]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in TRADE_HEADERS)
    return f"<table class='wb-table wb-trades'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


_CSS = ("<style>.wb-table{border-collapse:collapse;font-size:12px}.wb-table td,.wb-table th{border:1px solid #ddd;"
        "padding:2px 6px;text-align:right;white-space:nowrap}.wb-table th{background:#f3f3f3}"
        ".wb-stats td:last-child{text-align:left;white-space:normal;min-width:320px}.wb-scroll{max-height:360px;overflow:auto}.wb-note{color:#555;font-size:12px}</style>")  # fmt: skip


def _first_paragraph(cls: type) -> str:
    doc = inspect.getdoc(cls) or cls.__name__
    return doc.split("\n\n")[0].replace("\n", " ").replace("``", "")  # reST literals read as plain text


def _section(title: str) -> widgets.HTML:
    return widgets.HTML(f"<h3 style='margin:8px 0 2px'>{html.escape(title)}</h3>")


def _open_store(store: ExperimentStore | str | None) -> tuple[ExperimentStore | None, str]:
    """(the store, "") or (None, why): a store that cannot be opened (not a database, no
    permission) disables "keep in store" and says so; the lab still runs backtests."""
    try:
        return resolve_store(store), ""
    except ParameterError as exc:
        return None, str(exc)


# -- the dashboard --------------------------------------------------------------------------
class StrategyLab:
    """Pick a built-in strategy, set its parameters, data, costs and engine, run a backtest.

    ``store``: where "keep in store" puts runs (``"default"``: the configured experiment
    store, ``WORKBENCH_STORE``; None: nowhere, the tick box is disabled). ``strategies``:
    the registry offered (default ``wb.STRATEGIES``). ``run_on_load`` runs the default
    strategy once at construction (not kept in the store) so the page opens with charts.

    >>> lab = StrategyLab(store=None, run_on_load=False)
    >>> [c.name for c in lab.controls]
    ['fast', 'slow', 'allow_short']
    """

    def __init__(self, *, store: ExperimentStore | str | None = "default", strategies: dict[str, type[Strategy]] | None = None,
                 run_on_load: bool = True) -> None:  # fmt: skip
        self.strategies = dict(STRATEGIES if strategies is None else strategies)
        if not self.strategies:
            raise ParameterError("StrategyLab: strategies must name at least one strategy, got strategies={}")
        self.store, self.store_problem = _open_store(store)
        self.status = Status()
        self.result: BacktestResult | None = None
        self.prices: pd.DataFrame | None = None
        self.history: list[dict[str, str]] = []
        self.controls: list[ParamControl] = []
        self._cache: dict[tuple, pd.DataFrame] = {}
        self._guard = guarded(self.status)
        self._build()
        self._rebuild_params()
        if run_on_load:
            self.run(keep=False)

    # -- widgets ------------------------------------------------------------------------
    def _build(self) -> None:
        first = DEFAULT_STRATEGY if DEFAULT_STRATEGY in self.strategies else next(iter(self.strategies))
        self.strategy_dd = self._tag(GuardedDropdown(options=list(self.strategies), value=first, description="strategy"),
                                     "wb-strategy")  # fmt: skip
        self.about = widgets.HTML()
        self.params_box = widgets.VBox()
        self._build_data(sample_symbols())
        self._build_execution()
        self._build_results()
        self._wire()
        self.widget = self._layout()

    def _build_data(self, symbols: list[str]) -> None:
        """One data control per :class:`DataNeed` (the strategy's shows), and the date range."""
        self.symbol_dd = self._tag(GuardedDropdown(options=symbols, value=self._pick(DEFAULT_SYMBOL, symbols),
                                                   description="symbol"), "wb-symbol")  # fmt: skip
        self.pair_select = self._tag(GuardedSelectMultiple(options=symbols, value=self._picks(DEFAULT_PAIR, symbols),
                                                           max_selected=2, rows=len(symbols), description="pair"), "wb-pair")  # fmt: skip
        self.panel_select = self._tag(GuardedSelectMultiple(options=symbols, value=self._picks(DEFAULT_PANEL, symbols),
                                                            rows=len(symbols), description="panel"), "wb-panel")  # fmt: skip
        self.venue_dd = self._tag(GuardedDropdown(options=symbols, value=self._pick(DEFAULT_VENUE, symbols),
                                                  description="asset"), "wb-venue")  # fmt: skip
        self.data_note = widgets.HTML()
        self.data_box = widgets.VBox()
        self.start_text = self._tag(GuardedText(value="", pattern=DATE_PATTERN, max_length=10, description="start",
                                                placeholder="YYYY-MM-DD", continuous_update=False), "wb-start")  # fmt: skip
        self.end_text = self._tag(GuardedText(value="", pattern=DATE_PATTERN, max_length=10, description="end",
                                              placeholder="YYYY-MM-DD", continuous_update=False), "wb-end")  # fmt: skip

    def _build_execution(self) -> None:
        self.commission_bps = self._tag(GuardedFloatText(value=10.0, min=0.0, max=MAX_COMMISSION_BPS, step=1.0,
                                                         description="commission (bps of notional per fill)",
                                                         style={"description_width": "initial"},
                                                         continuous_update=False), "wb-commission")  # fmt: skip
        self.engine_tb = self._tag(GuardedToggleButtons(options=list(ENGINES), value="event", description="engine"),
                                   "wb-engine")  # fmt: skip
        self.keep_cb = self._tag(GuardedCheckbox(value=self.store is not None, disabled=self.store is None, indent=False,
                                                 description="keep in store"), "wb-keep")  # fmt: skip
        self.run_button = self._tag(widgets.Button(description="Run backtest", button_style="primary"), "wb-run")
        why = self.store_problem or "no experiment store is configured (WORKBENCH_STORE=off)"
        self.store_note = widgets.HTML("" if self.store is not None else
                                       f"<span class='wb-note'>runs are not kept: {html.escape(why)}</span>")  # fmt: skip

    def _build_results(self) -> None:
        self.run_info = widgets.HTML()
        wide = widgets.Layout(width="auto")  # a tick box's label is cut at the default width
        self.log_cb = self._tag(GuardedCheckbox(value=False, indent=False, description="log scale", layout=wide),
                                "wb-log")  # fmt: skip
        self.price_dd = self._tag(GuardedDropdown(options=[DEFAULT_SYMBOL], description="price of"), "wb-price-symbol")
        self.panels_cb = self._tag(GuardedCheckbox(value=False, indent=False,
                                                   description="tearsheet panels (monthly, yearly, rolling, distribution)",
                                                   layout=wide),
                                   "wb-panels")  # fmt: skip
        self.equity_out, self.drawdown_out, self.price_out = widgets.Output(), widgets.Output(), widgets.Output()
        self.panel_outs = [widgets.Output() for _ in PANEL_KEYS]
        self.stats_html, self.trades_html, self.history_html = widgets.HTML(), widgets.HTML(), widgets.HTML()

    @staticmethod
    def _tag(widget: widgets.Widget, css: str) -> Any:
        widget.add_class(css)
        return widget

    @staticmethod
    def _pick(want: str, options: list[str]) -> str:
        return want if want in options else options[0]

    @staticmethod
    def _picks(want: tuple[str, ...], options: list[str]) -> tuple[str, ...]:
        return tuple(s for s in want if s in options) or tuple(options[:2])

    def _wire(self) -> None:
        self.strategy_dd.observe(self._guard(self._on_strategy), names="value")
        self.run_button.on_click(lambda _button: self.run())
        self.log_cb.observe(self._guard(lambda _c: self._draw_equity()), names="value")
        self._on_price = self._guard(lambda _c: self._draw_price())
        self.price_dd.observe(self._on_price, names="value")
        self.panels_cb.observe(self._guard(lambda _c: self._draw_panels()), names="value")

    def _layout(self) -> widgets.VBox:
        column = widgets.Layout(width="33%", padding="0 12px 0 0")
        strategy = widgets.VBox([_section("Strategy"), self.strategy_dd, self.about, self.params_box], layout=column)
        data = widgets.VBox([_section("Data"), self.data_box, self.data_note, self.start_text, self.end_text,
                             widgets.HTML("<span class='wb-note'>dates: inclusive bounds on bar stamps, UTC; "
                                          "empty: the whole sample</span>")], layout=column)  # fmt: skip
        run = widgets.VBox([_section("Execution"), self.commission_bps, self.engine_tb, self.keep_cb, self.store_note,
                            self.run_button], layout=column)  # fmt: skip
        note = widgets.HTML(
            "<p class='wb-note'>growth of 1 = equity / equity at the first close; buy &amp; hold = equal amounts of "
            "each data symbol bought at the first close, never rebalanced; drawdown = equity / running peak - 1. "
            "Orders are decided at a bar's close and fill at the next bar's open.</p>")  # fmt: skip
        return widgets.VBox([
            widgets.HTML(_CSS), widgets.HBox([strategy, data, run]), self.status.widget, self.run_info,
            _section("Results"), note, self.log_cb, self.equity_out, self.drawdown_out, self.price_dd, self.price_out,
            _section("Stats"), self.stats_html, _section("Closed trades"), self.trades_html,
            self.panels_cb, *self.panel_outs, _section("This session's runs (newest first)"), self.history_html,
        ])  # fmt: skip

    def show(self) -> None:
        """Put the dashboard on the page (the notebook's one call)."""
        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def inputs(self) -> dict[str, widgets.Widget]:
        """Every input widget the dashboard holds, shown or not (the data controls of other
        strategies are kept), by name; the current strategy's parameters as ``param:<field>``."""
        fixed = {"strategy": self.strategy_dd, "symbol": self.symbol_dd, "pair": self.pair_select,
                 "panel": self.panel_select, "venue": self.venue_dd, "start": self.start_text, "end": self.end_text,
                 "commission_bps": self.commission_bps, "engine": self.engine_tb, "keep": self.keep_cb,
                 "log_scale": self.log_cb, "price_symbol": self.price_dd, "panels": self.panels_cb}  # fmt: skip
        return {**fixed, **{f"param:{c.name}": c.widget for c in self.controls if c.editable}}

    # -- strategy and parameters ----------------------------------------------------------
    @property
    def strategy_class(self) -> type[Strategy]:
        return self.strategies[self.strategy_dd.value]

    @property
    def need(self) -> DataNeed:
        return data_need(self.strategy_class)

    def _on_strategy(self, _change: Any) -> None:
        self._rebuild_params()

    def _rebuild_params(self) -> None:
        """New widgets from the chosen strategy's fields; the old ones lose their observer
        and are closed (their comms freed), so a stale one can change nothing."""
        for old in self.controls:
            if old.editable:
                old.widget.unobserve(self._on_param, names="value")
            old.widget.close()
        cls = self.strategy_class
        self.controls = param_controls(cls)
        for control in self.controls:
            if control.editable:
                control.widget.observe(self._on_param, names="value")
        self.params_box.children = [c.widget for c in self.controls]
        self.about.value = (f"<p class='wb-note'><b>{html.escape(cls.__name__)}</b>: "
                            f"{html.escape(_first_paragraph(cls))}</p>")  # fmt: skip
        self._show_data_controls()
        self.status.ready(f"{html.escape(cls.__name__)}: {len(self.controls)} parameters from its fields, trades "
                          f"{html.escape(self.need.value)}; press Run backtest")  # fmt: skip

    def _on_param(self, _change: Any) -> None:
        self._guard(self._check_params)()

    def _check_params(self) -> None:
        strategy = self.strategy()
        self.status.ready(f"{html.escape(strategy.name)}: parameters valid (warm-up {strategy.warmup} bars); "
                          "press Run backtest")  # fmt: skip

    def params(self) -> dict[str, Any]:
        """The values of the strategy's fields as the widgets hold them now."""
        return {c.name: c.read() for c in self.controls}

    def strategy(self) -> Strategy:
        """The chosen strategy with the widgets' values (its own validate() is the rule)."""
        return resolve_strategy(self.strategy_class, self.params())

    # -- data -----------------------------------------------------------------------------
    def _show_data_controls(self) -> None:
        need = self.need
        shown = {DataNeed.SYMBOL: self.symbol_dd, DataNeed.PAIR: self.pair_select, DataNeed.PANEL: self.panel_select,
                 DataNeed.VENUES: self.venue_dd}[need]  # fmt: skip
        self.data_box.children = [shown]
        note = f"trades {need.value}"
        if need is DataNeed.VENUES:
            note += (f"; venue B = the asset's bars × (1 + an AR(1) basis of sd {VENUE_B['basis_bps']:g} bps, half-life "
                     f"{VENUE_B['half_life']:g} bars, seed {VENUE_B['seed']}): wb.two_venue_quotes")  # fmt: skip
        self.data_note.value = f"<span class='wb-note'>{html.escape(note)}</span>"

    def symbols(self) -> list[str]:
        """The sample symbols the chosen strategy will load (in list order for a panel)."""
        need = self.need
        if need is DataNeed.SYMBOL:
            return [self.symbol_dd.value]
        if need is DataNeed.VENUES:
            return [self.venue_dd.value]
        picked = self.pair_select.value if need is DataNeed.PAIR else self.panel_select.value
        order = list(self.symbol_dd.options)
        chosen = sorted(dict.fromkeys(picked), key=order.index)
        if len(chosen) < 2:
            raise ParameterError(f"{self.strategy_class.__name__} trades {need.value}: pick at least 2 symbols, "
                                 f"got {chosen}")  # fmt: skip
        return chosen

    def window(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """(start, end) from the date boxes; empty means no bound."""
        start, end = (utc_timestamp(t.value, name, ParameterError) if t.value.strip() else None
                      for name, t in (("start", self.start_text), ("end", self.end_text)))  # fmt: skip
        if start is not None and end is not None and start >= end:
            raise ParameterError(f"StrategyLab: start must be before end, got start={start:%Y-%m-%d}, end={end:%Y-%m-%d}")
        return start, end

    def load(self) -> pd.DataFrame:
        """The bars the chosen strategy trades (cached per symbols and window)."""
        symbols, (start, end), need = self.symbols(), self.window(), self.need
        key = (need, tuple(symbols), start, end)
        if key not in self._cache:
            if need is DataNeed.VENUES:
                frame = two_venue_quotes(load_prices(symbols[0], start=start, end=end, progress=False), **VENUE_B)
            else:
                frame = load_prices(symbols if len(symbols) > 1 else symbols[0], start=start, end=end, progress=False)
            self._cache = {**dict(list(self._cache.items())[-7:]), key: frame}  # the last 8 windows
        return self._cache[key]

    # -- running ----------------------------------------------------------------------------
    def run(self, keep: bool | None = None) -> BacktestResult | None:
        """Run the backtest the widgets describe, draw it; errors go to the status line.
        ``keep`` overrides the "keep in store" tick box."""
        return self._guard(self._run)(keep)

    def _run(self, keep: bool | None) -> BacktestResult:
        keep = bool(self.keep_cb.value) if keep is None else keep
        strategy = self.strategy()
        self.status.busy(f"running {strategy.name} on {', '.join(self.symbols())}")
        prices = self.load()
        store = self.store if keep else None
        started = time.perf_counter()
        result = backtest(strategy, prices, store=store, commission=float(self.commission_bps.value) / 1e4,
                          engine=str(self.engine_tb.value))  # fmt: skip
        seconds = time.perf_counter() - started
        self.result, self.prices = result, prices
        self._draw()
        self._record(result, kept=store is not None, seconds=seconds)
        return result

    def _record(self, result: BacktestResult, *, kept: bool, seconds: float) -> None:
        s = result.stats
        from workbench.tearsheets import format_percent

        where = "not kept (tick keep in store, then Run)"
        if kept and self.store is not None:
            where = f"kept in the store ({len(self.store.runs(result.id))} stored run(s) of this spec)"
        info = (f"run <code class='wb-run-id'>{html.escape(result.run_id)}</code> · spec "
                f"<code>{html.escape(result.id)}</code> · {html.escape(where)} · {seconds:.2f} s")  # fmt: skip
        self.run_info.value = f"<span class='wb-note'>{html.escape(result.spec.label)}</span><br>{info}"
        self.history.insert(0, self._history_row(result, kept))
        del self.history[HISTORY_ROWS:]
        self._draw_history()
        self.status.ready(f"{html.escape(result.spec.strategy.name)} on {html.escape(', '.join(result.spec.symbols))}: "
                          f"total return {format_percent(s['total_return'])}, {int(s['n_trades'])} closed trades · run "
                          f"{html.escape(result.run_id)} {'kept' if kept else 'not kept'}")  # fmt: skip

    def _history_row(self, result: BacktestResult, kept: bool) -> dict[str, str]:
        """One line of this session's runs (text, escaped when drawn)."""
        from workbench.tearsheets import format_percent

        s, spec = result.stats, result.spec
        return {"run id": result.run_id, "kept": "yes" if kept else "no", "strategy": spec.strategy.name,
                "params": ", ".join(f"{k}={v!r}" for k, v in spec.strategy.params.items())[:120],
                "data": f"{', '.join(spec.symbols)} {_when(result.equity.index[0])} .. {_when(result.equity.index[-1])}",
                "engine": spec.engine, "commission (bps of notional)": f"{float(self.commission_bps.value):g}",
                "total return": format_percent(s["total_return"]), "Sharpe (annualised)": f"{float(s['sharpe']):.2f}",
                "max drawdown": format_percent(s["max_drawdown"])}  # fmt: skip

    # -- drawing (each figure once per run or per change of its own control) ------------------
    def _draw(self) -> None:
        self._draw_equity()
        self._draw_drawdown()
        symbols = list(self.result.spec.symbols)
        self.price_dd.unobserve(self._on_price, names="value")
        try:
            self.price_dd.options = symbols
            self.price_dd.value = symbols[0]
        finally:
            self.price_dd.observe(self._on_price, names="value")
        self._draw_price()
        self._draw_tables()
        if self.panels_cb.value:
            self._draw_panels()

    def equity_figure(self) -> go.Figure:
        """Growth of 1 of the run against buy & hold of its data (module conventions)."""
        r, prices = self._current()
        growth, bench = _growth(r.equity), buy_and_hold(prices)
        fig = go.Figure([
            go.Scatter(x=_x(growth.index), y=growth.to_numpy(), name=f"{r.spec.strategy.name} ({r.spec.engine})",
                       line={"width": 1.5, "color": "#1f77b4"}),
            go.Scatter(x=_x(bench.index), y=bench.to_numpy(), name="buy & hold", line={"width": 1.2, "color": "#7f7f7f",
                                                                                  "dash": "dot"}),
        ])  # fmt: skip
        fig.update_yaxes(type="log" if self.log_cb.value else "linear",
                         title_text="growth of 1 (equity / first close's equity)")  # fmt: skip
        fig.update_layout(title=f"growth of 1: {r.spec.strategy.name} vs buy & hold ({', '.join(r.spec.symbols)})",
                          height=380, hovermode="x unified", legend={"orientation": "h", "y": -0.15},
                          margin={"l": 60, "r": 20, "t": 50, "b": 40})  # fmt: skip
        return fig

    def drawdown_figure(self) -> go.Figure:
        """Drawdown of the run and of buy & hold: value / running peak - 1 at each close."""
        r, prices = self._current()
        ours, bench = _drawdown(_growth(r.equity)), _drawdown(buy_and_hold(prices))
        fig = go.Figure([
            go.Scatter(x=_x(ours.index), y=ours.to_numpy(), name=r.spec.strategy.name, fill="tozeroy",
                       line={"width": 1, "color": "#d62728"}),
            go.Scatter(x=_x(bench.index), y=bench.to_numpy(), name="buy & hold", line={"width": 1, "color": "#7f7f7f",
                                                                                  "dash": "dot"}),
        ])  # fmt: skip
        fig.update_yaxes(tickformat=".0%", title_text="drawdown (fraction of the running peak)")
        fig.update_layout(title=f"drawdown from the running peak: {r.spec.strategy.name} vs buy & hold", height=260,
                          legend={"orientation": "h", "y": -0.25}, margin={"l": 60, "r": 20, "t": 50, "b": 40})  # fmt: skip
        return fig

    def price_figure(self) -> go.Figure:
        """The chosen symbol's close with the closed trades' entries and exits marked."""
        r, prices = self._current()
        symbol = str(self.price_dd.value)
        frame = prices[symbol] if isinstance(prices.columns, pd.MultiIndex) else prices
        inst = dict(zip(r.spec.symbols, r.spec.instruments, strict=True))[symbol]
        trades = r.trades[r.trades["symbol"].astype(str) == inst.symbol]
        fig = go.Figure(go.Scatter(x=_x(frame.index), y=frame["Close"].to_numpy(), name="close",
                                   line={"width": 1, "color": "#444"}))  # fmt: skip
        for side, marker, colour in (("LONG", "triangle-up", "#2ca02c"), ("SHORT", "triangle-down", "#d62728")):
            t = trades[trades["side"].astype(str) == side]
            fig.add_trace(go.Scatter(x=_x(t["entry_time"]), y=t["entry_price"].to_numpy(), mode="markers",
                                     name=f"{side.lower()} entry", marker={"symbol": marker, "size": 9, "color": colour},
                                     hovertemplate=f"{side.lower()} entry %{{x}} @ %{{y}}<extra></extra>"))  # fmt: skip
        fig.add_trace(go.Scatter(x=_x(trades["exit_time"]), y=trades["exit_price"].to_numpy(), mode="markers", name="exit",
                                 marker={"symbol": "x", "size": 8, "color": "#000"},
                                 customdata=trades["pnl"].to_numpy(),
                                 hovertemplate="exit %{x} @ %{y}: P&L %{customdata:,.2f} net of fees<extra></extra>"))  # fmt: skip
        fig.update_yaxes(title_text=f"close ({inst.currency}, as in the data: not adjusted)")
        fig.update_layout(title=f"price with entries and exits: {symbol}", height=380,
                          legend={"orientation": "h", "y": -0.15}, margin={"l": 60, "r": 20, "t": 50, "b": 40})  # fmt: skip
        return fig

    def _current(self) -> tuple[BacktestResult, pd.DataFrame]:
        if self.result is None or self.prices is None:
            raise ParameterError("StrategyLab: no run yet, got result=None: press Run backtest")
        return self.result, self.prices

    def _draw_equity(self) -> None:
        if self.result is not None:
            show_figure(self.equity_out, self.equity_figure())

    def _draw_drawdown(self) -> None:
        show_figure(self.drawdown_out, self.drawdown_figure())

    def _draw_price(self) -> None:
        if self.result is not None:
            show_figure(self.price_out, self.price_figure())

    def _draw_tables(self) -> None:
        from workbench.tearsheets import tearsheet_tables

        r, prices = self._current()
        tables = tearsheet_tables(r, benchmark=buy_and_hold(prices), prices=prices)
        stats = tables["stats"].to_html(escape=True, classes="wb-table wb-stats", border=0)
        opened = tables["open_position"]
        still = ("<p class='wb-note'>open at the end: " + html.escape(", ".join(
            f"{row.symbol} {row.quantity:g} from {_price(row.entry)}, marked {_price(row.mark)} at the last close"
            for row in opened.itertuples(index=False))) + "</p>") if len(opened) else ""  # fmt: skip
        self.stats_html.value = (f"<div class='wb-scroll'>{stats}</div><p class='wb-note'>benchmark: buy &amp; hold of "
                                 f"the data; periods per year and risk-free rate as in the stats</p>{still}")  # fmt: skip
        self.trades_html.value = (f"<div class='wb-scroll'>{trades_html(r.trades)}</div><p class='wb-note'>"
                                  f"{len(r.trades)} closed trades; P&amp;L net of fees, "
                                  f"{html.escape(r.spec.instruments[0].currency)}</p>")  # fmt: skip

    def _draw_panels(self) -> None:
        """The tearsheet's other panels, drawn only while their tick box is on (0.4 s a run)."""
        if not self.panels_cb.value or self.result is None:
            for out in self.panel_outs:
                out.clear_output()
            return
        from workbench.tearsheets import tearsheet_figures

        r, prices = self._current()
        figures = tearsheet_figures(r, benchmark=buy_and_hold(prices))
        for out, key in zip(self.panel_outs, PANEL_KEYS, strict=True):
            show_figure(out, figures[key])

    def _draw_history(self) -> None:
        if not self.history:
            self.history_html.value = "<p class='wb-note'>no runs yet</p>"
            return
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.history[0])
        body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row.values()) + "</tr>"
                       for row in self.history)  # fmt: skip
        self.history_html.value = (f"<div class='wb-scroll'><table class='wb-table wb-history'><thead><tr>{head}</tr>"
                                   f"</thead><tbody>{body}</tbody></table></div>")  # fmt: skip
