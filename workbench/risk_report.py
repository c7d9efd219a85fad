"""RiskReport: the risk reviewer's view of one backtest, as tables and plotly figures.

Built from a :class:`~workbench.strategy.result.BacktestResult` and the prices it ran on
(``RiskReport.of(result, prices)``), with the conventions of :mod:`workbench.risk`:

- ``var``: 1-day VaR and ES at ``confidence`` by four estimators (historical with the
  ``inverted_cdf`` order statistic, normal, Student-t fitted, Cornish-Fisher) on the whole
  sample of the strategy's returns;
- ``var_backtest``: a rolling ``window``-bar historical VaR known the bar before (shifted
  by one), its exceptions, Kupiec, Christoffersen and the Basel traffic light;
- ``exposure``, ``concentration``: the holdings at the last bar, marked at their closes;
- ``stress``: those holdings replayed through the standard historical windows;
- ``drawdowns``: the five deepest episodes; ``correlation``: the traded assets' returns,
  in cluster order (a panel only).

``figures()`` draws them (VaR with exceptions, exposure bars, stress bars, correlation
heatmap, underwater curve); the risk runbook and dashboard render this object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from workbench.risk import correlation as corr
from workbench.risk import drawdown as dd
from workbench.risk import exposure as ex
from workbench.risk import stress as st
from workbench.risk import var as v
from workbench.risk import var_backtest as vb
from workbench.strategy.result import BacktestResult

__all__ = ["RiskReport"]

ESTIMATORS = {"historical": v.historical_var, "normal": v.normal_var, "student_t": v.student_t_var,
              "cornish_fisher": v.cornish_fisher_var}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class RiskReport:
    label: str
    confidence: float
    var: pd.DataFrame
    var_series: pd.DataFrame  # returns, VaR known the bar before, exception flag
    var_backtest: pd.DataFrame
    exposure: pd.Series
    concentration: pd.Series
    positions: pd.DataFrame
    stress: pd.DataFrame
    drawdowns: pd.DataFrame
    underwater: pd.Series
    correlation: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, result: BacktestResult, prices: pd.DataFrame, *, confidence: float = 0.99,
           window: int = 250) -> RiskReport:  # fmt: skip
        """The report of ``result`` on the ``prices`` it ran on (see the module notes)."""
        rets = result.returns.dropna()
        notes: list[str] = []
        var = pd.DataFrame([_estimate(name, fn, rets, confidence, notes) for name, fn in ESTIMATORS.items()]).set_index("method")
        rolling = v.rolling_historical_var(rets, window, confidence).shift(1)
        bt = vb.backtest_var(rets, rolling, confidence)
        series = pd.DataFrame({"return": rets, "var": rolling, "exception": bt.exceptions.reindex(rets.index, fill_value=False)})
        held = ex.book(result, prices)
        stress = st.stress_test(held, prices)
        panel = isinstance(prices.columns, pd.MultiIndex)
        correlation = corr.clustered(corr.correlation_matrix(ex.asset_returns(prices))) if panel else None
        return cls(label=result.spec.label, confidence=confidence, var=var, var_series=series,
                   var_backtest=_backtest_table(bt), exposure=ex.book_exposure(held),
                   concentration=ex.concentration(held), positions=held.positions, stress=stress,
                   drawdowns=dd.drawdown_table(result.equity), underwater=dd.underwater(result.equity),
                   correlation=correlation, notes=notes)  # fmt: skip

    # -- pictures ---------------------------------------------------------------------------
    def var_figure(self) -> go.Figure:
        s = self.var_series
        hits = s[s["exception"]]
        fig = go.Figure([
            go.Scatter(x=s.index, y=s["return"], name="return", mode="lines", line={"width": 1, "color": "#7f7f7f"}),
            go.Scatter(x=s.index, y=-s["var"], name=f"-VaR {self.confidence:.0%}", line={"width": 1.5, "color": "#1f77b4"}),
            go.Scatter(x=hits.index, y=hits["return"], name=f"exceptions ({len(hits)})", mode="markers",
                       marker={"color": "#d62728", "size": 6}),
        ])  # fmt: skip
        fig.update_layout(title=f"VaR backtest: {self.label}", yaxis_tickformat=".1%", height=380)
        return fig

    def exposure_figure(self) -> go.Figure:
        p = self.positions
        fig = go.Figure(go.Bar(x=p.index.astype(str), y=p["weight"], marker_color=["#2ca02c" if w >= 0 else "#d62728" for w in p["weight"]]))
        fig.update_layout(title="exposure by asset (fraction of equity)", yaxis_tickformat=".0%", height=320)
        return fig

    def stress_figure(self) -> go.Figure:
        s = self.stress
        fig = go.Figure(go.Bar(x=s.index.astype(str), y=s["pnl_frac"], text=s["missing"].fillna(""),
                               marker_color=["#d62728" if x < 0 else "#2ca02c" for x in s["pnl_frac"]]))  # fmt: skip
        fig.update_layout(title="stress on current holdings (P&L, fraction of equity)", yaxis_tickformat=".1%", height=320)
        return fig

    def correlation_figure(self) -> go.Figure | None:
        if self.correlation is None:
            return None
        c = self.correlation
        fig = go.Figure(go.Heatmap(z=c.to_numpy(), x=list(c.columns), y=list(c.index), zmin=-1, zmax=1, colorscale="RdBu"))
        fig.update_layout(title="correlation of returns (cluster order)", height=360)
        return fig

    def underwater_figure(self) -> go.Figure:
        u = self.underwater
        fig = go.Figure(go.Scatter(x=u.index, y=u.to_numpy(), fill="tozeroy", line={"width": 1, "color": "#d62728"}))
        fig.update_layout(title="underwater (drawdown from the running peak)", yaxis_tickformat=".0%", height=300)
        return fig

    def figures(self) -> dict[str, go.Figure]:
        out = {"var": self.var_figure(), "exposure": self.exposure_figure(), "stress": self.stress_figure(),
               "underwater": self.underwater_figure()}  # fmt: skip
        heat = self.correlation_figure()
        if heat is not None:
            out["correlation"] = heat
        return out


def _estimate(name: str, fn: Any, rets: pd.Series, confidence: float, notes: list[str]) -> dict[str, Any]:
    try:
        r = fn(rets, confidence)
    except Exception as exc:  # an estimator that does not apply (e.g. Cornish-Fisher not monotone): say so
        notes.append(f"{name}: {exc}")
        return {"method": name, "var": float("nan"), "es": float("nan"), "convention": "n/a"}
    return {"method": name, "var": r.value, "es": r.expected_shortfall, "convention": r.convention}


def _backtest_table(bt: Any) -> pd.DataFrame:
    rows = [{"test": t.test, "statistic": t.statistic, "p_value": t.p_value, "exceptions": t.exceptions,
             "observations": t.observations} for t in (bt.pof, bt.independence, bt.conditional_coverage)]  # fmt: skip
    tl = bt.traffic_light
    rows.append({"test": f"traffic light: {tl.zone}", "statistic": tl.plus_factor, "p_value": tl.probability,
                 "exceptions": tl.exceptions, "observations": tl.observations})  # fmt: skip
    return pd.DataFrame(rows).set_index("test")
