"""Real headless Chromium (Debian's binary, no browser download) against Voila and the report.

Skipped only when no Chromium is installed and WORKBENCH_REQUIRE_BROWSER is unset; CI sets
it (and installs chromium), so there the test must run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser
if CHROMIUM is None:
    if os.environ.get("WORKBENCH_REQUIRE_BROWSER"):
        raise RuntimeError("WORKBENCH_REQUIRE_BROWSER is set but no chromium binary is installed")
    pytestmark = [pytestmark, pytest.mark.skip(reason="Debian chromium not installed (apt-get install chromium)")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def voila_url():
    """The dashboard served as `workbench dashboard` serves it: loopback, a fresh token."""
    from workbench.adapters.voila_server import new_token, voila_command

    launch = voila_command(ROOT / "notebooks" / "dashboard.ipynb", _free_port(), token=new_token())
    proc = subprocess.Popen(launch.argv, env={**os.environ, **launch.env}, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(launch.url, timeout=1)  # noqa: S310 - loopback only
            break
        except urllib.error.HTTPError:
            break  # it answers
        except Exception:
            if proc.poll() is not None:
                raise RuntimeError(proc.stdout.read().decode()) from None
            time.sleep(0.3)
    yield launch.url
    proc.terminate()
    proc.wait(timeout=20)


def _equity_tail(page):
    return page.evaluate("() => { const d = document.querySelector('.js-plotly-plot').data[0]; "
                         "return [d.y.length, d.y[d.y.length - 1]]; }")


def test_dashboard_chart_changes_when_the_dropdown_changes(chromium, voila_url):
    page = chromium.new_page()
    page.goto(voila_url, timeout=120_000)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=120_000)
    before = _equity_tail(page)
    select = page.locator(".widget-dropdown select").first
    assert select.input_value() == "GOOG"
    select.select_option("SPX")
    page.wait_for_function(
        "(old) => { const d = document.querySelector('.js-plotly-plot').data[0];"
        " return d.y.length !== old[0] || d.y[d.y.length - 1] !== old[1]; }",
        arg=before, timeout=60_000,
    )
    after = _equity_tail(page)
    assert after != before
    assert after[0] == 5031  # one point per SPX bar
    title = page.locator(".js-plotly-plot .gtitle").text_content()
    assert "SPX" in title
    page.close()


def test_report_html_renders_plotly_with_the_network_blocked(chromium, tmp_path, monkeypatch):
    from workbench.report import run_notebook

    monkeypatch.setenv("WORKBENCH_REPORTS_DIR", str(tmp_path))

    nb, html = run_notebook(ROOT / "notebooks" / "backtest.ipynb", tmp_path / "r.ipynb",
                            {"symbol": "GOOG", "params": "fast: 5, slow: 15"}, progress=False)
    page = chromium.new_page()
    external = []

    def block(route):
        if route.request.url.startswith(("http://", "https://")):
            external.append(route.request.url)
            return route.abort()
        return route.continue_()

    page.route("**/*", block)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(html.as_uri())
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
    # candlesticks, equity, trades; the tearsheet's growth of 1, drawdown, monthly heatmap, yearly bars
    assert page.locator(".js-plotly-plot").count() == 7
    assert external == [] and errors == []
    page.close()
