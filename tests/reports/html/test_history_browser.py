"""The history section in a real headless Chromium: the trend charts render, offline, without errors.

Screenshots land in ``tests/artifacts/`` (git-ignored). Locally the test skips when Chromium is
missing; under CI (``CI=true``) it fails instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from paths import TESTS
from snapshot_factories import changed_shop, weekly_history

from orchscan.reports.html.render import render_html

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("ORCHSCAN_CHROMIUM", "/usr/bin/chromium")


def _chromium() -> str:
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "the playwright package is not installed"
    if executable is None:
        reason = f"no Chromium at {CHROMIUM} (set ORCHSCAN_CHROMIUM or install chromium)"
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests must run under CI: {reason}")
        pytest.skip(reason)
    assert executable is not None
    return executable


def test_trend_charts_render_offline_without_console_errors(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    path = tmp_path / "report.html"
    path.write_text(render_html(changed_shop(), history=weekly_history(12)), encoding="utf-8")
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            page.click('a[href="#changes"]')
            charts: list[dict[str, Any]] = page.eval_on_selector_all(
                "#changes figure.trend-chart",
                """figures => figures.map(f => {
                    const svg = f.querySelector('svg'), box = svg.getBoundingClientRect();
                    const card = f.getBoundingClientRect();
                    return {title: f.querySelector('figcaption').textContent, width: box.width,
                            height: box.height, inside: box.right <= card.right + 0.5,
                            lines: svg.querySelectorAll('polyline').length,
                            dots: svg.querySelectorAll('circle').length,
                            drawn: Array.from(svg.querySelectorAll('polyline')).every(
                                p => p.getTotalLength() > 0)};
                })""",
            )
            ARTIFACTS = TESTS / "artifacts"
            ARTIFACTS.mkdir(exist_ok=True)
            page.locator("#changes").screenshot(path=str(ARTIFACTS / "history-section.png"))
        finally:
            browser.close()
    assert errors == []
    assert all(url.startswith("file://") for url in requests), requests
    assert [c["title"] for c in charts] == [
        "Orchestrators",
        "Flows",
        "Findings by severity",
        "Calls between services",
    ]
    for chart in charts:
        assert chart["width"] > 200 and chart["height"] > 100 and chart["inside"], chart
        assert chart["drawn"] and chart["dots"] == 12 * chart["lines"], chart
    assert [c["lines"] for c in charts] == [1, 1, 4, 1]
