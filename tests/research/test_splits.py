"""Cross-validation splits: equal to skfolio 1.12.2 where the semantics agree, to hand-built
index sets where they differ, and invariant (disjoint, gaps kept, coverage) throughout."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skfolio.model_selection import CombinatorialPurgedCV, WalkForward

from workbench.errors import ParameterError
from workbench.research.splits import (
    MAX_COMBINATIONS,
    combinatorial_purged_cv,
    cpcv_path_ids,
    cpcv_paths,
    cpcv_test_folds,
    fold_labels,
    n_cpcv_paths,
    purged_kfold,
    walk_forward,
)

# ----------------------------------------------------------------------------- references


def _sk_walk(n, train, test, purge=0, anchored=False, partial=False):
    cv = WalkForward(test_size=test, train_size=train, purged_size=purge,
                     expand_train=anchored, reduce_test=partial)  # fmt: skip
    return list(cv.split(np.zeros((n, 1))))


def _sk_calendar(prices, freq, train_size, test_size, purge=0, anchored=False, partial=False):
    cv = WalkForward(test_size=test_size, train_size=train_size, freq=freq, purged_size=purge,
                     expand_train=anchored, reduce_test=partial)  # fmt: skip
    return list(cv.split(prices))


def _sk_cpcv(n, n_folds, n_test_folds, purge=0, embargo=0):
    """skfolio's splits as (train, [test fold arrays]); n_test_folds=1 by setting the
    attribute after construction (its machinery handles it; only __init__ refuses it)."""
    cv = CombinatorialPurgedCV(n_folds=max(n_folds, 3), n_test_folds=2,
                               purged_size=purge, embargo_size=embargo)  # fmt: skip
    cv.n_folds, cv.n_test_folds = n_folds, n_test_folds
    return list(cv.split(np.zeros((n, 1)))), cv


def _hand_fold_train(n, folds_bounds, purge, embargo):
    """Train bars by the stated rule, bar by bar: not within [a - purge, b + purge + embargo)
    of any test fold [a, b)."""
    return np.array([i for i in range(n)
                     if not any(a - purge <= i < b + purge + embargo for a, b in folds_bounds)],
                    dtype=int)  # fmt: skip


def _hand_bounds(n, n_folds):
    size = n // n_folds
    return [(f * size, n if f == n_folds - 1 else (f + 1) * size) for f in range(n_folds)]


def _same(ours, theirs):
    ours = list(ours)
    assert len(ours) == len(theirs), (len(ours), len(theirs))
    for (tr, te), (str_, ste) in zip(ours, theirs, strict=True):
        assert tr.dtype.kind == "i" and te.dtype.kind == "i"
        np.testing.assert_array_equal(tr, str_)
        np.testing.assert_array_equal(te, np.concatenate(ste) if isinstance(ste, list) else ste)


def _month_start_prices(prices: pd.DataFrame) -> pd.DataFrame:
    """The prices from their first bar that falls on the 1st of a month (a grid anchor)."""
    first = next(i for i, t in enumerate(prices.index) if t.day == 1)
    return prices.iloc[first:]


# ----------------------------------------------------------------------------- walk-forward, bars

WF_CASES = [  # n, train, test, purge, anchored, partial
    (6, 2, 1, 0, False, False), (6, 2, 1, 1, False, False), (6, 3, 2, 0, False, False),
    (6, 3, 2, 0, False, True), (6, 3, 2, 0, True, True), (100, 30, 10, 0, False, False),
    (100, 30, 10, 3, True, False), (101, 30, 10, 3, False, True), (50, 1, 1, 0, False, False),
    (50, 49, 1, 0, True, False), (2148, 504, 63, 1, False, True), (2148, 252, 21, 5, True, False),
]  # fmt: skip


@pytest.mark.parametrize(("n", "train", "test", "purge", "anchored", "partial"), WF_CASES)
def test_walk_forward_bars_equal_skfolio(n, train, test, purge, anchored, partial):
    ours = walk_forward(n, train, test, purge=purge, anchored=anchored, partial=partial)
    _same(ours, _sk_walk(n, train, test, purge, anchored, partial))


@settings(max_examples=80, deadline=None)
@given(n=st.integers(2, 300), train=st.integers(1, 120), test=st.integers(1, 60),
       purge=st.integers(0, 10), anchored=st.booleans(), partial=st.booleans())  # fmt: skip
def test_walk_forward_bars_property_equal_skfolio(n, train, test, purge, anchored, partial):
    fits = train + purge < n if partial else train + purge + test <= n
    if not fits:
        with pytest.raises(ParameterError, match="first window must fit"):
            walk_forward(n, train, test, purge=purge, anchored=anchored, partial=partial)
        return
    ours = list(walk_forward(n, train, test, purge=purge, anchored=anchored, partial=partial))
    _same(ours, _sk_walk(n, train, test, purge, anchored, partial))
    for tr, te in ours:  # the purge gap, the train length and the test tiling
        assert te[0] - tr[-1] == purge + 1
        assert len(tr) == (te[0] - purge if anchored else train)
    tested = np.concatenate([te for _, te in ours])
    np.testing.assert_array_equal(tested, np.arange(train + purge, train + purge + len(tested)))


@pytest.mark.parametrize(("n", "train", "test", "step", "purge", "anchored", "partial"), [
    (20, 5, 4, 2, 0, False, False), (20, 5, 4, 2, 1, True, True), (20, 5, 2, 5, 0, False, False),
    (21, 5, 3, 4, 2, False, True), (30, 7, 5, 1, 0, False, True),
])  # fmt: skip
def test_walk_forward_step_other_than_test_matches_hand_windows(n, train, test, step, purge,
                                                                anchored, partial):
    """skfolio always steps by test_size; our step is checked against the stated formula."""
    expected, s = [], train + purge
    while s < n and (s + test <= n or partial):
        expected.append((list(range(0 if anchored else s - purge - train, s - purge)),
                         list(range(s, min(s + test, n)))))
        if s + test >= n:
            break
        s += step
    got = [(tr.tolist(), te.tolist()) for tr, te in
           walk_forward(n, train, test, step=step, purge=purge, anchored=anchored, partial=partial)]
    assert got == expected and got


def test_walk_forward_overlapping_steps_keep_only_first_partial_window():
    got = [te.tolist() for _, te in walk_forward(10, 4, 4, step=1, partial=True)]
    assert got == [[4, 5, 6, 7], [5, 6, 7, 8], [6, 7, 8, 9]]  # [7, 8, 9] would repeat bars


def test_walk_forward_first_window_too_long_raises_where_skfolio_yields_nothing():
    assert _sk_walk(10, 6, 5) == []  # skfolio: silently no split
    with pytest.raises(ParameterError, match=r"train \+ purge \+ test <= n.*train=6.*test=5.*n=10"):
        walk_forward(10, 6, 5)


# ----------------------------------------------------------------------------- walk-forward, calendar


@pytest.mark.parametrize(("periods", "freq", "train", "test", "train_n", "test_n", "purge",
                          "anchored", "partial"), [
    ("30D", "30D", "360D", "30D", 12, 1, 0, False, False),
    ("30D", "30D", "360D", "90D", 12, 3, 2, False, True),
    ("7D", "7D", "364D", "28D", 52, 4, 1, True, False),
    ("MS", "MS", "12MS", "MS", 12, 1, 0, False, False),
    ("MS", "MS", "24MS", "3MS", 24, 3, 5, True, True),
    ("MS", "MS", "6MS", "MS", 6, 1, 1, False, True),
])  # fmt: skip
def test_walk_forward_calendar_on_grid_equals_skfolio(goog, periods, freq, train, test, train_n,
                                                      test_n, purge, anchored, partial):
    """On a grid that starts at the first bar (GOOG from its first month start), calendar
    windows are skfolio's calendar WalkForward with train/test counted in periods."""
    prices = _month_start_prices(goog)
    ours = list(walk_forward(prices.index, train, test, purge=purge, anchored=anchored,
                             partial=partial))  # fmt: skip
    assert len(ours) > 5
    _same(ours, _sk_calendar(prices, freq, train_n, test_n, purge, anchored, partial))


