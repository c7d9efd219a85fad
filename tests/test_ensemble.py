"""Signal aggregation (issue 12 §3): vote, weighted and stacked ensembles of signal
strategies, against hand-made truth tables, independent computations on GOOG, the
look-ahead guard, both engines, spec identity and pickling."""

import multiprocessing as mp
import operator
import pickle
import re
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.linear_model import LogisticRegression

import workbench as wb
from workbench.strategies import BUILTINS, SignalVote, StackedSignal, WeightedSignal
from workbench.strategy.base import FunctionStrategy


# -- members ----------------------------------------------------------------------------
def column(prices, col, sign=1.0):
    """A member that holds what column ``col`` of the frame says (times ``sign``)."""
    return sign * prices[col].astype(float)


def knows_the_next_move(prices):
    """A cheat: +1 when the next close is higher, else -1 (unknown at the last bar: -1)."""
    c = prices["Close"]
    return pd.Series(np.where(c.shift(-1) > c, 1.0, -1.0), index=prices.index)


def two(prices):
    """A member that breaks the target contract."""
    return pd.Series(2.0, index=prices.index)


def member(col, sign=1.0):
    return FunctionStrategy(fn=column, kwargs=(("col", col), ("sign", sign)))


def frame(rows):
    """Member targets as the columns m0, m1, ... of a frame on daily bars."""
    a = np.asarray(rows, dtype=float).reshape(len(rows), -1)
    idx = pd.date_range("2024-01-01", periods=len(a), freq="D", tz="UTC")
    return pd.DataFrame(a, index=idx, columns=[f"m{j}" for j in range(a.shape[1])])


def members_of(df, sign=1.0):
    return tuple(member(c, sign) for c in df.columns)


def real_members():
    return (wb.SMACrossover(fast=10, slow=50, allow_short=True), wb.TimeSeriesMomentum(allow_short=True),
            wb.MeanReversion(allow_short=True))  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Waits(wb.BarStrategy):
    def on_bar(self, ctx):
        pass


# -- vote: the rule by hand -------------------------------------------------------------
VOTE_TABLE = [  # (a, b, c) -> default (2 of 3), min_agree=3, min_agree=1
    ((1, 1, 1), 1, 1, 1),
    ((1, 1, 0), 1, 0, 1),
    ((1, 1, -1), 1, 0, 1),
    ((1, 0, 0), 0, 0, 1),
    ((1, 0, -1), 0, 0, 0),
    ((1, -1, -1), -1, 0, -1),
    ((0, 0, 0), 0, 0, 0),
    ((0, -1, 0), 0, 0, -1),
    ((-1, -1, 0), -1, 0, -1),
    ((-1, -1, -1), -1, -1, -1),
]


def test_vote_three_members_truth_table_by_hand():
    df = frame([r[0] for r in VOTE_TABLE])
    for k, col in ((None, 1), (3, 2), (1, 3)):
        got = SignalVote(members=members_of(df), min_agree=k).target(df)
        assert got.tolist() == [float(r[col]) for r in VOTE_TABLE], f"min_agree={k}"
        assert got.index.equals(df.index)


def test_vote_four_members_tie_is_flat_and_majority_is_three():
    df = frame([(1, 1, -1, -1), (1, 1, 0, 0), (1, 1, 1, 0), (-1, -1, -1, 1), (1, 0, 0, 0)])
    assert SignalVote(members=members_of(df)).target(df).tolist() == [0, 0, 1, -1, 0]
    assert SignalVote(members=members_of(df), min_agree=2).target(df).tolist() == [0, 1, 1, -1, 0]
    assert SignalVote(members=members_of(df), min_agree=1).target(df).tolist() == [0, 1, 1, -1, 1]


def vote_by_counting(row, k):
    """The vote of one bar, from a count of the members' signs."""
    n = Counter(row)
    if n[1] > n[-1] and n[1] >= k:
        return 1.0
    if n[-1] > n[1] and n[-1] >= k:
        return -1.0
    return 0.0


def test_vote_on_goog_matches_a_bar_by_bar_count(goog):
    members = real_members()
    targets = pd.concat({m.name: m.target(goog) for m in members}, axis=1)
    for k in (None, 1, 3):
        need = 2 if k is None else k
        expected = [vote_by_counting(tuple(r), need) for r in targets.itertuples(index=False)]
        got = SignalVote(members=members, min_agree=k).target(goog)
        np.testing.assert_array_equal(got.to_numpy(), expected)
        assert len(set(got.unique())) >= 2  # the vote is not constant on the real data


