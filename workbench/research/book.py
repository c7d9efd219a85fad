"""Several strategies in one account: sleeves, capital allocation, periodic rebalancing.

A :class:`MultiStrategy` is itself a portfolio strategy (``weights(panel)``), so both
engines run it unchanged and :func:`workbench.compare_engines` cross-checks them. Its rules:

- **Sleeves.** Each :class:`Sleeve` is a strategy on its own symbols: a signal strategy on
  one symbol (target -1/0/+1 is a weight of -1/0/+1 of the sleeve's capital) or a portfolio
  strategy on several (its weights; a NaN row holds its last weights). Before a sleeve's
  first decision it holds nothing.
- **Sleeve returns** (what the allocator sees, and the "paper" track of each sleeve):
  ``r_k,t = Σ_s W_k,s,t-1 · (C_s,t / C_s,t-1 - 1)``, the weights decided at close t-1
  earning close t-1 → close t, rebalanced to constant weights each bar, before costs.
- **Allocation.** On each rebalance bar (every ``rebalance`` bars, or the first bar of each
  calendar period for an offset alias such as ``"MS"``/``"QS"``/``"W-MON"``), the
  allocator (:func:`workbench.research.allocation.allocate`) turns the last ``lookback``
  bars of sleeve returns (up to and including that bar's close) into capital weights
  ``c_k`` (long-only, summing to 1). A sleeve with zero variance over the window (flat all
  along) gets 0 (or ``min_weight``) from the risk-based allocators and the others share its
  capital within the bounds (what ``max_weight`` caps leave over stays in cash); if all are
  flat, capital is split equally. Maximum Sharpe on a window where no moving sleeve's mean
  return beats the risk-free rate has no tangency portfolio: the book holds cash until the
  next rebalance. No allocation before ``lookback`` bars: the book is flat.
  The risk estimates are of the sleeve's returns as they are, flat bars included: a sleeve
  out of the market most of the window looks calm and the risk-based methods give it more
  capital (inverse volatility gave a sleeve active on 27 of 126 bars 0.69 of the book).
- **Book weights** ``B_t = Σ_k c_k · W_k,t`` (sleeves on the same symbol net out: one
  account, one position per symbol); gross ``Σ|B| ≤ Σ c_k·gross_k ≤ 1``. A row is emitted
  on every rebalance bar (back to target weights: this is the periodic rebalancing) and on
  every bar where a sleeve changes its weights; other rows are NaN, so positions drift.

:func:`attribution` splits a backtest of the book into sleeves: P&L, costs, turnover and
component VaR (see its notes for the conventions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.strategy.base import PortfolioStrategy, Strategy, check_float, check_int, panel_field
from workbench.strategy.targets import check_target, check_weights

__all__ = ["Sleeve", "MultiStrategy", "AssetAllocation", "BookPlan", "rebalance_rows"]

CLOSED_FORMS = ("equal_weight", "inverse_volatility")  # computed here, no solver library


@dataclass(frozen=True, kw_only=True)
class Sleeve:
    """One strategy of a book and the panel symbols it trades (one for a signal strategy)."""

    name: str
    strategy: Strategy
    symbols: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ParameterError(f"a sleeve needs a name, got name={self.name!r}")
        if not isinstance(self.strategy, Strategy) or self.strategy.kind not in ("signal", "weights"):
            raise ParameterError(f"sleeve {self.name!r}: strategy must be a signal or portfolio Strategy, "
                                 f"got {self.strategy!r}")  # fmt: skip
        symbols = (self.symbols,) if isinstance(self.symbols, str) else tuple(self.symbols)
        if not symbols or not all(isinstance(s, str) for s in symbols) or len(set(symbols)) != len(symbols):
            raise ParameterError(f"sleeve {self.name!r}: symbols must be distinct names, got {self.symbols!r}")
        if self.strategy.kind == "signal" and len(symbols) != 1:
            raise ParameterError(f"sleeve {self.name!r}: a signal strategy trades one symbol, got {symbols!r}")
        object.__setattr__(self, "symbols", symbols)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.strategy.params.items())
        return f"Sleeve({self.name}: {self.strategy.name}({params}) on {', '.join(self.symbols)})"

    def weights(self, panel: pd.DataFrame) -> pd.DataFrame:
        """The sleeve's own target weights on its symbols, every bar (holds filled forward)."""
        try:
            if self.strategy.kind == "signal":
                (sym,) = self.symbols
                bars = panel[sym].copy()
                bars.attrs["symbol"] = sym
                target = check_target(self.strategy.target(bars), bars.index)
                w = pd.DataFrame({sym: target}, index=bars.index)
            else:
                sub = panel.loc[:, list(self.symbols)]
                w = self.strategy.weights(sub)
                w = pd.DataFrame(check_weights(w, sub.index, list(self.symbols)), index=sub.index,
                                 columns=list(self.symbols))  # fmt: skip
        except ParameterError as e:
            raise ParameterError(f"sleeve {self.name!r}: {e}") from None
        return w.ffill().fillna(0.0)


