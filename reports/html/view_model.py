"""Plain data for the HTML report, built from an ``Analysis``.

The template only loops and branches; every number is formatted, every anchor chosen and every
cross-reference resolved here, so the template needs no logic and this module is easy to test.
Strings stay raw: escaping is the template's job (jinja2 autoescape), except for the SVG markup
drawn by :mod:`reports.html.graph_svg` and :mod:`reports.html.sequence_svg`.

Long content is summarised first: repeated notices are grouped, long cell lists fold behind
their count, long tables show a page at a time (the page's script pages them; the row counts
are printed), so the page stays a few screens long at landscape scale.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from orchscan.analyzer.results import (
    ROLES,
    SEVERITIES,
    Analysis,
    EvidenceCounts,
    Finding,
    FragmentSummary,
    ServiceCoverage,
    ServiceRole,
)
from orchscan.reports.html.cells import CELL_ITEMS, ListCell, list_cell
from orchscan.reports.html.comparison_view import ComparisonRow, build_comparison
from orchscan.reports.html.figures import (
    describe_fetch,
    edge_figures,
    format_duration,
    format_share,
    format_window,
    window_minutes,
)
from orchscan.reports.html.flow_view import (
    FLOW_ROWS,
    ObservedRow,
    OwnerSection,
    Pair,
    build_sections,
    observed_rows,
)
from orchscan.reports.html.graph_style import LABEL_SIZE, ROLE_STYLE, service_ids
from orchscan.reports.html.graph_svg import MIN_LABEL_PX, ServiceGraph
from orchscan.reports.html.parallel_view import ParallelRow, build_parallel
from orchscan.reports.html.routes import fold_operations
from orchscan.reports.html.teams_view import TeamsView, build_teams
from orchscan.reports.html.trace_links import TraceRef, trace_refs

__all__ = ["CELL_ITEMS", "ListCell", "ReportView", "build_view", "format_share", "format_window", "list_cell"]

#: How many findings the summary lists (with their recommendations) before pointing at the table.
TOP_FINDINGS = 5

#: Tables longer than this many rows show this many at a time (about one screen), with their count.
PAGE_ROWS = 25


#: What a service's score means, wherever the report shows one.
SCORE_HELP = (
    "Score: how many distinct services one request of the service's busiest entry operation calls, "
    "as a robust z-score against the landscape (median and MAD). The higher, the more the service "
    "coordinates others; an orchestrator's score reached the analysis' hub threshold (roles.hub_z)."
)

# "subject: message (detail)", as the analysis words its notices.
_NOTICE = re.compile(r"^(?P<subject>.+?): (?P<message>.+?)(?P<detail> \([^()]*\))?$")


@dataclass(frozen=True)
class NoticeGroup:
    """Notices that say the same about different subjects, shown once with their subjects."""

    message: str
    subjects: tuple[str, ...]


@dataclass(frozen=True)
class SummaryView:
    """The input at a glance: what was read, what was skipped, and how well specs matched."""

    facts: tuple[Pair, ...]
    files: tuple[tuple[str, str, str, str], ...]
    skipped: tuple[tuple[str, str, str, str], ...]
    skipped_total: str
    notices: tuple[NoticeGroup, ...]
    specs: tuple[str, ...]
    roles: tuple[Pair, ...]
    severities: tuple[Pair, ...]


@dataclass(frozen=True)
class ServiceRow:
    """One row of the per-service table; ``sort`` keeps each column's raw value for JS sorting."""

    anchor: str
    graph_id: str
    name: str
    role: str
    hidden: bool
    fan_in: int
    fan_out: int
    requests: str
    error_rate: str
    score: str
    operations: ListCell
    documented: str
    undocumented: ListCell
    unused: ListCell
    sort: tuple[str, ...]
    section: str | None


