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
# # Optimisation runbook: a parameter search and how much to believe its winner
#
# Parameterised with papermill (`workbench run notebooks/optimize.ipynb -p space "fast: 5..40 step 5; slow: 50..200 step 25"`).
# Every trial lands in the experiment store; the overfitting statistics (trials counted from the
# store, PSR, DSR, CSCV PBO, MinTRL, MinBTL) sit beside the winner. Conventions: per-bar simple
# returns, Sharpe ratios annualised with √(periods per year), rf = 0; fills at the next bar's open.

# %% tags=["parameters"]
strategy: str = "sma_crossover"  # a built-in strategy name (wb.STRATEGIES)
symbol: str = "GOOG"  # one of wb.sample_symbols()
space: str = "fast: 5..40 step 5; slow: 50..200 step 25"  # per parameter lo..hi step k (hi included) or a, b, c; semicolons between
objective: str = "sharpe"  # the stat to maximise: sharpe, total_return, cagr, max_drawdown...
method: str = "grid"  # grid, random or optuna
n_trials: int = 0  # trials for random/optuna (ignored by grid)
seed: int = 0  # seed of random/optuna sampling
commission: float = 0.001  # fraction of notional per fill: 0.001 is 10 bps
engine: str = "vectorized"  # vectorized (vectorbt, many trials per call) or event
n_blocks: int = 16  # CSCV blocks S for the probability of backtest overfitting
walk_forward: bool = True  # also re-optimise on rolling train windows and trade the next test window
train: int = 750  # walk-forward train window, bars
test: int = 250  # walk-forward test window, bars
start: str = ""  # first date like 2006-01-01, empty for the start of the sample
end: str = ""  # last date, empty for the end of the sample

# %%
import plotly.io as pio

import workbench as wb

pio.renderers.default = "plotly_mimetype+notebook"  # JupyterLab + offline, self-contained HTML
params = wb.runbook.OptimizeParams(strategy=strategy, symbol=symbol, space=space, objective=objective, method=method,
                                   n_trials=n_trials, seed=seed, commission=commission, engine=engine,
                                   n_blocks=n_blocks, walk_forward=walk_forward, train=train, test=test,
                                   start=start, end=end)
prices = wb.load_prices(params.symbol, start=params.start, end=params.end)
print(f"{params.strategy} on {params.symbol}: {len(prices)} bars {prices.index[0]:%Y-%m-%d} .. "
      f"{prices.index[-1]:%Y-%m-%d}; space {params.grid}")

# %% [markdown]
# ## The search

# %%
opt = wb.optimize(params.strategy, prices, params.grid, n_blocks=params.n_blocks, **params.search)
print(opt)
opt.trials.sort_values(params.objective, ascending=False).head(10).round(4)

# %% [markdown]
# ## How much to believe the winner
#
# `n_trials` counts every trial of this strategy on these bars in the store (earlier searches
# included); DSR deflates the winner's Sharpe ratio for that many tries; PBO is the share of
# CSCV splits where the in-sample best trial ranks below the median out of sample.

# %%
opt.overfitting.to_frame("value")

# %%
names = list(params.grid)
if len(names) >= 2:
    opt.heatmap(names[0], names[1]).show()
opt.is_oos_figure().show()

# %% [markdown]
# ## The winner

# %%
wb.plots.equity_figure(opt.best).show()
wb.tearsheets.tearsheet_tables(opt.best, prices=prices)["stats"]  # formatted, with each stat's convention

# %% [markdown]
# ## Walk-forward: re-optimised on each train window, traded on the next test window

# %%
if params.walk_forward:
    wf = wb.walk_forward_optimize(params.strategy, prices, params.grid, train=params.train, test=params.test,
                                  n_blocks=min(params.n_blocks, 8), **params.search)
    print(wf)
    wf.figure().show()
    display(wf.folds.round(4))  # noqa: F821 - IPython's display