# -- weighted: the rule by hand ---------------------------------------------------------
def test_weighted_truth_table_by_hand():
    rows = [(1, 1, 1), (1, 0, 0), (0, 1, 1), (0, 1, 0), (0, 0, 1), (1, -1, -1), (-1, 1, 0), (-1, 0, 1), (-1, -1, 0)]
    # s = 0.5a + 0.3b + 0.2c:  1, .5, .5, .3, .2, 0, -.2, -.3, -.8 against threshold 0.25
    df = frame(rows)
    got = WeightedSignal(members=members_of(df), weights=(0.5, 0.3, 0.2), threshold=0.25).target(df)
    assert got.tolist() == [1, 1, 1, 1, 0, 0, 0, -1, -1]
    at0 = WeightedSignal(members=members_of(df), weights=(0.5, 0.3, 0.2)).target(df)
    assert at0.tolist() == [1, 1, 1, 1, 1, 0, -1, -1, -1]


def test_weighted_float_dust_at_the_threshold_is_no_vote():
    df = frame([(1, 1, -1), (-1, -1, 1)])  # s = +-(0.5 + 0.3 - 0.2): 0.6000000000000001 in floats
    s = WeightedSignal(members=members_of(df), weights=(0.5, 0.3, 0.2), threshold=0.6)
    assert s.score(df).iloc[0] > 0.6  # the dust is there...
    assert s.target(df).tolist() == [0, 0]  # ...and decides nothing


def test_weighted_negative_weight_trades_against_its_member_and_default_is_equal():
    df = frame([(1, 1), (1, -1), (-1, 1), (0, 1)])
    assert WeightedSignal(members=members_of(df), weights=(1, -1)).target(df).tolist() == [0, 1, -1, -1]
    assert WeightedSignal(members=members_of(df)).target(df).tolist() == [1, 0, 0, 1]


def test_weighted_on_goog_matches_an_integer_computation(goog):
    members = real_members()
    t = pd.concat({m.name: m.target(goog) for m in members}, axis=1).astype(int)
    # weights (2, 1, 1), threshold 1/4: s > 1/4  <=>  2a + b + c > 1 (exact, in integers)
    num = 2 * t.iloc[:, 0] + t.iloc[:, 1] + t.iloc[:, 2]
    expected = np.where(num > 1, 1.0, np.where(num < -1, -1.0, 0.0))
    got = WeightedSignal(members=members, weights=(2, 1, 1), threshold=0.25).target(goog)
    np.testing.assert_array_equal(got.to_numpy(), expected)
    assert (num.abs() == 1).any()  # the boundary s = +-1/4 occurs and is flat


# -- invariants -------------------------------------------------------------------------
targets_matrix = st.integers(1, 6).flatmap(
    lambda m: arrays(np.int8, st.tuples(st.integers(1, 25), st.just(m)), elements=st.sampled_from([-1, 0, 1]))
)


@settings(max_examples=60, deadline=None)
@given(targets_matrix, st.data())
def test_vote_equals_a_count_and_is_symmetric(a, data):
    df = frame(a)
    n = a.shape[1]
    k = data.draw(st.one_of(st.none(), st.integers(1, n)))
    vote = SignalVote(members=members_of(df), min_agree=k).target(df).to_numpy()
    need = n // 2 + 1 if k is None else k
    np.testing.assert_array_equal(vote, [vote_by_counting(tuple(r), need) for r in a])
    negated = SignalVote(members=members_of(df, sign=-1.0), min_agree=k).target(df).to_numpy()
    np.testing.assert_array_equal(negated, -vote)  # negating every member negates the vote
    order = data.draw(st.permutations(range(n)))
    shuffled = SignalVote(members=tuple(members_of(df)[j] for j in order), min_agree=k).target(df)
    np.testing.assert_array_equal(shuffled.to_numpy(), vote)  # members are unordered


@settings(max_examples=40, deadline=None)
@given(targets_matrix, st.integers(1, 5), st.data())
def test_vote_of_identical_members_is_that_member(a, copies, data):
    df = frame(a)
    k = data.draw(st.one_of(st.none(), st.integers(1, copies)))
    vote = SignalVote(members=(member("m0"),) * copies, min_agree=k).target(df)
    np.testing.assert_array_equal(vote.to_numpy(), df["m0"].to_numpy())


