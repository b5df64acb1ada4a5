"""Plain data for the report's "Orchestrations & flows" section: owners, their flows and steps.

At landscape scale there are dozens of owners and flows, each a screen or more when shown in
full, so only the first few owners open expanded (with their first flow); every other owner
and flow is one summary line a reviewer opens when needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from orchscan.analyzer.results import (
    Analysis,
    Compensation,
    Finding,
    Flow,
    ParallelOpportunity,
    RetryPolicy,
    Step,
)
from orchscan.reports.html.figures import format_duration, format_share
from orchscan.reports.html.sequence_svg import render_sequence
from orchscan.reports.html.trace_links import TraceRef, trace_refs

#: Owners shown expanded (each with its first flow), most conspicuous first; the others are one
#: line each until opened, so the page stays a few screens long at any landscape size.
OPEN_OWNERS = 3

#: A flow's step and handoff tables show this many rows at a time (a flow may have hundreds of
#: steps when its paths carry ids no route folds).
FLOW_ROWS = 10


@dataclass(frozen=True)
class Pair:
    """A label and its formatted value, for definition lists and small tables."""

    label: str
    value: str


@dataclass(frozen=True)
class StepView:
    """A step as the flow table lists it; ``caller`` is who made the call or sent the message,
    ``topic`` the message's topic (empty for a call); ``row_class`` marks optional and message rows."""

    index: int
    row_class: str
    caller: str
    message: bool
    topic: str
    service: str
    operation: str
    operation_id: str
    parallel: str
    optional: bool
    support: str
    retries: str
    p50: str


@dataclass(frozen=True)
class OpportunityView:
    """Steps that could run together, what that would save on the critical path, and why."""

    steps: str
    saving_p50: str
    saving_p95: str
    requests: str
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class FlowView:
    """Everything the report says about one flow, with its drawn sequence diagram.

    ``outline`` is the one line shown while the flow is collapsed; ``choreographed`` flows are
    event chains the owner's requests start (their steps name who sent each call or message).
    """

    anchor: str
    id: str
    choreographed: bool
    kind_label: str
    owner: str
    entry: str
    entry_operation_id: str
    open: bool
    outline: str
    facts: tuple[Pair, ...]
    sequence_svg: str
    steps: tuple[StepView, ...]
    variants: tuple[tuple[str, str, str, tuple[str, ...]], ...]
    handoffs: tuple[tuple[str, str, str, str, str, str], ...]
    opportunities: tuple[OpportunityView, ...]
    retries: tuple[Pair, ...]
    failed_at: tuple[str, ...]
    compensations: tuple[str, ...]
    uncompensated: tuple[tuple[str, tuple[TraceRef, ...]], ...]
    timeouts: tuple[str, ...]
    failure_statuses: str
    duplicates: tuple[tuple[str, str, tuple[str, ...]], ...]
    example_traces: tuple[TraceRef, ...]
    arazzo: str | None
    findings: tuple[Finding, ...]
    caveats: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObservedRow:
    """An entry mined but not claimed as a flow, one table row: why not, and what was seen."""

    owner: str
    entry: str
    verdict: str
    requests: str
    steps: str
    caveats: tuple[str, ...]


#: How a verdict reads in the report.
VERDICTS = {"too-little-evidence": "too little evidence", "mixed-entry": "mixed entry"}


def observed_rows(analysis: Analysis) -> tuple[ObservedRow, ...]:
    """The observed flows, in the analysis' order (owner, entry)."""
    return tuple(
        ObservedRow(
            owner=flow.owner,
            entry=flow.entry.key + (" (events)" if flow.kind == "choreographed" else ""),
            verdict=VERDICTS.get(flow.verdict, flow.verdict),
            requests=f"{flow.requests:,}" + (" chains" if flow.kind == "choreographed" else ""),
            steps=f"{len(flow.steps):,}",
            caveats=flow.caveats,
        )
        for flow in analysis.observed_flows
    )


@dataclass(frozen=True)
class OwnerSection:
    """An orchestrator (or other flow owner): why it got its role, and its flows."""

    anchor: str
    name: str
    role: str
    hidden: bool
    open: bool
    outline: str
    facts: tuple[Pair, ...]
    evidence: tuple[str, ...]
    example_traces: tuple[TraceRef, ...]
    arazzo: str | None
    flows: tuple[FlowView, ...]


def build_sections(
    analysis: Analysis,
    owners: Sequence[str],
    anchors: Mapping[str, str],
    flow_anchors: Mapping[str, str],
    arazzo: Mapping[str, str],
    trace_url: str | None,
) -> tuple[OwnerSection, ...]:
    """One section per owner: orchestrators first, the most conspicuous first."""

    def rank(name: str) -> tuple[int, float, str]:
        service = analysis.service(name)
        role = service.role if service else "service"
        return (0 if role == "orchestrator" else 1, -(service.score if service else 0.0), name)

    sections = []
    for position, name in enumerate(sorted(owners, key=rank)):
        service = analysis.service(name)
        opened = position < OPEN_OWNERS
        own = [flow for flow in analysis.flows if flow.owner == name]
        flows = tuple(
            _flow(flow, flow_anchors[flow.id], opened and i == 0, analysis.findings, arazzo, trace_url)
            for i, flow in enumerate(own)
        )
        facts: tuple[Pair, ...] = ()
        outline = f"{len(flows)} flow{'s' if len(flows) != 1 else ''}"
        if service:
            outline = f"score {service.score:.2f}, fan-out {service.fan_out}, {outline}"
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
                open=opened,
                outline=outline,
                facts=facts,
                evidence=service.evidence if service else (),
                example_traces=trace_refs(service.example_traces if service else (), trace_url),
                arazzo=arazzo.get(name),
                flows=flows,
            )
        )
    return tuple(sections)


