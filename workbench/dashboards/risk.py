"""RiskReview: the risk reviewer's dashboard over the stored backtests (Voila).

Pick a stored backtest and read, as a risk reviewer would: VaR/ES and how a rolling VaR
held up (exceptions, Kupiec, Christoffersen, the Basel traffic light); the usage of a
limit set over the run's own path, with breaches, next to the run's risk log; the
holdings through historical stress windows; a clustered correlation heatmap; Fama-French
3 factor loadings. The tables and figures come from
:class:`~workbench.risk_report.RiskReport` (driven here by the controls); what it does
not offer is computed with the domain's own functions:

- the rolling VaR of a parametric estimator (:func:`rolling_var`, on
  :mod:`workbench.risk.var`): RiskReport's rolling VaR is historical only;
- limit usage over time (:func:`path_measures`; breaches from
  :func:`workbench.risk.monitor.drift_breaches` with the domain's limit classes);
- stress at another date than the last bar, and the correlation of chosen symbols.

Conventions (stated on the page too)
------------------------------------
- **Returns**: simple per-bar returns of the run's equity, r_t = E_t / E_{t-1} - 1
  (daily bars: one day), flat days included as 0.
- **VaR/ES**: one bar, a positive loss fraction of equity, confidence c = P(loss <= VaR)
  (:mod:`workbench.risk.var`). The rolling forecast for bar t uses the ``window`` returns
  ending at t-1 (no look-ahead). Historical and normal are re-estimated every bar, Cornish-Fisher
  every 63 bars and the ML Student-t every 126 bars (:data:`REFIT`: one Cornish-Fisher ES
  quadrature costs ~15 ms, one t fit ~50 ms), the forecast held in between; a window where the estimator does not
  apply (no variation, a non-monotone Cornish-Fisher expansion, a t with df <= 1) gives no
  forecast, and that bar is left out of the backtest.
- **Limits on the path**: position values = quantity x close x multiplier, marked at the
  last close on or before each bar; weights and leverage are fractions of equity at that
  close; HHI is of |value| / gross (0 for a flat book); drawdown = 1 - E_t / max_{s<=t} E_s.
  A breach is a close over the limit (above it; drawdown: at or beyond it, the
  RiskMonitor's rule); each episode is marked at its first close.
"""

from __future__ import annotations

import contextlib
import html
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.api import backtest, resolve_store
from workbench.dashboards.widgets import (
    GuardedDropdown,
    GuardedFloatText,
    GuardedIntText,
    GuardedSelectMultiple,
    GuardedToggleButtons,
    Status,
    guarded,
    show_figure,
)
from workbench.data import load_prices, sample_symbols
from workbench.errors import InsufficientHistoryError, ParameterError
from workbench.research.experiments import load_run, runs
from workbench.risk import correlation as corr
from workbench.risk import exposure as ex
from workbench.risk import stress as st
from workbench.risk import var_backtest as vb
from workbench.risk.limits import LongOnly, MaxGrossLeverage, MaxHHI, MaxPositionWeight, MaxVaR
from workbench.risk.monitor import drift_breaches
from workbench.risk.profile import RiskProfile
from workbench.risk.var import rolling_historical_var
from workbench.risk_report import ESTIMATORS, RiskReport
from workbench.strategy.result import BacktestResult

__all__ = ["RiskReview", "rolling_var", "RollingVaR", "backtest_table", "position_values", "path_measures",
           "limit_profile", "limit_breaches", "correlation_of", "sample_profile", "REFIT"]  # fmt: skip

#: bars between two fits of each estimator's rolling VaR (module conventions)
REFIT = {"historical": 1, "normal": 1, "cornish_fisher": 63, "student_t": 126}
CONFIDENCES = (("95 %", 0.95), ("99 %", 0.99))
MEASURES = {"gross_leverage": "gross leverage Σ|value| / equity", "position_weight": "largest |value| / equity",
            "hhi": "HHI of |value| / gross", "drawdown": "drawdown 1 - equity / running peak"}  # fmt: skip
SAMPLE = {"strategy": "sma_crossover", "symbol": "SPX", "params": {"fast": 20, "slow": 100}, "commission": 0.001}
MAX_RUNS = 300  # newest runs offered in the dropdown
NO_PROFILE = "no risk profile on this run"


def sample_profile() -> RiskProfile:
    """The sample run's profile: unlevered, long only, a 2.5% 1-day 99% VaR cap per entry,
    new entries stopped at a 30% drawdown (it denies orders, so the log has something)."""
    return RiskProfile(limits=(MaxGrossLeverage(limit=1.0), MaxVaR(0.025), LongOnly()), max_drawdown=0.3)


# -- the rolling VaR and its backtest --------------------------------------------------------
@dataclass(frozen=True)
class RollingVaR:
    """A VaR forecast per bar (``var``, aligned with the return it is tested against)."""

    estimator: str
    confidence: float
    window: int
    refit: int
    var: pd.Series
    failures: int = 0
    first_failure: str = ""