def _check_sleeves(sleeves: Any) -> tuple[Sleeve, ...]:
    if isinstance(sleeves, Sleeve) or not isinstance(sleeves, tuple | list) or not sleeves:
        raise ParameterError(f"sleeves must be a non-empty tuple of Sleeve, got sleeves={sleeves!r}")
    bad = [s for s in sleeves if not isinstance(s, Sleeve)]
    if bad:
        raise ParameterError(f"sleeves must be Sleeve objects, got {bad[0]!r}")
    names = [s.name for s in sleeves]
    if len(set(names)) != len(names):
        raise ParameterError(f"sleeve names must be distinct, got {names}")
    return tuple(sleeves)


def _check_schedule(rebalance: Any, lookback: Any, method: Any) -> None:
    from workbench.research.allocation import ALLOCATORS

    if method not in ALLOCATORS:
        raise ParameterError(f"allocation must be one of {ALLOCATORS}, got allocation={method!r}")
    check_int("lookback", lookback, 2)
    if isinstance(rebalance, str):
        try:
            offset = pd.tseries.frequencies.to_offset(rebalance)
        except ValueError:
            offset = None
        if offset is None or offset.n < 1:
            raise ParameterError(f"rebalance must be a number of bars or a positive pandas offset alias such as "
                                 f"'MS', 'QS' or 'W-MON', got rebalance={rebalance!r}")  # fmt: skip
    else:
        check_int("rebalance", rebalance, 1)


def rebalance_rows(index: pd.DatetimeIndex, rebalance: int | str, start: int) -> np.ndarray:
    """Bar positions of the rebalances from bar ``start`` on: every ``rebalance`` bars, or
    the first bar of each calendar period (known at that bar: no look at the next date).
    A weekly alias names the week's first day: ``"W-MON"`` rebalances on the first bar of
    each week starting Monday (pandas alone would read it as weeks ending Monday)."""
    if isinstance(rebalance, str):
        pos = pd.Series(np.arange(len(index)), index=index)
        weekly = isinstance(pd.tseries.frequencies.to_offset(rebalance), pd.offsets.Week)
        # pandas' "W-MON" is weeks *ending* on Monday; here it means weeks starting on it
        bins = pos.resample(rebalance, closed="left", label="left") if weekly else pos.resample(rebalance)
        firsts = bins.first().dropna().to_numpy(dtype="int64")
        return np.unique(np.r_[start, firsts[firsts > start]]) if start < len(index) else firsts[:0]
    return np.arange(start, len(index), int(rebalance))


@dataclass
class BookPlan:
    """What a book decided, sleeve by sleeve (for attribution and for reading)."""

    sleeve_weights: dict[str, pd.DataFrame]  # each sleeve's own weights, every bar, its symbols
    sleeve_returns: pd.DataFrame  # bars × sleeves, paper returns before costs (module notes)
    allocations: pd.DataFrame  # rebalance bars × sleeves: the capital weights c_k
    capital: pd.DataFrame  # bars × sleeves: the capital weight in force at each bar
    contributions: dict[str, pd.DataFrame] = field(default_factory=dict)  # c_k·W_k per sleeve, panel symbols
    weights: pd.DataFrame = field(default_factory=pd.DataFrame)  # the emitted book rows (NaN = hold)

    def capital_figure(self, title: str | None = None) -> Any:
        """The capital weight of each sleeve over time, stacked (plotly); the gap to 100 % is cash."""
        import plotly.graph_objects as go

        fig = go.Figure([go.Scatter(x=self.capital.index, y=self.capital[c], name=c, stackgroup="capital")
                         for c in self.capital.columns])  # fmt: skip
        fig.update_layout(title=title or "Capital by sleeve", yaxis_tickformat=".0%", hovermode="x unified")
        return fig


