"""The HTML audit report: content, escaping of hostile span data, offline use, determinism, fallbacks."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import stat
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from analysis_factories import PAYLOADS, RULES, hostile_analysis, large_analysis, shop_analysis
from markupsafe import escape

from orchscan.reports.html import graph_svg
from orchscan.reports.html.flow_view import OPEN_OWNERS
from orchscan.reports.html.graph_svg import UnsafeSvg, build_dot, clean_svg, escape_dot, render_graph
from orchscan.reports.html.render import render_html
from orchscan.reports.html.sequence_svg import lifelines, render_sequence
from orchscan.reports.html.view_model import (
    CELL_ITEMS,
    PAGE_ROWS,
    SCORE_HELP,
    TOP_FINDINGS,
    NoticeGroup,
    group_notices,
)

WHEN = datetime(2024, 5, 2, 9, 30, tzinfo=UTC)
DRAFT = "arazzo: 1.0.1\ninfo:\n  title: Place order </pre><script>window.__pwned=1</script>\n"


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of each <script> element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False if tag == "script" else self._in_script

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def parse(html: str) -> Tags:
    parser = Tags()
    parser.feed(html)
    parser.close()
    return parser


def require_dot() -> None:
    if shutil.which("dot") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Graphviz's dot must be installed under CI")
        pytest.skip("Graphviz's dot is not installed")


@pytest.fixture(scope="module")
def shop_html() -> str:
    return render_html(shop_analysis(), arazzo={"checkout:POST /checkout": DRAFT}, generated_at=WHEN)


def test_summary_shows_input_top_findings_and_orchestrators(shop_html: str) -> None:
    summary = shop_html[shop_html.index('id="summary"') : shop_html.index('id="landscape"')]
    for text in (
        "184,233",
        "23,410",
        "otlp-json, otlp-proto",
        "88 %",
        "duplicate span id",
        "message 12",
        "38",
    ):
        assert text in summary
    assert "2024-05-01 00:00:00 – 2024-05-02 00:00:00 UTC (1 d)" in summary
    # The most severe finding comes first, and the orchestrators link to their sections.
    top = summary[summary.index("Top findings") :]
    assert (
        top.index("missing-idempotency") < top.index("uncompensated-failure") < top.index("duplicated-flow")
    )
    for name in ("checkout", "order-saga", "legacy-checkout"):
        assert re.search(rf'<a href="#owner-\d+">{name}</a>', summary)


def test_every_section_service_flow_and_finding_is_present(shop_html: str) -> None:
    analysis = shop_analysis()
    for section in ("summary", "landscape", "orchestrations", "findings", "services"):
        assert f'<section id="{section}">' in shop_html
    tags = parse(shop_html)
    rows = [a for t, a in tags.tags if t == "tr" and a.get("class") == "finding"]
    assert sorted(r["data-rule"] or "" for r in rows) == sorted(RULES)
    assert {r["data-severity"] for r in rows} == {"high", "medium", "info"}
    service_rows = [a for t, a in tags.tags if t == "tr" and "data-graph-id" in a]
    assert len(service_rows) == len(analysis.services)
    flows = [a for t, a in tags.tags if t == "details" and a.get("class") == "flow"]
    assert len(flows) == len(analysis.flows)
    assert shop_html.count('<svg xmlns="http://www.w3.org/2000/svg" class="sequence"') == len(analysis.flows)


def test_flow_section_shows_evidence_variants_handoffs_failures_and_duplicates(shop_html: str) -> None:
    flow = shop_html[shop_html.index('id="flow-0"') : shop_html.index('id="flow-1"')]
    assert "POST /checkout" in flow and "placeOrder" in flow
    for text in (
        "3,390",  # variant support
        "reservationId (body)",  # handoff
        "up to 3 attempts on 502, 503, median delay 200 ms, without an idempotency key",
        "When 5. POST /payments/authorize fails, inventory DELETE /reservations/{reservationId} undoes",
        "2. POST /reservations, 5. POST /payments/authorize stay in place (61 requests)",
        "payment: client timeout 2 s",
        "authorizes payment before reserving stock",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        'class="optional"',
        "group 1",
    ):
        assert text in flow, text
    owner = shop_html[shop_html.index('id="owner-0"') :]
    assert "Writes its own table orders in postgres" in owner
    # The draft is shown as text (escaped) in a <pre> with its copy button.
    assert '<pre id="flow-0-arazzo" class="yaml">' in flow
    assert "Place order &lt;/pre&gt;&lt;script&gt;window.__pwned=1&lt;/script&gt;" in flow
    assert 'data-target="flow-0-arazzo"' in flow


def test_graph_is_drawn_by_dot_with_roles_hubs_and_edge_kinds(shop_html: str) -> None:
    analysis = shop_analysis()
    require_dot()
    graph = shop_html[shop_html.index('<div id="graph"') : shop_html.index('<details id="adjacency"')]
    assert "engine-dot" in graph
    root = ET.fromstring(graph[graph.index("<svg") : graph.rindex("</svg>") + 6])
    classes = [e.get("class", "") for e in root.iter()]
    nodes = [c for c in classes if " svc " in f" {c} "]
    assert len(nodes) == len({s.name for s in analysis.services})
    titles = {
        e.findtext("{http://www.w3.org/2000/svg}title")
        for e in root.iter()
        if " svc " in f" {e.get('class', '')} "
    }
    assert titles == {s.name for s in analysis.services}  # nodes are named by their service
    assert sum("role-orchestrator" in c for c in nodes) == 3
    assert sum("hidden-orchestrator" in c for c in nodes) == 1
    assert sum(" hub" in c for c in nodes) == 5  # 3 orchestrators, the gateway, the composer
    links = [c for c in classes if c.startswith("edge link")]
    assert len(links) == len(analysis.edges)
    assert sum("kind-messaging" in c for c in links) == 4
    dashed = [
        e
        for e in root.iter()
        if "kind-messaging" in e.get("class", "")
        for p in e.iter()
        if p.get("stroke-dasharray")
    ]
    assert len(dashed) == 4


def test_hostile_span_data_is_shown_as_text_and_injects_nothing() -> None:
    html = render_html(hostile_analysis(), arazzo={}, generated_at=WHEN)
    tags = parse(html)
    # Exactly our own script, whose hash the Content-Security-Policy pins.
    assert [t for t, _ in tags.tags].count("script") == 1
    assert not {"img", "iframe", "object", "embed", "base", "link", "form"} & {t for t, _ in tags.tags}
    for tag, attrs in tags.tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        for name in ("href", "src", "xlink:href"):
            assert not (attrs.get(name) or "#").lower().startswith("javascript"), (tag, attrs)
    text = html.replace("&#34;", '"').replace("&#39;", "'")
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in text
    assert "{{ 7*7 }}{% raw %}" in text  # not evaluated as a template
    # Each payload survives as visible text somewhere in the page.
    visible = unescape(re.sub(r"<[^>]+>", "", html))
    for payload in PAYLOADS:
        assert payload in visible or payload[: graph_svg.LABEL_CHARS - 10] in visible, payload


def test_content_security_policy_pins_the_inline_script(shop_html: str) -> None:
    tags = parse(shop_html)
    policy = next(
        a["content"] for t, a in tags.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    )
    assert policy is not None
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    digest = base64.b64encode(hashlib.sha256(tags.scripts[0].encode()).digest()).decode()
    assert directives["script-src"] == f"'sha256-{digest}'"
    assert directives["default-src"] == "'none'"
    # Neither falls back to default-src: an injected <base> or <form> would otherwise work.
    assert directives["base-uri"] == "'none'"
    assert directives["form-action"] == "'none'"


def test_page_is_self_contained(shop_html: str) -> None:
    for html in (shop_html, render_html(large_analysis())):
        assert not re.search(r"""(?:src|href)\s*=\s*["']?(?!#|data:)[^"'\s>]""", html, re.I), (
            "remote src/href"
        )
        assert not re.search(r"url\(\s*['\"]?(?!#|data:)", html, re.I), "remote url()"
        assert "@import" not in html
        assert not re.search(r"https?://(?!www\.w3\.org/(?:2000/svg|1999/xlink))", html)


