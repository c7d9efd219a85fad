# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Backtest dashboard
#
# Pick a symbol and the SMA windows; the equity curve updates in place. Signals at the close, fills at the next open, all equity in whole units, 10 bps commission.

# %%
import ipywidgets as widgets
import plotly.graph_objects as go
from IPython.display import display

import workbench as wb

symbols = [s for s in wb.sample_symbols() if s not in ("WTI", "VIX", "BTCUSD")]  # OHLCV with volume, enough bars
PAIRS = {"10 / 30": (10, 30), "20 / 50": (20, 50), "50 / 200": (50, 200)}


def run(symbol, windows):
    fast, slow = PAIRS[windows]
    return wb.backtest("sma_crossover", symbol, {"fast": fast, "slow": slow}, commission=0.001)


# GuardedDropdown refuses a front-end message naming anything but one of its options.
symbol_dd = wb.dashboards.GuardedDropdown(options=symbols, value="GOOG", description="symbol")
windows_dd = wb.dashboards.GuardedDropdown(options=list(PAIRS), value="10 / 30", description="SMA")
first = run(symbol_dd.value, windows_dd.value)
# FigureWidget gets its data at construction (Voila renders it straight away).
fig = go.FigureWidget(
    data=[go.Scatter(x=first.equity.index, y=first.equity.to_numpy(), name="equity")],
    layout=go.Layout(title=f"{symbol_dd.value} SMA {windows_dd.value}: equity", height=450,
                     margin={"l": 60, "r": 20, "t": 50, "b": 40}),
)
stats = widgets.HTML()


def show_stats(result):
    s = result.stats
    stats.value = (f"<b>total return</b> {s['total_return']:.2%} &nbsp; <b>CAGR</b> {s['cagr']:.2%} &nbsp; "
                   f"<b>Sharpe</b> {s['sharpe']:.2f} &nbsp; <b>max drawdown</b> {s['max_drawdown']:.2%} &nbsp; "
                   f"<b>trades</b> {s['n_trades']}")


@wb.dashboards.guarded(stats)  # an error shows as one line in the stats bar; the dashboard keeps working
def on_change(_change):
    result = run(symbol_dd.value, windows_dd.value)
    with fig.batch_update():
        fig.data[0].x = result.equity.index
        fig.data[0].y = result.equity.to_numpy()
        fig.layout.title.text = f"{symbol_dd.value} SMA {windows_dd.value}: equity"
    show_stats(result)


show_stats(first)
symbol_dd.observe(on_change, names="value")
windows_dd.observe(on_change, names="value")
display(widgets.VBox([widgets.HBox([symbol_dd, windows_dd]), stats, fig]))