def test_walk_forward_calendar_matches_timestamp_masks(goog):
    """Each window is the bars whose time lies in the stated half-open intervals."""
    idx = goog.index
    train, test, step = pd.DateOffset(years=2), pd.DateOffset(months=6), pd.DateOffset(months=3)
    got = list(walk_forward(idx, train, test, step=step, purge=3))
    b0, expected = idx[0] + train, []
    for k in range(100):
        b = b0 + pd.DateOffset(months=3 * k)
        if b + test > idx[-1]:
            break
        te = np.flatnonzero((idx >= b) & (idx < b + test))
        tr = np.flatnonzero((idx >= b - train) & (idx < b))[:-3]
        expected.append((tr, te))
    assert len(got) == len(expected) > 10
    _same(got, expected)
    for tr, te in got:
        assert te[0] - tr[-1] == 4  # 3 purged bars between them


def test_walk_forward_calendar_offset_train_starts_one_bar_later_than_skfolio(goog):
    """Given an offset as train_size, skfolio starts train at the last bar at or before
    b - train (ffill); ours at the first bar at or after it: at most one leading bar less."""
    prices = _month_start_prices(goog)
    ours = list(walk_forward(prices.index, pd.DateOffset(months=12), "MS"))
    theirs = _sk_calendar(prices, "MS", pd.DateOffset(months=12), 1)
    assert len(ours) == len(theirs) > 50
    differ = 0
    for (tr, te), (str_, ste) in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(te, ste)
        np.testing.assert_array_equal(tr, str_[len(str_) - len(tr):])
        assert len(str_) - len(tr) in (0, 1)
        boundary = prices.index[te[0]].replace(day=1)  # the month start b the test opens on
        lookback = boundary - pd.DateOffset(months=12)
        assert (len(str_) == len(tr)) == (lookback in prices.index)
        differ += len(str_) != len(tr)
    assert differ > 0


