"""Tearsheet: the performance panels of one backtest, drawn in plotly, tables and HTML.

Why not quantstats: on this stack its yearly bar chart draws bars under the wrong year
labels, it shows months outside the data as 0.00, its HTML calls an undefined ``save()``
and a run without trades crashes it. Here every panel is computed from the result with
the conventions below and drawn with plotly, so a figure's numbers are the tables'.

Conventions
-----------
- **Returns** are the result's simple per-bar returns (``result.returns``: the equity's
  ``pct_change``, the first bar having none). Growth of 1 = equity / first equity.
- **Compounding**: a month's or a year's return is ``prod(1 + r) - 1`` over the bars
  stamped in it; **calendar** months and years are in UTC (a naive index is read as UTC).
  A month or year with no return in it is NaN (blank in the heatmap), never 0.
- **Benchmark** (``benchmark=``): a price Series (values all > 0), a simple-returns
  Series (any value <= 0; every value > -1; an all-positive returns series must be passed
  as its growth ``(1 + r).cumprod()``), a :class:`BacktestResult` (its equity) or a
  sample symbol (its ``Close`` from :func:`workbench.data.load_prices`). It is aligned on
  the result's bars: the benchmark return of bar ``t`` compounds its own returns stamped
  in ``(t-1, t]`` (for prices: the last price at or before ``t`` over the last at or
  before ``t-1``), 0 in a covered interval without a stamp, NaN where the benchmark has
  not started or has ended.
- **Stats** are ``result.stats`` (:data:`~workbench.strategy.metrics.STAT_CONVENTIONS`),
  formatted: fractions as percentages ("12.3 %"), durations in days ("584 days"), ratios
  to 2 decimals, money to cents. The benchmark's column uses the same metric functions
  with the result's periods per year and risk-free rate.
- **Rolling** Sharpe and volatility over :data:`ROLLING_WINDOW` bars, annualised as in
  :mod:`workbench.strategy.metrics` (ddof = 1, × √ppy, per-bar rf compounded from the
  annual rate); NaN where the standard deviation is 0.
- **VaR** lines: 1-bar historical VaR at 95 % and 99 % (``inverted_cdf`` order statistic,
  :func:`workbench.risk.var.historical_var`), positive losses drawn at ``-VaR``.
- **Drawdowns**: the episodes of :mod:`workbench.risk.drawdown` (peak, trough, recovery
  or "open"; depth = trough / peak - 1; length in calendar time from peak to recovery
  or the last bar, and in bars).
- **Open position**: the fills replayed through :class:`~workbench.trading.positions.Position`
  with the spec's cost basis; ``entry`` is the average price of the open lots,
  ``unrealised_pnl`` is gross of fees. ``mark`` is the last close at or before the last
  bar when ``prices=`` is given; otherwise, with one open symbol, the price implied by
  the account identity equity = cash + quantity × mark × multiplier (cash = starting
  cash - signed fill notional - fees); with several and no prices it is NaN.
"""

from __future__ import annotations

import html
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from workbench._fs import atomic_write
from workbench.errors import ParameterError
from workbench.risk import drawdown as dd
from workbench.risk.var import historical_var
from workbench.strategy import metrics as m
from workbench.strategy.result import BacktestResult
from workbench.trading.enums import Side
from workbench.trading.orders import Fill
from workbench.trading.positions import Position
from workbench.trading.values import Instrument

__all__ = [
    "tearsheet_figures",
    "tearsheet_tables",
    "tearsheet_html",
    "aligned_benchmark",
    "compounded_returns",
    "rolling_sharpe_volatility",
    "format_percent",
    "format_duration",
    "FIGURE_KEYS",
    "ROLLING_WINDOW",
    "TOP_DRAWDOWNS",
    "PLOTLY_CONFIG",
]

ROLLING_WINDOW = 126  # bars: half a year of exchange days
TOP_DRAWDOWNS = 5
VAR_LEVELS = (0.95, 0.99)
#: no plotly logo and no "edit in the cloud" link on any figure
PLOTLY_CONFIG = {"displaylogo": False, "showLink": False}
FIGURE_KEYS = ("equity", "drawdown", "monthly", "yearly", "rolling", "distribution", "trades")
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_STRATEGY, _BENCH = "#1f77b4", "#7f7f7f"