def _flow(
    flow: Flow,
    anchor: str,
    opened: bool,
    findings: Sequence[Finding],
    arazzo: Mapping[str, str],
    trace_url: str | None,
) -> FlowView:
    durations = (flow.duration_p50_ms, flow.duration_p95_ms, flow.duration_max_ms)
    choreographed = flow.kind == "choreographed"
    facts = (
        Pair("Kind", "event-driven (choreography)" if choreographed else "orchestrated"),
        Pair(
            "Event chains" if choreographed else "Requests",
            f"{flow.requests:,}" + (f" ({flow.holes:,} lost spans)" if flow.holes else ""),
        ),
        Pair("Support", format_share(flow.support)),
        Pair("Duration p50 / p95 / max", " / ".join(format_duration(d) for d in durations)),
        Pair("Long-running", "yes" if flow.long_running else "no"),
        Pair("Inputs", ", ".join(flow.inputs) or "—"),
        Pair("Teams", ", ".join(flow.teams) or "unknown"),
        Pair("Team boundaries", ", ".join(f"{a} ↔ {b}" for a, b in flow.team_boundaries) or "none"),
    )
    steps_by_index = {s.index: s for s in flow.steps}
    mine = tuple(f for f in findings if f.flow == flow.id)

    def name(index: int) -> str:
        if index == 0:
            return "input"
        step = steps_by_index.get(index)
        if step is None:
            return str(index)
        # An event chain's steps are done by many services: each is named with its service.
        return f"{index}. {step.operation.service + ' ' if choreographed else ''}{step.operation.key}"

    def undone(index: int) -> str:
        return "the origin's request" if index == 0 else name(index)

    counted = "chains" if choreographed else "requests"
    outline = (
        f"{flow.requests:,} {counted}, {len(flow.steps)} steps, p50 {format_duration(flow.duration_p50_ms)}"
        + (", long-running" if flow.long_running else "")
        + (f", {len(mine)} finding{'s' if len(mine) != 1 else ''}" if mine else "")
        + (", could run steps together" if flow.parallel_opportunities else "")
    )
    return FlowView(
        anchor=anchor,
        id=flow.id,
        choreographed=choreographed,
        kind_label="Event-driven flow" if choreographed else "Flow",
        owner=flow.owner,
        entry=flow.entry.key,
        entry_operation_id=flow.entry.operation_id or "",
        open=opened,
        outline=outline,
        facts=facts,
        sequence_svg=render_sequence(flow),
        steps=tuple(_step(s, flow.owner) for s in sorted(flow.steps, key=lambda s: s.index)),
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
        opportunities=tuple(_opportunity(o, name) for o in flow.parallel_opportunities),
        retries=tuple(Pair(name(index), describe_retries(policy)) for index, policy in flow.failure.retries),
        failed_at=tuple(
            f"{name(index)}: {count:,} {counted} failed here first."
            for index, count in flow.failure.failed_steps
        ),
        compensations=tuple(
            f"When {name(c.failed_step)} fails, {_undo(c)} undoes {undone(c.undone_step)} "
            f"({c.requests:,} {counted})."
            for c in flow.failure.compensations
        ),
        uncompensated=tuple(
            (
                f"When {name(u.failed_step)} fails, "
                f"{', '.join(undone(i) for i in u.left_in_place)} stay in place ({u.requests:,} {counted}).",
                trace_refs(u.example_traces, trace_url),
            )
            for u in flow.failure.uncompensated
        ),
        timeouts=flow.failure.timeouts,
        failure_statuses=", ".join(str(s) for s in flow.failure.failure_statuses),
        duplicates=tuple((d.owner, d.entry.key, d.differences) for d in flow.duplicates),
        example_traces=trace_refs(flow.example_traces, trace_url),
        arazzo=arazzo.get(flow.id),
        findings=mine,
        caveats=flow.caveats,
    )


def _undo(compensation: Compensation) -> str:
    """What a compensation does: a call, or a message (named by its topic)."""
    action = f"{compensation.operation.service} {compensation.operation.key}"
    return f"the event {compensation.topic} ({action})" if compensation.topic else action


def _opportunity(opportunity: ParallelOpportunity, name: Callable[[int], str]) -> OpportunityView:
    return OpportunityView(
        steps=", ".join(name(index) for index in opportunity.steps),
        saving_p50=format_duration(opportunity.saving_p50_ms),
        saving_p95=format_duration(opportunity.saving_p95_ms),
        requests=f"{opportunity.requests:,}",
        evidence=opportunity.evidence,
    )


def _step(step: Step, owner: str) -> StepView:
    return StepView(
        index=step.index,
        row_class=" ".join(
            name for name, on in (("optional", step.optional), ("message", step.kind == "message")) if on
        ),
        caller=step.caller or owner,
        message=step.kind == "message",
        topic=step.topic or "",
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
