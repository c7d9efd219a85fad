# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Portfolio review runbook: a multi-strategy book
#
# Several strategies (sleeves) in one account, capital re-allocated across them on a schedule
# from their trailing returns (`wb.MultiStrategy`), backtested on both engines, then split by
# sleeve: P&L, fees, turnover and component VaR (`wb.attribution`). Conventions: sleeve returns
# are yesterday's weights times today's close-to-close returns; allocations use data up to the
# rebalance bar's close and trade at the next open; VaR is delta-normal 99 % one-bar.

# %% tags=["parameters"]
sleeves: str = "trend: sma_crossover(fast: 20, slow: 100) @ SPX; tsmom: ts_momentum @ WTI; rotation: xs_momentum(top_k: 1) @ GOOG+IXIC"  # name: strategy(params) @ SYMBOL or SYM1+SYM2; semicolons between
allocation: str = "hrp"  # equal_weight, inverse_volatility, equal_risk_contribution, min_variance, max_sharpe, hrp
rebalance: str = "MS"  # a number of bars, or a calendar alias: MS (month start), QS, W-MON
lookback: int = 126  # bars of sleeve returns each allocation sees
cash: float = 100_000.0  # starting cash
commission: float = 0.001  # fraction of notional per fill: 0.001 is 10 bps
check_engines: bool = True  # rerun on the vectorized engine and compare fill for fill
start: str = ""  # first date like 2006-01-01, empty for the start of the common sample
end: str = ""  # last date, empty for its end

# %%
import plotly.io as pio

import workbench as wb

pio.renderers.default = "plotly_mimetype+notebook"  # JupyterLab + offline, self-contained HTML
params = wb.runbook.PortfolioParams(sleeves=sleeves, allocation=allocation, rebalance=rebalance, lookback=lookback,
                                    cash=cash, commission=commission, check_engines=check_engines,
                                    start=start, end=end)
book = params.book
panel = wb.load_prices(params.symbols, start=params.start, end=params.end, progress=False)
for sleeve in book.sleeves:
    print(sleeve)
print(f"{len(panel)} common bars {panel.index[0]:%Y-%m-%d} .. {panel.index[-1]:%Y-%m-%d}")

# %% [markdown]
# ## Allocation

# %%
plan = book.plan(panel)
plan.capital_figure(f"Capital by sleeve ({params.allocation}, rebalanced {params.rebalance})").show()
plan.allocations.tail(6).round(3)

# %% [markdown]
# ## The book

# %%
result = wb.backtest(book, panel, cash=params.cash, commission=params.commission)
wb.tearsheets.tearsheet_tables(result, prices=panel)["stats"]  # formatted, with each stat's convention

# %%
wb.plots.equity_figure(result).show()

# %%
if params.check_engines:
    comparison = wb.compare_engines(book, panel, cash=params.cash, commission=params.commission)
    print(comparison.report())
    comparison.raise_if_different()

# %% [markdown]
# ## Attribution by sleeve

# %%
attr = wb.attribution(result, panel)
attr.figure().show()
attr.summary.round(4)

# %% [markdown]
# ## Trades and positions at the end

# %%
result.trades.tail(20)

# %%
result.positions.iloc[-1].to_frame("quantity")
