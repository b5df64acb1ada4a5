"""The HTML report in a real headless Chromium: offline load, filters, sorting, copy, and no injection."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from analysis_factories import hostile_analysis, large_analysis, shop_analysis
from report_browser import Page, graph_id

from orchscan.reports.html.render import render_html

pytestmark = pytest.mark.browser

DRAFT = (
    "arazzo: 1.0.1\ninfo:\n  title: Place order\n  version: 0.1.0\nworkflows:\n  - workflowId: placeOrder\n"
)


@pytest.fixture
def shop(browser: Any, tmp_path: Path) -> Iterator[tuple[Page, str]]:
    html = render_html(shop_analysis(), arazzo={"checkout:POST /checkout": DRAFT})
    page = Page(browser, html, tmp_path / "report.html")
    yield page, html
    page.close()


def test_page_loads_offline_without_errors(shop: tuple[Page, str]) -> None:
    page, _ = shop
    assert page.errors == []
    assert all(url.startswith("file://") for url in page.requests), page.requests
    for section in ("summary", "landscape", "orchestrations", "flow-kinds", "teams", "findings", "services"):
        assert page.page.locator(f"section#{section}").is_visible()
    assert page.count_visible("#graph g.svc") == 17
    assert page.count_visible("#graph g.link") == 32
    assert page.page.locator("#graph-status").inner_text() == "17 of 17 services shown"
    assert page.count_visible("svg.sequence") == 4
    page.screenshot("shop-report")
    page.screenshot("shop-graph", "#landscape")
    page.screenshot("shop-checkout-flow", "#flow-0")
    page.screenshot("shop-flow-kinds", "#flow-kinds")
    page.screenshot("shop-teams", "#teams")


def test_severity_and_rule_filters_hide_rows(shop: tuple[Page, str]) -> None:
    page, _ = shop
    rows = "#findings-table tr.finding"
    assert page.count_visible(rows) == 9
    page.page.select_option("#severity-filter", "high")
    assert page.count_visible(rows) == 2
    assert page.page.locator("#findings-status").inner_text() == "2 of 9 findings shown"
    page.page.select_option("#severity-filter", "medium")
    assert page.count_visible(rows) == 8
    page.page.select_option("#rule-filter", "duplicated-flow")
    assert page.count_visible(rows) == 1
    page.page.select_option("#severity-filter", "high")
    assert page.count_visible(rows) == 0
    page.page.select_option("#severity-filter", "")
    page.page.select_option("#rule-filter", "")
    assert page.count_visible(rows) == 9
    assert page.errors == []


def test_role_filter_and_infrastructure_collapse(shop: tuple[Page, str]) -> None:
    page, _ = shop
    page.page.locator('.role-filter[value="service"]').uncheck()
    assert page.count_visible("#graph g.svc.role-service") == 0
    assert page.count_visible("#graph g.svc") == 10
    assert page.count_visible('#services-table tr[data-role="service"]') == 0
    # Edges to a hidden service go with it.
    roles = {s.name: s.role for s in shop_analysis().services}
    kept = [e for e in shop_analysis().edges if "service" not in (roles[e.caller], roles[e.callee])]
    assert page.count_visible("#graph g.link") == len(kept) == 12
    page.page.locator("#collapse-infra").check()
    assert page.count_visible("#graph g.svc.role-infrastructure") == 0
    assert page.page.locator("#graph-status").inner_text() == "7 of 17 services shown"
    page.screenshot("shop-graph-filtered", "#landscape")
    page.page.locator('.role-filter[value="service"]').check()
    page.page.locator("#collapse-infra").uncheck()
    assert page.count_visible("#graph g.svc") == 17
    assert page.errors == []


def test_service_focus_highlights_the_neighbourhood(shop: tuple[Page, str]) -> None:
    page, html = shop
    checkout = graph_id("checkout", html)
    page.page.select_option("#focus", checkout)
    # checkout with cart, inventory, shipping, payment, kafka, postgres and web-gateway.
    assert 17 - page.count_dimmed("#graph g.svc") == 8
    assert page.page.locator(f"#{checkout}").get_attribute("class").split().count("is-focus") == 1
    assert 32 - page.count_dimmed("#graph g.link") == 7
    assert "focus: checkout and 7 neighbours" in page.page.locator("#graph-status").inner_text()
    page.screenshot("shop-graph-focus", "#landscape")
    gateway = graph_id("web-gateway", html)
    page.page.locator(f"#{gateway}").click()
    assert page.page.input_value("#focus") == gateway
    assert 17 - page.count_dimmed("#graph g.svc") == 7  # the gateway, its 5 backends and notification
    page.page.locator(f"#{gateway}").click()
    assert page.count_dimmed("#graph g.svc") == 0
    assert page.errors == []


def test_service_table_sorts_by_clicked_column(shop: tuple[Page, str]) -> None:
    page, _ = shop
    first = "#services-table tbody tr:first-child td:first-child"
    assert page.page.inner_text(first) == "checkout"  # by score, as the analysis sorts
    page.page.click("#services-table th:nth-child(6) button")
    order = page.page.eval_on_selector_all(
        "#services-table tbody tr", "rows => rows.map(r => Number(r.cells[5].dataset.sort))"
    )
    assert order == sorted(order)
    page.page.click("#services-table th:nth-child(6) button")
    assert page.page.inner_text(first) == "web-gateway"  # 25,300 requests
    assert page.page.get_attribute("#services-table th:nth-child(6)", "aria-sort") == "descending"
    page.page.click("#services-table th:nth-child(1) button")
    names = page.page.eval_on_selector_all(
        "#services-table tbody tr", "rows => rows.map(r => r.cells[0].innerText)"
    )
    assert names == sorted(names)
    assert page.errors == []


def test_copy_button_uses_the_clipboard(shop: tuple[Page, str]) -> None:
    page, _ = shop
    page.page.click('button.copy[data-target="flow-0-arazzo"]')
    status = page.page.locator("#flow-0 .copy-status")
    status.wait_for(state="visible")
    page.page.wait_for_function("document.querySelector('#flow-0 .copy-status').textContent !== ''")
    assert status.inner_text() == "Copied"
    assert page.page.evaluate("navigator.clipboard.readText()") == DRAFT
    assert page.errors == []


def test_copy_button_falls_back_without_the_clipboard_api(browser: Any, tmp_path: Path) -> None:
    html = render_html(shop_analysis(), arazzo={"checkout:POST /checkout": DRAFT})
    page = Page(
        browser,
        html,
        tmp_path / "report.html",
        init_script="Object.defineProperty(navigator, 'clipboard', {value: undefined});",
    )
    try:
        page.page.click('button.copy[data-target="flow-0-arazzo"]')
        text = page.page.locator("#flow-0 .copy-status").inner_text()
        assert text in ("Copied", "Selected: press Ctrl+C to copy")
        # The selection covers the whole draft (a selection's text drops the final line break).
        assert page.page.evaluate("window.getSelection().toString()") == DRAFT.rstrip("\n")
        assert page.errors == []
    finally:
        page.close()


TRAP = """
window.__trapped = [];
Object.defineProperty(window, '__pwned', {
  set(v) { window.__trapped.push(String(v)); }, get() { return undefined; },
});
for (const name of ['alert', 'confirm', 'prompt']) {
  window[name] = (m) => { window.__trapped.push(name + ':' + m); };
}
"""


def test_hostile_landscape_executes_nothing(browser: Any, tmp_path: Path) -> None:
    html = render_html(
        hostile_analysis(), arazzo={"checkout<script>window.__pwned=1</script>": "x: '<img src=x>'"}
    )
    page = Page(browser, html, tmp_path / "hostile.html", init_script=TRAP)
    try:
        # Move over and click what a reviewer would: nodes, table cells, sequence diagrams.
        for selector in ("#graph g.svc", "#services-table tbody td:first-child", "svg.sequence g.step"):
            for element in page.page.locator(selector).all()[:12]:
                element.dispatch_event("mouseover")
                element.hover(force=True)
        page.page.locator("#graph g.svc").first.click()
        injected = page.page.evaluate(
            """() => ({
                elements: document.querySelectorAll('img, iframe, object, embed, base, form, link').length,
                scripts: document.scripts.length,
                handlers: Array.from(document.querySelectorAll('*')).flatMap(
                    e => Array.from(e.attributes).filter(a => a.name.startsWith('on')).map(a => a.name)),
                trapped: window.__trapped,
            })"""
        )
        assert injected == {"elements": 0, "scripts": 1, "handlers": [], "trapped": []}
        assert page.dialogs == []
        assert page.errors == []
        visible = page.page.locator("#summary").inner_text()
        assert "checkout<script>window.__pwned=1</script>" in visible
        page.screenshot("hostile-report")
    finally:
        page.close()


def test_fallback_graph_without_dot_is_interactive(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    html = render_html(shop_analysis())
    page = Page(browser, html, tmp_path / "fallback.html")
    try:
        assert page.page.locator("#graph-notice").is_visible()
        assert page.count_visible("#graph g.svc") == 17
        page.page.select_option("#focus", graph_id("checkout", html))
        assert 17 - page.count_dimmed("#graph g.svc") == 8
        assert page.errors == []
        page.screenshot("fallback-graph", "#landscape")
    finally:
        page.close()


def test_large_landscape_stays_usable(browser: Any, tmp_path: Path) -> None:
    analysis = large_analysis()
    html = render_html(analysis)
    page = Page(browser, html, tmp_path / "large.html")
    try:
        assert page.count_visible("#graph g.svc") == 300
        hub = next(s for s in analysis.services if s.role == "orchestrator")
        page.page.select_option("#focus", graph_id(hub.name, html))
        near = {e.callee for e in analysis.edges if e.caller == hub.name}
        near |= {e.caller for e in analysis.edges if e.callee == hub.name}
        assert 300 - page.count_dimmed("#graph g.svc") == len(near | {hub.name})
        page.page.locator('.role-filter[value="service"]').uncheck()
        assert page.count_visible("#graph g.svc") == 300 - sum(s.role == "service" for s in analysis.services)
        assert page.errors == []
        page.screenshot("large-graph-focus", "#landscape")
    finally:
        page.close()
