"""quantstats tearsheets, written offline.

quantstats downloads a benchmark from Yahoo when it is given a ticker string, so the
benchmark here is always a **price series from local data**: a pandas Series, a
:class:`BacktestResult` (its equity), or a sample symbol name that is loaded with
:func:`workbench.load_prices` (offline: the sample or the local cache). Its returns are
aligned to the strategy's bars. The HTML is rendered to memory and written atomically.
"""

from __future__ import annotations

import logging
import re
import tempfile
import warnings
from pathlib import Path

import pandas as pd

from workbench._fs import atomic_write
from workbench.errors import ParameterError
from workbench.strategy.result import BacktestResult

__all__ = ["quantstats_html", "benchmark_returns"]


def _naive(s: pd.Series) -> pd.Series:
    idx = s.index
    if isinstance(idx, pd.DatetimeIndex) and idx.tz is not None:
        s = s.copy()
        s.index = idx.tz_convert("UTC").tz_localize(None)
    return s


def benchmark_returns(benchmark: pd.Series | BacktestResult | str, index: pd.DatetimeIndex) -> pd.Series:
    """Simple returns of a local benchmark price series on ``index`` (prices ffilled)."""
    if isinstance(benchmark, BacktestResult):
        prices = benchmark.equity
        name = benchmark.spec.strategy.name
    elif isinstance(benchmark, str):
        from workbench.adapters.sample import sample_prices

        prices = sample_prices(benchmark)["Close"]
        name = benchmark
    elif isinstance(benchmark, pd.Series):
        prices = benchmark
        name = str(benchmark.name or "benchmark")
    else:
        raise ParameterError(f"benchmark must be a price Series, a BacktestResult or a sample symbol, got {type(benchmark).__name__}")
    aligned = prices.reindex(prices.index.union(index)).ffill().reindex(index)
    if aligned.isna().all():
        raise ParameterError(f"benchmark {name!r} has no prices between {index[0]} and {index[-1]}")
    return aligned.pct_change().rename(name)


def quantstats_html(
    result: BacktestResult,
    path: str | Path,
    benchmark: pd.Series | BacktestResult | str | None = None,
    title: str | None = None,
) -> Path:
    """Write quantstats' full HTML tearsheet of ``result`` to ``path`` (no network).

    quantstats draws with matplotlib; it draws on the Agg backend here and the caller's
    backend (a notebook's inline one, say) is restored afterwards, even on error.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    previous = matplotlib.get_backend()
    plt.switch_backend("Agg")
    try:
        return _write_tearsheet(result, Path(path), benchmark, title)
    finally:
        plt.switch_backend(previous)


def _write_tearsheet(
    result: BacktestResult, path: Path, benchmark: pd.Series | BacktestResult | str | None, title: str | None
) -> Path:
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # no Arial here: fine
    import quantstats as qs

    rets = _naive(result.returns.dropna().rename(result.spec.strategy.name))
    bench = None
    if benchmark is not None:
        bench = _naive(benchmark_returns(benchmark, result.equity.index)).reindex(rets.index).fillna(0.0)
    ppy = int(round(float(result.stats["periods_per_year"])))
    title = title or result.spec.label
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tearsheet.html"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # matplotlib tick-label notices
            qs.reports.html(rets, benchmark=bench, output=str(out), title=title, periods_per_year=ppy,
                            rf=float(result.stats["risk_free_rate"]), match_dates=False)  # fmt: skip
        html = out.read_text(encoding="utf-8")
    # the template's favicon is fetched from qtpylib.io when the page opens: keep it offline
    html = re.sub(r'<link[^>]*href="https?://[^"]*"[^>]*>', "", html)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, html.encode("utf-8"))
    return path
