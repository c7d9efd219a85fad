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
# # Strategy lab
#
# Any built-in strategy with its parameters as widgets made from the strategy's own fields; pick the data (one symbol, a pair, a panel or two venues, as the strategy trades), a date range, commission and engine, then **Run backtest**. The strategy's own validation is the rule: a refused value is named in the status line. Signals at a bar's close, fills at the next bar's open, all equity in whole units; growth of 1 against buy & hold, drawdown from the running peak, the stats with their conventions, the closed trades (P&L net of fees) and the price with entries and exits. Ticked "keep in store", each run goes to the experiment store (`WORKBENCH_STORE`) under the run id shown.

# %%
import workbench as wb

wb.dashboards.lab.StrategyLab().show()
