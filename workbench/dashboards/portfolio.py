"""Portfolio review: a stored backtest or book against a benchmark, down to its fills.

A portfolio manager picks a stored run (newest first) and reads it tab by tab:
performance (equity against a buy & hold benchmark, drawdown), positions and exposures,
trades with a drill-down to the fills on the price chart, P&L attribution (by sleeve for
a book, by asset for any run), monthly returns, and a comparison with a second run.

Why lazy: only the visible tab is drawn. A change marks the other tabs stale and they are
drawn when first shown, so the first paint is one run loaded and two figures (the
attribution of a book reruns its plan, about a second, and only on its tab), and a plotly
figure is never drawn into a hidden, zero-width tab.

Conventions (every figure and table repeats its own):

- **returns** are simple, per bar, from the equity marked at each close; **growth of 1**
  is equity / equity at the run's first bar;
- **benchmark**: buy & hold of a sample symbol's Close, aligned on the run's bars by
  :func:`workbench.tearsheets.aligned_benchmark`, growth of 1 from the run's first bar;
- **drawdown**: equity / running peak - 1 at each close (a fraction <= 0);
- **exposure** of a symbol at close t: quantity x close x multiplier / equity; gross is
  the sum of absolute exposures, net their sum;
- **P&L by asset** at bar t: holding ``q[t-1] x (C[t] - C[t-1]) x m`` plus, for each
  fill, ``signed qty x (C[t] - fill price) x m - fee``; ``other`` is what moves equity
  beyond the positions (financing); each row sums to the equity change;
- **monthly returns**: ``prod(1 + r) - 1`` per calendar month (UTC), the tearsheet's table;
- **trades**: P&L net of allocated fees in the account's currency, return = P&L / entry
  notional; stats are ``result.stats`` formatted by the tearsheet, with their conventions.
"""

from __future__ import annotations

import html
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from workbench.dashboards.widgets import (
    GuardedCheckbox,
    GuardedDropdown,
    GuardedTab,
    Status,
    guarded,
    show_figure,
)
from workbench.errors import ParameterError, WorkbenchError
from workbench.strategy.result import BacktestResult

__all__ = ["PortfolioReview", "SAMPLE_BOOK", "pnl_by_asset", "exposures"]

MAX_RUNS = 200  # newest runs listed in the dropdown
TRADE_PAD = 20  # bars of price shown before the entry and after the exit of a drilled trade
MAX_TRADE_ROWS = 1000
CACHE_RUNS = 8  # loaded runs kept in memory
TABS = ("Performance", "Positions", "Trades", "Attribution", "Monthly", "Compare")
TAB_SECTIONS = {0: ("performance",), 1: ("positions",), 2: ("trades", "drill"), 3: ("attribution",),
                4: ("monthly",), 5: ("compare",)}  # fmt: skip
#: the book "run the sample book" runs: two sleeves over sample symbols, as the portfolio_review runbook
SAMPLE_BOOK = {"sleeves": (("trend", "SMACrossover", {"fast": 20, "slow": 100}, ("SPX",)),
                           ("rotation", "CrossSectionalMomentum", {"top_k": 1}, ("GOOG", "IXIC"))),
               "allocation": "inverse_volatility", "rebalance": "MS", "lookback": 126,
               "cash": 100_000.0, "commission": 0.001}  # fmt: skip
_TABLE_CSS = ("border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums")
_CELL = "border:1px solid #ddd;padding:2px 6px;text-align:right;white-space:nowrap"


# -- the functional core: frames in, frames out ---------------------------------------------
def _positions(result: BacktestResult) -> pd.DataFrame:
    pos = result.positions
    return (pos.to_frame() if isinstance(pos, pd.Series) else pos).astype("float64")


def _data_symbol(result: BacktestResult, instrument_symbol: str) -> str:
    """The data symbol of an instrument ("GOOG.SAMPLE" trades the bars of "GOOG")."""
    spec = result.spec
    pairs = dict(zip((i.symbol for i in spec.instruments), spec.symbols, strict=False))
    return pairs.get(instrument_symbol, instrument_symbol.split(".")[0])


def _multipliers(result: BacktestResult, columns: list[str]) -> np.ndarray:
    mult = {i.symbol: i.multiplier for i in result.spec.instruments}
    return np.array([mult.get(c, 1.0) for c in columns])


def closes_of(result: BacktestResult, bars: pd.DataFrame) -> pd.DataFrame:
    """Each position column's Close on the run's bars (columns named like the positions)."""
    cols = list(_positions(result).columns)
    panel = isinstance(bars.columns, pd.MultiIndex)
    out = {c: (bars[_data_symbol(result, c)]["Close"] if panel else bars["Close"]) for c in cols}
    return pd.DataFrame(out).reindex(result.equity.index)


def exposures(result: BacktestResult, closes: pd.DataFrame) -> pd.DataFrame:
    """Bars x symbols: quantity x close x multiplier / equity at each close, plus gross and net."""
    pos = _positions(result)
    value = pos * closes[pos.columns].to_numpy() * _multipliers(result, list(pos.columns))
    out = value.div(result.equity.reindex(pos.index), axis=0)
    return out.assign(gross=out.abs().sum(axis=1), net=out.sum(axis=1))


