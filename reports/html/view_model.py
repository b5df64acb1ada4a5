"""Plain data for the HTML report, built from an ``Analysis``.

The template only loops and branches; every number is formatted, every anchor chosen and every
cross-reference resolved here, so the template needs no logic and this module is easy to test.
Strings stay raw: escaping is the template's job (jinja2 autoescape), except for the SVG markup
drawn by :mod:`reports.graph_svg` and :mod:`reports.sequence_svg`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from orchscan.analyzer.results import (
    ROLES,
    SEVERITIES,
    Analysis,
    Finding,
    Flow,
    InputSummary,
    RetryPolicy,
    ServiceCoverage,
    ServiceRole,
    Step,
)
from orchscan.reports.html.graph_svg import ROLE_STYLE, ServiceGraph, service_ids
from orchscan.reports.html.sequence_svg import render_sequence

#: How many findings the summary lists before pointing at the full table.
TOP_FINDINGS = 5

#: Up to this many services the graph is scaled to the page width; larger ones scroll at full size
#: so labels stay legible (the focus control scrolls to the chosen service).
FIT_SERVICES = 60


@dataclass(frozen=True)
class Pair:
    """A label and its formatted value, for definition lists and small tables."""

    label: str
    value: str


@dataclass(frozen=True)
class SummaryView:
    """The input at a glance: what was read, what was skipped, and how well specs matched."""

    facts: tuple[Pair, ...]
    files: tuple[tuple[str, str, str, str], ...]
    skipped: tuple[tuple[str, str, str, str], ...]
    skipped_total: int
    notices: tuple[str, ...]
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
    operations: tuple[str, ...]
    documented: str
    undocumented: tuple[str, ...]
    unused: tuple[str, ...]
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
    evidence: tuple[str, ...]
    recommendation: str
    example_traces: tuple[str, ...]


@dataclass(frozen=True)
class StepView:
    """A step as the flow table lists it."""

    index: int
    service: str
    operation: str
    operation_id: str
    parallel: str
    optional: bool
    support: str
    retries: str
    p50: str


@dataclass(frozen=True)
class FlowView:
    """Everything the report says about one flow, with its drawn sequence diagram."""

    anchor: str
    id: str
    owner: str
    entry: str
    entry_operation_id: str
    facts: tuple[Pair, ...]
    sequence_svg: str
    steps: tuple[StepView, ...]
    variants: tuple[tuple[str, str, str, tuple[str, ...]], ...]
    handoffs: tuple[tuple[str, str, str, str, str, str], ...]
    retries: tuple[Pair, ...]
    compensations: tuple[str, ...]
    uncompensated: tuple[tuple[str, tuple[str, ...]], ...]
    timeouts: tuple[str, ...]
    failure_statuses: str
    duplicates: tuple[tuple[str, str, tuple[str, ...]], ...]
    example_traces: tuple[str, ...]
    arazzo: str | None
    findings: tuple[FindingView, ...]


@dataclass(frozen=True)
class OwnerSection:
    """An orchestrator (or other flow owner): why it got its role, and its flows."""

    anchor: str
    name: str
    role: str
    hidden: bool
    facts: tuple[Pair, ...]
    evidence: tuple[str, ...]
    example_traces: tuple[str, ...]
    arazzo: str | None
    flows: tuple[FlowView, ...]


@dataclass(frozen=True)
class LegendEntry:
    """A role's colour and shape as drawn in the graph."""

    role: str
    fill: str
    border: str
    shape: str
    count: int


@dataclass(frozen=True)
class GraphView:
    """The drawn graph, its legend and the controls' choices."""

    svg: str
    engine: str
    notice: str | None
    legend: tuple[LegendEntry, ...]
    edges: tuple[tuple[str, str, str, str, str], ...]
    infrastructure: int
    fit: bool


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
    findings: tuple[FindingView, ...]
    rules: tuple[str, ...]
    severities: tuple[str, ...]
    services: tuple[ServiceRow, ...]


def build_view(
    analysis: Analysis,
    graph: ServiceGraph,
    *,
    arazzo: Mapping[str, str],
    generated_at: datetime | None,
) -> ReportView:
    """Turn an analysis (and its drawn graph) into the page's plain data."""
    ids = service_ids(analysis)
    owners = sorted(
        {f.owner for f in analysis.flows} | {s.name for s in analysis.services if s.role == "orchestrator"}
    )
    section_anchor = {name: f"owner-{i}" for i, name in enumerate(owners)}
    flow_anchor = {flow.id: f"flow-{i}" for i, flow in enumerate(analysis.flows)}
    findings = tuple(_finding(f, ids, flow_anchor) for f in analysis.findings)
    coverage = {c.service: c for c in analysis.coverage}
    services = tuple(_service_row(s, ids, section_anchor, coverage.get(s.name)) for s in analysis.services)
    return ReportView(
        title="orchscan audit report",
        generated_at=generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if generated_at else None,
        summary=_summary(analysis),
        top_findings=findings[:TOP_FINDINGS],
        orchestrators=tuple(row for row in services if row.role == "orchestrator"),
        graph=_graph(analysis, graph, ids),
        sections=_sections(analysis, owners, section_anchor, flow_anchor, findings, arazzo),
        findings=findings,
        rules=tuple(sorted({f.rule for f in analysis.findings})),
        severities=tuple(s for s in SEVERITIES if any(f.severity == s for f in analysis.findings)),
        services=services,
    )