@settings(max_examples=60, deadline=None)
@given(targets_matrix, st.data())
def test_weighted_equals_an_exact_rational_computation(a, data):
    df = frame(a)
    n = a.shape[1]
    w = data.draw(st.lists(st.integers(-4, 4), min_size=n, max_size=n).filter(any))
    eighths = data.draw(st.integers(0, 7))
    got = WeightedSignal(members=members_of(df), weights=tuple(w), threshold=eighths / 8).target(df).to_numpy()
    t, den = Fraction(eighths, 8), sum(abs(x) for x in w)
    s = [Fraction(int(np.dot(w, r)), den) for r in a]
    np.testing.assert_array_equal(got, [1.0 if x > t else -1.0 if x < -t else 0.0 for x in s])


@settings(max_examples=40, deadline=None)
@given(targets_matrix, st.data())
def test_weighted_with_one_nonzero_weight_is_that_members_sign(a, data):
    df = frame(a)
    n = a.shape[1]
    j = data.draw(st.integers(0, n - 1))
    w = [0.0] * n
    w[j] = data.draw(st.sampled_from([-3.5, -1.0, 0.25, 2.0]))
    threshold = data.draw(st.floats(0.0, 0.99))
    got = WeightedSignal(members=members_of(df), weights=tuple(w), threshold=threshold).target(df)
    np.testing.assert_array_equal(got.to_numpy(), np.sign(w[j]) * a[:, j])


@settings(max_examples=40, deadline=None)
@given(targets_matrix)
def test_weighted_equal_weights_at_zero_is_the_plurality_vote(a):
    df = frame(a)
    weighted = WeightedSignal(members=members_of(df)).target(df)
    vote = SignalVote(members=members_of(df), min_agree=1).target(df)
    np.testing.assert_array_equal(weighted.to_numpy(), vote.to_numpy())


# -- stacked ----------------------------------------------------------------------------
def test_stacked_refit_equals_an_independent_logistic_regression(goog):
    members, train, refit = real_members(), 252, 63
    s = StackedSignal(members=members, train=train, refit=refit, C=0.5, seed=3)
    warm = max(m.warmup for m in members) + train
    assert s.warmup == warm
    got, p_up = s.target(goog), s.confidence(goog)
    assert (got.iloc[:warm] == 0).all() and got.iloc[warm:].isin([-1.0, 1.0]).all()
    X = pd.concat([m.target(goog) for m in members], axis=1).to_numpy()
    up = (goog["Close"].shift(-1) > goog["Close"]).astype(int).to_numpy()
    for d in (warm, warm + 5 * refit, warm + 20 * refit):  # the first and two later refit bars
        est = LogisticRegression(C=0.5, solver="newton-cholesky", max_iter=1000, random_state=3)
        est.fit(X[d - train : d], up[d - train : d])
        seg = slice(d, d + refit)
        np.testing.assert_array_equal(got.iloc[seg].to_numpy(), np.where(est.predict(X[seg]) == 1, 1.0, -1.0))
        np.testing.assert_allclose(p_up.iloc[seg].to_numpy(), est.predict_proba(X[seg])[:, 1], rtol=1e-9)
    assert p_up.iloc[:warm].isna().all()


def test_stacked_learns_a_member_that_knows_the_next_move(goog):
    """The label of bar t is the move from t to t+1: a member holding exactly that sign is
    followed on every bar after the warm-up (a label one bar off would not be learned)."""
    cheat = FunctionStrategy(fn=knows_the_next_move)
    s = StackedSignal(members=(wb.TimeSeriesMomentum(allow_short=True), cheat), train=100, refit=50)
    got = s.target(goog)
    np.testing.assert_array_equal(got.iloc[s.warmup :].to_numpy(), cheat.target(goog).iloc[s.warmup :].to_numpy())


def test_stacked_decisions_do_not_move_when_later_data_is_cut(goog):
    s = StackedSignal(members=real_members(), train=252, refit=63)
    full = s.target(goog)
    for k in (s.warmup - 1, s.warmup, s.warmup + 62, s.warmup + 63, s.warmup + 400, len(goog) - 2):
        cut = s.target(goog.iloc[: k + 1])
        np.testing.assert_array_equal(cut.to_numpy(), full.iloc[: k + 1].to_numpy())


def test_stacked_is_deterministic_for_a_seed(goog):
    a = StackedSignal(members=real_members(), refit=126, seed=11)
    b = pickle.loads(pickle.dumps(StackedSignal(members=real_members(), refit=126, seed=11)))
    pd.testing.assert_series_equal(a.target(goog), b.target(goog))
    pd.testing.assert_series_equal(a.confidence(goog), b.confidence(goog))


