"""The report at landscape scale in Chromium, with and without Graphviz on the PATH.

A 300-service landscape (the ``large_analysis`` factory: long names, raw paths, a hundred spec
notices, 715 edges) and the recorded sample landscape, scanned by the CLI. For each: the graph's
first view shows every orchestrator's label, at least ``MIN_LABEL_PX`` high, overlapping no
other label; the page at 1400 px wide stays under 15,000 px until the reader opens something;
the file stays under 2 MB; nothing is written to the console. Then what a reviewer does at that
scale: see the whole landscape, zoom, find a service, pan, page through tables, follow links.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from analysis_factories import large_analysis
from click.testing import CliRunner
from paths import SAMPLE
from report_browser import Page, graph_id

from orchscan.cli import main
from orchscan.reports.html.graph_style import shorten
from orchscan.reports.html.graph_svg import MIN_LABEL_PX
from orchscan.reports.html.render import render_html
from orchscan.reports.html.view_model import PAGE_ROWS

pytestmark = pytest.mark.browser

MAX_PAGE_PX = 15_000
MAX_BYTES = 2_000_000

# Every visible node label: its text, size on screen, box, and whether it lies in the graph's
# visible box (below the sticky page header).
LABELS = """() => {
  const box = document.getElementById('graph').getBoundingClientRect();
  const header = document.querySelector('.page-header').getBoundingClientRect().bottom;
  const view = {l: Math.max(box.left, 0), t: Math.max(box.top, header, 0),
                r: Math.min(box.right, innerWidth), b: Math.min(box.bottom, innerHeight)};
  return Array.from(document.querySelectorAll('#graph g.svc'))
    .filter(n => getComputedStyle(n).display !== 'none')
    .map(n => {
      const t = n.querySelector('text');
      const r = t.getBoundingClientRect();
      const px = parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a;
      return {id: n.id, text: t.textContent, px, l: r.left, t: r.top, r: r.right, b: r.bottom,
              inside: r.left >= view.l && r.right <= view.r && r.top >= view.t && r.bottom <= view.b};
    });
}"""


def require_dot() -> None:
    if shutil.which("dot") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Graphviz's dot must be installed under CI")
        pytest.skip("Graphviz's dot is not installed")


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> float:
    width = min(a["r"], b["r"]) - max(a["l"], b["l"])
    height = min(a["b"], b["b"]) - max(a["t"], b["t"])
    return max(0.0, width) * max(0.0, height)


def _scan_sample(out: Path) -> str:
    args = ["scan", str(SAMPLE / "traces"), "--openapi", str(SAMPLE / "openapi"), "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return (out / "report.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module", params=["large-dot", "large-no-dot", "sample-dot", "sample-no-dot"])
def report(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str, list[str]]:
    """(name, html, orchestrator names) for each landscape, drawn with and without ``dot`` on the PATH."""
    name = str(request.param)
    with pytest.MonkeyPatch.context() as patch:
        if name.endswith("no-dot"):
            patch.setattr(shutil, "which", lambda program: None)
        else:
            require_dot()
        if name.startswith("large"):
            analysis = large_analysis()
            html = render_html(analysis)
            orchestrators = [s.name for s in analysis.services if s.role == "orchestrator"]
        else:
            html = _scan_sample(tmp_path_factory.mktemp(name))
            orchestrators = ["mobile-bff", "orders", "partner-api", "returns"]
    return name, html, orchestrators


def test_first_view_shows_every_orchestrator_legibly_and_the_page_stays_short(
    browser: Any, report: tuple[str, str, list[str]], tmp_path: Path
) -> None:
    name, html, orchestrators = report
    assert len(html.encode()) < MAX_BYTES
    assert ("engine-dot" in html) == (name == "sample-dot")  # dot's drawing only where it reads well
    page = Page(browser, html, tmp_path / f"{name}.html")
    try:
        assert page.errors == []
        assert page.height() < MAX_PAGE_PX, f"{name}: page is {page.height()} px tall"
        page.page.evaluate(
            "window.scrollTo(0, document.getElementById('graph').getBoundingClientRect().top + scrollY - 150)"
        )
        labels = page.page.evaluate(LABELS)
        by_id = {label["id"]: label for label in labels}
        for orchestrator in orchestrators:
            label = by_id[graph_id(orchestrator, html)]
            assert label["text"] == shorten(orchestrator)
            assert label["inside"], f"{name}: {orchestrator} is outside the first view"
            assert label["px"] >= MIN_LABEL_PX, f"{name}: {orchestrator} is {label['px']:.1f} px"
            crowded = [o["text"] for o in labels if o is not label and o["inside"] and _overlap(label, o) > 1]
            assert crowded == [], f"{name}: {orchestrator} overlaps {crowded}"
        page.screenshot(f"scale-{name}-graph", "#landscape")
        assert page.errors == []
    finally:
        page.close()


@pytest.fixture
def large(browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Page, str]]:
    monkeypatch.setattr(shutil, "which", lambda program: None)
    html = render_html(large_analysis())
    page = Page(browser, html, tmp_path / "large.html")
    yield page, html
    page.close()


def _view(page: Page) -> list[float]:
    return [float(v) for v in page.page.get_attribute("#graph > svg", "viewBox").split()]


def test_the_whole_landscape_is_one_click_away(large: tuple[Page, str]) -> None:
    page, _ = large
    inside = (
        "() => { const g = document.getElementById('graph').getBoundingClientRect(); "
        "return Array.from(document.querySelectorAll('#graph g.svc')).filter(n => { "
        "const r = n.getBoundingClientRect(); return r.left >= g.left - 1 && r.right <= g.right + 1 "
        "&& r.top >= g.top - 1 && r.bottom <= g.bottom + 1; }).length; }"
    )
    assert page.page.evaluate(inside) < 300
    page.page.click("#view-all")
    assert page.page.evaluate(inside) == 300
    page.screenshot("scale-large-whole", "#graph")
    page.page.click("#view-first")
    assert page.page.evaluate(inside) < 300
    assert page.errors == []


def test_zoom_buttons_scale_the_labels(large: tuple[Page, str]) -> None:
    page, _ = large
    size = "() => { const t = document.querySelector('#graph g.svc text'); return t.getScreenCTM().a; }"
    before = page.page.evaluate(size)
    page.page.click("#zoom-in")
    assert page.page.evaluate(size) == pytest.approx(before * 1.25, rel=0.01)
    page.page.click("#zoom-out")
    page.page.click("#zoom-out")
    assert page.page.evaluate(size) == pytest.approx(before * 0.8, rel=0.01)
    assert page.errors == []


def test_find_highlights_matches_and_enter_focuses_the_first(large: tuple[Page, str]) -> None:
    page, html = large
    analysis = large_analysis()
    wanted = sorted(s.name for s in analysis.services if "settlement" in s.name)
    page.page.fill("#graph-search", "SETTLEMENT")
    assert page.count_visible("#graph g.svc.is-match") == len(wanted)
    assert f"; {len(wanted)} found" in page.page.inner_text("#graph-status")
    page.page.press("#graph-search", "Enter")
    focused = page.page.get_attribute("#graph g.svc.is-focus", "id")
    assert focused in {graph_id(n, html) for n in wanted}
    label = next(o for o in page.page.evaluate(LABELS) if o["id"] == focused)
    graph = page.page.locator("#graph").bounding_box()
    assert graph["x"] <= label["l"] and label["r"] <= graph["x"] + graph["width"]
    assert graph["y"] <= label["t"] and label["b"] <= graph["y"] + graph["height"]
    assert label["px"] >= MIN_LABEL_PX
    # Picking a full name (as the suggestion list does) focuses that service.
    name = wanted[-1]
    page.page.fill("#graph-search", name)
    assert page.page.input_value("#focus") == graph_id(name, html)
    assert page.errors == []


def test_drag_pans_and_a_click_still_focuses(large: tuple[Page, str]) -> None:
    page, html = large
    page.page.evaluate("document.getElementById('graph').scrollIntoView({block: 'end'})")
    box = page.page.locator("#graph").bounding_box()
    before = _view(page)
    page.page.mouse.move(box["x"] + box["width"] - 40, box["y"] + box["height"] - 40)
    page.page.mouse.down()
    page.page.mouse.move(box["x"] + box["width"] - 340, box["y"] + box["height"] - 140, steps=8)
    page.page.mouse.up()
    after = _view(page)
    assert after[0] > before[0] and after[1] > before[1] and after[2:] == before[2:]
    assert page.count_dimmed("#graph g.svc") == 0  # the drag focused nothing
    orchestrator = next(s.name for s in large_analysis().services if s.role == "orchestrator")
    page.page.click("#view-first")
    page.page.locator(f"#{graph_id(orchestrator, html)}").click()
    assert page.page.input_value("#focus") == graph_id(orchestrator, html)
    assert page.errors == []


def test_tables_show_a_page_and_links_reveal_what_they_point_at(large: tuple[Page, str]) -> None:
    page, _ = large
    rows = "#services-table tbody tr"
    assert page.count_visible(rows) == PAGE_ROWS
    assert page.page.inner_text('.pager[data-table="services-table"] .pager-status') == (
        f"Showing {PAGE_ROWS} of 300 rows"
    )
    # Hiding a role pages through what is left.
    page.page.locator('.role-filter[value="orchestrator"]').uncheck()
    assert page.count_visible(rows) == PAGE_ROWS
    assert "of 290 rows" in page.page.inner_text('.pager[data-table="services-table"] .pager-status')
    page.page.locator('.role-filter[value="orchestrator"]').check()
    page.page.click('.pager[data-table="services-table"] .pager-more')
    assert page.count_visible(rows) == 2 * PAGE_ROWS
    # A finding's service link opens the page holding that service's row.
    last = page.page.eval_on_selector_all(rows, "rows => rows.map(r => r.id)")[-1]
    link = page.page.locator(f'#findings-table a[href="#{last}"]')
    if link.count() == 0:  # no finding about that service: follow the link from the address bar
        page.page.evaluate(f"location.hash = '#{last}'")
    else:
        link.first.click()
    page.page.wait_for_function(f"getComputedStyle(document.getElementById('{last}')).display !== 'none'")
    assert page.count_visible(rows) == 300  # the last row's page is the last page
    # The summary's link to a folded owner opens it.
    folded = page.page.eval_on_selector_all("details.owner:not([open])", "els => els.map(e => e.id)")[0]
    page.page.click(f'#summary a[href="#{folded}"]')
    assert page.page.get_attribute(f"#{folded}", "open") is not None
    assert page.errors == []


def test_show_all_lists_every_row(large: tuple[Page, str]) -> None:
    page, _ = large
    page.page.click("#adjacency > summary")
    assert page.count_visible("#edges-table tbody tr") == PAGE_ROWS
    page.page.click('.pager[data-table="edges-table"] .pager-all')
    assert page.count_visible("#edges-table tbody tr") == len(large_analysis().edges)
    assert page.errors == []
