"""The Markdown summary: headline content, determinism, and escaping checked with a CommonMark parser."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, date, datetime
from html.parser import HTMLParser

from analysis_factories import PAYLOADS, hostile_analysis, large_analysis, shop_analysis
from markdown_it import MarkdownIt

from orchscan.analyzer.findings.suppressions import apply_suppressions
from orchscan.analyzer.results import Suppression
from orchscan.reports.markdown import (
    MAX_CHARS,
    MAX_STEPS,
    MAX_TEXT,
    TOP_FINDINGS,
    escape_markdown,
    render_markdown,
)


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
    assert "## Findings (2 high, 6 medium, 1 info)" in text
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
    # The findings, flows side by side, parallelisation and teams; one step list per flow.
    assert tags.count("table") == 4 and tags.count("ol") == 4


def test_summary_compares_flow_kinds_and_lists_parallelism_and_teams() -> None:
    text = render_markdown(shop_analysis())
    events = text[text.index("### checkout: POST /checkout (events)") : text.index("### order-saga")]
    assert "3,990 event chains, support 99 %." in events
    assert "1. consume order.placed → loyalty (message from checkout; parallel group 1)" in events
    assert "3. POST /reservations/{reservationId}/commit → inventory (called by order-saga)" in events
    assert "kafka publish order.cancelled undoes the origin's request" in events
    assert "when step 2 fails, steps 0 (the origin's request) stay in place" in events
    kinds = text[text.index("## Orchestrated and event-driven flows") : text.index("## Parallelisation")]
    assert "| checkout | POST /checkout | cart → inventory → shipping" in kinds
    assert "loyalty (order.placed) → order-saga (order.placed)" in kinds
    assert "12 chains failed; 1 compensating event; 3 chains left earlier work in place" in kinds
    parallel = text[text.index("## Parallelisation opportunities") : text.index("## Teams")]
    assert (
        "| checkout: POST /checkout | 6. shipping POST /shipments, 7. kafka publish order.placed | 2 ms |"
        in parallel
    )
    teams = text[text.index("## Teams") :]
    assert "| sales | cart, checkout, legacy-checkout, order-saga | 3 | 3 |" in teams
    assert "checkout → logistics (inventory, shipping); checkout → payments (payment)" in teams
    assert "- checkout: POST /checkout (events), teams logistics, marketing, platform, sales" in teams


def test_summary_without_teams_or_events_says_so() -> None:
    analysis = shop_analysis()
    plain = dataclasses.replace(
        analysis, ownership=(), flows=tuple(f for f in analysis.flows if f.kind == "orchestrated")
    )
    text = render_markdown(plain)
    assert "No flow continues through messaging: every flow found is orchestrated." in text
    assert "No service's team is known" in text


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


def test_summary_stays_under_the_limit_at_any_size_and_says_what_it_left_out() -> None:
    analysis = large_analysis(3000)
    text = render_markdown(analysis)
    assert len(text) < MAX_CHARS
    last = text.rstrip().splitlines()[-1]
    listed = text.count("\n### ")
    assert 0 < listed < len(analysis.flows)
    assert last == (
        f"*Left out to keep this summary under {MAX_CHARS:,} characters: {len(analysis.flows) - listed:,} "
        "flows; report.html and findings.json have everything.*"
    )
    assert "Left out" not in render_markdown(large_analysis())


def test_huge_span_texts_are_cut() -> None:
    analysis = shop_analysis()
    giant = "a" * 1_000_000
    flow = analysis.flows[0]
    step = dataclasses.replace(
        flow.steps[0], operation=dataclasses.replace(flow.steps[0].operation, key=giant)
    )
    many = tuple(dataclasses.replace(step, index=i) for i in range(1, 500))
    analysis = dataclasses.replace(
        analysis,
        services=tuple(dataclasses.replace(s, name=giant) for s in analysis.services),
        flows=(dataclasses.replace(flow, steps=many),),
    )
    text = render_markdown(analysis)
    assert len(text) < MAX_CHARS
    assert "a" * MAX_TEXT not in text and "a" * (MAX_TEXT - 1) + "…" in text
    assert f"{MAX_STEPS + 1}. … and {len(many) - MAX_STEPS} more steps" in text


def test_terminal_controls_and_bidi_characters_are_made_visible() -> None:
    analysis = shop_analysis()
    evil = "pay\x1b[31mment\u202egnp.exe\x07"
    analysis = dataclasses.replace(
        analysis, services=tuple(dataclasses.replace(s, name=evil) for s in analysis.services)
    )
    text = render_markdown(analysis)
    assert text.replace("\n", "").isprintable()
    assert "pay\\\\x1b\\[31mment\\\\u202egnp.exe\\\\x07" in text


def test_a_window_of_years_is_written_in_days_without_e_notation() -> None:
    analysis = shop_analysis()
    start = 1_600_000_000 * 10**9
    summary = dataclasses.replace(analysis.input, start_ns=start, end_ns=start + 3670 * 86_400 * 10**9)
    text = render_markdown(dataclasses.replace(analysis, input=summary))
    assert "(3,670 d)" in text and "e+" not in text


def test_suppressed_findings_are_listed_with_their_reason_and_expired_entries_reported() -> None:
    analysis = shop_analysis()
    accepted = analysis.findings[0]
    entry = Suppression(
        reason="Known <b>legacy</b> debt",
        origin="s.yaml: suppressions[0]",
        fingerprint=accepted.fingerprint,
        expires=date(2030, 1, 31),
    )
    gone = Suppression(
        reason="old",
        origin="s.yaml: suppressions[1]",
        rule="unbounded-wait",
        service="x",
        expires=date(2020, 1, 1),
    )
    unused = Suppression(reason="typo", origin="s.yaml: suppressions[2]", rule="unbounded-wait", service="y")
    done = apply_suppressions(analysis, [entry, gone, unused], today=date(2024, 6, 1))
    text = render_markdown(done)
    counts = Counter(f.severity for f in done.findings)
    assert f"## Findings ({counts['high']} high" in text
    assert "## Suppressed findings (1)" in text
    assert "Known \\<b\\>legacy\\</b\\> debt* (until 2030-01-31)" in text
    assert "- **expired** on 2020-01-01, its findings count again: s.yaml: suppressions\\[1\\]" in text
    assert "- matched no finding: s.yaml: suppressions\\[2\\]" in text


def test_summary_says_what_was_done_with_fragments_and_unclaimed_entries() -> None:
    text = render_markdown(shop_analysis())
    assert "47 spans had lost their parent: 41 put back into their request, 6 kept apart as fragments" in text
    observed = "Observed but not claimed as flows: 2 entries (1 with too little evidence, 1 mixed entry)"
    assert observed in text
    assert "void" not in text  # listed in report.html, not here


def test_counted_findings_say_how_many_cases_they_rest_on() -> None:
    text = render_markdown(shop_analysis())
    assert "| high (61 of 64 cases, 2 explained by lost spans) | uncompensated-failure |" in text


def test_long_architecture_tables_list_the_most_telling_rows_and_count_the_rest() -> None:
    analysis = shop_analysis()
    checkout = next(f for f in analysis.flows if f.id == "checkout:POST /checkout")
    (opportunity,) = checkout.parallel_opportunities
    many = tuple(
        dataclasses.replace(opportunity, saving_p50_ms=float(ms), saving_p95_ms=float(ms) * 2)
        for ms in range(1, 21)
    )
    flows = tuple(
        dataclasses.replace(f, parallel_opportunities=many) if f is checkout else f for f in analysis.flows
    )
    text = render_markdown(dataclasses.replace(analysis, flows=flows))
    table = text[text.index("## Parallelisation opportunities") : text.index("## Teams")]
    rows = [line for line in table.splitlines() if line.startswith("| checkout")]
    assert len(rows) == 15 and "| 20 ms | 40 ms |" in rows[0] and "| 6 ms | 12 ms |" in rows[-1]
    assert "… and 5 more opportunities in the HTML report." in table