def pnl_by_asset(result: BacktestResult, closes: pd.DataFrame) -> pd.DataFrame:
    """Bars x (symbols, ``other``): each symbol's P&L net of its fees (module notes)."""
    pos = _positions(result)
    cols = list(pos.columns)
    c = closes[cols].to_numpy(dtype="float64")
    mult = _multipliers(result, cols)
    held = np.vstack([np.zeros((1, len(cols))), pos.to_numpy()[:-1]])
    pnl = held * np.vstack([np.zeros((1, len(cols))), np.diff(c, axis=0)]) * mult
    f = result.fills
    if len(f):
        rows = pos.index.get_indexer(pd.DatetimeIndex(f["ts"]))
        if (rows < 0).any():
            raise ParameterError(f"pnl_by_asset: a fill at {f['ts'].iloc[int(np.argmax(rows < 0))]} is not a bar of the run")
        where = np.array([cols.index(str(s)) for s in f["symbol"]])
        sign = np.where(f["side"].astype(str).str.upper().str.endswith("BUY"), 1.0, -1.0)
        qty, price = f["quantity"].to_numpy(float), f["price"].to_numpy(float)
        np.add.at(pnl, (rows, where), sign * qty * (c[rows, where] - price) * mult[where] - f["fee"].to_numpy(float))
    out = pd.DataFrame(pnl, index=pos.index, columns=cols)
    change = result.equity.diff().fillna(result.equity.iloc[0] - result.spec.cash)
    return out.assign(other=change.to_numpy() - out.sum(axis=1).to_numpy())


def _growth(rets: pd.Series) -> pd.Series:
    """Growth of 1 from the bar before the first return (NaN where there is no return)."""
    valid = rets.notna().to_numpy()
    if not valid.any():
        return rets
    base = max(int(np.argmax(valid)) - 1, 0)
    g = (1.0 + rets.fillna(0.0)).cumprod()
    keep = valid.copy()
    keep[base] = True
    return (g / g.iloc[base]).where(keep)


def _short_label(result: BacktestResult) -> str:
    strategy = result.spec.strategy
    sleeves = getattr(strategy, "sleeves", None)
    name = f"{strategy.name} ({', '.join(s.name for s in sleeves)})" if sleeves else strategy.name
    return f"{name} on {', '.join(result.spec.symbols)}"


def _text(value: object) -> str:
    """Text from the store as plotly shows it: plotly reads ``<a href>``, ``<b>``... in names and titles."""
    return html.escape(str(value), quote=False)


def _money(v: float) -> str:
    return "n/a" if pd.isna(v) else f"{v:,.2f}"


def _pct(v: float, digits: int = 2) -> str:
    from workbench.tearsheets import format_percent

    return format_percent(v, digits)


