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
# # Paper trading runbook
#
# The original design's flow **backtest → risk approval → deploy**, on the paper broker: the backtest of a built-in strategy is run and stored, a risk reviewer approves that stored run, and the same strategy object (DRAFT → TESTING → LIVE) trades the same sample bars through the trading loop (`wb.trade`): every decision passes the risk profile, becomes orders at the paper broker (the simulated broker's rules), and every event is logged before it is acted on. The replay must equal the backtest fill for fill. Parameterised with papermill (`workbench run paper_trade -r symbol SPX -r start 2010-01-01`); the same flow from the command line is `workbench trade run notebooks/paper_trade.yaml`. Conventions: bars are labelled by period start (UTC); a decision at a bar's close fills at the **next bar's open**; size is all equity in whole units; commission is a fraction of notional per fill; a settlement snapshot is taken at each change of UTC day.

# %% tags=["parameters"]
strategy: str = "sma_crossover"  # one of wb.STRATEGIES
params: str = "fast: 10, slow: 30"  # the strategy's parameters as name: value pairs, comma-separated; empty for its defaults
symbol: str = "GOOG"  # one of wb.sample_symbols(), or SYM1+SYM2 for a portfolio strategy (pairs, xs_momentum)
start: str = ""  # first bar like 2010-01-01 (UTC), empty for the start of the sample
end: str = ""  # last bar, empty for the end of the sample
cash: float = 10_000.0  # starting cash, in the instrument's currency
commission: float = 0.001  # fraction of notional per fill: 0.001 is 10 bps
session: str = ""  # the session's name in the event log (the same name again resumes it); empty: a new one per run
max_steps: int = 0  # bars to replay through the loop in this run; 0: all of them


# %%
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import workbench as wb

pio.renderers.default = "plotly_mimetype+notebook"  # JupyterLab + offline, self-contained HTML
wb.trade  # noqa: B018 - resolved before wb.approve: the other order leaves wb.trade the module of that name
run = wb.runbook.BacktestParams(strategy=strategy, params=params, symbol=symbol, cash=cash, commission=commission,
                                start=start, end=end, check_engines=False, tearsheet=False)  # validated: a bad value stops here, naming it
if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0:
    raise wb.ParameterError(f"max_steps must be a whole number of bars >= 0 (0: all), got max_steps={max_steps!r}")
if not isinstance(session, str):
    raise wb.ParameterError(f"session must be a name (empty: a new session), got session={session!r}")
session_name = session.strip() or f"paper-{run.strategy}-{run.symbol}-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S%f}"
spec = run.spec  # one BacktestSpec: the backtest and the paper session run this same strategy object
spec

# %% [markdown]
# ## Backtest (stored) and risk approval

# %%
prices = wb.load_prices(run.data, start=run.start, end=run.end)
print(f"{run.symbol}: {len(prices)} bars {prices.index[0]:%Y-%m-%d} .. {prices.index[-1]:%Y-%m-%d}")
result = wb.backtest(spec, prices)  # kept in the experiment store (WORKBENCH_STORE): the approval names it
spec.strategy.start_testing(reason="backtested")
approval = wb.approve(result, by="risk desk", note="paper trading runbook")
print(f"run {result.run_id} approved by {approval.approved_by}; strategy is {spec.strategy.status.name}")
result.stats[["total_return", "sharpe", "max_drawdown", "n_trades"]].to_frame("backtest")

# %% [markdown]
# ## Paper session
#
# The strategy is deployed (TESTING → LIVE, checked against the stored run) and the same bars are replayed through the loop on the paper broker. The event log is the experiment store's file, so running this notebook again with the same `session` resumes the session where it stopped.

# %%
paper = wb.trade(spec, prices, broker="paper", approval=approval, session=session_name,
                 max_steps=max_steps or None)
print(paper)
print(f"strategy is {spec.strategy.status.name}; {paper.steps_run} steps this run")

# %% [markdown]
# ## Backtest vs paper session
#
# Over the bars the session has traded so far: final equity, the fills (side, quantity, price, fee and time, compared exactly) and the largest absolute difference between the two equity curves at the same closes.

# %%
columns = ["side", "quantity", "price", "fee", "ts"]
last = paper.equity.index[-1]
expected = result.fills[result.fills["ts"] <= last]
fills_equal = list(expected[columns].itertuples(index=False, name=None)) == list(
    paper.fills[columns].itertuples(index=False, name=None))
backtest_equity = result.equity.loc[: last]
gap = float((paper.equity - backtest_equity.reindex(paper.equity.index)).abs().max())
comparison = pd.DataFrame({
    "backtest": [f"{backtest_equity.iloc[-1]:,.2f}", f"{len(expected)}", "", ""],
    "paper session": [f"{paper.equity.iloc[-1]:,.2f}", f"{len(paper.fills)}", f"{gap:.2e}", str(fills_equal)],
}, index=["final equity", "fills", "max |equity difference|", "fills equal"])
print(f"fills equal: {fills_equal}; max |equity difference|: {gap:.2e}")
comparison

# %%
go.Figure([go.Scatter(x=backtest_equity.index, y=backtest_equity.to_numpy(), name="backtest"),
           go.Scatter(x=paper.equity.index, y=paper.equity.to_numpy(), name="paper session", line={"dash": "dot"})],
          layout={"title": f"equity: backtest vs paper session {session_name}", "height": 420,
                  "yaxis": {"title": f"equity ({paper.loop.portfolio.currency})"},
                  "hovermode": "x unified"}).show()

# %% [markdown]
# ## Fills, reconciliation, settlements

# %%
paper.fills

# %%
print(paper.reconciliation)
pd.DataFrame(paper.settlements[-5:])
