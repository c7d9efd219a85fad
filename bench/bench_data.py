"""Market-data benchmarks, each printed next to a reference run in the same process.

    .venv/bin/python bench/bench_data.py

Targets (issue 3): validate 1M bars <= 50 ms; read 1M cached bars <= 100 ms; load the whole
sample universe from the cache <= 200 ms (warm process); generate 10M synthetic bars
<= 2 s and <= 1 GB peak. Figures are the best of several runs (min), as timeit does.
"""

from __future__ import annotations

import gc
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import workbench as wb  # noqa: E402
from workbench.adapters.store import CacheKey, ParquetCache  # noqa: E402
from workbench.market import validate_ohlcv  # noqa: E402


def best(fn: Callable[[], object], repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def naive_validate(df: pd.DataFrame) -> None:
    """Reference: the same rules written the obvious pandas way."""
    p = df[["Open", "High", "Low", "Close"]]
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert np.isfinite(p).all().all() and (p > 0).all().all()
    assert (df.High >= df.Low).all() and df.Open.between(df.Low, df.High).all()
    assert df.Close.between(df.Low, df.High).all() and ~(df.Volume < 0).any()


SYNTH_CHILD = r"""
import gc, sys, time, tracemalloc
sys.path.insert(0, sys.argv[1])
from workbench.adapters.synthetic import synthetic_bars
t0 = time.perf_counter(); df = synthetic_bars(10_000_000, "1m", seed=1); dt = time.perf_counter() - t0
result = df.memory_usage(index=True).sum() / 2**20
del df; gc.collect()
tracemalloc.start()  # second run: peak of every allocation numpy and pandas make
df = synthetic_bars(10_000_000, "1m", seed=1)
peak = tracemalloc.get_traced_memory()[1] / 2**20
print(dt, peak, result)
"""


def main() -> None:
    rows: list[tuple[str, str, str, str]] = []
    bars = wb.synthetic_bars(1_000_000, "1m", seed=42)

    t_val = best(lambda: validate_ohlcv(bars))
    t_naive = best(lambda: naive_validate(bars))
    rows.append(("validate 1M bars", f"{t_val * 1e3:.1f} ms", f"{t_naive * 1e3:.1f} ms (naive pandas checks)", "<= 50 ms"))

    with tempfile.TemporaryDirectory() as tmp:
        cache = ParquetCache(tmp)
        key = CacheKey("synthetic", "SYN42", "1m")
        cache.write(key, bars, adjusted=False, covered_start=None, covered_end=None)
        t_read = best(lambda: cache.read(key))
        t_ref = best(lambda: pq.read_table(cache.path(key)).to_pandas())
        size = cache.path(key).stat().st_size / 2**20
        rows.append(("read 1M cached bars", f"{t_read * 1e3:.1f} ms", f"{t_ref * 1e3:.1f} ms (pyarrow read_table+to_pandas)",
                     f"<= 100 ms ({size:.0f} MiB file)"))  # fmt: skip
        t_csv = best(lambda: pd.read_csv(_csv(bars, tmp), index_col=0), repeat=2)
        rows.append(("  same bars from CSV", "", f"{t_csv * 1e3:.0f} ms (pandas read_csv)", ""))

        os.environ["WORKBENCH_CACHE_DIR"] = str(Path(tmp) / "sample-cache")
        symbols = wb.sample_symbols()
        for s in symbols:  # fill the cache once (a cold first run reads the CSVs)
            wb.load_prices(s)
        n_bars = sum(len(wb.load_prices(s)) for s in symbols)
        t_all = best(lambda: [wb.load_prices(s) for s in symbols])
        t_panel = best(lambda: wb.load_prices(symbols, align="union", progress=False))
        sample = wb.config.sample_dir()
        t_csvs = best(lambda: [pd.read_csv(sample / f"{s}.csv", index_col=0) for s in symbols])
        rows.append((f"whole sample from cache ({len(symbols)} symbols, {n_bars:,} bars)", f"{t_all * 1e3:.1f} ms",
                     f"{t_csvs * 1e3:.1f} ms (raw read_csv of the same files, unvalidated)", "<= 200 ms warm"))  # fmt: skip
        rows.append(("  as one union panel", f"{t_panel * 1e3:.1f} ms", "", ""))

    out = subprocess.run([sys.executable, "-c", SYNTH_CHILD, str(Path(__file__).resolve().parents[1])],
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    t_syn, peak_mb, frame_mb = float(out[0]), float(out[1]), float(out[2])
    rng = np.random.default_rng(0)
    t_ref = best(lambda: rng.standard_normal(10_000_000), repeat=3)
    rows.append(("generate 10M synthetic 1m bars (fresh process)", f"{t_syn:.2f} s",
                 f"{t_ref:.2f} s (numpy: one standard_normal(10M))",
                 f"<= 2 s, <= 1 GB: peak {peak_mb:.0f} MiB traced (the frame is {frame_mb:.0f} MiB)"))  # fmt: skip

    w = [max(len(r[i]) for r in rows) for i in range(4)]
    header = ("benchmark", "workbench", "reference (same process)", "target")
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(header)))
    for r in rows:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
    print(f"\npython {sys.version.split()[0]}, pandas {pd.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} cpus, max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")  # fmt: skip


def _csv(bars: pd.DataFrame, tmp: str) -> Path:
    path = Path(tmp) / "bars.csv"
    if not path.exists():
        bars.to_csv(path)
    return path


if __name__ == "__main__":
    main()
