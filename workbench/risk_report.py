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
  in cluster order (a panel only);
- ``factors``, ``factor_fit``: loadings of the strategy's monthly excess returns on the
  Fama-French 3 factors (``data/sample/ff3_monthly.csv``: Kenneth French's file as shipped
  by ``arch``, in percent, read as decimals by ``wb.load_series``; or ``factors=``).
  Returns are compounded per calendar month, ∏(1 + r) − 1, the partial first and last
  months dropped (already-monthly returns are kept), RF subtracted; OLS with an intercept
  and classical standard errors (:func:`workbench.risk.exposure.factor_exposures`).
  ``factors`` has rows ``alpha`` (per month) and each factor, columns ``beta, se, t, p``;
  ``factor_fit`` has R², the number of months and the first and last month. Fewer common
  months than the fit needs (no overlap with the factor data) is a note, not an error;
- ``risk_log``: ``result.risk.events`` as it is (denials, breaches, state changes, margin
  calls, liquidations) and ``risk_summary``: the final state, the highest level, the order
  counts and one count per event kind; a run without a profile says "no risk profile".

``figures()`` draws them (VaR with exceptions, exposure bars, stress bars, correlation
heatmap, underwater curve, factor betas with ±1.96 se, the risk log over the equity
curve); the risk runbook and dashboard render this object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from workbench.adapters.sample import load_series
from workbench.errors import InsufficientHistoryError, ParameterError
from workbench.risk import correlation as corr
from workbench.risk import drawdown as dd
from workbench.risk import exposure as ex
from workbench.risk import stress as st
from workbench.risk import var as v
from workbench.risk import var_backtest as vb
from workbench.risk.monitor import RISK_LOG_COLUMNS, RiskLog
from workbench.strategy.result import BacktestResult

__all__ = ["RiskReport"]

ESTIMATORS = {"historical": v.historical_var, "normal": v.normal_var, "student_t": v.student_t_var,
              "cornish_fisher": v.cornish_fisher_var}  # fmt: skip
FACTOR_COLUMNS = ["beta", "se", "t", "p"]
#: the risk log's event kinds, each counted in ``risk_summary`` and drawn in its own style
EVENT_STYLES = {
    "RiskCheckFailed": {"symbol": "x", "color": "#d62728", "size": 8},
    "LimitBreached": {"symbol": "diamond", "color": "#ff7f0e", "size": 8},
    "TradingStateChanged": {"symbol": "triangle-down", "color": "#9467bd", "size": 11},
    "MarginCallTriggered": {"symbol": "star", "color": "#000000", "size": 13},
    "PositionLiquidated": {"symbol": "circle-open", "color": "#8c564b", "size": 10},
}
NO_PROFILE = "no risk profile"


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
    equity: pd.Series = field(default_factory=lambda: pd.Series(dtype="float64", name="equity"))
    factors: pd.DataFrame = field(default_factory=lambda: _factor_table(None))
    factor_fit: pd.Series = field(default_factory=lambda: _fit_summary(None, "none"))
    risk_log: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=RISK_LOG_COLUMNS))
    risk_summary: pd.Series = field(default_factory=lambda: _risk_summary(None))

    @classmethod
    def of(cls, result: BacktestResult, prices: pd.DataFrame, *, confidence: float = 0.99,
           window: int = 250, factors: pd.DataFrame | None = None) -> RiskReport:  # fmt: skip
        """The report of ``result`` on the ``prices`` it ran on (see the module notes).

        ``factors``: monthly decimal factor returns on month-start stamps with an ``RF``
        column (default: the Fama-French 3 sample, ``wb.load_series("ff3_monthly")``).
        """
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
        table, fit = _factor_exposures(rets, factors, notes)
        log, summary = _risk_log(result.risk, notes)
        return cls(label=result.spec.label, confidence=confidence, var=var, var_series=series,
                   var_backtest=_backtest_table(bt), exposure=ex.book_exposure(held),
                   concentration=ex.concentration(held), positions=held.positions, stress=stress,
                   drawdowns=dd.drawdown_table(result.equity), underwater=dd.underwater(result.equity),
                   correlation=correlation, notes=notes, equity=result.equity, factors=table, factor_fit=fit,
                   risk_log=log, risk_summary=summary)  # fmt: skip

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

    def factor_figure(self) -> go.Figure:
        """The factor betas with ±1.96 standard errors, t-stats as labels (the note when
        there was no fit)."""
        f = self.factors.drop(index="alpha", errors="ignore")
        title = "factor exposures (monthly excess returns, OLS)"
        if f.empty:
            return _note_figure(title, next((n for n in self.notes if n.startswith("factor")), "no factor fit"))
        fit = self.factor_fit
        fig = go.Figure(go.Bar(x=list(f.index), y=f["beta"], error_y={"type": "data", "array": 1.96 * f["se"]},
                               text=[f"t = {t:.2f}" for t in f["t"]], textposition="outside",
                               marker_color=["#1f77b4" if b >= 0 else "#d62728" for b in f["beta"]]))  # fmt: skip
        fig.update_layout(title=f"{title}: R² {fit['r_squared']:.2f}, {fit['months']} months", height=320)
        return fig

    def risk_log_figure(self) -> go.Figure:
        """The equity curve with each risk event marked at its close (hover: the detail)."""
        eq = self.equity
        fig = go.Figure(go.Scatter(x=eq.index, y=eq.to_numpy(), name="equity", mode="lines",
                                   line={"width": 1, "color": "#7f7f7f"}))  # fmt: skip
        log = self.risk_log
        for kind, style in EVENT_STYLES.items():
            rows = log[log["event"] == kind]
            if len(rows):
                y = eq.reindex(pd.DatetimeIndex(rows["ts"]), method="ffill").to_numpy()
                fig.add_trace(go.Scatter(x=rows["ts"], y=y, mode="markers", name=f"{kind} ({len(rows)})",
                                         marker=style, text=rows["detail"], hovertemplate="%{x}: %{text}"))  # fmt: skip
        state = self.risk_summary["state"]
        if log.empty:
            fig.add_annotation(text=NO_PROFILE if state == NO_PROFILE else f"no risk events (state {state})",
                               xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False)  # fmt: skip
        fig.update_layout(title=f"risk log: {state}, level {self.risk_summary['level']}", height=340)
        return fig

    def figures(self) -> dict[str, go.Figure]:
        out = {"var": self.var_figure(), "exposure": self.exposure_figure(), "stress": self.stress_figure(),
               "underwater": self.underwater_figure(), "factors": self.factor_figure(),
               "risk_log": self.risk_log_figure()}  # fmt: skip
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


