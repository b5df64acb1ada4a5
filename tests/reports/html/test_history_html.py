"""The report's history section: changes since the previous scan, and trends drawn as our own SVG."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from html import unescape

import pytest
from analysis_factories import hostile_analysis, shop_analysis
from snapshot_factories import EMPTY, changed_shop, weekly_history

from orchscan.analyzer.changes.snapshot import FindingState, take_snapshot
from orchscan.reports.html.history_view import SHOWN_CHANGES, TREND_SCANS, build_history_view
from orchscan.reports.html.render import render_html
from orchscan.reports.html.trend_svg import Series, nice_ceiling, render_trend, shown_labels, tick_label

SVG = "{http://www.w3.org/2000/svg}"


def _section(html: str) -> str:
    start = html.index('<section id="changes">')
    return html[start : html.index("</section>", start)]


def _svgs(section: str) -> list[ET.Element]:
    return [ET.fromstring(svg) for svg in re.findall(r"<svg .*?</svg>", section, re.S)]


def test_the_section_lists_the_changes_and_draws_four_trends() -> None:
    html = render_html(changed_shop(), history=weekly_history(6))
    section = _section(html)
    text = unescape(re.sub(r"<[^>]+>", " ", section))
    assert '<a href="#changes">Changes</a>' in html
    assert "Scan 6 compared with scan 5 (recorded 2026-03-30 06:00 UTC)" in " ".join(text.split())
    for words in (
        "web-gateway : now an orchestrator, score 4.20; was a gateway",
        "steps reordered: cart GET /carts/{cartId} → inventory POST /reservations",
        "retries added: shipping POST /shipments",
        "uncompensated-failure web-gateway",
    ):
        assert words in " ".join(text.split())
    charts = _svgs(section)
    assert [c.find(f"{SVG}title").text for c in charts] == [  # type: ignore[union-attr]
        "Orchestrators",
        "Flows",
        "Findings by severity",
        "Calls between services",
    ]
    # One dot per scan and series; the findings chart has a line per severity that occurred.
    severities = [g.get("data-series") for g in charts[2].iter(f"{SVG}g") if g.get("class") == "series"]
    assert severities == ["critical", "high", "medium", "info"]
    for chart in charts:
        for series in (g for g in chart.iter(f"{SVG}g") if g.get("class") == "series"):
            assert len(list(series.iter(f"{SVG}circle"))) == 6
            assert len(series.find(f"{SVG}polyline").get("points", "").split()) == 6  # type: ignore[union-attr]
    assert "Recorded scans (6)" in section
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?!#|data:)[^"'\s>]""", html, re.I), "remote src/href"
    assert not re.search(r"https?://(?!www\.w3\.org/(?:2000/svg|1999/xlink))", html)


def test_the_section_says_when_there_is_nothing_to_compare() -> None:
    first = _section(render_html(shop_analysis(), history=weekly_history(1)))
    assert "Scan 1 is the first scan of this history" in first
    assert len(_svgs(first)) == 4
    same = take_snapshot(shop_analysis())
    unchanged = _section(render_html(shop_analysis(), history=weekly_history(4, old=same, new=same)))
    assert "No changes: scan 4 found the same orchestrators, flows and findings as scan 3" in unchanged


def test_without_history_the_report_is_unchanged() -> None:
    html = render_html(shop_analysis())
    assert html == render_html(shop_analysis(), history=None)
    assert 'id="changes"' not in html and "#changes" not in html


def test_hostile_span_data_in_changes_is_shown_as_text() -> None:
    hostile = take_snapshot(hostile_analysis())
    html = render_html(hostile_analysis(), history=weekly_history(3, old=EMPTY, new=hostile))
    section = _section(html)
    assert "<script" not in section and "<img" not in section and "<iframe" not in section
    assert "onerror=" not in section.replace("onerror=&#34;", "")
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in section
    for chart in _svgs(section):  # still well-formed XML
        assert chart.tag == f"{SVG}svg"


def test_long_change_lists_are_cut_with_a_pointer_to_orchscan_diff() -> None:
    base = take_snapshot(shop_analysis())
    many = tuple(
        FindingState(f"{i:016x}", "undocumented-endpoint", "info", "api", None, f"GET /v{i}", "undocumented")
        for i in range(SHOWN_CHANGES + 30)
    )
    view = build_history_view(weekly_history(2, old=base, new=dataclasses.replace(base, findings=many)))
    findings = next(g for g in view.groups if g.title == "Findings")
    assert len(findings.lines) == SHOWN_CHANGES
    # Every new finding beyond the first SHOWN_CHANGES, and the old findings now resolved.
    assert view.hidden_changes == 30 + len(base.findings)
    html = render_html(
        shop_analysis(), history=weekly_history(2, old=base, new=dataclasses.replace(base, findings=many))
    )
    assert f"… and {view.hidden_changes} more" in html


def test_trends_show_the_most_recent_scans_newest_first_in_the_table() -> None:
    view = build_history_view(weekly_history(TREND_SCANS + 8))
    assert len(view.scans) == TREND_SCANS
    assert view.scans[0][0] == str(TREND_SCANS + 8) and view.scans[-1][0] == "9"
    labels = [
        t.text for t in _svgs(view.trends[0].svg)[0].iter(f"{SVG}text") if (t.text or "").startswith("#")
    ]
    assert labels[0] == "#9" and labels[-1] == f"#{TREND_SCANS + 8}" and len(labels) <= 8


@pytest.mark.parametrize(
    ("value", "top", "step"),
    [(0, 1, 1), (3, 3, 1), (5, 6, 2), (9, 10, 5), (26, 30, 10), (26_107, 30_000, 10_000)],
)
def test_the_y_axis_ends_at_a_round_number(value: int, top: int, step: int) -> None:
    assert nice_ceiling(value) == (top, step)


def test_axis_labels() -> None:
    assert [tick_label(v, 30_000) for v in (0, 10_000, 30_000)] == ["0", "10k", "30k"]
    assert [tick_label(v, 6_000) for v in (0, 2_000, 6_000)] == ["0", "2,000", "6,000"]
    assert tick_label(1_500_000, 20_000_000) == "1.5M"
    assert shown_labels(1) == [0] and shown_labels(5) == [0, 1, 2, 3, 4]
    assert shown_labels(52) == [0, 8, 16, 24, 32, 40, 51]


def test_a_chart_escapes_its_labels() -> None:
    svg = render_trend("<b>calls</b>", ("#1", "<i>"), (Series('x"><script>', "#000", (1, 2)),))
    root = ET.fromstring(svg)
    assert root.find(f"{SVG}title").text == "<b>calls</b>"  # type: ignore[union-attr]
    assert "<script>" not in svg and "<i>" not in svg