# -- inputs ---------------------------------------------------------------------------------
def _check_result(result: object) -> BacktestResult:
    if not isinstance(result, BacktestResult):
        raise ParameterError(f"tearsheet: result must be a BacktestResult, got {type(result).__name__}")
    return result


def _utc_index(s: pd.Series, what: str) -> pd.Series:
    if not isinstance(s.index, pd.DatetimeIndex):
        raise ParameterError(f"tearsheet: {what} must have a DatetimeIndex, got {type(s.index).__name__}")
    s = s.copy()
    s.index = s.index.tz_localize("UTC") if s.index.tz is None else s.index.tz_convert("UTC")
    return s.sort_index()


def _strategy_returns(result: BacktestResult) -> pd.Series:
    """Per-bar returns on the equity's bars (NaN at the first bar), UTC."""
    equity = _utc_index(result.equity, "result.equity")
    rets = _utc_index(result.returns, "result.returns").reindex(equity.index)
    return rets.rename(result.spec.strategy.name)


def _benchmark_input(benchmark: object) -> tuple[pd.Series, bool, str]:
    """(values, is_returns, name) of a benchmark (module conventions)."""
    if isinstance(benchmark, BacktestResult):
        return benchmark.equity, False, benchmark.spec.label
    if isinstance(benchmark, str):
        from workbench.data import load_prices  # loaded only when a symbol is asked for

        return load_prices(benchmark)["Close"], False, benchmark
    if not isinstance(benchmark, pd.Series):
        raise ParameterError("tearsheet: benchmark must be a returns or price Series, a BacktestResult or a "
                             f"sample symbol, got {type(benchmark).__name__}")  # fmt: skip
    values = pd.to_numeric(benchmark, errors="coerce").dropna()
    if values.empty or not np.isfinite(values.to_numpy()).all():
        raise ParameterError(f"tearsheet: benchmark must hold finite numbers, got {len(values)} usable values")
    is_returns = bool((values <= 0).any())
    if is_returns and (values <= -1).any():
        raise ParameterError("tearsheet: a benchmark with values <= 0 is read as simple returns, which must be "
                             f"> -1, got min={float(values.min())!r}")  # fmt: skip
    return values, is_returns, str(benchmark.name or "benchmark")


def aligned_benchmark(benchmark: object, index: pd.DatetimeIndex) -> pd.Series:
    """The benchmark's simple return on each bar of ``index`` (module conventions).

    >>> idx = pd.date_range("2024-01-01", periods=4, tz="UTC")
    >>> aligned_benchmark(pd.Series([100.0, 110.0, 99.0], index=idx[:3], name="B"), idx).round(6).tolist()
    [nan, 0.1, -0.1, nan]
    """
    values, is_returns, name = _benchmark_input(benchmark)
    values = _utc_index(values.astype("float64"), "benchmark")
    values = values[~values.index.duplicated(keep="last")]
    index = _utc_index(pd.Series(0.0, index=index), "index").index
    if is_returns:
        rets, start = values, values.index[0]
    else:  # a price series: the first return needs the price before it
        rets, start = values.pct_change().iloc[1:], values.index[0]
    pos = index.searchsorted(rets.index, side="left")  # bar i with t[i-1] < stamp <= t[i]
    keep = (pos >= 1) & (pos < len(index))
    growth = (1.0 + rets[keep]).groupby(pos[keep]).prod()
    out = np.zeros(len(index))
    out[growth.index.to_numpy()] = growth.to_numpy() - 1.0
    first = int(index.searchsorted(start, side="left")) if is_returns else int(index.searchsorted(start, side="left")) + 1
    last = int(index.searchsorted(values.index[-1], side="left"))  # the bar whose interval holds the last stamp
    covered = (np.arange(len(index)) >= max(first, 1)) & (np.arange(len(index)) <= last)
    if not covered.any():
        raise ParameterError(f"tearsheet: benchmark {name!r} ({values.index[0]} .. {values.index[-1]}) does not "
                             f"cover the result's bars ({index[0]} .. {index[-1]})")  # fmt: skip
    return pd.Series(np.where(covered, out, np.nan), index=index, name=name)


