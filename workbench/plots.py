"""Plotly figures for backtests (the shell: the domain never imports plotly)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.market import resample_ohlcv
from workbench.strategy.metrics import drawdown
from workbench.strategy.result import BacktestResult

__all__ = ["equity_figure", "trades_figure", "candlestick_figure", "monthly_returns", "monthly_heatmap_figure"]


def equity_figure(result: BacktestResult, title: str | None = None) -> go.Figure:
    """Equity (top) and drawdown from the running peak (bottom)."""
    eq = result.equity
    dd = drawdown(eq)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04)
    fig.add_trace(go.Scatter(x=eq.index, y=eq.to_numpy(), name="equity", line={"width": 1.5}), 1, 1)
    fig.add_trace(
        go.Scatter(x=dd.index, y=dd.to_numpy(), name="drawdown", fill="tozeroy", line={"width": 1, "color": "#d62728"}),
        2,
        1,
    )
    fig.update_yaxes(title_text=f"equity ({', '.join(result.spec.symbols)})", row=1, col=1)
    fig.update_yaxes(title_text="drawdown", tickformat=".0%", row=2, col=1)
    fig.update_layout(
        title=title or result.spec.label,
        height=520,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        hovermode="x unified",
        showlegend=False,
    )
    return fig


def trades_figure(prices: pd.DataFrame, result: BacktestResult, symbol: str | None = None) -> go.Figure:
    """Close price with fills marked: ▲ buys, ▼ sells. For a panel, pick ``symbol``
    (default: the first)."""
    fills = result.fills
    if isinstance(prices.columns, pd.MultiIndex):
        symbol = symbol or str(prices.columns.get_level_values(0)[0])
        prices = prices[symbol]
        fills = fills[fills["symbol"].astype(str).str.split(".").str[0] == symbol.replace("@", "-")]
    fig = go.Figure(go.Scatter(x=prices.index, y=prices["Close"].to_numpy(), name="close", line={"width": 1}))
    for side, marker, color in (("BUY", "triangle-up", "#2ca02c"), ("SELL", "triangle-down", "#d62728")):
        f = fills[fills["side"] == side]
        fig.add_trace(
            go.Scatter(
                x=f["ts"], y=f["price"], mode="markers", name=side.lower(),
                marker={"symbol": marker, "size": 9, "color": color},
                hovertemplate="%{x}<br>" + side + " %{customdata:g} @ %{y:.2f}<extra></extra>",
                customdata=f["quantity"],
            )
        )  # fmt: skip
    fig.update_layout(title=f"fills on price{' (' + symbol + ')' if symbol else ''}", height=380,
                      margin={"l": 60, "r": 20, "t": 50, "b": 40})  # fmt: skip
    return fig


def monthly_returns(result: BacktestResult) -> pd.DataFrame:
    """Compounded return of each calendar month (UTC): rows are years, columns Jan..Dec,
    plus the year's compounded total."""
    eq = result.equity
    month_end = eq.groupby([eq.index.year, eq.index.month]).last()
    start = float(eq.iloc[0])
    prev = month_end.shift(1)
    prev.iloc[0] = start
    rets = (month_end / prev - 1.0).rename("return")
    table = rets.unstack(level=1).reindex(columns=range(1, 13))
    table.index.name, table.columns.name = "year", "month"
    year_end = eq.groupby(eq.index.year).last()
    year_start = year_end.shift(1).fillna(start)
    table["year"] = year_end / year_start - 1.0
    return table


_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def monthly_heatmap_figure(result: BacktestResult) -> go.Figure:
    """Monthly returns heatmap (red losses, green gains, 0 white), the year's total at right."""
    table = monthly_returns(result)
    z = table.to_numpy() * 100
    text = [[("" if pd.isna(v) else f"{v:.1f}%") for v in row] for row in z]
    lim = float(pd.Series(z[:, :12].ravel()).abs().quantile(0.98)) if z.size else 1.0
    fig = go.Figure(
        go.Heatmap(
            z=z, x=[*_MONTHS, "Year"], y=[str(y) for y in table.index], text=text,
            texttemplate="%{text}", colorscale="RdYlGn", zmid=0, zmin=-lim, zmax=lim,
            hovertemplate="%{y} %{x}: %{text}<extra></extra>", colorbar={"title": "%"},
        )
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_layout(title=f"monthly returns: {result.spec.strategy.name} on {', '.join(result.spec.symbols)}",
                      height=max(260, 26 * len(table) + 120), margin={"l": 60, "r": 20, "t": 50, "b": 40})  # fmt: skip
    return fig


_DISPLAY_STEPS = ("1h", "4h", "1d", "1w", "1M")


def candlestick_figure(prices: pd.DataFrame, title: str | None = None, max_bars: int = 3000) -> go.Figure:
    """Candlesticks (top) and volume (bottom) for one OHLCV frame.

    More than ``max_bars`` bars would make the browser crawl, so the frame is resampled
    (look-ahead safe, see :func:`~workbench.market.resample_ohlcv`) to the first of
    1h, 4h, 1d, 1w, 1M that fits, and the title says so.

    >>> import workbench as wb
    >>> fig = candlestick_figure(wb.load_prices("GOOG"))
    >>> [t.type for t in fig.data]
    ['candlestick', 'bar']
    """
    symbol = prices.attrs.get("symbol", "")
    tf = prices.attrs.get("timeframe")
    shown, note = prices, ""
    if len(prices) > max_bars:
        for step in _DISPLAY_STEPS:
            try:
                candidate = resample_ohlcv(prices, step, source_timeframe=tf)
            except Exception:  # finer than the source or misaligned: try the next step
                continue
            if len(candidate) <= max_bars:
                shown, note = candidate, f" (resampled to {step} for display)"
                break
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.03)
    fig.add_trace(
        go.Candlestick(x=shown.index, open=shown["Open"], high=shown["High"], low=shown["Low"],
                       close=shown["Close"], name=symbol or "price"),
        1, 1,
    )  # fmt: skip
    up = (shown["Close"] >= shown["Open"]).to_numpy()
    fig.add_trace(
        go.Bar(x=shown.index, y=shown["Volume"].fillna(0.0), name="volume",
               marker_color=["#2ca02c" if u else "#d62728" for u in up], opacity=0.6),
        2, 1,
    )  # fmt: skip
    fig.update_layout(
        title=(title or f"{symbol} {prices.attrs.get('timeframe', '')} ({prices.attrs.get('source', 'user')})") + note,
        height=560, xaxis_rangeslider_visible=False, showlegend=False, margin={"t": 60, "b": 30},
    )  # fmt: skip
    fig.update_yaxes(title_text="price", row=1, col=1)
    fig.update_yaxes(title_text="volume", row=2, col=1)
    return fig