def _allocate_window(window: pd.DataFrame, method: str, options: dict[str, Any]) -> pd.Series:
    """Capital weights for one window (module notes): flat sleeves get ``min_weight`` (0 by
    default) from the risk-based methods, the moving ones share the rest within the bounds;
    what a ``max_weight`` cap leaves over stays in cash."""
    from workbench.research.allocation import allocate

    lo, hi = options.get("min_weight", 0.0), options.get("max_weight", 1.0)
    moving = np.ptp(window.to_numpy(), axis=0) > 0
    if not moving.any() or method == "equal_weight":  # nothing to estimate: split equally
        return pd.Series(min(1.0 / window.shape[1], hi), index=window.columns, name=method)
    live = window.columns[moving]
    out = pd.Series(lo, index=window.columns, name=method)
    rest = 1.0 - lo * (len(window.columns) - len(live))
    if method == "max_sharpe" and (window[live].mean() <= options.get("risk_free_rate", 0.0)).all():
        out[live] = 0.0  # no tangency portfolio exists: cash until the next rebalance
        return out
    if len(live) * hi <= rest + 1e-12:  # the cap binds on every moving sleeve
        out[live] = hi
    elif len(live) == 1:
        out[live] = rest
    else:
        scaled = {**options, "min_weight": lo / rest, "max_weight": min(1.0, hi / rest)}
        out[live] = rest * allocate(window[live], method, **scaled).to_numpy()
    return out


def _check_options(options: Any, method: str, n: int | None) -> tuple[tuple[str, Any], ...]:
    """The allocator options as sorted pairs, each value checked (a dict is accepted)."""
    opts = dict(options.items() if isinstance(options, dict) else options)
    unknown = sorted(set(opts) - {"risk_free_rate", "min_weight", "max_weight"})
    if unknown:
        raise ParameterError(f"options must be among risk_free_rate, min_weight, max_weight; got {unknown}")
    check_float("risk_free_rate", opts.get("risk_free_rate", 0.0), -1.0, 1.0)
    lo = check_float("min_weight", opts.get("min_weight", 0.0), 0.0, 1.0)
    hi = check_float("max_weight", opts.get("max_weight", 1.0), 0.0, 1.0)
    if lo > hi:
        raise ParameterError(f"min_weight must be <= max_weight, got min_weight={lo}, max_weight={hi}")
    if n is not None and n * lo > 1 + 1e-12:
        raise ParameterError(f"min_weight * sleeves must be <= 1, got min_weight={lo} with {n} sleeves")
    if method == "inverse_volatility" and (lo, hi) != (0.0, 1.0):
        raise ParameterError("inverse_volatility is a closed form without bounds: drop min_weight/max_weight "
                             "or use equal_risk_contribution")  # fmt: skip
    return tuple(sorted(opts.items()))


def plan_book(sleeves: tuple[Sleeve, ...], panel: pd.DataFrame, method: str, rebalance: int | str, lookback: int,
              options: dict[str, Any]) -> BookPlan:  # fmt: skip
    """Every sleeve's weights, their returns, the allocations and the book rows."""
    close = panel_field(panel, "Close")
    symbols = list(close.columns)
    missing = sorted({s for sl in sleeves for s in sl.symbols} - set(symbols))
    if missing:
        raise ParameterError(f"the panel lacks the sleeves' symbols {missing}; it has {symbols}")
    asset = close.pct_change().fillna(0.0)
    own = {sl.name: sl.weights(panel) for sl in sleeves}
    rets = pd.DataFrame({name: (w.shift(1).fillna(0.0) * asset[w.columns]).sum(axis=1) for name, w in own.items()},
                        index=close.index)  # fmt: skip
    rows = rebalance_rows(close.index, rebalance, lookback)
    allocations = pd.DataFrame(
        [_allocate_window(rets.iloc[i - lookback + 1 : i + 1], method, options) for i in rows],
        index=close.index[rows], columns=rets.columns,
    ) if len(rows) else pd.DataFrame(columns=rets.columns, dtype="float64")  # fmt: skip
    capital = allocations.reindex(close.index).ffill().fillna(0.0)
    contributions = {
        name: (w.reindex(columns=symbols, fill_value=0.0).mul(capital[name], axis=0)) for name, w in own.items()
    }
    book = sum(contributions.values())
    changed = np.r_[True, (book.diff().abs().to_numpy()[1:] > 1e-12).any(axis=1)]
    emit = changed.copy()
    emit[rows] = True
    emit[: rows[0] if len(rows) else len(emit)] = False  # flat until the first allocation
    if len(rows):
        emit[rows[0]] = True
    weights = book.where(pd.Series(emit, index=book.index), np.nan)
    return BookPlan(own, rets, allocations, capital, contributions, weights)


