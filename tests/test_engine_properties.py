"""Hypothesis: for any target path, costs and sizing, the two engines agree on the real
sample data (fills, trades, equity), and no engine ever fills outside a bar's range."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.engines import event, vectorized
from workbench.strategy.engine import NO_HOOKS
from workbench.trading import FixedBps, PercentOfNotional

GOOG = wb.load_prices("GOOG").iloc[:400]
PANEL = wb.load_prices(["SPX", "IXIC", "GOOG"], progress=False).iloc[:300]
INST = wb.instrument_for("GOOG")
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def spec(strategy: wb.Strategy, instruments: list[wb.Instrument], **execution: object) -> wb.BacktestSpec:
    return wb.BacktestSpec(strategy=strategy, instruments=tuple(instruments), **execution)


class Weights(wb.PortfolioStrategy):
    """Stands for the strategy in a spec whose weights the test draws and passes directly."""

    def weights(self, panel: pd.DataFrame) -> pd.DataFrame:
        raise AssertionError("the drawn weights are passed to the engines directly")


@st.composite
def target_paths(draw, shorts=True):
    """Piecewise-constant +1/0/-1 paths: a few random switch points."""
    n = len(GOOG)
    k = draw(st.integers(1, 25))
    cuts = sorted(draw(st.lists(st.integers(1, n - 1), min_size=k, max_size=k, unique=True)))
    values = draw(st.lists(st.sampled_from([-1.0, 0.0, 1.0] if shorts else [0.0, 1.0]), min_size=k + 1, max_size=k + 1))
    out = np.empty(n)
    for v, a, b in zip(values, [0, *cuts], [*cuts, n], strict=True):
        out[a:b] = v
    return pd.Series(out, index=GOOG.index)


COSTS = st.tuples(st.sampled_from([0.0, 0.0005, 0.002]), st.sampled_from([0.0, 2.0, 25.0]))


@SLOW
@given(target=target_paths(), costs=COSTS, size=st.sampled_from(["all", 7]))
def test_engines_agree_for_any_target_path(target, costs, size):
    rate, bps = costs
    s = spec(wb.SMACrossover(), [INST], cash=25_000.0, commission=PercentOfNotional(rate=rate),
             slippage=FixedBps(bps=bps), sizer=size)  # fmt: skip
    ev = event.run_targets(GOOG, target, INST, s)
    vz = vectorized.run_signals(GOOG, target, INST, s)
    # an insolvent account (equity <= 0, e.g. shorting GOOG through its 2004-05 run) is
    # where the engines part: vectorbt can only cover what cash pays for, the broker covers
    # in full into negative cash (see compare_engines)
    assume(ev.equity.min() > 0)
    ef = ev.fills
    vf = vz.fills
    assert list(ef["ts"]) == list(vf["ts"]) and list(ef["side"]) == list(vf["side"])
    np.testing.assert_allclose(ef["quantity"].to_numpy(float), vf["quantity"].to_numpy(float), rtol=1e-12)
    np.testing.assert_allclose(ef["price"].to_numpy(float), vf["price"].to_numpy(float), rtol=1e-12)
    tol = 1e-6 if rate or bps else 1e-9
    np.testing.assert_allclose(ev.equity.to_numpy(), vz.equity.to_numpy(), rtol=tol)
    et, vt = ev.trades, vz.trades
    assert len(et) == len(vt)
    np.testing.assert_allclose(et["pnl"].to_numpy(float), vt["pnl"].to_numpy(float), rtol=tol, atol=1e-6)
    # every fill inside its bar
    bars = GOOG.loc[vf["ts"]]
    assert (vf["price"].to_numpy() <= bars["High"].to_numpy() + 1e-9).all()
    assert (vf["price"].to_numpy() >= bars["Low"].to_numpy() - 1e-9).all()


@st.composite
def weight_paths(draw):
    n, m = len(PANEL), 3
    k = draw(st.integers(1, 10))
    rows = sorted(draw(st.lists(st.integers(0, n - 2), min_size=k, max_size=k, unique=True)))
    w = np.full((n, m), np.nan)
    for r in rows:
        raw = np.array(draw(st.lists(st.floats(-1, 1, allow_nan=False), min_size=m, max_size=m)))
        gross = np.abs(raw).sum()
        w[r] = raw / gross if gross > 1 else raw
    return pd.DataFrame(w, index=PANEL.index, columns=["SPX", "IXIC", "GOOG"])


@SLOW
@given(weights=weight_paths(), rate=st.sampled_from([0.0, 0.001]), bps=st.sampled_from([0.0, 0.0, 1.0, 5.0]))
def test_engines_agree_for_any_weight_path(weights, rate, bps):
    """With slippage the vectorized engine refuses by name (it cannot slip-then-clamp a
    rebalance vectorbt sizes itself); the event engine runs it, every fill inside its bar.
    Without slippage the two agree fill for fill."""
    insts = [wb.instrument_for(s) for s in weights.columns]
    s = spec(Weights(), insts, cash=1_000_000.0, commission=PercentOfNotional(rate=rate), slippage=FixedBps(bps=bps))
    ev = event.run_weights(PANEL, weights, s)
    if bps:
        why = vectorized.VectorizedEngine().refusal(s, NO_HOOKS)
        assert why.startswith(f"slippage {FixedBps(bps=bps)!r} for weight strategies"), why
        for sym in ev.fills["symbol"].unique():
            f = ev.fills[ev.fills["symbol"] == sym]
            bars = PANEL[sym.split(".")[0]].loc[f["ts"]]
            assert (f["price"].to_numpy() <= bars["High"].to_numpy() + 1e-9).all()
            assert (f["price"].to_numpy() >= bars["Low"].to_numpy() - 1e-9).all()
        return
    vz = vectorized.run_weights(PANEL, weights, s)
    assume(ev.equity.min() > 0)  # solvent accounts only (see the target-path test)
    ef, vf = ev.fills, vz.fills
    key = ["ts", "symbol", "side"]
    ef, vf = ef.sort_values(key).reset_index(drop=True), vf.sort_values(key).reset_index(drop=True)
    assert ef[key].astype(str).values.tolist() == vf[key].astype(str).values.tolist()
    np.testing.assert_allclose(ef["quantity"].to_numpy(float), vf["quantity"].to_numpy(float), rtol=1e-12,
                               err_msg=repr(weights.dropna().to_dict("split")["data"]))
    np.testing.assert_allclose(ev.equity.to_numpy(), vz.equity.to_numpy(), rtol=1e-6 if rate else 1e-9)
