"""Monte Carlo robustness with honest nulls: how much of a backtest is luck of the path.

Three resamplers, each returning a :class:`RobustnessReport` (one row per path or run,
the real backtest's value beside the distribution):

- :func:`block_bootstrap`: the stationary block bootstrap (Politis & Romano 1994) of a
  returns series through ``arch.bootstrap.StationaryBootstrap``. Blocks of random,
  geometric length (mean ``block``) keep the short-range dependence (volatility
  clustering) that an iid resample destroys; ``block=1`` *is* the iid bootstrap.
- :func:`trade_resampling`: the sequence of closed-trade P&Ls, drawn with replacement
  (``method="bootstrap"``: a different set of trades, so a different final P&L) or
  permuted without replacement (``method="permutation"``: the same trades in another
  order, so the same final P&L and only the drawdown path changes).
- :func:`parameter_jitter`: the same backtest with each numeric parameter moved by up to
  ``relative`` of its value: a result that lives on a knife-edge of its parameters fails.

Conventions (every report also carries them in ``conventions``):

- **final_wealth** is the growth of 1 over the path: ``prod(1 + r)`` for returns,
  ``(start_equity + sum(pnl)) / start_equity`` for trades (``prod(1 + pnl_i / equity
  before trade i)`` when they compound).
- **sharpe** is ``mean(r) / std(r, ddof=1) * sqrt(periods_per_year)`` with rf = 0 (NaN for
  a path of zero variance); ``periods_per_year`` comes from the bar spacing as in
  :mod:`workbench.strategy.metrics` (252 for exchange days).
- **max_drawdown** is ``min(W / running_peak(W) - 1)`` with the starting wealth as the
  first peak: a fraction in [-1, 0] (-0.3 = 30 % below the peak).
- **Quantiles** (5/25/50/75/95 %) are numpy's default (linear, Hyndman-Fan type 7) over
  the finite values; ``loss_share`` is the share of paths that end below their start.
- **Seeds**: one ``numpy.random.Generator`` (``default_rng(seed)``) drives each report, so
  the same seed gives identical output; the block bootstrap gives each chunk of paths its
  own child of ``SeedSequence(seed)``, so its paths do not depend on where chunks run.
"""

from __future__ import annotations

import enum
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.api import make_spec, prepare_prices, run
from workbench.errors import ParameterError
from workbench.research.tasks import resolve_runner, task_seeds
from workbench.strategy.base import Strategy, check_int, check_seed
from workbench.strategy.metrics import check_periods_per_year, periods_per_year
from workbench.strategy.result import BacktestResult
from workbench.strategy.spec import BacktestSpec

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["RobustnessReport", "TradeResampling", "block_bootstrap", "trade_resampling", "parameter_jitter",
           "QUANTILES", "MIN_RETURNS"]  # fmt: skip

QUANTILES = (0.05, 0.25, 0.50, 0.75, 0.95)
#: Fewer returns than this is no distribution (and arch's automatic block length needs
#: several autocorrelation lags: it fails below 8 observations).
MIN_RETURNS = 20
#: Paths are resampled and reduced in chunks of about this many cells (32 MiB of
#: float64), so 10,000 paths of 4,000 bars never sit in memory at once.
CHUNK_CELLS = 2**22

CONVENTIONS = {
    "final_wealth": "growth of 1: prod(1 + r) for returns; trades: (start_equity + sum(pnl)) / start_equity, "
                    "or prod(1 + pnl / equity before the trade) with compound=True",
    "sharpe": "mean(r) / std(r, ddof=1) * sqrt(periods_per_year), rf = 0; NaN for zero variance",
    "max_drawdown": "min(W / running_peak(W) - 1), the start as first peak; in [-1, 0]",
    "mean_return": "arithmetic mean of the per-bar simple returns of the path",
    "total_return": "final_equity / cash - 1 of the run (workbench.strategy.metrics)",
    "quantiles": "numpy linear (Hyndman-Fan type 7) over finite values",
    "loss_share": "share of paths or runs ending below their start (total return < 0)",
}


