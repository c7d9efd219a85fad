"""Monte Carlo robustness: the stationary bootstrap, trade resampling and parameter jitter
on the real GOOG sample, checked against closed forms and independent numpy/pandas sums."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from arch.bootstrap import optimal_block_length
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import workbench as wb
from workbench.errors import ParameterError
from workbench.research.robustness import (
    QUANTILES,
    RobustnessReport,
    block_bootstrap,
    parameter_jitter,
    trade_resampling,
)
from workbench.strategy.base import Strategy

QCOLS = ["q05", "q25", "q50", "q75", "q95"]


@dataclass(frozen=True, kw_only=True)
class OnlyOne(Strategy):
    """A strategy whose validation accepts one value only: every jittered draw is rejected."""

    level: float = 1.0

    def validate(self) -> None:
        if self.level != 1.0:
            raise ParameterError(f"level must be 1.0, got level={self.level}")

    def target(self, prices: pd.DataFrame) -> pd.Series:
        return pd.Series(0.0, index=prices.index)


@pytest.fixture(scope="module")
def result() -> wb.BacktestResult:
    return wb.backtest("sma_crossover", "GOOG")


@pytest.fixture(scope="module")
def goog_returns(goog: pd.DataFrame) -> pd.Series:
    return goog["Close"].pct_change().dropna()


def ar1(n: int, phi: float, seed: int) -> np.ndarray:
    """A strongly autocorrelated series (AR(1), sd 1 %), where blocks matter."""
    e = np.random.default_rng(seed).normal(0.0, 0.01, n)
    x = np.empty(n)
    x[0] = e[0]
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


# -- stationary block bootstrap ---------------------------------------------------------


def test_block_bootstrap_mean_of_path_means_is_the_sample_mean(goog_returns: pd.Series) -> None:
    # Given the data, each stationary-bootstrap path's mean has expectation x̄ exactly (the
    # resample is stationary with the empirical marginal); the average of B independent
    # path means is within 4 of its standard errors of x̄ (a 6e-5 chance of failing).
    rep = block_bootstrap(goog_returns, n_paths=2000, seed=3)
    means = rep.paths["mean_return"].to_numpy()
    se = means.std(ddof=1) / math.sqrt(len(means))
    assert abs(means.mean() - goog_returns.mean()) < 4 * se
    assert rep.actual["mean_return"] == pytest.approx(goog_returns.mean(), rel=1e-12)


def stationary_mean_variance(x: np.ndarray, block: float) -> float:
    """Var*(x̄*) of the wrap-around stationary bootstrap, in closed form: bars k apart are in
    one block with probability q^k (q = 1 - 1/block), and then covary by the circular
    autocovariance C(k); otherwise they are independent draws. So
    Var*(x̄*) = (C(0) + 2 Σ_{k=1}^{n-1} (1 - k/n) q^k C(k)) / n, which is σ̂²/n at block 1."""
    n, q = len(x), 1.0 - 1.0 / block
    d = x - x.mean()
    c = np.array([d @ np.roll(d, -k) / n for k in range(n)])
    k = np.arange(1, n)
    return float((c[0] + 2 * np.sum((1 - k / n) * q**k * c[1:])) / n)


@pytest.mark.parametrize("block", [1, 5, 20])
def test_block_bootstrap_variance_of_means_matches_closed_form(block: int) -> None:
    # On an AR(1) series, where the block length matters (×2.8 between 1 and 20 bars).
    # The estimate from B = 2000 paths has relative sd ≈ sqrt(2/(B-1)) ≈ 3.2 %: 15 % is
    # over 4 of them.
    x = ar1(1000, 0.6, seed=11)
    got = block_bootstrap(x, n_paths=2000, block=block, seed=0).paths["mean_return"].var(ddof=1)
    assert got == pytest.approx(stationary_mean_variance(x, block), rel=0.15)


def test_block_bootstrap_block_one_is_the_iid_bootstrap() -> None:
    # iid bootstrap: Var*(x̄*) = σ̂²/n (ddof=0), blind to the AR(1) dependence (φ = 0.6)
    # that 20-bar blocks keep.
    x = ar1(1000, 0.6, seed=11)
    assert stationary_mean_variance(x, 1) == pytest.approx(x.var(ddof=0) / len(x), rel=1e-12)
    rep = block_bootstrap(x, n_paths=2000, block=1, seed=0)
    assert rep.paths["mean_return"].var(ddof=1) == pytest.approx(x.var(ddof=0) / len(x), rel=0.15)
    blocks = block_bootstrap(x, n_paths=2000, block=20, seed=0)
    assert blocks.paths["mean_return"].var(ddof=1) > 2 * rep.paths["mean_return"].var(ddof=1)


def test_block_bootstrap_default_block_is_arch_stationary_estimate(result: wb.BacktestResult) -> None:
    rep = block_bootstrap(result, n_paths=50)
    estimate = float(optimal_block_length(result.returns.to_numpy())["stationary"].iloc[0])
    assert rep.info["block_estimate"] == pytest.approx(estimate, rel=1e-12)
    assert rep.info["block"] == pytest.approx(max(1.0, estimate), rel=1e-12)


def test_block_bootstrap_estimate_below_one_bar_is_floored_at_one(goog_returns: pd.Series) -> None:
    rep = block_bootstrap(goog_returns, n_paths=20)
    assert float(optimal_block_length(goog_returns.to_numpy())["stationary"].iloc[0]) < 1
    assert rep.info["block"] == 1.0


def test_block_bootstrap_actual_values_match_the_backtest_stats(result: wb.BacktestResult) -> None:
    rep = block_bootstrap(result, n_paths=20)
    stats = result.stats
    assert rep.info["periods_per_year"] == 252.0
    assert rep.actual["sharpe"] == pytest.approx(stats["sharpe"], rel=1e-10)
    assert rep.actual["max_drawdown"] == pytest.approx(stats["max_drawdown"], rel=1e-10)
    assert rep.actual["final_wealth"] == pytest.approx(1 + stats["total_return"], rel=1e-10)


def test_block_bootstrap_summary_quantiles_are_numpys_on_the_paths(result: wb.BacktestResult) -> None:
    rep = block_bootstrap(result, n_paths=500, block=5, seed=1)
    s = rep.summary
    for name in rep.paths.columns:
        x = rep.paths[name].to_numpy()
        np.testing.assert_allclose(s.loc[name, QCOLS].to_numpy(dtype=float), np.quantile(x, QUANTILES), rtol=1e-12)
        assert s.loc[name, "mean"] == pytest.approx(x.mean(), rel=1e-12)
        assert s.loc[name, "share_below_actual"] == np.mean(x < rep.actual[name])
    assert rep.loss_share == np.mean(rep.paths["final_wealth"] < 1)


def test_block_bootstrap_same_seed_identical_other_seed_differs(result: wb.BacktestResult) -> None:
    a, b = block_bootstrap(result, n_paths=100, seed=5), block_bootstrap(result, n_paths=100, seed=5)
    pd.testing.assert_frame_equal(a.paths, b.paths)
    pd.testing.assert_frame_equal(a.summary, b.summary)
    c = block_bootstrap(result, n_paths=100, seed=6)
    assert not np.array_equal(a.paths["final_wealth"], c.paths["final_wealth"])


def test_block_bootstrap_figure_marks_the_actual_value(result: wb.BacktestResult) -> None:
    rep = block_bootstrap(result, n_paths=50, seed=0)
    fig = rep.figure()
    assert [t.type for t in fig.data] == ["histogram"] * 4
    assert sorted(s.x0 for s in fig.layout.shapes) == sorted(rep.actual.to_numpy())


# -- trade resampling ----------------------------------------------------------------


def test_trade_permutation_keeps_final_wealth_on_every_path(result: wb.BacktestResult) -> None:
    rep = trade_resampling(result, n_paths=500, seed=0, method="permutation")
    final = rep.paths["final_wealth"].to_numpy()
    assert (final == final[0]).all()
    assert final[0] == pytest.approx(1 + result.trades["pnl"].sum() / result.spec.cash, rel=1e-12)
    assert rep.paths["max_drawdown"].nunique() > 10  # the order, and so the path, changes


def test_trade_bootstrap_changes_final_wealth_around_its_expectation(result: wb.BacktestResult) -> None:
    # m draws with replacement: E[sum] = m · mean(pnl); 4 standard errors of the average
    pnl, cash = result.trades["pnl"].to_numpy(), result.spec.cash
    rep = trade_resampling(result, n_paths=2000, seed=1, method="bootstrap")
    final = rep.paths["final_wealth"].to_numpy()
    assert final.std() > 0
    expected = 1 + len(pnl) * pnl.mean() / cash
    assert abs(final.mean() - expected) < 4 * final.std(ddof=1) / math.sqrt(len(final))


def test_trade_resampling_actual_matches_pandas_equity_of_the_trades(result: wb.BacktestResult) -> None:
    pnl, cash = result.trades["pnl"], result.spec.cash
    equity = pd.concat([pd.Series([cash]), cash + pnl.cumsum()], ignore_index=True)
    dd = float((equity / equity.cummax() - 1).min())
    for compound in (False, True):  # compounding returns on prior equity rebuild the same path
        rep = trade_resampling(result, n_paths=10, compound=compound)
        assert rep.actual["final_wealth"] == pytest.approx(equity.iloc[-1] / cash, rel=1e-12)
        assert rep.actual["max_drawdown"] == pytest.approx(dd, rel=1e-12)


def test_trade_compound_permutation_keeps_final_wealth_and_never_ruins(result: wb.BacktestResult) -> None:
    rep = trade_resampling(result, n_paths=300, seed=2, method="permutation", compound=True)
    final = rep.paths["final_wealth"].to_numpy()
    assert (final == final[0]).all()
    assert rep.info["ruin_share"] == 0.0  # no trade lost more than the equity before it


def test_trade_resampling_of_gains_only_has_no_drawdown() -> None:
    rep = trade_resampling([10.0, 5.0, 1.0, 7.0], n_paths=50, start_equity=100.0, method="bootstrap")
    assert (rep.paths["max_drawdown"] == 0).all()


def test_trade_resampling_ruin_is_counted_and_drawdown_floored() -> None:
    rep = trade_resampling([-150.0, 100.0, 100.0], n_paths=200, start_equity=100.0, method="permutation")
    assert rep.info["ruin_share"] == pytest.approx(1 / 3, abs=0.1)  # ruined when -150 comes first
    assert rep.paths["max_drawdown"].min() == -1.0


def test_trade_resampling_same_seed_identical_other_seed_differs(result: wb.BacktestResult) -> None:
    a = trade_resampling(result, n_paths=100, seed=9, method="permutation")
    pd.testing.assert_frame_equal(a.paths, trade_resampling(result, n_paths=100, seed=9, method="permutation").paths)
    assert not a.paths.equals(trade_resampling(result, n_paths=100, seed=10, method="permutation").paths)


# -- parameter jitter ----------------------------------------------------------------


@pytest.fixture(scope="module")
def jitter(goog: pd.DataFrame) -> RobustnessReport:
    return parameter_jitter("sma_crossover", goog, {"fast": 25, "slow": 30}, relative=0.3, n=24, seed=4)


def test_parameter_jitter_skips_exactly_the_combinations_the_strategy_rejects(jitter) -> None:
    trials = jitter.info["trials"]
    invalid = (trials["fast"] >= trials["slow"]) | (trials["fast"] < 2)  # SMACrossover's own rules
    assert invalid.any() and (~invalid).any()
    assert (trials["rejected"] != "").tolist() == invalid.tolist()
    assert jitter.info["skipped"] == int(invalid.sum()) == 24 - len(jitter.paths)
    assert jitter.info["jittered"] == ["fast", "slow"]  # allow_short is a bool: never jittered


def test_parameter_jitter_draws_stay_within_the_relative_band(jitter) -> None:
    trials = jitter.info["trials"]
    for name, base in (("fast", 25), ("slow", 30)):
        assert trials[name].between(round(base * 0.7) - 1, round(base * 1.3) + 1).all()
        assert trials[name].map(type).eq(int).all()


def test_parameter_jitter_runs_equal_direct_backtests(jitter, goog: pd.DataFrame) -> None:
    kept = jitter.info["trials"].query("rejected == ''").reset_index(drop=True)
    for i in (0, len(kept) - 1):
        stats = wb.backtest("sma_crossover", goog, {"fast": int(kept.fast[i]), "slow": int(kept.slow[i])}).stats
        assert jitter.paths.loc[i, "sharpe"] == stats["sharpe"]
        assert jitter.paths.loc[i, "total_return"] == stats["total_return"]
    base = wb.backtest("sma_crossover", goog, {"fast": 25, "slow": 30}).stats
    assert jitter.actual["max_drawdown"] == base["max_drawdown"]
    assert jitter.profit_share == np.mean(jitter.paths["total_return"] > 0)


def test_parameter_jitter_same_seed_identical(goog: pd.DataFrame, jitter) -> None:
    again = parameter_jitter("sma_crossover", goog, {"fast": 25, "slow": 30}, relative=0.3, n=24, seed=4)
    pd.testing.assert_frame_equal(jitter.info["trials"], again.info["trials"])
    pd.testing.assert_frame_equal(jitter.paths, again.paths)
    other = parameter_jitter("sma_crossover", goog, {"fast": 25, "slow": 30}, relative=0.3, n=24, seed=5)
    assert not jitter.info["trials"].equals(other.info["trials"])


# -- invariants -----------------------------------------------------------------------

returns_arrays = arrays(np.float64, st.integers(20, 80), elements=st.floats(-1.0, 1.0, allow_nan=False))
pnl_arrays = arrays(np.float64, st.integers(2, 40), elements=st.floats(-500.0, 500.0, allow_nan=False))


def _monotone(summary: pd.DataFrame) -> bool:
    q = summary[QCOLS].to_numpy(dtype=float)
    return bool(np.all(np.diff(q, axis=1) >= 0))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(r=returns_arrays, block=st.one_of(st.none(), st.floats(1.0, 10.0)), seed=st.integers(0, 2**32 - 1))
def test_block_bootstrap_invariants(r: np.ndarray, block: float | None, seed: int) -> None:
    rep = block_bootstrap(r, n_paths=40, block=block, seed=seed)
    dd = rep.paths["max_drawdown"]
    assert dd.between(-1.0, 0.0).all()
    assert (rep.paths["final_wealth"] >= 0).all()
    assert 1.0 <= rep.info["block"] <= len(r)
    assert _monotone(rep.summary.dropna(subset=QCOLS))


@settings(max_examples=25, deadline=None)
@given(pnl=pnl_arrays, method=st.sampled_from(["bootstrap", "permutation"]), seed=st.integers(0, 1000))
def test_trade_resampling_invariants(pnl: np.ndarray, method: str, seed: int) -> None:
    rep = trade_resampling(pnl, n_paths=40, seed=seed, start_equity=1000.0, method=method)
    assert rep.paths["max_drawdown"].between(-1.0, 0.0).all()
    assert _monotone(rep.summary)


# -- bad input ------------------------------------------------------------------------

BAD = [
    (lambda r: block_bootstrap(r, n_paths=0), "n_paths=0"),
    (lambda r: block_bootstrap(r, block=0.5), "block=0.5"),
    (lambda r: block_bootstrap(r, block=10**6), "block=1000000"),
    (lambda r: block_bootstrap(r, seed=-1), "seed=-1"),
    (lambda r: block_bootstrap(r, periods_per_year=0), "periods_per_year=0"),
    (lambda r: block_bootstrap(np.r_[r.returns.to_numpy(), np.nan]), "nan"),
    (lambda r: block_bootstrap(np.r_[r.returns.to_numpy(), -1.5]), "-1.5"),
    (lambda r: block_bootstrap(np.zeros(5)), "got 5"),
    (lambda r: trade_resampling(r, method="shuffle"), "method='shuffle'"),
    (lambda r: trade_resampling([1.0, 2.0]), "start_equity"),
    (lambda r: trade_resampling([1.0, 2.0], start_equity=-5), "start_equity=-5"),
    (lambda r: trade_resampling([-200.0, 1.0], start_equity=100, compound=True), "-100.00 before trade 1"),
    (lambda r: trade_resampling(r.trades.drop(columns="pnl")), "'pnl' column"),
    (lambda r: parameter_jitter("sma_crossover", "GOOG", relative=1.5), "relative=1.5"),
    (lambda r: parameter_jitter("sma_crossover", "GOOG", n=0), "n=0"),
    (lambda r: parameter_jitter("sma_crossover", "GOOG", names="allow_short"), "'allow_short'"),
    (lambda r: parameter_jitter(OnlyOne, "GOOG", n=3), "every one of the 3"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "named"), BAD, ids=[b[1] for b in BAD])
def test_bad_input_raises_parameter_error_naming_the_value(result: wb.BacktestResult, call, named: str) -> None:
    with pytest.raises(ParameterError) as err:
        call(result)
    assert named.lower() in str(err.value).lower()
    assert str(err.value).split(":")[0] in {"block_bootstrap", "trade_resampling", "parameter_jitter"}