def _growth(rets: pd.Series) -> pd.Series:
    """Growth of 1 from the bar before the first return; NaN where there is no return."""
    valid = rets.notna().to_numpy()
    g = (1.0 + rets.fillna(0.0)).cumprod()
    first = int(np.argmax(valid)) - 1 if valid.any() else 0
    base = max(first, 0)
    g = g / g.iloc[base]
    keep = valid.copy()
    keep[base] = True
    return g.where(keep)


def compounded_returns(returns: pd.Series, by: str) -> pd.Series:
    """``prod(1 + r) - 1`` per calendar ``"year"`` or ``"month"`` (UTC), periods without a
    return left out.

    >>> idx = pd.to_datetime(["2020-12-31", "2021-01-04", "2021-01-05"], utc=True)
    >>> compounded_returns(pd.Series([0.1, 0.1, -0.5], index=idx), "year").round(4).tolist()
    [0.1, -0.45]
    """
    if by not in ("year", "month"):
        raise ParameterError(f"compounded_returns: by must be 'year' or 'month', got by={by!r}")
    r = _utc_index(returns, "returns").dropna()
    keys = [r.index.year] if by == "year" else [r.index.year, r.index.month]
    out = (1.0 + r).groupby(keys).prod() - 1.0
    out.index.names = ["year"] if by == "year" else ["year", "month"]
    return out.rename(returns.name)


class _Inputs:
    """The series every panel reads, computed once per tearsheet."""

    def __init__(self, result: object, benchmark: object) -> None:
        self.result = _check_result(result)
        self.returns = _strategy_returns(self.result)
        self.bench = None if benchmark is None else aligned_benchmark(benchmark, self.returns.index)
        stats = self.result.stats
        self.ppy = float(stats.get("periods_per_year", m.periods_per_year(self.returns.index)))
        self.rf = float(stats.get("risk_free_rate", 0.0))
        self.title = self.result.spec.label


# -- tables ---------------------------------------------------------------------------------
def _yearly(inp: _Inputs) -> pd.DataFrame:
    cols = {"strategy": compounded_returns(inp.returns, "year")}
    if inp.bench is not None:
        cols["benchmark"] = compounded_returns(inp.bench, "year")
    table = pd.DataFrame(cols)
    if len(table):
        table = table.reindex(range(int(table.index.min()), int(table.index.max()) + 1))
    table.index.name = "year"
    return table


def _monthly(inp: _Inputs) -> pd.DataFrame:
    """Years × months 1..12 of compounded returns, NaN where a month has no return."""
    months = compounded_returns(inp.returns, "month")
    table = months.unstack(level="month") if len(months) else pd.DataFrame()
    table = table.reindex(columns=range(1, 13))
    if len(table):
        table = table.reindex(range(int(table.index.min()), int(table.index.max()) + 1))
    table.index.name, table.columns.name = "year", "month"
    return table.astype("float64")


DRAWDOWN_COLUMNS = ["start", "trough", "end", "depth", "bars", "length"]


def _drawdowns(result: BacktestResult) -> pd.DataFrame:
    """The worst :data:`TOP_DRAWDOWNS` episodes; ``end`` is the recovery or ``"open"``."""
    worst = dd.drawdown_table(result.equity, TOP_DRAWDOWNS)
    table = pd.DataFrame({
        "start": worst["peak"], "trough": worst["trough"],
        "end": pd.Series([r if r is not None else "open" for r in worst["recovery"]], index=worst.index, dtype=object),
        "depth": worst["depth"].astype("float64"), "bars": worst["bars"].astype("int64"), "length": worst["duration"],
    }, columns=DRAWDOWN_COLUMNS)  # fmt: skip
    table.index.name = "rank"
    return table


OPEN_POSITION_COLUMNS = ["symbol", "quantity", "entry", "mark", "unrealised_pnl", "mark_source"]


def _instrument(symbol: str) -> Instrument:
    """An instrument for a fill symbol the spec does not list (``TICKER.EXCHANGE``)."""
    ticker, _, exchange = symbol.rpartition(".")
    return Instrument(ticker=ticker or symbol, exchange=exchange if ticker else "SIM")


