"""``--trace-url``: example trace ids become links into the reviewer's trace UI, safely."""

from __future__ import annotations

import re

import pytest
from analysis_factories import shop_analysis

from orchscan.reports.html.render import render_html
from orchscan.reports.html.trace_links import TraceRef, TraceUrlError, check_trace_url, trace_refs

JAEGER = "https://jaeger.example/trace/{trace_id}"


@pytest.mark.parametrize(
    "template",
    [
        JAEGER,
        "http://localhost:16686/trace/{trace_id}?uiEmbed=v0",
        "https://grafana.example/explore?left=%7B%22queries%22:%5B%7B%22query%22:%22{trace_id}%22%7D%5D%7D",
    ],
)
def test_http_templates_with_the_placeholder_are_accepted(template: str) -> None:
    assert check_trace_url(template) == template


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("https://jaeger.example/trace/", "must contain {trace_id}"),
        ("javascript:alert({trace_id})", "http:// or https://"),
        ("data:text/html,{trace_id}", "http:// or https://"),
        ("//jaeger.example/{trace_id}", "http:// or https://"),
        ('https://x.example/{trace_id}" onclick="alert(1)', "quotes"),
        ("https://x.example/{trace_id} x", "spaces"),
        ("https://x.example/\n{trace_id}", "control"),
    ],
)
def test_unsafe_or_useless_templates_are_refused(template: str, reason: str) -> None:
    with pytest.raises(TraceUrlError, match=re.escape(reason)):
        check_trace_url(template)


def test_only_plain_hex_ids_become_links() -> None:
    refs = trace_refs(("4bf92f3577b34da6a3ce929d0e0e4736", "../../admin", "a" * 65), JAEGER)
    assert refs == (
        TraceRef(
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "https://jaeger.example/trace/4bf92f3577b34da6a3ce929d0e0e4736",
        ),
        TraceRef("../../admin", None),
        TraceRef("a" * 65, None),
    )
    assert trace_refs(("4bf92f3577b34da6a3ce929d0e0e4736",), None) == (
        TraceRef("4bf92f3577b34da6a3ce929d0e0e4736", None),
    )


def test_every_example_trace_id_in_the_report_links_to_the_trace_ui() -> None:
    analysis = shop_analysis()
    html = render_html(analysis, trace_url=JAEGER + "?from=orchscan&x=1")
    shown = set(re.findall(r"<code>([0-9a-f]{32})</code>", html))
    linked = set(
        re.findall(
            r'<a href="https://jaeger\.example/trace/([0-9a-f]{32})\?from=orchscan&amp;x=1" '
            r'rel="noopener noreferrer" target="_blank"><code>\1</code></a>',
            html,
        )
    )
    expected = {t for f in analysis.findings for t in f.example_traces} | {
        t for f in analysis.flows for t in f.example_traces
    }
    assert expected <= linked
    assert shown == linked, "every trace id shown is a link"
    assert 'href="https://jaeger.example' not in render_html(analysis)


def test_render_refuses_an_unsafe_template() -> None:
    with pytest.raises(TraceUrlError):
        render_html(shop_analysis(), trace_url="javascript:{trace_id}")