@dataclass(frozen=True)
class FindingView:
    """A finding with its flow resolved to a link target when the report has that flow."""

    rule: str
    severity: str
    service: str
    service_anchor: str
    flow: str | None
    flow_anchor: str | None
    message: str
    evidence: ListCell
    recommendation: str
    example_traces: tuple[TraceRef, ...]
    cases: str = ""


@dataclass(frozen=True)
class SuppressedView:
    """A finding a suppression file accepted, with the team's reason (listed, never dropped)."""

    severity: str
    rule: str
    service: str
    message: str
    reason: str
    expires: str
    origin: str


@dataclass(frozen=True)
class LegendEntry:
    """A role's colour (and, in Graphviz's drawing, shape) as drawn in the graph."""

    role: str
    fill: str
    border: str
    shape: str
    count: int


@dataclass(frozen=True)
class EdgeRow:
    """One row of the calls-between-services table; ``sort`` as for :class:`ServiceRow`."""

    caller: str
    callee: str
    kind: str
    calls: str
    per_minute: str
    error_rate: str
    p50: str
    p95: str
    sort: tuple[str, ...]


@dataclass(frozen=True)
class GraphView:
    """The drawn graph, its legend, its edges as a table, and what the page's script needs.

    ``label_size`` is the labels' size in drawing units and ``min_label_px`` the smallest size
    on screen the first view may show them at; ``shapes`` says whether nodes have role shapes
    (Graphviz) or only role colours (the tiered drawing).
    """

    svg: str
    engine: str
    notice: str | None
    legend: tuple[LegendEntry, ...]
    shapes: bool
    edges: tuple[EdgeRow, ...]
    infrastructure: int
    label_size: float
    min_label_px: float


@dataclass(frozen=True)
class ReportView:
    """The whole report page as plain data."""

    title: str
    generated_at: str | None
    summary: SummaryView
    top_findings: tuple[FindingView, ...]
    orchestrators: tuple[ServiceRow, ...]
    graph: GraphView
    sections: tuple[OwnerSection, ...]
    comparison: tuple[ComparisonRow, ...]
    flow_counts: str
    parallel: tuple[ParallelRow, ...]
    teams: TeamsView
    findings: tuple[FindingView, ...]
    rules: tuple[str, ...]
    severities: tuple[str, ...]
    services: tuple[ServiceRow, ...]
    page_rows: int
    flow_rows: int
    score_help: str
    suppressed: tuple[SuppressedView, ...] = ()
    suppression_notes: tuple[str, ...] = ()
    observed: tuple[ObservedRow, ...] = ()


def build_view(
    analysis: Analysis,
    graph: ServiceGraph,
    *,
    arazzo: Mapping[str, str],
    generated_at: datetime | None,
    trace_url: str | None = None,
) -> ReportView:
    """Turn an analysis (and its drawn graph) into the page's plain data."""
    ids = service_ids(analysis)
    owners = sorted(
        {f.owner for f in analysis.flows} | {s.name for s in analysis.services if s.role == "orchestrator"}
    )
    section_anchor = {name: f"owner-{i}" for i, name in enumerate(owners)}
    flow_anchor = {flow.id: f"flow-{i}" for i, flow in enumerate(analysis.flows)}
    findings = tuple(_finding(f, ids, flow_anchor, trace_url) for f in analysis.findings)
    coverage = {c.service: c for c in analysis.coverage}
    services = tuple(_service_row(s, ids, section_anchor, coverage.get(s.name)) for s in analysis.services)
    return ReportView(
        title="orchscan audit report",
        generated_at=generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if generated_at else None,
        summary=_summary(analysis),
        top_findings=findings[:TOP_FINDINGS],
        orchestrators=tuple(row for row in services if row.role == "orchestrator"),
        graph=_graph(analysis, graph),
        sections=build_sections(analysis, owners, section_anchor, flow_anchor, arazzo, trace_url),
        observed=observed_rows(analysis),
        comparison=build_comparison(analysis, flow_anchor),
        flow_counts=_flow_counts(analysis),
        parallel=build_parallel(analysis, flow_anchor),
        teams=build_teams(analysis, flow_anchor),
        findings=findings,
        rules=tuple(sorted({f.rule for f in analysis.findings})),
        severities=tuple(s for s in SEVERITIES if any(f.severity == s for f in analysis.findings)),
        services=services,
        page_rows=PAGE_ROWS,
        flow_rows=FLOW_ROWS,
        score_help=SCORE_HELP,
        suppressed=tuple(
            SuppressedView(
                item.finding.severity,
                item.finding.rule,
                item.finding.service,
                item.finding.message,
                item.suppression.reason,
                str(item.suppression.expires or ""),
                item.suppression.origin,
            )
            for item in analysis.suppressions.suppressed
        ),
        suppression_notes=(
            *(
                f"{e.origin}: expired on {e.expires}; its findings count again"
                for e in analysis.suppressions.expired
            ),
            *(f"{e.origin}: matched no finding" for e in analysis.suppressions.unused),
        ),
    )