def rolling_var(returns: pd.Series, estimator: str, window: int, confidence: float,
                refit: int | None = None) -> RollingVaR:  # fmt: skip
    """Each bar's VaR forecast from the ``window`` returns before it (module conventions).

    >>> r = pd.Series([-0.02, 0.01, 0.03, 0.01, 0.02])
    >>> rolling_var(r, "historical", 3, 0.9).var.tolist()[3:]  # the worst of the 3 before; a gain is < 0
    [0.02, -0.01]
    """
    if estimator not in ESTIMATORS:
        raise ParameterError(f"rolling_var: estimator must be one of {list(ESTIMATORS)}, got estimator={estimator!r}")
    step = REFIT[estimator] if refit is None else refit
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ParameterError(f"rolling_var: refit must be a whole number of bars >= 1, got refit={step!r}")
    rets = returns.dropna()
    if estimator == "historical" and step == 1:  # vectorised, exactly RiskReport's rolling VaR
        var = rolling_historical_var(rets, window, confidence).shift(1)
        return RollingVaR(estimator, confidence, window, step, var.rename("var"))
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ParameterError(f"rolling_var: window must be a whole number >= 2, got window={window!r}")
    x, out = rets.to_numpy(dtype="float64"), np.full(len(rets), np.nan)
    failures, first = 0, ""
    for start in range(window, len(x), step):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scipy's fit warnings on flat windows: the failure is counted
                out[start : start + step] = ESTIMATORS[estimator](x[start - window : start], confidence).value
        except (ParameterError, ValueError, RuntimeError, FloatingPointError) as exc:
            failures, first = failures + 1, first or str(exc)
    return RollingVaR(estimator, confidence, window, step, pd.Series(out, index=rets.index, name="var"), failures, first)


def backtest_table(bt: vb.VaRBacktest) -> pd.DataFrame:
    """One row per test: statistic, p-value, exceptions (seen, expected), observations, verdict.

    The traffic light's row has the plus factor as its statistic and P(X <= x) as its p-value."""
    c = bt.traffic_light.confidence
    names = {"pof": "Kupiec POF, χ²(1)", "independence": "Christoffersen independence, χ²(1)",
             "conditional_coverage": "Christoffersen conditional coverage, χ²(2)"}  # fmt: skip
    rows = [{"test": names[t.test], "statistic": t.statistic, "p_value": t.p_value, "exceptions": t.exceptions,
             "expected": t.observations * (1 - c), "observations": t.observations,
             "verdict": "rejected at 5%" if t.rejected(0.95) else "not rejected"}
            for t in (bt.pof, bt.independence, bt.conditional_coverage)]  # fmt: skip
    tl = bt.traffic_light
    rows.append({"test": "Basel traffic light", "statistic": tl.plus_factor, "p_value": tl.probability,
                 "exceptions": tl.exceptions, "expected": tl.observations * (1 - c), "observations": tl.observations,
                 "verdict": tl.zone})  # fmt: skip
    return pd.DataFrame(rows).set_index("test")


# -- limits on the run's path -----------------------------------------------------------------
def position_values(result: BacktestResult, prices: Any) -> pd.DataFrame:
    """Signed value of each position at each close (columns by ticker, quote currency)."""
    pos = result.positions.to_frame() if isinstance(result.positions, pd.Series) else result.positions
    closes = ex.close_prices(prices).reindex(pos.index, method="ffill")
    inst = {i.symbol: i for i in result.spec.instruments}
    out = {}
    for col in pos.columns:
        i = inst.get(str(col))
        key = i.ticker if i is not None else str(col)
        out[key] = pos[col].astype("float64") * closes[key] * (i.multiplier if i is not None else 1.0)
    return pd.DataFrame(out, index=pos.index)


def path_measures(values: pd.DataFrame, equity: pd.Series) -> pd.DataFrame:
    """Each limited measure at each close (module conventions; columns as :data:`MEASURES`)."""
    a = values.abs().fillna(0.0)
    eq = equity.reindex(values.index).astype("float64")
    gross = a.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        hhi = (a.div(gross, axis=0) ** 2).sum(axis=1).where(gross > 0, 0.0)
        return pd.DataFrame({"gross_leverage": gross / eq, "position_weight": a.max(axis=1) / eq, "hhi": hhi,
                             "drawdown": 1.0 - eq / eq.cummax()})  # fmt: skip


def limit_profile(gross: float, weight: float, hhi: float, drawdown: float) -> RiskProfile:
    """The reviewer's limit set as the domain's own limits (their checks name a bad value)."""
    return RiskProfile(limits=(MaxGrossLeverage(limit=gross), MaxPositionWeight(limit=weight), MaxHHI(limit=hhi)),
                       max_drawdown=drawdown)  # fmt: skip


_MEASURE_OF = {"MaxGrossLeverage": "gross_leverage", "MaxPositionWeight": "position_weight", "MaxHHI": "hhi"}


def limit_breaches(profile: RiskProfile, values: pd.DataFrame, equity: pd.Series,
                   measures: pd.DataFrame) -> pd.DataFrame:  # fmt: skip
    """The first close of each breach episode: ``ts, limit, measure, value, threshold``.

    Caps on positions come from :func:`drift_breaches` (the domain's replay); the drawdown
    limit from the RiskMonitor's rule, equity <= peak x (1 - max_drawdown), every episode."""
    rows = [{"ts": b.ts, "limit": b.limit, "measure": _MEASURE_OF[b.limit], "value": b.value, "threshold": b.threshold}
            for b in drift_breaches(profile, values.fillna(0.0), equity.reindex(values.index))]  # fmt: skip
    if profile.max_drawdown is not None:
        over = (measures["drawdown"] >= profile.max_drawdown - 1e-12).to_numpy()
        starts = np.flatnonzero(over & ~np.concatenate(([False], over[:-1])))
        rows += [{"ts": measures.index[i], "limit": "max_drawdown", "measure": "drawdown",
                  "value": float(measures["drawdown"].iloc[i]), "threshold": profile.max_drawdown} for i in starts]  # fmt: skip
    return pd.DataFrame(rows, columns=["ts", "limit", "measure", "value", "threshold"])