def test_output_is_deterministic_and_timestamp_is_injectable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    first = render_html(shop_analysis())
    assert first == render_html(shop_analysis())
    assert "Generated" not in first
    assert "Generated 2024-05-02 09:30:00 UTC" in render_html(shop_analysis(), generated_at=WHEN)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1714642200")
    assert "Generated 2024-05-02 09:30:00 UTC" in render_html(shop_analysis())


def test_dot_missing_falls_back_to_the_tiered_layout_with_guidance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    analysis = shop_analysis()
    html = render_html(analysis, generated_at=WHEN)
    assert "engine-tiered" in html
    notice = html[html.index('id="graph-notice"') :]
    assert "dot program was not found" in notice[: notice.index("</p>")]
    assert "apt install graphviz" in notice[: notice.index("</p>")]
    assert '<details id="adjacency">' in html  # the table stays folded: the drawing is readable
    svg = html[html.index('<svg xmlns="http://www.w3.org/2000/svg" class="tiered-graph"') :]
    root = ET.fromstring(svg[: svg.index("</svg>") + 6])
    assert sum(" svc " in f" {e.get('class', '')} " for e in root.iter()) == len(analysis.services)
    assert sum("link kind-" in e.get("class", "") for e in root.iter()) == len(analysis.edges)


def test_dot_failure_falls_back_with_its_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "dot"
    broken.write_text("#!/bin/sh\necho 'Error: <stdin>: syntax error in line 1' >&2\nexit 1\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    graph = render_graph(shop_analysis())
    assert graph.engine == "tiered"
    assert graph.notice and "syntax error in line 1" in graph.notice


def test_hostile_svg_from_dot_is_refused() -> None:
    with pytest.raises(UnsafeSvg):
        clean_svg('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    with pytest.raises(UnsafeSvg):
        clean_svg('<svg xmlns="http://www.w3.org/2000/svg"><g onload="alert(1)"/></svg>')
    with pytest.raises(UnsafeSvg):
        clean_svg(
            '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
            '<a xlink:href="javascript:alert(1)"/></svg>'
        )


def test_dot_is_sorted_and_escaped() -> None:
    analysis = shop_analysis()
    reordered = type(analysis)(analysis.input, tuple(reversed(analysis.services)), analysis.edges)
    assert build_dot(analysis) == build_dot(reordered)
    nodes = re.findall(r'^  "((?:[^"\\]|\\.)*)" \[id=', build_dot(analysis), re.M)
    assert nodes == sorted(nodes) and len(nodes) == len(analysis.services)
    assert escape_dot('a"b\\N&c\n') == 'a\\"b\\\\N&amp;c '
    hostile = build_dot(hostile_analysis())
    # Every quoted string is closed where we close it: no attribute was smuggled in.
    assert "URL=" not in re.sub(r'"(?:[^"\\]|\\.)*"', '""', hostile)


def test_sequence_diagram_draws_steps_groups_options_retries_and_compensations() -> None:
    flow = next(f for f in shop_analysis().flows if f.owner == "checkout")
    root = ET.fromstring(render_sequence(flow))
    groups = [g.get("class", "") for g in root.iter("{http://www.w3.org/2000/svg}g")]
    assert sum(c.startswith("step") for c in groups) == len(flow.steps)
    assert groups.count("frame frame-par") == 1
    assert groups.count("frame frame-opt") == 1
    assert groups.count("step retried") == 1
    assert groups.count("compensation") == 1
    assert lifelines(flow) == ("checkout", "cart", "inventory", "shipping", "payment", "kafka")


def test_sequence_diagram_escapes_hostile_labels() -> None:
    for flow in hostile_analysis().flows:
        svg = render_sequence(flow)
        root = ET.fromstring(svg)  # well-formed: nothing broke out of a text node
        assert {e.tag.split("}")[1] for e in root.iter()} <= {
            "svg",
            "title",
            "g",
            "rect",
            "text",
            "line",
            "polygon",
            "path",
        }
        assert flow.owner in "".join(root.itertext())


def test_large_landscape_renders_with_filters_for_every_service() -> None:
    analysis = large_analysis()
    html = render_html(analysis)
    assert html.count('<option value="svc-') == 300
    assert html.count('class="flow"') == len(analysis.flows)
    assert len(html.encode()) < 2_000_000


def test_long_tables_are_paged_with_their_counts() -> None:
    analysis = large_analysis()
    html = render_html(analysis)
    for table, rows in (("services-table", 300), ("edges-table", len(analysis.edges))):
        assert f'<table id="{table}" class="sortable" data-page-size="{PAGE_ROWS}">' in html
        assert f'<div class="pager" data-table="{table}" data-page="{PAGE_ROWS}">' in html
        assert f"Show all {rows}</button>" in html
    assert f"<summary>Calls between services ({len(analysis.edges)})</summary>" in html


def test_repeated_notices_are_grouped_with_their_subjects() -> None:
    html = render_html(large_analysis())
    summary = html[html.index('id="summary"') : html.index('id="landscape"')]
    assert summary.count("OpenAPI spec matched no traced service") == 1
    assert (
        '<summary>OpenAPI spec matched no traced service <span class="muted">(103 notices)</span></summary>'
        in summary
    )
    assert "<li><code>specs/team-042/openapi.yaml</code></li>" in summary
    assert "parent span missing; attached to the trace root <span" in summary
    assert "<li><code>traces/shop-2024-05-02.binpb (97 spans)</code></li>" in summary
    # A notice said once stays a sentence of its own.
    assert "<li>3 spans have no service.name; attributed to &#39;unknown_service&#39;</li>" in summary


def test_group_notices_keeps_order_and_single_notices() -> None:
    notices = (
        "a.yaml: spec matched nothing",
        "b.json: parent missing (3 spans)",
        "c.yaml: spec matched nothing",
        "plain",
    )
    assert group_notices(notices) == (
        NoticeGroup("spec matched nothing", ("a.yaml", "c.yaml")),
        NoticeGroup("b.json: parent missing (3 spans)", ()),
        NoticeGroup("plain", ()),
    )


def test_services_show_route_templates_and_fold_long_lists() -> None:
    analysis = large_analysis()
    html = render_html(analysis)
    services = html[html.index('<section id="services">') :]
    raw = next(s for s in analysis.services if len(s.operations) > 20)
    resource = raw.name.split("-")[1]
    assert f"<code>GET /{resource}s/{{}} (×{len(raw.operations) - 1})</code>" in services
    assert f"GET /{resource}s/{resource[0]}-" not in services
    # A list longer than a cell holds shows its first items and folds the rest behind their count.
    coverage = next(c for c in analysis.coverage if len(c.undocumented) > CELL_ITEMS)
    row = services[services.index(f'<td data-sort="{coverage.service}">') :]
    row = row[: row.index("</tr>")]
    assert f"<summary>{len(coverage.undocumented) - CELL_ITEMS} more</summary>" in row


def test_top_findings_carry_their_recommendations(shop_html: str) -> None:
    top = shop_html[shop_html.index('<ol class="top-findings">') : shop_html.index("</ol>")]
    for finding in shop_analysis().findings[:TOP_FINDINGS]:
        assert escape(finding.recommendation) in top


def test_the_score_is_explained_where_it_is_shown(shop_html: str) -> None:
    help_text = escape(SCORE_HELP)
    summary = shop_html[shop_html.index('id="summary"') : shop_html.index('id="landscape"')]
    assert help_text in summary
    services = shop_html[shop_html.index('<section id="services">') :]
    assert f'title="{help_text}"><button type="button">Score</button>' in services
    owners = shop_html[
        shop_html.index('<section id="orchestrations">') : shop_html.index('<section id="findings">')
    ]
    assert f'<span class="muted outline" title="{help_text}">score ' in owners


def test_edges_carry_rate_errors_and_latency(shop_html: str) -> None:
    table = shop_html[shop_html.index('<table id="edges-table"') :]
    # 15,800 calls over the shop's one-day window, 90 of them failed.
    row = table[table.index('<td data-sort="web-gateway">web-gateway</td><td data-sort="product-page">') :]
    row = row[: row.index("</tr>")]
    cells = re.findall(r'class="num">([^<]*)</td>', row)
    edge = next(e for e in shop_analysis().edges if (e.caller, e.callee) == ("web-gateway", "product-page"))
    assert cells == ["15,800", "11", "0.6 %", f"{edge.p50_ms:.3g} ms", f"{edge.p95_ms:.3g} ms"]


def test_only_the_first_owners_and_their_first_flows_open(shop_html: str) -> None:
    tags = parse(render_html(large_analysis()))
    owners = [a for t, a in tags.tags if t == "details" and a.get("class") == "owner"]
    flows = [a for t, a in tags.tags if t == "details" and a.get("class") == "flow"]
    assert ["open" in a for a in owners] == [i < OPEN_OWNERS for i in range(len(owners))]
    assert sum("open" in a for a in flows) == OPEN_OWNERS


def test_fragments_and_unclaimed_entries_are_shown_with_their_reasons(shop_html: str) -> None:
    text = unescape(re.sub(r"<[^>]+>", " ", shop_html))
    assert "41 put back into their request, 6 kept apart" in text
    assert "(9 calls, counted between services, never a flow)" in text
    assert "Observed, not claimed as flows" in text
    assert "no single request type has the 3 requests a flow needs" in text
    assert "too little evidence: 1 request with 1 step" in text
    # Unclaimed entries are no owners: no section of their own.
    assert "POST /orders/{id}/void" not in shop_html.split('id="observed-flows"')[0]


def test_counted_findings_show_how_many_cases_they_rest_on(shop_html: str) -> None:
    text = unescape(re.sub(r"<[^>]+>", " ", shop_html))
    assert "61 of 64 cases, 2 explained by lost spans" in text