@dataclass(frozen=True, kw_only=True)
class MultiStrategy(PortfolioStrategy):
    """Several strategies in one account, capital allocated across them (module notes).

    ``allocation`` is one of :data:`workbench.research.allocation.ALLOCATORS` (equal
    weight, inverse volatility, equal risk contribution, minimum variance, maximum Sharpe,
    hierarchical risk parity), re-estimated on the last ``lookback`` bars of sleeve
    returns every ``rebalance`` bars (or calendar period).

    >>> import workbench as wb
    >>> book = wb.MultiStrategy(sleeves=(
    ...     wb.Sleeve(name="trend", strategy=wb.strategies.SMACrossover(fast=20, slow=100), symbols=("SPX",)),
    ...     wb.Sleeve(name="rotation", strategy=wb.strategies.CrossSectionalMomentum(top_k=1),
    ...               symbols=("GOOG", "IXIC"))), allocation="inverse_volatility", rebalance="MS")
    >>> r = wb.backtest(book, ["GOOG", "SPX", "IXIC"], store=None)
    >>> r.stats["n_trades"] > 0
    True
    """

    sleeves: tuple[Sleeve, ...]
    allocation: str = "equal_weight"
    rebalance: int | str = 21
    lookback: int = 126
    options: tuple[tuple[str, Any], ...] = ()  # passed to allocate: risk_free_rate, min_weight, max_weight

    def validate(self) -> None:
        object.__setattr__(self, "sleeves", _check_sleeves(self.sleeves))
        _check_schedule(self.rebalance, self.lookback, self.allocation)
        object.__setattr__(self, "options", _check_options(self.options, self.allocation, len(self.sleeves)))

    @property
    def warmup(self) -> int:
        return max(self.lookback, *(s.strategy.warmup for s in self.sleeves))

    @property
    def libraries(self) -> tuple[str, ...]:
        own = () if self.allocation in CLOSED_FORMS else ("skfolio",)
        return tuple(dict.fromkeys((*own, *(lib for s in self.sleeves for lib in s.strategy.libraries))))

    def plan(self, panel: pd.DataFrame) -> BookPlan:
        """The sleeves' weights and returns, the allocations and the book's rows."""
        return plan_book(self.sleeves, panel, self.allocation, self.rebalance, self.lookback, dict(self.options))

    def weights(self, panel: pd.DataFrame) -> pd.DataFrame:
        return self.plan(panel).weights


@dataclass(frozen=True, kw_only=True)
class AssetAllocation(PortfolioStrategy):
    """Allocate across the panel's assets themselves, rebalanced periodically.

    Each asset is a long sleeve of weight 1, so this is a :class:`MultiStrategy` whose
    sleeve returns are the assets' close-to-close returns: the same schedule, allocator and
    flat-window rule.
    """

    allocation: str = "equal_weight"
    rebalance: int | str = 21
    lookback: int = 126
    options: tuple[tuple[str, Any], ...] = ()

    def validate(self) -> None:
        _check_schedule(self.rebalance, self.lookback, self.allocation)
        object.__setattr__(self, "options", _check_options(self.options, self.allocation, None))

    @property
    def warmup(self) -> int:
        return self.lookback

    @property
    def libraries(self) -> tuple[str, ...]:
        return () if self.allocation in CLOSED_FORMS else ("skfolio",)

    def plan(self, panel: pd.DataFrame) -> BookPlan:
        symbols = list(panel_field(panel, "Close").columns)
        sleeves = tuple(Sleeve(name=s, strategy=_Hold(), symbols=(s,)) for s in symbols)
        return plan_book(sleeves, panel, self.allocation, self.rebalance, self.lookback, dict(self.options))

    def weights(self, panel: pd.DataFrame) -> pd.DataFrame:
        return self.plan(panel).weights


@dataclass(frozen=True, kw_only=True)
class _Hold(Strategy):
    """Long, always (an asset as a sleeve)."""

    def target(self, prices: pd.DataFrame) -> pd.Series:
        return pd.Series(1.0, index=prices.index, name="target")