def _thresholds(profile: RiskProfile) -> dict[str, tuple[str, float]]:
    out = {_MEASURE_OF[lim.name]: (lim.name, lim.limit) for lim in profile.limits if lim.name in _MEASURE_OF}
    if profile.max_drawdown is not None:
        out["drawdown"] = ("max_drawdown", profile.max_drawdown)
    return out


def usage_table(profile: RiskProfile, measures: pd.DataFrame, breaches: pd.DataFrame) -> pd.DataFrame:
    """Per limit: the threshold, the peak and last value and usage, bars over, episodes, first breach."""
    rows = []
    for measure, (name, threshold) in _thresholds(profile).items():
        s = measures[measure].replace([np.inf, -np.inf], np.nan)
        hits = breaches[breaches["limit"] == name]
        over = s >= threshold - 1e-12 if measure == "drawdown" else s > threshold * (1 + 1e-9)
        rows.append({"limit": name, "measure": MEASURES[measure], "threshold": threshold, "peak": s.max(),
                     "peak_usage": s.max() / threshold, "last_usage": s.iloc[-1] / threshold if len(s) else math.nan,
                     "bars_over": int(over.sum()), "episodes": len(hits),
                     "first_breach": hits["ts"].min() if len(hits) else pd.NaT})  # fmt: skip
    return pd.DataFrame(rows).set_index("limit")


def describe_profile(profile: RiskProfile | None) -> str:
    """The run's own profile in one line (plain text)."""
    if profile is None:
        return NO_PROFILE
    parts = [f"{lim.name} {lim.limit:g}" if hasattr(lim, "limit") else lim.name for lim in profile.limits]
    if profile.max_drawdown is not None:
        parts.append(f"max drawdown {profile.max_drawdown:.0%} ({profile.drawdown_action.value})")
    return "; ".join(parts) or "a profile with no limits"


# -- correlation ----------------------------------------------------------------------------
def correlation_of(closes: dict[str, pd.Series], end: pd.Timestamp, window: int) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """Pearson correlation of simple close-to-close returns over the last ``window`` dates up
    to ``end`` on which every asset has a return (listwise), in cluster order; and those dates."""
    if len(closes) < 2:
        raise ParameterError(f"correlation needs at least 2 symbols, got {sorted(closes)}")
    rets = ex.asset_returns(pd.DataFrame(closes)).loc[:end].dropna(how="any").tail(window)
    return corr.clustered(corr.correlation_matrix(rets)), rets.index


