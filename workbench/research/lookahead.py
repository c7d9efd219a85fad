"""The look-ahead guard: does a decision at bar t depend on anything after t?

:func:`check_lookahead` reruns the strategy on data cut, mirrored or replaced after
times t (inside its declared warm-up too) and checks that its decisions (and the
backtest's equity) up to t do not move, and that on stand-in futures its decisions do
not predict the real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.api import check_keywords, make_spec, prepare_prices, run
from workbench.errors import DataError, LookAheadError, ParameterError
from workbench.strategy.base import BarStrategy, Strategy, check_int, check_seed, panel_field
from workbench.strategy.spec import BacktestSpec

__all__ = ["check_lookahead"]

MIRROR_BARS = 5  # bars reflected after a mirror cut: a peek this far ahead sees the opposite move
BLIND_Z = 6.0  # blind score above which the decisions are taken to know the real future
BLIND_MIN = 50  # fewest decisions after the blind split the score is computed on
BLIND_LAGS = 200  # circular shifts of the real moves that make the score's null distribution
LATE_BARS = 1  # the late replay: the real future arriving this many bars late
STAND_IN = {
    "blind": "replaced by a seeded bootstrap of the data's own bars",
    "late": f"the real ones replayed {LATE_BARS} bar(s) late",
}
HOW = {
    "cut": "the data was cut after {ts}",
    "mirror": "the {k} bars after {ts} were mirrored (every move reversed, volume doubled) and the rest cut",
    "blind": "the bars after {ts} were " + STAND_IN["blind"],
    "late": "the bars after {ts} were " + STAND_IN["late"],
}


@dataclass(frozen=True, kw_only=True)
class _Recorded(BarStrategy):
    """A bar strategy whose ``on_bar`` requests are logged: a bar strategy's decisions exist
    only inside the backtest, and the log shows the one made at the last bar too (its order
    would only be placed at the next open, which a cut run never reaches)."""

    inner: BarStrategy
    log: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def params(self) -> dict[str, Any]:  # the spec names the strategy checked, not the log
        return self.inner.params

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def init(self, prices: pd.DataFrame) -> Any:
        return self.inner.init(prices)

    def on_bar(self, ctx: Any) -> None:
        placed, working = len(ctx.orders), len(ctx.open_orders)
        self.inner.on_bar(ctx)
        new = [(o.side.name, o.order_type.name, o.time_in_force.name, o.quantity, o.limit_price,
                o.stop_price, o.tag) for o in ctx.orders[placed:]]  # fmt: skip
        pending, now = ctx.pending, len(ctx.open_orders)
        if pending is not None or new or now != working:
            self.log.append((ctx.i, pending, new, now))


@dataclass
class _Run:
    """What a strategy decided on one version of the data (what its kind shows)."""

    decisions: pd.DataFrame | None = None  # targets or weights held after each close
    log: list[tuple[Any, ...]] | None = None  # bar strategies: the on_bar requests
    positions: np.ndarray | None = None  # bar strategies: quantity held at each close
    equity: np.ndarray | None = None


def _decisions(strat: Strategy, prices: pd.DataFrame) -> pd.DataFrame:
    """One column per traded symbol: the target, or the weight held (NaN = hold carried)."""
    if strat.kind == "weights":
        return strat.weights(prices).reindex(prices.index).ffill().fillna(0.0)
    return strat.target(prices).reindex(prices.index).to_frame()


def _run(spec: BacktestSpec, frame: pd.DataFrame, backtested: bool) -> _Run:
    """Decide on ``frame``; backtest it when asked (always for a bar strategy: its only output)."""
    strat = spec.strategy
    if strat.kind != "bar":
        dec = _decisions(strat, frame)
        eq = run(spec, frame).equity.to_numpy() if backtested else None
        return _Run(decisions=dec, equity=eq)
    rec = _Recorded(inner=strat)  # type: ignore[arg-type]
    res = run(spec.replace(strategy=rec), frame)
    pos = res.positions.to_numpy().reshape(len(frame), -1)
    return _Run(log=rec.log, positions=pos, equity=res.equity.to_numpy())


def _first_row_diff(a: np.ndarray, b: np.ndarray) -> int | None:
    """First row where two decision arrays differ (a ulp of float noise is no decision)."""
    if a.shape != b.shape:
        return 0
    same = np.isclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True).all(axis=1)
    return None if same.all() else int(np.argmin(same))


def _first_log_diff(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]], t: int) -> int | None:
    """The bar of the first on_bar request up to ``t`` that differs between two logs."""
    a, b = [e for e in a if e[0] <= t], [e for e in b if e[0] <= t]
    for x, y in zip(a, b, strict=False):
        if x != y:
            return int(min(x[0], y[0]))
    return None if len(a) == len(b) else int((a if len(a) > len(b) else b)[min(len(a), len(b))][0])


def _first_change(ref: _Run, run: _Run, t: int, cut: bool) -> tuple[str, int] | None:
    """(what, bar) of the first difference up to bar ``t``. A cut run's equity at ``t`` is not
    compared: an order decided at the cut would only fill at the next open."""
    if run.decisions is not None and ref.decisions is not None:
        i = _first_row_diff(ref.decisions.to_numpy()[: t + 1], run.decisions.to_numpy()[: t + 1])
        if i is not None:
            return "decision", i
    if run.log is not None and ref.log is not None:
        j = _first_log_diff(ref.log, run.log, t)
        if j is not None:
            return "decision", j
    if run.equity is not None and ref.equity is not None:
        upto = t if cut else t + 1
        a, b = ref.equity[:upto], run.equity[:upto]
        if not np.array_equal(a, b):
            return "backtest equity", int(np.argmax(a != b))
    return None


def _bar_columns(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """(Open, High, Low, Close, Volume) column keys per symbol of a frame or a panel."""
    names = ("Open", "High", "Low", "Close", "Volume")
    if isinstance(frame.columns, pd.MultiIndex):
        return [tuple((s, f) for f in names) for s in dict.fromkeys(frame.columns.get_level_values(0))]
    return [names]


def _replace_after(frame: pd.DataFrame, t: int, new: dict[Any, np.ndarray]) -> None:
    """Overwrite the bars after ``t`` column by column (bars up to t stay untouched)."""
    for col, values in new.items():
        frame.iloc[t + 1 :, frame.columns.get_loc(col)] = values


def _mirror(prices: pd.DataFrame, t: int, k: int = MIRROR_BARS) -> pd.DataFrame:
    """Bars t+1..t+k reflected around bar t's close in log space (x -> C_t^2 / x: every
    move after t reversed, High and Low swapped, so the bars stay valid), volume doubled;
    later bars dropped. A peek up to k bars ahead sees the opposite move; one further
    ahead finds no bar, as in a cut."""
    out = prices.iloc[: t + 1 + k].copy()
    for o, h, lo, c, v in _bar_columns(out):
        pivot = float(out[c].iat[t]) ** 2
        seg = {x: out[x].to_numpy()[t + 1 :] for x in (o, h, lo, c, v)}
        _replace_after(out, t, {o: pivot / seg[o], h: pivot / seg[lo], lo: pivot / seg[h],
                                c: pivot / seg[c], v: seg[v] * 2.0})  # fmt: skip
    return out


def _bootstrap(prices: pd.DataFrame, t: int, rng: np.random.Generator) -> pd.DataFrame:
    """Bars after t replaced by bars drawn at random (seeded, all symbols on the same draw)
    from the data itself, chained from bar t's close: each keeps its gap, range, close-to-
    close move and volume, so the continuation is valid and plausible, but its order is
    independent of the real future's."""
    n = len(prices)
    j = rng.integers(1, n, size=n - t - 1)
    out = prices.copy()
    for o, h, lo, c, v in _bar_columns(prices):
        close = prices[c].to_numpy()
        prev = close[j - 1]
        path = np.cumprod(np.concatenate(([close[t]], close[j] / prev)))  # sequential: exact chaining
        base = path[:-1]
        ratio = {x: prices[x].to_numpy()[j] / prev for x in (o, h, lo)}
        _replace_after(out, t, {o: base * ratio[o], h: base * ratio[h], lo: base * ratio[lo],
                                c: path[1:], v: prices[v].to_numpy()[j]})  # fmt: skip
    return out