def _replay(result: BacktestResult) -> dict[str, Position]:
    """Each symbol's Position after every fill, booked with the spec's cost basis."""
    instruments = {i.symbol: i for i in result.spec.instruments}
    book: dict[str, Position] = {}
    for row in result.fills.itertuples(index=False):
        sym = str(row.symbol)
        inst = instruments.get(sym) or _instrument(sym)
        pos = book.setdefault(sym, Position(inst, result.spec.cost_basis))
        pos.apply(Fill(fill_id=str(row.fill_id), order_id=str(row.order_id), instrument=inst, side=Side.parse(row.side),
                       quantity=float(row.quantity), price=float(row.price), fee=float(row.fee), ts=row.ts))  # fmt: skip
    return book


def _final_quantities(result: BacktestResult) -> pd.Series:
    pos = result.positions
    if isinstance(pos, pd.DataFrame):
        return pos.iloc[-1].astype("float64") if len(pos) else pd.Series(dtype="float64")
    return pd.Series({str(pos.name): float(pos.iloc[-1])}) if len(pos) else pd.Series(dtype="float64")


def _close_marks(result: BacktestResult, prices: pd.DataFrame) -> dict[str, float]:
    """Last close at or before the result's last bar, keyed by instrument symbol."""
    last = _utc_index(result.equity, "result.equity").index[-1]
    panel = isinstance(prices.columns, pd.MultiIndex)
    marks = {}
    for inst, data_symbol in zip(result.spec.instruments, result.spec.symbols, strict=False):
        if panel:
            closes = prices[data_symbol]["Close"] if data_symbol in prices.columns.get_level_values(0) else None
        else:
            closes = prices["Close"] if "Close" in prices.columns else None
        if closes is None:
            raise ParameterError(f"tearsheet: prices have no Close for {data_symbol!r}")
        closes = _utc_index(closes, "prices").loc[:last].dropna()
        marks[inst.symbol] = float(closes.iloc[-1]) if len(closes) else math.nan
    return marks


def _implied_mark(result: BacktestResult, pos: Position, qty: float) -> float:
    """The one open symbol's price implied by equity = cash + qty × mark × multiplier."""
    f = result.fills
    mult = {i.symbol: i.multiplier for i in result.spec.instruments}
    sign = np.where(f["side"].astype(str).str.upper() == "BUY", 1.0, -1.0)
    notional = f["quantity"].to_numpy(dtype="float64") * f["price"].to_numpy(dtype="float64")
    notional *= np.array([mult.get(str(s), 1.0) for s in f["symbol"]])
    cash = float(result.spec.cash) - float((sign * notional).sum()) - float(f["fee"].sum())
    return (float(result.equity.iloc[-1]) - cash) / (qty * pos.instrument.multiplier)


def _open_position(result: BacktestResult, prices: pd.DataFrame | None) -> pd.DataFrame:
    final = _final_quantities(result)
    book = _replay(result) if len(result.fills) else {}
    open_syms = [s for s, q in final.items() if abs(q) > 1e-12]
    marks = _close_marks(result, prices) if prices is not None else {}
    rows = []
    for sym in open_syms:
        qty = float(final[sym])
        pos = book.get(sym)
        consistent = pos is not None and abs(pos.quantity - qty) <= 1e-9 * max(1.0, abs(qty))
        if prices is not None:
            mark, source = marks.get(sym, math.nan), "close"
        elif len(open_syms) == 1 and pos is not None:
            mark, source = _implied_mark(result, pos, qty), "implied by equity - cash"
        else:
            mark, source = math.nan, "n/a: pass prices="
        entry = pos.avg_price if consistent else math.nan
        pnl = pos.unrealized_pnl(mark) if consistent and math.isfinite(mark) else math.nan
        rows.append({"symbol": sym, "quantity": qty, "entry": entry, "mark": mark, "unrealised_pnl": pnl,
                     "mark_source": source})  # fmt: skip
    return pd.DataFrame(rows, columns=OPEN_POSITION_COLUMNS)


# -- formatting for people ------------------------------------------------------------------
_PERCENT = {"total_return", "cagr", "annual_volatility", "max_drawdown", "win_rate", "annual_return",
            "exposure", "risk_free_rate"}  # fmt: skip
_RATIO = {"sharpe", "sortino", "calmar", "profit_factor", "skew", "kurtosis", "turnover"}
_MONEY = {"final_equity", "expectancy"}
_LOCAL_CONVENTIONS = {
    "start": "first bar (UTC)",
    "end": "last bar (UTC)",
    "final_equity": "equity at the last close, account currency",
}


