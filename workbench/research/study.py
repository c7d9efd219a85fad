"""``wb.optimize``: a parameter search whose report says how much to believe the winner.

Every trial lands in the experiment store (kind ``trial``, stats only, under one parent
id), and the report puts the overfitting statistics beside the winner by default:

- **trials** N: counted from the store — this search's trials plus every earlier trial
  of the same strategy on the same data (same SHA-256), so re-running a search with new
  ranges does not reset the count;
- **PSR** of the winner against a Sharpe ratio of 0, and **DSR** against the expected
  maximum Sharpe ratio of N trials whose Sharpe ratios vary as this search's did
  (Bailey & López de Prado 2012, 2014; per-bar Sharpe ratios, population skew, non-excess
  kurtosis: :mod:`workbench.research.overfitting`);
- **PBO** by CSCV over this search's per-bar returns (S = ``n_blocks`` equal blocks;
  Bailey, Borwein, López de Prado & Zhu 2017), with the IS-vs-OOS pairs for a scatter;
- **MinTRL** (bars the winner's Sharpe ratio needs for PSR 0.95) and **MinBTL** (years of
  data below which N trials can produce the winner's annualised Sharpe ratio by luck).

Methods: ``"grid"`` (every combination), ``"random"`` (``n_trials`` distinct combinations
drawn with ``seed``), ``"optuna"`` (TPE with ``seed``; a list in ``space`` is categorical,
a ``(low, high)`` pair of ints or floats a range). Combinations the strategy's own
validation rejects are skipped and counted. Signal strategies on the vectorized engine run
many columns per vectorbt call; everything else one backtest per trial.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.api import (
    bind,
    data_id,
    make_spec,
    prepare_prices,
    resolve_store,
    resolve_strategy,
    run,
)
from workbench.errors import ParameterError
from workbench.research.optimize import (
    GRID_METRICS,
    _metrics,
    _spec_equity,
    _vector_equity,
    chunk_size,
)
from workbench.research.overfitting import (
    CSCVResult,
    deflated_sharpe_ratio,
    min_backtest_length,
    min_track_record_length,
    pbo_cscv,
    probabilistic_sharpe_ratio,
    sharpe_moments,
)
from workbench.research.tasks import InProcess, TaskRunner, check_picklable, resolve_runner
from workbench.strategy.base import Strategy
from workbench.strategy.ids import stable_id
from workbench.strategy.metrics import periods_per_year
from workbench.strategy.result import BacktestResult
from workbench.strategy.spec import BacktestSpec

__all__ = ["optimize", "Optimization", "walk_forward_optimize", "WalkForward", "METHODS", "MAX_TRIALS"]

METHODS = ("grid", "random", "optuna")
MAX_TRIALS = 20_000  # per-bar returns of every trial are kept for CSCV (grid_search sweeps more)
Objective = str | Callable[[pd.Series], float]


@dataclass
class Optimization:
    """One search: its trials, the winner, and how much to believe it (module notes)."""

    id: str
    objective: str
    trials: pd.DataFrame  # one row per trial: the parameters, then the stats
    best_params: dict[str, Any]
    best: BacktestResult  # the winner's full backtest (stored with the search as parent)
    overfitting: pd.Series  # n_trials, psr, dsr, pbo, prob_oos_loss, min_trl, min_btl_years, ...
    cscv: CSCVResult | None
    skipped: int = 0
    returns: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    def __repr__(self) -> str:
        o = self.overfitting
        return (f"<Optimization {self.id}: {len(self.trials)} trials, best {self.best_params} "
                f"{self.objective}={self.trials[self.objective].max():.4g}; N={int(o['n_trials'])} "
                f"PSR={o['psr']:.3f} DSR={o['dsr']:.3f} PBO={o['pbo']:.3f}>")  # fmt: skip

    def heatmap(self, x: str, y: str, metric: str | None = None) -> Any:
        """Parameter stability: ``metric`` (default the objective) over two parameters,
        the best of the others at each cell (plotly)."""
        import plotly.graph_objects as go

        metric = metric or self.objective
        grid = self.trials.pivot_table(index=y, columns=x, values=metric, aggfunc="max")
        fig = go.Figure(go.Heatmap(z=grid.to_numpy(), x=grid.columns, y=grid.index, colorscale="RdYlGn",
                                   colorbar={"title": metric}))  # fmt: skip
        fig.update_layout(title=f"{metric} by {x} and {y} ({len(self.trials)} trials)", xaxis_title=x, yaxis_title=y)
        return fig

    def is_oos_figure(self) -> Any:
        """CSCV: each split's in-sample best trial, its IS against its OOS Sharpe ratio."""
        import plotly.graph_objects as go

        fig = go.Figure()
        if self.cscv is not None:
            c = self.cscv
            fig.add_trace(go.Scatter(x=c.is_performance, y=c.oos_performance, mode="markers", name="IS-best trial",
                                     marker={"size": 5, "opacity": 0.5}))  # fmt: skip
        fig.update_layout(title=f"In-sample vs out-of-sample Sharpe (per bar) of the IS-best trial; "
                                f"PBO {self.overfitting['pbo']:.2f}",
                          xaxis_title="in-sample", yaxis_title="out-of-sample")  # fmt: skip
        return fig


