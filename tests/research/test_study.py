"""wb.optimize: every trial in the store, the winner's overfitting statistics by default
(trials counted from the store, PSR, DSR, PBO, MinTRL, MinBTL), recomputable by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.adapters.experiments import SQLiteStore
from workbench.errors import ParameterError
from workbench.research.overfitting import deflated_sharpe_ratio, pbo_cscv, sharpe_moments

GOOG = wb.load_prices("GOOG")
SPACE = {"fast": [5, 10, 20, 40], "slow": [20, 50, 100, 200]}


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "opt.sqlite")


def test_a_grid_search_reports_its_winner_and_how_much_to_believe_it(store: SQLiteStore) -> None:
    opt = wb.optimize("sma_crossover", GOOG, SPACE, engine="vectorized", commission=0.001, n_blocks=8, store=store)
    assert len(opt.trials) == 14 and opt.skipped == 2, "fast >= slow is rejected by the strategy itself"
    j = int(opt.trials["sharpe"].idxmax())
    assert opt.best_params == {**opt.trials.loc[j, ["fast", "slow"]].to_dict(), "allow_short": False}
    assert opt.best.stats["sharpe"] == pytest.approx(opt.trials.loc[j, "sharpe"], rel=1e-9)
    assert opt.best.stats["n_trades"] == opt.trials.loc[j, "n_trades"]
    r = opt.returns.to_numpy()[1:]
    m = sharpe_moments(r[:, j])
    srs = r.mean(axis=0) / r.std(axis=0, ddof=1)
    o = opt.overfitting
    assert o["n_trials"] == 14 and o["n_trials_here"] == 14
    assert o["dsr"] == pytest.approx(deflated_sharpe_ratio(m.sr, m.n, m.skew, m.kurt, trials_sr=srs), rel=1e-12)
    assert o["pbo"] == pbo_cscv(r, S=8).pbo
    assert 0 <= o["pbo"] <= 1 and o["dsr"] <= o["psr"]
    assert store.count(kind="trial", parent=opt.id) == 14
    assert store.frame(kind="backtest")["parent"].tolist() == [opt.id], "the winner is kept whole"


def test_trials_are_counted_across_searches_of_the_same_strategy_and_data(store: SQLiteStore) -> None:
    first = wb.optimize("sma_crossover", GOOG, SPACE, engine="vectorized", n_blocks=4, store=store)
    second = wb.optimize("sma_crossover", GOOG, {"fast": [7, 9], "slow": [60, 90]}, engine="vectorized", n_blocks=4,
                         store=store)  # fmt: skip
    assert second.overfitting["n_trials"] == 14 + 4 and second.overfitting["n_trials_here"] == 4
    other = wb.optimize("sma_crossover", GOOG.iloc[:1500], {"fast": [7, 9], "slow": [60, 90]}, engine="vectorized",
                        n_blocks=4, store=store)  # fmt: skip
    assert other.overfitting["n_trials"] == 4, "other bars: a new count"
    assert first.overfitting["dsr"] != second.overfitting["dsr"]


def test_both_engines_give_the_same_trials(store: SQLiteStore) -> None:
    space = {"fast": [10, 20], "slow": [50, 100]}
    vz = wb.optimize("sma_crossover", GOOG, space, engine="vectorized", commission=0.001, n_blocks=4, store=None)
    ev = wb.optimize("sma_crossover", GOOG, space, engine="event", commission=0.001, n_blocks=4, store=None)
    pd.testing.assert_frame_equal(vz.trials, ev.trials, rtol=1e-9)
    assert vz.overfitting["pbo"] == ev.overfitting["pbo"]


def test_random_and_optuna_are_seeded(store: SQLiteStore) -> None:
    space = {"fast": list(range(5, 40, 5)), "slow": list(range(50, 250, 25))}
    a = wb.optimize("sma_crossover", GOOG, space, method="random", n_trials=12, seed=3, engine="vectorized", store=None)
    b = wb.optimize("sma_crossover", GOOG, space, method="random", n_trials=12, seed=3, engine="vectorized", store=None)
    c = wb.optimize("sma_crossover", GOOG, space, method="random", n_trials=12, seed=4, engine="vectorized", store=None)
    pd.testing.assert_frame_equal(a.trials, b.trials)
    assert not a.trials[["fast", "slow"]].equals(c.trials[["fast", "slow"]])
    rng = {"fast": (3, 40), "slow": (50, 200)}
    x = wb.optimize("sma_crossover", GOOG, rng, method="optuna", n_trials=8, seed=1, engine="vectorized", store=None)
    y = wb.optimize("sma_crossover", GOOG, rng, method="optuna", n_trials=8, seed=1, engine="vectorized", store=None)
    pd.testing.assert_frame_equal(x.trials, y.trials)
    assert x.trials["fast"].between(3, 40).all() and x.trials["slow"].between(50, 200).all()


def test_any_callable_of_the_returns_is_an_objective() -> None:
    def sortino(r: pd.Series) -> float:
        return float(r.mean() / r[r < 0].std())

    opt = wb.optimize("sma_crossover", GOOG, SPACE, objective=sortino, engine="vectorized", n_blocks=4, store=None)
    assert opt.objective == "sortino"
    best = int(opt.trials["sortino"].idxmax())
    assert opt.trials.loc[best, "sortino"] == pytest.approx(sortino(opt.returns.iloc[:, best]))
    assert opt.best_params["fast"] == opt.trials.loc[best, "fast"]


def test_figures_and_bad_input() -> None:
    opt = wb.optimize("sma_crossover", GOOG, SPACE, engine="vectorized", n_blocks=4, store=None)
    heat = opt.heatmap("fast", "slow")
    assert np.nanmax(np.asarray(heat.data[0].z, dtype=float)) == pytest.approx(opt.trials["sharpe"].max())
    assert len(opt.is_oos_figure().data[0].x) == opt.cscv.n_combinations
    for kwargs, match in [({"method": "bayes"}, "method must be one of"), ({"objective": "luck"}, "objective must be"),
                          ({"method": "random"}, "needs n_trials"), ({"method": "optuna"}, "needs n_trials")]:  # fmt: skip
        with pytest.raises(ParameterError, match=match):
            wb.optimize("sma_crossover", GOOG, SPACE, store=None, **kwargs)
    with pytest.raises(ParameterError, match="at most 20,000 trials"):
        wb.optimize("sma_crossover", GOOG, {"fast": list(range(2, 300)), "slow": list(range(3, 300))}, store=None)


def test_walk_forward_reoptimises_each_fold_and_trades_only_its_test_window(store: SQLiteStore) -> None:
    from workbench.research.splits import walk_forward
    from workbench.research.study import walk_forward_optimize

    space = {"fast": [5, 10, 20], "slow": [50, 100]}
    wf = walk_forward_optimize("sma_crossover", GOOG, space, train=750, test=250, engine="vectorized",
                               commission=0.001, n_blocks=4, store=store)  # fmt: skip
    splits = list(walk_forward(len(GOOG), 750, 250))
    assert len(wf.folds) == len(splits) == 5
    for (tr, te), (_, row), opt in zip(splits, wf.folds.iterrows(), wf.searches, strict=True):
        assert opt.returns.index.equals(GOOG.index[tr]), "the search saw the train bars only"
        assert (row["test_start"], row["test_end"]) == (GOOG.index[te[0]], GOOG.index[te[-1]])
        assert row["fast"] == opt.best_params["fast"] and row["slow"] == opt.best_params["slow"]
    assert wf.oos_returns.index.equals(GOOG.index[np.concatenate([te for _, te in splits])])
    # the last fold's OOS returns are the winner's backtest on train + test, test bars only
    tr, te = splits[-1]
    span = GOOG.iloc[tr[0] : te[-1] + 1]
    again = wb.backtest("sma_crossover", span, wf.searches[-1].best_params, commission=0.001, store=None)
    pd.testing.assert_series_equal(wf.oos_returns.loc[span.index[-250:]], again.returns.iloc[-250:], check_names=False)
    r = again.returns.iloc[-250:].to_numpy()
    assert wf.folds["oos_sharpe"].iloc[-1] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252), rel=1e-9)
    assert (wf.folds["degradation"] == wf.folds["is_sharpe"] - wf.folds["oos_sharpe"]).all()
    assert store.count(kind="trial") == sum(len(o.trials) for o in wf.searches)
    folds = store.frame(kind="fold", parent=wf.id)
    assert len(folds) == 5, "every fold's out-of-sample run is kept under the walk-forward's id"
    last = store.load(folds["run_id"].iloc[-1])
    pd.testing.assert_series_equal(last.equity, again.equity, check_names=False)
    assert wf.oos_equity.iloc[-1] == pytest.approx(float(np.prod(1 + wf.oos_returns.to_numpy())))
    assert len(wf.figure().data) == 1