def format_window(summary: InputSummary) -> str:
    """The observed time window in UTC, with its length."""
    if summary.start_ns is None or summary.end_ns is None:
        return "—"
    start = datetime.fromtimestamp(summary.start_ns / 1e9, UTC)
    end = datetime.fromtimestamp(summary.end_ns / 1e9, UTC)
    length = format_duration((summary.end_ns - summary.start_ns) / 1e6)
    return f"{start:%Y-%m-%d %H:%M:%S} – {end:%Y-%m-%d %H:%M:%S} UTC ({length})"


def format_duration(ms: float) -> str:
    """Milliseconds in the largest unit that keeps the number readable."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms >= size:
            return f"{ms / size:.3g} {unit}"
    return f"{ms:.3g} ms"


def format_share(share: float) -> str:
    """A share in [0, 1] as a percentage with one decimal where it matters."""
    return f"{share * 100:.1f} %" if 0 < share < 0.1 else f"{share * 100:.0f} %"


def _summary(analysis: Analysis) -> SummaryView:
    summary = analysis.input
    formats = ", ".join(sorted({f.format for f in summary.files})) or "—"
    match = (
        "no specs given" if summary.openapi_match_rate is None else format_share(summary.openapi_match_rate)
    )
    facts = (
        Pair("Files", f"{len(summary.files):,}"),
        Pair("Formats", formats),
        Pair("Spans", f"{summary.spans:,}"),
        Pair("Traces", f"{summary.traces:,}"),
        Pair("Services", f"{summary.services:,}"),
        Pair("Time window", format_window(summary)),
        Pair("Skipped records", f"{sum(s.count for s in summary.skipped):,}"),
        Pair("OpenAPI match rate", match),
    )
    roles = Counter(s.role for s in analysis.services)
    severities = Counter(f.severity for f in analysis.findings)
    return SummaryView(
        facts=facts,
        files=tuple((f.file, f.format, f"{f.spans:,}", f"{f.traces:,}") for f in summary.files),
        skipped=tuple((s.file, s.position, s.reason, f"{s.count:,}") for s in summary.skipped),
        skipped_total=sum(s.count for s in summary.skipped),
        notices=summary.notices,
        specs=summary.specs,
        roles=tuple(Pair(r, str(roles[r])) for r in ROLES if roles[r]),
        severities=tuple(Pair(s, str(severities[s])) for s in SEVERITIES if severities[s]),
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
        operations=service.operations,
        documented=matched,
        undocumented=undocumented,
        unused=unused,
        sort=(
            service.name,
            f"{ROLES.index(service.role) if service.role in ROLES else len(ROLES)}",
            "1" if service.hidden else "0",
            str(service.fan_in),
            str(service.fan_out),
            str(service.requests),
            repr(service.error_rate),
            repr(service.score),
            str(len(service.operations)),
            repr(coverage.match_rate) if coverage else "-1",
            str(len(undocumented)),
            str(len(unused)),
        ),
        section=sections.get(service.name),
    )


def _finding(finding: Finding, ids: Mapping[str, str], flows: Mapping[str, str]) -> FindingView:
    return FindingView(
        rule=finding.rule,
        severity=finding.severity,
        service=finding.service,
        service_anchor=f"service-{ids[finding.service]}" if finding.service in ids else "",
        flow=finding.flow,
        flow_anchor=flows.get(finding.flow) if finding.flow else None,
        message=finding.message,
        evidence=finding.evidence,
        recommendation=finding.recommendation,
        example_traces=finding.example_traces,
    )


def _graph(analysis: Analysis, graph: ServiceGraph, ids: Mapping[str, str]) -> GraphView:
    roles = Counter(s.role for s in analysis.services)
    legend = tuple(LegendEntry(role, *ROLE_STYLE[role], roles[role]) for role in ROLES if role in ROLE_STYLE)
    edges = tuple(
        (e.caller, e.callee, e.kind, f"{e.calls:,}", format_share(e.error_rate)) for e in analysis.edges
    )
    fit = len(analysis.services) <= FIT_SERVICES
    return GraphView(graph.svg, graph.engine, graph.notice, legend, edges, roles["infrastructure"], fit)


def _sections(
    analysis: Analysis,
    owners: list[str],
    anchors: Mapping[str, str],
    flow_anchors: Mapping[str, str],
    findings: tuple[FindingView, ...],
    arazzo: Mapping[str, str],
) -> tuple[OwnerSection, ...]:
    def rank(name: str) -> tuple[int, float, str]:
        service = analysis.service(name)
        role = service.role if service else "service"
        return (0 if role == "orchestrator" else 1, -(service.score if service else 0.0), name)

    sections = []
    for name in sorted(owners, key=rank):
        service = analysis.service(name)
        flows = tuple(
            _flow(flow, flow_anchors[flow.id], findings, arazzo)
            for flow in analysis.flows
            if flow.owner == name
        )
        facts: tuple[Pair, ...] = ()
        if service:
            facts = (
                Pair(
                    "Role",
                    service.role + (" (hidden: also does its own business work)" if service.hidden else ""),
                ),
                Pair("Score", f"{service.score:.2f}"),
                Pair("Fan-out / fan-in", f"{service.fan_out} / {service.fan_in}"),
                Pair("Requests", f"{service.requests:,}"),
                Pair("Calls per request", f"{service.calls_per_request:.1f}"),
                Pair("Distinct callees per request", f"{service.distinct_callees_per_request:.1f}"),
                Pair("Parallel share", format_share(service.parallel_share)),
                Pair("Write share", format_share(service.write_share)),
                Pair("Database calls per request", f"{service.db_calls_per_request:.1f}"),
                Pair("Self-time share", format_share(service.self_time_share)),
            )
        sections.append(
            OwnerSection(
                anchor=anchors[name],
                name=name,
                role=service.role if service else "unknown",
                hidden=bool(service and service.hidden),
                facts=facts,
                evidence=service.evidence if service else (),
                example_traces=service.example_traces if service else (),
                arazzo=arazzo.get(name),
                flows=flows,
            )
        )
    return tuple(sections)


def _flow(flow: Flow, anchor: str, findings: tuple[FindingView, ...], arazzo: Mapping[str, str]) -> FlowView:
    facts = (
        Pair("Requests", f"{flow.requests:,}"),
        Pair("Support", format_share(flow.support)),
        Pair(
            "Duration p50 / p95 / max",
            " / ".join(
                format_duration(d) for d in (flow.duration_p50_ms, flow.duration_p95_ms, flow.duration_max_ms)
            ),
        ),
        Pair("Long-running", "yes" if flow.long_running else "no"),
        Pair("Inputs", ", ".join(flow.inputs) or "—"),
    )
    steps_by_index = {s.index: s for s in flow.steps}

    def name(index: int) -> str:
        if index == 0:
            return "input"
        step = steps_by_index.get(index)
        return f"{index}. {step.operation.key}" if step else str(index)

    return FlowView(
        anchor=anchor,
        id=flow.id,
        owner=flow.owner,
        entry=flow.entry.key,
        entry_operation_id=flow.entry.operation_id or "",
        facts=facts,
        sequence_svg=render_sequence(flow),
        steps=tuple(_step(s) for s in sorted(flow.steps, key=lambda s: s.index)),
        variants=tuple(
            (f"{v.requests:,}", format_share(v.support), f"{len(v.steps)}", v.steps) for v in flow.variants
        ),
        handoffs=tuple(
            (
                name(h.from_step),
                h.output,
                name(h.to_step),
                f"{h.parameter} ({h.location})",
                format_share(h.confidence),
                "; ".join(h.evidence),
            )
            for h in flow.handoffs
        ),
        retries=tuple(Pair(name(index), describe_retries(policy)) for index, policy in flow.failure.retries),
        compensations=tuple(
            f"When {name(c.failed_step)} fails, {c.operation.service} {c.operation.key} undoes "
            f"{name(c.undone_step)} ({c.requests:,} requests)."
            for c in flow.failure.compensations
        ),
        uncompensated=tuple(
            (
                f"When {name(u.failed_step)} fails, "
                f"{', '.join(name(i) for i in u.left_in_place)} stay in place ({u.requests:,} requests).",
                u.example_traces,
            )
            for u in flow.failure.uncompensated
        ),
        timeouts=flow.failure.timeouts,
        failure_statuses=", ".join(str(s) for s in flow.failure.failure_statuses),
        duplicates=tuple((d.owner, d.entry.key, d.differences) for d in flow.duplicates),
        example_traces=flow.example_traces,
        arazzo=arazzo.get(flow.id),
        findings=tuple(f for f in findings if f.flow == flow.id),
    )


def _step(step: Step) -> StepView:
    return StepView(
        index=step.index,
        service=step.operation.service,
        operation=step.operation.key,
        operation_id=(step.operation.operation_id or "")
        + (" (inferred)" if step.operation.operation_id_inferred else ""),
        parallel=f"group {step.parallel_group}" if step.parallel_group is not None else "",
        optional=step.optional,
        support=format_share(step.support),
        retries=describe_retries(step.retries) if step.retries else "",
        p50=format_duration(step.p50_ms) if step.p50_ms else "",
    )


def describe_retries(policy: RetryPolicy) -> str:
    """A retry policy in one sentence, flagging a missing idempotency key."""
    codes = ", ".join(str(c) for c in policy.status_codes) or "any failure"
    key = "with an idempotency key" if policy.idempotency_key else "without an idempotency key"
    return (
        f"retried in {policy.requests_with_retries:,} requests, "
        f"up to {policy.max_attempts} attempts on {codes}, "
        f"median delay {format_duration(policy.median_delay_ms)}, {key}"
    )
