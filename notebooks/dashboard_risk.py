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
# # Risk review
#
# Pick a stored backtest (newest first; **refresh** lists the store again, **run the sample** backtests
# sma_crossover on SPX with a risk profile and reviews it). For that run: VaR and ES by four estimators and
# the backtest of a rolling VaR (exceptions, Kupiec, Christoffersen, Basel traffic light); the usage of a limit
# set you choose over the run's own path, with its breaches, beside the run's risk log; the holdings through
# historical stress windows; a clustered correlation heatmap; Fama-French 3 factor loadings.
# VaR and ES are one-bar losses, positive fractions of equity; every table and figure states its convention.

# %%
import workbench as wb

wb.dashboards.risk.RiskReview().show()