def optimize(
    strategy: str | type[Strategy] | Strategy,
    prices: pd.DataFrame | str,
    space: dict[str, Any],
    *,
    objective: Objective = "sharpe",
    method: str = "grid",
    n_trials: int | None = None,
    seed: int = 0,
    n_blocks: int = 16,
    store: Any = "default",
    workers: int = 1,
    cluster: Any = None,
    **execution: Any,
) -> Optimization:
    """Search ``space`` for the parameters that maximise ``objective`` (module notes).

    ``workers`` > 1 runs the trials in local processes, ``cluster`` on Dask (a
    ``distributed.Client``, a scheduler address or a TaskRunner); the trials come back in
    order and this process alone writes the store, so the result is identical to a run
    here. Optuna's sequential search runs here.

    >>> import workbench as wb
    >>> opt = wb.optimize("sma_crossover", "GOOG", {"fast": [5, 10, 20], "slow": [50, 100]}, n_blocks=8)
    >>> sorted(opt.best_params), bool(0 <= opt.overfitting["pbo"] <= 1)
    (['allow_short', 'fast', 'slow'], True)
    """
    if method not in METHODS:
        raise ParameterError(f"method must be one of {METHODS}, got method={method!r}")
    if not isinstance(space, dict) or not space:
        raise ParameterError(f"space must map parameter names to values, got space={space!r}")
    name = objective if isinstance(objective, str) else getattr(objective, "__name__", "objective")
    if isinstance(objective, str) and objective not in GRID_METRICS:
        raise ParameterError(f"objective must be one of {GRID_METRICS} or a callable of the returns, got {objective!r}")
    st = resolve_store(store)
    runner = resolve_runner(workers, cluster)
    first = resolve_strategy(strategy, _first(space))
    frame, symbols = prepare_prices(first, prices)
    spec = bind(make_spec(first, **execution), frame, symbols)
    search_id = stable_id({"optimize": spec.id, "space": repr(space), "method": method, "n": n_trials, "seed": seed,
                           "objective": name})  # fmt: skip
    if method == "optuna":
        strats, skipped = _optuna(strategy, frame, spec, space, objective, n_trials, seed)
    else:
        strats, skipped = _candidates(strategy, space, method, n_trials, seed)
    try:
        returns, stats = _evaluate(frame, spec, strats, runner)
    finally:
        if runner is not cluster:  # opened here (from an address): closed here
            getattr(runner, "close", lambda: None)()
    table = pd.DataFrame([s.params for s in strats]).assign(**stats)
    if not isinstance(objective, str):
        table[name] = [float(objective(returns.iloc[:, j])) for j in range(returns.shape[1])]
    best_j = int(np.nanargmax(table[name].to_numpy(dtype="float64")))
    best = run(spec.replace(strategy=strats[best_j], data=None, instruments=()), frame, store=None)
    prior = _store_trials(st, spec, strats, table, search_id, best)
    over, cscv = _overfitting(returns, best_j, prior, spec, frame, n_blocks)
    return Optimization(search_id, name, table, dict(strats[best_j].params), best, over, cscv, skipped, returns)


