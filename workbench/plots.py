"""Plotly figures for backtests (the shell: the domain never imports plotly)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.strategy.metrics import drawdown
from workbench.strategy.result import BacktestResult

__all__ = ["equity_figure", "trades_figure"]


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
    fig.update_yaxes(title_text=f"equity ({result.spec.get('symbol')})", row=1, col=1)
    fig.update_yaxes(title_text="drawdown", tickformat=".0%", row=2, col=1)
    fig.update_layout(
        title=title or f"{result.spec['strategy']} {result.spec['params']} on {result.spec['symbol']}",
        height=520,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        hovermode="x unified",
        showlegend=False,
    )
    return fig


def trades_figure(prices: pd.DataFrame, result: BacktestResult) -> go.Figure:
    """Close price with fills marked: ▲ buys, ▼ sells."""
    fig = go.Figure(go.Scatter(x=prices.index, y=prices["Close"].to_numpy(), name="close", line={"width": 1}))
    fills = result.fills
    for side, symbol, color in (("BUY", "triangle-up", "#2ca02c"), ("SELL", "triangle-down", "#d62728")):
        f = fills[fills["side"] == side]
        fig.add_trace(
            go.Scatter(
                x=f["ts"], y=f["price"], mode="markers", name=side.lower(),
                marker={"symbol": symbol, "size": 9, "color": color},
                hovertemplate="%{x}<br>" + side + " %{customdata:g} @ %{y:.2f}<extra></extra>",
                customdata=f["quantity"],
            )
        )  # fmt: skip
    fig.update_layout(title="fills on price", height=380, margin={"l": 60, "r": 20, "t": 50, "b": 40})
    return fig
