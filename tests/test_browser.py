"""Real headless Chromium (Debian's binary, no browser download) against a report (the dashboards
have their own browser tests: tests/test_dashboard_*.py).

Skipped only when no Chromium is installed and WORKBENCH_REQUIRE_BROWSER is unset; CI sets
it (and installs chromium), so there the test must run.
"""

from __future__ import annotations

from pathlib import Path

from tests._dashboards import needs_chromium

ROOT = Path(__file__).resolve().parents[1]
pytestmark = needs_chromium  # skipped only without Chromium; CI sets WORKBENCH_REQUIRE_BROWSER, which fails instead


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
