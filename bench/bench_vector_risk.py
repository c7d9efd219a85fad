"""A risk profile on the vectorized engine: what the replay through the RiskMonitor costs.

The workload: the long/short SMA 10/30 crossover on the GOOG sample (daily, 2004-2020),
20 shares, 0.1% commission, under three profiles that deny or cut orders. For each:

- the vectorized engine with the profile (vectorbt runs + the replay of every order);
- the reference in the same process: one vectorbt run of the *final* effective target
  without a profile (``run_signals`` on the target the replay converged to), so the
  difference is the replay's own cost;
- the event engine with the same profile (the two must fill and log the same).

Run: ``.venv/bin/python bench/bench_vector_risk.py``
"""

from __future__ import annotations

import time

import numpy as np

import workbench as wb
from workbench.api import bind, make_spec, prepare_prices
from workbench.engines import vectorized
from workbench.risk.limits import LongOnly, MaxOrderNotional, MaxPositionWeight

PROFILES = {
    "LongOnly": (LongOnly(),),
    "MaxOrderNotional 6,000": (MaxOrderNotional(limit=6_000),),
    "MaxPositionWeight 0.5": (MaxPositionWeight(limit=0.5),),
}


def best(fn, k: int = 5) -> float:  # type: ignore[no-untyped-def]
    out = float("inf")
    for _ in range(k):
        t = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t)
    return out


def main() -> None:
    prices = wb.load_prices("GOOG")
    params = {"fast": 10, "slow": 30, "allow_short": True}
    print(f"SMA 10/30 long/short on GOOG ({len(prices):,} daily bars), 20 shares, 0.1% commission; best of 5")
    print(f"{'profile':24s} {'vectorized':>11s} {'vbt runs':>9s} {'reference':>10s} {'event':>9s}  agree")
    for name, limits in PROFILES.items():
        kw = {"risk": wb.RiskProfile(limits=limits), "size": 20, "commission": 0.001}
        spec = make_spec("sma_crossover", params, engine="vectorized", **kw)
        frame, symbols = prepare_prices(spec.strategy, prices)
        spec = bind(spec, frame, symbols)
        target = spec.strategy.target(frame)
        inst = spec.instruments[0]
        run = vectorized.run_signals(frame, target, inst, spec)
        walk = run.walk
        final = np.sign(run.positions.to_numpy())  # the effective target the replay converged to
        plain = spec.replace(risk=None)
        eff = target.copy()
        eff[:] = final
        t_vz = best(lambda: vectorized.run_signals(frame, target, inst, spec))  # noqa: B023
        t_ref = best(lambda: vectorized.run_signals(frame, eff.clip(lower=0), inst, plain))  # noqa: B023
        t_ev = best(lambda: wb.backtest("sma_crossover", prices, params, engine="event", **kw), 3)  # noqa: B023
        ok = wb.compare_engines("sma_crossover", prices, params, **kw).ok
        print(f"{name:24s} {t_vz * 1e3:9.1f}ms {walk.runs:9d} {t_ref * 1e3:8.1f}ms {t_ev * 1e3:7.1f}ms  {ok}")


if __name__ == "__main__":
    main()
