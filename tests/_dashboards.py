"""Shared harness for the dashboard browser tests: serve a notebook with Voila, drive it in
Debian's headless Chromium, record every request that leaves 127.0.0.1, save screenshots.

Use from a test module::

    from tests._dashboards import needs_chromium, open_page, screenshot, serve, wait_generation

    pytestmark = needs_chromium

    @pytest.fixture(scope="module")
    def url(tmp_path_factory):
        with serve(ROOT / "notebooks" / "x.ipynb", env={"WORKBENCH_STORE": ...}) as server:
            yield server.url

The ``chromium`` fixture (tests/conftest.py, one browser per session) is the browser.
``open_page`` aborts (and records in ``page.external``) every request to a host other than
the server; a test asserts ``page.external == []`` and ``page.errors == []`` at the end.
Screenshots go to ``test-artifacts/screenshots/`` (``WORKBENCH_ARTIFACTS`` overrides the
folder), which CI keeps as the run's artefacts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from workbench.adapters.voila_server import RunningServer
from workbench.adapters.voila_server import serve as voila_serve

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip

if CHROMIUM is None and os.environ.get("WORKBENCH_REQUIRE_BROWSER"):
    raise RuntimeError("WORKBENCH_REQUIRE_BROWSER is set but no chromium binary is installed")
needs_chromium = [pytest.mark.browser] + (
    [pytest.mark.skip(reason="Debian chromium not installed (apt-get install chromium)")] if CHROMIUM is None else []
)


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("WORKBENCH_ARTIFACTS", ROOT / "test-artifacts")) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def serve(notebook: Path, *, env: dict[str, str] | None = None, preheat: bool = False, max_kernels: int = 4,
          timeout_s: float = 90) -> Iterator[RunningServer]:  # fmt: skip
    """Voila on ``notebook`` exactly as ``workbench dashboard`` launches it (loopback, a token);
    its log goes to the artefacts folder."""
    log = artifacts_dir().parent / f"voila-{notebook.stem}-{os.getpid()}-{time.time_ns()}.log"
    with voila_serve(notebook, log=log, env=env, preheat=preheat, max_kernels=max_kernels,
                     timeout_s=timeout_s) as server:  # fmt: skip
        yield server


def open_page(chromium, url: str, *, width: int = 1400, height: int = 1000, timeout_ms: int = 90_000):  # noqa: ANN001
    """A page on ``url`` that refuses (and records) requests to any other host, and records JS errors."""
    page = chromium.new_page(viewport={"width": width, "height": height})
    host = urlparse(url).netloc
    page.external, page.errors = [], []

    def route(r):  # noqa: ANN001
        parsed = urlparse(r.request.url)
        if parsed.scheme in ("http", "https", "ws", "wss") and parsed.netloc != host:
            page.external.append(r.request.url)
            return r.abort()
        return r.continue_()

    page.route("**/*", route)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    try:
        page.goto(url, timeout=timeout_ms)
    except PlaywrightTimeout:  # Voila (0.5.13) now and then never finishes streaming a page: one retry
        warnings.warn(f"Voila page did not finish loading in {timeout_ms} ms; retried once", stacklevel=2)
        page.goto(url, timeout=timeout_ms)
    return page


def generation(page) -> int:  # noqa: ANN001
    """The dashboard Status widget's update counter (-1 while busy or absent)."""
    return page.evaluate("() => { const s = document.querySelector('.wb-status [data-state]');"
                         " return s && s.dataset.state !== 'busy' ? Number(s.dataset.gen) : -1; }")  # fmt: skip


def wait_generation(page, after: int, timeout_ms: int = 120_000) -> int:  # noqa: ANN001
    """Wait until the Status shows an update newer than ``after`` (ready or error); return it."""
    page.wait_for_function(
        "(after) => { const s = document.querySelector('.wb-status [data-state]');"
        " return s && s.dataset.state !== 'busy' && Number(s.dataset.gen) > after; }",
        arg=after, timeout=timeout_ms,
    )
    return generation(page)


def status_state(page) -> str:  # noqa: ANN001
    return page.evaluate("() => document.querySelector('.wb-status [data-state]').dataset.state")


def plot_data(page, title_contains: str) -> list[dict]:  # noqa: ANN001
    """The traces (``x``, ``y``, ``z``, ``name``, ``type``) of the plotly figure whose title contains the text.

    Read from ``_fullData`` (what plotly.js drew): plotly.py sends numpy arrays as
    ``{dtype, bdata}`` objects, which stay encoded in ``el.data``.
    """
    return page.evaluate(
        "(t) => { for (const el of document.querySelectorAll('.js-plotly-plot')) {"
        "  const title = (el.layout && el.layout.title && (el.layout.title.text || el.layout.title)) || '';"
        "  if (String(title).includes(t)) return (el._fullData || el.data).map(d => ({name: d.name, type: d.type,"
        "    x: d.x ? Array.from(d.x, String) : null, y: d.y ? Array.from(d.y) : null,"
        "    z: d.z ? Array.from(d.z, r => Array.from(r)) : null})); }"
        "  return null; }",
        title_contains,
    )


def plot_titles(page) -> list[str]:  # noqa: ANN001
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('.js-plotly-plot'), el =>"
        " String((el.layout && el.layout.title && (el.layout.title.text || el.layout.title)) || ''))"
    )


def screenshot(page, name: str) -> Path:  # noqa: ANN001
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