def format_percent(value: float, digits: int = 1) -> str:
    """``0.123`` → ``"12.3 %"``; NaN → ``"n/a"``."""
    v = float(value)
    return "n/a" if math.isnan(v) else ("inf" if math.isinf(v) else f"{v * 100:.{digits}f} %")


def format_duration(value: object) -> str:
    """A Timedelta as whole days (``"584 days"``), with hh:mm when not a whole day."""
    td = pd.Timedelta(value)
    if pd.isna(td):
        return "n/a"
    days, rest = td.days, td - pd.Timedelta(days=td.days)
    text = f"{days} day" + ("" if days == 1 else "s")
    if rest:
        text += f" {int(rest.total_seconds() // 3600):02d}:{int(rest.total_seconds() % 3600 // 60):02d}"
    return text


def _format_stat(key: str, value: Any) -> str:
    if isinstance(value, pd.Timedelta):
        return format_duration(value)
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else value.strftime("%Y-%m-%d %H:%M")
    if not isinstance(value, (int, float, np.number)) or isinstance(value, bool):
        return str(value)
    v = float(value)
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if key in _PERCENT:
        return format_percent(v)
    if key == "psr":
        return format_percent(v, 2)
    if key in _MONEY:
        return f"{v:,.2f}"
    if key in _RATIO:
        return f"{v:.2f}"
    return f"{v:g}"


def _benchmark_stats(inp: _Inputs) -> dict[str, Any]:
    """The benchmark's headline stats with the strategy's metric functions and conventions."""
    r = inp.bench.dropna() if inp.bench is not None else pd.Series(dtype="float64")
    if len(r) < 2:
        return {}
    g = _growth(inp.bench).dropna()
    return {"total_return": m.total_return(g), "cagr": m.cagr(g), "annual_volatility": m.annual_volatility(r, inp.ppy),
            "sharpe": m.sharpe_ratio(r, inp.ppy, inp.rf), "max_drawdown": m.max_drawdown(g),
            "annual_return": m.annual_return(r, inp.ppy), "sortino": m.sortino_ratio(r, inp.ppy),
            "calmar": m.calmar_ratio(r, inp.ppy), "max_drawdown_duration": m.max_drawdown_duration(g),
            "start": g.index[0], "end": g.index[-1]}  # fmt: skip


def _stats(inp: _Inputs) -> pd.DataFrame:
    stats = inp.result.stats
    table = pd.DataFrame({
        "value": [_format_stat(k, v) for k, v in stats.items()],
        "convention": [m.STAT_CONVENTIONS.get(k, _LOCAL_CONVENTIONS.get(k, "")) for k in stats.index],
    }, index=pd.Index([str(k) for k in stats.index], name="stat"))  # fmt: skip
    if inp.bench is not None:
        bench = _benchmark_stats(inp)
        table.insert(1, "benchmark", [_format_stat(k, bench[k]) if k in bench else "" for k in table.index])
    return table


