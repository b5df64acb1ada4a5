"""Plain data for the side-by-side view of orchestrated and event-driven flows.

The same business request can be coordinated by a service that calls each step in turn and,
after its answer, continue as events other services react to. Put next to each other, per
entry operation, a reviewer sees which part of a process is under one service's control, which
part is choreography, how long each takes and how each handles failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orchscan.analyzer.results import Analysis, Flow
from orchscan.reports.html.figures import format_duration


@dataclass(frozen=True)
class FlowCell:
    """One flow in the comparison: its steps in order (each ``caller → service operation`` for an
    event-driven flow), timing and failure handling, in words."""

    anchor: str
    steps: tuple[str, ...]
    services: str
    timing: str
    failures: str


@dataclass(frozen=True)
class ComparisonRow:
    """An entry operation with its orchestrated flow, its event-driven flow, or both."""

    owner: str
    entry: str
    orchestrated: FlowCell | None
    choreographed: FlowCell | None


def failure_summary(flow: Flow) -> str:
    """How the flow handles failure, in one line."""
    failure = flow.failure
    failed = sum(n for _, n in failure.failed_steps)
    if not failed and not failure.compensations and not failure.uncompensated:
        return "no failure observed"
    counted = "chains" if flow.kind == "choreographed" else "requests"
    parts = [f"{failed:,} {counted} failed"] if failed else []
    undos = {(c.operation.service, c.operation.key, c.topic) for c in failure.compensations}
    events = sum(1 for undo in undos if undo[2])
    for count, what in ((len(undos) - events, "compensating call"), (events, "compensating event")):
        if count:
            parts.append(f"{count} {what}{'s' if count != 1 else ''}")
    left = sum(u.requests for u in failure.uncompensated)
    if left:
        parts.append(f"{left:,} {counted} left earlier work in place")
    return "; ".join(parts)


def _cell(flow: Flow, anchor: str) -> FlowCell:
    # Listed in an ordered list, in step order: the list numbers them.
    steps = tuple(
        (f"{s.caller} → " if flow.kind == "choreographed" else "")
        + f"{s.operation.service} {s.operation.key}"
        + (" (optional)" if s.optional else "")
        for s in sorted(flow.steps, key=lambda s: s.index)
    )
    services = {s.operation.service for s in flow.steps} | {s.caller for s in flow.steps if s.caller}
    return FlowCell(
        anchor=anchor,
        steps=steps,
        services=f"{len(flow.steps)} steps, {len(services - {flow.owner})} other services",
        timing=f"p50 {format_duration(flow.duration_p50_ms)}, p95 {format_duration(flow.duration_p95_ms)}",
        failures=failure_summary(flow),
    )


def build_comparison(analysis: Analysis, anchors: Mapping[str, str]) -> tuple[ComparisonRow, ...]:
    """One row per entry operation with an event-driven flow, both kinds side by side; empty when
    no flow continues through messaging."""
    by_entry: dict[tuple[str, str], dict[str, Flow]] = {}
    for flow in analysis.flows:
        by_entry.setdefault((flow.owner, flow.entry.key), {})[flow.kind] = flow
    rows = []
    for (owner, entry), kinds in sorted(by_entry.items()):
        if "choreographed" not in kinds:
            continue
        orchestrated, choreographed = kinds.get("orchestrated"), kinds["choreographed"]
        rows.append(
            ComparisonRow(
                owner=owner,
                entry=entry,
                orchestrated=_cell(orchestrated, anchors[orchestrated.id]) if orchestrated else None,
                choreographed=_cell(choreographed, anchors[choreographed.id]),
            )
        )
    return tuple(rows)