def test_walk_forward_calendar_end_anchored_offset_puts_period_end_in_next_window(goog):
    splits = list(walk_forward(goog.index, "3YE", "YE"))
    starts = [goog.index[te[0]] for _, te in splits]
    assert starts[0] == pd.Timestamp("2007-01-03", tz="UTC")  # 2006-12-31 was a Sunday
    assert starts[1] == pd.Timestamp("2007-12-31", tz="UTC")  # the year-end bar opens 2008's window


def test_walk_forward_calendar_skips_test_windows_inside_a_data_gap_like_skfolio():
    days = pd.bdate_range("2020-01-01", "2022-12-30", tz="UTC")
    days = days[(days < "2021-03-01") | (days >= "2021-06-01")]  # no bars in Mar-May 2021
    prices = pd.DataFrame({"close": np.arange(len(days), dtype=float)}, index=days)
    ours = list(walk_forward(days, "6MS", "MS"))
    starts = {days[te[0]].strftime("%Y-%m") for _, te in ours}
    assert {"2021-02", "2021-06"} <= starts and not starts & {"2021-03", "2021-04", "2021-05"}
    _same(ours, _sk_calendar(prices, "MS", 6, 1))


def test_walk_forward_integer_lengths_on_an_index_count_bars(goog):
    _same(walk_forward(goog.index, 252, 21, purge=1), _sk_walk(len(goog), 252, 21, purge=1))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"train": 252, "test": "MS"}, r"all be bar counts .* or all calendar"),
    ({"train": "abc", "test": "MS"}, r"train must be a bar count or a pandas offset.*train='abc'"),
    ({"train": pd.Timedelta("-10D"), "test": "MS"}, r"train must be a positive length"),
    ({"train": "20YS", "test": "MS"}, r"too short for one complete window"),
    ({"train": "1000YS", "test": "MS"}, r"too short .*train='1000YS'"),  # past pandas' year 2262
    ({"train": "MS", "test": "MS", "purge": 40}, r"every train window needs a bar.*purge=40"),
    ({"train": "MS", "test": "MS", "purge": -1}, r"purge must be >= 0, got purge=-1"),
])  # fmt: skip
def test_walk_forward_calendar_bad_input_raises_named_rule(goog, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        walk_forward(goog.index, **kwargs)


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    ((100, "365D", "30D"), {}, r"calendar lengths need a DatetimeIndex"),
    ((100, 0, 10), {}, r"train must be >= 1, got train=0"),
    ((100, 10, 0), {}, r"test must be >= 1, got test=0"),
    ((100, 10, 5), {"step": 0}, r"step must be >= 1, got step=0"),
    ((100, 10.0, 5), {}, r"train must be an integer, got train=10.0"),
    ((100, 10, 5), {"purge": -2}, r"purge must be >= 0, got purge=-2"),
    ((10, 5, 11), {}, r"train \+ purge \+ test <= n"),
    ((10, 8, 1), {"purge": 2, "partial": True}, r"train \+ purge < n"),
    ((pd.DatetimeIndex(["2020-01-02", "2020-01-01"]), "1D", "1D"), {}, r"strictly increasing"),
])  # fmt: skip
def test_walk_forward_bad_input_raises_named_rule(args, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        walk_forward(*args, **kwargs)


# ----------------------------------------------------------------------------- purged k-fold


@pytest.mark.parametrize(("n", "k", "purge", "embargo"), [
    (9, 3, 0, 0), (9, 3, 1, 0), (12, 3, 1, 1), (100, 5, 3, 7), (101, 2, 10, 5), (2148, 10, 5, 21),
])  # fmt: skip
def test_purged_kfold_equals_skfolio_cpcv_machinery_with_one_test_fold(n, k, purge, embargo):
    theirs, _ = _sk_cpcv(n, k, 1, purge, embargo)
    _same(purged_kfold(n, k, purge=purge, embargo=embargo), theirs)


@settings(max_examples=80, deadline=None)
@given(n=st.integers(2, 200), k=st.integers(2, 12), purge=st.integers(0, 15),
       embargo=st.integers(0, 15))  # fmt: skip
def test_purged_kfold_property_hand_rule_and_invariants(n, k, purge, embargo):
    if n < k:
        with pytest.raises(ParameterError, match=r"n must be >= "):
            purged_kfold(n, k, purge=purge, embargo=embargo)
        return
    bounds = _hand_bounds(n, k)
    trains = [_hand_fold_train(n, [b], purge, embargo) for b in bounds]
    if any(len(t) == 0 for t in trains):
        with pytest.raises(ParameterError, match="every split needs a train bar"):
            purged_kfold(n, k, purge=purge, embargo=embargo)
        return
    got = list(purged_kfold(n, k, purge=purge, embargo=embargo))
    _same(got, [(t, np.arange(a, b)) for t, (a, b) in zip(trains, bounds, strict=True)])
    np.testing.assert_array_equal(np.concatenate([te for _, te in got]), np.arange(n))  # once each
    for tr, te in got:
        assert not np.intersect1d(tr, te).size
        before, after = tr[tr < te[0]], tr[tr > te[-1]]
        assert not before.size or te[0] - before[-1] > purge
        assert not after.size or after[0] - te[-1] > purge + embargo


def test_purged_kfold_after_test_drops_purge_plus_embargo_like_skfolio():
    """Purge is two-sided (skfolio's purged_size) and the embargo adds to it after the test."""
    tr, te = list(purged_kfold(30, 3, purge=2, embargo=3))[1]
    assert te.tolist() == list(range(10, 20))
    assert tr.tolist() == list(range(0, 8)) + list(range(25, 30))


def test_purged_kfold_remainder_goes_to_last_fold_unlike_sklearn_kfold():
    from sklearn.model_selection import KFold

    ours = [len(te) for _, te in purged_kfold(11, 3)]
    sklearn = [len(te) for _, te in KFold(3).split(np.zeros(11))]
    assert ours == [3, 3, 5] and sklearn == [4, 4, 3]


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    ((10, 1), {}, r"purged_kfold: k must be >= 2, got k=1"),
    ((3, 4), {}, r"n must be >= 4, got n=3"),
    ((10, 2), {"purge": -1}, r"purge must be >= 0, got purge=-1"),
    ((10, 2), {"embargo": -3}, r"embargo must be >= 0, got embargo=-3"),
    ((10, True), {}, r"k must be an integer, got k=True"),
    ((10, 2), {"purge": 5}, r"every split needs a train bar.*purge=5, embargo=0.*folds \(0,\)"),
])  # fmt: skip
def test_purged_kfold_bad_input_raises_named_rule(args, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        purged_kfold(*args, **kwargs)


# ----------------------------------------------------------------------------- CPCV


@pytest.mark.parametrize(("n", "n_folds", "n_test_folds", "purge", "embargo"), [
    (12, 3, 2, 0, 0), (12, 3, 2, 1, 0), (12, 3, 2, 0, 1), (100, 6, 2, 3, 5), (103, 6, 3, 2, 2),
    (250, 10, 8, 4, 10), (97, 8, 4, 0, 3), (2148, 10, 2, 5, 10), (2148, 12, 6, 3, 5),
])  # fmt: skip
def test_cpcv_equals_skfolio(n, n_folds, n_test_folds, purge, embargo):
    theirs, _ = _sk_cpcv(n, n_folds, n_test_folds, purge, embargo)
    ours = list(combinatorial_purged_cv(n, n_folds, n_test_folds, purge=purge, embargo=embargo))
    _same(ours, theirs)
    labels = fold_labels(n, n_folds)
    for (_, te), (_, ste) in zip(ours, theirs, strict=True):  # back into skfolio's fold list
        pieces = [te[labels[te] == f] for f in np.unique(labels[te])]
        assert len(pieces) == len(ste) and all(map(np.array_equal, pieces, ste))


@st.composite
def _cpcv_settings(draw):
    n_folds = draw(st.integers(3, 9))
    n_test_folds = draw(st.integers(2, n_folds - 1))
    n = draw(st.integers(n_folds * 3, 240))
    room = n // n_folds - 2  # skfolio accepts purge + embargo < n // n_folds - 1
    purge = draw(st.integers(0, room))
    embargo = draw(st.integers(0, room - purge))
    return n, n_folds, n_test_folds, purge, embargo


@settings(max_examples=80, deadline=None)
@given(_cpcv_settings())
def test_cpcv_property_equals_skfolio(setting):
    n, n_folds, n_test_folds, purge, embargo = setting
    theirs, cv = _sk_cpcv(n, n_folds, n_test_folds, purge, embargo)
    if any(len(tr) == 0 for tr, _ in theirs):  # skfolio yields an empty train set; we refuse
        with pytest.raises(ParameterError, match="every split needs a train bar"):
            combinatorial_purged_cv(n, n_folds, n_test_folds, purge=purge, embargo=embargo)
        return
    _same(combinatorial_purged_cv(n, n_folds, n_test_folds, purge=purge, embargo=embargo), theirs)


@settings(max_examples=60, deadline=None)
@given(n_folds=st.integers(2, 9), data=st.data(), n=st.integers(9, 150),
       purge=st.integers(0, 6), embargo=st.integers(0, 6))  # fmt: skip
def test_cpcv_property_hand_rule_and_invariants(n_folds, data, n, purge, embargo):
    """Beyond skfolio's range too (one test fold, large purge): the stated rule, bar by bar."""
    n_test_folds = data.draw(st.integers(1, n_folds - 1))
    bounds = _hand_bounds(n, n_folds)
    combos = cpcv_test_folds(n_folds, n_test_folds)
    trains = [_hand_fold_train(n, [bounds[f] for f in c], purge, embargo) for c in combos]
    call = lambda: combinatorial_purged_cv(n, n_folds, n_test_folds, purge=purge, embargo=embargo)  # noqa: E731
    if any(len(t) == 0 for t in trains):
        with pytest.raises(ParameterError, match="every split needs a train bar"):
            call()
        return
    got = list(call())
    tests = [np.concatenate([np.arange(*bounds[f]) for f in c]) for c in combos]
    _same(got, list(zip(trains, tests, strict=True)))
    for tr, te in got:
        assert not np.intersect1d(tr, te).size and len(te) + len(tr) <= n


@pytest.mark.parametrize(("n_folds", "n_test_folds"),
                         [(3, 2), (4, 2), (5, 3), (6, 2), (8, 4), (10, 8), (12, 5), (12, 6)])
def test_cpcv_paths_equal_skfolio(n_folds, n_test_folds):
    cv = CombinatorialPurgedCV(n_folds=n_folds, n_test_folds=n_test_folds)
    np.testing.assert_array_equal(cpcv_test_folds(n_folds, n_test_folds), cv.test_set_index)
    np.testing.assert_array_equal(cpcv_paths(n_folds, n_test_folds), cv.recombined_paths.T)
    np.testing.assert_array_equal(cpcv_path_ids(n_folds, n_test_folds), cv.get_path_ids())
    phi = math.comb(n_folds, n_test_folds) * n_test_folds / n_folds
    assert n_cpcv_paths(n_folds, n_test_folds) == cv.n_test_paths == phi


@settings(max_examples=40, deadline=None)
@given(n_folds=st.integers(2, 10), data=st.data(), n=st.integers(10, 120))
def test_cpcv_paths_cover_every_bar_once_per_path(n_folds, data, n):
    n_test_folds = data.draw(st.integers(1, n_folds - 1))
    splits = list(combinatorial_purged_cv(n, n_folds, n_test_folds))
    paths, ids = cpcv_paths(n_folds, n_test_folds), cpcv_path_ids(n_folds, n_test_folds)
    labels = fold_labels(n, n_folds)
    assert paths.shape == (n_cpcv_paths(n_folds, n_test_folds), n_folds)
    for p, row in enumerate(paths):
        bars = np.concatenate([splits[s][1][labels[splits[s][1]] == f] for f, s in enumerate(row)])
        np.testing.assert_array_equal(bars, np.arange(n))  # the path is one full backtest
        for f, s in enumerate(row):  # and path_ids names this path for that (split, fold)
            j = int(np.flatnonzero(cpcv_test_folds(n_folds, n_test_folds)[s] == f)[0])
            assert ids[s, j] == p
    assert sorted(ids.ravel().tolist()) == sorted(list(range(len(paths))) * n_folds)


def test_cpcv_paths_for_sixteen_folds_match_itertools_by_hand():
    """S = 16 (the PBO setting; skfolio's quadratic get_path_ids is too slow to compare)."""
    import itertools

    combos = list(itertools.combinations(range(16), 8))
    testing = {f: [s for s, c in enumerate(combos) if f in c] for f in range(16)}
    paths = cpcv_paths(16, 8)
    assert paths.shape == (6435, 16) and n_cpcv_paths(16, 8) == 12870 * 8 // 16
    assert all(paths[:, f].tolist() == testing[f] for f in range(16))
    ids = cpcv_path_ids(16, 8)
    assert all(ids[s, j] == testing[f].index(s) for s in range(0, 12870, 97)
               for j, f in enumerate(combos[s]))  # fmt: skip


def test_cpcv_one_test_fold_is_purged_kfold_where_skfolio_refuses():
    with pytest.raises(ValueError, match="n_test_folds"):
        CombinatorialPurgedCV(n_folds=5, n_test_folds=1)
    _same(combinatorial_purged_cv(50, 5, 1, purge=2, embargo=1),
          list(purged_kfold(50, 5, purge=2, embargo=1)))  # fmt: skip


def test_cpcv_accepts_purge_skfolio_refuses_and_keeps_gaps():
    with pytest.raises(ValueError, match="purged_size"):
        next(CombinatorialPurgedCV(n_folds=4, n_test_folds=2, purged_size=5,
                                   embargo_size=4).split(np.zeros((40, 1))))  # fmt: skip
    for tr, te in combinatorial_purged_cv(40, 4, 2, purge=5, embargo=4):
        gaps = np.abs(tr[:, None] - te[None, :])
        assert tr.size and gaps.min() > 5


def test_cpcv_refuses_an_empty_train_set_that_skfolio_yields():
    theirs, _ = _sk_cpcv(30, 3, 2, 4, 4)  # train fold 1 between test folds 0 and 2 loses 12 > 10
    assert len(theirs[1][0]) == 0
    with pytest.raises(ParameterError, match=r"purge=4, embargo=4 leave none when folds \(0, 2\)"):
        combinatorial_purged_cv(30, 3, 2, purge=4, embargo=4)


@pytest.mark.parametrize(("args", "match"), [
    ((100, 1, 1), r"n_folds must be >= 2, got n_folds=1"),
    ((100, 5, 0), r"n_test_folds must be >= 1, got n_test_folds=0"),
    ((100, 5, 5), r"n_test_folds must be < n_folds .*n_test_folds=5, n_folds=5"),
    ((10**6, 20, 10), rf"must be <= {MAX_COMBINATIONS} splits, got C\(20, 10\)=184756"),
    ((4, 5, 2), r"n must be >= 5, got n=4"),
    ((100, 5.0, 2), r"n_folds must be an integer, got n_folds=5.0"),
])  # fmt: skip
def test_cpcv_bad_input_raises_named_rule(args, match):
    with pytest.raises(ParameterError, match=match):
        combinatorial_purged_cv(*args)


def test_cpcv_negative_embargo_raises_named_rule():
    with pytest.raises(ParameterError, match=r"combinatorial_purged_cv: embargo must be >= 0, got embargo=-1"):
        combinatorial_purged_cv(100, 5, 2, embargo=-1)


def test_splitters_validate_when_called_not_when_iterated():
    with pytest.raises(ParameterError):
        purged_kfold(10, 2, purge=5)  # no next(): the error comes at the call
