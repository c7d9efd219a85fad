"""Cross-validation splits for backtests: walk-forward, purged k-fold and combinatorial purged CV.

Pure index generators: each split is ``(train, test)``, two sorted ``np.intp`` arrays of
**bar positions** (0-based, over ``n`` bars), so they index ``prices.iloc[...]``, a
feature matrix or a label vector alike. Nothing here fits or backtests anything.

Conventions (the tests hold every one of them against skfolio 1.12.2's ``WalkForward`` and
``CombinatorialPurgedCV`` on the same settings, and against hand computations):

- **Walk-forward** (bars): the k-th test window starts at bar ``train + purge + k*step``
  and is ``test`` bars long; its train window is the ``train`` bars that end ``purge``
  bars before it (rolling) or every bar from 0 to there (anchored). ``step=test`` and
  ``partial`` are skfolio's ``WalkForward(train_size, test_size, purged_size,
  expand_train, reduce_test)`` exactly.
- **Walk-forward** (calendar, a DatetimeIndex and pandas offsets): the k-th test window
  starts at the time ``b_k = index[0] + train + k*step`` and holds the bars in
  ``[b_k, b_k + test)``; its train window holds the bars in ``[b_k - train, b_k)``
  (rolling) or ``[index[0], b_k)`` (anchored), minus the last ``purge`` bars. Half-open
  on timestamps; ``purge`` is in bars. On a grid that starts at ``index[0]`` this is
  skfolio's calendar ``WalkForward(freq=..., train_size=<periods>)``.
- **Folds** (k-fold and CPCV): ``n_folds`` contiguous folds, no shuffling; the first
  ``n_folds - 1`` hold ``n // n_folds`` bars and the last one the rest (skfolio's rule;
  scikit-learn's ``KFold`` gives the extra bars to the first folds instead).
- **Purge and embargo** (López de Prado 2018, *Advances in Financial Machine Learning*,
  ch. 7; skfolio's ``purged_size`` and ``embargo_size``): around every test fold ``f``
  covering bars ``[a, b)`` the train set loses ``[a - purge, a)`` (labels that reach into
  the test) and ``[b, b + purge + embargo)`` (labels that start inside the test's label
  horizon, plus the embargo against serial correlation). Purge is two-sided, the embargo
  follows the test only; adjacent test folds act as one block.
- **CPCV paths**: every fold is tested in ``C(N-1, k-1)`` of the ``C(N, k)`` splits, so
  ``phi = C(N, k) * k / N`` backtest paths can be recombined: path ``p`` takes fold ``f``
  from the ``p``-th split (in split order) that tests ``f`` (skfolio's ``recombined_paths``
  and ``get_path_ids``).

Bad input raises :class:`~workbench.errors.ParameterError` naming the rule and the value.
The splitters validate when called (not at the first ``next``) and yield lazily.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from workbench.errors import ParameterError

__all__ = [
    "MAX_COMBINATIONS",
    "walk_forward",
    "purged_kfold",
    "combinatorial_purged_cv",
    "fold_labels",
    "cpcv_test_folds",
    "cpcv_paths",
    "cpcv_path_ids",
    "n_cpcv_paths",
]

Split = tuple[np.ndarray, np.ndarray]
Length = int | str | pd.offsets.BaseOffset | pd.Timedelta | dt.timedelta

MAX_COMBINATIONS = 100_000  # most CPCV splits accepted (skfolio's cap): each split is a model fit


def _int(who: str, name: str, value: object, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (bools and floats refused: a bar count is whole)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ParameterError(f"{who}: {name} must be an integer, got {name}={value!r}")
    if value < minimum:
        raise ParameterError(f"{who}: {name} must be >= {minimum}, got {name}={value}")
    return int(value)


# --------------------------------------------------------------------------- walk-forward


def walk_forward(
    n: int | pd.DatetimeIndex,
    train: Length,
    test: Length,
    *,
    anchored: bool = False,
    purge: int = 0,
    step: Length | None = None,
    partial: bool = False,
) -> Iterator[Split]:
    """Walk-forward splits: re-fit on a past window, test on the window after it.

    Parameters
    ----------
    n : int or pandas.DatetimeIndex
        The number of bars, or the bars' timestamps (strictly increasing) for calendar
        lengths. Integer lengths on an index count bars as if ``n=len(index)``.
    train, test, step : int, or str / pandas offset / timedelta
        Window lengths and the distance between consecutive test starts (default
        ``step=test``: test windows tile the data). All bar counts (int) or all calendar
        lengths (``"365D"``, ``"6MS"``, ``pd.DateOffset(years=3)``...), never mixed.
    anchored : bool
        False (rolling): every train window has the same length. True (anchored,
        expanding): every train window starts at bar 0.
    purge : int
        Bars (in both modes) left out between the last train bar and the first test bar,
        >= 0: a decision made at the close of bar t trades from bar t + 1, so
        ``purge=1`` keeps that bar out of both windows.
    partial : bool
        Keep the last test window even when the data end before it is complete
        (skfolio's ``reduce_test``). Either way the splits stop after the first test
        window that reaches the last bar.

    Yields
    ------
    (train, test) : tuple of np.ndarray
        Bar positions. **Bars**: test ``k`` is ``[s, s + test)`` with
        ``s = train + purge + k*step``; train is ``[s - purge - train, s - purge)``
        (rolling) or ``[0, s - purge)`` (anchored). A window is complete when
        ``s + test <= n``. **Calendar**: with ``b_k = index[0] + train + k*step`` (pandas
        offset arithmetic, ``k*step`` as one offset so month ends do not drift), test
        ``k`` holds the bars with time in ``[b_k, b_k + test)``, and train those in
        ``[b_k - train, b_k)`` (rolling) or ``[index[0], b_k)`` (anchored) minus its last
        ``purge`` bars. A window is complete when ``b_k + test <= index[-1]`` (the data
        reach its end); windows without a bar (a data gap) are skipped.

    Notes
    -----
    End-anchored offsets (``"YE"``, ``"ME"``, ``"QE"``) roll to a period end, and that
    period-end bar starts the next window (half-open, as in skfolio's calendar mode):
    use ``"YS"``/``"MS"`` or ``pd.DateOffset(years=1)`` for calendar periods. Rolling
    calendar train windows start at the first bar at or after ``b_k - train``; skfolio,
    given an offset as ``train_size``, starts at the last bar at or before it (one bar
    earlier when no bar falls exactly there).

    Examples
    --------
    >>> [(tr.tolist(), te.tolist()) for tr, te in walk_forward(7, 3, 2)]
    [([0, 1, 2], [3, 4]), ([2, 3, 4], [5, 6])]
    >>> [(tr.tolist(), te.tolist()) for tr, te in walk_forward(7, 3, 2, anchored=True, purge=1)]
    [([0, 1, 2], [4, 5])]
    """
    who = "walk_forward"
    step = test if step is None else step
    lengths = {"train": train, "test": test, "step": step}
    # anything but a calendar length is a bar count (a float is refused there, by name)
    calendar = [isinstance(v, str | pd.offsets.BaseOffset | dt.timedelta) for v in lengths.values()]
    purge = _int(who, "purge", purge, 0)
    if isinstance(n, pd.DatetimeIndex):
        index = _check_index(who, n)
        if all(calendar):
            return _calendar_windows(index, lengths, purge, anchored, partial)
        n = len(index)
    if any(calendar):
        if all(calendar):
            raise ParameterError(
                f"{who}: calendar lengths need a DatetimeIndex as n, got n={n!r} with {lengths!r}"
            )
        raise ParameterError(
            f"{who}: train, test and step must all be bar counts (int) or all calendar "
            f"lengths, got {lengths!r}"
        )
    return _bar_windows(_int(who, "n", n, 1), lengths, purge, anchored, partial)


def _bar_windows(
    n: int, lengths: dict[str, Length], purge: int, anchored: bool, partial: bool
) -> Iterator[Split]:
    """The bar-count walk-forward: checks eagerly, then yields lazily."""
    who = "walk_forward"
    train, test, step = (_int(who, k, lengths[k], 1) for k in ("train", "test", "step"))
    need, rule = (train + purge + 1, "train + purge < n") if partial else (
        train + purge + test, "train + purge + test <= n")  # fmt: skip
    if need > n:
        raise ParameterError(
            f"{who}: the first window must fit ({rule}), got train={train}, purge={purge}, "
            f"test={test}, n={n}"
        )

    def windows() -> Iterator[Split]:
        start = train + purge
        while start < n:
            stop = start + test
            if stop > n and not partial:
                return
            lo = 0 if anchored else start - purge - train
            yield np.arange(lo, start - purge), np.arange(start, min(stop, n))
            if stop >= n:  # this test window reached the last bar
                return
            start += step

    return windows()


def _check_index(who: str, index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    if len(index) == 0:
        raise ParameterError(f"{who}: the index must hold at least one bar, got an empty index")
    if index.hasnans or not (index.is_monotonic_increasing and index.is_unique):
        bad = next((i for i in range(1, len(index)) if not index[i] > index[i - 1]), 0)
        raise ParameterError(
            f"{who}: the index must be strictly increasing without NaT, got {index[bad]!r} "
            f"at position {bad}"
        )
    return index


def _offset(who: str, name: str, value: Length, origin: pd.Timestamp) -> pd.offsets.BaseOffset | pd.Timedelta:
    """A calendar length as a pandas offset or Timedelta that moves time forward."""
    try:
        if isinstance(value, str):
            try:
                length = to_offset(value)
            except ValueError:
                length = pd.Timedelta(value)  # "3 days" and friends
        elif isinstance(value, pd.offsets.BaseOffset | dt.timedelta):
            length = pd.Timedelta(value) if isinstance(value, dt.timedelta) else value
        else:
            raise TypeError(type(value).__name__)
        moved = (_shifted(origin, length) or pd.Timestamp.max.tz_localize(origin.tz)) > origin
    except (ValueError, TypeError) as exc:
        raise ParameterError(
            f"{who}: {name} must be a bar count or a pandas offset or timedelta, "
            f"got {name}={value!r} ({exc})"
        ) from None
    if not moved:
        raise ParameterError(f"{who}: {name} must be a positive length, got {name}={value!r}")
    return length


def _shifted(t: pd.Timestamp, length: object) -> pd.Timestamp | None:
    """``t + length``, or None past pandas' last timestamp (year 2262): beyond any data."""
    try:
        return t + length
    except pd.errors.OutOfBoundsDatetime:
        return None


def _calendar_windows(
    index: pd.DatetimeIndex, lengths: dict[str, Length], purge: int, anchored: bool, partial: bool
) -> Iterator[Split]:
    """The calendar walk-forward: every window's bounds are found (and checked) first."""
    who = "walk_forward"
    first, last = index[0], index[-1]
    train, test, step = (_offset(who, k, lengths[k], first) for k in ("train", "test", "step"))
    b0 = _shifted(first, train)
    bounds: list[tuple[int, int, int, int]] = []
    for k in itertools.count():
        # k * step as one offset (0 * an anchored offset would roll b0 forward)
        b = b0 if k == 0 or b0 is None else _shifted(b0, k * step)
        if b is None or b > last:
            break
        end = _shifted(b, test)
        if (end is None or end > last) and not partial:
            break
        p, q = index.searchsorted(b), len(index) if end is None else index.searchsorted(end)
        start = None if anchored else _shifted(b, -train)
        lo = 0 if start is None else index.searchsorted(start)
        if q > p:  # a test window inside a data gap holds no bar: skipped
            if p - purge <= lo:
                raise ParameterError(
                    f"{who}: every train window needs a bar, but the one before the test "
                    f"starting {index[p]} has {p - lo} bar(s) and purge={purge} "
                    f"(train={lengths['train']!r}, anchored={anchored})"
                )
            bounds.append((int(lo), int(p) - purge, int(p), int(q)))
        if end is None or end > last:
            break
    if not bounds:
        raise ParameterError(
            f"{who}: the index ({first} to {last}) is too short for one complete window, "
            f"got train={lengths['train']!r}, test={lengths['test']!r}, partial={partial}"
        )
    return ((np.arange(a, b), np.arange(c, d)) for a, b, c, d in bounds)


# --------------------------------------------------------------------------- folds


def fold_labels(n: int, n_folds: int) -> np.ndarray:
    """The fold of every bar: ``min(i // (n // n_folds), n_folds - 1)`` (remainder to the last).

    >>> fold_labels(7, 3).tolist()
    [0, 0, 1, 1, 2, 2, 2]
    """
    n_folds = _int("fold_labels", "n_folds", n_folds, 1)
    n = _int("fold_labels", "n", n, n_folds)
    return np.minimum(np.arange(n) // (n // n_folds), n_folds - 1)


def _fold_bounds(n: int, n_folds: int) -> np.ndarray:
    """``n_folds + 1`` edges: fold f is ``[edges[f], edges[f + 1])``."""
    edges = np.arange(n_folds + 1) * (n // n_folds)
    edges[-1] = n
    return edges


def _dropped(edges: np.ndarray, folds: Sequence[int], purge: int, embargo: int) -> list[tuple[int, int]]:
    """Merged ``[lo, hi)`` intervals a split's train set loses: its test folds, purged and embargoed."""
    n = int(edges[-1])
    out: list[tuple[int, int]] = []
    for f in folds:  # increasing fold order: increasing starts, so one merge pass
        lo, hi = max(0, int(edges[f]) - purge), min(n, int(edges[f + 1]) + purge + embargo)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _train(n: int, dropped: list[tuple[int, int]]) -> np.ndarray:
    keep = np.ones(n, dtype=bool)
    for lo, hi in dropped:
        keep[lo:hi] = False
    return np.flatnonzero(keep)


def _fold_splits(
    who: str, n: int, n_folds: int, combos: np.ndarray, purge: int, embargo: int
) -> Iterator[Split]:
    """Check that every split keeps a train bar, then yield (train, test) per combination."""
    edges = _fold_bounds(n, n_folds)
    for folds in combos:
        dropped = _dropped(edges, folds, purge, embargo)
        if sum(hi - lo for lo, hi in dropped) >= n:
            raise ParameterError(
                f"{who}: every split needs a train bar, but purge={purge}, embargo={embargo} "
                f"leave none when folds {tuple(int(f) for f in folds)} are tested "
                f"(fold edges {edges.tolist()})"
            )

    def splits() -> Iterator[Split]:
        for folds in combos:
            test = np.concatenate([np.arange(edges[f], edges[f + 1]) for f in folds])
            yield _train(n, _dropped(edges, folds, purge, embargo)), test

    return splits()


def purged_kfold(n: int, k: int, *, purge: int = 0, embargo: int = 0) -> Iterator[Split]:
    """Purged and embargoed k-fold (López de Prado 2018, ch. 7): each fold is the test once.

    Folds are contiguous (the first ``k - 1`` hold ``n // k`` bars, the last the rest) and
    yielded in order, so every bar is tested exactly once. The train set is every other
    bar except the ``purge`` bars before the test fold and the ``purge + embargo`` bars
    after it (purge is two-sided, as skfolio's ``purged_size``; embargo follows the test,
    as its ``embargo_size``). This is :func:`combinatorial_purged_cv` with one test fold.

    >>> [(tr.tolist(), te.tolist()) for tr, te in purged_kfold(9, 3, purge=1)]
    [([4, 5, 6, 7, 8], [0, 1, 2]), ([0, 1, 7, 8], [3, 4, 5]), ([0, 1, 2, 3, 4], [6, 7, 8])]
    """
    who = "purged_kfold"
    k = _int(who, "k", k, 2)
    n = _int(who, "n", n, k)
    purge, embargo = _int(who, "purge", purge, 0), _int(who, "embargo", embargo, 0)
    return _fold_splits(who, n, k, np.arange(k).reshape(-1, 1), purge, embargo)


# --------------------------------------------------------------------------- CPCV


def _check_cpcv(who: str, n_folds: int, n_test_folds: int) -> tuple[int, int]:
    n_folds = _int(who, "n_folds", n_folds, 2)
    n_test_folds = _int(who, "n_test_folds", n_test_folds, 1)
    if n_test_folds >= n_folds:
        raise ParameterError(
            f"{who}: n_test_folds must be < n_folds (a split needs a train fold), "
            f"got n_test_folds={n_test_folds}, n_folds={n_folds}"
        )
    if (c := math.comb(n_folds, n_test_folds)) > MAX_COMBINATIONS:
        raise ParameterError(
            f"{who}: C(n_folds, n_test_folds) must be <= {MAX_COMBINATIONS} splits, got "
            f"C({n_folds}, {n_test_folds})={c}"
        )
    return n_folds, n_test_folds


def combinatorial_purged_cv(
    n: int, n_folds: int, n_test_folds: int, *, purge: int = 0, embargo: int = 0
) -> Iterator[Split]:
    """Combinatorial purged cross-validation (CPCV, López de Prado 2018, ch. 12).

    One split per choice of ``n_test_folds`` of the ``n_folds`` contiguous folds, in
    lexicographic order of the chosen folds (:func:`cpcv_test_folds`, skfolio's
    ``test_set_index``). ``test`` is the sorted union of the chosen folds
    (``fold_labels(n, n_folds)[test]`` splits it back into folds); ``train`` is every
    other bar except the ``purge`` bars before each test block and the ``purge + embargo``
    bars after it. Recombine the test folds into backtest paths with :func:`cpcv_paths`
    or :func:`cpcv_path_ids`.

    skfolio's ``CombinatorialPurgedCV`` yields the same train set and the test folds as a
    list. It also refuses ``n_test_folds=1`` and ``purge + embargo >= n // n_folds - 1``;
    here one test fold is allowed (purged k-fold) and the rule is that every split keeps
    at least one train bar (skfolio yields an empty train set when a train fold between
    two test folds is smaller than ``2 * purge + embargo``).

    >>> [(tr.tolist(), te.tolist()) for tr, te in combinatorial_purged_cv(6, 3, 2)]
    [([4, 5], [0, 1, 2, 3]), ([2, 3], [0, 1, 4, 5]), ([0, 1], [2, 3, 4, 5])]
    """
    who = "combinatorial_purged_cv"
    n_folds, n_test_folds = _check_cpcv(who, n_folds, n_test_folds)
    n = _int(who, "n", n, n_folds)
    purge, embargo = _int(who, "purge", purge, 0), _int(who, "embargo", embargo, 0)
    return _fold_splits(who, n, n_folds, cpcv_test_folds(n_folds, n_test_folds), purge, embargo)


def cpcv_test_folds(n_folds: int, n_test_folds: int) -> np.ndarray:
    """The test folds of every CPCV split: shape ``(C(N, k), k)``, rows in lexicographic order.

    >>> cpcv_test_folds(3, 2).tolist()
    [[0, 1], [0, 2], [1, 2]]
    """
    n_folds, n_test_folds = _check_cpcv("cpcv_test_folds", n_folds, n_test_folds)
    combos = itertools.combinations(range(n_folds), n_test_folds)
    return np.array(list(combos), dtype=np.intp).reshape(-1, n_test_folds)


def n_cpcv_paths(n_folds: int, n_test_folds: int) -> int:
    """The number of backtest paths ``phi = C(N, k) * k / N = C(N - 1, k - 1)`` (exact).

    >>> n_cpcv_paths(6, 2)
    5
    """
    n_folds, n_test_folds = _check_cpcv("n_cpcv_paths", n_folds, n_test_folds)
    return math.comb(n_folds - 1, n_test_folds - 1)


def _membership(n_folds: int, n_test_folds: int) -> tuple[np.ndarray, np.ndarray]:
    """The test folds per split and the ``(splits, folds)`` matrix of "fold f tested in split s"."""
    combos = cpcv_test_folds(n_folds, n_test_folds)
    member = np.zeros((len(combos), n_folds), dtype=bool)
    member[np.arange(len(combos))[:, None], combos] = True
    return combos, member


def cpcv_paths(n_folds: int, n_test_folds: int) -> np.ndarray:
    """The split that supplies each fold of each backtest path: shape ``(phi, n_folds)``.

    Path ``p`` is the concatenation over folds ``f`` of split ``paths[p, f]``'s predictions
    on fold ``f``: the ``p``-th split, in split order, whose test set holds ``f``
    (skfolio's ``recombined_paths.T``). Every path covers every bar exactly once.

    >>> cpcv_paths(3, 2).tolist()
    [[0, 0, 1], [1, 2, 2]]
    """
    _, member = _membership(n_folds, n_test_folds)
    return np.stack([np.flatnonzero(member[:, f]) for f in range(member.shape[1])], axis=1)


def cpcv_path_ids(n_folds: int, n_test_folds: int) -> np.ndarray:
    """The path each test fold of each split belongs to: shape ``(C(N, k), k)``.

    ``path_ids[s, j]`` is the path of split ``s``'s ``j``-th test fold (folds in increasing
    order), i.e. how many earlier splits test that fold (skfolio's ``get_path_ids()``).

    >>> cpcv_path_ids(3, 2).tolist()
    [[0, 0], [1, 0], [1, 1]]
    """
    combos, member = _membership(n_folds, n_test_folds)
    earlier = np.cumsum(member, axis=0) - 1
    return np.take_along_axis(earlier, combos, axis=1)