def _first(space: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in space.items():
        if isinstance(v, tuple) and len(v) == 2:
            out[k] = v[0]
        elif isinstance(v, list | range | np.ndarray) and len(v):
            out[k] = list(v)[0]
        else:
            raise ParameterError(f"space values must be a non-empty list, or a (low, high) range for optuna: "
                                 f"{k}={v!r}")  # fmt: skip
    return out


def _candidates(strategy: Any, space: dict[str, Any], method: str, n_trials: int | None,
                seed: int) -> tuple[list[Strategy], int]:  # fmt: skip
    lists = {k: list(v) for k, v in space.items()}
    if any(isinstance(v, tuple) for v in space.values()):
        raise ParameterError("a (low, high) range needs method='optuna'; grid and random take lists")
    total = math.prod(len(v) for v in lists.values())
    if method == "random":
        if not (isinstance(n_trials, int) and n_trials > 0):
            raise ParameterError(f"method='random' needs n_trials, an int > 0, got n_trials={n_trials!r}")
        picks = np.sort(np.random.default_rng(seed).choice(total, size=min(n_trials, total), replace=False))
        combos = [tuple(v[i] for v, i in zip(lists.values(), np.unravel_index(p, [len(v) for v in lists.values()]),
                                              strict=True)) for p in picks]  # fmt: skip
    else:
        combos = list(itertools.islice(itertools.product(*lists.values()), MAX_TRIALS + 1))
    if len(combos) > MAX_TRIALS:
        raise ParameterError(f"optimize keeps every trial's returns for the overfitting statistics: at most "
                             f"{MAX_TRIALS:,} trials, the space has {total:,} (use method='random' or grid_search)")  # fmt: skip
    strats, skipped = [], 0
    for values in combos:
        try:
            strats.append(resolve_strategy(strategy, dict(zip(lists, values, strict=True))))
        except ParameterError:
            skipped += 1
    if len(strats) < 2:
        raise ParameterError(f"optimize needs at least 2 valid combinations, got {len(strats)} ({skipped} rejected)")
    return strats, skipped


def _prepare_trials(shared: tuple[pd.DataFrame, BacktestSpec]) -> Callable[[list[Strategy]], tuple[np.ndarray, np.ndarray]]:
    """A worker's trial runner: (equity, closed-trade counts) of a chunk of trials."""
    frame, spec = shared
    vector = spec.engine == "vectorized" and spec.strategy.kind == "signal" and spec.risk is None
    if vector:
        return lambda strats: _vector_equity(frame, spec, strats, trades=True)
    return lambda strats: _spec_equity(frame, spec, strats)


def _trial_chunks(strats: list[Strategy], n_bars: int, workers: int) -> list[list[Strategy]]:
    """Chunks within the sweep's memory cap, and at least two per worker (load balance)."""
    size = max(1, min(chunk_size(n_bars), math.ceil(len(strats) / (2 * workers))))
    return [strats[i : i + size] for i in range(0, len(strats), size)]


def _evaluate(frame: pd.DataFrame, spec: BacktestSpec, strats: list[Strategy],
              runner: TaskRunner | None = None) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:  # fmt: skip
    """Per-bar returns (bars × trials) and the grid metrics of each trial, on ``runner``
    (this process by default) in chunks gathered in trial order: identical either way."""
    if runner is None or isinstance(runner, InProcess):
        equity, n_trades = _prepare_trials((frame, spec))(strats)
    else:
        check_picklable("optimize on workers", spec, strats[0])
        parts = list(runner.map(_prepare_trials, (frame, spec), _trial_chunks(strats, len(frame), runner.workers)))
        equity, n_trades = np.hstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    ppy = spec.periods_per_year or periods_per_year(frame.index)
    stats = {**_metrics(equity, frame.index, spec.cash, ppy, spec.risk_free_rate), "n_trades": n_trades}
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = np.vstack([np.zeros((1, equity.shape[1])), equity[1:] / equity[:-1] - 1.0])
    return pd.DataFrame(rets, index=frame.index), {k: v for k, v in stats.items() if k in GRID_METRICS}


def _optuna(strategy: Any, frame: pd.DataFrame, spec: BacktestSpec, space: dict[str, Any], objective: Objective,
            n_trials: int | None, seed: int) -> tuple[list[Strategy], int]:  # fmt: skip
    import optuna

    if not (isinstance(n_trials, int) and n_trials >= 2):
        raise ParameterError(f"method='optuna' needs n_trials, an int >= 2, got n_trials={n_trials!r}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seen: dict[tuple, Strategy] = {}
    skipped = 0

    def suggest(trial: Any) -> dict[str, Any]:
        out = {}
        for k, v in space.items():
            if isinstance(v, tuple) and all(isinstance(x, int) for x in v):
                out[k] = trial.suggest_int(k, v[0], v[1])
            elif isinstance(v, tuple):
                out[k] = trial.suggest_float(k, float(v[0]), float(v[1]))
            else:
                out[k] = trial.suggest_categorical(k, list(v))
        return out

    def score(trial: Any) -> float:
        nonlocal skipped
        params = suggest(trial)
        try:
            strat = resolve_strategy(strategy, params)
        except ParameterError:
            skipped += 1
            raise optuna.TrialPruned() from None
        returns, stats = _evaluate(frame, spec, [strat])
        seen[tuple(sorted(params.items()))] = strat
        value = stats[objective][0] if isinstance(objective, str) else objective(returns.iloc[:, 0])
        return float(value) if np.isfinite(value) else -math.inf

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(score, n_trials=n_trials)
    strats = list(seen.values())
    if len(strats) < 2:
        raise ParameterError(f"optuna found fewer than 2 valid, distinct combinations in {n_trials} trials")
    return strats, skipped


def _store_trials(st: Any, spec: BacktestSpec, strats: list[Strategy], table: pd.DataFrame, search_id: str,
                  best: BacktestResult) -> int:  # fmt: skip
    """Keep every trial (stats only) and the winner (whole); the number of trials of this
    strategy on these bars the store has seen, this search's included."""
    save_trials = getattr(st, "save_trials", None)
    if save_trials is None:  # no store, or one that keeps whole runs only: count this search alone
        return len(strats)
    specs = [spec.replace(strategy=s) for s in strats]
    save_trials(specs, table.to_dict("records"), parent=search_id)
    st.save(best, kind="backtest", parent=search_id)
    return int(st.count(kind="trial", strategy=spec.strategy.name, data_sha256=spec.data.sha256))  # type: ignore[union-attr]


def _overfitting(returns: pd.DataFrame, best_j: int, n_trials: int, spec: BacktestSpec, frame: pd.DataFrame,
                 n_blocks: int) -> tuple[pd.Series, CSCVResult | None]:  # fmt: skip
    r = returns.to_numpy()[1:]  # the first bar has no return
    srs = np.array([_per_bar_sharpe(r[:, j]) for j in range(r.shape[1])])
    m = sharpe_moments(r[:, best_j])
    ppy = spec.periods_per_year or periods_per_year(frame.index)
    var = float(np.nanvar(srs, ddof=1)) if np.isfinite(srs).sum() > 1 else 0.0
    dsr = deflated_sharpe_ratio(m.sr, m.n, m.skew, m.kurt, n_trials=max(n_trials, 1), var_trials=var)
    cscv = pbo_cscv(r, S=n_blocks) if r.shape[1] >= 2 else None
    annual = m.sr * math.sqrt(ppy)
    out = pd.Series({
        "n_trials": n_trials, "n_trials_here": r.shape[1], "sharpe_per_bar": m.sr, "sharpe_annual": annual,
        "var_trial_sharpe": var, "psr": probabilistic_sharpe_ratio(sr=m.sr, n=m.n, skew=m.skew, kurt=m.kurt),
        "dsr": dsr, "pbo": cscv.pbo if cscv else math.nan, "prob_oos_loss": cscv.prob_oos_loss if cscv else math.nan,
        "min_trl_bars": min_track_record_length(m.sr, m.skew, m.kurt) if m.sr > 0 else math.inf,
        "min_btl_years": min_backtest_length(max(n_trials, 2), annual) if annual > 0 else math.inf,
        "years": len(r) / ppy,
    })  # fmt: skip
    return out, cscv


def _per_bar_sharpe(r: np.ndarray) -> float:
    sd = float(np.std(r, ddof=1))
    return float(np.mean(r)) / sd if sd > 0 else math.nan


@dataclass
class WalkForward:
    """Re-optimised walk-forward (see :func:`walk_forward_optimize`)."""

    folds: pd.DataFrame  # one row per fold: windows, chosen params, IS and OOS objective, degradation
    oos_returns: pd.Series  # the test windows' returns, stitched in time order
    searches: list[Optimization] = field(repr=False, default_factory=list)
    id: str = ""  # the parent of every fold run in the store (kind "fold")

    @property
    def oos_equity(self) -> pd.Series:
        """Growth of 1 over the stitched out-of-sample returns."""
        return (1.0 + self.oos_returns).cumprod().rename("oos_equity")

    def __repr__(self) -> str:
        f = self.folds
        return (f"<WalkForward {len(f)} folds: IS sharpe {f['is_sharpe'].mean():.3f}, OOS sharpe "
                f"{f['oos_sharpe'].mean():.3f} (mean of folds); stitched OOS growth {self.oos_equity.iloc[-1]:.3f}>")  # fmt: skip

    def figure(self) -> Any:
        """The stitched out-of-sample equity, folds shaded."""
        import plotly.graph_objects as go

        eq = self.oos_equity
        fig = go.Figure(go.Scatter(x=eq.index, y=eq.to_numpy(), name="out-of-sample equity"))
        for i, row in self.folds.iterrows():
            fig.add_vrect(x0=row["test_start"], x1=row["test_end"], fillcolor="grey" if i % 2 else "white",
                          opacity=0.1, line_width=0)  # fmt: skip
        fig.update_layout(title=f"Walk-forward: {len(self.folds)} re-optimised folds, stitched out-of-sample equity")
        return fig


def walk_forward_optimize(
    strategy: str | type[Strategy] | Strategy,
    prices: pd.DataFrame | str,
    space: dict[str, Any],
    *,
    train: Any,
    test: Any,
    anchored: bool = False,
    purge: int = 0,
    objective: str = "sharpe",
    method: str = "grid",
    n_trials: int | None = None,
    seed: int = 0,
    n_blocks: int = 8,
    store: Any = "default",
    workers: int = 1,
    cluster: Any = None,
    **execution: Any,
) -> WalkForward:
    """Optimise on each train window, trade the winner on the test window after it.

    IS and OOS Sharpe ratios in ``folds`` are annualised (√periods per year), rf = 0, of
    per-bar simple returns (ddof = 1), on the train and the test window respectively.

    Windows come from :func:`workbench.research.splits.walk_forward` (bars, or calendar
    offsets such as ``train="3YS", test="1YS"``; ``purge`` bars between them). On each
    fold the search (:func:`optimize`, its trials stored under the fold's search id) runs
    on the train bars only; the winner is then backtested on the train and test bars
    together and only the test bars' returns are kept, so its indicators are warmed up on
    data it was allowed to see and no test bar informs the choice. The stitched test
    returns are the out-of-sample record (each fold's run is stored as kind ``fold`` under
    the walk-forward's ``id``); ``folds`` has the IS-vs-OOS degradation
    (annualised Sharpe on each window, their difference and ratio). ``workers`` /
    ``cluster`` run each fold's trials as :func:`optimize` does.
    """
    from workbench.research.splits import walk_forward

    first = resolve_strategy(strategy, _first(space))
    frame, symbols = prepare_prices(first, prices)
    runner = resolve_runner(workers, cluster)  # one client for every fold
    st = resolve_store(store)
    wf_id = stable_id({"walk_forward": first.identity(), "data": data_id(frame, symbols).sha256, "space": repr(space),
                       "train": repr(train), "test": repr(test), "anchored": anchored, "purge": purge,
                       "objective": objective, "method": method, "n": n_trials, "seed": seed,
                       "execution": repr(sorted(execution.items()))})  # fmt: skip
    ppy = execution.get("periods_per_year") or periods_per_year(frame.index)
    calendar = not isinstance(train, int)
    rows, pieces, searches = [], [], []
    try:
        for k, (tr, te) in enumerate(walk_forward(frame.index if calendar else len(frame), train, test,
                                                  anchored=anchored, purge=purge)):  # fmt: skip
            opt = optimize(strategy, frame.iloc[tr], space, objective=objective, method=method, n_trials=n_trials,
                           seed=seed, n_blocks=n_blocks, store=st, cluster=runner, **execution)  # fmt: skip
            searches.append(opt)
            span = frame.iloc[int(tr[0]) : int(te[-1]) + 1]
            spec = make_spec(resolve_strategy(strategy, opt.best_params), **execution)
            fold = run(spec, span, store=None)
            if st is not None:  # the winner on train + test; the folds table says which bars were OOS
                st.save(fold, kind="fold", parent=wf_id)
            oos = fold.returns.loc[frame.index[te[0]] : frame.index[te[-1]]]
            pieces.append(oos)
            best = int(np.nanargmax(opt.trials[opt.objective].to_numpy(dtype="float64")))
            is_sharpe = _annual_sharpe(opt.returns.iloc[1:, best].to_numpy(), ppy)  # one convention for both windows
            oos_sharpe = _annual_sharpe(oos.to_numpy(), ppy)
            rows.append({"fold": k, "train_start": frame.index[tr[0]], "train_end": frame.index[tr[-1]],
                         "test_start": frame.index[te[0]], "test_end": frame.index[te[-1]], **opt.best_params,
                         "is_sharpe": is_sharpe, "oos_sharpe": oos_sharpe, "degradation": is_sharpe - oos_sharpe,
                         "oos_over_is": oos_sharpe / is_sharpe if is_sharpe else math.nan,
                         "dsr": opt.overfitting["dsr"], "pbo": opt.overfitting["pbo"]})  # fmt: skip
    finally:
        if runner is not cluster:
            getattr(runner, "close", lambda: None)()
    if not rows:
        raise ParameterError(f"walk_forward_optimize: no fold fits train={train!r} test={test!r} in {len(frame)} bars")
    oos = pd.concat(pieces).rename("oos_returns")
    return WalkForward(pd.DataFrame(rows), oos, searches, wf_id)


def _annual_sharpe(r: np.ndarray, ppy: float) -> float:
    sd = float(np.std(r, ddof=1)) if len(r) > 1 else 0.0
    return float(np.mean(r)) / sd * math.sqrt(ppy) if sd > 0 else math.nan