# -- HTML -------------------------------------------------------------------------------------
def _cell(value: Any, fmt: str | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return "–"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if fmt and isinstance(value, int | float | np.number):
        return fmt.format(value)
    return html.escape(str(value))


def html_table(frame: pd.DataFrame, formats: dict[str, str] | None = None, *, headers: dict[str, str] | None = None,
               bold: object = None, limit: int = 200) -> str:  # fmt: skip
    """``frame`` as an HTML table: every text cell escaped (store data is not trusted), numbers
    by ``formats`` ("{:.2%}"), the row ``bold`` in bold, at most ``limit`` rows."""
    formats, headers = formats or {}, headers or {}
    td = "style='padding:2px 8px;border-bottom:1px solid #ddd;text-align:right'"
    head = "".join(f"<th {td}>{html.escape(headers.get(c, str(c)))}</th>" for c in [frame.index.name or "", *frame.columns])
    body = []
    for key, row in frame.head(limit).iterrows():
        cells = [f"<td {td}>{_cell(key, None)}</td>"] + [f"<td {td}>{_cell(v, formats.get(c))}</td>" for c, v in row.items()]
        style = " style='font-weight:bold'" if bold is not None and key == bold else ""
        body.append(f"<tr{style}>{''.join(cells)}</tr>")
    more = f"<p>first {limit} of {len(frame)} rows</p>" if len(frame) > limit else ""
    return f"<table style='border-collapse:collapse;font-size:12px'><tr>{head}</tr>{''.join(body)}</table>{more}"


def _note(text: str) -> widgets.HTML:
    return widgets.HTML(f"<div style='font-size:11px;color:#555;max-width:1100px'>{text}</div>")


def _note_figure(title: str, text: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=html.escape(text), xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False)
    fig.update_layout(title=title, height=240, xaxis={"visible": False}, yaxis={"visible": False})
    return fig


def usage_figure(measures: pd.DataFrame, profile: RiskProfile, breaches: pd.DataFrame) -> go.Figure:
    """Each measure as a fraction of its limit over the run (1 = at the limit), breaches marked."""
    fig = go.Figure()
    colours = {"gross_leverage": "#1f77b4", "position_weight": "#2ca02c", "hhi": "#9467bd", "drawdown": "#d62728"}
    for measure, (name, threshold) in _thresholds(profile).items():
        usage = measures[measure] / threshold
        fig.add_trace(go.Scatter(x=usage.index, y=usage.to_numpy(), mode="lines", name=f"{name} {threshold:g}",
                                 line={"width": 1.2, "color": colours[measure]}))  # fmt: skip
    for name, rows in breaches.groupby("limit", sort=False):
        fig.add_trace(go.Scatter(x=rows["ts"], y=(rows["value"] / rows["threshold"]).to_numpy(), mode="markers",
                                 name=f"{name} breaches ({len(rows)})", marker={"symbol": "x", "size": 9,
                                 "color": colours[rows["measure"].iloc[0]]}))  # fmt: skip
    fig.add_hline(y=1.0, line={"dash": "dash", "color": "#444", "width": 1})
    fig.update_layout(title="limit usage on the run's path (value / limit; 1 = at the limit)", height=380,
                      yaxis={"tickformat": ".0%", "title": "usage of the limit"}, legend={"orientation": "h"})  # fmt: skip
    return fig


# -- the dashboard ------------------------------------------------------------------------------
@dataclass
class _Review:
    """One loaded run and the caches every section reads."""

    run_id: str
    result: BacktestResult
    prices: Any  # the run's assets, their whole available history
    values: pd.DataFrame
    measures: pd.DataFrame
    reports: dict[tuple[float, int], RiskReport]
    rolling: dict[tuple[str, float, int], tuple[RollingVaR, vb.VaRBacktest | None]]


def _run_prices(result: BacktestResult) -> Any:
    """The run's assets over their whole history (stress windows may predate the run), from
    the run's source (offline for anything but the sample) or the sample for data a user passed."""
    data = result.spec.data
    symbols = list(data.symbols) if data is not None else [i.ticker for i in result.spec.instruments]
    source = data.source if data is not None and data.source in ("sample", "files", "yahoo", "ccxt", "synthetic") else "sample"
    try:
        return load_prices(symbols[0] if len(symbols) == 1 else symbols, source=source, align="union", progress=False,
                           offline=source != "sample")  # fmt: skip
    except Exception as exc:
        raise ParameterError(f"RiskReview: the prices of {', '.join(symbols)} (source {source!r}) cannot be loaded "
                             f"offline, so this run's holdings cannot be marked: {exc}") from exc  # fmt: skip


def _last_held(positions: pd.Series | pd.DataFrame) -> pd.Timestamp | None:
    frame = positions.to_frame() if isinstance(positions, pd.Series) else positions
    held = frame.index[(frame.fillna(0.0) != 0).any(axis=1)]
    return held[-1] if len(held) else None


class RiskReview:
    """The risk review dashboard (see the module notes); ``.show()`` puts it on the page.

    ``store``: an :class:`~workbench.adapters.experiments.SQLiteStore`, ``"default"`` (the
    configured store, ``WORKBENCH_STORE``) or None (no store: only the sample, run here).
    ``run_id``: the run shown first (default: the newest backtest).
    """

    def __init__(self, store: Any = "default", *, run_id: str | None = None) -> None:
        self.store = resolve_store(store)
        self.review: _Review | None = None
        self.figures: dict[str, go.Figure] = {}
        self.tables: dict[str, pd.DataFrame] = {}
        self.draws: dict[str, int] = {}
        self._memory: dict[str, BacktestResult] = {}  # sample runs made with no store
        self._muted = 0
        self._closes: dict[str, pd.Series] = {}
        self._build()
        self._wire()
        guarded(self.status)(self._refresh)(select=run_id)

    # -- widgets ----------------------------------------------------------------------------
    def _build(self) -> None:
        wide = {"description_width": "initial"}
        self.status = Status()
        self.run = GuardedDropdown(options=[], description="run", layout={"width": "760px"})
        self.refresh = widgets.Button(description="refresh", tooltip="list the store's runs again")
        self.sample = widgets.Button(description="run the sample", button_style="info",
                                     tooltip="backtest sma_crossover 20/100 on SPX with a risk profile, store it, review it")  # fmt: skip
        self.confidence = GuardedToggleButtons(options=CONFIDENCES, value=0.99, description="confidence")
        self.estimator = GuardedDropdown(options=list(ESTIMATORS), value="historical", description="estimator")
        self.window = GuardedIntText(value=250, min=20, max=5000, description="window (bars)", style=wide)
        self.gross = GuardedFloatText(value=1.0, min=0.01, max=100.0, step=0.05, description="max gross leverage", style=wide)
        self.weight = GuardedFloatText(value=1.0, min=0.01, max=100.0, step=0.05, description="max position weight", style=wide)
        self.hhi = GuardedFloatText(value=1.0, min=0.01, max=1.0, step=0.05, description="max HHI", style=wide)
        self.drawdown = GuardedFloatText(value=0.2, min=0.01, max=0.99, step=0.01, description="max drawdown", style=wide)
        self.holdings = GuardedDropdown(options=[("last bar", "last")], description="holdings at", style=wide)
        self.corr_symbols = GuardedSelectMultiple(options=[], description="symbols", rows=6)
        self.corr_window = GuardedIntText(value=250, min=20, max=20000, description="window (dates)", style=wide)
        for name in ("run", "refresh", "sample", "confidence", "estimator", "window", "gross", "weight", "hhi",
                     "drawdown", "holdings", "corr_symbols", "corr_window"):  # fmt: skip
            getattr(self, name).add_class(f"wb-{name.replace('_', '-')}")
        self.out = {n: widgets.Output() for n in ("var", "limits", "risk_log", "stress", "exposure", "correlation", "factors")}
        self.html = {n: widgets.HTML() for n in ("header", "empty", "var_table", "backtest_table", "limits_table",
                                                 "risk_log", "stress_table", "exposure_table", "corr_note", "factor_table")}  # fmt: skip
        self.html["empty"].add_class("wb-empty")
        self.html["risk_log"].add_class("wb-risk-log")
        self.body = widgets.VBox(self._sections())
        self.widget = widgets.VBox([widgets.HBox([self.run, self.refresh, self.sample]), self.status.widget,
                                    self.html["header"], self.html["empty"], self.body])  # fmt: skip

    def _sections(self) -> list[widgets.Widget]:
        def h(text: str) -> widgets.HTML:
            return widgets.HTML(f"<h3 style='margin:14px 0 4px'>{text}</h3>")

        o, t = self.out, self.html
        return [
            h("VaR and ES, and how the rolling VaR held up"), widgets.HBox([self.confidence, self.estimator, self.window]),
            widgets.HBox([t["var_table"], t["backtest_table"]], layout={"grid_gap": "24px"}), o["var"], _note(VAR_NOTE),
            h("Limit usage and breaches over the run"), widgets.HBox([self.gross, self.weight, self.hhi, self.drawdown]),
            o["limits"], t["limits_table"], _note(LIMITS_NOTE), t["risk_log"], o["risk_log"],
            h("Stress and exposure of the holdings"), self.holdings, widgets.HBox([o["stress"], o["exposure"]]),
            t["stress_table"], t["exposure_table"], _note(STRESS_NOTE),
            h("Correlation"), widgets.HBox([self.corr_symbols, self.corr_window]), o["correlation"], t["corr_note"],
            h("Factor exposures (Fama-French 3)"), o["factors"], t["factor_table"], _note(FACTOR_NOTE),
        ]  # fmt: skip

    def _wire(self) -> None:
        g = guarded(self.status)
        self.run.observe(g(self._on_run), names="value")
        self.refresh.on_click(g(lambda _b: self._refresh(select=self.run.value)))
        self.sample.on_click(g(self._on_sample))
        for w in (self.confidence, self.estimator, self.window):
            w.observe(g(lambda _c: self._step("VaR backtest", self._draw_var)), names="value")
        for w in (self.gross, self.weight, self.hhi, self.drawdown):
            w.observe(g(lambda _c: self._step("limit usage", self._draw_limits)), names="value")
        self.holdings.observe(g(lambda _c: self._step("stress", self._draw_stress)), names="value")
        for w in (self.corr_symbols, self.corr_window):
            w.observe(g(lambda _c: self._step("correlation", self._draw_correlation)), names="value")

    def show(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Controls set by the dashboard itself (a new run) draw nothing until it draws once."""
        self._muted += 1
        try:
            yield
        finally:
            self._muted -= 1

    # -- runs -------------------------------------------------------------------------------
    def run_options(self) -> list[tuple[str, str]]:
        """(label, run id) of the stored backtests, newest first, then the unstored sample runs."""
        out = [(f"{r.spec.label} · {r.equity.index[0]:%Y-%m-%d}..{r.equity.index[-1]:%Y-%m-%d} · {k} (not stored)", k)
               for k, r in self._memory.items()]  # fmt: skip
        if self.store is None:
            return out
        frame = runs(kind="backtest", status="ok", store=self.store).iloc[::-1].head(MAX_RUNS)
        return out + [(f"{r.strategy} · {r.symbols} · {str(r.data_start)[:10]}..{str(r.data_end)[:10]} · {r.run_id}",
                       r.run_id) for r in frame.itertuples()]  # fmt: skip

    def _refresh(self, select: str | None = None) -> None:
        self.status.busy("listing the stored runs")
        options = self.run_options()
        keys = [k for _, k in options]
        with self._quiet():
            self.run.options = options
            self.run.value = select if select in keys else (keys[0] if keys else None)
        self._empty(not options)
        if not options:
            return self.status.ready("no backtest run to review")
        if self.review is None or self.review.run_id != self.run.value:
            return self._on_run(None)
        return self.status.ready(f"{len(options)} runs listed (the newest {MAX_RUNS} at most); "
                                 f"run <code>{html.escape(self.run.value)}</code> kept")  # fmt: skip

    def _empty(self, empty: bool) -> None:
        where = "the experiment store is off (WORKBENCH_STORE=off)" if self.store is None else \
            f"the experiment store {html.escape(str(getattr(self.store, 'path', self.store)))} has none"  # fmt: skip
        self.html["empty"].value = (
            f"<p style='font-size:14px'><b>No backtest runs to review</b>: {where}. Press <b>run the sample</b> to "
            "backtest sma_crossover (fast 20, slow 100, 10 bps) on SPX with a risk profile (gross leverage 1, 1-day 99% "
            "VaR 2.5% per entry, long only, entries stopped at a 30% drawdown), store it and review it; or make runs "
            "with <code>wb.backtest(...)</code> or <code>make demo</code> and press <b>refresh</b>.</p>"
        ) if empty else ""  # fmt: skip
        self.body.layout.display = "none" if empty else None
        self.run.disabled = empty

    def _on_sample(self, _button: Any) -> None:
        self.status.busy("running the sample backtest")
        result = backtest(SAMPLE["strategy"], SAMPLE["symbol"], SAMPLE["params"], commission=SAMPLE["commission"],
                          risk=sample_profile(), store=self.store)  # fmt: skip
        if self.store is None:
            self._memory[result.run_id] = result
        self._refresh(select=result.run_id)

    def _on_run(self, _change: Any) -> None:
        if self._muted or self.run.value is None:
            return
        t0 = time.perf_counter()
        self.status.busy(f"loading run {self.run.value}")
        self._load(self.run.value)
        for draw in (self._draw_var, self._draw_limits, self._draw_risk_log, self._draw_stress,
                     self._draw_correlation, self._draw_factors):  # fmt: skip
            draw()
        self.status.ready(self._summary("reviewed", time.perf_counter() - t0))

    def _load(self, run_id: str) -> None:
        self.review = None
        self.body.layout.display = "none"  # never show one run's figures under another's name
        result = self._memory.get(run_id) or load_run(run_id, store=self.store)
        n = len(result.returns.dropna())
        if n < 22:
            raise ParameterError(f"RiskReview: run {run_id} has {n} returns; its VaR backtest needs at least 22")
        prices = _run_prices(result)
        values = position_values(result, prices)
        self.review = _Review(run_id, result, prices, values, path_measures(values, result.equity), {}, {})
        with self._quiet():
            self._reset_controls(result, n)
        self.body.layout.display = None
        self.html["header"].value = self._header()

    def _reset_controls(self, result: BacktestResult, n: int) -> None:
        """Window bounds for this run, the limit boxes from its own profile, its holdings dates
        and its assets for the correlation."""
        self.window.max = max(20, n - 2)
        own = _thresholds(result.spec.risk) if result.spec.risk is not None else {}
        defaults = {"gross_leverage": 1.0, "position_weight": 1.0, "hhi": 1.0, "drawdown": 0.2}
        for measure, box in (("gross_leverage", self.gross), ("position_weight", self.weight), ("hhi", self.hhi),
                             ("drawdown", self.drawdown)):  # fmt: skip
            box.value = own.get(measure, (None, defaults[measure]))[1]
        last, held = result.equity.index[-1], _last_held(result.positions)
        options = [(f"last bar, {last:%Y-%m-%d}", "last")]
        if held is not None and held != last:
            options.append((f"last bar holding a position, {held:%Y-%m-%d}", held.isoformat()))
        self.holdings.options = options
        self.holdings.value = options[-1][1]  # a book flat at the end is shown as it last held positions
        prices = self.review.prices  # type: ignore[union-attr]
        own_assets = list(ex.close_prices(prices).columns)
        daily = {m.get("timeframe") for m in ex.price_meta(prices).values()} == {"1d"}
        others = self._daily_sample() if daily else []  # an hourly return beside a daily one is not one period's move
        self.corr_symbols.options = sorted(set(own_assets) | set(others))
        self.corr_symbols.value = tuple(self._default_symbols(own_assets, others, result.equity.index))

    def _daily_sample(self) -> list[str]:
        """The sample's daily series, offered beside a daily run's assets."""
        if not self._closes:
            for sym in sample_symbols():
                frame = load_prices(sym, progress=False)
                if frame.attrs.get("timeframe") == "1d":
                    self._closes[sym] = frame["Close"]
        return list(self._closes)

    def _default_symbols(self, own: list[str], others: list[str], index: pd.DatetimeIndex) -> list[str]:
        """The run's assets; a one-asset run adds the other series that cover its last window."""
        if len(own) > 1:
            return own
        first = index[max(0, len(index) - self.corr_window.value)]
        closes = self._closes
        return own + [s for s in others if s not in own and closes[s].index[0] <= first and closes[s].index[-1] >= index[-1]]

    def _header(self) -> str:
        r = self.review.result  # type: ignore[union-attr]
        eq = r.equity.index
        profile = describe_profile(r.spec.risk)
        return (f"<div style='font-size:13px'><b>{html.escape(r.spec.label)}</b> · engine {html.escape(r.spec.engine)} · "
                f"{len(eq)} bars {eq[0]:%Y-%m-%d}..{eq[-1]:%Y-%m-%d} · risk profile: {html.escape(profile)}</div>")  # fmt: skip

    def _summary(self, what: str, seconds: float) -> str:
        if self.review is None:
            return html.escape(what)
        return f"run <code>{html.escape(self.review.run_id)}</code> {html.escape(what)} in {seconds:.2f} s"

    def _step(self, what: str, draw: Any) -> None:
        if self._muted or self.review is None:
            return
        t0 = time.perf_counter()
        self.status.busy(f"computing the {what}")
        draw()
        self.status.ready(self._summary(f"{what} drawn", time.perf_counter() - t0))

    def _show(self, name: str, fig: go.Figure) -> None:
        self.figures[name] = fig
        self.draws[name] = self.draws.get(name, 0) + 1
        show_figure(self.out[name], fig)

    def report(self) -> RiskReport:
        """RiskReport of the run at the chosen confidence and window (cached per pair)."""
        rv = self.review
        key = (self.confidence.value, self.window.value)
        if key not in rv.reports:  # type: ignore[union-attr]
            rv.reports[key] = RiskReport.of(rv.result, rv.prices, confidence=key[0], window=key[1])  # type: ignore[union-attr]
        return rv.reports[key]  # type: ignore[union-attr]

    # -- sections -----------------------------------------------------------------------------
    def rolling(self) -> tuple[RollingVaR, vb.VaRBacktest | None]:
        """The chosen estimator's rolling VaR and its backtest (cached; None: no forecast to test)."""
        rv = self.review
        key = (self.estimator.value, self.confidence.value, self.window.value)
        if key not in rv.rolling:  # type: ignore[union-attr]
            roll = rolling_var(rv.result.returns, key[0], window=key[2], confidence=key[1])  # type: ignore[union-attr]
            bt = vb.backtest_var(rv.result.returns.dropna(), roll.var, key[1]) if roll.var.notna().sum() >= 2 else None  # type: ignore[union-attr]
            rv.rolling[key] = (roll, bt)  # type: ignore[union-attr]
        return rv.rolling[key]  # type: ignore[union-attr]

    def _draw_var(self) -> None:
        rep, (roll, bt) = self.report(), self.rolling()
        e, c, w = roll.estimator, roll.confidence, roll.window
        self.tables["var"] = rep.var
        self.html["var_table"].value = (f"<b>1-bar VaR and ES at {c:.0%}, whole run</b>" + html_table(
            rep.var, {"var": "{:.3%}", "es": "{:.3%}"}, headers={"var": "VaR (loss, of equity)", "es": "ES (loss, of equity)"},
            bold=e))  # fmt: skip
        refit = f", refit every {roll.refit} bars" if roll.refit > 1 else ""
        title = f"VaR backtest, {e} {c:.0%}, window {w}{refit}: {rep.label}"
        if bt is None:
            self.tables["var_backtest"] = pd.DataFrame()
            self.html["backtest_table"].value = "<b>no backtest</b>: no window gave a forecast"
            return self._show("var", _note_figure(title, f"{e} gave no forecast: {roll.first_failure}"))
        rets = self.review.result.returns.dropna()  # type: ignore[union-attr]
        series = pd.DataFrame({"return": rets, "var": roll.var, "exception": bt.exceptions.reindex(rets.index, fill_value=False)})
        self.tables["var_backtest"] = table = backtest_table(bt)
        failed = f"; {roll.failures} fits did not apply (first: {html.escape(roll.first_failure)})" if roll.failures else ""
        self.html["backtest_table"].value = (f"<b>Backtest of the rolling {html.escape(e)} VaR</b>" + html_table(
            table, {"statistic": "{:.3f}", "p_value": "{:.4f}", "expected": "{:.1f}"},
            headers={"p_value": "p-value", "statistic": "LR statistic (plus factor)"}) + f"<small>{failed}</small>")  # fmt: skip
        fig = replace(rep, var_series=series).var_figure()
        fig.update_layout(title=title, yaxis_title="return, −VaR (1 bar, of equity)", legend={"orientation": "h"})
        self._show("var", fig)

    def _draw_limits(self) -> None:
        rv = self.review
        profile = limit_profile(self.gross.value, self.weight.value, self.hhi.value, self.drawdown.value)
        breaches = limit_breaches(profile, rv.values, rv.result.equity, rv.measures)  # type: ignore[union-attr]
        self.tables["breaches"] = breaches
        self.tables["limits"] = table = usage_table(profile, rv.measures, breaches)  # type: ignore[union-attr]
        pct = {"threshold": "{:.4g}", "peak": "{:.4g}", "peak_usage": "{:.0%}", "last_usage": "{:.0%}"}
        self.html["limits_table"].value = html_table(table, pct, headers={"peak_usage": "peak usage", "last_usage": "last usage",
                                                                          "bars_over": "bars over", "first_breach": "first breach"})  # fmt: skip
        self._show("limits", usage_figure(rv.measures, profile, breaches))  # type: ignore[union-attr]

    def _draw_risk_log(self) -> None:
        rep = self.report()
        r = self.review.result  # type: ignore[union-attr]
        if r.risk is None:
            self.html["risk_log"].value = (f"<p><b>Risk log: {NO_PROFILE}</b>: its orders were not checked against "
                                           "any limit; the limits above are applied to its path after the fact.</p>")  # fmt: skip
        else:
            s = rep.risk_summary
            self.html["risk_log"].value = (
                f"<p><b>Risk log</b> of the run's profile ({html.escape(describe_profile(r.spec.risk))}): final state "
                f"{html.escape(str(s['state']))}, highest level {html.escape(str(s['level']))}, {s['passed']} orders passed, "
                f"{s['denied']} denied, {s['events']} events</p>"
                + html_table(rep.risk_log.set_index("ts")[["event", "limit", "value", "threshold", "detail"]],
                             {"value": "{:.4g}", "threshold": "{:.4g}"}, limit=50))  # fmt: skip
        self._show("risk_log", rep.risk_log_figure())

    def _draw_stress(self) -> None:
        rv, rep = self.review, self.report()
        at = self.holdings.value
        if at == "last":
            held, stress = ex.book(rv.result, rv.prices), rep.stress  # type: ignore[union-attr]
        else:
            held = ex.book(rv.result, rv.prices, at=pd.Timestamp(at))  # type: ignore[union-attr]
            stress = st.stress_test(held, rv.prices)  # type: ignore[union-attr]
        self.tables["stress"], self.tables["positions"] = stress, held.positions
        view = replace(rep, stress=stress, positions=held.positions)
        fig = view.stress_figure()
        fig.update_layout(title=f"stress on current holdings at {held.asof:%Y-%m-%d} (P&L, fraction of equity)")
        self._show("stress", fig)
        self._show("exposure", view.exposure_figure())
        flat = "" if (held.positions["quantity"] != 0).any() else "<p><b>the book is flat at this date</b>: every P&L is 0</p>"
        if at != "last":
            flat += (f"<p>The book is flat at the last bar: these are the holdings at the last bar that held a position, "
                     f"{held.asof:%Y-%m-%d}.</p>")  # fmt: skip
        self.html["stress_table"].value = flat + html_table(
            stress[["start", "end", "pnl", "pnl_frac", "missing"]], {"pnl": "{:,.2f}", "pnl_frac": "{:.2%}"},
            headers={"pnl": "P&L (quote ccy)", "pnl_frac": "P&L (of equity)"})  # fmt: skip
        exposure = ex.book_exposure(held).to_frame("value")
        self.html["exposure_table"].value = html_table(
            held.positions[["quantity", "price", "value", "weight", "asset_class", "marked_at"]],
            {"quantity": "{:,.4g}", "price": "{:,.2f}", "value": "{:,.2f}", "weight": "{:.2%}"}) + html_table(
            exposure.T, {k: "{:.2%}" if k.endswith("_frac") else "{:,.2f}" for k in exposure.index})  # fmt: skip

    def _draw_correlation(self) -> None:
        rv, rep = self.review, self.report()
        own = ex.close_prices(rv.prices)  # type: ignore[union-attr]
        closes = {s: own[s] if s in own.columns else self._closes[s] for s in self.corr_symbols.value}
        title = "correlation of returns (cluster order)"
        try:
            c, dates = correlation_of(closes, rv.result.equity.index[-1], self.corr_window.value)  # type: ignore[union-attr]
        except (ParameterError, InsufficientHistoryError) as exc:
            self.tables["correlation"] = pd.DataFrame()
            self.html["corr_note"].value = ""
            return self._show("correlation", _note_figure(title, str(exc)))
        self.tables["correlation"] = c
        fig = replace(rep, correlation=c).correlation_figure()
        fig.update_layout(title=f"{title}: {len(dates)} common dates {dates[0]:%Y-%m-%d}..{dates[-1]:%Y-%m-%d}", height=420)
        fig.update_traces(text=np.round(c.to_numpy(), 2), texttemplate="%{text}")
        short = f" (only {len(dates)} of the {self.corr_window.value} asked for exist)" if len(dates) < self.corr_window.value else ""
        self.html["corr_note"].value = _note(
            "Pearson correlation of simple close-to-close returns over the last dates up to the run's last bar on "
            f"which every chosen symbol has a return (listwise){short}; clustered by distance √(½(1 − ρ)), average "
            "linkage, scipy's optimal leaf order.").value  # fmt: skip
        self._show("correlation", fig)

    def _draw_factors(self) -> None:
        rep = self.report()
        self.tables["factors"] = rep.factors
        fit = rep.factor_fit
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in rep.notes if n.startswith("factor"))
        span = f"{fit['start']:%Y-%m}..{fit['end']:%Y-%m}" if fit["months"] else "none"
        self.html["factor_table"].value = notes + html_table(
            rep.factors, {"beta": "{:.4f}", "se": "{:.4f}", "t": "{:.2f}", "p": "{:.4f}"},
            headers={"beta": "beta (alpha: per month)", "se": "std error"}) + (
            f"<small>R² {fit['r_squared']:.3f}, {fit['months']} months {span}, factors {html.escape(str(fit['factors']))}</small>")  # fmt: skip
        self._show("factors", rep.factor_figure())


VAR_NOTE = (
    "Returns: simple per-bar returns of the run's equity (one bar = one day for daily data), flat days included as 0. "
    "VaR and ES are one-bar <b>losses</b>, positive fractions of equity, at confidence c = P(loss ≤ VaR); the table "
    "estimates them on the whole run (historical: the ⌈n(1−c)⌉-th worst return, inverted CDF; normal: sample mean and "
    "σ with ddof 1; Student-t: maximum-likelihood fit; Cornish-Fisher: bias-corrected skew and excess kurtosis). "
    "The line is the rolling forecast for each bar from the <i>window</i> returns before it (no look-ahead); historical "
    "and normal are re-estimated every bar, Cornish-Fisher every 63 and Student-t every 126 bars (held in between). "
    "An exception is a loss strictly above the VaR. Kupiec POF and Christoffersen independence are LR tests with "
    "χ²(1), conditional coverage χ²(2); rejected at 5% when p < 0.05. Basel traffic light by P(X ≤ x) for a correct "
    "model: green < 0.95 ≤ yellow < 0.9999 ≤ red; the plus factor is Basel's only for 250 observations at 99%.")
LIMITS_NOTE = (
    "Limits applied after the fact to the run's path, as the domain's MaxGrossLeverage, MaxPositionWeight, MaxHHI "
    "and the profile's max_drawdown (prefilled from the run's own profile when it has them). Position values = "
    "quantity × close × multiplier at each close; leverage and weight are fractions of equity at that close; HHI is "
    "Σ(|value|/gross)², 0 for a flat book; drawdown = 1 − equity / running peak. A breach is a close above the limit "
    "(drawdown: at or beyond it); markers sit at each episode's first close.")
STRESS_NOTE = (
    "The holdings at the chosen close, marked at their last close, replayed through the standard historical windows "
    "(calendar dates in UTC, both inclusive) on each asset's whole available history: window return = the last close "
    "≤ end over the last close before start, − 1; P&L = Σ value × window return, linear, no re-hedging. A symbol "
    "with no close before or inside a window is listed as missing and left out, never counted as 0. Exposure: long, "
    "short (negative), gross = long − short, net = long + short, *_frac as fractions of equity.")
FACTOR_NOTE = (
    "Loadings of the run's monthly excess returns on the Fama-French 3 factors (Kenneth French's file as shipped by "
    "arch, decimals): returns compounded per calendar month, ∏(1 + r) − 1, the partial first and last months "
    "dropped, RF subtracted; OLS with an intercept (alpha, per month), classical standard errors; bars ±1.96 se.")