def _change_bars(strat: Strategy, run: _Run) -> np.ndarray:
    """Bars where a decision changes (or a bar strategy acts): a peek that pays moves one."""
    if run.log is not None:
        return np.array(sorted({e[0] for e in run.log}), dtype=int)
    d = np.nan_to_num(run.decisions.to_numpy())  # type: ignore[union-attr]
    return np.flatnonzero((np.diff(d, axis=0) != 0).any(axis=1)) + 1


def _cut_points(first: int, n: int, cuts: int, sample: int, changes: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``cuts`` bars evenly spread from the end of the warm-up to the last bar, and a seeded
    sample of ``sample`` others: half drawn from the bars where a decision changes (where a
    peek that pays shows), the rest from all bars."""
    spread = np.unique(np.linspace(first, n - 2, cuts).astype(int))
    pool = np.setdiff1d(np.arange(first, n - 1), spread)
    moved = rng.permutation(np.intersect1d(changes, pool))[: sample // 2]
    rest = rng.permutation(np.setdiff1d(pool, moved))[: sample - len(moved)]
    return spread, np.concatenate([moved, rest]).astype(int)


def _late(prices: pd.DataFrame, t: int, k: int = LATE_BARS) -> pd.DataFrame:
    """Bars up to t, then the real bars again from t-k+1: the last k bars replayed and the
    real future arriving k bars late (real, valid bars on the same timestamps)."""
    rows = np.r_[np.arange(t + 1), np.arange(t + 1 - k, len(prices) - k)]
    out = prices.iloc[rows].copy()
    out.index = prices.index
    return out


def _held(strat: Strategy, run: _Run, prices: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(exposure decided at each close, the sign of each symbol's real next move)."""
    if run.decisions is None:  # bar strategy: the position it held over the next bar
        held = np.sign(run.positions)[1:]  # type: ignore[index]
        close = prices[["Close"]]
    else:
        held = run.decisions.to_numpy()[:-1]
        cols = list(run.decisions.columns)
        close = panel_field(prices, "Close")[cols] if strat.kind == "weights" else prices[["Close"]]
    return np.nan_to_num(held), np.sign(np.diff(np.log(close.to_numpy()), axis=0))


def _blind_score(excess: np.ndarray, moves: np.ndarray, rng: np.random.Generator) -> float | None:
    """How well ``excess`` exposure lines up with the real next moves, as a z-score against
    the same exposure scored on circularly shifted moves (a shift keeps the persistence of
    both, so a long trend-following position is no false alarm). None when there is too
    little to judge (few bars, or exposure that never varies)."""
    m = len(excess)
    if m < BLIND_MIN or not excess.any():
        return None
    lags = rng.permutation(np.arange(m // 10, m - m // 10))[:BLIND_LAGS]
    null = np.array([(excess * np.roll(moves, lag, axis=0)).sum() for lag in lags])
    sd = float(null.std())
    return None if sd == 0 else float(((excess * moves).sum() - null.mean()) / sd)


def _in_warmup(i: int, warmup: int) -> str:
    """What a decision at bar ``i`` inside the declared warm-up says (nothing after it)."""
    if i >= warmup:
        return ""
    return (f" (bar {i}, inside its declared warm-up of {warmup} bars: a decision there uses an "
            "incomplete window or a future value, bfill?)")  # fmt: skip


def _fail(strat: Strategy, found: tuple[str, int], t: int, how: str, index: pd.Index) -> None:
    """Name the first decision that moved, and what was done to the data to move it."""
    what, i = found
    raise LookAheadError(
        f"{strat.name} looks ahead: its {what} at {index[i]}{_in_warmup(i, strat.warmup)} changed when "
        f"{HOW[how].format(ts=index[t], k=MIRROR_BARS)} (decisions must use only bars up to their own close)"
    )


def _active(run: _Run) -> np.ndarray:
    """Bars where the strategy is not flat: a non-zero target or held weight; for a bar
    strategy, an order or a non-zero target requested, or a position held."""
    if run.log is not None:
        asked = [e[0] for e in run.log if e[3] or (e[1] is not None and e[1][0] != 0)]
        held = np.flatnonzero(np.nan_to_num(run.positions).any(axis=1))  # type: ignore[arg-type]
        return np.union1d(np.array(asked, dtype=int), held)
    d = np.nan_to_num(run.decisions.to_numpy())  # type: ignore[union-attr]
    return np.flatnonzero((d != 0).any(axis=1))


def _warmup_points(warmup: int, cuts: int, sample: int, active: np.ndarray,
                   changes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Bars inside the declared warm-up to cut at (a strategy that keeps its declaration is
    flat all through it, so its decisions there are the suspect ones): ``cuts`` spread over
    it and the first bar where the full run is not flat, each to cut and mirror; and up to
    ``sample`` more of the bars where a decision is taken there, evenly spread (all of them
    when fewer), alternately."""
    if warmup < 1:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    early = active[active < warmup]
    both = np.unique(np.concatenate([np.linspace(0, warmup - 1, cuts).astype(int), early[:1]]))
    decided = np.setdiff1d(np.intersect1d(changes, early), both)
    if len(decided) > sample:
        decided = decided[np.unique(np.linspace(0, len(decided) - 1, sample).astype(int))]
    return both, decided


def _undecided(strat: Strategy, active: np.ndarray, t: int, how: str, exc: Exception, index: pd.Index) -> None:
    """The strategy raised on data kept up to bar ``t`` inside its warm-up: it cannot decide
    yet, so the full run must be flat up to ``t`` too (on fewer bars it cannot decide either)."""
    if len(active) and active[0] <= t:
        i = int(active[0])
        raise LookAheadError(
            f"{strat.name} looks ahead: it decided at {index[i]}{_in_warmup(i, strat.warmup)}, yet it "
            f"cannot decide when {HOW[how].format(ts=index[t], k=MIRROR_BARS)} ({type(exc).__name__}: {exc})"
        ) from exc


def _check_blind(spec: BacktestSpec, full: _Run, prices: pd.DataFrame, t: int,
                 rng: np.random.Generator) -> int:  # fmt: skip
    """The two stand-in futures after ``t``. Decisions up to t must not move, and those
    after t must not predict the real next moves beyond what an honest strategy could:
    nothing on the bootstrap (independent of the real future), no more than its own real
    decisions LATE_BARS earlier on the late replay (what an honest strategy holds there)."""
    strat = spec.strategy
    real, _ = _held(strat, full, prices)
    expected = {"blind": np.zeros_like(real), "late": np.vstack([real[:LATE_BARS], real[:-LATE_BARS]])}
    for how, frame in (("blind", _bootstrap(prices, t, rng)), ("late", _late(prices, t))):
        got = _run(spec, frame, False)
        found = _first_change(full, got, t, cut=False)
        if found is not None:
            _fail(strat, found, t, how, prices.index)
        held, moves = _held(strat, got, prices)
        z = _blind_score((held - expected[how])[t + 1 :], moves[t + 1 :], rng)
        if z is not None and z > BLIND_Z:
            raise LookAheadError(
                f"{strat.name} looks ahead: on data whose bars after {prices.index[t]} were "
                f"{STAND_IN[how]}, its decisions still predict the real next-bar moves (score z = "
                f"{z:.1f} against the real moves shifted in time; the limit is {BLIND_Z:g}): it reads the "
                "real future from somewhere other than the frame it is given (a closure over the full "
                "frame, a global, a file)"
            )
    return 2


def check_lookahead(
    strategy: str | type[Strategy] | Strategy | BacktestSpec,
    prices: pd.DataFrame | str | list[str],
    params: dict[str, Any] | None = None,
    *,
    cuts: int = 8,
    sample: int = 64,
    seed: int = 0,
    backtests: bool = True,
    **execution: Any,
) -> int:
    """Raise :class:`LookAheadError` if a decision at bar t depends on anything after t.

    Each check reruns the strategy on a changed copy of the data and compares its
    decisions up to bar t with the full run's: targets; weights with NaN (hold) carried
    forward; for a :class:`BarStrategy`, every ``on_bar`` request (target and its
    protective exits, orders, cancellations), logged even at a cut's last bar.

    - **cuts**: ``cuts`` bars evenly spread from the end of the warm-up
      (``strategy.warmup``) to the last bar, each checked twice: the data *cut* after t,
      and the next ``MIRROR_BARS`` bars *mirrored* (every move reversed, volume doubled:
      still valid bars) with the rest cut. With ``backtests``, the cut run's equity up to
      t-1 must match too (a bar strategy's always must).
    - **sample**: ``sample`` more bars drawn with ``seed`` (fixed by default: a run is
      reproducible), half among the bars where the full run's decision changes (a peek
      that pays has to move a decision there), half anywhere after the warm-up;
      alternately cut and mirrored.
    - **inside the warm-up**: ``cuts`` bars spread over bars 0 .. ``strategy.warmup`` - 1
      and the first bar where the full run is not flat there, each cut and mirrored, plus
      up to ``sample`` of the bars where it decides there (all when fewer), alternately: a
      decision inside its own declared warm-up is where a value filled back from later
      bars (``bfill``) or a peek hides from cuts after it. A run on data cut there that
      raises a :class:`~workbench.errors.DataError` or :class:`ParameterError` (too few
      bars, e.g. an :class:`~workbench.errors.InsufficientHistoryError`) means "cannot
      decide yet": the full run must then be flat (0 or NaN) up to that bar, or the check
      fails naming its first decision. Any error there is ignored while the full run is
      still flat; otherwise, and after the warm-up, other errors are raised as they are.
    - **stand-in futures**, from the end of the warm-up (or from the first decision if it
      comes before): a seeded *bootstrap* of the data's own bars (independent of the real
      future), and the real bars replayed ``LATE_BARS`` bar *late*. Decisions up to the
      split must not move. Decisions after it are scored on
      how well they predict the real next-bar moves, against the same score on the real
      moves shifted in time: an honest strategy cannot beat chance on the bootstrap, nor
      on the late replay beat its own real decisions one bar earlier (which is what an
      honest strategy holds there). A z-score above ``BLIND_Z`` fails.

    Cost: one strategy call per check (a backtest for a bar strategy), about
    ``4 * cuts + sample + 3`` runs (plus up to ``sample`` short ones for a strategy that
    decides inside its warm-up), most of them on a part of the data; under a second for
    the vectorised built-ins on GOOG, several seconds for ``ml_classifier``, which refits
    its models on every call (pass a smaller ``sample`` to trade power for time).

    What a pass shows, and what it does not:

    - the cut and mirror checks are exact but sampled. A peek at the frame the strategy is
      given (``shift(-1)``, a centred window, full-sample statistics, ``len(prices)``) is
      caught when a checked bar is one it peeks from and the peeked bar moves the
      decision: a peek on most bars, or all through the first or the second half, always
      is; a peek on one bar only if that bar is drawn (72 of GOOG's 2,148 bars are with
      the defaults, but half of the sample goes to the bars where a decision changes, so
      a peek that flips a decision has odds of about ``sample / 2`` in the number of
      changes). Occasional peeks get likelier to be caught the more bars they touch (one
      bar in 50 is caught for most seeds). Raise ``sample`` (up to every bar) for more.
    - the stand-in futures are the only checks that see a strategy reading the real
      future from outside the frame it is given (a closure over the full frame, a global,
      a file), and they are statistical: such a leak on a sizeable share of the bars is
      caught, a rare one (one bar in 50) is not.
    - a leak from outside the frame at the scale of years or regimes (trading only in the
      years whose full-year return, read from a module-level copy of the data, was
      positive) is not caught: its handful of independent bets is within what an honest
      trend rule can score, and no cut sees it.
    - a strategy must be deterministic: randomness without a fixed seed, or state kept
      between calls (a cache filled on the full run), shows as look-ahead or hides it.
    - outside data the strategy reads by itself (another symbol, a macro series) is
      honest if known at t; its real predictive power counts in the stand-in scores, so
      only an edge far beyond any honest one (z above ``BLIND_Z``) is flagged.
    - bar strategies are checked through their requests and their backtest equity; the
      engine's protective exits and trailing stops are not decisions.
    - acting on the last bar *because* it is the last (closing out at the end of the
      data) is reported: it knows the data ends.

    Returns the number of changed-data runs compared.
    """
    check_keywords(execution, "check_lookahead", ("cuts", "sample", "seed", "backtests"))
    spec = make_spec(strategy, params, **execution)
    strat = spec.strategy
    prices, _ = prepare_prices(strat, prices)
    n = len(prices)
    if n < 4:
        raise ParameterError(f"need at least 4 bars to check look-ahead, got {n}")
    cuts, sample, seed = check_int("cuts", cuts, 1), check_int("sample", sample, 0), check_seed("seed", seed)
    rng = np.random.default_rng(seed)
    full = _run(spec, prices, backtests)
    first = min(max(strat.warmup, 1), n - 2)
    changes, active = _change_bars(strat, full), _active(full)
    warm = min(strat.warmup, n - 1)
    both, decided = _warmup_points(warm, cuts, sample, active, changes)
    spread, sampled = _cut_points(first, n, cuts, sample, changes, rng)
    plan = [(int(t), how) for t in both for how in ("cut", "mirror")]
    plan += [(int(t), ("cut", "mirror")[i % 2]) for i, t in enumerate(decided)]
    plan += [(int(t), how) for t in spread for how in ("cut", "mirror")]
    plan += [(int(t), ("cut", "mirror")[i % 2]) for i, t in enumerate(sampled)]
    for t, how in plan:
        frame = prices.iloc[: t + 1] if how == "cut" else _mirror(prices, t)
        backtested = backtests and how == "cut" and t in spread
        try:
            got = _run(spec, frame, backtested)
        except Exception as exc:  # inside the warm-up: too few bars to decide yet
            flat = not (len(active) and active[0] <= t)  # the full run has decided nothing yet either
            if t >= warm or not (flat or isinstance(exc, DataError | ParameterError)):
                raise
            _undecided(strat, active, t, how, exc, prices.index)
            continue
        found = _first_change(full, got, t, cut=how == "cut")
        if found is not None:
            _fail(strat, found, t, how, prices.index)
    # the stand-in futures start where the decisions start, inside the warm-up if need be
    split = max(int(active[0]) - 1, 0) if len(active) and active[0] < warm else first
    return len(plan) + _check_blind(spec, full, prices, split, rng)