def _flow_counts(analysis: Analysis) -> str:
    kinds = Counter(flow.kind for flow in analysis.flows)
    return f"{kinds['orchestrated']:,} orchestrated and {kinds['choreographed']:,} event-driven flows in all."


def group_notices(notices: Sequence[str]) -> tuple[NoticeGroup, ...]:
    """Notices with the same message about several subjects become one group; others stay single."""
    parsed = [(notice, _NOTICE.match(notice)) for notice in notices]
    subjects: dict[str, list[str]] = defaultdict(list)
    for _, match in parsed:
        if match:
            subjects[match["message"]].append(match["subject"] + (match["detail"] or ""))
    groups: list[NoticeGroup] = []
    grouped: set[str] = set()
    for notice, match in parsed:
        if match is None or len(subjects[match["message"]]) == 1:
            groups.append(NoticeGroup(notice, ()))
        elif match["message"] not in grouped:
            grouped.add(match["message"])
            groups.append(NoticeGroup(match["message"], tuple(sorted(subjects[match["message"]]))))
    return tuple(groups)


def _summary(analysis: Analysis) -> SummaryView:
    summary = analysis.input
    formats = ", ".join(sorted({f.format for f in summary.files})) or "—"
    match = (
        "no specs given" if summary.openapi_match_rate is None else format_share(summary.openapi_match_rate)
    )
    skipped = sum(s.count for s in summary.skipped)
    facts = (
        Pair("Files", f"{len(summary.files):,}"),
        Pair("Formats", formats),
        Pair("Spans", f"{summary.spans:,}"),
        Pair("Traces", f"{summary.traces:,}"),
        Pair("Services", f"{summary.services:,}"),
        Pair("Time window", format_window(summary)),
        Pair("Skipped records", f"{skipped:,}"),
        Pair("Fragments", _fragments(summary.fragments)),
        Pair("OpenAPI match rate", match),
        *(Pair(f"Fetched from {s.source}", describe_fetch(s)) for s in summary.sources),
    )
    roles = Counter(s.role for s in analysis.services)
    severities = Counter(f.severity for f in analysis.findings)
    return SummaryView(
        facts=facts,
        files=tuple((f.file, f.format, f"{f.spans:,}", f"{f.traces:,}") for f in summary.files),
        skipped=tuple((s.file, s.position, s.reason, f"{s.count:,}") for s in summary.skipped),
        skipped_total=f"{skipped:,}",
        notices=group_notices(summary.notices),
        specs=summary.specs,
        roles=tuple(Pair(r, str(roles[r])) for r in ROLES if roles[r]),
        severities=tuple(Pair(s, str(severities[s])) for s in SEVERITIES if severities[s]),
    )


def _fragments(fragments: FragmentSummary) -> str:
    """What was done with the spans whose parent was lost, in one line."""
    if not fragments.attached and not fragments.kept:
        return "none (no span lost its parent)"
    return (
        f"{fragments.attached:,} put back into their request, {fragments.kept:,} kept apart "
        f"({fragments.calls:,} calls, counted between services, never a flow)"
    )