def _html_table(header: list[str], rows: list[list[str]], *, name: str, height: int = 0, note: str = "") -> str:
    """A table of text cells (each escaped here), optionally in a scrolling box."""
    head = "".join(f"<th style='{_CELL};white-space:normal;max-width:150px;background:#f3f3f3'>{html.escape(h)}</th>"
                   for h in header)  # fmt: skip
    body = "".join("<tr>" + "".join(f"<td style='{_CELL}'>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in rows)  # fmt: skip
    box = f"max-height:{height}px;overflow:auto;" if height else "overflow-x:auto;"
    foot = f"<div style='color:#555;font-size:12px'>{note}</div>" if note else ""
    return (f"<div class='wb-{name}' style='{box}'><table style='{_TABLE_CSS}'><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>{foot}")  # fmt: skip


def _note_html(text: str) -> str:
    return f"<p style='color:#555'>{text}</p>"


@dataclass
class _Run:
    """One loaded run and what the dashboard derived from it (computed once, on first use)."""

    run_id: str
    result: BacktestResult
    bars: pd.DataFrame | None  # the bars the run used (from the offline sample), None when unavailable
    why: str  # why there are no bars
    cache: dict[str, Any] = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        if "tables" not in self.cache:
            from workbench.tearsheets import tearsheet_tables

            self.cache["tables"] = tearsheet_tables(self.result)
        return self.cache["tables"]

    def closes(self) -> pd.DataFrame | None:
        if self.bars is None:
            return None
        if "closes" not in self.cache:
            self.cache["closes"] = closes_of(self.result, self.bars)
        return self.cache["closes"]

    @property
    def currency(self) -> str:
        inst = self.result.spec.instruments
        return inst[0].currency if inst else "account currency"


def _run_bars(result: BacktestResult) -> tuple[pd.DataFrame | None, str]:
    """The bars the run used, from the offline sample and checked by their SHA-256."""
    from workbench.api import data_id
    from workbench.data import load_prices, sample_symbols

    data = result.spec.data
    if data is None:
        return None, "the run does not record its data"
    symbols = list(data.symbols)
    missing = [s for s in symbols if s not in sample_symbols()]
    if missing:
        return None, f"its symbols {html.escape(str(missing))} are not in the offline sample"
    try:
        bars = load_prices(symbols[0] if len(symbols) == 1 else symbols, start=data.start, end=data.end,
                           progress=False)  # fmt: skip
    except WorkbenchError as exc:
        return None, html.escape(f"its bars could not be loaded: {exc}")
    found = data_id(bars, symbols)
    if (found.bars, found.sha256) != (data.bars, data.sha256):
        return None, (f"the offline sample's bars are not the run's ({found.bars} bars sha256 {found.sha256[:12]}, "
                      f"the run used {data.bars} bars sha256 {data.sha256[:12]})")  # fmt: skip
    return bars, ""


def _sample_book() -> tuple[Any, pd.DataFrame]:
    """The sample book (:data:`SAMPLE_BOOK`) and its panel."""
    from workbench import strategies
    from workbench.data import load_prices
    from workbench.research.book import MultiStrategy, Sleeve

    sleeves = tuple(Sleeve(name=n, strategy=getattr(strategies, cls)(**p), symbols=s)
                    for n, cls, p, s in SAMPLE_BOOK["sleeves"])  # fmt: skip
    book = MultiStrategy(sleeves=sleeves, allocation=SAMPLE_BOOK["allocation"], rebalance=SAMPLE_BOOK["rebalance"],
                         lookback=SAMPLE_BOOK["lookback"])  # fmt: skip
    symbols = list(dict.fromkeys(s for sl in sleeves for s in sl.symbols))
    return book, load_prices(symbols, progress=False)


# -- figures: data in, plotly figure out ----------------------------------------------------
def _layout(fig: Any, title: str, height: int, **more: Any) -> Any:
    layout = {"margin": {"l": 60, "r": 20, "t": 50, "b": 40}, "legend": {"orientation": "h", "y": -0.15},
              "hovermode": "x unified", **more}  # fmt: skip
    fig.update_layout(title=title, height=height, **layout)
    return fig


def _annotate(fig: Any, text: str) -> Any:
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False, font={"size": 14})
    return fig


def equity_figure(run: _Run, bench: pd.Series | None, log_scale: bool) -> Any:
    """Growth of 1 of the run and of the benchmark's buy & hold, on the run's bars."""
    import plotly.graph_objects as go

    from workbench.tearsheets import aligned_benchmark

    r = run.result
    equity = r.equity
    fig = go.Figure(go.Scatter(x=equity.index, y=(equity / equity.iloc[0]).to_numpy(), name=_text(_short_label(r)),
                               line={"width": 1.6, "color": "#1f77b4"}))  # fmt: skip
    if bench is not None:
        try:
            g = _growth(aligned_benchmark(bench, equity.index))
            fig.add_trace(go.Scatter(x=g.index, y=g.to_numpy(), name=f"{bench.name} buy & hold",
                                     line={"width": 1.2, "color": "#7f7f7f", "dash": "dot"}))  # fmt: skip
        except ParameterError as exc:
            _annotate(fig, html.escape(str(exc)))
    fig.update_yaxes(type="log" if log_scale else "linear",
                     title_text="growth of 1 (log scale)" if log_scale else "growth of 1")  # fmt: skip
    fig.update_xaxes(title_text="close (UTC)")
    name = f", benchmark {bench.name} buy & hold" if bench is not None else ""
    return _layout(fig, f"equity vs benchmark: growth of 1 (equity / first equity{name})", 420)


def drawdown_figure(run: _Run) -> Any:
    import plotly.graph_objects as go

    from workbench.risk.drawdown import underwater

    under = underwater(run.result.equity)
    fig = go.Figure(go.Scatter(x=under.index, y=under.to_numpy(), name="drawdown", fill="tozeroy",
                               line={"width": 1, "color": "#d62728"}))  # fmt: skip
    fig.update_yaxes(tickformat=".0%", title_text="equity / running peak - 1")
    return _layout(fig, f"drawdown (underwater, at each close): worst {_pct(under.min(), 1)}", 300, showlegend=True)


def exposure_figure(run: _Run) -> Any:
    import plotly.graph_objects as go

    closes = run.closes()
    fig = go.Figure()
    if closes is None:
        _annotate(fig, f"exposures need the run's bars: {run.why}")
    else:
        w = exposures(run.result, closes)
        for col in w.columns:
            style = {"gross": {"width": 2.4, "color": "black"}, "net": {"width": 2, "color": "#9467bd", "dash": "dot"}}
            fig.add_trace(go.Scatter(x=w.index, y=w[col].to_numpy(), name=_text(col), line={"shape": "hv", **style.get(col, {"width": 1.2})}))
    fig.update_yaxes(tickformat=".0%", title_text="fraction of equity")
    return _layout(fig, "exposure: quantity x close x multiplier / equity, at each close (gross = sum of |.|, net = sum)", 380)


def positions_figure(run: _Run) -> Any:
    import plotly.graph_objects as go

    pos = _positions(run.result)
    fig = go.Figure([go.Scatter(x=pos.index, y=pos[c].to_numpy(), name=_text(c), line={"shape": "hv", "width": 1.2})
                     for c in pos.columns])  # fmt: skip
    fig.update_yaxes(title_text="units (signed: + long, - short)")
    return _layout(fig, "positions: quantity held at each close", 320)


def trade_figure(run: _Run, k: int) -> tuple[Any, pd.DataFrame]:
    """Trade ``k`` (0-based) on its price chart, its symbol's fills in the window as markers."""
    import plotly.graph_objects as go

    r = run.result
    t = r.trades.iloc[k]
    sym = str(t["symbol"])
    title = (f"trade #{k + 1}: {_text(sym)} {_text(t['side'])} {t['quantity']:g}, {t['entry_time']:%Y-%m-%d} to "
             f"{t['exit_time']:%Y-%m-%d}, fills as markers")  # fmt: skip
    fills = r.fills[r.fills["symbol"].astype(str) == sym]
    fig = go.Figure()
    if run.bars is None:
        _annotate(fig, f"the price chart needs the run's bars: {run.why}")
        lo, hi = t["entry_time"], t["exit_time"]
    else:
        bars = run.bars[_data_symbol(r, sym)] if isinstance(run.bars.columns, pd.MultiIndex) else run.bars
        i0 = max(int(bars.index.searchsorted(t["entry_time"])) - TRADE_PAD, 0)
        i1 = min(int(bars.index.searchsorted(t["exit_time"])) + TRADE_PAD, len(bars) - 1)
        window = bars.iloc[i0 : i1 + 1]
        lo, hi = window.index[0], window.index[-1]
        fig.add_trace(go.Candlestick(x=window.index, open=window["Open"], high=window["High"], low=window["Low"],
                                     close=window["Close"], name=_text(f"{_data_symbol(r, sym)} bars")))  # fmt: skip
        if not (window.index.day_of_week >= 5).any():  # exchange days: no empty weekends (24/7 bars keep theirs)
            fig.update_xaxes(rangebreaks=[{"bounds": ["sat", "mon"]}])
    fills = fills[(fills["ts"] >= lo) & (fills["ts"] <= hi)]
    buy = fills["side"].astype(str).str.upper().str.endswith("BUY")
    for mask, name, symbol, colour in ((buy, "buy fills", "triangle-up", "#2ca02c"),
                                       (~buy, "sell fills", "triangle-down", "#d62728")):  # fmt: skip
        f = fills[mask]
        fig.add_trace(go.Scatter(
            x=pd.DatetimeIndex(f["ts"]), y=f["price"].to_numpy(float), mode="markers", name=name,
            marker={"symbol": symbol, "size": 13, "color": colour, "line": {"width": 1, "color": "black"}},
            customdata=np.stack([f["quantity"].to_numpy(float), f["fee"].to_numpy(float)], axis=1) if len(f) else None,
            hovertemplate="%{x}: " + name.split()[0] + " %{customdata[0]:g} @ %{y:.2f}, fee %{customdata[1]:.2f}<extra></extra>",
        ))  # fmt: skip
    fig.add_vrect(x0=t["entry_time"], x1=t["exit_time"], fillcolor="#1f77b4", opacity=0.08, line_width=0)
    fig.update_layout(xaxis_rangeslider_visible=False)
    fig.update_yaxes(title_text=f"price ({run.currency})")
    return _layout(fig, title, 420, hovermode="closest"), fills


def monthly_figure(run: _Run) -> Any:
    import plotly.graph_objects as go

    tables = run.tables()
    monthly, yearly = tables["monthly"], tables["yearly"]
    z = np.column_stack([monthly.to_numpy(dtype="float64"), yearly["strategy"].reindex(monthly.index).to_numpy(float)]) \
        if len(monthly) else np.zeros((0, 13))  # fmt: skip
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "year"]
    text = [["" if np.isnan(v) else _pct(v, 1) for v in row] for row in z]
    finite = np.abs(z[:, :12][np.isfinite(z[:, :12])])
    lim = float(np.quantile(finite, 0.98)) if finite.size and finite.max() > 0 else 0.01
    fig = go.Figure(go.Heatmap(z=z, x=months, y=[str(y) for y in monthly.index], text=text, texttemplate="%{text}",
                               colorscale="RdYlGn", zmid=0, zmin=-lim, zmax=lim, hoverongaps=False,
                               hovertemplate="%{y} %{x}: %{text}<extra></extra>", colorbar={"tickformat": ".0%"}))  # fmt: skip
    fig.update_yaxes(autorange="reversed", type="category")
    title = "monthly returns: prod(1 + r) - 1 of simple returns per calendar month (UTC), blank = no data; year compounded"
    return _layout(fig, title, max(260, 26 * len(monthly) + 120), hovermode="closest")