def tearsheet_tables(result: BacktestResult, benchmark: object = None, *,
                     prices: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:  # fmt: skip
    """The tearsheet's tables: ``stats`` (formatted strings and their conventions),
    ``drawdowns``, ``yearly``, ``monthly`` (numeric fractions) and ``open_position``.

    ``prices`` (the bars the run used) marks the open position at its last close; without
    them a single open position is marked at the price the account identity implies
    (module conventions). Empty tables keep their columns.
    """
    inp = _Inputs(result, benchmark)
    return _tables(inp, prices)


def _tables(inp: _Inputs, prices: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    if prices is not None and not isinstance(prices, pd.DataFrame):
        raise ParameterError(f"tearsheet: prices must be an OHLCV frame or panel, got {type(prices).__name__}")
    return {"stats": _stats(inp), "drawdowns": _drawdowns(inp.result), "yearly": _yearly(inp),
            "monthly": _monthly(inp), "open_position": _open_position(inp.result, prices)}  # fmt: skip


# -- figures --------------------------------------------------------------------------------
def _note(fig: go.Figure, text: str) -> go.Figure:
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False, font={"size": 14})
    return fig


def _equity_figure(inp: _Inputs, log_scale: bool) -> go.Figure:
    fig = go.Figure(go.Scatter(x=inp.returns.index, y=_growth(inp.returns).to_numpy(), name=inp.returns.name,
                               line={"width": 1.5, "color": _STRATEGY}))  # fmt: skip
    if inp.bench is not None:
        fig.add_trace(go.Scatter(x=inp.bench.index, y=_growth(inp.bench).to_numpy(), name=inp.bench.name,
                                 line={"width": 1.2, "color": _BENCH, "dash": "dot"}))  # fmt: skip
    fig.update_yaxes(type="log" if log_scale else "linear", title_text="growth of 1")
    fig.update_layout(title=f"growth of 1: {inp.title}", height=420, hovermode="x unified")
    return fig


def _drawdown_figure(inp: _Inputs, table: pd.DataFrame) -> go.Figure:
    under = dd.underwater(inp.result.equity)
    fig = go.Figure(go.Scatter(x=under.index, y=under.to_numpy(), name="drawdown", fill="tozeroy",
                               line={"width": 1, "color": "#d62728"}))  # fmt: skip
    last = under.index[-1]
    for rank, row in table.iterrows():
        end = last if isinstance(row["end"], str) else row["end"]
        fig.add_vrect(x0=row["start"], x1=end, fillcolor="#d62728", opacity=0.08, line_width=0,
                      annotation_text=f"#{rank} {format_percent(row['depth'])}", annotation_position="bottom left")  # fmt: skip
    if table.empty:
        _note(fig, "no drawdown: equity never fell below its running peak")
    fig.update_layout(title=f"underwater, worst {TOP_DRAWDOWNS} drawdowns shaded", yaxis_tickformat=".0%",
                      height=340, showlegend=False)  # fmt: skip
    return fig


def _monthly_figure(table: pd.DataFrame) -> go.Figure:
    z = table.to_numpy(dtype="float64")
    text = [["" if np.isnan(v) else format_percent(v) for v in row] for row in z]
    finite = np.abs(z[np.isfinite(z)])
    lim = float(np.quantile(finite, 0.98)) if finite.size and finite.max() > 0 else 0.01
    fig = go.Figure(go.Heatmap(z=z, x=_MONTHS, y=[str(y) for y in table.index], text=text, texttemplate="%{text}",
                               colorscale="RdYlGn", zmid=0, zmin=-lim, zmax=lim, hoverongaps=False,
                               hovertemplate="%{y} %{x}: %{text}<extra></extra>", colorbar={"tickformat": ".0%"}))  # fmt: skip
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_layout(title="monthly returns (compounded, UTC; blank: no data)", height=max(260, 26 * len(table) + 120))
    return fig


def _yearly_figure(table: pd.DataFrame) -> go.Figure:
    years = [int(y) for y in table.index]
    fig = go.Figure()
    for col, color in (("strategy", _STRATEGY), ("benchmark", _BENCH)):
        if col in table.columns:
            vals = table[col].to_numpy(dtype="float64")
            fig.add_trace(go.Bar(x=years, y=vals, name=col, marker_color=color,
                                 text=["" if np.isnan(v) else format_percent(v) for v in vals],
                                 textposition="outside"))  # fmt: skip
    fig.update_xaxes(type="category", title_text="calendar year (UTC)")
    fig.update_layout(title="yearly returns (compounded)", barmode="group", yaxis_tickformat=".0%", height=360)
    return fig


def rolling_sharpe_volatility(returns: pd.Series, ppy: float, rf: float = 0.0,
                              window: int = ROLLING_WINDOW) -> pd.DataFrame:  # fmt: skip
    """Annualised Sharpe and volatility of each trailing ``window`` of returns (module
    conventions), stamped at the window's last bar; empty when there are fewer returns."""
    r = returns.dropna()
    if len(r) < window:
        return pd.DataFrame(columns=["sharpe", "volatility"], index=r.index[:0], dtype="float64")
    win = np.lib.stride_tricks.sliding_window_view(r.to_numpy(dtype="float64"), window)
    excess = win - ((1.0 + rf) ** (1.0 / ppy) - 1.0)
    sd = excess.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(sd > 0, excess.mean(axis=1) / sd * math.sqrt(ppy), np.nan)
    vol = win.std(axis=1, ddof=1) * math.sqrt(ppy)
    return pd.DataFrame({"sharpe": sharpe, "volatility": vol}, index=r.index[window - 1 :])


def _rolling_figure(inp: _Inputs) -> go.Figure:
    roll = rolling_sharpe_volatility(inp.returns, inp.ppy, inp.rf)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06)
    fig.add_trace(go.Scatter(x=roll.index, y=roll["sharpe"].to_numpy(), name="Sharpe", line={"color": _STRATEGY}), 1, 1)
    fig.add_trace(go.Scatter(x=roll.index, y=roll["volatility"].to_numpy(), name="volatility",
                             line={"color": "#ff7f0e"}), 2, 1)  # fmt: skip
    fig.update_yaxes(title_text="Sharpe", row=1, col=1)
    fig.update_yaxes(title_text="volatility", tickformat=".0%", row=2, col=1)
    if roll.empty:
        _note(fig, f"fewer than {ROLLING_WINDOW} returns: no rolling window")
    fig.update_layout(title=f"rolling {ROLLING_WINDOW}-bar Sharpe and volatility (annualised, ppy {inp.ppy:g})",
                      height=420, showlegend=False)  # fmt: skip
    return fig