class TradeResampling(enum.Enum):
    """How :func:`trade_resampling` reorders the closed trades."""

    BOOTSTRAP = "bootstrap"  # with replacement: another set of trades, another final P&L
    PERMUTATION = "permutation"  # without replacement: the same final P&L, another path


@dataclass(frozen=True, kw_only=True, eq=False)
class RobustnessReport:
    """The distribution of a backtest's metrics under one resampling null.

    ``paths`` has one row per resampled path (or jittered run), one column per metric;
    ``actual`` is the real backtest's value of each metric; ``info`` records the settings
    (seed, paths, block length, skipped runs...). ``loss_share`` / ``profit_share`` are
    the shares of paths whose total return is below / above zero.
    """

    method: str
    paths: pd.DataFrame
    actual: pd.Series
    info: dict[str, Any] = field(default_factory=dict)
    conventions: dict[str, str] = field(default_factory=lambda: dict(CONVENTIONS))

    @property
    def _growth(self) -> np.ndarray:
        if "final_wealth" in self.paths:
            return self.paths["final_wealth"].to_numpy() - 1.0
        return self.paths["total_return"].to_numpy()

    @property
    def loss_share(self) -> float:
        return float(np.mean(self._growth < 0))

    @property
    def profit_share(self) -> float:
        return float(np.mean(self._growth > 0))

    @property
    def summary(self) -> pd.DataFrame:
        """One row per metric: the actual value, mean, std (ddof=1), the quantiles of
        :data:`QUANTILES` (``q05``...), the count of finite values and
        ``share_below_actual`` (where the real run ranks in the null, 0..1)."""
        rows = {}
        for name in self.paths.columns:
            x = self.paths[name].to_numpy(dtype="float64")
            x = x[np.isfinite(x)]
            actual = float(self.actual.get(name, math.nan))
            qs = np.quantile(x, QUANTILES) if len(x) else np.full(len(QUANTILES), math.nan)
            rows[name] = {
                "actual": actual, "mean": x.mean() if len(x) else math.nan,
                "std": x.std(ddof=1) if len(x) > 1 else math.nan,
                **{f"q{round(q * 100):02d}": v for q, v in zip(QUANTILES, qs, strict=True)},
                "n": len(x), "share_below_actual": float(np.mean(x < actual)) if len(x) else math.nan,
            }  # fmt: skip
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "metric"
        return out

    def figure(self) -> go.Figure:
        """A plotly figure: one histogram per metric, the actual value as a dashed line."""
        import plotly.graph_objects as go  # only for figures: the numbers need no plotly
        from plotly.subplots import make_subplots

        names = list(self.paths.columns)
        fig = make_subplots(rows=1, cols=len(names), subplot_titles=names)
        for i, name in enumerate(names, start=1):
            fig.add_trace(go.Histogram(x=self.paths[name], name=name, showlegend=False, nbinsx=50), row=1, col=i)
            actual = float(self.actual.get(name, math.nan))
            if math.isfinite(actual):
                fig.add_vline(x=actual, line_dash="dash", line_color="#d62728", row=1, col=i,
                              annotation_text=f"actual {actual:.3g}")  # fmt: skip
        fig.update_layout(title=f"{self.method}: {len(self.paths):,} paths", bargap=0.05)
        return fig


# -- checks -------------------------------------------------------------------------


def _named(where: str, check: Any, *args: Any) -> Any:
    """Run one of the strategy checks with the function's name in front of its message."""
    try:
        return check(*args)
    except ParameterError as exc:
        raise ParameterError(f"{where}: {exc}") from None


