"""VaR speed (issue 11, section 4), each figure beside a reference in the same process.

1. Monte Carlo VaR, 100,000 paths × 50 assets (target <= 1 s): ``monte_carlo_var``
   (seeded Generator, Cholesky, VaR + ES + standard error) beside plain numpy
   ``rng.multivariate_normal(mu, cov, n) @ w`` + ``np.quantile``.
2. Rolling 250-day historical VaR, 20 years (5,040 daily bars) × 50 assets (target
   <= 0.5 s): ``rolling_historical_var`` (both conventions) beside pandas
   ``DataFrame.rolling(250).quantile(0.01)`` (linear interpolation), and the largest
   difference between the ``"linear"`` figures and pandas'.

Synthetic data (seeded); best of ``REPEAT`` runs; no timed assertions.

    .venv/bin/python bench/bench_risk.py
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from workbench.risk.var import monte_carlo_var, rolling_historical_var

REPEAT = 3
N_ASSETS, N_PATHS, YEARS = 50, 100_000, 20


def best(fn) -> tuple[float, object]:
    times, out = [], None
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def returns_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    loadings = rng.normal(0.0, 1.0, (N_ASSETS, 3))
    factors = rng.standard_normal((rows, 3)) * 0.006
    idio = rng.standard_t(5, (rows, N_ASSETS)) * 0.008
    idx = pd.bdate_range("2005-01-03", periods=rows, tz="UTC")
    return pd.DataFrame(factors @ loadings.T + idio, index=idx, columns=[f"A{i:02d}" for i in range(N_ASSETS)])


def bench_monte_carlo() -> None:
    frame = returns_frame(1000)
    w = np.full(N_ASSETS, 1.0 / N_ASSETS)
    t_wb, res = best(lambda: monte_carlo_var(frame, w, 0.99, n_paths=N_PATHS, seed=1))

    def reference() -> float:
        rng = np.random.default_rng(1)
        x = frame.to_numpy()
        sims = rng.multivariate_normal(x.mean(axis=0), np.cov(x, rowvar=False), N_PATHS) @ w
        return -float(np.quantile(sims, 0.01))

    t_ref, ref = best(reference)
    print(f"Monte Carlo VaR {N_PATHS:,} paths x {N_ASSETS} assets (target <= 1 s)")
    print(f"  workbench monte_carlo_var    {t_wb * 1e3:8.1f} ms   VaR99 {res.value:.6f} "
          f"± {res.standard_error:.6f} (ES {res.expected_shortfall:.6f})")
    print(f"  numpy multivariate_normal    {t_ref * 1e3:8.1f} ms   VaR99 {ref:.6f}")
    print(f"  difference / standard error  {abs(res.value - ref) / res.standard_error:8.2f}")


def bench_rolling() -> None:
    frame = returns_frame(252 * YEARS)
    t_inv, inv = best(lambda: rolling_historical_var(frame, 250, 0.99))
    t_lin, lin = best(lambda: rolling_historical_var(frame, 250, 0.99, convention="linear"))
    t_pd, ref = best(lambda: -frame.rolling(250).quantile(0.01))
    diff = float(np.nanmax(np.abs(lin.to_numpy() - ref.to_numpy())))
    print(f"\nRolling 250-day historical VaR99, {len(frame):,} bars x {N_ASSETS} assets (target <= 0.5 s)")
    print(f"  workbench inverted_cdf       {t_inv * 1e3:8.1f} ms")
    print(f"  workbench linear             {t_lin * 1e3:8.1f} ms")
    print(f"  pandas rolling().quantile    {t_pd * 1e3:8.1f} ms   max |linear - pandas| {diff:.1e}")
    print(f"  mean VaR99 inverted_cdf {np.nanmean(inv.to_numpy()):.6f}  linear {np.nanmean(lin.to_numpy()):.6f}")


if __name__ == "__main__":
    bench_monte_carlo()
    bench_rolling()