def test_stacked_window_of_one_class_is_flat():
    df = frame([(1, -1), (0, 1), (-1, 0)] * 10)
    df["Close"] = np.arange(1.0, len(df) + 1)  # every close higher: every label "up"
    s = StackedSignal(members=members_of(df[["m0", "m1"]]), train=10, refit=5)
    assert (s.target(df) == 0).all() and s.confidence(df).isna().all()


# -- the look-ahead guard -----------------------------------------------------------------
@pytest.mark.parametrize(
    "strategy",
    [
        SignalVote(members=real_members()),
        WeightedSignal(members=real_members(), weights=(0.5, 0.3, 0.2), threshold=0.2),
        StackedSignal(members=real_members(), refit=126),
    ],
    ids=["vote", "weighted", "stacked"],
)
def test_ensembles_pass_the_lookahead_guard(goog, strategy):
    assert wb.check_lookahead(strategy, goog, commission=0.001) >= 50


@pytest.mark.parametrize("cls", [SignalVote, StackedSignal])
def test_a_member_that_looks_ahead_is_caught_through_the_ensemble(goog, cls):
    members = (wb.SMACrossover(allow_short=True), FunctionStrategy(fn=knows_the_next_move))
    ensemble = SignalVote(members=members, min_agree=1) if cls is SignalVote else cls(members=members, train=100)
    with pytest.raises(wb.LookAheadError, match=f"{cls.__name__} looks ahead"):
        wb.check_lookahead(ensemble, goog, cuts=4, sample=16)


# -- engines and the registry -----------------------------------------------------------
ENGINE_CASES = {
    "vote": ("vote", {"min_agree": 2}),
    "weighted_signal": ("weighted_signal", {"weights": [0.5, 0.3, 0.2], "threshold": 0.2}),
    "stacked_signal": ("stacked_signal", {"train": 252, "refit": 63}),
}


@pytest.mark.parametrize("name", sorted(ENGINE_CASES))
def test_each_ensemble_runs_alike_on_both_engines_by_its_builtin_name(goog, name):
    key, params = ENGINE_CASES[name]
    params = {"members": list(real_members()), **params}
    ev = wb.backtest(key, goog, params, engine="event", commission=0.001)
    vz = wb.backtest(key, goog, params, engine="vectorized", commission=0.001)
    assert isinstance(ev.spec.strategy, BUILTINS[key]) and ev.spec.strategy.members == real_members()
    assert ev.stats["n_trades"] > 10 and ev.stats["n_trades"] == vz.stats["n_trades"]
    np.testing.assert_allclose(ev.equity.to_numpy(), vz.equity.to_numpy(), rtol=1e-6)
    wb.compare_engines(key, goog, params, commission=0.001).raise_if_different()


def test_vote_runs_by_name_on_the_sample_symbol():
    r = wb.backtest("vote", "GOOG", {"members": [wb.SMACrossover(), wb.TimeSeriesMomentum(), wb.MeanReversion()]})
    assert r.spec.strategy.name == "SignalVote" and r.stats["n_trades"] > 0


# -- identity and pickling --------------------------------------------------------------
def test_spec_ids_are_made_of_the_members_identities():
    a, b = wb.SMACrossover(fast=10, slow=50), wb.TimeSeriesMomentum()
    vote = SignalVote(members=(a, b))
    assert vote.identity()["params"]["members"] == [a.identity(), b.identity()]
    assert vote.spec_id == SignalVote(members=[a, b]).spec_id  # a list is stored as the tuple
    others = [SignalVote(members=(a,)), SignalVote(members=(wb.SMACrossover(fast=11, slow=50), b)),
              SignalVote(members=(b, a)), SignalVote(members=(a, b), min_agree=1),
              WeightedSignal(members=(a, b)), StackedSignal(members=(a, b))]  # fmt: skip
    ids = {vote.spec_id, *(s.spec_id for s in others)}
    assert len(ids) == 1 + len(others)
    assert wb.make_spec(vote).id != wb.make_spec(others[1]).id


def test_user_members_bring_their_code_into_the_id():
    def rule_a(prices):
        return prices["Close"] * 0

    def rule_b(prices):
        return prices["Close"] * 0 + 1

    rule_b.__qualname__ = rule_a.__qualname__  # same name, different code
    va = SignalVote(members=(FunctionStrategy(fn=rule_a),))
    vb = SignalVote(members=(FunctionStrategy(fn=rule_b),))
    assert va.spec_id != vb.spec_id
    assert "fn" in va.identity()["params"]["members"][0]