def _distribution_figure(inp: _Inputs) -> go.Figure:
    r = inp.returns.dropna()
    fig = go.Figure(go.Histogram(x=r.to_numpy(), nbinsx=80, name="returns", marker_color=_STRATEGY))
    if len(r) >= 2:
        for level, dash, side in zip(VAR_LEVELS, ("dash", "dot"), ("top right", "top left"), strict=True):
            var = historical_var(r, level).value
            fig.add_vline(x=-var, line={"color": "#d62728", "dash": dash}, annotation_position=side,
                          annotation_text=f"VaR {level:.0%}: {format_percent(var, 2)}")  # fmt: skip
    else:
        _note(fig, "fewer than 2 returns: no VaR")
    fig.update_layout(title="per-bar returns with historical VaR (1 bar)", xaxis_tickformat=".1%", height=340,
                      showlegend=False, bargap=0.02)  # fmt: skip
    return fig


def _trades_figure(result: BacktestResult) -> go.Figure:
    trades = result.trades
    if trades.empty:
        fig = _note(go.Figure(), "no trades: no position was closed in this run")
        fig.update_layout(title="trades", height=260, xaxis={"visible": False}, yaxis={"visible": False})
        return fig
    n = np.arange(1, len(trades) + 1)
    pnl = trades["pnl"].to_numpy(dtype="float64")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.55, 0.45])
    fig.add_trace(go.Bar(x=n, y=pnl, name="P&L", marker_color=np.where(pnl >= 0, "#2ca02c", "#d62728").tolist(),
                         customdata=np.stack([trades["symbol"].astype(str), trades["exit_time"].astype(str)], axis=1),
                         hovertemplate="#%{x} %{customdata[0]} exit %{customdata[1]}: %{y:,.2f}<extra></extra>"), 1, 1)  # fmt: skip
    fig.add_trace(go.Scatter(x=n, y=np.cumsum(pnl), name="cumulative", line={"color": _STRATEGY}), 2, 1)
    fig.update_yaxes(title_text="P&L per trade", row=1, col=1)
    fig.update_yaxes(title_text="cumulative P&L", row=2, col=1)
    fig.update_xaxes(title_text="closed trade #", row=2, col=1)
    fig.update_layout(title=f"trades: {len(trades)} closed, P&L net of fees", height=420, showlegend=False)
    return fig


def tearsheet_figures(result: BacktestResult, benchmark: object = None, *, log_scale: bool = False) -> dict[str, go.Figure]:
    """The tearsheet's plotly figures, keyed by :data:`FIGURE_KEYS` (module conventions).

    ``equity`` (growth of 1 against the benchmark; ``log_scale`` for a log axis),
    ``drawdown`` (underwater, worst episodes shaded), ``monthly`` (heatmap), ``yearly``
    (bars at the actual years), ``rolling``, ``distribution`` (with VaR lines) and
    ``trades`` (an annotated empty figure when there are none).

    >>> import workbench as wb
    >>> r = wb.backtest("sma_crossover", wb.load_prices("GOOG").loc["2008-01-01":"2008-02-15"], store=None)
    >>> sorted(tearsheet_figures(r)) == sorted(FIGURE_KEYS)
    True
    """
    if not isinstance(log_scale, bool):
        raise ParameterError(f"tearsheet: log_scale must be True or False, got log_scale={log_scale!r}")
    return _figures(_Inputs(result, benchmark), log_scale)


