"""The report's answers to an architect's next questions: parallelism, teams, event-driven flows."""

from __future__ import annotations

import dataclasses

import pytest
from analysis_factories import hostile_analysis, shop_analysis

from orchscan.analyzer.results import ParallelOpportunity
from orchscan.reports.html.render import render_html
from orchscan.reports.html.sequence_svg import lifelines, render_sequence


@pytest.fixture(scope="module")
def html() -> str:
    return render_html(shop_analysis())


def _section(html: str, anchor: str, end: str) -> str:
    return html[html.index(f'id="{anchor}"') : html.index(f'id="{end}"')]


def test_a_flow_lists_the_steps_that_could_run_together_with_the_saving_and_why(html: str) -> None:
    flow = _section(html, "flow-0", "flow-1")
    assert "Could run in parallel" in flow
    assert "<td>6. POST /shipments, 7. publish order.placed</td>" in flow
    assert '<td class="num">2 ms</td><td class="num">3.5 ms</td><td class="num">3,990</td>' in flow
    assert "none can read what another wrote" in flow
    assert "Team boundaries" in flow and "logistics ↔ sales, payments ↔ sales" in flow


def test_an_event_driven_flow_names_who_sent_each_message_and_how_it_failed(html: str) -> None:
    flow = _section(html, "flow-1", "flow-2")
    assert "Event-driven flow <code>POST /checkout</code>" in flow
    assert "<th>From</th>" in flow
    assert 'class="message"' in flow and "message · order.placed" in flow
    assert "<td>order-saga</td><td>inventory</td>" in flow  # a consumer's own call
    assert "2. order-saga consume order.placed: 3 chains failed here first." in flow
    assert (
        "When 3. inventory POST /reservations/{reservationId}/commit fails, the event order.cancelled "
        "(kafka publish order.cancelled) undoes the origin&#39;s request (9 chains)." in flow
    )
    assert "the origin&#39;s request stay in place (3 chains)" in flow


def test_orchestrated_and_event_driven_flows_are_side_by_side(html: str) -> None:
    section = _section(html, "flow-kinds", "parallel")
    assert section.count("<tr>") == 2  # the header and the one entry with both kinds
    assert '<a href="#flow-0">7 steps, 5 other services</a>' in section
    assert '<a href="#flow-1">4 steps, 4 other services</a>' in section
    assert "<li><code>order-saga → inventory POST /reservations/{reservationId}/commit</code></li>" in section
    assert (
        "Failure handling: 12 chains failed; 1 compensating event; 3 chains left earlier work in place"
        in section
    )
    assert "3 orchestrated and 1 event-driven flows in all." in section


def test_the_parallelisation_section_ranks_every_flows_opportunities_by_their_saving() -> None:
    analysis = shop_analysis()
    product = next(f for f in analysis.flows if f.id == "product-page:GET /products/{id}")
    larger = ParallelOpportunity((1, 2), 40.0, 95.0, 12, ("no data handoff between them",))
    flows = tuple(
        dataclasses.replace(f, parallel_opportunities=(larger,)) if f is product else f
        for f in analysis.flows
    )
    section = _section(render_html(dataclasses.replace(analysis, flows=flows)), "parallel", "teams")
    assert "<h2>Parallelisation opportunities</h2>" in section
    assert section.count("<tr>") == 3  # the header and both flows' opportunities
    # The largest saving first, linked to its flow.
    assert section.index('<a href="#flow-3">product-page: GET /products/{id}</a>') < section.index(
        '<a href="#flow-0">checkout: POST /checkout</a>'
    )
    assert (
        "<li><code>6. shipping POST /shipments</code></li><li><code>7. kafka publish order.placed</code></li>"
        in (section)
    )
    assert '<td class="num">40 ms</td><td class="num">95 ms</td><td class="num">12</td>' in section
    assert "none can read what another wrote" in section


def test_the_teams_section_shows_owners_boundaries_and_coordinators(html: str) -> None:
    section = _section(html, "teams", "findings")
    assert '<strong>sales</strong><br><span class="muted">owners-file, service.namespace</span>' in section
    assert "Flows crossing more than one team boundary (3)" in section
    assert (
        "checkout (team sales, hidden orchestrator) drives inventory, shipping of team logistics" in section
    )
    assert "Orchestrators coordinating other teams' services (4)" in section
    # Services nobody named a team for are listed too.
    assert "Services without a known team" in section and "<code>web-gateway</code>" in section


def test_without_teams_or_events_the_sections_say_what_is_missing() -> None:
    analysis = shop_analysis()
    plain = dataclasses.replace(
        analysis,
        ownership=(),
        flows=tuple(
            dataclasses.replace(f, parallel_opportunities=())
            for f in analysis.flows
            if f.kind == "orchestrated"
        ),
    )
    page = render_html(plain)
    assert "No flow continues through messaging: every flow found is orchestrated." in page
    assert "No service's team is known" in page
    assert "No sequential steps were found that nothing orders." in page


def test_the_sequence_diagram_draws_a_message_from_its_sender() -> None:
    flow = next(f for f in shop_analysis().flows if f.kind == "choreographed")
    assert lifelines(flow) == ("checkout", "loyalty", "order-saga", "inventory", "notification", "kafka")
    svg = render_sequence(flow)
    assert svg.count('<g class="step message">') == 3
    # The commit is drawn from order-saga's lifeline (x 495), not the owner's (x 115).
    assert '<line x1="495" y1="172" x2="683" y2="172"/>' in svg


def test_hostile_team_and_topic_names_are_text() -> None:
    page = render_html(hostile_analysis())
    assert "<script>window.__pwned=1</script>" not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