def test_ensembles_pickle_with_their_members(goog):
    for s in (SignalVote(members=(*real_members(), member("Close"))), WeightedSignal(members=real_members()),
              StackedSignal(members=real_members(), refit=126)):  # fmt: skip
        back = pickle.loads(pickle.dumps(s))
        assert back == s and hash(back) == hash(s) and back.spec_id == s.spec_id
    vote = SignalVote(members=real_members())
    pd.testing.assert_series_equal(pickle.loads(pickle.dumps(vote)).target(goog), vote.target(goog))


def test_an_ensemble_crosses_a_spawned_process(goog):
    vote = WeightedSignal(members=real_members(), weights=(2, 1, 1), threshold=0.25)
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        there = pool.submit(operator.methodcaller("target", goog), vote).result(timeout=120)
    pd.testing.assert_series_equal(there, vote.target(goog))


# -- errors -----------------------------------------------------------------------------
M3 = real_members()
ERRORS = [
    (SignalVote, {"members": ()}, "SignalVote: members must be a non-empty tuple (or list) of signal strategies, got members=()"),
    (SignalVote, {"members": M3[0]}, "members must be a non-empty tuple (or list) of signal strategies, got members=SMACrossover("),
    (SignalVote, {"members": ("sma_crossover",)}, "members[0] must be a Strategy instance, got members[0]='sma_crossover'"),
    (SignalVote, {"members": [M3[0], wb.CrossSectionalMomentum()]},
     "members[1] must be a signal strategy (one instrument, target -1/0/+1), got members[1]=CrossSectionalMomentum of kind 'weights'"),
    (WeightedSignal, {"members": (Waits(),)}, "WeightedSignal: members[0] must be a signal strategy (one instrument, target -1/0/+1), got members[0]=Waits of kind 'bar'"),
    (SignalVote, {"members": M3, "min_agree": 4}, "SignalVote: min_agree must be in [1, 3], got min_agree=4"),
    (SignalVote, {"members": M3, "min_agree": 0}, "min_agree must be in [1, 3], got min_agree=0"),
    (SignalVote, {"members": M3, "min_agree": 1.5}, "min_agree must be an integer, got min_agree=1.5"),
    (WeightedSignal, {"members": M3, "weights": (1, 2)}, "WeightedSignal: weights must hold one number per member (3), got weights=(1, 2)"),
    (WeightedSignal, {"members": M3, "weights": 1.0}, "weights must hold one number per member (3), got weights=1.0"),
    (WeightedSignal, {"members": M3, "weights": (1, float("nan"), 1)}, "weights[1] must be a finite number, got weights[1]=nan"),
    (WeightedSignal, {"members": M3, "weights": (1, "2", 1)}, "weights[1] must be a finite number, got weights[1]='2'"),
    (WeightedSignal, {"members": M3, "weights": [0, 0.0, 0]}, "weights must not all be 0, got weights=(0, 0.0, 0)"),
    (WeightedSignal, {"members": M3, "threshold": 1.0}, "WeightedSignal: threshold must be in [0, 1), got threshold=1.0"),
    (WeightedSignal, {"members": M3, "threshold": -0.1}, "threshold must be in [0, 1), got threshold=-0.1"),
    (StackedSignal, {"members": M3, "train": 5}, "StackedSignal: train must be >= 10, got train=5"),
    (StackedSignal, {"members": M3, "refit": 0}, "refit must be >= 1, got refit=0"),
    (StackedSignal, {"members": M3, "model": "forest"}, "model must be 'logistic', got model='forest'"),
    (StackedSignal, {"members": M3, "C": 0.0}, "C must be in (0, inf], got C=0.0"),
    (StackedSignal, {"members": M3, "seed": -1}, "seed must be >= 0, got seed=-1"),
]  # fmt: skip


@pytest.mark.parametrize(("cls", "params", "message"), ERRORS, ids=[f"{c.__name__}-{m[:30]}" for c, _, m in ERRORS])
def test_bad_parameters_fail_naming_the_parameter_and_value(cls, params, message):
    with pytest.raises(wb.ParameterError, match=re.escape(message)):
        cls(**params)


def test_a_member_breaking_the_target_contract_is_named(goog):
    vote = SignalVote(members=(wb.SMACrossover(), FunctionStrategy(fn=two)))
    with pytest.raises(wb.ParameterError, match=re.escape("SignalVote: members[1] (") + ".*two.*target values must be"):
        vote.target(goog)
    with pytest.raises(wb.ParameterError, match="SignalVote: members"):
        wb.backtest("vote", goog, {"members": []})
