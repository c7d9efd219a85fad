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
# # Portfolio review
#
# Pick a stored backtest or book (newest first) and read it tab by tab: equity against a buy & hold
# benchmark and the drawdown, positions and exposures, trades with their fills on the price chart,
# P&L by sleeve and by asset, monthly returns, and a second run side by side. Returns are simple per
# bar from the equity at each close; each chart and table states its convention. Runs come from the
# experiment store (`WORKBENCH_STORE`); with none there, run the sample book from the page.

# %%
import workbench as wb

wb.dashboards.portfolio.PortfolioReview().show()