def _service_row(
    service: ServiceRole,
    ids: Mapping[str, str],
    sections: Mapping[str, str],
    coverage: ServiceCoverage | None,
) -> ServiceRow:
    matched = f"{coverage.matched:,}/{coverage.calls:,} ({coverage.match_rate:.0%})" if coverage else ""
    undocumented = (
        tuple(f"{u.method} {u.path} ({u.count:,})" for u in coverage.undocumented) if coverage else ()
    )
    unused = coverage.unseen if coverage else ()
    templates = fold_operations(service.operations)
    operations = tuple(f"{key} (×{count:,})" if count > 1 else key for key, count in templates)
    return ServiceRow(
        anchor=f"service-{ids[service.name]}",
        graph_id=ids[service.name],
        name=service.name,
        role=service.role,
        hidden=service.hidden,
        fan_in=service.fan_in,
        fan_out=service.fan_out,
        requests=f"{service.requests:,}",
        error_rate=format_share(service.error_rate),
        score=f"{service.score:.2f}",
        operations=list_cell(operations),
        documented=matched,
        undocumented=list_cell(undocumented),
        unused=list_cell(unused),
        sort=(
            service.name,
            f"{ROLES.index(service.role) if service.role in ROLES else len(ROLES)}",
            "1" if service.hidden else "0",
            str(service.fan_in),
            str(service.fan_out),
            str(service.requests),
            repr(service.error_rate),
            repr(service.score),
            str(len(operations)),
            repr(coverage.match_rate) if coverage else "-1",
            str(len(undocumented)),
            str(len(unused)),
        ),
        section=sections.get(service.name),
    )


def _finding(
    finding: Finding, ids: Mapping[str, str], flows: Mapping[str, str], trace_url: str | None
) -> FindingView:
    return FindingView(
        rule=finding.rule,
        severity=finding.severity,
        service=finding.service,
        service_anchor=f"service-{ids[finding.service]}" if finding.service in ids else "",
        flow=finding.flow,
        flow_anchor=flows.get(finding.flow) if finding.flow else None,
        message=finding.message,
        evidence=list_cell(finding.evidence),
        recommendation=finding.recommendation,
        example_traces=trace_refs(finding.example_traces, trace_url),
        cases=format_counts(finding.counts),
    )


def format_counts(counts: EvidenceCounts | None) -> str:
    """A finding's "k of n" in a few words ("" for rules that do not count their cases)."""
    if counts is None:
        return ""
    explained = f", {counts.explained:,} explained by lost spans" if counts.explained else ""
    return f"{counts.affected:,} of {counts.cases:,} cases{explained}"


def _graph(analysis: Analysis, graph: ServiceGraph) -> GraphView:
    roles = Counter(s.role for s in analysis.services)
    legend = tuple(LegendEntry(role, *ROLE_STYLE[role], roles[role]) for role in ROLES if role in ROLE_STYLE)
    minutes = window_minutes(analysis.input)
    edges = []
    for e in analysis.edges:
        figures = edge_figures(e, minutes)
        edges.append(
            EdgeRow(
                e.caller,
                e.callee,
                e.kind,
                figures.calls,
                figures.per_minute,
                figures.error_rate,
                format_duration(e.p50_ms),
                figures.p95,
                (
                    e.caller,
                    e.callee,
                    e.kind,
                    str(e.calls),
                    str(e.calls),
                    repr(e.error_rate),
                    repr(e.p50_ms),
                    repr(e.p95_ms),
                ),
            )
        )
    return GraphView(
        svg=graph.svg,
        engine=graph.engine,
        notice=graph.notice,
        legend=legend,
        shapes=graph.engine == "dot",
        edges=tuple(edges),
        infrastructure=roles["infrastructure"],
        label_size=LABEL_SIZE,
        min_label_px=MIN_LABEL_PX,
    )
