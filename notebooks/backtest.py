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
# # Backtest runbook
#
# Any built-in strategy (`wb.STRATEGIES`) by name and parameters, on one symbol or a panel, against a benchmark, with the engine cross-check. Parameterised with papermill (`workbench run backtest -r strategy pairs -r symbol SPX+IXIC -r params "window: 60"` or `make demo`). Conventions: bars are labelled by period start (UTC); signals are computed at a bar's close and market orders fill at the **next bar's open**; position size is all available equity in whole units (a panel strategy's target weights of equity); commission is charged on every fill; statistics use 252 periods per year for exchange daily bars and a 0 % risk-free rate (see `result.conventions`).

# %% tags=["parameters"]
strategy: str = "sma_crossover"  # one of wb.STRATEGIES
params: str = "fast: 10, slow: 30"  # the strategy's parameters as name: value pairs, comma-separated; empty for its defaults
symbol: str = "GOOG"  # one of wb.sample_symbols(), or SYM1+SYM2 for a panel strategy (pairs, xs_momentum)
benchmark: str = ""  # a sample symbol whose buy & hold the tearsheet compares against; empty: the first symbol; none: no benchmark
cash: float = 10_000.0  # starting cash, in the instrument's currency
commission: float = 0.001  # fraction of notional per fill: 0.001 is 10 bps
start: str = ""  # first date like 2006-01-01, empty for the start of the sample
end: str = ""  # last date, empty for the end of the sample
check_engines: bool = True  # rerun on the vectorized engine (vectorbt) and compare fills and equity
tearsheet: bool = True  # also write the tearsheet as one offline HTML file beside the report


# %%
import plotly.graph_objects as go
import plotly.io as pio
import workbench as wb

pio.renderers.default = "plotly_mimetype+notebook"  # JupyterLab + offline, self-contained HTML
run = wb.runbook.BacktestParams(strategy=strategy, params=params, symbol=symbol, benchmark=benchmark, cash=cash,
                                commission=commission, start=start, end=end, check_engines=check_engines,
                                tearsheet=tearsheet)  # validated: a typo or a bad value stops here, naming it
spec = run.spec  # one BacktestSpec (strategy, costs, sizing, timing): every cell below runs it
spec

# %% [markdown]
# ## Data

# %%
prices = wb.load_prices(run.data, start=run.start, end=run.end)
print(f"{run.symbol}: {len(prices)} bars {prices.index[0]:%Y-%m-%d} .. {prices.index[-1]:%Y-%m-%d} "
      f"(source: {prices.attrs.get('source', 'sample')}, adjusted: {prices.attrs.get('adjusted', '-')})")
prices.tail()

# %%
if len(run.symbols) == 1:
    wb.plots.candlestick_figure(prices).show()
else:  # a panel: each close as growth of 1 from the first bar
    closes = prices.xs("Close", axis=1, level=1)
    go.Figure([go.Scatter(x=closes.index, y=(closes[s] / closes[s].dropna().iloc[0]).to_numpy(), name=s)
               for s in run.symbols],
              layout={"title": "closes, growth of 1 from the first bar", "height": 380}).show()

# %% [markdown]
# ## Backtest

# %%
result = wb.backtest(spec, prices)
result.stats.to_frame("value")

# %%
wb.plots.equity_figure(result).show()

# %%
for traded in run.symbols:
    wb.plots.trades_figure(prices, result, symbol=traded if len(run.symbols) > 1 else None).show()

# %% [markdown]
# ## Engine cross-check
#
# The same spec on the vectorized engine (vectorbt): fills, trades and equity must agree (1e-9 relative without costs, 1e-6 with).

# %%
if run.check_engines:
    comparison = wb.compare_engines(spec, prices)
    print(comparison.report())
    comparison.raise_if_different()

# %% [markdown]
# ## Tearsheet
#
# Drawn in plotly against buy-and-hold of the benchmark from the local data (no download):
# growth of 1, drawdowns, monthly returns (compounded per calendar month, UTC; blank outside
# the data), yearly returns under their own years, rolling Sharpe and volatility, the return
# distribution with its VaR, and the trades. The same panels go to one offline HTML file.

# %%
if run.benchmark == "none":
    benchmark = None
else:
    benchmark = wb.load_prices(run.benchmark, start=run.start, end=run.end)["Close"]
    benchmark = benchmark.rename(f"{run.benchmark} buy & hold")
figures = wb.tearsheets.tearsheet_figures(result, benchmark=benchmark)
for name in ("equity", "drawdown", "monthly", "yearly"):
    figures[name].show()
tables = wb.tearsheets.tearsheet_tables(result, benchmark=benchmark, prices=prices)
display(tables["stats"])  # noqa: F821 - IPython's display
display(tables["open_position"])  # noqa: F821

# %%
if run.tearsheet:
    target = wb.report.report_path("tearsheet", run.symbol, suffix=".html")
    path = wb.tearsheets.tearsheet_html(result, target, benchmark=benchmark, prices=prices,
                                        title=f"{spec.strategy} on {run.symbol}")
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