def compare_figure(a: _Run, b: _Run) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for run, colour in ((a, "#1f77b4"), (b, "#ff7f0e")):
        e = run.result.equity
        fig.add_trace(go.Scatter(x=e.index, y=(e / e.iloc[0]).to_numpy(), name=_text(f"{_short_label(run.result)} [{run.run_id[:8]}]"),
                                 line={"width": 1.5, "color": colour}))  # fmt: skip
    fig.update_yaxes(title_text="growth of 1 (equity / its first equity)")
    return _layout(fig, "compare two runs: growth of 1, each from its own first bar", 420)


def assets_figure(pnl: pd.DataFrame, currency: str) -> Any:
    import plotly.graph_objects as go

    cum = pnl.cumsum()
    fig = go.Figure([go.Scatter(x=cum.index, y=cum[c].to_numpy(), name=_text(c), line={"width": 1.3})
                     for c in cum.columns if cum[c].abs().max() > 1e-9])  # fmt: skip
    fig.add_trace(go.Scatter(x=cum.index, y=cum.sum(axis=1).to_numpy(), name="total", line={"width": 2.5, "color": "black"}))
    fig.update_yaxes(title_text=f"cumulative P&L ({currency})")
    return _layout(fig, f"P&L by asset: cumulative, net of fees ({currency}); other = equity change beyond the positions", 380)


def _stats_rows(a: pd.DataFrame, b: pd.DataFrame) -> list[list[str]]:
    """Stat, A, B, convention rows of two tearsheet stats tables (A's order, then B's extra)."""
    keys = list(dict.fromkeys([*a.index, *b.index]))
    conv = a["convention"].combine_first(b["convention"])
    return [[k, a["value"].get(k, ""), b["value"].get(k, ""), conv.get(k, "")] for k in keys]


