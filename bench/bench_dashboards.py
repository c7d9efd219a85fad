"""First meaningful paint of each Voila dashboard in real headless Chromium.

Target (issue 13): the first chart drawn <= 3 s after the server is up. Each dashboard is
served as ``workbench dashboard NAME`` serves it (loopback, a token) on a throw-away
experiment store seeded with three runs (two backtests and a multi-strategy book):

- ``cold``: no warm kernel (``--warm 0``); the visit waits for a kernel start, the imports
  and the notebook; each visit to a fresh server, right after it answers HTTP;
- ``warm``: the default (``--warm 1``): a kernel already started with the libraries
  imported waits for the visitor, who still runs the notebook (fresh data from the store);
  each visit once the server logs a warm kernel ready. Best and median of ``--visits``.

"Paint" is from ``page.goto`` to the first plotly SVG visible. The reference in the same
run is a one-cell notebook drawing one plotly figure the same way (the floor that Voila,
Chromium and plotly.js cost here). Requests to any other host are refused and counted.

    .venv/bin/python bench/bench_dashboards.py [--visits 3] [--only portfolio]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.adapters.voila_server import serve  # noqa: E402

DASHBOARDS = {"portfolio": "dashboard_portfolio.ipynb", "risk": "dashboard_risk.ipynb", "lab": "dashboard_lab.ipynb"}
TARGET_S = 3.0
REFERENCE = '''import ipywidgets as widgets
import plotly.graph_objects as go
from IPython.display import display

import workbench as wb

result = wb.backtest("sma_crossover", "GOOG", store=None)
out = widgets.Output()
wb.dashboards.show_figure(out, go.Figure(go.Scatter(x=result.equity.index, y=result.equity.to_numpy()),
                                         layout={"title": "reference: GOOG equity"}))
display(out)
'''


def seed_store(path: Path) -> None:
    """Two backtests and a two-sleeve book, as `make demo` would leave (smaller)."""
    import workbench as wb

    store = wb.SQLiteStore(path)
    wb.backtest("sma_crossover", "GOOG", {"fast": 10, "slow": 30}, commission=0.001, store=store)
    wb.backtest("sma_crossover", "SPX", {"fast": 20, "slow": 100}, commission=0.001, store=store)
    params = wb.runbook.PortfolioParams(sleeves="trend: sma_crossover(fast: 20, slow: 100) @ SPX; "
                                                "tsmom: ts_momentum @ GOOG", allocation="equal_weight")  # fmt: skip
    wb.backtest(params.book, wb.load_prices(params.symbols), commission=0.001, store=store)


def reference_notebook(folder: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(REFERENCE)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "reference.ipynb"
    nbformat.write(nb, path)
    return path


def wait_warm(log: Path, count: int, timeout_s: float = 120) -> None:
    """Until the server has logged ``count`` warm kernels ready."""
    deadline = time.perf_counter() + timeout_s
    while len(re.findall(r"warm kernel \S+ ready", log.read_text(errors="replace"))) < count:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"no warm kernel after {timeout_s} s: {log}")
        time.sleep(0.1)


HANG_S = 45.0  # a visit whose first chart is not drawn by then counts as hung


def paint(browser, url: str) -> tuple[float | None, int]:  # noqa: ANN001
    """Seconds from goto to the first visible plotly SVG (None: hung), and requests refused."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    host, refused = urlparse(url).netloc, []

    def route(r):  # noqa: ANN001
        if urlparse(r.request.url).netloc not in (host, ""):
            refused.append(r.request.url)
            return r.abort()
        return r.continue_()

    page.route("**/*", route)
    t0 = time.perf_counter()
    try:
        page.goto(url, timeout=HANG_S * 1000, wait_until="commit")
        left = HANG_S - (time.perf_counter() - t0)
        page.wait_for_selector(".js-plotly-plot .main-svg", state="visible", timeout=max(left, 1) * 1000)
        seconds: float | None = time.perf_counter() - t0
    except PlaywrightTimeout:
        seconds = None
    page.close(run_before_unload=True)  # Voila shuts the visitor's kernel down, freeing its slot
    return seconds, len(refused)


def measure(browser, notebook: Path, env: dict[str, str], visits: int, logs: Path) -> dict:  # noqa: ANN001
    """``visits`` cold visits (a fresh server each) and ``visits`` warm ones (one server)."""
    cold, refused = [], 0
    for i in range(visits):
        with serve(notebook, log=logs / f"{notebook.stem}-cold{i}.log", env=env) as server:
            seconds, n = paint(browser, server.url)
            cold.append(seconds)
            refused += n
    warm = []
    log = logs / f"{notebook.stem}-warm.log"
    with serve(notebook, log=log, env=env, warm=1) as server:
        for i in range(visits):
            wait_warm(log, i + 1)
            time.sleep(0.5)
            seconds, n = paint(browser, server.url)
            warm.append(seconds)
            refused += n
    return {"cold": cold, "warm": warm, "refused": refused}


def _figures(values: list[float | None]) -> str:
    done = [v for v in values if v is not None]
    hung = len(values) - len(done)
    if not done:
        return f"{'-':>6} {'-':>6} {hung:>4}"
    return f"{min(done):>6.2f} {statistics.median(done):>6.2f} {hung:>4}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, default=3)
    parser.add_argument("--only", choices=sorted(DASHBOARDS), action="append")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("bench_dashboards: no chromium (apt-get install chromium); skipped")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-dash-") as tmp:
        folder = Path(tmp)
        store = folder / "experiments.sqlite"
        seed_store(store)
        env = {"WORKBENCH_STORE": str(store), "WORKBENCH_CACHE_DIR": str(folder / "cache")}
        targets = {"reference": reference_notebook(folder)}
        targets |= {name: ROOT / "notebooks" / DASHBOARDS[name] for name in (args.only or DASHBOARDS)}
        print(f"first meaningful paint (s), {os.cpu_count()} cores; target <= {TARGET_S:g} s with a warm kernel")
        print(f"{'':<10} {'cold: best median hung':>22}   {'warm: best median hung':>22}  refused")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            for name, notebook in targets.items():
                m = measure(browser, notebook, env, args.visits, folder)
                print(f"{name:<10} {_figures(m['cold']):>22}   {_figures(m['warm']):>22}  {m['refused']:>7d}", flush=True)
            browser.close()
        print(f"a visit counts as hung when no chart is drawn within {HANG_S:g} s (Voila 0.5.13 now and then "
              "never finishes streaming a page: see the README)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