def _figures(inp: _Inputs, log_scale: bool) -> dict[str, go.Figure]:
    return {"equity": _equity_figure(inp, log_scale), "drawdown": _drawdown_figure(inp, _drawdowns(inp.result)),
            "monthly": _monthly_figure(_monthly(inp)), "yearly": _yearly_figure(_yearly(inp)),
            "rolling": _rolling_figure(inp), "distribution": _distribution_figure(inp),
            "trades": _trades_figure(inp.result)}  # fmt: skip


# -- HTML -----------------------------------------------------------------------------------
_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}th{background:#f3f3f3}"
        ".stats td:last-child{text-align:left;white-space:normal}.meta{color:#555}")  # fmt: skip


def _people(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """A copy of a numeric table with fractions as percentages, for the HTML."""
    out = table.copy()
    if name in ("yearly", "monthly"):
        out = out.apply(lambda col: col.map(lambda v: "" if pd.isna(v) else format_percent(v)))
        return out.set_axis(_MONTHS, axis=1) if name == "monthly" else out
    if name == "drawdowns":
        out["depth"] = out["depth"].map(format_percent)
        out["length"] = out["length"].map(format_duration)
        for col in ("start", "trough", "end"):
            out[col] = out[col].map(lambda v: v if isinstance(v, str) else f"{pd.Timestamp(v):%Y-%m-%d}")
    if name == "open_position":
        for col in ("entry", "mark", "unrealised_pnl"):
            out[col] = out[col].map(lambda v: "n/a" if pd.isna(v) else f"{v:,.2f}")
    return out


def _figure_html(fig: go.Figure, first: bool) -> str:
    with warnings.catch_warnings():
        # plotly >= 6 no longer knows showLink; it is kept so older plotly.js stays link-free
        warnings.filterwarnings("ignore", message=r"\s*Unrecognized config options supplied")
        return pio.to_html(fig, full_html=False, include_plotlyjs=first, config=PLOTLY_CONFIG)


def tearsheet_html(result: BacktestResult, path: str | Path, *, benchmark: object = None, title: str | None = None,
                   prices: pd.DataFrame | None = None, log_scale: bool = False) -> Path:  # fmt: skip
    """Write one self-contained, offline HTML tearsheet to ``path`` (atomically).

    plotly.js is inlined once (with the first figure), no file is fetched from any host,
    figures show no plotly logo or cloud link; the tables follow the figures.
    """
    if not isinstance(path, (str, Path)):
        raise ParameterError(f"tearsheet: path must be a str or Path, got {type(path).__name__}")
    if title is not None and not isinstance(title, str):
        raise ParameterError(f"tearsheet: title must be a string, got title={title!r}")
    inp = _Inputs(result, benchmark)
    title = title or f"tearsheet: {inp.title}"
    if not isinstance(log_scale, bool):
        raise ParameterError(f"tearsheet: log_scale must be True or False, got log_scale={log_scale!r}")
    figures = _figures(inp, log_scale)
    tables = _tables(inp, prices)
    r = inp.result
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p class='meta'>{html.escape(r.spec.label)} · engine {html.escape(r.spec.engine)} · spec "
             f"{html.escape(r.id)} · {inp.returns.index[0]:%Y-%m-%d} .. {inp.returns.index[-1]:%Y-%m-%d}"
             f"{' · benchmark ' + html.escape(str(inp.bench.name)) if inp.bench is not None else ''}</p>",
             "<h2>stats</h2>", tables["stats"].to_html(classes="stats")]  # fmt: skip
    for i, key in enumerate(FIGURE_KEYS):
        parts += [f"<h2>{key}</h2>", _figure_html(figures[key], i == 0)]
    for key in ("drawdowns", "yearly", "monthly", "open_position"):
        table = tables[key]
        parts += [f"<h2>{key.replace('_', ' ')}</h2>",
                  _people(table, key).to_html(na_rep="") if len(table) else "<p>none</p>"]  # fmt: skip
    parts.append("</body></html>")
    out = Path(path)
    atomic_write(out, "\n".join(parts).encode("utf-8"))
    return out