def _row_label(row: Any) -> str:
    span = f"{str(row.data_start)[:10]} to {str(row.data_end)[:10]}" if row.data_start else "data not recorded"
    return f"{row.strategy} · {str(row.symbols).replace(',', ', ')} · {span} · {row.run_id}"


def _trade_label(i: int, t: dict[str, Any]) -> str:
    return (f"#{i + 1} {t['symbol']} {t['side']} {t['quantity']:g}: {t['entry_time']:%Y-%m-%d} to "
            f"{t['exit_time']:%Y-%m-%d}, P&L {t['pnl']:,.2f}")  # fmt: skip


# -- the imperative shell: widgets, callbacks, drawing --------------------------------------
class PortfolioReview:
    """The portfolio review dashboard (module notes).

    ``store`` is an :class:`~workbench.adapters.experiments.SQLiteStore`, ``"default"``
    (``WORKBENCH_STORE``) or None (no store: only runs made here, such as the sample
    book). Bad content in the store never raises: it shows as one line in the status.

    >>> import workbench as wb
    >>> wb.dashboards.portfolio.PortfolioReview(store=None).run is None  # nothing stored, nothing run yet
    True
    """

    def __init__(self, store: Any = "default", *, max_runs: int = MAX_RUNS) -> None:
        from workbench.api import resolve_store
        from workbench.data import sample_symbols

        if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1:
            raise ParameterError(f"PortfolioReview: max_runs must be an integer >= 1, got max_runs={max_runs!r}")
        self.store = resolve_store(store)
        if self.store is not None and not hasattr(self.store, "frame"):
            raise ParameterError(f"PortfolioReview: store must be an SQLiteStore, 'default' or None, got {store!r}")
        self.max_runs = max_runs
        self.status = Status()
        self.run: _Run | None = None
        self.figures: dict[str, Any] = {}  # the figure each Output shows now, by name
        self.draws: Counter[str] = Counter()  # how often each section was drawn
        self._runs: OrderedDict[str, _Run] = OrderedDict()
        self._memory: dict[str, BacktestResult] = {}  # runs made here while the store is off
        self._benchmarks: dict[str, pd.Series] = {}
        self._attribution: dict[str, Any] = {}
        self._dirty: set[str] = set()
        self._quiet = False
        self._build(sample_symbols())
        self._wire()
        guarded(self.status)(self._start)()

    # -- layout -------------------------------------------------------------------------
    def _build(self, symbols: list[str]) -> None:
        wide = widgets.Layout(width="820px")
        label = {"description_width": "90px"}
        self.run_dd = GuardedDropdown(description="run", layout=wide, style=label)
        self.refresh_btn = widgets.Button(description="refresh list", tooltip="read the store's runs again")
        self.sample_btn = widgets.Button(description="run the sample book", layout=widgets.Layout(width="180px"),
                                         tooltip="run and store a 2-sleeve book over sample symbols")  # fmt: skip
        self.bench_dd = GuardedDropdown(description="benchmark", style=label,
                                        options=[("none", ""), *((f"{s} buy & hold", s) for s in symbols)])  # fmt: skip
        self.log_cb = GuardedCheckbox(description="log scale", value=False, indent=False)
        self.trade_dd = GuardedDropdown(description="trade", layout=wide, style=label)
        self.compare_dd = GuardedDropdown(description="compare with", layout=wide, style=label, options=[("none", "")])
        self.out = {k: widgets.Output() for k in ("equity", "drawdown", "exposure", "positions", "trade", "sleeves",
                                                  "assets", "monthly", "compare")}  # fmt: skip
        self.html = {k: widgets.HTML() for k in ("header", "note", "perf_note", "trades", "fills", "sleeves",
                                                 "assets", "compare")}  # fmt: skip
        for name, w in (("run", self.run_dd), ("refresh", self.refresh_btn), ("sample", self.sample_btn),
                        ("benchmark", self.bench_dd), ("log", self.log_cb), ("trade", self.trade_dd),
                        ("compare", self.compare_dd)):  # fmt: skip
            w.add_class(f"wb-{name}")
        h = self.html
        pages = [
            widgets.VBox([widgets.HBox([self.bench_dd, self.log_cb]), self.out["equity"], self.out["drawdown"], h["perf_note"]]),
            widgets.VBox([self.out["exposure"], self.out["positions"]]),
            widgets.VBox([widgets.HTML("<h4>closed trades</h4>"), h["trades"], self.trade_dd, self.out["trade"], h["fills"]]),
            widgets.VBox([widgets.HTML("<h4>by strategy (sleeve)</h4>"), self.out["sleeves"], h["sleeves"],
                          widgets.HTML("<h4>by asset</h4>"), self.out["assets"], h["assets"]]),
            widgets.VBox([self.out["monthly"]]),
            widgets.VBox([self.compare_dd, self.out["compare"], h["compare"]]),
        ]  # fmt: skip
        self.tabs = GuardedTab(children=pages, titles=TABS)
        self.tabs.add_class("wb-tabs")
        top = widgets.HBox([self.run_dd, self.refresh_btn, self.sample_btn])
        self.widget = widgets.VBox([top, self.status.widget, h["header"], h["note"], self.tabs])

    def _wire(self) -> None:
        g = guarded(self.status)
        self.run_dd.observe(g(self._on_run), names="value")
        self.bench_dd.observe(g(self._on_performance), names="value")
        self.log_cb.observe(g(self._on_performance), names="value")
        self.trade_dd.observe(g(self._on_trade), names="value")
        self.compare_dd.observe(g(self._on_compare), names="value")
        self.tabs.observe(g(self._on_tab), names="selected_index")
        self.refresh_btn.on_click(g(self._on_refresh))
        self.sample_btn.on_click(g(self._on_sample))

    def show(self) -> None:
        """Put the dashboard on the page (Voila, JupyterLab)."""
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # -- the runs -------------------------------------------------------------------------
    def _options(self) -> list[tuple[str, str]]:
        """(label, run id) of the runs made here, then the store's backtests, newest first."""
        opts = [(f"{r.spec.strategy.name} · {', '.join(r.spec.symbols)} · not stored · {rid}", rid)
                for rid, r in reversed(self._memory.items())]  # fmt: skip
        if self.store is not None:
            from workbench.research.experiments import runs

            rows = runs(kind="backtest", status="ok", store=self.store).iloc[::-1].head(self.max_runs)
            opts += [(_row_label(row), str(row.run_id)) for row in rows.itertuples(index=False)]
        return opts

    def _set(self, dd: GuardedDropdown, value: Any, options: list[tuple[str, Any]] | None = None) -> None:
        """Change a control from the kernel without running its callback."""
        self._quiet = True  # options then value, in this order: a held notification would validate the old value
        try:
            if options is not None:
                dd.options = options
            if value in [v for _, v in dd.options]:
                dd.value = value
        finally:
            self._quiet = False

    def _load(self, run_id: str) -> _Run:
        if run_id in self._runs:
            self._runs.move_to_end(run_id)
            return self._runs[run_id]
        if run_id in self._memory:
            result = self._memory[run_id]
        else:
            from workbench.research.experiments import load_run

            result = load_run(run_id, store=self.store)
        run = _Run(run_id, result, *_run_bars(result))
        self._runs[run_id] = run
        while len(self._runs) > CACHE_RUNS:
            self._runs.popitem(last=False)
        return run

    def _start(self) -> None:
        self.status.busy("reading the experiment store")
        opts = self._options()
        self._set(self.run_dd, None, opts)
        if not opts:
            return self._empty()
        failed = []
        for _, run_id in opts[:5]:  # a run that cannot be loaded (an untrusted spec) must not blank the page
            try:
                self._set(self.run_dd, run_id)
                return self.status.ready(self._show_run(run_id) + "".join(failed))
            except WorkbenchError as exc:
                failed.append(f" (skipped {html.escape(run_id)}: {html.escape(str(exc))[:200]})")
        raise ParameterError("none of the 5 newest runs could be loaded:" + "".join(failed))

    def _empty(self) -> None:
        where = f"the experiment store {html.escape(str(self.store.path))}" if self.store is not None \
            else "this session (the experiment store is off: WORKBENCH_STORE=off)"  # fmt: skip
        self.html["note"].value = (f"<p><b>No backtest runs in {where}.</b> Run one with <code>wb.backtest(...)</code> "
                                   "or a runbook (<code>make demo</code>), then <i>refresh list</i>; or press "
                                   "<i>run the sample book</i> for a 2-sleeve book over sample symbols (trend on "
                                   "SPX, momentum rotation on GOOG/IXIC), stored and shown here.</p>")  # fmt: skip
        self.tabs.layout.display = "none"
        self.status.ready("no backtest runs to review")

    def _show_run(self, run_id: str) -> str:
        """Make ``run_id`` the run on show; every tab goes stale and the visible one is drawn."""
        started = time.perf_counter()
        run = self._load(run_id)
        self.run = run
        r = run.result
        first = r.spec.symbols[0] if r.spec.symbols else ""
        values = [v for _, v in self.bench_dd.options]
        self._set(self.bench_dd, first if first in values else ("SPX" if "SPX" in values else ""))
        trades = r.trades.head(MAX_TRADE_ROWS).to_dict("records")
        self._set(self.trade_dd, 0 if trades else None, [(_trade_label(i, t), i) for i, t in enumerate(trades)])
        self.trade_dd.disabled = not trades
        self._set(self.compare_dd, self.compare_dd.value if self.compare_dd.value != run_id else "",
                  [("none", ""), *((lab, v) for lab, v in self.run_dd.options if v != run_id)])  # fmt: skip
        self.html["header"].value = self._header(run)
        self.html["note"].value = ""
        self.tabs.layout.display = None
        self._invalidate(*(k for keys in TAB_SECTIONS.values() for k in keys))
        return f"{html.escape(_short_label(r))} · run {html.escape(run_id)} ({time.perf_counter() - started:.2f} s)"

    def _header(self, run: _Run) -> str:
        r = run.result
        v = run.tables()["stats"]["value"]
        s = {k: html.escape(str(v.get(k, "n/a"))) for k in ("total_return", "cagr", "sharpe", "max_drawdown",
                                                             "n_trades", "final_equity", "periods_per_year")}  # fmt: skip
        data = r.spec.data
        span = f"{data.start[:10]} to {data.end[:10]}, {data.bars} bars" if data else "data not recorded"
        bars = "" if run.bars is not None else f"<br><span style='color:#b60'>no price panels: {run.why}</span>"
        return (f"<b>{html.escape(_short_label(r))}</b> · engine {html.escape(r.spec.engine)} · {html.escape(span)} · "
                f"run <code>{html.escape(run.run_id)}</code><br>total return {s['total_return']} · CAGR {s['cagr']} · "
                f"Sharpe {s['sharpe']} (simple per-bar returns, annualised with {s['periods_per_year']} bars a year) · "
                f"max drawdown {s['max_drawdown']} · closed trades {s['n_trades']} · final equity "
                f"{s['final_equity']} {html.escape(run.currency)}{bars}"
                f"<div style='color:#555;font-size:12px'>{html.escape(r.spec.label)[:400]}</div>")  # fmt: skip

    # -- drawing --------------------------------------------------------------------------
    def _invalidate(self, *keys: str) -> None:
        """Mark sections stale and draw those on the visible tab."""
        self._dirty.update(keys)
        self._draw_visible()

    def _draw_visible(self) -> None:
        if self.run is None:
            return
        for key in TAB_SECTIONS.get(self.tabs.selected_index, ()):
            if key in self._dirty:
                self._dirty.discard(key)
                getattr(self, f"_draw_{key}")()
                self.draws[key] += 1

    def _show(self, name: str, fig: Any) -> None:
        self.figures[name] = fig
        show_figure(self.out[name], fig)

    def _clear(self, name: str) -> None:
        self.figures.pop(name, None)
        self.out[name].clear_output()

    def _benchmark(self, symbol: str) -> pd.Series | None:
        if not symbol:
            return None
        if symbol not in self._benchmarks:
            from workbench.data import load_prices

            self._benchmarks[symbol] = load_prices(symbol, progress=False)["Close"].rename(symbol)
        return self._benchmarks[symbol]

    def _draw_performance(self) -> None:
        run = self.run
        self._show("equity", equity_figure(run, self._benchmark(self.bench_dd.value), self.log_cb.value))
        self._show("drawdown", drawdown_figure(run))
        self.html["perf_note"].value = _note_html(
            "Growth of 1 = equity / equity at the run's first close (simple per-bar returns, compounded). The "
            "benchmark buys and holds the symbol's close from the run's first bar, aligned on the run's bars "
            "(its return on a bar compounds its own returns since the previous bar). Drawdown = equity / running "
            "peak - 1 at each close.")  # fmt: skip

    def _draw_positions(self) -> None:
        self._show("exposure", exposure_figure(self.run))
        self._show("positions", positions_figure(self.run))

    def _draw_trades(self) -> None:
        run = self.run
        trades = run.result.trades
        rows = [[str(i + 1), t["symbol"], t["side"], f"{t['quantity']:g}", f"{t['entry_time']:%Y-%m-%d}",
                 _money(t["entry_price"]), f"{t['exit_time']:%Y-%m-%d}", _money(t["exit_price"]), _money(t["fees"]),
                 _money(t["pnl"]), _pct(t["return"]), f"{pd.Timedelta(t['duration']).days} days"]
                for i, t in enumerate(trades.head(MAX_TRADE_ROWS).to_dict("records"))]  # fmt: skip
        cur = run.currency
        header = ["#", "symbol", "side", "quantity (units)", "entry (UTC)", f"entry price ({cur})", "exit (UTC)",
                  f"exit price ({cur})", f"fees ({cur})", f"P&L net of fees ({cur})", "return (P&L / entry notional)",
                  "held (calendar)"]  # fmt: skip
        more = f"showing the first {MAX_TRADE_ROWS} of {len(trades)} trades; " if len(trades) > MAX_TRADE_ROWS else ""
        note = f"{more}{len(trades)} closed trades; a partial close is its own trade; the open position is not listed."
        self.html["trades"].value = _html_table(header, rows, name="trades-table", height=280, note=note) if rows \
            else _note_html("No closed trades in this run.")  # fmt: skip

    def _draw_drill(self) -> None:
        k = self.trade_dd.value
        if k is None:
            self._clear("trade")
            self.html["fills"].value = ""
            return
        fig, fills = trade_figure(self.run, int(k))
        self._show("trade", fig)
        t = self.run.result.trades.iloc[int(k)]
        rows = [[f"{f['ts']:%Y-%m-%d}", f["side"], f"{f['quantity']:g}", _money(f["price"]), _money(f["fee"]),
                 "yes" if t["entry_time"] <= f["ts"] <= t["exit_time"] else ""] for f in fills.to_dict("records")]  # fmt: skip
        cur = self.run.currency
        self.html["fills"].value = _html_table(
            ["fill (UTC)", "side", "quantity (units)", f"price ({cur})", f"fee ({cur})", "within the trade"], rows,
            name="fills-table", note=f"fills of {html.escape(str(t['symbol']))} in the chart's window "
                                     f"({TRADE_PAD} bars before the entry to {TRADE_PAD} after the exit)")  # fmt: skip

    def _draw_attribution(self) -> None:
        run = self.run
        r = run.result
        if not hasattr(r.spec.strategy, "plan"):
            self._clear("sleeves")
            self.html["sleeves"].value = _note_html(f"One strategy ({html.escape(r.spec.strategy.name)}): all of the "
                                                    "run's P&amp;L is its own. Books split it by sleeve here.")  # fmt: skip
        elif run.bars is None:
            self._clear("sleeves")
            self.html["sleeves"].value = _note_html(f"Attribution by sleeve reruns the book's plan on its bars: {run.why}.")
        else:
            self._draw_sleeves(run)
        closes = run.closes()
        if closes is None:
            self._clear("assets")
            self.html["assets"].value = _note_html(f"P&L by asset needs the run's bars: {run.why}.")
            return
        pnl = pnl_by_asset(r, closes)
        self._show("assets", assets_figure(pnl, run.currency))
        fees = r.fills.groupby(r.fills["symbol"].astype(str))["fee"].sum() if len(r.fills) else pd.Series(dtype=float)
        total = pnl.sum()
        rows = [[c, _money(total[c]), _money(fees.get(c, 0.0)), _pct(total[c] / total.sum()) if total.sum() else "n/a",
                 _pct(total[c] / r.spec.cash)] for c in pnl.columns]  # fmt: skip
        cur = run.currency
        self.html["assets"].value = _html_table(
            ["asset", f"P&L net of fees ({cur})", f"fees ({cur})", "share of P&L", "return contribution (P&L / starting cash)"],
            rows, name="assets-table", note="holding P&amp;L q[t-1] x (C[t] - C[t-1]) x multiplier plus each fill's "
            "signed qty x (C[t] - price) x multiplier - fee; the rows sum to the equity change.")  # fmt: skip

    def _draw_sleeves(self, run: _Run) -> None:
        from workbench.research.attribution import attribution

        if run.run_id not in self._attribution:
            self._attribution[run.run_id] = attribution(run.result, run.bars)
        attr = self._attribution[run.run_id]
        self._show("sleeves", attr.figure().update_layout(height=380, yaxis_title=f"P&L ({run.currency})"))
        s = attr.summary
        conf = s.attrs.get("confidence", 0.99)
        rows = [[str(name), _money(x["pnl"]), _money(x["fees"]), _pct(x["return_contribution"]), _pct(x["pnl_share"]),
                 "" if pd.isna(x["turnover"]) else f"{x['turnover']:.2f}", _pct(x["mean_capital"]),
                 _pct(x["component_var"]), _pct(x["var_share"])] for name, x in s.iterrows()]  # fmt: skip
        cur = run.currency
        self.html["sleeves"].value = _html_table(
            ["sleeve", f"P&L net of fees ({cur})", f"fees ({cur})", "return contribution (P&L / starting cash)",
             "share of P&L", "turnover (one-way, per year)", "mean capital weight",
             f"component VaR (delta-normal {_pct(conf, 0)}, 1 bar, fraction of equity)", "share of VaR"],
            rows, name="sleeves-table", note="unattributed: what no sleeve wanted (lot rounding, netting); other: "
            "equity change beyond the positions' P&amp;L.")  # fmt: skip

    def _draw_monthly(self) -> None:
        self._show("monthly", monthly_figure(self.run))

    def _draw_compare(self) -> None:
        other = self.compare_dd.value
        if not other:
            self._clear("compare")
            self.html["compare"].value = _note_html("Pick a second run to compare it with this one.")
            return
        a, b = self.run, self._load(other)
        self._show("compare", compare_figure(a, b))
        rows = _stats_rows(a.tables()["stats"], b.tables()["stats"])
        self.html["compare"].value = _html_table(
            ["stat", f"A: {_short_label(a.result)} [{a.run_id[:8]}]", f"B: {_short_label(b.result)} [{b.run_id[:8]}]",
             "convention"], rows, name="compare-table", note="result.stats of each run, formatted as in the tearsheet.")  # fmt: skip

    # -- callbacks --------------------------------------------------------------------------
    def _on_run(self, change: dict[str, Any]) -> None:
        if self._quiet or not change["new"]:
            return
        self.status.busy("loading the run")
        try:
            message = self._show_run(change["new"])
        except Exception:
            self._set(self.run_dd, change["old"])  # the dropdown shows the run still on show
            raise
        self.status.ready(message)

    def _redraw(self, what: str, *keys: str) -> None:
        if self._quiet or self.run is None:
            return
        self.status.busy(f"drawing {what}")
        self._invalidate(*keys)
        self.status.ready(f"{html.escape(_short_label(self.run.result))}: {what} drawn")

    def _on_performance(self, _change: dict[str, Any]) -> None:
        self._redraw("equity vs benchmark", "performance")

    def _on_trade(self, _change: dict[str, Any]) -> None:
        self._redraw("the trade", "drill")

    def _on_compare(self, _change: dict[str, Any]) -> None:
        self._redraw("the comparison", "compare")

    def _on_tab(self, change: dict[str, Any]) -> None:
        if isinstance(change["new"], int):
            self._redraw(f"the {TABS[change['new']].lower()} tab")

    def _on_refresh(self, _button: Any = None) -> None:
        self.status.busy("reading the experiment store")
        keep = self.run_dd.value
        opts = self._options()
        self._set(self.run_dd, keep, opts)
        if not opts:
            return self._empty()
        if self.run_dd.value != keep or self.run is None:
            self._set(self.run_dd, self.run_dd.value or opts[0][1])
            return self.status.ready(self._show_run(self.run_dd.value))
        current = self.run.run_id
        self._set(self.compare_dd, self.compare_dd.value, [("none", ""), *((lab, v) for lab, v in opts if v != current)])
        self.status.ready(f"{len(opts)} runs listed")

    def _on_sample(self, _button: Any = None) -> None:
        from workbench.api import backtest

        self.status.busy("running the sample book (2 sleeves, about 2 s)")
        book, panel = _sample_book()
        result = backtest(book, panel, cash=SAMPLE_BOOK["cash"], commission=SAMPLE_BOOK["commission"],
                          store=self.store)  # fmt: skip
        if self.store is None:
            self._memory[result.run_id] = result
        self._set(self.run_dd, result.run_id, self._options())
        self.status.ready("the sample book: " + self._show_run(result.run_id))