def _factor_table(fit: ex.FactorFit | None) -> pd.DataFrame:
    if fit is None:
        return pd.DataFrame(columns=FACTOR_COLUMNS, index=pd.Index([], name="term"), dtype="float64")
    return fit.table.rename(columns={"coef": "beta"})[FACTOR_COLUMNS]


def _fit_summary(fit: ex.FactorFit | None, source: str) -> pd.Series:
    if fit is None:
        row = {"r_squared": math.nan, "months": 0, "start": pd.NaT, "end": pd.NaT, "factors": source}
    else:
        row = {"r_squared": fit.r_squared, "months": fit.n_obs, "start": fit.start, "end": fit.end, "factors": source}
    return pd.Series(row, dtype=object, name="factor_fit")


def _span(idx: pd.Index) -> str:
    return f"{idx[0]:%Y-%m} .. {idx[-1]:%Y-%m}" if len(idx) else "none"


def _factor_exposures(rets: pd.Series, factors: pd.DataFrame | None, notes: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    """The factor table and fit summary, or empty ones and a note saying why (too few
    common months, e.g. no overlap with the factor data, or collinear factors)."""
    data = load_series("ff3_monthly") if factors is None else factors
    source = "ff3_monthly (Fama-French 3, sample)" if factors is None else "factors="
    try:
        fit = ex.factor_exposures(rets, data, rf="RF" if "RF" in data.columns else None)
    except InsufficientHistoryError as exc:
        notes.append(f"factor exposures not estimated: the returns ({_span(rets.index)}) and the factors "
                     f"({_span(data.index)}) have too few months in common ({exc})")  # fmt: skip
        return _factor_table(None), _fit_summary(None, source)
    except ParameterError as exc:
        notes.append(f"factor exposures not estimated: {exc}")
        return _factor_table(None), _fit_summary(None, source)
    return _factor_table(fit), _fit_summary(fit, source)


def _risk_summary(log: RiskLog | None) -> pd.Series:
    if log is None:
        row: dict[str, Any] = {"state": NO_PROFILE, "level": "n/a", "passed": 0, "denied": 0, "reduced": 0, "events": 0}
        return pd.Series({**row, **dict.fromkeys(EVENT_STYLES, 0)}, dtype=object, name="risk")
    counts = log.events["event"].value_counts()
    row = {"state": log.state, "level": log.level, "passed": log.passed, "denied": log.denied,
           "reduced": log.reduced, "events": len(log.events)}  # fmt: skip
    return pd.Series({**row, **{k: int(counts.get(k, 0)) for k in EVENT_STYLES}}, dtype=object, name="risk")


def _risk_log(log: RiskLog | None, notes: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    """The run's risk log as it is, and its summary; a run without one says so."""
    if log is None:
        notes.append(f"risk log: {NO_PROFILE} ran (result.risk is None): no order was checked")
        return pd.DataFrame(columns=RISK_LOG_COLUMNS), _risk_summary(None)
    return log.events.copy(), _risk_summary(log)


def _note_figure(title: str, text: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False)
    fig.update_layout(title=title, height=220, xaxis={"visible": False}, yaxis={"visible": False})
    return fig
