"""The Markdown summary: headline content, determinism, and escaping checked with a CommonMark parser."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser

from analysis_factories import PAYLOADS, hostile_analysis, large_analysis, shop_analysis
from markdown_it import MarkdownIt

from orchscan.reports.markdown import TOP_FINDINGS, escape_markdown, render_markdown


def rendered_tags(markdown: str) -> list[str]:
    """The HTML tags a GitHub-like renderer (CommonMark + tables, raw HTML allowed) would produce."""
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    tags: list[str] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            tags.append(tag)

    Collect().feed(html)
    return tags


def test_summary_lists_input_findings_orchestrators_and_flow_steps() -> None:
    text = render_markdown(shop_analysis(), arazzo={"checkout:POST /checkout": "arazzo: 1.0.1\n"})
    assert "184,233 spans, 23,410 traces, 17 services" in text
    assert "38 skipped records, OpenAPI match rate 88 %" in text
    assert "## Findings (2 high, 5 medium, 1 info)" in text
    assert "| high | missing\\-idempotency |" not in text  # '-' is not escaped
    assert "| high | missing-idempotency | checkout |" in text
    assert "- **checkout** (hidden: also does its own business work), score 6.80, fan-out 6" in text
    checkout = text[text.index("### checkout: POST /checkout") : text.index("### order-saga")]
    assert "4,210 requests, support 97 %; Arazzo draft in the report." in checkout
    assert "2. POST /reservations → inventory (parallel group 1)" in checkout
    assert "4. POST /carts/{cartId}/coupon → cart (optional, 18 %)" in checkout
    assert (
        "5. POST /payments/authorize → payment (retried up to 3 attempts, without idempotency key)"
        in checkout
    )
    assert (
        "- compensation: when step 5 fails, inventory DELETE /reservations/{reservationId} undoes step 2"
        in checkout
    )
    assert "- **uncompensated**: when step 6 fails, steps 2, 5 stay in place" in checkout
    assert (
        "duplicated by **legacy\\-checkout**" not in checkout
        and "duplicated by **legacy-checkout**" in checkout
    )
    tags = rendered_tags(text)
    assert tags.count("table") == 1 and tags.count("ol") == 3  # the findings, and one step list per flow


def test_summary_is_deterministic_with_an_injectable_timestamp() -> None:
    assert render_markdown(shop_analysis()) == render_markdown(shop_analysis())
    assert "Generated" not in render_markdown(shop_analysis())
    stamped = render_markdown(shop_analysis(), generated_at=datetime(2024, 5, 2, 9, 30, tzinfo=UTC))
    assert "Generated 2024-05-02 09:30:00 UTC." in stamped


def test_long_finding_lists_are_cut_with_a_count() -> None:
    analysis = large_analysis()
    text = render_markdown(analysis)
    assert text.count("\n| ") == TOP_FINDINGS + 1  # header row plus the top findings
    assert f"… and {len(analysis.findings) - TOP_FINDINGS} more in the HTML report." in text


def test_hostile_span_data_renders_as_text() -> None:
    text = render_markdown(hostile_analysis())
    tags = set(rendered_tags(text))
    assert tags <= {
        "h1",
        "h2",
        "h3",
        "p",
        "strong",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "ul",
        "ol",
        "li",
    }
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    # Table rows keep their four cells although names contain '|'-free but quote-heavy payloads.
    assert all(
        row.count(" | ") >= 3 for row in text.splitlines() if row.startswith("| ") and "---" not in row
    )


def test_escape_markdown_neutralises_markup_and_line_breaks() -> None:
    for payload in PAYLOADS:
        assert "<" not in escape_markdown(payload).replace("\\<", "")
    assert escape_markdown("a|b\n# c [x](javascript:y) `z`") == "a\\|b \\# c \\[x\\](javascript:y) \\`z\\`"