def _as_vector(where: str, name: str, values: Any, minimum: int) -> np.ndarray:
    arr = np.asarray(values.to_numpy() if isinstance(values, pd.Series) else values)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.complexfloating)):
        raise ParameterError(f"{where}: {name} must be a 1-D numeric series, got shape {arr.shape} of {arr.dtype}")
    arr = arr.astype("float64")
    if len(arr) < minimum:
        raise ParameterError(f"{where}: {name} needs at least {minimum} values, got {len(arr)}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if len(bad):
        raise ParameterError(f"{where}: {name} must be finite (no NaN or inf; drop pct_change's first row), "
                             f"got {name}[{bad[0]}]={arr[bad[0]]}")  # fmt: skip
    return arr


def _returns(returns: Any, ppy: float | None) -> tuple[np.ndarray, float]:
    """Returns and periods per year from a BacktestResult, a Series or an array."""
    if isinstance(returns, BacktestResult):
        ppy = float(returns.stats["periods_per_year"]) if ppy is None else ppy
        returns = returns.returns
    r = _as_vector("block_bootstrap", "returns", returns, MIN_RETURNS)
    low = np.flatnonzero(r < -1.0)
    if len(low):
        raise ParameterError(f"block_bootstrap: returns must be >= -1 (a simple return below -100 % is no wealth "
                             f"path), got returns[{low[0]}]={r[low[0]]}")  # fmt: skip
    if ppy is None:
        index = getattr(returns, "index", None)
        ppy = periods_per_year(index) if isinstance(index, pd.DatetimeIndex) else 252.0
    return r, _named("block_bootstrap", check_periods_per_year, ppy)


def _mean_block(where: str, r: np.ndarray, block: Any) -> tuple[float, float]:
    """The mean block length used, and arch's estimate (NaN when ``block`` is given).

    arch's Politis-White estimate can fall below 1 (no dependence) or be NaN (a
    constant series): a mean block shorter than one bar is the iid bootstrap, so it is
    floored at 1.
    """
    if block is None:
        from arch.bootstrap import optimal_block_length

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            estimate = float(optimal_block_length(r)["stationary"].iloc[0])
        return (max(1.0, estimate) if math.isfinite(estimate) else 1.0), estimate
    if isinstance(block, bool) or not isinstance(block, int | float | np.integer | np.floating) or not (
        math.isfinite(block) and 1 <= block <= len(r)
    ):
        raise ParameterError(f"{where}: block must be a mean block length in [1, {len(r)}] bars or None, got block={block!r}")
    return float(block), math.nan


# -- kernels (arrays in, arrays out) --------------------------------------------------


def _return_metrics(rets: np.ndarray, ppy: float) -> dict[str, np.ndarray]:
    """Per-row metrics of a (paths, bars) matrix of simple returns (module conventions)."""
    wealth = np.cumprod(1.0 + rets, axis=1)
    mean = rets.mean(axis=1)
    sd = rets.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(sd > 0, mean / sd * math.sqrt(ppy), np.nan)
    peak = np.maximum(np.maximum.accumulate(wealth, axis=1), 1.0)  # wealth 1 at the start is the first peak
    return {"final_wealth": wealth[:, -1], "sharpe": sharpe, "max_drawdown": (wealth / peak - 1.0).min(axis=1),
            "mean_return": mean}  # fmt: skip


def _trade_metrics(x: np.ndarray, start: float, compound: bool) -> dict[str, np.ndarray]:
    """Per-row metrics of a (paths, trades) matrix: P&Ls added to ``start``, or (compound)
    returns on equity multiplied into it.

    The final value is reduced over the sorted row so that it does not depend on the
    order of the trades (a permutation then keeps it bit for bit). A path whose equity
    reaches zero is ruined: its drawdown is floored at -1 (a total loss).
    """
    if compound:
        equity = start * np.cumprod(1.0 + x, axis=1)
        final = np.prod(np.sort(1.0 + x, axis=1), axis=1)
    else:
        equity = start + np.cumsum(x, axis=1)
        final = (start + np.sort(x, axis=1).sum(axis=1)) / start
    peak = np.maximum(np.maximum.accumulate(equity, axis=1), start)
    dd = np.maximum((equity / peak - 1.0).min(axis=1), -1.0)
    return {"final_wealth": final, "max_drawdown": dd, "ruined": (equity <= 0).any(axis=1)}


def _equity_returns(pnl: np.ndarray, start: float) -> np.ndarray:
    """Each trade's P&L as a return on the equity before it: ``start`` plus the P&Ls of
    the trades closed before (exact when trades do not overlap and equity moves only with
    them, as for a one-instrument signal strategy)."""
    before = start + np.concatenate([[0.0], np.cumsum(pnl)[:-1]])
    if (before <= 0).any():
        k = int(np.flatnonzero(before <= 0)[0])
        raise ParameterError(f"trade_resampling: compound=True needs positive equity before every trade, "
                             f"got equity {before[k]:.2f} before trade {k}")  # fmt: skip
    return pnl / before


def _chunks(n_paths: int, width: int) -> Iterator[int]:
    """Row counts of successive chunks of about :data:`CHUNK_CELLS` cells."""
    rows = max(1, CHUNK_CELLS // max(width, 1))
    for start in range(0, n_paths, rows):
        yield min(rows, n_paths - start)


def _stack(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


# -- the resamplers -------------------------------------------------------------------


def _prepare_bootstrap(shared: tuple[np.ndarray, float, float]) -> Any:
    """A worker's bootstrap task: ``(rows, seed)`` → the metrics of that many paths."""
    r, mean_block, ppy = shared
    # arch (1.7 s to import) loads on first use, not with `import workbench`
    from arch.bootstrap import StationaryBootstrap

    def paths(task: tuple[int, np.random.SeedSequence]) -> dict[str, np.ndarray]:
        rows, seed = task
        draws = StationaryBootstrap(mean_block, r, seed=np.random.default_rng(seed)).bootstrap(rows)
        chunk = np.empty((rows, len(r)))
        for i in range(rows):
            (path,), _ = next(draws)
            chunk[i] = path
        return _return_metrics(chunk, ppy)

    return paths


def block_bootstrap(
    returns: pd.Series | np.ndarray | BacktestResult,
    n_paths: int = 1000,
    block: float | None = None,
    seed: int = 0,
    *,
    periods_per_year: float | None = None,
    workers: int = 1,
    cluster: Any = None,
) -> RobustnessReport:
    """Stationary block bootstrap of a returns series (Politis & Romano 1994).

    Each path has as many bars as ``returns``, drawn by ``arch.bootstrap.StationaryBootstrap``
    in blocks of geometric length with mean ``block`` (wrapping round the end). The
    default ``block`` is arch's ``optimal_block_length`` (Politis & White 2004, with the
    2009 correction), column ``stationary``, floored at 1. ``block=1`` is the iid
    bootstrap.

    Parameters
    ----------
    returns : Series, array or BacktestResult
        Per-bar simple returns (finite, >= -1, at least :data:`MIN_RETURNS`); a result's
        ``returns``.
    n_paths : int
        Number of resampled paths (>= 1).
    block : float, optional
        Mean block length in bars, in [1, len(returns)].
    seed : int
        Seeds the paths: chunk ``i`` of paths draws from its own generator, the
        ``i``-th child of ``SeedSequence(seed)``, so the paths are the same wherever
        the chunks run.
    periods_per_year : float, optional
        Annualisation of the Sharpe ratio; default from the bar spacing of a
        DatetimeIndex (a result's own), else 252.
    workers, cluster : optional
        Run the chunks in local processes or on Dask (a ``distributed.Client`` or a
        scheduler address): identical paths, gathered in chunk order.

    Returns
    -------
    RobustnessReport
        ``paths`` columns ``final_wealth``, ``sharpe``, ``max_drawdown``, ``mean_return``;
        ``info`` has ``block`` (used), ``block_estimate`` (arch's, NaN if given) and
        ``periods_per_year``.

    >>> import numpy as np
    >>> r = np.random.default_rng(1).normal(0.0005, 0.01, 500)
    >>> rep = block_bootstrap(r, n_paths=200, block=5, seed=0)
    >>> rep.paths.shape, bool((rep.paths["max_drawdown"] <= 0).all())
    ((200, 4), True)
    """
    r, ppy = _returns(returns, periods_per_year)
    n_paths = _named("block_bootstrap", check_int, "n_paths", n_paths, 1)
    seed = _named("block_bootstrap", check_seed, "seed", seed)
    mean_block, estimate = _mean_block("block_bootstrap", r, block)
    chunks = list(_chunks(n_paths, len(r)))
    tasks = zip(chunks, task_seeds(seed, len(chunks)), strict=True)
    runner = resolve_runner(workers, cluster)
    try:
        parts = list(runner.map(_prepare_bootstrap, (r, mean_block, ppy), tasks))
    finally:
        if runner is not cluster:
            getattr(runner, "close", lambda: None)()
    actual = {k: float(v[0]) for k, v in _return_metrics(r[None, :], ppy).items()}
    info = {"seed": seed, "n_paths": n_paths, "bars": len(r), "block": mean_block, "block_estimate": estimate,
            "periods_per_year": ppy}  # fmt: skip
    return RobustnessReport(method="stationary block bootstrap", paths=pd.DataFrame(_stack(parts)),
                            actual=pd.Series(actual, name="actual"), info=info)  # fmt: skip


def _trade_pnl(trades: Any, start_equity: float | None) -> tuple[np.ndarray, float]:
    where = "trade_resampling"
    if isinstance(trades, BacktestResult):
        start_equity = trades.spec.cash if start_equity is None else start_equity
        trades = trades.trades
    if isinstance(trades, pd.DataFrame):
        if "pnl" not in trades:
            raise ParameterError(f"{where}: a trades table needs a 'pnl' column, got columns {list(trades.columns)}")
        trades = trades["pnl"]
    pnl = _as_vector(where, "trades", trades, 2)
    if start_equity is None:
        raise ParameterError(f"{where}: start_equity is needed for bare P&Ls (a BacktestResult brings its cash)")
    if isinstance(start_equity, bool) or not isinstance(start_equity, int | float | np.integer | np.floating) or not (
        math.isfinite(start_equity) and start_equity > 0
    ):
        raise ParameterError(f"{where}: start_equity must be a finite number > 0, got start_equity={start_equity!r}")
    return pnl, float(start_equity)


def trade_resampling(
    trades: pd.Series | np.ndarray | pd.DataFrame | BacktestResult,
    n_paths: int = 1000,
    seed: int = 0,
    start_equity: float | None = None,
    *,
    method: TradeResampling | str = TradeResampling.BOOTSTRAP,
    compound: bool = False,
) -> RobustnessReport:
    """Resample the sequence of closed-trade P&Ls: final wealth and max drawdown per path.

    ``method="bootstrap"`` draws as many trades as there are, with replacement (the set
    of trades changes, so does the final P&L); ``method="permutation"`` shuffles them
    without replacement (the final P&L is the same on every path, only the order and so
    the drawdown changes).

    Two units, choose the one the sizing had: by default P&Ls are added to
    ``start_equity`` in currency, each trade earning what it earned whatever the equity
    before it (the null of a fixed size). ``compound=True`` turns each P&L into a return on
    the equity before it (``start_equity`` plus the earlier trades' P&Ls) and multiplies
    the resampled returns: the null of a sizer that invests a share of equity, such as
    ``wb.backtest``'s default ``size="all"`` (adding its late, large P&Ls to the starting
    cash would overstate both gains and ruin). Drawdowns are measured at trade closes, so
    they are at most as deep as the bar-by-bar drawdown of the backtest, and the final
    wealth omits a position still open at the end.

    Parameters
    ----------
    trades : Series, array, trades table or BacktestResult
        Closed-trade P&Ls in currency (a table's or a result's ``pnl`` column), >= 2.
    n_paths : int
        Number of paths (>= 1).
    seed : int
        Seed of the ``numpy.random.Generator``.
    start_equity : float, optional
        Equity before the first trade; a result's ``spec.cash`` by default.
    method : TradeResampling or str
        ``"bootstrap"`` or ``"permutation"``.
    compound : bool
        Resample returns on equity (True) rather than currency P&Ls (False).

    Returns
    -------
    RobustnessReport
        ``paths`` columns ``final_wealth``, ``max_drawdown``; ``info["ruin_share"]`` is the
        share of paths whose equity reached zero on the way (their drawdown is -1).

    >>> rep = trade_resampling([120.0, -80.0, 40.0, -30.0], n_paths=100, start_equity=1000,
    ...                        method="permutation")
    >>> float(rep.paths["final_wealth"].min()) == float(rep.paths["final_wealth"].max()) == 1.05
    True
    """
    pnl, start = _trade_pnl(trades, start_equity)
    n_paths = _named("trade_resampling", check_int, "n_paths", n_paths, 1)
    seed = _named("trade_resampling", check_seed, "seed", seed)
    try:
        how = TradeResampling(method.value if isinstance(method, TradeResampling) else str(method).strip().lower())
    except ValueError:
        raise ParameterError(f"trade_resampling: method must be 'bootstrap' or 'permutation', got method={method!r}") from None
    if not isinstance(compound, bool):
        raise ParameterError(f"trade_resampling: compound must be True or False, got compound={compound!r}")
    x = _equity_returns(pnl, start) if compound else pnl
    gen, m, parts = np.random.default_rng(seed), len(pnl), []
    for rows in _chunks(n_paths, m):
        if how is TradeResampling.BOOTSTRAP:
            idx = gen.integers(0, m, size=(rows, m))
        else:
            idx = gen.permuted(np.tile(np.arange(m), (rows, 1)), axis=1)
        parts.append(_trade_metrics(x[idx], start, compound))
    out = _stack(parts)
    ruined = out.pop("ruined")
    actual = _trade_metrics(x[None, :], start, compound)
    actual.pop("ruined")
    info = {"seed": seed, "n_paths": n_paths, "trades": m, "start_equity": start, "resampling": how.value, "compound": compound,
            "ruin_share": float(ruined.mean())}  # fmt: skip
    return RobustnessReport(method=f"trade {how.value}", paths=pd.DataFrame(out),
                            actual=pd.Series({k: float(v[0]) for k, v in actual.items()}, name="actual"), info=info)  # fmt: skip


JITTER_METRICS = ("sharpe", "total_return", "max_drawdown")


def _numeric(params: dict[str, Any], names: Any) -> list[str]:
    """The parameters to jitter: every int or float one (never a bool), or those named."""
    numeric = [k for k, v in params.items() if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)]
    if names is None:
        chosen = numeric
    else:
        chosen = [names] if isinstance(names, str) else list(names)
        wrong = [k for k in chosen if k not in numeric]
        if wrong:
            raise ParameterError(f"parameter_jitter: names must be numeric parameters of the strategy {numeric}, "
                                 f"got {wrong[0]!r}")  # fmt: skip
    if not chosen:
        raise ParameterError(f"parameter_jitter: the strategy has no numeric parameter to jitter, got params={params}")
    return chosen


def _jittered(params: dict[str, Any], names: list[str], u: np.ndarray) -> dict[str, Any]:
    """``value * (1 + u)`` per name; integers rounded half to even (numpy's rint)."""
    out = {}
    for name, move in zip(names, u, strict=True):
        value = params[name]
        moved = float(value) * (1.0 + float(move))
        out[name] = int(np.rint(moved)) if isinstance(value, int | np.integer) else moved
    return out


def _jitter_run(base: BacktestSpec, draw: dict[str, Any], frame: pd.DataFrame) -> list[float] | str:
    """The metrics of ``base`` with ``draw``'s parameters, or the strategy's reason to
    reject them (its own validation, through make_spec)."""
    try:
        spec = make_spec(base, draw)
    except ParameterError as exc:
        return str(exc)
    stats = run(spec, frame).stats
    return [float(stats[k]) for k in JITTER_METRICS]


def parameter_jitter(
    strategy: str | type[Strategy] | Strategy | BacktestSpec,
    prices: pd.DataFrame | str | list[str],
    params: dict[str, Any] | None = None,
    *,
    relative: float = 0.1,
    n: int = 50,
    seed: int = 0,
    names: str | list[str] | None = None,
    **execution: Any,
) -> RobustnessReport:
    """Rerun the backtest with its numeric parameters jittered: Sharpe, total return and
    max drawdown over the runs, the unjittered run as ``actual``.

    Each of ``n`` draws multiplies every parameter in ``names`` (default: every int or
    float one, bools never) by ``1 + u``, ``u ~ Uniform(-relative, relative)`` drawn
    independently per parameter; integers are rounded half to even. A draw the strategy's
    own validation rejects (e.g. ``fast >= slow``) is skipped and counted; identical draws
    reuse one run (a backtest is deterministic). A parameter at 0 stays at 0.

    ``execution`` holds the spec's fields as for ``wb.backtest`` (engine, cash,
    commission...). ``info`` has ``skipped`` (rejected draws), ``runs`` (distinct
    backtests) and ``trials``: every draw's parameters with ``rejected`` (the reason, or
    ``""``); ``paths`` holds the accepted draws in draw order. ``profit_share`` is the
    share of accepted runs with a total return above zero.

    >>> import workbench as wb
    >>> rep = parameter_jitter("sma_crossover", "GOOG", {"fast": 10, "slow": 30}, n=4)
    >>> list(rep.paths.columns), rep.info["skipped"]
    (['sharpe', 'total_return', 'max_drawdown'], 0)
    """
    if isinstance(relative, bool) or not isinstance(relative, int | float | np.integer | np.floating) or not (
        math.isfinite(relative) and 0 < relative <= 1
    ):
        raise ParameterError(f"parameter_jitter: relative must be in (0, 1], got relative={relative!r}")
    n = _named("parameter_jitter", check_int, "n", n, 1)
    seed = _named("parameter_jitter", check_seed, "seed", seed)
    base = make_spec(strategy, params, **execution)
    frame, _ = prepare_prices(base.strategy, prices)
    chosen = _numeric(base.strategy.params, names)
    moves = np.random.default_rng(seed).uniform(-relative, relative, size=(n, len(chosen)))
    done: dict[tuple, list[float] | str] = {}  # a draw's metrics, or why it was rejected
    rows, trials = [], []
    for u in moves:
        draw = _jittered(base.strategy.params, chosen, u)
        key = tuple(draw.values())
        if key not in done:
            done[key] = _jitter_run(base, draw, frame)
        outcome = done[key]
        trials.append({**draw, "rejected": outcome if isinstance(outcome, str) else ""})
        if not isinstance(outcome, str):
            rows.append(outcome)
    skipped = len(trials) - len(rows)
    if not rows:
        raise ParameterError(f"parameter_jitter: every one of the {n} jittered draws was rejected, "
                             f"e.g. {trials[0]['rejected']}")  # fmt: skip
    actual_stats = run(base, frame).stats
    info = {"seed": seed, "n": n, "relative": float(relative), "jittered": chosen, "skipped": skipped,
            "runs": sum(not isinstance(v, str) for v in done.values()), "base_params": base.strategy.params, "trials": pd.DataFrame(trials)}  # fmt: skip
    return RobustnessReport(method=f"parameter jitter (±{relative:.0%})", paths=pd.DataFrame(rows, columns=list(JITTER_METRICS)),
                            actual=pd.Series({k: float(actual_stats[k]) for k in JITTER_METRICS}, name="actual"),
                            info=info)  # fmt: skip
