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
# # SMA crossover backtest runbook
#
# Parameterised with papermill (`workbench run` or `make demo`). Conventions: bars are labelled by period start (UTC); signals are computed at a bar's close and market orders fill at the **next bar's open**; position size is all available equity in whole units; commission is charged on every fill; statistics use 252 periods per year for exchange daily bars and a 0 % risk-free rate (see `result.conventions`).

# %% tags=["parameters"]
symbol: str = "GOOG"  # one of wb.sample_symbols()
fast: int = 10  # fast SMA window in bars, at least 2
slow: int = 30  # slow SMA window in bars, more than fast
cash: float = 10_000.0  # starting cash, in the instrument's currency
commission: float = 0.001  # fraction of notional per fill: 0.001 is 10 bps
start: str = ""  # first date like 2006-01-01, empty for the start of the sample
end: str = ""  # last date, empty for the end of the sample
allow_short: bool = False  # short when fast is below slow instead of going flat
check_engines: bool = True  # rerun on the vectorized engine (vectorbt) and compare fills and equity
tearsheet: bool = True  # also write the tearsheet as one offline HTML file beside the report


# %%
import plotly.io as pio
import workbench as wb

pio.renderers.default = "plotly_mimetype+notebook"  # JupyterLab + offline, self-contained HTML
params = wb.runbook.BacktestParams(symbol=symbol, fast=fast, slow=slow, cash=cash, commission=commission,
                                   start=start, end=end, allow_short=allow_short,
                                   check_engines=check_engines, tearsheet=tearsheet)
spec = params.spec  # one BacktestSpec (strategy, costs, sizing, timing): every cell below runs it
spec

# %% [markdown]
# ## Data

# %%
prices = wb.load_prices(params.symbol, start=params.start, end=params.end)
print(f"{params.symbol}: {len(prices)} bars {prices.index[0]:%Y-%m-%d} .. {prices.index[-1]:%Y-%m-%d} "
      f"(source: {prices.attrs['source']}, adjusted: {prices.attrs['adjusted']})")
prices.tail()

# %%
wb.plots.candlestick_figure(prices).show()

# %% [markdown]
# ## Backtest

# %%
result = wb.backtest(spec, prices)
result.stats.to_frame("value")

# %%
wb.plots.equity_figure(result).show()

# %%
wb.plots.trades_figure(prices, result).show()

# %% [markdown]
# ## Engine cross-check
#
# The same spec on the vectorized engine (vectorbt): fills, trades and equity must agree (1e-9 relative without costs, 1e-6 with).

# %%
if params.check_engines:
    comparison = wb.compare_engines(spec, prices)
    print(comparison.report())
    comparison.raise_if_different()

# %% [markdown]
# ## Tearsheet
#
# Drawn in plotly against buy-and-hold of the same symbol from the local data (no download):
# growth of 1, drawdowns, monthly returns (compounded per calendar month, UTC; blank outside
# the data), yearly returns under their own years, rolling Sharpe and volatility, the return
# distribution with its VaR, and the trades. The same panels go to one offline HTML file.

# %%
benchmark = prices["Close"].rename(f"{params.symbol} buy & hold")
figures = wb.tearsheets.tearsheet_figures(result, benchmark=benchmark)
for name in ("equity", "drawdown", "monthly", "yearly"):
    figures[name].show()
tables = wb.tearsheets.tearsheet_tables(result, benchmark=benchmark, prices=prices)
display(tables["stats"])  # noqa: F821 - IPython's display
display(tables["open_position"])  # noqa: F821

# %%
if params.tearsheet:
    target = wb.report.report_path("tearsheet", params.symbol, suffix=".html")
    path = wb.tearsheets.tearsheet_html(result, target, benchmark=benchmark, prices=prices,
                                        title=f"{params.strategy} on {params.symbol}")
    print(f"tearsheet: {path.name}")

# %% [markdown]
# ## Closed trades (P&L net of fees)

# %%
result.trades

# %% [markdown]
# ## Orders

# %%
result.orders[["order_id", "side", "quantity", "placed", "updated", "status", "avg_fill_price", "fees", "reason"]]

# %%
print("spec id:", result.id)
result.spec
