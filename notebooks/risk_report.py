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
# # Risk report runbook
#
# A stored run (`run_id`, from `wb.runs()`) or a backtest run here, reviewed as a risk reviewer
# would: VaR and ES by four estimators with the rolling VaR's backtest (Kupiec, Christoffersen,
# Basel traffic light), exposures and concentration of the holdings at the end, the holdings
# through historical stress windows, drawdowns, Fama-French 3 factor loadings and the risk log.
# Conventions: VaR/ES are positive loss fractions of equity, one bar, historical with the
# inverted-CDF order statistic (see `wb.risk.var`).

# %% tags=["parameters"]
run_id: str = ""  # a stored run id (wb.runs()); empty: backtest strategy/params/symbol below
strategy: str = "sma_crossover"  # a built-in strategy name (wb.STRATEGIES)
params: str = "fast: 20, slow: 100"  # parameters of the strategy as name: value pairs, comma-separated
symbol: str = "SPX"  # one of wb.sample_symbols()
commission: float = 0.001  # fraction of notional per fill
confidence: float = 0.99  # VaR/ES confidence
window: int = 250  # rolling VaR window for the backtest, bars
start: str = ""  # first date like 2006-01-01, empty for the start of the sample
end: str = ""  # last date, empty for the end of the sample

# %%
import plotly.io as pio

import workbench as wb

pio.renderers.default = "plotly_mimetype+notebook"  # JupyterLab + offline, self-contained HTML
p = wb.runbook.RiskParams(run_id=run_id, strategy=strategy, params=params, symbol=symbol, commission=commission,
                          confidence=confidence, window=window, start=start, end=end)
if p.run_id:
    result = wb.load_run(p.run_id)
    syms = list(result.spec.data.symbols)
    prices = wb.load_prices(syms if len(syms) > 1 else syms[0], start=result.spec.data.start, end=result.spec.data.end)
else:
    prices = wb.load_prices(p.symbol, start=p.start, end=p.end)
    result = wb.backtest(p.spec, prices)
print(result)

# %%
report = wb.risk_report.RiskReport.of(result, prices, confidence=p.confidence, window=p.window)
figures = report.figures()

# %% [markdown]
# ## VaR and ES, and how the rolling VaR held up

# %%
display(report.var.round(5))  # noqa: F821 - IPython's display
display(report.var_backtest)  # noqa: F821
figures["var"].show()

# %% [markdown]
# ## Exposure, concentration and stress on the holdings at the end

# %%
display(report.exposure)  # noqa: F821
display(report.stress)  # noqa: F821
figures["stress"].show()

# %% [markdown]
# ## Drawdowns, factors and the risk log

# %%
display(report.drawdowns)  # noqa: F821
figures["underwater"].show()
display(report.factors.round(4))  # noqa: F821
figures["risk_log"].show()
